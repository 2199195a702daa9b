use async_trait::async_trait;
use bytes::Bytes;

use crate::blocks::BlockId;
use crate::codec::EncodedChunk;
use crate::error::{Error, Result};
use crate::key::ChunkKey;
use crate::listing::{Cursor, Page, Reclaim};

/// A content-addressed chunk store.
///
/// Batch-first: every call takes many keys, so that network backends can pipeline a batch in
/// one round trip; the single-key helpers are conveniences over the batch calls. Values are
/// stored chunks (see [`crate::Codec`]): `put_many` accepts only [`EncodedChunk`]s, which are
/// verified by construction, and `get_many` returns the stored bytes for the caller to decode
/// and verify.
///
/// Network backends fail with [`crate::Error::Unavailable`] when they cannot be reached or do
/// not answer within their timeout, and with [`crate::Error::Refused`] when they answer no.
#[async_trait]
pub trait ChunkStore: Send + Sync {
    /// Where the store is, as a URL without secrets, for messages.
    fn location(&self) -> &str;

    /// URLs from which other machines can read this store's chunks, recorded in the
    /// `routes` of flists packed into it: none for a store only this machine can reach, all
    /// backends for a router (a reader then looks in each).
    fn routes(&self) -> Vec<String>;

    /// For each key, whether the store holds it.
    async fn has_many(&self, keys: &[ChunkKey]) -> Result<Vec<bool>>;

    /// Stores chunks. Storing a key that is already present is harmless (the content is
    /// the same by construction) but costs a write: callers check with `has_many` first.
    /// When this returns, the chunks are as durable as the store promises.
    async fn put_many(&self, chunks: &[EncodedChunk]) -> Result<()>;

    /// For each key, the stored bytes, or `None` if the store does not hold it.
    async fn get_many(&self, keys: &[ChunkKey]) -> Result<Vec<Option<Bytes>>>;

    /// The stored bytes of `key` read on the caller's thread into `buf` (what it held is
    /// replaced; its allocation is reused), for a store whose reads are local file reads
    /// (the dir store); `Ok(false)` when the store does not hold it. A caller that runs
    /// threads of its own and reads many chunks (extraction) neither hops to the runtime's
    /// blocking pool and back for each batch, which on a busy machine costs a wait for a
    /// core each time, nor allocates memory for each chunk. `None`: the store is not local,
    /// use `get_many`.
    fn get_here(&self, _key: &ChunkKey, _buf: &mut Vec<u8>) -> Option<Result<bool>> {
        None
    }

    /// Key counts and sizes of each backend, as far as the backend can tell.
    async fn stats(&self) -> Result<Vec<BackendStats>>;

    /// Asks each backend whether it answers, for health checks: each backend's location,
    /// and the error of one that does not.
    async fn probe(&self) -> Vec<(String, Result<()>)> {
        let answer = self.has(ChunkKey::from_bytes([0; 32])).await.map(|_| ());
        vec![(self.location().to_owned(), answer)]
    }

    /// Makes sure every key is stored everywhere it belongs, copying from where it is (a
    /// replicated store after a backend was replaced or added). A single store can only
    /// report what it lacks.
    async fn repair(&self, keys: &[ChunkKey]) -> Result<RepairReport> {
        let present = self.has_many(keys).await?;
        Ok(RepairReport {
            checked: keys.len() as u64,
            missing: present.iter().filter(|&&p| !p).count() as u64,
            ..RepairReport::default()
        })
    }

    /// Checks that every key is stored (`deep`: fetched, decoded and verified against its
    /// key, which reads every byte), and where the store keeps several copies (a router),
    /// checks each copy and rewrites a missing or damaged one from a copy that verifies. A
    /// single store can only report. Fails when a backend cannot be asked: what it holds
    /// is then unknown, not missing.
    async fn scrub(&self, keys: &[ChunkKey], deep: bool) -> Result<Vec<Health>> {
        if !deep {
            let present = self.has_many(keys).await?;
            return Ok(present.into_iter().map(Health::of_presence).collect());
        }
        let mut codec = crate::Codec::new(crate::DEFAULT_LEVEL)?;
        let stored = self.get_many(keys).await?;
        Ok(Health::of_only_copies(keys, stored, |key, bytes| {
            codec.decode(key, bytes).is_ok()
        }))
    }

    /// For each block id (the second key space, see [`crate::blocks`]), whether the store
    /// holds it.
    async fn has_blocks(&self, ids: &[BlockId]) -> Result<Vec<bool>> {
        let _ = ids;
        Err(self.no_blocks())
    }

    /// Stores blocks as given, each at most [`crate::MAX_BLOCK_SIZE`] bytes. The caller has
    /// checked each id against its block.
    async fn put_blocks(&self, blocks: &[(BlockId, Bytes)]) -> Result<()> {
        let _ = blocks;
        Err(self.no_blocks())
    }

    /// For each block id, the block, or `None` if the store does not hold it.
    async fn get_blocks(&self, ids: &[BlockId]) -> Result<Vec<Option<Bytes>>> {
        let _ = ids;
        Err(self.no_blocks())
    }

    /// [`scrub`](Self::scrub) for blocks. A store cannot tell a damaged block by itself
    /// (that takes its format's hash), so `sound` says whether a copy's bytes are the
    /// block `id` names; a router rewrites a missing or damaged copy from one it accepts.
    async fn scrub_blocks(
        &self,
        ids: &[BlockId],
        deep: bool,
        sound: &BlockCheck,
    ) -> Result<Vec<Health>> {
        if !deep {
            let present = self.has_blocks(ids).await?;
            return Ok(present.into_iter().map(Health::of_presence).collect());
        }
        let stored = self.get_blocks(ids).await?;
        Ok(Health::of_only_copies(ids, stored, sound))
    }

