//! Flists back into directory trees.
//!
//! Two passes over the flist. The first creates every entry (directories private to the
//! extracting user for now, files at their final size, then closed) and hands the chunks of
//! each file to worker threads, which fetch them from the store in batches, verify them, and
//! write them at their offsets. The second sets ownership (when run as root), modes,
//! extended attributes and times, directories last and deepest first, so that creating an
//! entry never disturbs its parent's mtime and a read-only directory is filled before it
//! becomes read-only.
//!
//! Every operation is made relative to a directory handle opened one component at a time
//! with `O_NOFOLLOW`, starting from the destination: a symlink already in the destination
//! (from an earlier extraction, or put there by someone else) is never followed, so nothing
//! outside the destination is created or changed, whatever the flist and the destination
//! hold. Entries that could not be created are skipped, with everything below them, in the
//! second pass.
//!
//! Problems with single entries (a missing or corrupt chunk, a device node without the right
//! to make one) are collected, the rest of the tree is still extracted, and the result is an
//! error listing them, as `tar` does. Attributes the filesystem cannot hold (some xattrs) are
//! warnings.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chunkstore::{ChunkKey, ChunkStore, Codec};
use flist::{ChunkRef, Entry, Flist, NodeKind, Walk};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, UTIME_OMIT};
use rustix::io::Errno;
use tokio::runtime::Handle;

use crate::Cancel;
use crate::error::{Error, Result};
use crate::progress::Progress;

/// A fetch batch holds at most this many plaintext bytes or chunks.
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

/// One chunk to fetch and write.
struct Fetch {
    /// The file's path below the destination.
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
    std::fs::create_dir_all(dest).map_err(|e| Error::io(dest.display(), e))?;
    let root = Arc::new(
        rustix::fs::open(
            dest,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(dest.display(), e.into()))?,
    );
    let problems = Arc::new(Mutex::new(Problems::default()));

    let workers = match options.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get().max(2)),
        n => n,
    };
    let (batches, batch_rx) = crossbeam_channel::bounded::<Vec<Fetch>>(workers);
    let handles: Vec<_> = (0..workers)
        .map(|i| {
            let worker = FetchWorker {
                dest: Dest::new(Arc::clone(&root)),
                store: Arc::clone(&store),
                runtime: runtime.clone(),
                problems: Arc::clone(&problems),
                progress: Arc::clone(&progress),
                cancel: options.cancel.clone(),
            };
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
    let mut creator = Creator {
        flist: &flist,
        dest: Dest::new(Arc::clone(&root)),
        batches,
        problems: &problems,
        progress: &progress,
        cancel: &options.cancel,
        failed: &mut failed,
        summary: &mut summary,
    };
    let created = creator.run();
    drop(creator); // closes the batch channel: the workers finish and stop
    for handle in handles {
        if handle.join().is_err() {
            Problems::push(&problems, "an extract worker panicked".into());
        }
    }
    created?;
    options.cancel.check()?;
    let attributes = Attributes {
        flist: &flist,
        dest: Dest::new(Arc::clone(&root)),
        preserve_owner,
        umask: process_umask(),
        failed: &failed,
        problems: &problems,
    };
    attributes.run(&mut summary.warnings)?;

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

fn show(path: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(path))
}

fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

/// The destination directory, reached without ever following a symlink.
struct Dest {
    root: Arc<OwnedFd>,
    /// The directory last opened, and its path: consecutive entries of a walk mostly share
    /// their directory.
    cached: Option<(Vec<u8>, Arc<OwnedFd>)>,
}

impl Dest {
    fn new(root: Arc<OwnedFd>) -> Dest {
        Dest { root, cached: None }
    }

    /// The directory `dir` (relative, `/`-separated), opened component by component with
    /// `O_NOFOLLOW`, so that it is always below the destination.
    fn dir(&mut self, dir: &[u8]) -> io::Result<Arc<OwnedFd>> {
        if dir.is_empty() {
            return Ok(Arc::clone(&self.root));
        }
        if let Some((cached, fd)) = &self.cached
            && cached == dir
        {
            return Ok(Arc::clone(fd));
        }
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut fd: Option<OwnedFd> = None;
        for name in dir.split(|&b| b == b'/') {
            let parent = fd.as_ref().map_or(self.root.as_fd(), |f| f.as_fd());
            fd = Some(rustix::fs::openat(
                parent,
                OsStr::from_bytes(name),
                flags,
                Mode::empty(),
            )?);
        }
        let fd = Arc::new(fd.ok_or_else(|| io::Error::other("empty directory path"))?);
        self.cached = Some((dir.to_vec(), Arc::clone(&fd)));
        Ok(fd)
    }

    /// The directory holding `path`, and the entry's name in it (for the root itself, the
    /// root and `.`).
    fn parent<'p>(&mut self, path: &'p [u8]) -> io::Result<(Arc<OwnedFd>, &'p OsStr)> {
        if path.is_empty() {
            return Ok((Arc::clone(&self.root), OsStr::new(".")));
        }
        let (dir, name) = split(path);
        Ok((self.dir(dir)?, OsStr::from_bytes(name)))
    }

    /// A path for APIs that only take paths (xattrs of non-files): through the directory
    /// handle's /proc link, so that only the last component is looked up.
    fn proc_path(&self, dir: &OwnedFd, name: &OsStr) -> PathBuf {
        use std::os::fd::AsRawFd;
        Path::new("/proc/self/fd")
            .join(dir.as_raw_fd().to_string())
            .join(name)
    }
}

