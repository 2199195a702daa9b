//! The pack pipeline shared by every source.
//!
//! ```text
//!  source thread                      worker threads (CPUs + 2)                store
//!  read entries, cut file content ──► hash (BLAKE3), batch ──► has_many ──► encode missing ──► put_many
//!  into chunks (FastCDC)        ◄──── (inode, seq, key) results ◄─────────────────────────────┘
//!  write the flist (SQLite)
//! ```
//!
//! The source thread owns the flist writer and the chunker; it sends each chunk's bytes into a
//! bounded channel and, between entries, records the keys the workers send back. Workers
//! hash, ask the store which keys of a batch it lacks, compress only those, and store them;
//! a batch is flushed when it is big enough or when no chunk arrived for a moment, so a fast
//! source gets full batches and a slow one still gets batches rather than single chunks. Memory is bounded by the channel
//! and the batches, whatever the size of the input.

use std::collections::HashSet;
use std::io::{self, Read};
use std::sync::{Arc, Mutex, atomic::AtomicBool, atomic::Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chunkstore::{Chunk, ChunkKey, ChunkStore, Chunker, ChunkerParams, Codec, EncodedChunk};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use flist::{ChunkRef, ChunkerInfo, FlistWriter, InodeId, Metadata, Node, Source, Totals, Xattr};
use tokio::runtime::Handle;

use crate::Cancel;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::windows::{self, FileWindows, WindowCollector, WindowCutter, WindowDone, WindowTask};

/// A worker flushes its batch at this many plaintext bytes or chunks.
const BATCH_BYTES: usize = 4 << 20;
const BATCH_CHUNKS: usize = 256;
/// ... or when no chunk arrived for this long. A source slower than the workers (many small
/// files) still fills batches, so a store round trip (and a dir store's sync) serves many
/// chunks, while a stalled source does not hold chunks back for long.
const BATCH_WAIT: Duration = Duration::from_millis(10);
/// Keys already claimed by a worker during this pack; cleared when it grows past this, which
/// only costs a repeated existence check.
const CLAIMS_CAPACITY: usize = 200_000;
/// While one file is being cut, the keys already sent back are recorded every this many
/// chunks, so that a single huge file does not pile up results in memory.
const RECORD_EVERY: u32 = 256;

/// Limits on what one input may expand to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_entries: u64,
    /// Sum of all regular files' sizes.
    pub max_total_size: u64,
    /// Longest path, in bytes (at most the format's 4096).
    pub max_path_len: usize,
    /// Largest PAX record or GNU long name of a tar stream: the tar reader holds one whole
    /// in memory, so it is refused from its header when larger.
    pub max_header_record: u64,
    /// Largest ratio of a compressed stream's expanded bytes to its compressed bytes, once
    /// `expansion_floor` bytes have come out; 0 for no bound.
    pub max_expansion_ratio: u64,
    pub expansion_floor: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 10_000_000,
            max_total_size: 1 << 40,
            max_path_len: flist::MAX_PATH_LEN,
            max_header_record: 64 << 10,
            max_expansion_ratio: 250,
            expansion_floor: 64 << 20,
        }
    }
}

/// How to pack.
#[derive(Debug, Clone)]
pub struct PackOptions {
    pub chunker: ChunkerParams,
    /// zstd level for new chunks.
    pub level: i32,
    pub limits: Limits,
    /// Worker threads; 0 means two more than the CPUs (see `default_workers`).
    pub workers: usize,
    /// Metadata to record besides what the pipeline sets itself (chunker, hash, codec,
    /// source, routes).
    pub metadata: Metadata,
    /// Metadata known only once the input has been read (see [`LateMetadata`]).
    pub late_metadata: Option<LateMetadata>,
    /// Record a `.README` (preferred) or `.README.md` at the root of the input as the
    /// `readme` metadata, as 0-hub does with uploads. Files over [`README_LIMIT`] are left
    /// out.
    pub import_readme: bool,
    /// Hash each regular file's 512 KiB windows as its content passes (for the 0-flist and
    /// fl renditions the hub makes), returned in [`PackSummary::windows`].
    pub window_keys: bool,
    pub cancel: Cancel,
}

/// The largest readme file [`PackOptions::import_readme`] records.
pub const README_LIMIT: u64 = 1 << 20;

/// Metadata that is only known after the input has ended, such as the form fields that
/// follow the file in a multipart upload. Called once, after the last entry and before the
/// flist is written; what it sets wins over [`PackOptions::metadata`], and an error fails
/// the pack (nothing is written).
#[derive(Clone)]
pub struct LateMetadata(Arc<LateFn>);

