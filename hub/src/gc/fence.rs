//! What keeps the collector from deleting a chunk someone is about to rely on: the record
//! of when each chunk was last *seen*, the operations in progress, and the fence of a run.
//!
//! Every store call of the hub goes through [`Tracked`], which records a chunk (or block)
//! as seen when it is stored, and when an existence check finds it: the chunk API's
//! `missing` answers and uploads, the packs of archive uploads and image conversions, the
//! checks of uploaded flists. Seen times are kept in memory and written to the database
//! (`chunk_seen`) every [`FLUSH_EVERY`] and at the start of every run, so they outlive a
//! restart; a crash loses at most the last interval's, which a grace period of hours makes
//! moot.
//!
//! A run deletes a key only if no flist marks it and it was last seen before its *cutoff*:
//! the earliest of `now - grace`, the run's start, and the start of the oldest operation
//! (upload, conversion, merge) still in progress. Everything an operation stored or found
//! is thus kept while it runs, whatever the grace.
//!
//! The fence of a run closes the remaining race, a key found present (or a flist published)
//! just as the sweep decides about it:
//! * a store call holds the shared side of the `gate` from asking the backend until it has
//!   recorded what it saw; the sweep holds the exclusive side while it decides about a
//!   batch and deletes it. A key a call found present is therefore recorded before the
//!   sweep looks, and kept; a key deleted first is reported absent, and the client sends it
//!   again;
//! * a flist published while a run is active adds its keys to the run's live marks, under
//!   the gate too; if one of them was deleted by this run already, the publish is refused
//!   (the client pushes again), so a published flist never names a collected chunk. Runs
//!   start under the `publishing` lock, which every publish holds from that check to its
//!   commit: a publish either committed before the run's mark phase read the namespace,
//!   or it sees the run and marks its keys itself.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chunkstore::{
    BackendStats, BlockId, ChunkKey, ChunkStore, Cursor, EncodedChunk, Page, Reclaim, RepairReport,
};
use rusqlite::params;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::quota::Charge;

/// How often seen times are written to the database.
pub const FLUSH_EVERY: Duration = Duration::from_secs(30);

/// A key of either space of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Item {
    Chunk(ChunkKey),
    Block(BlockId),
}

impl Item {
    /// As the `chunk_seen` table keeps it: 32 bytes for a chunk, `b` and the id for a
    /// block (17 or 33 bytes), so the two never meet.
    pub fn to_bytes(self) -> Vec<u8> {
        match self {
            Item::Chunk(key) => key.as_bytes().to_vec(),
            Item::Block(id) => [b"b".as_slice(), id.as_bytes()].concat(),
        }
    }

    /// From [`Item::to_bytes`]; `None` for bytes it never makes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Item> {
        // By length first: a chunk key may begin with `b` too.
        if let Ok(key) = <[u8; 32]>::try_from(bytes) {
            return Some(Item::Chunk(ChunkKey::from_bytes(key)));
        }
        match bytes {
            [b'b', id @ ..] => BlockId::from_slice(id).map(Item::Block),
            _ => None,
        }
    }
}

/// Milliseconds since the epoch: seen times need finer steps than seconds, or a chunk
/// stored in the second a run starts could not be told from one stored before it.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Default)]
struct State {
    /// Seen since the last flush.
    pending: HashMap<Item, i64>,
    run: Option<Run>,
    /// Operations in progress, by id: when each started.
    operations: BTreeMap<u64, i64>,
    next_operation: u64,
}

struct Run {
    /// Keys of flists published while the run is active.
    live: HashSet<Item>,
    /// Keys this run deleted.
    deleted: HashSet<Item>,
}

/// See the module documentation.
pub struct Fence {
    db: Db,
    gate: tokio::sync::RwLock<()>,
    publishing: tokio::sync::RwLock<()>,
    state: Mutex<State>,
}

/// An operation in progress; its end when dropped.
pub struct Operation {
    fence: Arc<Fence>,
    id: u64,
}

impl Drop for Operation {
    fn drop(&mut self) {
        self.fence.state().operations.remove(&self.id);
    }
}

/// Held by a publish from its check of the run to its commit.
pub struct Publishing<'a> {
    _guard: tokio::sync::RwLockReadGuard<'a, ()>,
}

