//! Renditions: the files Zero-OS nodes read, made by the hub from the native flists it
//! publishes, so that every flist it builds boots on a node. A node picks its reader by the
//! URL's extension: `.flist` is a 0-flist (g8ufs, Zero-OS's bootstrap and upgrader), `.fl`
//! an rfs fl file. Both cut files into 512 KiB windows stored as blocks; the hub holds no
//! such blocks: the 0-db gateway encodes each from the native chunks that cover its window
//! when a node asks for it (`blocks`).
//!
//! With the gateway on, every native file published under a name is queued here; one
//! worker, in the background, hashes the windows of the contents it does not know yet
//! (reading their chunks once: a content is named by its chunk list, so files shared by
//! several flists are read once for all), writes both renditions and records them. Until it
//! is done, `.fl` answers 404 and `.flist` the native file.
//!
//! Block ids are derived from the windows' keys (`legacy::window`): equal windows have the
//! same id in every flist, so nodes share their caches, and a rename or promote changes no
//! id. A content released by the last file holding it stays readable for
//! `gateway.release-grace`, then its ids are forgotten.

mod build;
mod content;
mod sql;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use chunkstore::{BlockId, ChunkReader, ChunkStore};
use converter::FileWindows;
use flist::Flist;
use legacy::window::WindowKeys;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::blobs::{Blobs, Digest256};
use crate::config::GatewayConfig;
use crate::db::{Db, now};
use crate::error::{Error, Result};
use crate::formats::Format;
use crate::hub::Lifecycle;
use crate::namespace::share::ContentSize;
use crate::namespace::{Namespace, blob_known};
use build::{Contents, Gateway};
use content::{Content, ContentId, encode_block};

/// Bytes of window hashing recorded per transaction.
const RECORD_EVERY: u64 = 256 << 20;
/// How often released contents past their grace are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(600);
/// Parsed chunk lists kept for the gateway (contents being read by nodes).
const CONTENT_CACHE: usize = 1024;
/// Decoded chunks kept for the gateway.
const CHUNK_CACHE: u64 = 32 << 20;

/// The distinct contents of the regular files of the native flist at `path`, with their
/// sizes, as publish records them (see `namespace::share`). Blocking.
pub(crate) fn distinct_contents(path: &std::path::Path) -> Result<Vec<ContentSize>> {
    let contents = Contents::of(&Flist::open(path)?)?;
    Ok(contents
        .distinct
        .into_iter()
        .map(|c| (c.id, c.size))
        .collect())
}

pub struct Renditions {
    db: Db,
    /// Told when renditions are made: what pages and answers show of a file changes.
    namespace: Arc<Namespace>,
    blobs: Arc<Blobs>,
    /// Reads the native chunks, keeping recent ones: a window usually shares its first
    /// and last chunks with its neighbours, which nodes read next.
    reader: ChunkReader,
    grace: Duration,
    lifecycle: Lifecycle,
    /// Set when the gateway starts: where nodes read, and the worker's queue.
    running: OnceLock<Running>,
    blocks: quick_cache::sync::Cache<BlockId, Bytes, BlockWeight>,
    contents: quick_cache::sync::Cache<ContentId, Arc<Content>>,
    from_pack: AtomicU64,
    from_store: AtomicU64,
}

struct Running {
    gateway: Gateway,
    queue: mpsc::UnboundedSender<Queued>,
}

/// A native file to make renditions of, with the window keys of its files when the pack
/// that built it hashed them.
type Queued = (String, Option<Arc<FileWindows>>);

/// How the window keys of contents were found, since the hub started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowSources {
    /// Hashed by the pack that built the flist (tar uploads, image conversions).
    pub from_pack: u64,
    /// Read back from the chunk store (pushes, upload-flist, merges).
    pub from_store: u64,
}

#[derive(Clone)]
struct BlockWeight;

impl quick_cache::Weighter<BlockId, Bytes> for BlockWeight {
    fn weight(&self, _: &BlockId, block: &Bytes) -> u64 {
        block.len() as u64 + 64
    }
}

impl Renditions {
    pub(crate) fn new(
        db: Db,
        namespace: Arc<Namespace>,
        blobs: Arc<Blobs>,
        store: Arc<dyn ChunkStore>,
        config: &GatewayConfig,
        lifecycle: Lifecycle,
    ) -> Renditions {
        let cache_bytes = config.block_cache.max(1);
        Renditions {
            db,
            namespace,
            blobs,
            reader: ChunkReader::new(store).with_cache(CHUNK_CACHE),
            grace: config.release_grace,
            lifecycle,
            running: OnceLock::new(),
            blocks: quick_cache::sync::Cache::with_weighter(
                (cache_bytes / (512 << 10)).max(1) as usize,
                cache_bytes,
                BlockWeight,
            ),
            contents: quick_cache::sync::Cache::new(CONTENT_CACHE),
            from_pack: AtomicU64::new(0),
            from_store: AtomicU64::new(0),
        }
    }