type LateFn = dyn Fn(&mut Metadata) -> std::result::Result<(), String> + Send + Sync;

impl LateMetadata {
    pub fn new(
        f: impl Fn(&mut Metadata) -> std::result::Result<(), String> + Send + Sync + 'static,
    ) -> LateMetadata {
        LateMetadata(Arc::new(f))
    }
}

impl std::fmt::Debug for LateMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LateMetadata")
    }
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            chunker: ChunkerParams::default(),
            level: chunkstore::DEFAULT_LEVEL,
            limits: Limits::default(),
            workers: 0,
            metadata: Metadata::new(),
            late_metadata: None,
            import_readme: false,
            window_keys: false,
            cancel: Cancel::default(),
        }
    }
}

/// What a pack did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackSummary {
    /// What the written flist holds.
    pub totals: Totals,
    /// Bytes of input consumed (the archive as given, or the files of a tree).
    pub input_bytes: u64,
    /// File content bytes read.
    pub content_bytes: u64,
    /// Chunks cut, and how many of them this pack stored (the rest were already there).
    pub chunks: u64,
    pub new_chunks: u64,
    /// Encoded bytes written to the store.
    pub stored_bytes: u64,
    pub elapsed: Duration,
    /// The window keys of every regular file, when [`PackOptions::window_keys`] asked.
    pub windows: FileWindows,
}

/// One worker per CPU keeps the cores busy compressing; two more keep them busy while
/// others wait on the store (a round trip, a dir store's sync). Each worker holds at most
/// one batch, so this also bounds memory: about 2 x `BATCH_BYTES` per worker.
fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(30)
        + 2
}

/// What the source thread hands the workers.
enum Task {
    Chunk(ChunkTask),
    Window(WindowTask),
}

struct ChunkTask {
    inode: InodeId,
    seq: u32,
    offset: u64,
    data: Vec<u8>,
}

struct ChunkDone {
    inode: InodeId,
    seq: u32,
    chunk: ChunkRef,
}

/// The root readme files seen so far, for [`PackOptions::import_readme`].
#[derive(Default)]
struct Readme {
    /// The content of `.README`, then of `.README.md`.
    found: [Option<Vec<u8>>; 2],
}

impl Readme {
    fn slot(path: &[u8]) -> Option<usize> {
        match path {
            b".README" => Some(0),
            b".README.md" => Some(1),
            _ => None,
        }
    }

