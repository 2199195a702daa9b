//! Garbage collection of the chunk store: one collector per data directory, inside the hub
//! that serves it (so that the fence lives where uploads happen), run on a schedule
//! (`[gc] interval`), by `flisthub gc`, or by an administrator through the API.
//!
//! A run marks every chunk and block a file the hub holds names (`mark`), then walks each
//! backend's keys (`ChunkStore::list_chunks`, `list_blocks`) and deletes those unmarked
//! and not seen since the run's cutoff (`fence`): by default a day, so that a push whose
//! chunks arrived and whose flist has not yet is never robbed.
//!
//! Why seen times rather than a lease per upload session: a client of the chunk API holds no
//! session (it asks which chunks are missing, uploads those, and sends its flist, in
//! requests that may come from several processes and hours apart, and clients of 0-hub's
//! time know of no session at all), so the hub records what it can see of every one of those
//! requests instead: a chunk stored, or found present by a `missing` answer or a check, is
//! *seen*, and kept for the grace period whatever references it. The in-process work that
//! does have a beginning and an end (uploads, conversions, merges) holds an
//! [`fence::Operation`], which keeps everything seen since it started.
//!
//! The report says, per backend, how many chunks and blocks (and bytes, where the backend
//! tells) were marked, swept, and kept by the grace period, and how long the run took; a
//! dry run deletes nothing and lists what would go. Reports are kept in `gc_run`.

pub mod control;
mod fence;
mod files;
mod mark;
pub(crate) mod reports;

use std::sync::Arc;
use std::time::Instant;

use chunkstore::{BlockId, ChunkKey, ChunkStore, Listed, Page};
use serde::{Deserialize, Serialize};

pub use fence::{Fence, Item, Publishing, Tracked};
pub use files::FilesTally;
pub(crate) use mark::{Holder, file_keys, walk};

use crate::blobs::Blobs;
use crate::config::{GcConfig, LimitsConfig};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::formats::Format;
use fence::now_ms;

/// Keys per listing page, and so per sweep batch.
const PAGE: usize = 1000;
/// Keys a dry run names in its report at most (it counts all).
const LISTED_AT_MOST: usize = 10_000;

/// Keys and bytes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counted {
    pub count: u64,
    /// Bytes of those whose size the backend told.
    pub bytes: u64,
}

impl Counted {
    fn add(&mut self, size: Option<u64>) {
        self.count += 1;
        self.bytes += size.unwrap_or(0);
    }
}

/// What a run did to one key space of one backend.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tally {
    pub marked: Counted,
    /// Deleted (a dry run: would be).
    pub swept: Counted,
    /// Unmarked, but seen within the grace period (or since an operation in progress began).
    pub kept_by_grace: Counted,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BackendReport {
    pub location: String,
    /// What deleting does to its disk.
    pub space: String,
    pub chunks: Tally,
    pub blocks: Tally,
    /// Why its blocks were not collected, if they were not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks_skipped: Option<String>,
}

/// The report of one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Report {
    pub dry_run: bool,
    /// Seconds since the epoch.
    pub started: i64,
    pub duration_ms: u64,
    pub grace_seconds: u64,
    /// Files whose chunks and blocks were marked.
    pub files_marked: u64,
    pub backends: Vec<BackendReport>,
    /// Flist files in the data directory that no entry names (left by a crash).
    #[serde(default)]
    pub unreferenced_files: FilesTally,
    /// Dry run: what would go (`chunk <hex>`, `block <hex>`, `flist <sha256>`), at most
    /// 10,000.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub would_go: Vec<String>,
}

/// The collector of one data directory.
pub struct Collector {
    db: Db,
    blobs: Arc<Blobs>,
    /// The store itself, not the tracked one: nothing the collector does counts as seen.
    store: Arc<dyn ChunkStore>,
    fence: Arc<Fence>,
    limits: LimitsConfig,
    config: GcConfig,
    /// One run at a time.
    running: tokio::sync::Mutex<()>,
    /// Where `import.lock` is, which a run holds: an import writes to the store behind the
    /// fence's back.
    data_dir: std::path::PathBuf,
}

/// Closes the fence's run however the run ends.
struct RunGuard<'a>(&'a Fence);

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.0.close_run();
    }
}

