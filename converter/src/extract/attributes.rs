//! Owners, modes, extended attributes and times, each set as soon as nothing can change
//! them any more, and the removal of files that could not be written completely.
//!
//! A regular file's are set through the handle it was created and written through, by the
//! worker that wrote its last span (at once for an empty file), as `tar` does: no lookup by
//! name, and the work is shared by the workers. Symlinks and nodes get theirs by name right
//! after they are made. Directories get theirs last, deepest first, once every entry in
//! them has been made and every incomplete file removed (both change a directory's mtime),
//! so that a read-only directory is also filled before it becomes read-only.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;

use flist::{Entry, Node, NodeKind, Walk, Xattr};
use rustix::fs::{AtFlags, Mode, Timespec, Timestamps, UTIME_OMIT, XattrFlags};

use super::dest::Dest;
use super::source::{Tree, Xattrs};
use super::{Problems, show};
use crate::error::Result;

/// How attributes are restored.
#[derive(Debug, Clone, Copy)]
pub(super) struct Restore {
    pub(super) preserve_owner: bool,
    /// The umask entries were created under, if known.
    pub(super) umask: Option<u32>,
}

impl Restore {
    /// Whether the mode needs setting after creation. Directories were created private and
    /// always do; files and nodes for the bits the umask removed and for setuid, setgid and
    /// sticky, which must come after chown (it clears them). Symlinks have no mode.
    fn chmod(&self, node: &Node) -> bool {
        match &node.kind {
            NodeKind::Symlink { .. } => false,
            NodeKind::Directory => true,
            _ => node.mode & 0o7000 != 0 || self.umask.is_none_or(|umask| node.mode & umask != 0),
        }
    }

    fn owner(&self, node: &Node) -> Option<(rustix::fs::Uid, rustix::fs::Gid)> {
        self.preserve_owner.then(|| {
            (
                rustix::fs::Uid::from_raw(node.uid),
                rustix::fs::Gid::from_raw(node.gid),
            )
        })
    }

    /// A regular file's attributes, through the handle it was written through (the file
    /// itself, whatever happened to its name since).
    pub(super) fn file(
        &self,
        file: impl AsFd,
        node: &Node,
        xattrs: &[Xattr],
        warn: &mut dyn FnMut(String),
    ) -> io::Result<()> {
        let file = file.as_fd();
        if let Some((uid, gid)) = self.owner(node) {
            rustix::fs::fchown(file, Some(uid), Some(gid))?;
        }
        if self.chmod(node) {
            rustix::fs::fchmod(file, Mode::from_raw_mode(node.mode))?;
        }
        for x in xattrs {
            let set = rustix::fs::fsetxattr(file, x.name.as_slice(), &x.value, XattrFlags::empty());
            if let Err(e) = set {
                warn(xattr_warning(x, io::Error::from(e)));
            }
        }
        rustix::fs::futimens(file, &times(node))?;
        Ok(())
    }

    /// Any other entry's attributes, by name in a directory reached without following
    /// symlinks (chown and times do not follow the last component either; chmod is never
    /// applied to a symlink).
    pub(super) fn by_name(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        node: &Node,
        xattrs: &[Xattr],
        warn: &mut dyn FnMut(String),
    ) -> io::Result<()> {
        if let Some((uid, gid)) = self.owner(node) {
            rustix::fs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)?;
        }
        if self.chmod(node) {
            rustix::fs::chmodat(dir, name, Mode::from_raw_mode(node.mode), AtFlags::empty())?;
        }
        if !xattrs.is_empty() {
            let through_dir = Dest::proc_path(dir, name);
            for x in xattrs {
                // lsetxattr: the last component itself, never a symlink's target.
                if let Err(e) = xattr::set(&through_dir, OsStr::from_bytes(&x.name), &x.value) {
                    warn(xattr_warning(x, e));
                }
            }
        }
        rustix::fs::utimensat(dir, name, &times(node), AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }

    /// The directories' attributes, deepest first (`dirs` in walk order, each directory
    /// before its entries).
    pub(super) fn directories(
        &self,
        xattrs: &Xattrs,
        dest: &mut Dest,
        dirs: &[(Vec<u8>, Entry)],
        problems: &Mutex<Problems>,
        warnings: &mut Vec<String>,
    ) -> Result<()> {
        for (path, entry) in dirs.iter().rev() {
            let xattrs = xattrs.of(entry.ino)?;
            let mut warn = |w: String| warnings.push(format!("{}: {w}", show(path)));
            let set = dest
                .parent(path)
                .and_then(|(dir, name)| self.by_name(&dir, name, &entry.node, &xattrs, &mut warn));
            match set {
                Ok(()) => {}
                // The destination itself may belong to someone else; its attributes are a
                // nicety, not part of the content.
                Err(e) if path.is_empty() => {
                    warnings.push(format!("the destination's attributes: {e}"));
                }
                Err(e) => Problems::push(problems, format!("{}: {e}", show(path))),
            }
        }
        Ok(())
    }
}

fn times(node: &Node) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: node.mtime.secs,
            tv_nsec: i64::from(node.mtime.nanos) as _,
        },
    }
}

fn xattr_warning(x: &Xattr, e: io::Error) -> String {
    format!("xattr {}: {e}", String::from_utf8_lossy(&x.name))
}

/// Removes every name of the files whose content could not be written completely
/// (`incomplete` inodes), so that nothing takes them for the real ones (they would have the
/// right size, or mode and mtime, otherwise). Entries the first pass could not create
/// (`failed`) had nothing made below them. The problems themselves were reported when the
/// content failed.
pub(super) fn remove_incomplete(
    flist: &dyn Tree,
    dest: &mut Dest,
    failed: &HashSet<Vec<u8>>,
    incomplete: &HashSet<u64>,
    problems: &Mutex<Problems>,
) -> Result<()> {
    flist.walk(&mut |path, entry| {
        if failed.contains(path) {
            return Ok(Walk::SkipChildren);
        }
        if !entry.is_dir() && incomplete.contains(&entry.ino) {
            let removed = dest
                .parent(path)
                .and_then(|(dir, name)| Ok(rustix::fs::unlinkat(&dir, name, AtFlags::empty())?));
            if let Err(e) = removed {
                Problems::push(
                    problems,
                    format!("{}: removing the incomplete file: {e}", show(path)),
                );
            }
        }
        Ok(Walk::Continue)
    })
}
