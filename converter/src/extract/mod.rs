//! Flists back into directory trees: native flists, and 0-flist and fl files (see `source`
//! for what differs: where the content comes from).
//!
//! One walk over the flist creates every entry (directories private to the extracting user
//! for now, files at their final size) and hands each new file's open handle and spans to
//! worker threads (see `content`), which read them in batches (chunks through the chunk
//! reader, or legacy blocks), verified, write them at their offsets, and set the file's
//! ownership, mode, extended attributes and times through the same handle once its content
//! is in (see `attributes`). Symlinks and nodes get theirs when they are made; directories
//! last, deepest first. Files whose content could not be written completely are removed,
//! every name of them, before that (a second walk, only when there are any).
//!
//! Every operation is made relative to a directory handle opened with `O_NOFOLLOW` from its
//! parent's, starting from the destination, or through the handle of a file created with
//! `O_CREAT | O_EXCL`: a symlink already in the destination (from an earlier extraction, or
//! put there by someone else) is never followed, so nothing outside the destination is
//! created or changed, whatever the flist and the destination hold. The walk is depth first,
//! so each directory is opened once (see `dest`). Entries that could not be created are
//! skipped, with everything below them.
//!
//! Problems with single entries (a missing or corrupt chunk, a device node without the right
//! to make one) are collected, the rest of the tree is still extracted, and the result is an
//! error listing the first few and counting all, as `tar` does. Attributes the filesystem
//! cannot hold (some xattrs) are warnings.

mod attributes;
mod content;
mod dest;
mod source;

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chunkstore::{ChunkReader, ChunkStore};
use flist::{Entry, Flist, NodeKind, Walk};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use tokio::runtime::Handle;

use crate::Cancel;
use crate::error::{Error, Result};
use crate::legacy::{BlockSource, LegacyFlist};
use crate::progress::Progress;
use attributes::Restore;
use content::{Piece, Target};
use dest::{Dest, make_dir, make_file, make_node, replacing};
use source::{Content, SpansOf, Tree, Xattrs};

/// A batch holds at most this many plaintext bytes or chunks (fewer files when open file
/// handles are scarce, see [`files_per_batch`]).
const BATCH_BYTES: u64 = 8 << 20;
const BATCH_CHUNKS: usize = 128;
/// Problems listed in the final error; all are counted.
const MAX_PROBLEMS: usize = 20;

/// How to extract.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Fetch threads; 0 means one per CPU (at least two, since they mostly wait on I/O).
    pub workers: usize,
    /// Restore owners; `None` means when running as root, as `tar` does.
    pub preserve_owner: Option<bool>,
    pub cancel: Cancel,
}

/// What an extraction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractSummary {
    pub entries: u64,
    /// Regular-file inodes written and their content bytes.
    pub files: u64,
    pub bytes: u64,
    pub chunks: u64,
    /// Attributes that could not be restored.
    pub warnings: Vec<String>,
    pub elapsed: Duration,
}

/// Problems found while extracting, shared with the workers.
#[derive(Default)]
struct Problems {
    listed: Vec<String>,
    count: usize,
}

impl Problems {
    fn push(list: &Mutex<Problems>, problem: String) {
        let mut p = list.lock().unwrap_or_else(|e| e.into_inner());
        p.count += 1;
        if p.listed.len() < MAX_PROBLEMS {
            p.listed.push(problem);
        }
    }
}

/// Recreates the native flist at `flist` under `dest`, reading chunks from `store`.
pub(crate) fn extract_native(
    flist: &Path,
    dest: &Path,
    store: Arc<dyn ChunkStore>,
    runtime: Handle,
    options: ExtractOptions,
    progress: Arc<Progress>,
) -> Result<ExtractSummary> {
    let flist = Flist::open(flist)?;
    let content = Content::Chunks(ChunkReader::new(store));
    extract_tree(&flist, content, dest, runtime, options, progress)
}

/// Recreates a 0-flist or fl file under `dest`, reading blocks from `blocks`.
pub(crate) fn extract_legacy(
    flist: &LegacyFlist,
    dest: &Path,
    blocks: Arc<dyn BlockSource>,
    runtime: Handle,
    options: ExtractOptions,
    progress: Arc<Progress>,
) -> Result<ExtractSummary> {
    let content = Content::Blocks(blocks);
    extract_tree(flist, content, dest, runtime, options, progress)
}

