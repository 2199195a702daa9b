//! Layering flists the way 0-hub's merge does.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::node::{Kind, NodeKind, Totals};
use crate::reader::{Flist, Walk};
use crate::writer::{FlistWriter, InodeId};

/// Merges `sources` into a new flist at `out`.
///
/// The first source wins on every path: a later source only adds paths that no earlier one
/// has. Directories present in several sources are merged recursively and keep the
/// attributes of the first. A path that is a directory in one source and anything else in
/// another keeps whatever the earliest source has there, with all that is below it (so a
/// later directory never appears below an earlier file). Metadata comes from the first source
/// only. Hardlinks stay hardlinks within each source.
pub fn merge(sources: &[&Flist], out: &Path) -> Result<Totals> {
    let Some(first) = sources.first() else {
        return Err(Error::Conflict {
            path: out.display().to_string(),
            reason: "merge needs at least one source".into(),
        });
    };
    let mut writer = FlistWriter::create(out)?;
    *writer.metadata_mut() = first.metadata()?;
    for (index, source) in sources.iter().enumerate() {
        // Source inode -> written inode, for inodes with several names only.
        let mut linked: HashMap<u64, InodeId> = HashMap::new();
        source.walk(|path, entry| {
            if path.is_empty() {
                if index == 0 {
                    writer.add(path, &entry.node, &source.xattrs(entry.ino)?)?;
                }
                return Ok(Walk::Continue);
            }
            if let Some(kind) = writer.kind_at(path)? {
                // The earlier entry stays, with its subtree; only a directory on both sides
                // is merged below.
                let both_dirs = kind == Kind::Directory && entry.is_dir();
                return Ok(if both_dirs {
                    Walk::Continue
                } else {
                    Walk::SkipChildren
                });
            }
            if let Some(&inode) = linked.get(&entry.ino) {
                writer.link(path, inode)?;
                return Ok(Walk::Continue);
            }
            let inode = writer.add(path, &entry.node, &source.xattrs(entry.ino)?)?;
            if entry.nlink > 1 {
                linked.insert(entry.ino, inode);
            }
            if let NodeKind::Regular { .. } = entry.node.kind {
                for (seq, chunk) in source.chunks(entry)?.iter().enumerate() {
                    writer.add_chunk(inode, seq as u32, chunk)?;
                }
            }
            Ok(Walk::Continue)
        })?;
    }
    writer.finish()
}
