//! From a native flist to the tree the legacy formats describe.

use flist::{Flist, NodeKind, Walk};

use crate::error::Error;
use crate::tree::{Entry, Kind, Special, Tree, block_count};

impl<B> Tree<B> {
    /// The tree of a native flist, with each file's blocks given by `blocks`.
    ///
    /// `blocks(path, entry)` is called once per regular file name, in the flist's walk order,
    /// and returns the file's 512 KiB windows in order ([`block_count`] of them, checked):
    /// the caller computes them from the plaintext (for a 0-flist, [`zero::Block`] keys are
    /// BLAKE2b-128 of each window; for fl, any content hash), so this crate needs no chunk
    /// store. Names of one inode (hardlinks) become separate files with the same blocks: a
    /// caller can key its work on `entry.ino`.
    ///
    /// What the legacy formats cannot hold is dropped (see the crate documentation): xattrs,
    /// nanoseconds, hardlinks as such. Owner names are `root` for id 0 and the number
    /// otherwise (what zflist writes when the build machine knows no name); the change time
    /// is the modification time.
    ///
    /// [`zero::Block`]: crate::zero::Block
    pub fn from_native<E>(
        flist: &Flist,
        mut blocks: impl FnMut(&[u8], &flist::Entry) -> Result<Vec<B>, E>,
    ) -> Result<Tree<B>, E>
    where
        E: From<Error>,
    {
        let mut entries: Vec<(Vec<u8>, flist::Entry)> = Vec::new();
        flist
            .walk(|path, entry| {
                entries.push((path.to_vec(), entry.clone()));
                Ok(Walk::Continue)
            })
            .map_err(|e| E::from(Error::from(e)))?;
        let mut tree: Option<Tree<B>> = None;
        for (path, native) in entries {
            let node = &native.node;
            let kind = match &node.kind {
                NodeKind::Directory => Kind::Directory,
                NodeKind::Regular { size } => {
                    let list = blocks(&path, &native)?;
                    if list.len() as u64 != block_count(*size) {
                        return Err(Error::tree(
                            &path,
                            format!("{} blocks given for {size} bytes", list.len()),
                        )
                        .into());
                    }
                    Kind::File {
                        size: *size,
                        blocks: list,
                    }
                }
                NodeKind::Symlink { target } => Kind::Symlink {
                    target: target.clone(),
                },
                NodeKind::CharDevice { major, minor } => Kind::Special(Special::CharDevice {
                    major: *major,
                    minor: *minor,
                }),
                NodeKind::BlockDevice { major, minor } => Kind::Special(Special::BlockDevice {
                    major: *major,
                    minor: *minor,
                }),
                NodeKind::Fifo => Kind::Special(Special::Fifo),
                NodeKind::Socket => Kind::Special(Special::Socket),
            };
            let entry = Entry {
                kind,
                mode: node.mode & 0o7777,
                uid: node.uid,
                gid: node.gid,
                uname: owner_name(node.uid),
                gname: owner_name(node.gid),
                mtime: node.mtime.secs,
                ctime: node.mtime.secs,
            };
            match tree.as_mut() {
                None => tree = Some(Tree::new(entry)?),
                Some(tree) => tree.insert(&path, entry)?,
            }
        }
        // A flist's walk always starts with its root.
        tree.ok_or_else(|| Error::tree(b"", "the flist has no root").into())
    }
}

fn owner_name(id: u32) -> String {
    match id {
        0 => "root".into(),
        n => n.to_string(),
    }
}
