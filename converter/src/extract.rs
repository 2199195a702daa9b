//! Flists back into directory trees.
//!
//! Two passes over the flist. The first creates every entry (directories private to the
//! extracting user for now, files at their final size) and hands the chunks of each file to
//! worker threads, which fetch them from the store in batches, verify them, and write them at
//! their offsets. The second sets ownership (when run as root), modes, extended attributes
//! and times, directories last and deepest first, so that creating an entry never disturbs
//! its parent's mtime and a read-only directory is filled before it becomes read-only.
//!
//! Problems with single entries (a missing or corrupt chunk, a device node without the right
//! to make one) are collected, the rest of the tree is still extracted, and the result is an
//! error listing them, as `tar` does. Attributes the filesystem cannot hold (some xattrs) are
//! warnings.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chunkstore::{ChunkKey, ChunkStore, Codec};
use flist::{ChunkRef, Entry, Flist, NodeKind, Walk};
use rustix::fs::{AtFlags, CWD, FileType, Mode, Timespec, Timestamps, UTIME_OMIT};
use tokio::runtime::Handle;

use crate::error::{Error, Result};
use crate::progress::Progress;

/// A fetch batch holds at most this many plaintext bytes or chunks. The chunk bound also
/// bounds the files held open by batches in flight, well below the usual 1024 descriptors.
const BATCH_BYTES: u64 = 8 << 20;
const BATCH_CHUNKS: usize = 128;
/// Problems listed in the final error; the rest are counted.
const MAX_PROBLEMS: usize = 100;

/// How to extract.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Fetch threads; 0 means one per CPU (at least two, since they mostly wait on I/O).
    pub workers: usize,
    /// Restore owners; `None` means when running as root, as `tar` does.
    pub preserve_owner: Option<bool>,
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

struct Fetch {
    file: Arc<File>,
    path: Arc<[u8]>,
    seq: usize,
    chunk: ChunkRef,
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

pub(crate) fn extract_tree(
    flist: &Path,
    dest: &Path,
    store: Arc<dyn ChunkStore>,
    runtime: Handle,
    options: ExtractOptions,
    progress: Arc<Progress>,
) -> Result<ExtractSummary> {
    let started = Instant::now();
    let flist = Flist::open(flist)?;
    let preserve_owner = options
        .preserve_owner
        .unwrap_or_else(|| rustix::process::geteuid().is_root());
    fs::create_dir_all(dest).map_err(|e| Error::io(dest.display(), e))?;
    let problems = Arc::new(Mutex::new(Problems::default()));

    let workers = match options.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get().max(2)),
        n => n,
    };
    let (batches, batch_rx) = crossbeam_channel::bounded::<Vec<Fetch>>(workers);
    let handles: Vec<_> = (0..workers)
        .map(|i| {
            let (rx, store, runtime, problems, progress) = (
                batch_rx.clone(),
                Arc::clone(&store),
                runtime.clone(),
                Arc::clone(&problems),
                Arc::clone(&progress),
            );
            std::thread::Builder::new()
                .name(format!("extract-worker-{i}"))
                .spawn(move || fetch_worker(&rx, &*store, &runtime, &problems, &progress))
                .map_err(|e| Error::io("spawning an extract worker", e))
        })
        .collect::<Result<_>>()?;
    drop(batch_rx);

    let mut summary = ExtractSummary::default();
    let created = create_entries(&flist, dest, &batches, &problems, &progress, &mut summary);
    drop(batches);
    for handle in handles {
        if handle.join().is_err() {
            Problems::push(&problems, "an extract worker panicked".into());
        }
    }
    created?;
    set_attributes(
        &flist,
        dest,
        preserve_owner,
        &problems,
        &mut summary.warnings,
    )?;

    let problems = std::mem::take(&mut *problems.lock().unwrap_or_else(|e| e.into_inner()));
    if problems.count > 0 {
        let mut listed = problems.listed;
        if problems.count > listed.len() {
            listed.push(format!("... and {} more", problems.count - listed.len()));
        }
        return Err(Error::Extract(listed));
    }
    summary.chunks = Progress::get(&progress.chunks);
    summary.elapsed = started.elapsed();
    Ok(summary)
}

fn target_of(dest: &Path, path: &[u8]) -> PathBuf {
    dest.join(OsStr::from_bytes(path))
}

fn show(path: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(path))
}