    /// Starts making renditions for the gateway at `public_url` (`zdb://host:port`): the
    /// ones made for another address are dropped, and every published native file without
    /// renditions for this one is queued. Only the first call counts.
    pub fn start(self: &Arc<Self>, public_url: &str) -> Result<()> {
        let gateway = Gateway::parse(public_url)?;
        let (queue, mut queued) = mpsc::unbounded_channel::<Queued>();
        if self
            .running
            .set(Running {
                gateway: gateway.clone(),
                queue,
            })
            .is_err()
        {
            return Ok(());
        }
        let renditions = Arc::clone(self);
        let stop = self.lifecycle.shutdown.clone();
        self.lifecycle.tasks.spawn(async move {
            if let Err(e) = renditions.catch_up(&gateway.url).await {
                tracing::error!(error = %e, "listing the flists that need renditions");
            }
            let mut sweep = tokio::time::interval(SWEEP_EVERY);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    next = queued.recv() => match next {
                        Some((sha256, windows)) => {
                            renditions.make(&sha256, windows, &gateway).await;
                        }
                        None => break,
                    },
                    _ = sweep.tick() => {
                        if let Err(e) = renditions.sweep().await {
                            tracing::warn!(error = %e, "forgetting released rendition blocks");
                        }
                    }
                }
            }
        });
        Ok(())
    }

    /// Queues a published native file for renditions (nothing when the gateway is off),
    /// with its files' window keys if the pack that built it hashed them.
    pub(crate) fn schedule(&self, sha256: &str, windows: Option<Arc<FileWindows>>) {
        if let Some(running) = self.running.get() {
            let _ = running.queue.send((sha256.to_owned(), windows));
        }
    }

    /// How many contents had their window keys from a pack, and how many were read back.
    pub fn window_sources(&self) -> WindowSources {
        WindowSources {
            from_pack: self.from_pack.load(Ordering::Relaxed),
            from_store: self.from_store.load(Ordering::Relaxed),
        }
    }

    /// The gateway address renditions are made for, once it runs.
    pub fn public_url(&self) -> Option<&str> {
        self.running.get().map(|r| r.gateway.url.as_str())
    }

    /// The renditions of the native file `sha256` (none until they are made).
    pub async fn of(&self, sha256: &str) -> Result<Vec<Digest256>> {
        let Some(url) = self.public_url().map(str::to_owned) else {
            return Ok(Vec::new());
        };
        let sha256 = sha256.to_owned();
        self.db
            .read(move |c| sql::renditions(c, &sha256, &url))
            .await
    }

    /// The rendition of `format` of the native file `sha256`, if made.
    pub async fn rendition(&self, sha256: &str, format: Format) -> Result<Option<Digest256>> {
        Ok(self
            .of(sha256)
            .await?
            .into_iter()
            .find(|d| d.format == format))
    }

    /// For each id, the rendition block it names, encoded for its format; `None` for an id
    /// no held (or recently released) content has.
    pub async fn blocks(&self, ids: &[BlockId]) -> Result<Vec<Option<Bytes>>> {
        let mut found = Vec::with_capacity(ids.len());
        for &id in ids {
            found.push(self.block(id).await?);
        }
        Ok(found)
    }

    /// Every block the hub serves, for each id: a rendition block (encoded from the
    /// chunks), else one a client stored in the store's block key space, else `None`.
    pub async fn served_blocks(&self, ids: &[BlockId]) -> Result<Vec<Option<Bytes>>> {
        let mut found = self.blocks(ids).await?;
        let missing: Vec<BlockId> = ids
            .iter()
            .zip(&found)
            .filter(|(_, block)| block.is_none())
            .map(|(id, _)| *id)
            .collect();
        if missing.is_empty() {
            return Ok(found);
        }
        let stored = self.reader.store().get_blocks(&missing).await?;
        if stored.len() != missing.len() {
            return Err(Error::Internal(format!(
                "the store answered {} of {} blocks",
                stored.len(),
                missing.len()
            )));
        }
        let mut stored = stored.into_iter();
        for block in found.iter_mut().filter(|b| b.is_none()) {
            *block = stored.next().flatten();
        }
        Ok(found)
    }

    /// Whether `id` names a rendition block (without reading it).
    pub async fn has(&self, id: BlockId) -> Result<bool> {
        let (bytes, cutoff) = (id.as_bytes().to_vec(), self.cutoff());
        Ok(self
            .db
            .read(move |c| sql::locate(c, &bytes, cutoff))
            .await?
            .is_some())
    }

    /// The id is looked up each time, cached or not: a block whose last flist is gone
    /// stops being served when its grace ends, whatever the cache holds.
    async fn block(&self, id: BlockId) -> Result<Option<Bytes>> {
        let cutoff = self.cutoff();
        let bytes = id.as_bytes().to_vec();
        let Some((content_id, window, keys)) = self
            .db
            .read(move |c| sql::locate(c, &bytes, cutoff))
            .await?
        else {
            return Ok(None);
        };
        if let Some(block) = self.blocks.get(&id) {
            return Ok(Some(block));
        }
        let content = match self.contents.get(&content_id) {
            Some(content) => content,
            None => {
                let Some(content) = self.db.read(move |c| sql::content(c, &content_id)).await?
                else {
                    return Ok(None);
                };
                let content = Arc::new(content);
                self.contents.insert(content_id, Arc::clone(&content));
                content
            }
        };
        let plain = match content.window(&self.reader, window).await {
            Ok(plain) => plain,
            Err(e) => {
                let holders = self
                    .db
                    .read(move |c| sql::holders(c, &content_id))
                    .await
                    .unwrap_or_default();
                tracing::error!(
                    block = %id, error = %e, flists = ?holders,
                    "a rendition block cannot be read: these flists are damaged"
                );
                return Err(e);
            }
        };
        let block = tokio::task::spawn_blocking(move || encode_block(id, &keys, &plain)).await??;
        if let Some(block) = &block {
            self.blocks.insert(id, block.clone());
        }
        Ok(block)
    }

    /// Releases older than this are past their grace.
    fn cutoff(&self) -> i64 {
        now().saturating_sub(i64::try_from(self.grace.as_secs()).unwrap_or(i64::MAX))
    }

    /// At start: drops the renditions made for another address, queues what lacks them.
    async fn catch_up(&self, url: &str) -> Result<()> {
        let url = url.to_owned();
        let freed = self
            .db
            .write(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut freed = Vec::new();
                for (native, format, old) in sql::stale(&tx, &url)? {
                    let rendition = (native.as_str(), format.as_str(), old.as_str());
                    crate::namespace::drop_rendition(&tx, rendition, &mut freed, now())?;
                }
                tx.commit()?;
                let missing = sql::without_renditions(conn, &url)?;
                Ok((freed, missing))
            })
            .await?;
        let (freed, missing) = freed;
        for sha in &freed {
            self.blobs.remove(sha);
        }
        if !freed.is_empty() {
            tracing::info!(
                dropped = freed.len(),
                "renditions made for another gateway address are dropped"
            );
        }
        if !missing.is_empty() {
            tracing::info!(flists = missing.len(), "making renditions for nodes");
        }
        for sha in missing {
            self.schedule(&sha, None);
        }
        self.sweep().await
    }

    async fn sweep(&self) -> Result<()> {
        let cutoff = self.cutoff();
        let forgotten = self
            .db
            .write_relaxed(move |conn| {
                let tx = conn.transaction()?;
                let n = sql::sweep(&tx, cutoff)?;
                tx.commit()?;
                Ok(n)
            })
            .await?;
        if forgotten > 0 {
            tracing::info!(contents = forgotten, "released rendition blocks forgotten");
        }
        Ok(())
    }

    /// Makes the renditions of one native file, logging the outcome.
    async fn make(
        self: &Arc<Self>,
        sha256: &str,
        windows: Option<Arc<FileWindows>>,
        gateway: &Gateway,
    ) {
        let started = std::time::Instant::now();
        let renditions = Arc::clone(self);
        let (sha, gateway) = (sha256.to_owned(), gateway.clone());
        let runtime = Handle::current();
        let outcome = tokio::task::spawn_blocking(move || {
            renditions.make_now(&sha, windows.as_deref(), &gateway, &runtime)
        })
        .await
        .map_err(Error::from)
        .and_then(|r| r);
        match outcome {
            Ok(true) => {
                self.namespace.forget_answers();
                tracing::info!(
                    flist = sha256,
                    seconds = started.elapsed().as_secs_f64(),
                    "renditions made"
                );
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(flist = sha256, error = %e, "renditions not made"),
        }
    }

    /// [`Renditions::make`] on a blocking thread: whether renditions were made (not when
    /// the file is gone or has them already).
    fn make_now(
        &self,
        sha256: &str,
        packed: Option<&FileWindows>,
        gateway: &Gateway,
        runtime: &Handle,
    ) -> Result<bool> {
        let (sha, url) = (sha256.to_owned(), gateway.url.clone());
        let done = self.db.read_now(|c| {
            Ok(!blob_known(c, &sha)? || !sql::renditions(c, &sha, &url)?.is_empty())
        })?;
        if done {
            return Ok(false);
        }
        // The open file stays readable if the flist is deleted meanwhile; what is recorded
        // then is released with it.
        let flist = match Flist::open(self.blobs.path(sha256)) {
            Ok(flist) => flist,
            Err(_) if !self.blobs.path(sha256).exists() => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let contents = Contents::of(&flist)?;
        let ids: Vec<ContentId> = contents.distinct.iter().map(|c| c.id).collect();
        let mut windows = self.db.read_now(|c| sql::known_windows(c, &ids))?;
        // What the pack hashed, by content (a file's keys are trusted only if they are as
        // many as its windows).
        let hashed: HashMap<ContentId, &Vec<WindowKeys>> = packed
            .map(|packed| {
                contents
                    .by_path
                    .iter()
                    .filter_map(|(path, id)| Some((*id, packed.get(path)?)))
                    .collect()
            })
            .unwrap_or_default();
        let mut pending: Vec<(Content, Vec<WindowKeys>)> = Vec::new();
        let mut pending_bytes = 0u64;
        for content in &contents.distinct {
            if self.lifecycle.shutdown.is_cancelled() {
                return Err(Error::Cancelled("the hub is stopping".into()));
            }
            if windows.contains_key(&content.id) {
                continue;
            }
            let keys = match hashed.get(&content.id) {
                Some(keys) if keys.len() as u64 == legacy::block_count(content.size) => {
                    self.from_pack.fetch_add(1, Ordering::Relaxed);
                    (*keys).clone()
                }
                _ => {
                    self.from_store.fetch_add(1, Ordering::Relaxed);
                    runtime.block_on(content.windows(&self.reader))?
                }
            };
            pending_bytes += content.size;
            pending.push((content.clone(), keys));
            if pending_bytes >= RECORD_EVERY {
                self.record_windows(sha256, &mut pending, &mut windows)?;
                pending_bytes = 0;
            }
        }
        self.record_windows(sha256, &mut pending, &mut windows)?;

        let zero_file = self.blobs.new_staging_file("rendition-")?;
        let fl_file = self.blobs.new_staging_file("rendition-")?;
        build::write(&flist, &contents, &windows, gateway, &zero_file, &fl_file)?;
        let staged = [self.blobs.stage(zero_file)?, self.blobs.stage(fl_file)?];

        let (sha, url, blobs) = (
            sha256.to_owned(),
            gateway.url.clone(),
            Arc::clone(&self.blobs),
        );
        self.db.write_now(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if !blob_known(&tx, &sha)? {
                return Ok(false);
            }
            for id in &ids {
                sql::hold(&tx, &sha, id)?;
            }
            if sql::recorded(&tx, &ids)? != ids.len() {
                return Err(Error::Unavailable(
                    "contents were forgotten while their renditions were made; retry".into(),
                ));
            }
            let t = now();
            for file in staged {
                let digest = file.digest.clone();
                blobs.place(file)?;
                sql::put_rendition(&tx, &sha, &url, &digest, t)?;
            }
            tx.commit()?;
            Ok(true)
        })
    }

    /// Records the windows hashed so far, if the file is still published.
    fn record_windows(
        &self,
        sha256: &str,
        pending: &mut Vec<(Content, Vec<WindowKeys>)>,
        windows: &mut HashMap<ContentId, Vec<WindowKeys>>,
    ) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(pending);
        let sha = sha256.to_owned();
        let batch = self.db.write_now(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if !blob_known(&tx, &sha)? {
                return Err(Error::NotFound("the flist was deleted".into()));
            }
            for (content, keys) in &batch {
                sql::put_windows(&tx, &sha, content, keys)?;
            }
            tx.commit()?;
            Ok(batch)
        })?;
        windows.extend(batch.into_iter().map(|(content, keys)| (content.id, keys)));
        Ok(())
    }
}