/// Recreates `flist` under `dest`, its files' content read from `content`.
fn extract_tree(
    flist: &dyn Tree,
    content: Content,
    dest: &Path,
    runtime: Handle,
    options: ExtractOptions,
    progress: Arc<Progress>,
) -> Result<ExtractSummary> {
    let started = Instant::now();
    let preserve_owner = options
        .preserve_owner
        .unwrap_or_else(|| rustix::process::geteuid().is_root());
    std::fs::create_dir_all(dest).map_err(|e| Error::io(dest.display(), e))?;
    let root = Arc::new(
        rustix::fs::open(
            dest,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(dest.display(), e.into()))?,
    );
    let workers = match options.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get().max(2)),
        n => n,
    };
    let restore = Restore {
        preserve_owner,
        umask: process_umask(),
    };
    let shared = content::Shared {
        content,
        runtime,
        problems: Arc::default(),
        incomplete: Arc::default(),
        progress: Arc::clone(&progress),
        cancel: options.cancel.clone(),
        restore,
        warnings: Arc::default(),
    };
    let (batches, batch_rx) = crossbeam_channel::bounded::<Vec<Piece>>(workers);
    let handles: Vec<_> = (0..workers)
        .map(|i| {
            let worker = shared.clone();
            let rx = batch_rx.clone();
            std::thread::Builder::new()
                .name(format!("extract-worker-{i}"))
                .spawn(move || worker.run(&rx))
                .map_err(|e| Error::io("spawning an extract worker", e))
        })
        .collect::<Result<_>>()?;
    drop(batch_rx);

    let mut summary = ExtractSummary::default();
    let mut failed: HashSet<Vec<u8>> = HashSet::new();
    let mut dirs = Vec::new();
    let xattrs = Xattrs::new(flist)?;
    let mut creator = Creator {
        flist,
        xattrs: &xattrs,
        dest: Dest::new(Arc::clone(&root)),
        links: Dest::new(Arc::clone(&root)),
        batches,
        files_per_batch: files_per_batch(workers),
        restore,
        problems: &shared.problems,
        progress: &progress,
        cancel: &options.cancel,
        failed: &mut failed,
        dirs: &mut dirs,
        summary: &mut summary,
    };
    let created = creator.run();
    drop(creator); // closes the batch channel: the workers finish and stop
    for handle in handles {
        if handle.join().is_err() {
            Problems::push(&shared.problems, "an extract worker panicked".into());
        }
    }
    created?;
    options.cancel.check()?;
    summary
        .warnings
        .append(&mut shared.warnings.lock().unwrap_or_else(|e| e.into_inner()));
    let incomplete =
        std::mem::take(&mut *shared.incomplete.lock().unwrap_or_else(|e| e.into_inner()));
    let mut dest = Dest::new(Arc::clone(&root));
    if !incomplete.is_empty() {
        attributes::remove_incomplete(flist, &mut dest, &failed, &incomplete, &shared.problems)?;
    }
    restore.directories(
        &xattrs,
        &mut dest,
        &dirs,
        &shared.problems,
        &mut summary.warnings,
    )?;

    let problems = std::mem::take(&mut *shared.problems.lock().unwrap_or_else(|e| e.into_inner()));
    if problems.count > 0 {
        return Err(Error::Extract {
            total: problems.count,
            listed: problems.listed,
        });
    }
    summary.chunks = Progress::get(&progress.chunks);
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Files per batch, so that the files held open (those of the batches queued, being
/// written, and being filled) stay within half the process's file limit.
fn files_per_batch(workers: usize) -> usize {
    let (limit, _) = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .map_or((1024, ()), |n| (n, ()));
    let batches_open = 2 * workers as u64 + 2;
    ((limit / 2) / batches_open).clamp(4, BATCH_CHUNKS as u64) as usize
}

fn show(path: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(path))
}

fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(dir.len() + 1 + name.len());
    if !dir.is_empty() {
        path.extend_from_slice(dir);
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

/// Creates every entry and queues the content of every file.
struct Creator<'a> {
    flist: &'a dyn Tree,
    xattrs: &'a Xattrs<'a>,
    dest: Dest,
    /// Where the first names of hardlinked files are looked up, apart from `dest` so that
    /// the walk's directory stack stays as it is.
    links: Dest,
    batches: crossbeam_channel::Sender<Vec<Piece>>,
    files_per_batch: usize,
    restore: Restore,
    problems: &'a Mutex<Problems>,
    progress: &'a Progress,
    cancel: &'a Cancel,
    failed: &'a mut HashSet<Vec<u8>>,
    /// Directories made (and the destination itself), in walk order, for their attributes.
    dirs: &'a mut Vec<(Vec<u8>, Entry)>,
    summary: &'a mut ExtractSummary,
}

/// The batch being filled.
#[derive(Default)]
struct Batch {
    pieces: Vec<Piece>,
    bytes: u64,
    files: usize,
}