/// First pass: create every entry and queue the content of every file.
fn create_entries(
    flist: &Flist,
    dest: &Path,
    batches: &crossbeam_channel::Sender<Vec<Fetch>>,
    problems: &Mutex<Problems>,
    progress: &Progress,
    summary: &mut ExtractSummary,
) -> Result<()> {
    // Inode -> first path, for inodes with several names.
    let mut first_names: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut batch: Vec<Fetch> = Vec::new();
    let mut batch_bytes = 0u64;
    flist.walk(|path, entry| {
        if path.is_empty() {
            return Ok(Walk::Continue);
        }
        summary.entries += 1;
        Progress::add(&progress.entries, 1);
        let target = target_of(dest, path);
        if entry.nlink > 1 && !entry.is_dir() {
            if let Some(first) = first_names.get(&entry.ino) {
                let made = replacing(&target, || fs::hard_link(target_of(dest, first), &target));
                if let Err(e) = made {
                    Problems::push(problems, format!("{}: hardlink: {e}", show(path)));
                }
                return Ok(Walk::Continue);
            }
            first_names.insert(entry.ino, path.to_vec());
        }
        let mode = entry.node.mode & 0o777;
        let made = match &entry.node.kind {
            NodeKind::Directory => make_dir(&target),
            NodeKind::Regular { size } => {
                let chunks = flist.chunks(entry.ino)?;
                match create_file(&target, mode, *size, chunks.len()) {
                    Ok(file) => {
                        summary.files += 1;
                        summary.bytes += size;
                        let file = Arc::new(file);
                        let shared_path: Arc<[u8]> = Arc::from(path);
                        for (seq, chunk) in chunks.into_iter().enumerate() {
                            batch_bytes += u64::from(chunk.length);
                            batch.push(Fetch {
                                file: Arc::clone(&file),
                                path: Arc::clone(&shared_path),
                                seq,
                                chunk,
                            });
                            if batch_bytes >= BATCH_BYTES || batch.len() >= BATCH_CHUNKS {
                                batch_bytes = 0;
                                send(batches, std::mem::take(&mut batch));
                            }
                        }
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            NodeKind::Symlink { target: link } => replacing(&target, || {
                std::os::unix::fs::symlink(OsStr::from_bytes(link), &target)
            }),
            NodeKind::CharDevice { major, minor } => {
                make_node(&target, FileType::CharacterDevice, mode, *major, *minor)
            }
            NodeKind::BlockDevice { major, minor } => {
                make_node(&target, FileType::BlockDevice, mode, *major, *minor)
            }
            NodeKind::Fifo => make_node(&target, FileType::Fifo, mode, 0, 0),
            NodeKind::Socket => make_node(&target, FileType::Socket, mode, 0, 0),
        };
        match made {
            Ok(()) => Ok(Walk::Continue),
            Err(e) => {
                Problems::push(problems, format!("{}: {e}", show(path)));
                Ok(Walk::SkipChildren)
            }
        }
    })?;
    if !batch.is_empty() {
        send(batches, batch);
    }
    Ok(())
}

fn send(batches: &crossbeam_channel::Sender<Vec<Fetch>>, batch: Vec<Fetch>) {
    // The workers only stop early if they panicked, which is reported after the walk.
    let _ = batches.send(batch);
}

/// Makes an entry with `make`; if something is already there, removes it (unless it is a
/// directory, which is an error) and tries again. Trying first saves a `stat` per entry when
/// extracting into an empty directory, the common case.
fn replacing<T>(target: &Path, make: impl Fn() -> io::Result<T>) -> io::Result<T> {
    match make() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if fs::symlink_metadata(target)?.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a directory is in the way",
                ));
            }
            fs::remove_file(target)?;
            make()
        }
        other => other,
    }
}

/// Directories start private to the extracting user; their mode is set in the second pass.
fn make_dir(target: &Path) -> io::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(target) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if fs::symlink_metadata(target)?.is_dir() {
                return Ok(());
            }
            fs::remove_file(target)?;
            fs::DirBuilder::new().mode(0o700).create(target)
        }
        other => other,
    }
}

/// Creates a file with its final permission bits (the descriptor stays writable whatever
/// they are), sized in advance when several chunks will be written at their offsets.
fn create_file(target: &Path, mode: u32, size: u64, chunks: usize) -> io::Result<File> {
    // create_new (O_EXCL) never follows a symlink standing at the target.
    let file = replacing(target, || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(target)
    })?;
    if chunks > 1 {
        file.set_len(size)?;
    }
    Ok(file)
}

fn make_node(target: &Path, kind: FileType, mode: u32, major: u32, minor: u32) -> io::Result<()> {
    let dev = rustix::fs::makedev(major, minor);
    replacing(target, || {
        rustix::fs::mknodat(CWD, target, kind, Mode::from_raw_mode(mode), dev)
            .map_err(io::Error::from)
    })
}

