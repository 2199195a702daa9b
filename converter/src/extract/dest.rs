//! The destination directory, reached without ever following a symlink, and the ways of
//! making entries in it.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Directory handles from the destination down to the directory last used.
///
/// Every handle is opened relative to its parent's with `O_NOFOLLOW`, so it is always below
/// the destination, whatever symlinks the destination holds. Entries come in walk order
/// (depth first), so the stack mostly holds the directory needed, and each directory of the
/// tree is opened once per pass rather than once per path component of every file.
pub(super) struct Dest {
    /// (path relative to the destination, handle); the destination itself at the bottom.
    stack: Vec<(Vec<u8>, Arc<OwnedFd>)>,
}

impl Dest {
    pub(super) fn new(root: Arc<OwnedFd>) -> Dest {
        Dest {
            stack: vec![(Vec::new(), root)],
        }
    }

    /// The directory `dir` (relative, `/`-separated).
    pub(super) fn dir(&mut self, dir: &[u8]) -> io::Result<Arc<OwnedFd>> {
        while self.stack.len() > 1 && !within(dir, &self.stack[self.stack.len() - 1].0) {
            self.stack.pop();
        }
        let depth = self.stack[self.stack.len() - 1].0.len();
        let rest = dir[depth..].strip_prefix(b"/").unwrap_or(&dir[depth..]);
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        for name in rest.split(|&b| b == b'/').filter(|n| !n.is_empty()) {
            let (path, parent) = &self.stack[self.stack.len() - 1];
            let fd = rustix::fs::openat(
                parent.as_fd(),
                OsStr::from_bytes(name),
                flags,
                Mode::empty(),
            )?;
            let path = super::join(path, name);
            self.stack.push((path, Arc::new(fd)));
        }
        Ok(Arc::clone(&self.stack[self.stack.len() - 1].1))
    }

    /// The directory holding `path`, and the entry's name in it (for the root itself, the
    /// root and `.`).
    pub(super) fn parent<'p>(&mut self, path: &'p [u8]) -> io::Result<(Arc<OwnedFd>, &'p OsStr)> {
        if path.is_empty() {
            return Ok((Arc::clone(&self.stack[0].1), OsStr::new(".")));
        }
        let (dir, name) = super::split(path);
        Ok((self.dir(dir)?, OsStr::from_bytes(name)))
    }

    /// A path for APIs that only take paths (xattrs of non-files): through the directory
    /// handle's /proc link, so that only the last component is looked up.
    pub(super) fn proc_path(dir: &OwnedFd, name: &OsStr) -> PathBuf {
        use std::os::fd::AsRawFd;
        Path::new("/proc/self/fd")
            .join(dir.as_raw_fd().to_string())
            .join(name)
    }
}

/// Whether `dir` is `ancestor` or below it.
fn within(dir: &[u8], ancestor: &[u8]) -> bool {
    ancestor.is_empty()
        || (dir.starts_with(ancestor)
            && (dir.len() == ancestor.len() || dir[ancestor.len()] == b'/'))
}

/// Makes an entry with `make`; if something is already there, removes it (unless it is a
/// directory, which is an error) and tries again. Trying first saves a `stat` per entry when
/// extracting into an empty directory, the common case.
pub(super) fn replacing<T>(
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

/// Directories start private to the extracting user; their mode is set in the second
/// pass. An existing directory is made writable the same way when it is ours (a read-only
/// one from an earlier extraction could not be filled otherwise), as tar does.
pub(super) fn make_dir(dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
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

pub(super) fn make_node(
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

/// A new regular file, open for writing (never through a symlink: `O_EXCL` with
/// `O_CREAT` refuses one, and `replacing` removes what is in the way).
pub(super) fn make_file(dir: &OwnedFd, name: &OsStr, mode: Mode) -> io::Result<OwnedFd> {
    replacing(dir, name, || {
        rustix::fs::openat(
            dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            mode,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_opened_once_in_walk_order() {
        let root = tempfile::tempdir().unwrap();
        for d in ["a/b/c", "a/x", "z"] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        let fd =
            rustix::fs::open(root.path(), OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let mut dest = Dest::new(Arc::new(fd));
        dest.dir(b"a/b/c").unwrap();
        assert_eq!(dest.stack.len(), 4);
        dest.dir(b"a/x").unwrap();
        let paths: Vec<&[u8]> = dest.stack.iter().map(|(p, _)| p.as_slice()).collect();
        assert_eq!(paths, [&b""[..], b"a", b"a/x"]);
        dest.dir(b"").unwrap();
        assert_eq!(dest.stack.len(), 1);
        // A symlink is never followed, not even to a directory inside the destination.
        std::os::unix::fs::symlink("a", root.path().join("link")).unwrap();
        assert!(dest.dir(b"link/b").is_err());
        assert!(dest.dir(b"zz").is_err());
        assert!(!within(b"ab", b"a") && within(b"a/b", b"a") && within(b"a", b""));
    }
}