impl Creator<'_> {
    fn run(&mut self) -> Result<()> {
        // Inode -> first path, for inodes with several names.
        let mut first_names: HashMap<u64, Vec<u8>> = HashMap::new();
        let mut batch = Batch::default();
        let mut cancelled = false;
        let flist = self.flist;
        flist.walk_spans(&mut |path, entry, spans| {
            if self.cancel.is_cancelled() {
                cancelled = true;
                return Ok(Walk::SkipChildren);
            }
            if path.is_empty() {
                self.dirs.push((Vec::new(), entry.clone()));
                return Ok(Walk::Continue);
            }
            self.summary.entries += 1;
            Progress::add(&self.progress.entries, 1);
            let linked = entry.nlink > 1 && !entry.is_dir();
            let made = match first_names.get(&entry.ino) {
                Some(first) if linked => self.hardlink(first, path),
                _ => {
                    if linked {
                        first_names.insert(entry.ino, path.to_vec());
                    }
                    self.create(path, entry, spans, &mut batch)
                }
            };
            match made {
                Ok(()) => Ok(Walk::Continue),
                Err(CreateError::Flist(e)) => Err(e),
                Err(CreateError::Io(e)) => {
                    Problems::push(self.problems, format!("{}: {e}", show(path)));
                    self.failed.insert(path.to_vec());
                    Ok(Walk::SkipChildren)
                }
            }
        })?;
        if !batch.pieces.is_empty() {
            self.send(batch.pieces);
        }
        if cancelled {
            return Err(Error::Cancelled);
        }
        Ok(())
    }

    fn send(&self, batch: Vec<Piece>) {
        // The workers only stop early if they panicked, which is reported after the walk.
        let _ = self.batches.send(batch);
    }

    fn hardlink(&mut self, first: &[u8], path: &[u8]) -> Result<(), CreateError> {
        let (from_dir, from_name) = self.links.parent(first)?;
        let (dir, name) = self.dest.parent(path)?;
        replacing(&dir, name, || {
            rustix::fs::linkat(&from_dir, from_name, &dir, name, AtFlags::empty())
        })?;
        Ok(())
    }

    fn create(
        &mut self,
        path: &[u8],
        entry: &Entry,
        spans: &mut SpansOf<'_>,
        batch: &mut Batch,
    ) -> Result<(), CreateError> {
        let (dir, name) = self.dest.parent(path)?;
        // Files and nodes get their permission bits now (the umask may take some away;
        // `Restore` corrects that, and adds setuid, setgid and sticky bits).
        let mode = Mode::from_raw_mode(entry.node.mode & 0o777);
        let node = &entry.node;
        match &node.kind {
            NodeKind::Directory => {
                make_dir(&dir, name)?;
                self.dirs.push((path.to_vec(), entry.clone()));
                return Ok(());
            }
            NodeKind::Regular { size } => {
                let spans = spans(entry)?;
                let file = make_file(&dir, name, mode)?;
                // Sized now, so that spans can be written at their offsets in any order.
                if spans.len() > 1 {
                    rustix::fs::ftruncate(&file, *size)?;
                }
                self.summary.files += 1;
                self.summary.bytes += size;
                let xattrs = self.xattrs.of(entry.ino)?;
                if spans.is_empty() {
                    let mut warn = |w| self.summary.warnings.push(format!("{}: {w}", show(path)));
                    self.restore.file(&file, node, &xattrs, &mut warn)?;
                    return Ok(());
                }
                // The handle goes to the workers, and closes after the file's last span.
                let target = Arc::new(Target::new(
                    path,
                    entry.ino,
                    File::from(file),
                    spans.len(),
                    node.clone(),
                    xattrs,
                ));
                batch.files += 1;
                for (seq, span) in spans.into_iter().enumerate() {
                    batch.bytes += u64::from(span.length);
                    batch.pieces.push(Piece {
                        target: Arc::clone(&target),
                        seq,
                        span,
                    });
                    if batch.bytes >= BATCH_BYTES
                        || batch.pieces.len() >= BATCH_CHUNKS
                        || batch.files >= self.files_per_batch
                    {
                        let full = std::mem::take(batch);
                        self.send(full.pieces);
                        // The rest of this file starts the next batch.
                        batch.files = 1;
                    }
                }
                // Its attributes come once its content is in (see `content`).
                return Ok(());
            }
            NodeKind::Symlink { target } => {
                replacing(&dir, name, || {
                    rustix::fs::symlinkat(OsStr::from_bytes(target), &dir, name)
                })?;
            }
            NodeKind::CharDevice { major, minor } => {
                make_node(&dir, name, FileType::CharacterDevice, mode, *major, *minor)?
            }
            NodeKind::BlockDevice { major, minor } => {
                make_node(&dir, name, FileType::BlockDevice, mode, *major, *minor)?
            }
            NodeKind::Fifo => make_node(&dir, name, FileType::Fifo, mode, 0, 0)?,
            NodeKind::Socket => make_node(&dir, name, FileType::Socket, mode, 0, 0)?,
        }
        // Nothing changes a symlink or a node once made: its attributes are final now.
        let xattrs = self.xattrs.of(entry.ino)?;
        let mut warn = |w| self.summary.warnings.push(format!("{}: {w}", show(path)));
        self.restore.by_name(&dir, name, node, &xattrs, &mut warn)?;
        Ok(())
    }
}

/// A problem with one entry (reported, the rest goes on) or with the flist (fatal).
enum CreateError {
    Io(io::Error),
    Flist(flist::Error),
}

impl From<io::Error> for CreateError {
    fn from(e: io::Error) -> Self {
        CreateError::Io(e)
    }
}

impl From<Errno> for CreateError {
    fn from(e: Errno) -> Self {
        CreateError::Io(e.into())
    }
}

impl From<flist::Error> for CreateError {
    fn from(e: flist::Error) -> Self {
        CreateError::Flist(e)
    }
}

/// The process umask, read without changing it (`umask(2)` can only be read by setting it,
/// which would race with other threads). `None` where /proc does not say.
fn process_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}
