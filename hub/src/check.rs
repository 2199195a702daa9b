//! Checks of an flist built elsewhere before the hub publishes it, whatever its format:
//! its structure (read through by its own reader), the limits, and that the hub's store
//! holds every chunk (native) or block (0-flist, fl) it names, asked in batches.

use std::collections::HashSet;
use std::hash::Hash;
use std::ops::ControlFlow;
use std::path::Path;

use chunkstore::{BlockId, ChunkKey, ChunkStore};
use flist::{Flist, Walk};
use tokio::runtime::Handle;

use crate::config::LimitsConfig;
use crate::error::{Error, Result};
use crate::facts;
use crate::formats::{AnyFlist, Format};

/// Keys checked per existence query.
const CHECK_BATCH: usize = 4096;
/// Missing keys named in a refusal.
const MISSING_SHOWN: usize = 10;

/// Checks the flist at `path` (any format). Blocking.
pub fn uploaded(
    path: &Path,
    limits: &LimitsConfig,
    store: &dyn ChunkStore,
    runtime: &Handle,
) -> Result<Format> {
    let format = Format::detect(path)?;
    match format {
        Format::Native => native(path, limits, store, runtime)?,
        Format::ZeroFlist | Format::Fl => hosted(path, format, limits, store, runtime)?,
    }
    Ok(format)
}

fn native(
    path: &Path,
    limits: &LimitsConfig,
    store: &dyn ChunkStore,
    runtime: &Handle,
) -> Result<()> {
    let bad = invalid_flist;
    let flist = Flist::open(path).map_err(bad)?;
    // Its sizes first, from the table sizes, so that nothing past the limits is read or
    // walked.
    facts::check_metadata(&flist, limits)?;
    let (entries, inodes) = flist.row_counts().map_err(bad)?;
    let totals = flist.totals().map_err(bad)?;
    facts::check_size(entries.max(inodes), totals.bytes, limits)?;
    // The tree: a walk checks its structure (names, one name per directory, depth).
    flist.walk(|_, _| Ok(Walk::Continue)).map_err(bad)?;
    // Then every file's chunks, in one pass, each key asked of the store once.
    let mut check = Presence::new("chunks", |keys: &[ChunkKey]| {
        runtime.block_on(store.has_many(keys))
    });
    flist
        .chunk_keys(|key, _| check.add(ChunkKey::from_bytes(key)))
        .map_err(bad)?;
    check.finish(store)
}

/// A 0-flist or fl file, hosted as it is: its reader goes through all of it, and every
/// block it names must be in the store's block space.
fn hosted(
    path: &Path,
    format: Format,
    limits: &LimitsConfig,
    store: &dyn ChunkStore,
    runtime: &Handle,
) -> Result<()> {
    let flist = AnyFlist::open(path, format, limits).map_err(invalid_legacy)?;
    let (stats, entries) = flist.stats().map_err(invalid_legacy)?;
    facts::check_size(entries, stats.fullsize, limits)?;
    let ids: Vec<BlockId> = match &flist {
        AnyFlist::ZeroFlist(zero) => zero
            .block_ids()
            .map_err(|e| invalid_legacy(e.into()))?
            .iter()
            .filter_map(|id| BlockId::from_slice(id))
            .collect(),
        AnyFlist::Fl(fl) => {
            // Routes are where nodes read the blocks: never a path of this machine.
            fl.routes().map_err(|e| invalid_legacy(e.into()))?;
            fl.block_ids()
                .map_err(|e| invalid_legacy(e.into()))?
                .iter()
                .filter_map(|id| BlockId::from_slice(id))
                .collect()
        }
        AnyFlist::Native(_) => {
            return Err(Error::Internal("a native flist checked as hosted".into()));
        }
    };
    let mut check = Presence::new("blocks", |ids: &[BlockId]| {
        runtime.block_on(store.has_blocks(ids))
    });
    for id in ids {
        if check.add(id).is_break() {
            break;
        }
    }
    check.finish(store)
}

/// What is wrong with an uploaded flist, as the client may read it (without the staging
/// file's path). A failure to read the file at all is the hub's, not the client's.
pub fn invalid_flist(e: flist::Error) -> Error {
    use flist::Error as F;
    let why = match e {
        F::Io { .. } => return Error::Flist(e),
        F::NotAnFlist { reason, .. } => format!("not an flist: {reason}"),
        F::Truncated {
            expected, actual, ..
        } => format!("truncated: {actual} bytes of {expected}"),
        F::UnsupportedVersion {
            found, supported, ..
        } => format!("format version {found}, newer than this hub reads ({supported})"),
        other => other.to_string(),
    };
    Error::BadRequest(format!("not a valid flist: {why}"))
}

/// [`invalid_flist`] for the legacy readers.
fn invalid_legacy(e: Error) -> Error {
    match e {
        Error::Legacy(legacy::Error::Io { .. }) => e,
        Error::Legacy(e) => Error::BadRequest(format!("not a valid flist: {e}")),
        Error::Flist(e) => invalid_flist(e),
        other => other,
    }
}

/// Existence checks of many keys, a batch per store round trip, each key asked once.
struct Presence<K, F> {
    what: &'static str,
    ask: F,
    batch: Vec<K>,
    /// Keys already checked (a file's chunks often repeat); cleared when large.
    seen: HashSet<K>,
    checked: u64,
    missing: u64,
    first: Vec<String>,
    failure: Option<Error>,
}

impl<K, F> Presence<K, F>
where
    K: Copy + Eq + Hash + std::fmt::Display,
    F: FnMut(&[K]) -> chunkstore::Result<Vec<bool>>,
{
    fn new(what: &'static str, ask: F) -> Self {
        Presence {
            what,
            ask,
            batch: Vec::with_capacity(CHECK_BATCH),
            seen: HashSet::new(),
            checked: 0,
            missing: 0,
            first: Vec::new(),
            failure: None,
        }
    }

    /// Checks `key` with the next batch; stops the pass once the store has failed.
    fn add(&mut self, key: K) -> ControlFlow<()> {
        if self.seen.len() > 1_000_000 {
            self.seen.clear();
        }
        if self.seen.insert(key) {
            self.batch.push(key);
            if self.batch.len() >= CHECK_BATCH {
                self.flush();
            }
        }
        if self.failure.is_some() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn flush(&mut self) {
        if self.batch.is_empty() || self.failure.is_some() {
            self.batch.clear();
            return;
        }
        match (self.ask)(&self.batch) {
            Ok(present) if present.len() == self.batch.len() => {
                self.checked += self.batch.len() as u64;
                for (key, present) in self.batch.iter().zip(present) {
                    if !present {
                        self.missing += 1;
                        if self.first.len() < MISSING_SHOWN {
                            self.first.push(key.to_string());
                        }
                    }
                }
            }
            Ok(_) => {
                self.failure = Some(Error::Internal(
                    "a short answer to an existence check".into(),
                ));
            }
            Err(e) => self.failure = Some(e.into()),
        }
        self.batch.clear();
    }

    /// The outcome: the store's failure, the keys missing, or none.
    fn finish(mut self, store: &dyn ChunkStore) -> Result<()> {
        self.flush();
        if let Some(e) = self.failure {
            tracing::debug!(store = store.location(), "existence check failed");
            return Err(e);
        }
        if self.missing > 0 {
            return Err(Error::MissingChunks {
                what: self.what,
                missing: self.missing,
                checked: self.checked,
                first: self.first,
            });
        }
        Ok(())
    }
}