    /// The refusal of a store that keeps no blocks.
    fn no_blocks(&self) -> Error {
        Error::Store {
            location: self.location().to_owned(),
            reason: "this store keeps chunks only, not the blocks of 0-flist and fl files".into(),
        }
    }

    /// Chunk keys from `cursor` on (`None`: from the start), about `limit` of them (see
    /// [`crate::listing`] for what a walk promises).
    async fn list_chunks(&self, cursor: Option<Cursor>, limit: usize) -> Result<Page<ChunkKey>> {
        let _ = (cursor, limit);
        Err(self.cannot_forget())
    }

    /// Deletes chunks; a key the store does not hold is no error. Returns how many of them
    /// were there and are gone.
    async fn delete_many(&self, keys: &[ChunkKey]) -> Result<u64> {
        let _ = keys;
        Err(self.cannot_forget())
    }

    /// Block ids from `cursor` on, as [`list_chunks`](Self::list_chunks).
    async fn list_blocks(&self, cursor: Option<Cursor>, limit: usize) -> Result<Page<BlockId>> {
        let _ = (cursor, limit);
        Err(self.cannot_forget())
    }

    /// Deletes blocks, as [`delete_many`](Self::delete_many).
    async fn delete_blocks(&self, ids: &[BlockId]) -> Result<u64> {
        let _ = ids;
        Err(self.cannot_forget())
    }

    /// When a delete frees the space it held.
    fn reclaim(&self) -> Reclaim {
        Reclaim::AtOnce
    }

    /// The backends a store is made of (a router's), for work done backend by backend;
    /// empty for a store that is one backend.
    fn parts(&self) -> Vec<std::sync::Arc<dyn ChunkStore>> {
        Vec::new()
    }

    /// The refusal of a store that cannot list or delete its keys.
    fn cannot_forget(&self) -> Error {
        Error::CannotDelete {
            location: self.location().to_owned(),
            reason: "this kind of store cannot list or delete its keys".into(),
        }
    }

    async fn has(&self, key: ChunkKey) -> Result<bool> {
        Ok(self.has_many(&[key]).await?.pop().unwrap_or(false))
    }

    async fn put(&self, chunk: EncodedChunk) -> Result<()> {
        self.put_many(std::slice::from_ref(&chunk)).await
    }

    async fn get(&self, key: ChunkKey) -> Result<Option<Bytes>> {
        Ok(self.get_many(&[key]).await?.pop().flatten())
    }
}

/// What one backend holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendStats {
    pub location: String,
    /// Stored chunks. A backend that cannot tell its keys apart (a Redis Cluster) counts
    /// all of them, whatever they are, and leaves `blocks` unknown.
    pub keys: Option<u64>,
    /// Stored blocks (the second key space, see [`crate::blocks`]).
    pub blocks: Option<u64>,
    /// Bytes the backend uses for its chunks and blocks, where it can tell.
    pub bytes: Option<u64>,
}

/// What [`ChunkStore::repair`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Distinct keys looked at.
    pub checked: u64,
    /// Copies written to backends that lacked them.
    pub copied: u64,
    /// Keys no backend holds (nothing to copy from).
    pub missing: u64,
    /// Replica checks or copies that failed because a backend could not be reached: run the
    /// repair again once it is back.
    pub unreachable: u64,
}

/// Whether a copy's bytes are the block an id names: the block format's own hash, which a
/// store does not know (see [`ChunkStore::scrub_blocks`]). The lifetimes are spelled out
/// for `async_trait`, which would otherwise tie them to the call's.
pub type BlockCheck = dyn for<'a, 'b> Fn(&'a BlockId, &'b [u8]) -> bool + Sync;

/// What a [`ChunkStore::scrub`] found of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Every copy is there (and, deep, verifies).
    Sound,
    /// A copy was missing or damaged, and was rewritten from a copy that verifies.
    Repaired(Fault),
    /// No copy that verifies anywhere: nothing to repair from.
    Lost(Fault),
}

/// What was wrong with a copy (with several, the worst: damaged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    Missing,
    /// There, but it does not decode to content that hashes to its key.
    Damaged,
}

impl Health {
    /// What a presence check alone can say: sound, or lost for missing (a single store
    /// holds no other copy).
    fn of_presence(present: bool) -> Health {
        match present {
            true => Health::Sound,
            false => Health::Lost(Fault::Missing),
        }
    }

    /// The health of each key from the one copy a single store holds of it (`stored`, in
    /// the order of `keys`), `sound` judging a copy's bytes: a fault is a loss, with no other
    /// copy to repair from.
    fn of_only_copies<K>(
        keys: &[K],
        stored: Vec<Option<Bytes>>,
        mut sound: impl FnMut(&K, &[u8]) -> bool,
    ) -> Vec<Health> {
        keys.iter()
            .zip(stored)
            .map(|(key, stored)| {
                match Fault::of_copy(stored.as_deref(), |bytes| sound(key, bytes)) {
                    None => Health::Sound,
                    Some(fault) => Health::Lost(fault),
                }
            })
            .collect()
    }
}

impl Fault {
    /// What is wrong with one stored copy, if anything: `sound` judges its bytes.
    pub(crate) fn of_copy(
        stored: Option<&[u8]>,
        sound: impl FnOnce(&[u8]) -> bool,
    ) -> Option<Fault> {
        match stored {
            None => Some(Fault::Missing),
            Some(bytes) if sound(bytes) => None,
            Some(_) => Some(Fault::Damaged),
        }
    }
}
