//! The second pass: owners, modes, extended attributes and times, directories after their
//! contents (deepest first), so that creating an entry never disturbs its parent's mtime and
//! a read-only directory is filled before it becomes read-only. Files whose content could
//! not be written completely are removed instead.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;

use flist::{Entry, NodeKind, Walk};
use rustix::fs::{AtFlags, Mode, Timespec, Timestamps, UTIME_OMIT};

use super::dest::Dest;
use super::source::Tree;
use super::{Problems, show};
use crate::error::Result;

/// Second pass: owners, modes, xattrs and times; directories after their contents.
pub(super) struct Attributes<'a> {
    pub(super) flist: &'a dyn Tree,
    pub(super) dest: Dest,
    pub(super) preserve_owner: bool,
    /// The umask entries were created under, if known.
    pub(super) umask: Option<u32>,
    /// Entries the first pass could not create (their subtrees were not created either).
    pub(super) failed: &'a HashSet<Vec<u8>>,
    /// Files whose content could not be written completely: removed, every name.
    pub(super) incomplete: &'a HashSet<u64>,
    pub(super) problems: &'a Mutex<Problems>,
}

impl Attributes<'_> {
    pub(super) fn run(mut self, warnings: &mut Vec<String>) -> Result<()> {
        let mut dirs: Vec<(Vec<u8>, Entry)> = Vec::new();
        let mut done: HashSet<u64> = HashSet::new();
        let mut files: Vec<(Vec<u8>, Entry)> = Vec::new();
        let flist = self.flist;
        flist.walk(&mut |path, entry| {
            if self.failed.contains(path) {
                return Ok(Walk::SkipChildren);
            }
            if !entry.is_dir() && self.incomplete.contains(&entry.ino) {
                self.remove(path);
                return Ok(Walk::Continue);
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

    /// Removes a file that could not be written completely, so that nothing takes it for
    /// the real one (it would have the right size or mode and mtime otherwise). The
    /// problem was reported when the content failed.
    fn remove(&mut self, path: &[u8]) {
        let removed = self
            .dest
            .parent(path)
            .and_then(|(dir, name)| Ok(rustix::fs::unlinkat(&dir, name, AtFlags::empty())?));
        if let Err(e) = removed {
            Problems::push(
                self.problems,
                format!("{}: removing the incomplete file: {e}", show(path)),
            );
        }
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
        let through_dir = Dest::proc_path(&dir, name);
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