/// Makes an entry with `make`; if something is already there, removes it (unless it is a
/// directory, which is an error) and tries again. Trying first saves a `stat` per entry when
/// extracting into an empty directory, the common case.
fn replacing<T>(
    dir: &OwnedFd,
    name: &OsStr,
    make: impl Fn() -> rustix::io::Result<T>,
) -> io::Result<T> {
    match make() {
        Err(Errno::EXIST) => {
            let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
            if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a directory is in the way",
                ));
            }
            rustix::fs::unlinkat(dir, name, AtFlags::empty())?;
            Ok(make()?)
        }
        other => Ok(other?),
    }
}

/// First pass: creates every entry and queues the content of every file.
struct Creator<'a> {
    flist: &'a Flist,
    dest: Dest,
    batches: crossbeam_channel::Sender<Vec<Fetch>>,
    problems: &'a Mutex<Problems>,
    progress: &'a Progress,
    cancel: &'a Cancel,
    failed: &'a mut HashSet<Vec<u8>>,
    summary: &'a mut ExtractSummary,
}

impl Creator<'_> {
    fn run(&mut self) -> Result<()> {
        // Inode -> first path, for inodes with several names.
        let mut first_names: HashMap<u64, Vec<u8>> = HashMap::new();
        let mut batch: Vec<Fetch> = Vec::new();
        let mut batch_bytes = 0u64;
        let mut cancelled = false;
        let flist = self.flist;
        flist.walk(|path, entry| {
            if self.cancel.is_cancelled() {
                cancelled = true;
                return Ok(Walk::SkipChildren);
            }
            if path.is_empty() {
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
                    self.create(path, entry, &mut batch, &mut batch_bytes)
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
        if !batch.is_empty() {
            self.send(batch);
        }
        if cancelled {
            return Err(Error::Cancelled);
        }
        Ok(())
    }

    fn send(&self, batch: Vec<Fetch>) {
        // The workers only stop early if they panicked, which is reported after the walk.
        let _ = self.batches.send(batch);
    }

    fn hardlink(&mut self, first: &[u8], path: &[u8]) -> Result<(), CreateError> {
        let (from_dir, from_name) = self.dest.parent(first)?;
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
        batch: &mut Vec<Fetch>,
        batch_bytes: &mut u64,
    ) -> Result<(), CreateError> {
        let (dir, name) = self.dest.parent(path)?;
        // Files and nodes get their permission bits now (the umask may take some away;
        // the second pass corrects that, and adds setuid, setgid and sticky bits).
        let mode = Mode::from_raw_mode(entry.node.mode & 0o777);
        match &entry.node.kind {
            NodeKind::Directory => make_dir(&dir, name)?,
            NodeKind::Regular { size } => {
                let chunks = self.flist.chunks(entry)?;
                let file = replacing(&dir, name, || {
                    rustix::fs::openat(
                        &dir,
                        name,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        mode,
                    )
                })?;
                // Sized now, so that chunks can be written at their offsets in any order.
                if chunks.len() > 1 {
                    rustix::fs::ftruncate(&file, *size)?;
                }
                drop(file);
                self.summary.files += 1;
                self.summary.bytes += size;
                let shared: Arc<[u8]> = Arc::from(path);
                for (seq, chunk) in chunks.into_iter().enumerate() {
                    *batch_bytes += u64::from(chunk.length);
                    batch.push(Fetch {
                        path: Arc::clone(&shared),
                        seq,
                        chunk,
                    });
                    if *batch_bytes >= BATCH_BYTES || batch.len() >= BATCH_CHUNKS {
                        *batch_bytes = 0;
                        self.send(std::mem::take(batch));
                    }
                }
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

/// Directories start private to the extracting user; their mode is set in the second
/// pass. An existing directory is made writable the same way when it is ours (a read-only
/// one from an earlier extraction could not be filled otherwise), as tar does.
fn make_dir(dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    let private = Mode::from_raw_mode(0o700);
    match rustix::fs::mkdirat(dir, name, private) {
        Err(Errno::EXIST) => {
            let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
            if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
                // Someone else's directory stays as it is; if we cannot write into it,
                // its entries will say so.
                let _ = rustix::fs::chmodat(dir, name, private, AtFlags::empty());
            } else {
                rustix::fs::unlinkat(dir, name, AtFlags::empty())?;
                rustix::fs::mkdirat(dir, name, private)?;
            }
            Ok(())
        }
        other => Ok(other?),
    }
}

fn make_node(
    dir: &OwnedFd,
    name: &OsStr,
    kind: FileType,
    mode: Mode,
    major: u32,
    minor: u32,
) -> io::Result<()> {
    let dev = rustix::fs::makedev(major, minor);
    replacing(dir, name, || {
        rustix::fs::mknodat(dir, name, kind, mode, dev)
    })
}

struct FetchWorker {
    dest: Dest,
    store: Arc<dyn ChunkStore>,
    runtime: Handle,
    problems: Arc<Mutex<Problems>>,
    progress: Arc<Progress>,
    cancel: Cancel,
}

impl FetchWorker {
    fn run(mut self, batches: &crossbeam_channel::Receiver<Vec<Fetch>>) {
        let mut codec = match Codec::new(chunkstore::DEFAULT_LEVEL) {
            Ok(codec) => codec,
            Err(e) => return Problems::push(&self.problems, e.to_string()),
        };
        for batch in batches {
            if self.cancel.is_cancelled() {
                continue; // drain without work so the walk can finish
            }
            let keys: Vec<ChunkKey> = batch.iter().map(|f| ChunkKey::from(f.chunk.key)).collect();
            let stored = match self.runtime.block_on(self.store.get_many(&keys)) {
                Ok(stored) if stored.len() == keys.len() => stored,
                Ok(stored) => {
                    self.report(
                        &batch[0],
                        format!(
                            "the store answered {} of {} chunks",
                            stored.len(),
                            keys.len()
                        ),
                    );
                    continue;
                }
                Err(e) => {
                    for f in &batch {
                        self.report(f, e.to_string());
                    }
                    continue;
                }
            };
            // Consecutive chunks of one file share an open handle.
            let mut open: Option<(Arc<[u8]>, File)> = None;
            for (fetch, stored) in batch.iter().zip(stored) {
                if open
                    .as_ref()
                    .is_none_or(|(path, _)| !Arc::ptr_eq(path, &fetch.path))
                {
                    open = match self.open(&fetch.path) {
                        Ok(file) => Some((Arc::clone(&fetch.path), file)),
                        Err(e) => {
                            self.report(fetch, format!("opening: {e}"));
                            None
                        }
                    };
                }
                let Some((_, file)) = &open else { continue };
                match write_chunk(&mut codec, file, fetch, stored) {
                    Ok(()) => {
                        Progress::add(&self.progress.chunks, 1);
                        Progress::add(&self.progress.content_bytes, u64::from(fetch.chunk.length));
                    }
                    Err(e) => self.report(fetch, e),
                }
            }
        }
    }

    fn open(&mut self, path: &[u8]) -> io::Result<File> {
        let (dir, name) = self.dest.parent(path)?;
        let fd = rustix::fs::openat(
            &dir,
            name,
            OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(File::from(fd))
    }

    fn report(&self, fetch: &Fetch, problem: String) {
        Problems::push(
            &self.problems,
            format!(
                "{} (chunk {} at offset {}): {problem}",
                show(&fetch.path),
                fetch.seq,
                fetch.chunk.offset
            ),
        );
    }
}

fn write_chunk(
    codec: &mut Codec,
    file: &File,
    fetch: &Fetch,
    stored: Option<bytes::Bytes>,
) -> std::result::Result<(), String> {
    let key = ChunkKey::from(fetch.chunk.key);
    let stored = stored.ok_or_else(|| format!("missing chunk {key}"))?;
    let data = codec.decode(&key, &stored).map_err(|e| e.to_string())?;
    if data.len() != fetch.chunk.length as usize {
        return Err(format!(
            "chunk {key} holds {} bytes, the flist says {}",
            data.len(),
            fetch.chunk.length
        ));
    }
    file.write_all_at(&data, fetch.chunk.offset)
        .map_err(|e| format!("writing: {e}"))
}

/// Second pass: owners, modes, xattrs and times; directories after their contents.
struct Attributes<'a> {
    flist: &'a Flist,
    dest: Dest,
    preserve_owner: bool,
    /// The umask entries were created under, if known.
    umask: Option<u32>,
    /// Entries the first pass could not create (their subtrees were not created either).
    failed: &'a HashSet<Vec<u8>>,
    problems: &'a Mutex<Problems>,
}

impl Attributes<'_> {
    fn run(mut self, warnings: &mut Vec<String>) -> Result<()> {
        let mut dirs: Vec<(Vec<u8>, Entry)> = Vec::new();
        let mut done: HashSet<u64> = HashSet::new();
        let mut files: Vec<(Vec<u8>, Entry)> = Vec::new();
        let flist = self.flist;
        flist.walk(|path, entry| {
            if self.failed.contains(path) {
                return Ok(Walk::SkipChildren);
            }
            if entry.is_dir() {
                dirs.push((path.to_vec(), entry.clone()));
            } else if entry.nlink < 2 || done.insert(entry.ino) {
                files.push((path.to_vec(), entry.clone()));
            }
            if files.len() >= 1024 {
                for (path, entry) in files.drain(..) {
                    self.apply(&path, &entry, warnings)?;
                }
            }
            Ok(Walk::Continue)
        })?;
        for (path, entry) in files.iter().chain(dirs.iter().rev()) {
            self.apply(path, entry, warnings)?;
        }
        Ok(())
    }

    fn apply(
        &mut self,
        path: &[u8],
        entry: &Entry,
        warnings: &mut Vec<String>,
    ) -> flist::Result<()> {
        let xattrs = self.flist.xattrs(entry.ino)?;
        match self.set(path, entry, &xattrs, warnings) {
            Ok(()) => {}
            // The destination itself may belong to someone else; its attributes are a
            // nicety, not part of the content.
            Err(e) if path.is_empty() => {
                warnings.push(format!("the destination's attributes: {e}"));
            }
            Err(e) => Problems::push(self.problems, format!("{}: {e}", show(path))),
        }
        Ok(())
    }

    fn set(
        &mut self,
        path: &[u8],
        entry: &Entry,
        xattrs: &[flist::Xattr],
        warnings: &mut Vec<String>,
    ) -> io::Result<()> {
        let node = &entry.node;
        // Directories were created private and always need it; files and nodes need it for
        // the bits the umask removed and for setuid, setgid and sticky, which must come
        // after chown (it clears them).
        let chmod = match &node.kind {
            NodeKind::Symlink { .. } => false,
            NodeKind::Directory => true,
            _ => node.mode & 0o7000 != 0 || self.umask.is_none_or(|umask| node.mode & umask != 0),
        };
        let owner = self.preserve_owner.then(|| {
            (
                rustix::fs::Uid::from_raw(node.uid),
                rustix::fs::Gid::from_raw(node.gid),
            )
        });
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
        let (dir, name) = self.dest.parent(path)?;
        // By name in a directory reached without following symlinks; the entry itself is
        // the one the first pass made (symlinks are never changed through: chown and times
        // do not follow, chmod is not applied to them).
        if let Some((uid, gid)) = owner {
            rustix::fs::chownat(&dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)?;
        }
        if chmod {
            rustix::fs::chmodat(&dir, name, Mode::from_raw_mode(node.mode), AtFlags::empty())?;
        }
        let through_dir = self.dest.proc_path(&dir, name);
        for x in xattrs {
            // lsetxattr: the last component itself, never a symlink's target.
            if let Err(e) = xattr::set(&through_dir, OsStr::from_bytes(&x.name), &x.value) {
                warnings.push(format!(
                    "{}: xattr {}: {e}",
                    show(path),
                    String::from_utf8_lossy(&x.name)
                ));
            }
        }
        rustix::fs::utimensat(&dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }
}

/// The process umask, read without changing it (`umask(2)` can only be read by setting it,
/// which would race with other threads). `None` where /proc does not say.
fn process_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}
