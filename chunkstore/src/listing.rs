//! Walking a store's keys page by page, and forgetting them: what garbage collection needs.
//!
//! A listing is resumable: each [`Page`] carries the [`Cursor`] of the next one, an opaque
//! value that can be kept (in a database, in a file) and handed back later, to the same
//! store, to go on where the walk stopped. What a walk promises is the weakest promise of
//! the backends: a key stored from before the walk began until after it ended is listed at
//! least once; a key stored or deleted while the walk runs may or may not be. A Redis
//! `SCAN` may list a key twice, and a router lists a key once per backend that holds it.
//! A collector is safe under these rules as long as it deletes only what it listed and
//! decided about, never what it did not see.

/// Where a listing goes on: opaque bytes that only the store that made them understands.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Cursor(Vec<u8>);

impl Cursor {
    pub fn from_bytes(bytes: Vec<u8>) -> Cursor {
        Cursor(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cursor({})", hex::encode(&self.0))
    }
}

/// One key found by a listing, with what the backend tells of it for free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed<K> {
    pub key: K,
    /// Stored bytes, where the backend tells.
    pub size: Option<u64>,
    /// When it was last written, in seconds since the epoch, where the backend keeps it
    /// (a file's mtime, 0-db's entry timestamp; Redis keeps none).
    pub written: Option<i64>,
}

/// A page of a listing: some keys (maybe none, the walk is not over until `next` is
/// `None`), and where the walk goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<K> {
    pub items: Vec<Listed<K>>,
    pub next: Option<Cursor>,
}

/// What deleting does to a backend's disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reclaim {
    /// The space is free when the delete returns (files, Redis memory).
    AtOnce,
    /// The key is gone, its bytes stay on disk until the backend compacts its files
    /// (0-db: append-only, compacted offline).
    OnCompaction,
}

impl Reclaim {
    pub fn describe(self) -> &'static str {
        match self {
            Reclaim::AtOnce => "freed at once",
            Reclaim::OnCompaction => "not freed until 0-db compacts its data files",
        }
    }
}

/// The largest page a listing returns, whatever is asked: bounds a page's memory.
pub const MAX_PAGE: usize = 10_000;

/// A caller's page size, within 1 and [`MAX_PAGE`].
pub(crate) fn page_size(limit: usize) -> usize {
    limit.clamp(1, MAX_PAGE)
}