impl Fence {
    pub fn new(db: Db) -> Arc<Fence> {
        Arc::new(Fence {
            db,
            gate: tokio::sync::RwLock::new(()),
            publishing: tokio::sync::RwLock::new(()),
            state: Mutex::default(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records keys as seen now.
    fn saw(&self, items: impl Iterator<Item = Item>) {
        let now = now_ms();
        let mut state = self.state();
        for item in items {
            state.pending.insert(item, now);
        }
    }

    /// Marks the start of an operation whose stored chunks must be kept until it ends.
    pub fn operation(self: &Arc<Self>) -> Operation {
        let mut state = self.state();
        let id = state.next_operation;
        state.next_operation += 1;
        state.operations.insert(id, now_ms());
        Operation {
            fence: Arc::clone(self),
            id,
        }
    }

    /// When the oldest operation in progress started.
    pub fn oldest_operation(&self) -> Option<i64> {
        self.state().operations.values().min().copied()
    }

    /// Writes the seen times gathered so far to the database.
    pub async fn flush(&self) -> Result<()> {
        let pending = std::mem::take(&mut self.state().pending);
        if pending.is_empty() {
            return Ok(());
        }
        let rows: Vec<(Vec<u8>, i64)> = pending
            .into_iter()
            .map(|(item, seen)| (item.to_bytes(), seen))
            .collect();
        self.db
            .write_relaxed(move |c| {
                let tx = c.transaction()?;
                {
                    let mut upsert = tx.prepare_cached(
                        "INSERT INTO chunk_seen (key, seen) VALUES (?1, ?2)
                         ON CONFLICT (key) DO UPDATE SET seen = max(seen, excluded.seen)",
                    )?;
                    for (key, seen) in &rows {
                        upsert.execute(params![key, seen])?;
                    }
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }

    /// When each key was last seen, as far as the hub knows (the database and what is not
    /// yet written there).
    pub async fn last_seen(&self, items: &[Item]) -> Result<Vec<Option<i64>>> {
        let keys: Vec<Vec<u8>> = items.iter().map(|i| i.to_bytes()).collect();
        let stored: Vec<Option<i64>> = self
            .db
            .read(move |c| {
                let mut get = c.prepare_cached("SELECT seen FROM chunk_seen WHERE key = ?1")?;
                keys.iter()
                    .map(|key| {
                        use rusqlite::OptionalExtension;
                        Ok(get.query_row([key], |r| r.get(0)).optional()?)
                    })
                    .collect()
            })
            .await?;
        let state = self.state();
        Ok(items
            .iter()
            .zip(stored)
            .map(|(item, stored)| stored.max(state.pending.get(item).copied()))
            .collect())
    }

    /// Records keys first met by the collector, neither marked nor seen, as seen now: a
    /// key stored behind the hub's back, by a backend that keeps no write time, gets a full
    /// grace period from the moment the hub knows of it.
    pub fn met(&self, items: &[Item]) {
        self.saw(items.iter().copied());
    }

    /// Forgets the seen times of keys deleted.
    pub async fn forget(&self, items: Vec<Item>) -> Result<()> {
        let keys: Vec<Vec<u8>> = items.iter().map(|i| i.to_bytes()).collect();
        self.db
            .write_relaxed(move |c| {
                let tx = c.transaction()?;
                {
                    let mut delete = tx.prepare_cached("DELETE FROM chunk_seen WHERE key = ?1")?;
                    for key in &keys {
                        delete.execute([key])?;
                    }
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }

    /// Forgets the seen times older than `before` of keys `marked` does not hold: after a
    /// sweep that listed every key of the store, such a row names a key that is gone (deleted
    /// behind the hub's back, or by another hub on the same store), and would stay for
    /// ever. The rows of marked keys stay (they still count once their flists go), and so
    /// does everything seen since `before`. Answers how many rows went.
    pub async fn prune(&self, before: i64, marked: impl Fn(Item) -> bool) -> Result<u64> {
        const PAGE: i64 = 10_000;
        let mut after: Vec<u8> = Vec::new();
        let mut pruned = 0;
        loop {
            let from = after.clone();
            let page: Vec<Vec<u8>> = self
                .db
                .read(move |c| {
                    let mut stmt = c.prepare_cached(
                        "SELECT key FROM chunk_seen WHERE key > ?1 AND seen < ?2 ORDER BY key LIMIT ?3",
                    )?;
                    let rows = stmt.query_map(params![from, before, PAGE], |r| r.get(0))?;
                    Ok(rows.collect::<rusqlite::Result<Vec<Vec<u8>>>>()?)
                })
                .await?;
            let Some(last) = page.last() else {
                return Ok(pruned);
            };
            after = last.clone();
            let full = page.len() as i64 == PAGE;
            let gone: Vec<Vec<u8>> = page
                .into_iter()
                .filter(|key| Item::from_bytes(key).is_none_or(|item| !marked(item)))
                .collect();
            pruned += gone.len() as u64;
            if !gone.is_empty() {
                self.db
                    .write_relaxed(move |c| {
                        let tx = c.transaction()?;
                        {
                            let mut delete = tx.prepare_cached(
                                "DELETE FROM chunk_seen WHERE key = ?1 AND seen < ?2",
                            )?;
                            for key in &gone {
                                delete.execute(params![key, before])?;
                            }
                        }
                        tx.commit()?;
                        Ok(())
                    })
                    .await?;
            }
            if !full {
                return Ok(pruned);
            }
        }
    }

    /// Starts a run: from now on, publishes mark their keys in it. Waits for publishes
    /// that began before (their commits are then visible to the mark phase).
    pub async fn open_run(&self) {
        let _publishing = self.publishing.write().await;
        self.state().run = Some(Run {
            live: HashSet::new(),
            deleted: HashSet::new(),
        });
    }

    /// Whether a run is going on.
    pub fn run_active(&self) -> bool {
        self.state().run.is_some()
    }

    /// Ends the run.
    pub fn close_run(&self) {
        self.state().run = None;
    }

    /// Taken by a publish before [`Fence::published`], held until its commit.
    pub async fn publishing(&self) -> Publishing<'_> {
        Publishing {
            _guard: self.publishing.read().await,
        }
    }

    /// Marks a flist's keys in the active run, if there is one; refuses the publish if the
    /// run deleted one of them already.
    pub async fn published(&self, items: impl Iterator<Item = Item>) -> Result<()> {
        let _gate = self.gate.read().await;
        let mut state = self.state();
        let Some(run) = state.run.as_mut() else {
            return Ok(());
        };
        for item in items {
            if run.deleted.contains(&item) {
                return Err(Error::BadRequest(format!(
                    "{} was collected as garbage while this flist was being published; upload it again",
                    describe(item)
                )));
            }
            run.live.insert(item);
        }
        Ok(())
    }

    /// Decides about a batch of candidates and deletes those still to go, alone against
    /// every store call and publish: `decide` gets the live marks and the keys seen since
    /// the last flush, and returns the keys to delete; `delete` deletes them.
    pub async fn sweep<D, F, Fut>(&self, decide: D, delete: F) -> Result<Vec<Item>>
    where
        D: FnOnce(&HashSet<Item>, &HashMap<Item, i64>) -> Vec<Item>,
        F: FnOnce(Vec<Item>) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let _gate = self.gate.write().await;
        let doomed = {
            let state = self.state();
            let empty = HashSet::new();
            let live = state.run.as_ref().map_or(&empty, |r| &r.live);
            decide(live, &state.pending)
        };
        if doomed.is_empty() {
            return Ok(doomed);
        }
        // Recorded before the delete: a failed delete may have deleted some.
        if let Some(run) = self.state().run.as_mut() {
            run.deleted.extend(doomed.iter().copied());
        }
        delete(doomed.clone()).await?;
        Ok(doomed)
    }
}

fn describe(item: Item) -> String {
    match item {
        Item::Chunk(key) => format!("chunk {key}"),
        Item::Block(id) => format!("block {id}"),
    }
}

/// The hub's store, recording what it stores and finds (see the module documentation);
/// for an upload or a conversion, also charging what it writes to an identity's quota.
pub struct Tracked {
    inner: Arc<dyn ChunkStore>,
    fence: Arc<Fence>,
    charge: Option<Arc<Charge>>,
}

impl Tracked {
    pub fn new(inner: Arc<dyn ChunkStore>, fence: Arc<Fence>) -> Tracked {
        Tracked {
            inner,
            fence,
            charge: None,
        }
    }

    /// The same store, its writes charged to `charge` (refused past the quota).
    pub(crate) fn charging(&self, charge: Arc<Charge>) -> Tracked {
        Tracked {
            inner: Arc::clone(&self.inner),
            fence: Arc::clone(&self.fence),
            charge: Some(charge),
        }
    }

    /// Runs `write` of `count` items of `bytes`, charged first if this store charges.
    async fn charged<F: Future<Output = chunkstore::Result<()>>>(
        &self,
        count: usize,
        bytes: u64,
        write: F,
    ) -> chunkstore::Result<()> {
        let Some(charge) = &self.charge else {
            return write.await;
        };
        charge.take(self.inner.location(), count, bytes).await?;
        let written = write.await;
        if written.is_err() {
            charge.give_back(count, bytes).await;
        }
        written
    }
}

#[async_trait]
impl ChunkStore for Tracked {
    fn location(&self) -> &str {
        self.inner.location()
    }

    fn routes(&self) -> Vec<String> {
        self.inner.routes()
    }

    async fn has_many(&self, keys: &[ChunkKey]) -> chunkstore::Result<Vec<bool>> {
        let _gate = self.fence.gate.read().await;
        let present = self.inner.has_many(keys).await?;
        let found = keys.iter().zip(&present).filter(|(_, p)| **p);
        self.fence.saw(found.map(|(k, _)| Item::Chunk(*k)));
        Ok(present)
    }

    async fn put_many(&self, chunks: &[EncodedChunk]) -> chunkstore::Result<()> {
        let _gate = self.fence.gate.read().await;
        let bytes = chunks.iter().map(|c| c.len() as u64).sum();
        self.charged(chunks.len(), bytes, self.inner.put_many(chunks))
            .await?;
        self.fence.saw(chunks.iter().map(|c| Item::Chunk(c.key())));
        Ok(())
    }

    async fn get_many(&self, keys: &[ChunkKey]) -> chunkstore::Result<Vec<Option<Bytes>>> {
        self.inner.get_many(keys).await
    }

    fn get_here(&self, key: &ChunkKey, buf: &mut Vec<u8>) -> Option<chunkstore::Result<bool>> {
        self.inner.get_here(key, buf)
    }

    async fn stats(&self) -> chunkstore::Result<Vec<BackendStats>> {
        self.inner.stats().await
    }

    async fn probe(&self) -> Vec<(String, chunkstore::Result<()>)> {
        self.inner.probe().await
    }

    async fn repair(&self, keys: &[ChunkKey]) -> chunkstore::Result<RepairReport> {
        self.inner.repair(keys).await
    }

    async fn has_blocks(&self, ids: &[BlockId]) -> chunkstore::Result<Vec<bool>> {
        let _gate = self.fence.gate.read().await;
        let present = self.inner.has_blocks(ids).await?;
        let found = ids.iter().zip(&present).filter(|(_, p)| **p);
        self.fence.saw(found.map(|(id, _)| Item::Block(*id)));
        Ok(present)
    }

    async fn put_blocks(&self, blocks: &[(BlockId, Bytes)]) -> chunkstore::Result<()> {
        let _gate = self.fence.gate.read().await;
        let bytes = blocks.iter().map(|(_, b)| b.len() as u64).sum();
        self.charged(blocks.len(), bytes, self.inner.put_blocks(blocks))
            .await?;
        self.fence
            .saw(blocks.iter().map(|(id, _)| Item::Block(*id)));
        Ok(())
    }

    async fn get_blocks(&self, ids: &[BlockId]) -> chunkstore::Result<Vec<Option<Bytes>>> {
        self.inner.get_blocks(ids).await
    }

    async fn list_chunks(
        &self,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> chunkstore::Result<Page<ChunkKey>> {
        self.inner.list_chunks(cursor, limit).await
    }

    async fn list_blocks(
        &self,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> chunkstore::Result<Page<BlockId>> {
        self.inner.list_blocks(cursor, limit).await
    }

    fn reclaim(&self) -> Reclaim {
        self.inner.reclaim()
    }

    fn parts(&self) -> Vec<Arc<dyn ChunkStore>> {
        self.inner.parts()
    }
}