    fn text(self) -> Option<String> {
        let [plain, markdown] = self.found;
        plain
            .or(markdown)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// State shared between the source thread and the workers.
struct Shared {
    store: Arc<dyn ChunkStore>,
    runtime: Handle,
    progress: Arc<Progress>,
    level: i32,
    aborted: AtomicBool,
    failure: Mutex<Option<Error>>,
    claims: Mutex<HashSet<ChunkKey>>,
    /// Where hashed windows go, when they are asked for.
    windows: Option<Sender<WindowDone>>,
}

impl Shared {
    fn fail(&self, error: Error) {
        self.aborted.store(true, Ordering::Relaxed);
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        failure.get_or_insert(error);
    }

    fn take_failure(&self) -> Option<Error> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// Builds one flist from entries a source hands it. Runs on a blocking thread.
pub(crate) struct Packer {
    writer: Option<FlistWriter>,
    chunker: Chunker,
    tasks: Option<Sender<Task>>,
    done: Receiver<ChunkDone>,
    workers: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
    limits: Limits,
    metadata: Metadata,
    late_metadata: Option<LateMetadata>,
    readme: Option<Readme>,
    /// The files' windows, when asked for: their paths, and the workers' results.
    windows: Option<(WindowCollector, Receiver<WindowDone>)>,
    cancel: Cancel,
    entries: u64,
    total_size: u64,
    started: Instant,
}

impl Packer {
    pub(crate) fn new(
        out: &std::path::Path,
        store: Arc<dyn ChunkStore>,
        runtime: Handle,
        options: PackOptions,
        progress: Arc<Progress>,
    ) -> Result<Packer> {
        let chunker = Chunker::new(options.chunker)?;
        Codec::new(options.level)?; // refuse a bad level before any work
        let workers = match options.workers {
            0 => default_workers(),
            n => n,
        };
        let (window_tx, window_rx) = windows::channel();
        let shared = Arc::new(Shared {
            windows: options.window_keys.then_some(window_tx),
            store,
            runtime,
            progress,
            level: options.level,
            aborted: AtomicBool::new(false),
            failure: Mutex::new(None),
            claims: Mutex::new(HashSet::new()),
        });
        let (task_tx, task_rx) = crossbeam_channel::bounded(4 * workers);
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let handles = (0..workers)
            .map(|i| {
                let (tasks, done, shared) = (task_rx.clone(), done_tx.clone(), Arc::clone(&shared));
                std::thread::Builder::new()
                    .name(format!("pack-worker-{i}"))
                    .spawn(move || {
                        if let Err(e) = work(&tasks, &done, &shared) {
                            shared.fail(e);
                        }
                    })
                    .map_err(|e| Error::io("spawning a pack worker", e))
            })
            .collect::<Result<_>>()?;
        Ok(Packer {
            writer: Some(FlistWriter::create(out)?),
            chunker,
            tasks: Some(task_tx),
            done: done_rx,
            workers: handles,
            shared,
            limits: options.limits,
            metadata: options.metadata,
            late_metadata: options.late_metadata,
            readme: options.import_readme.then(Readme::default),
            windows: options
                .window_keys
                .then(|| (WindowCollector::default(), window_rx)),
            cancel: options.cancel,
            entries: 0,
            total_size: 0,
            started: Instant::now(),
        })
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    pub(crate) fn progress(&self) -> Arc<Progress> {
        Arc::clone(&self.shared.progress)
    }

    fn writer(&mut self) -> &mut FlistWriter {
        // Present until finish() consumes the packer.
        self.writer.as_mut().expect("writer used after finish")
    }

    /// Counts an entry against the limits. Call once per input entry.
    pub(crate) fn count_entry(&mut self, path: &[u8]) -> Result<()> {
        if let Some(e) = self.shared.take_failure() {
            return Err(e);
        }
        self.cancel.check()?;
        self.entries += 1;
        Progress::add(&self.shared.progress.entries, 1);
        if self.entries > self.limits.max_entries {
            return Err(Error::TooManyEntries {
                limit: self.limits.max_entries,
            });
        }
        if path.len() > self.limits.max_path_len {
            return Err(Error::PathTooLong {
                path: crate::error::escape(&path[..64.min(path.len())]),
                len: path.len(),
                limit: self.limits.max_path_len,
            });
        }
        Ok(())
    }

    /// Adds anything but a regular file.
    pub(crate) fn add(&mut self, path: &[u8], node: &Node, xattrs: &[Xattr]) -> Result<InodeId> {
        Ok(self.writer().add(path, node, xattrs)?)
    }

    /// Adds `path` as another name of the earlier entry `target`.
    pub(crate) fn add_hardlink(&mut self, path: &[u8], target: &[u8]) -> Result<()> {
        let conflict = match self.writer().add_hardlink(path, target) {
            Ok(_) => return Ok(()),
            Err(e @ flist::Error::Conflict { .. }) => e,
            Err(e) => return Err(e.into()),
        };
        // The target's fault, or the link's own path's (below a symlink, ...).
        match self.writer().kind_at(target)? {
            None => Err(Error::bad_link(path, target, "not an earlier entry")),
            Some(flist::Kind::Directory) => Err(Error::bad_link(path, target, "a directory")),
            Some(_) => Err(conflict.into()),
        }
    }

    pub(crate) fn link(&mut self, path: &[u8], inode: InodeId) -> Result<()> {
        self.writer().link(path, inode)?;
        Ok(())
    }

    /// Adds a regular file whose content `reader` yields; `node` carries the declared size,
    /// which the content must match exactly.
    pub(crate) fn add_file(
        &mut self,
        path: &[u8],
        node: &Node,
        xattrs: &[Xattr],
        reader: impl Read,
    ) -> Result<InodeId> {
        let size = node.size();
        self.total_size = self.total_size.saturating_add(size);
        if self.total_size > self.limits.max_total_size {
            return Err(Error::ContentTooLarge {
                path: crate::error::escape(path),
                limit: self.limits.max_total_size,
            });
        }
        let inode = self.writer().add(path, node, xattrs)?;
        let mut readme = self
            .readme
            .as_ref()
            .and_then(|_| Readme::slot(path))
            .filter(|_| size <= README_LIMIT)
            .map(|slot| (slot, Vec::with_capacity(size as usize)));
        let mut cutter = match &mut self.windows {
            Some((collector, _)) => {
                collector.file(inode, path);
                Some(WindowCutter::default())
            }
            None => None,
        };
        let Packer {
            writer,
            chunker,
            tasks,
            done,
            shared,
            cancel,
            ..
        } = self;
        let writer = writer.as_mut().expect("writer used after finish");
        let tasks = tasks.as_ref().expect("tasks used after finish");
        let mut seq = 0u32;
        let mut recorded: flist::Result<()> = Ok(());
        let mut send_window = |index, data| {
            tasks
                .send(Task::Window(WindowTask { inode, index, data }))
                .map_err(|_| io::Error::other("the pack workers stopped"))
        };
        let read = chunker.chunk(reader, |offset, bytes| {
            if cancel.is_cancelled() {
                return Err(io::Error::other("cancelled"));
            }
            Progress::add(&shared.progress.content_bytes, bytes.len() as u64);
            if let Some((_, text)) = readme.as_mut() {
                text.extend_from_slice(bytes);
            }
            if let Some(cutter) = cutter.as_mut() {
                cutter.feed(bytes, &mut send_window)?;
            }
            let task = ChunkTask {
                inode,
                seq,
                offset,
                data: bytes.to_vec(),
            };
            seq += 1;
            tasks
                .send(Task::Chunk(task))
                .map_err(|_| io::Error::other("the pack workers stopped"))?;
            // Record keys as they come back, so that results of a huge file do not pile up.
            if seq % RECORD_EVERY == 0 {
                recorded = record(writer, done);
                if recorded.is_err() {
                    return Err(io::Error::other("recording chunks failed"));
                }
            }
            Ok(())
        });
        let read = read.and_then(|n| {
            cutter
                .map_or(Ok(()), |c| c.finish(&mut send_window))
                .map(|()| n)
        });
        recorded?;
        self.cancel.check()?;
        match read {
            Ok(n) if n == size => {}
            Ok(n) => {
                return Err(Error::entry(
                    path,
                    format!(
                        "{size} bytes declared, {n} bytes of content (did it change while being read?)"
                    ),
                ));
            }
            Err(e) => {
                if let Some(failure) = self.shared.take_failure() {
                    return Err(failure);
                }
                return Err(Error::entry(path, format!("reading content: {e}")));
            }
        }
        self.record_done()?;
        if let (Some(found), Some((slot, text))) = (self.readme.as_mut(), readme) {
            found.found[slot] = Some(text);
        }
        Ok(inode)
    }

    /// Records the chunk keys the workers have sent back so far.
    fn record_done(&mut self) -> Result<()> {
        let writer = self.writer.as_mut().expect("writer used after finish");
        Ok(record(writer, &self.done)?)
    }

    /// Waits for the workers, records the last keys and writes the flist.
    /// `routes` are recorded as where the chunks are, unless the caller's metadata names
    /// routes.
    pub(crate) fn finish(mut self, source: Source, routes: Vec<String>) -> Result<PackSummary> {
        self.stop_workers();
        if let Some(e) = self.shared.take_failure() {
            return Err(e);
        }
        self.record_done()?;
        let mut writer = self.writer.take().expect("finish called twice");
        let params = self.chunker.params();
        let metadata = writer.metadata_mut();
        *metadata = std::mem::take(&mut self.metadata);
        if let Some(text) = self.readme.take().and_then(Readme::text) {
            metadata.set_readme(&text);
        }
        if let Some(late) = &self.late_metadata {
            (late.0)(metadata).map_err(Error::Input)?;
        }
        metadata.set_chunker(&ChunkerInfo {
            algorithm: ChunkerParams::ALGORITHM.into(),
            min: params.min,
            avg: params.avg,
            max: params.max,
            normalization: ChunkerParams::NORMALIZATION_LEVEL,
        });
        metadata.set_hash(chunkstore::HASH_NAME);
        metadata.set_codec(chunkstore::CODEC_NAME);
        metadata.set_source(&source);
        if !routes.is_empty() && metadata.routes()?.is_empty() {
            metadata.set_routes(&routes);
        }
        let totals = writer.finish()?;
        let windows = self
            .windows
            .take()
            .map(|(collector, done)| collector.finish(&done))
            .unwrap_or_default();
        let p = &self.shared.progress;
        Ok(PackSummary {
            totals,
            input_bytes: Progress::get(&p.input_bytes),
            content_bytes: Progress::get(&p.content_bytes),
            chunks: Progress::get(&p.chunks),
            new_chunks: Progress::get(&p.new_chunks),
            stored_bytes: Progress::get(&p.stored_bytes),
            elapsed: self.started.elapsed(),
            windows,
        })
    }

    fn stop_workers(&mut self) {
        self.tasks = None;
        for worker in self.workers.drain(..) {
            if worker.join().is_err() {
                self.shared
                    .fail(Error::Worker("a pack worker panicked".into()));
            }
        }
    }
}

fn record(writer: &mut FlistWriter, done: &Receiver<ChunkDone>) -> flist::Result<()> {
    for done in done.try_iter() {
        writer.add_chunk(done.inode, done.seq, &done.chunk)?;
    }
    Ok(())
}

impl Drop for Packer {
    /// An abandoned pack stops its workers (they drop what is queued) and writes nothing.
    fn drop(&mut self) {
        self.shared.aborted.store(true, Ordering::Relaxed);
        self.stop_workers();
    }
}

fn work(tasks: &Receiver<Task>, done: &Sender<ChunkDone>, shared: &Shared) -> Result<()> {
    let mut codec = Codec::new(shared.level)?;
    let mut batch: Vec<(ChunkTask, Chunk)> = Vec::new();
    let mut bytes = 0;
    loop {
        let next = if batch.is_empty() {
            tasks.recv().ok()
        } else {
            match tasks.recv_timeout(BATCH_WAIT) {
                Ok(task) => Some(task),
                Err(RecvTimeoutError::Timeout) => {
                    flush(&mut batch, &mut codec, done, shared)?;
                    bytes = 0;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => None,
            }
        };
        if shared.aborted.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut task = match next {
            None => break,
            Some(Task::Chunk(task)) => task,
            Some(Task::Window(window)) => {
                if let Some(windows) = &shared.windows {
                    // The receiver only goes away when the pack was abandoned.
                    let _ = windows.send(window.hash());
                }
                continue;
            }
        };
        let chunk = Chunk::new(std::mem::take(&mut task.data));
        bytes += chunk.data().len();
        batch.push((task, chunk));
        if bytes >= BATCH_BYTES || batch.len() >= BATCH_CHUNKS {
            flush(&mut batch, &mut codec, done, shared)?;
            bytes = 0;
        }
    }
    flush(&mut batch, &mut codec, done, shared)
}

/// Stores the chunks of a batch the store lacks and reports every chunk's key.
fn flush(
    batch: &mut Vec<(ChunkTask, Chunk)>,
    codec: &mut Codec,
    done: &Sender<ChunkDone>,
    shared: &Shared,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    // A key another worker (or this batch) already claimed is being stored or was stored.
    let claimed: Vec<&Chunk> = {
        let mut claims = shared.claims.lock().unwrap_or_else(|p| p.into_inner());
        if claims.len() > CLAIMS_CAPACITY {
            claims.clear();
        }
        batch
            .iter()
            .map(|(_, chunk)| chunk)
            .filter(|chunk| claims.insert(chunk.key()))
            .collect()
    };
    let keys: Vec<ChunkKey> = claimed.iter().map(|c| c.key()).collect();
    let present = if keys.is_empty() {
        Vec::new()
    } else {
        shared.runtime.block_on(shared.store.has_many(&keys))?
    };
    if present.len() != keys.len() {
        // A short answer must not be read as "everything else is stored".
        return Err(Error::Input(format!(
            "{}: the store answered {} of {} existence checks",
            shared.store.location(),
            present.len(),
            keys.len()
        )));
    }
    let missing: Vec<EncodedChunk> = claimed
        .iter()
        .zip(present)
        .filter(|(_, present)| !present)
        .map(|(chunk, _)| codec.encode(chunk))
        .collect::<chunkstore::Result<_>>()?;
    if !missing.is_empty() {
        shared.runtime.block_on(shared.store.put_many(&missing))?;
    }
    let progress = &shared.progress;
    Progress::add(&progress.chunks, batch.len() as u64);
    Progress::add(&progress.new_chunks, missing.len() as u64);
    Progress::add(
        &progress.stored_bytes,
        missing.iter().map(|c| c.len() as u64).sum(),
    );
    for (task, chunk) in batch.drain(..) {
        let chunk = ChunkRef {
            key: *chunk.key().as_bytes(),
            offset: task.offset,
            // Chunks never exceed the chunker's maximum, itself at most 4 MiB.
            length: chunk.data().len() as u32,
        };
        // The receiver only goes away when the pack was abandoned.
        let _ = done.send(ChunkDone {
            inode: task.inode,
            seq: task.seq,
            chunk,
        });
    }
    Ok(())
}