fn fetch_worker(
    batches: &crossbeam_channel::Receiver<Vec<Fetch>>,
    store: &dyn ChunkStore,
    runtime: &Handle,
    problems: &Mutex<Problems>,
    progress: &Progress,
) {
    let mut codec = match Codec::new(chunkstore::DEFAULT_LEVEL) {
        Ok(codec) => codec,
        Err(e) => return Problems::push(problems, e.to_string()),
    };
    for batch in batches {
        let keys: Vec<ChunkKey> = batch.iter().map(|f| ChunkKey::from(f.chunk.key)).collect();
        let stored = match runtime.block_on(store.get_many(&keys)) {
            Ok(stored) => stored,
            Err(e) => {
                for f in &batch {
                    Problems::push(problems, format!("{}: {e}", describe(f)));
                }
                continue;
            }
        };
        for (fetch, stored) in batch.iter().zip(stored) {
            let written = match stored {
                None => Err(format!("missing chunk {}", ChunkKey::from(fetch.chunk.key))),
                Some(bytes) => codec
                    .decode(&ChunkKey::from(fetch.chunk.key), &bytes)
                    .map_err(|e| e.to_string())
                    .and_then(|data| {
                        fetch
                            .file
                            .write_all_at(&data, fetch.chunk.offset)
                            .map_err(|e| format!("writing: {e}"))
                    }),
            };
            match written {
                Ok(()) => {
                    Progress::add(&progress.chunks, 1);
                    Progress::add(&progress.content_bytes, u64::from(fetch.chunk.length));
                }
                Err(e) => Problems::push(problems, format!("{}: {e}", describe(fetch))),
            }
        }
    }
}

fn describe(fetch: &Fetch) -> String {
    format!(
        "{} (chunk {} at offset {})",
        show(&fetch.path),
        fetch.seq,
        fetch.chunk.offset
    )
}

/// Second pass: owners, modes, xattrs and times; directories after their contents.
fn set_attributes(
    flist: &Flist,
    dest: &Path,
    preserve_owner: bool,
    problems: &Mutex<Problems>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let umask = process_umask();
    let mut dirs: Vec<(Vec<u8>, Entry)> = Vec::new();
    let mut done: HashSet<u64> = HashSet::new();
    let mut apply = |path: &[u8], entry: &Entry| -> flist::Result<()> {
        let target = target_of(dest, path);
        let xattrs = flist.xattrs(entry.ino)?;
        let attrs = Attributes {
            preserve_owner,
            umask,
        };
        match attrs.apply(&target, entry, &xattrs, warnings) {
            Ok(()) => {}
            // Not created in the first pass, which reported why.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => Problems::push(problems, format!("{}: {e}", show(path))),
        }
        Ok(())
    };
    flist.walk(|path, entry| {
        if entry.is_dir() {
            dirs.push((path.to_vec(), entry.clone()));
        } else if entry.nlink < 2 || done.insert(entry.ino) {
            apply(path, entry)?;
        }
        Ok(Walk::Continue)
    })?;
    for (path, entry) in dirs.iter().rev() {
        apply(path, entry)?;
    }
    Ok(())
}

struct Attributes {
    preserve_owner: bool,
    /// The umask entries were created under, if known.
    umask: Option<u32>,
}

impl Attributes {
    fn apply(
        &self,
        target: &Path,
        entry: &Entry,
        xattrs: &[flist::Xattr],
        warnings: &mut Vec<String>,
    ) -> io::Result<()> {
        let node = &entry.node;
        let is_link = matches!(node.kind, NodeKind::Symlink { .. });
        if self.preserve_owner {
            rustix::fs::chownat(
                CWD,
                target,
                Some(rustix::fs::Uid::from_raw(node.uid)),
                Some(rustix::fs::Gid::from_raw(node.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )?;
        }
        // Files and nodes were created with their permission bits; the umask may have taken
        // some away, and setuid, setgid and sticky bits are set only now, after chown
        // (which clears them). Directories were created private and always need it.
        let created_exactly = !entry.is_dir()
            && node.mode & 0o7000 == 0
            && self.umask.is_some_and(|umask| node.mode & umask == 0);
        if !is_link && !created_exactly {
            rustix::fs::chmodat(
                CWD,
                target,
                Mode::from_raw_mode(node.mode),
                AtFlags::empty(),
            )?;
        }
        for x in xattrs {
            if let Err(e) = xattr::set(target, OsStr::from_bytes(&x.name), &x.value) {
                warnings.push(format!(
                    "{}: xattr {}: {e}",
                    target.display(),
                    String::from_utf8_lossy(&x.name)
                ));
            }
        }
        let times = Timestamps {
            last_access: Timespec {
                tv_sec: 0,
                tv_nsec: UTIME_OMIT,
            },
            last_modification: Timespec {
                tv_sec: node.mtime.secs,
                tv_nsec: i64::from(node.mtime.nanos) as _,
            },
        };
        rustix::fs::utimensat(CWD, target, &times, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }
}

/// The process umask, read without changing it (`umask(2)` can only be read by setting it,
/// which would race with other threads). `None` where /proc does not say.
fn process_umask() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}