impl Collector {
    pub(crate) fn new(
        db: Db,
        blobs: Arc<Blobs>,
        store: Arc<dyn ChunkStore>,
        fence: Arc<Fence>,
        limits: LimitsConfig,
        config: GcConfig,
        data_dir: std::path::PathBuf,
    ) -> Collector {
        Collector {
            data_dir,
            db,
            blobs,
            store,
            fence,
            limits,
            config,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// Runs a collection (one at a time: a second waits for the first), keeps its report,
    /// and returns it.
    pub async fn run(&self, dry_run: bool) -> Result<Report> {
        let _running = self.running.lock().await;
        let _import = crate::hub::lock_file(&self.data_dir, "import.lock", "").map_err(|_| {
            Error::Unavailable(
                "an import-0hub runs on this data directory; collect after it".into(),
            )
        })?;
        let clock = Instant::now();
        let started = now_ms();
        let mut report = Report {
            dry_run,
            started: started / 1000,
            grace_seconds: self.config.grace.as_secs(),
            ..Report::default()
        };
        self.fence.flush().await?;
        self.fence.open_run().await;
        let _run = RunGuard(&self.fence);
        let (db, blobs, limits) = (
            self.db.clone(),
            Arc::clone(&self.blobs),
            self.limits.clone(),
        );
        let marks = tokio::task::spawn_blocking(move || mark::mark(&db, &blobs, &limits)).await??;
        report.files_marked = marks.files;
        let parts = match self.store.parts() {
            parts if parts.is_empty() => vec![Arc::clone(&self.store)],
            parts => parts,
        };
        let deleted = std::sync::Mutex::new(Vec::new());
        for part in parts {
            let mut backend = BackendReport {
                location: part.location().to_owned(),
                space: part.reclaim().describe().to_owned(),
                ..BackendReport::default()
            };
            let sweep = Sweep {
                collector: self,
                deleted: &deleted,
                part: part.as_ref(),
                started,
                dry_run,
            };
            backend.chunks = sweep
                .space(
                    |cursor| part.list_chunks(cursor, PAGE),
                    |key: &ChunkKey| marks.chunks.contains(key),
                    Item::Chunk,
                    &mut report.would_go,
                )
                .await?;
            match sweep
                .space(
                    |cursor| part.list_blocks(cursor, PAGE),
                    |id: &BlockId| marks.blocks.contains(id),
                    Item::Block,
                    &mut report.would_go,
                )
                .await
            {
                Ok(tally) => backend.blocks = tally,
                Err(Error::Store(chunkstore::Error::CannotDelete { reason, .. })) => {
                    backend.blocks_skipped = Some(reason);
                }
                Err(e) => return Err(e),
            }
            report.backends.push(backend);
        }
        let deleted = deleted.into_inner().unwrap_or_else(|p| p.into_inner());
        self.fence.forget(deleted).await?;
        report.unreferenced_files = self
            .sweep_files(dry_run, started, &mut report.would_go)
            .await?;
        if !dry_run {
            let pruned = self
                .fence
                .prune(self.cutoff(started), |item| match item {
                    Item::Chunk(key) => marks.chunks.contains(&key),
                    Item::Block(id) => marks.blocks.contains(&id),
                })
                .await?;
            tracing::debug!(pruned, "seen times of keys gone from the store forgotten");
        }
        report.duration_ms = clock.elapsed().as_millis() as u64;
        reports::keep(&self.db, "gc_run", report.started, &report).await?;
        tracing::info!(
            dry_run,
            files = report.files_marked,
            swept = report
                .backends
                .iter()
                .map(|b| b.chunks.swept.count + b.blocks.swept.count)
                .sum::<u64>(),
            kept_by_grace = report
                .backends
                .iter()
                .map(|b| b.chunks.kept_by_grace.count + b.blocks.kept_by_grace.count)
                .sum::<u64>(),
            duration_ms = report.duration_ms,
            "garbage collection"
        );
        Ok(report)
    }

    /// The last reports, newest first.
    pub async fn reports(&self, limit: usize) -> Result<Vec<Report>> {
        reports::last(&self.db, "gc_run", limit).await
    }

    /// Writes seen times every [`fence::FLUSH_EVERY`], and collects every `[gc] interval`
    /// if it is set; aborted when the hub stops (then call [`Collector::flush`]).
    pub(crate) fn schedule(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let collector = Arc::clone(self);
        tokio::spawn(async move {
            let interval = collector.config.interval;
            let mut next_run = (!interval.is_zero()).then(|| Instant::now() + interval);
            loop {
                let wait = next_run.map_or(fence::FLUSH_EVERY, |at| {
                    at.saturating_duration_since(Instant::now())
                        .min(fence::FLUSH_EVERY)
                });
                tokio::time::sleep(wait).await;
                collector.flush().await;
                if next_run.is_some_and(|at| Instant::now() >= at) {
                    if let Err(e) = collector.run(false).await {
                        tracing::error!(error = %e, "garbage collection failed");
                    }
                    next_run = Some(Instant::now() + interval);
                }
            }
        })
    }

    /// Writes the seen times gathered so far to the database.
    pub(crate) async fn flush(&self) {
        if let Err(e) = self.fence.flush().await {
            tracing::warn!(error = %e, "writing the seen times of chunks");
        }
    }

    /// The cutoff now of a run that started at `started`: keys last seen before it may go.
    fn cutoff(&self, started: i64) -> i64 {
        let grace = now_ms().saturating_sub(self.config.grace.as_millis() as i64);
        let oldest = self.fence.oldest_operation().unwrap_or(i64::MAX);
        grace.min(started).min(oldest)
    }

    /// Marks a staged file's keys in the run going on, if one is (see `fence`). Call with
    /// a [`Fence::publishing`] guard held until the commit.
    pub(crate) async fn protect(
        fence: &Fence,
        path: std::path::PathBuf,
        format: Format,
        limits: LimitsConfig,
    ) -> Result<()> {
        if !fence.run_active() {
            return Ok(());
        }
        let items =
            tokio::task::spawn_blocking(move || mark::keys_of(&path, format, &limits)).await??;
        fence.published(items.into_iter()).await
    }
}

/// The sweep of one backend.
struct Sweep<'a> {
    collector: &'a Collector,
    /// What was deleted, whose seen times are forgotten once every backend was swept
    /// (another backend's copy of a key must still find its time).
    deleted: &'a std::sync::Mutex<Vec<Item>>,
    part: &'a dyn ChunkStore,
    started: i64,
    dry_run: bool,
}

impl Sweep<'_> {
    /// Walks one key space and deletes what is to go.
    async fn space<K, L, Fut>(
        &self,
        list: L,
        marked: impl Fn(&K) -> bool,
        item: fn(K) -> Item,
        would_go: &mut Vec<String>,
    ) -> Result<Tally>
    where
        K: Copy,
        L: Fn(Option<chunkstore::Cursor>) -> Fut,
        Fut: Future<Output = chunkstore::Result<Page<K>>>,
    {
        let mut tally = Tally::default();
        let mut cursor = None;
        loop {
            let page = list(cursor).await?;
            let mut candidates: Vec<Listed<K>> = Vec::new();
            for listed in page.items {
                if marked(&listed.key) {
                    tally.marked.add(listed.size);
                } else {
                    candidates.push(listed);
                }
            }
            self.batch(candidates, item, &mut tally, would_go).await?;
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(tally),
            }
        }
    }

    /// The cutoff now: keys last seen before it may go.
    fn cutoff(&self) -> i64 {
        self.collector.cutoff(self.started)
    }

    async fn batch<K: Copy>(
        &self,
        candidates: Vec<Listed<K>>,
        item: fn(K) -> Item,
        tally: &mut Tally,
        would_go: &mut Vec<String>,
    ) -> Result<()> {
        if candidates.is_empty() {
            return Ok(());
        }
        let fence = &self.collector.fence;
        let items: Vec<Item> = candidates.iter().map(|c| item(c.key)).collect();
        let seen = fence.last_seen(&items).await?;
        // What the hub saw; else a backend's write time, to the end of its second (a key
        // stored behind the hub's back).
        let seen: Vec<Option<i64>> = seen
            .into_iter()
            .zip(&candidates)
            .map(|(seen, c)| seen.or(c.written.map(|w| w * 1000 + 999)))
            .collect();
        let never: Vec<Item> = items
            .iter()
            .zip(&seen)
            .filter(|(_, s)| s.is_none())
            .map(|(i, _)| *i)
            .collect();
        fence.met(&never);
        let cutoff = self.cutoff();
        let mut doomed = Vec::new();
        let mut sizes = std::collections::HashMap::new();
        for ((listed, item), seen) in candidates.iter().zip(&items).zip(&seen) {
            match seen {
                Some(seen) if *seen < cutoff => {
                    doomed.push(*item);
                    sizes.insert(*item, listed.size);
                }
                _ => tally.kept_by_grace.add(listed.size),
            }
        }
        if self.dry_run {
            for item in doomed {
                tally.swept.add(sizes[&item]);
                if would_go.len() < LISTED_AT_MOST {
                    would_go.push(describe(item));
                }
            }
            return Ok(());
        }
        let part = self.part;
        let decided = doomed.clone();
        let deleted = fence
            .sweep(
                |live, pending| {
                    decided
                        .into_iter()
                        .filter(|i| !live.contains(i) && pending.get(i).is_none_or(|s| *s < cutoff))
                        .collect()
                },
                |gone| async move {
                    let chunks: Vec<ChunkKey> = gone
                        .iter()
                        .filter_map(|i| match i {
                            Item::Chunk(k) => Some(*k),
                            _ => None,
                        })
                        .collect();
                    let blocks: Vec<BlockId> = gone
                        .iter()
                        .filter_map(|i| match i {
                            Item::Block(b) => Some(*b),
                            _ => None,
                        })
                        .collect();
                    if !chunks.is_empty() {
                        part.delete_many(&chunks).await?;
                    }
                    if !blocks.is_empty() {
                        part.delete_blocks(&blocks).await?;
                    }
                    Ok(())
                },
            )
            .await?;
        let gone: std::collections::HashSet<Item> = deleted.iter().copied().collect();
        for item in doomed {
            match gone.contains(&item) {
                true => tally.swept.add(sizes[&item]),
                false => tally.kept_by_grace.add(sizes[&item]),
            }
        }
        self.deleted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(deleted);
        Ok(())
    }
}

fn describe(item: Item) -> String {
    match item {
        Item::Chunk(key) => format!("chunk {key}"),
        Item::Block(id) => format!("block {id}"),
    }
}
