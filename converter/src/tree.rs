//! Directory trees into flists.
//!
//! The walk never follows symlinks, visits names in byte order (so the result does not
//! depend on the directory order of the filesystem) and turns files sharing an inode into
//! hardlinks of the first name met.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use flist::{InodeId, Node, NodeKind, Timestamp, Xattr};

use crate::error::{Error, Result};
use crate::pack::Packer;
use crate::progress::CountingReader;

/// Packs the tree at `root`, leaving out the file with (device, inode) `skip` (the flist
/// being replaced, if it lies inside the tree, as GNU tar leaves out its own archive).
pub(crate) fn read_tree(root: &Path, packer: &mut Packer, skip: Option<(u64, u64)>) -> Result<()> {
    let root_meta = std::fs::metadata(root).map_err(|e| Error::io(root.display(), e))?;
    if !root_meta.is_dir() {
        return Err(Error::Input(format!(
            "{} is not a directory",
            root.display()
        )));
    }
    // (device, inode) of files with several names -> the flist inode of the first name.
    let mut linked: HashMap<(u64, u64), InodeId> = HashMap::new();
    let walk = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()));
    for item in walk {
        let item = item.map_err(|e| {
            let path = e
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            match e.into_io_error() {
                Some(io) => Error::io(path, io),
                None => Error::Input(format!("{path}: filesystem loop")),
            }
        })?;
        let full = item.path();
        let rel = full
            .strip_prefix(root)
            .unwrap_or(full)
            .as_os_str()
            .as_bytes();
        let meta = item
            .metadata()
            .map_err(|e| Error::io(full.display(), e.into()))?;
        if skip == Some((meta.dev(), meta.ino())) {
            tracing::info!(path = %full.display(), "not packing the flist being written");
            continue;
        }
        packer.count_entry(rel)?;
        let xattrs = read_xattrs(full)?;
        let file_type = meta.file_type();
        let device = || {
            let rdev = meta.rdev();
            (rustix::fs::major(rdev), rustix::fs::minor(rdev))
        };
        let kind = if file_type.is_dir() {
            NodeKind::Directory
        } else if file_type.is_file() {
            NodeKind::Regular { size: meta.len() }
        } else if file_type.is_symlink() {
            let target = std::fs::read_link(full).map_err(|e| Error::io(full.display(), e))?;
            NodeKind::Symlink {
                target: target.into_os_string().into_vec(),
            }
        } else if file_type.is_char_device() {
            let (major, minor) = device();
            NodeKind::CharDevice { major, minor }
        } else if file_type.is_block_device() {
            let (major, minor) = device();
            NodeKind::BlockDevice { major, minor }
        } else if file_type.is_fifo() {
            NodeKind::Fifo
        } else if file_type.is_socket() {
            NodeKind::Socket
        } else {
            return Err(Error::entry(rel, "unknown file type"));
        };
        let node = Node {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            mtime: Timestamp {
                secs: meta.mtime(),
                nanos: meta.mtime_nsec().clamp(0, 999_999_999) as u32,
            },
        };

        let shared_inode = !file_type.is_dir() && meta.nlink() > 1;
        if shared_inode && let Some(&inode) = linked.get(&(meta.dev(), meta.ino())) {
            packer.link(rel, inode)?;
            continue;
        }
        let inode = if let NodeKind::Regular { .. } = node.kind {
            let file = File::open(full).map_err(|e| Error::io(full.display(), e))?;
            packer.add_file(
                rel,
                &node,
                &xattrs,
                CountingReader::new(file, packer.progress()),
            )?
        } else {
            packer.add(rel, &node, &xattrs)?
        };
        if shared_inode {
            linked.insert((meta.dev(), meta.ino()), inode);
        }
    }
    Ok(())
}

/// Extended attributes of `path` itself (never of a symlink's target). A filesystem without
/// xattr support simply has none.
fn read_xattrs(path: &Path) -> Result<Vec<Xattr>> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if is_unsupported(&e) => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path.display(), e)),
    };
    let mut xattrs = Vec::new();
    for name in names {
        match xattr::get(path, &name) {
            Ok(Some(value)) => xattrs.push(Xattr {
                name: name.as_bytes().to_vec(),
                value,
            }),
            Ok(None) => {}
            Err(e) if is_unsupported(&e) => {}
            Err(e) => return Err(Error::io(path.display(), e)),
        }
    }
    xattrs.sort();
    Ok(xattrs)
}

fn is_unsupported(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::OPNOTSUPP.raw_os_error())
}
