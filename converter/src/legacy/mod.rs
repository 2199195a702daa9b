//! The legacy formats (0-flist, rfs `fl`) read as native trees, so that listing, `cat` and
//! `extract` treat them as they treat flisthub's own: each entry an [`flist::Entry`], each
//! file's content its 512 KiB blocks, read from a [`BlockSource`] and decoded with the
//! block's key, which checks them (0-flist: the plaintext hashes to the key; fl: the AES-GCM
//! tag), and each of the length its place in the file says.
//!
//! The whole tree is read into memory when the file is opened (within [`legacy::Limits`]):
//! both readers check the tree as they walk it, so nothing is handed out of a file that
//! turns out broken further on, and lookups then need no database.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use chunkstore::BlockId;
use flist::{Entry, Node, NodeKind, Timestamp, Walk};
use legacy::fl::{FlFile, Route};
use legacy::zero::{Backend, ZeroFlist};
use legacy::{BLOCK_SIZE, Kind, Special};

use crate::error::{Error, Result};

mod blocks;

pub use blocks::{BlockSource, BlockSpan, LegacyBlock, StoreBlocks, read_blocks};

/// Symlinks followed while resolving one path, as Linux's `MAXSYMLINKS`.
const MAX_HOPS: usize = 40;

/// One entry of the tree, in depth-first order.
struct Item {
    path: Vec<u8>,
    entry: Entry,
    blocks: Vec<LegacyBlock>,
    /// Index just past this entry's subtree (the next index for anything but a directory).
    end: usize,
}

/// A 0-flist or fl file, read whole.
pub struct LegacyFlist {
    format: legacy::Format,
    /// Depth-first, siblings by name, the root first: the order of the trees' keys, so that
    /// a path is found by binary search. Entry `i` is inode `i + 1`.
    items: Vec<Item>,
    metadata: BTreeMap<String, String>,
    routes: std::result::Result<Vec<Route>, legacy::Error>,
    totals: legacy::Totals,
    distinct_blocks: u64,
}

impl std::fmt::Debug for LegacyFlist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyFlist")
            .field("format", &self.format)
            .field("entries", &self.items.len())
            .finish_non_exhaustive()
    }
}

impl LegacyFlist {
    /// Reads the file at `path`, of `format` (see [`legacy::detect`]), within `limits`.
    pub fn open(path: &Path, format: legacy::Format, limits: &legacy::Limits) -> Result<Self> {
        let mut tree = Builder::default();
        let (metadata, routes) = match format {
            legacy::Format::ZeroFlist => {
                let file = ZeroFlist::open_with(path, limits)?;
                file.walk(|path, entry| tree.push(path, entry, LegacyBlock::Zero))?;
                (file.metadata()?, Ok(Vec::new()))
            }
            legacy::Format::Fl => {
                let file = FlFile::open_with(path, limits)?;
                file.walk(|path, entry| tree.push(path, entry, LegacyBlock::Fl))?;
                (file.tags()?, file.routes())
            }
            legacy::Format::Native => {
                return Err(Error::Input(
                    "a native flist, not a 0-flist or fl file".into(),
                ));
            }
        };
        let Builder {
            mut items,
            totals,
            ids,
        } = tree;
        close_subtrees(&mut items);
        Ok(LegacyFlist {
            format,
            items,
            metadata,
            routes,
            totals,
            distinct_blocks: ids.len() as u64,
        })
    }

    pub fn format(&self) -> legacy::Format {
        self.format
    }

    /// A 0-flist's `metadata` table, an fl file's `tag` table.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Where a 0-flist says its blocks are (its `backend` metadata), if it says.
    pub fn backend(&self) -> Result<Option<Backend>> {
        match self.metadata.get("backend") {
            Some(text) if self.format == legacy::Format::ZeroFlist => {
                Ok(Some(Backend::from_json(text)?))
            }
            _ => Ok(None),
        }
    }

    /// An fl file's routes (none for a 0-flist), or why they cannot be used (a local path).
    pub fn routes(&self) -> std::result::Result<&[Route], &legacy::Error> {
        self.routes.as_deref()
    }

    pub fn totals(&self) -> legacy::Totals {
        self.totals
    }

    /// Distinct block ids of all files.
    pub fn distinct_blocks(&self) -> u64 {
        self.distinct_blocks
    }

    pub fn root(&self) -> &Entry {
        &self.items[0].entry
    }

    /// The entry at `path` (`/`-separated; `.` and `..` taken literally, symlinks not
    /// followed).
    pub fn lookup(&self, path: &[u8]) -> Option<&Entry> {
        let mut parts: Vec<&[u8]> = Vec::new();
        for name in path.split(|&b| b == b'/') {
            match name {
                b"" | b"." => {}
                b".." => {
                    parts.pop();
                }
                name => parts.push(name),
            }
        }
        self.find(&parts.join(&b'/')).map(|i| &self.items[i].entry)
    }

    /// The entry `path` leads to, following symlinks inside the tree (an absolute target
    /// starts again at the root), as `cat` needs.
    pub fn resolve(&self, path: &[u8]) -> Option<&Entry> {
        let mut pending: Vec<Vec<u8>> = components(path);
        pending.reverse();
        let mut trail = vec![0usize];
        let mut hops = 0;
        while let Some(name) = pending.pop() {
            let here = *trail.last()?;
            match name.as_slice() {
                b"." => continue,
                b".." => {
                    if trail.len() > 1 {
                        trail.pop();
                    }
                    continue;
                }
                _ => {}
            }
            if !self.items[here].entry.is_dir() {
                return None;
            }
            let child = self.find(&join(&self.items[here].path, &name))?;
            if let NodeKind::Symlink { target } = &self.items[child].entry.node.kind {
                hops += 1;
                if hops > MAX_HOPS {
                    return None;
                }
                if target.starts_with(b"/") {
                    trail.truncate(1);
                }
                let mut more = components(target);
                more.reverse();
                pending.extend(more);
                continue;
            }
            trail.push(child);
        }
        trail.last().map(|&i| &self.items[i].entry)
    }

    /// The entries of the directory `dir`, by name (none for anything but a directory).
    pub fn children(&self, dir: &Entry) -> impl Iterator<Item = &Entry> {
        let at = self.index(dir);
        let end = at.map_or(0, |i| self.items[i].end);
        let mut next = at.map_or(0, |i| i + 1);
        std::iter::from_fn(move || {
            if next >= end {
                return None;
            }
            let item = &self.items[next];
            next = item.end;
            Some(&item.entry)
        })
    }

    /// Visits `start` and everything below it, depth first, each directory before its
    /// entries, with the entries' paths from the root.
    pub fn walk_from<E>(
        &self,
        start: &Entry,
        mut visit: impl FnMut(&[u8], &Entry) -> std::result::Result<Walk, E>,
    ) -> std::result::Result<(), E> {
        let Some(at) = self.index(start) else {
            return Ok(());
        };
        let mut next = at;
        while next < self.items[at].end {
            let item = &self.items[next];
            next = match visit(&item.path, &item.entry)? {
                Walk::Continue => next + 1,
                Walk::SkipChildren => item.end,
            };
        }
        Ok(())
    }

    /// The blocks of a regular file, each with its place in the file; refused when they do
    /// not cover its size in 512 KiB windows (zflist 2.3 miscounts files above 16 MiB whose
    /// size a 32-bit float rounds).
    pub fn spans(&self, file: &Entry) -> Result<Vec<BlockSpan>> {
        let Some(item) = self.index(file).map(|i| &self.items[i]) else {
            return Ok(Vec::new());
        };
        let NodeKind::Regular { size } = item.entry.node.kind else {
            return Ok(Vec::new());
        };
        if item.blocks.len() as u64 != legacy::block_count(size) {
            return Err(Error::entry(
                &item.path,
                format!(
                    "{} blocks for {size} bytes: they do not cover it in 512 KiB windows",
                    item.blocks.len()
                ),
            ));
        }
        Ok(item
            .blocks
            .iter()
            .enumerate()
            .map(|(i, block)| {
                let offset = i as u64 * BLOCK_SIZE;
                BlockSpan {
                    block: *block,
                    offset,
                    // At most BLOCK_SIZE, which fits.
                    length: (size - offset).min(BLOCK_SIZE) as u32,
                }
            })
            .collect())
    }

    fn index(&self, entry: &Entry) -> Option<usize> {
        let i = usize::try_from(entry.ino).ok()?.checked_sub(1)?;
        (i < self.items.len()).then_some(i)
    }

    /// The index of the entry at `path` (normalized, no leading slash).
    fn find(&self, path: &[u8]) -> Option<usize> {
        self.items
            .binary_search_by(|item| tree_order(&item.path, path))
            .ok()
    }
}

/// Paths in the order of both legacy trees (depth first, siblings by name): `/` sorts
/// before every byte a name can hold.
fn tree_order(a: &[u8], b: &[u8]) -> Ordering {
    let key = |&c: &u8| if c == b'/' { 0 } else { c };
    a.iter().map(key).cmp(b.iter().map(key))
}

fn components(path: &[u8]) -> Vec<Vec<u8>> {
    path.split(|&b| b == b'/')
        .filter(|n| !n.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    [dir, b"/", name].concat()
}

/// Collects a reader's walk.
#[derive(Default)]
struct Builder {
    items: Vec<Item>,
    totals: legacy::Totals,
    ids: HashSet<BlockId>,
}

impl Builder {
    fn push<B: Copy>(
        &mut self,
        path: &[u8],
        entry: &legacy::Entry<B>,
        wrap: fn(B) -> LegacyBlock,
    ) -> legacy::Result<()> {
        self.totals.count(entry);
        let blocks: Vec<LegacyBlock> = match &entry.kind {
            Kind::File { blocks, .. } => blocks.iter().map(|&b| wrap(b)).collect(),
            _ => Vec::new(),
        };
        self.ids.extend(blocks.iter().map(LegacyBlock::id));
        let name = path.rsplit(|&b| b == b'/').next().unwrap_or_default();
        let ino = self.items.len() as u64 + 1;
        self.items.push(Item {
            path: path.to_vec(),
            entry: native(name, ino, entry),
            blocks,
            end: 0,
        });
        Ok(())
    }
}

/// Sets each item's `end` from the depth-first order: a directory's subtree ends at the
/// first later entry that is not below it.
fn close_subtrees(items: &mut [Item]) {
    let len = items.len();
    let mut open: Vec<usize> = Vec::new();
    for i in 0..len {
        while let Some(&dir) = open.last() {
            let below = items[dir].path.is_empty()
                || (items[i].path.starts_with(&items[dir].path)
                    && items[i].path.get(items[dir].path.len()) == Some(&b'/'));
            if below {
                break;
            }
            items[dir].end = i;
            open.pop();
        }
        items[i].end = i + 1;
        if items[i].entry.is_dir() {
            open.push(i);
        }
    }
    for dir in open {
        items[dir].end = len;
    }
}

/// A legacy entry as a native one: one name per inode (the legacy formats have no
/// hardlinks), times in whole seconds.
fn native<B>(name: &[u8], ino: u64, entry: &legacy::Entry<B>) -> Entry {
    let kind = match &entry.kind {
        Kind::Directory => NodeKind::Directory,
        Kind::File { size, .. } => NodeKind::Regular { size: *size },
        Kind::Symlink { target } => NodeKind::Symlink {
            target: target.clone(),
        },
        // zflist 2.3 writes every special file as a socket; one of unknown type is shown
        // (and made) as one too.
        Kind::Special(Special::Socket | Special::Unknown) => NodeKind::Socket,
        Kind::Special(Special::Fifo) => NodeKind::Fifo,
        Kind::Special(Special::CharDevice { major, minor }) => NodeKind::CharDevice {
            major: *major,
            minor: *minor,
        },
        Kind::Special(Special::BlockDevice { major, minor }) => NodeKind::BlockDevice {
            major: *major,
            minor: *minor,
        },
    };
    Entry {
        name: name.to_vec(),
        ino,
        nlink: 1,
        node: Node {
            kind,
            mode: entry.mode & 0o7777,
            uid: entry.uid,
            gid: entry.gid,
            mtime: Timestamp {
                secs: entry.mtime,
                nanos: 0,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use legacy::zero;

    fn file(size: u64) -> legacy::Entry<zero::Block> {
        let block = zero::Block {
            id: [1; 16],
            key: [2; 16],
        };
        legacy::Entry {
            kind: Kind::File {
                size,
                blocks: vec![block; legacy::block_count(size) as usize],
            },
            ..legacy::Entry::directory(0o644)
        }
    }

    /// A 0-flist of `a/`, `a/b/`, `a/b/f`, `a/c -> b/f`, `a-z`, `up -> /a/c`, `loop -> loop`.
    fn sample() -> (tempfile::TempDir, LegacyFlist) {
        let mut tree = legacy::Tree::new(legacy::Entry::directory(0o755)).unwrap();
        tree.insert(b"a", legacy::Entry::directory(0o755)).unwrap();
        tree.insert(b"a/b", legacy::Entry::directory(0o700))
            .unwrap();
        tree.insert(b"a/b/f", file(BLOCK_SIZE + 10)).unwrap();
        let link = |target: &[u8]| legacy::Entry {
            kind: Kind::Symlink {
                target: target.to_vec(),
            },
            ..legacy::Entry::directory(0o777)
        };
        tree.insert(b"a/c", link(b"b/f")).unwrap();
        tree.insert(b"a-z", file(0)).unwrap();
        tree.insert(b"up", link(b"/a/c")).unwrap();
        tree.insert(b"loop", link(b"loop")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.flist");
        let out = std::fs::File::create(&path).unwrap();
        zero::write(&tree, &BTreeMap::new(), out).unwrap();
        let flist = LegacyFlist::open(&path, legacy::Format::ZeroFlist, &legacy::Limits::default())
            .unwrap();
        (dir, flist)
    }

    #[test]
    fn lookups_listings_and_walks() {
        let (_dir, flist) = sample();
        let names = |dir: &Entry| -> Vec<String> {
            flist
                .children(dir)
                .map(|e| String::from_utf8_lossy(&e.name).into_owned())
                .collect()
        };
        assert_eq!(names(flist.root()), ["a", "a-z", "loop", "up"]);
        let a = flist.lookup(b"/a/").unwrap();
        assert_eq!(names(a), ["b", "c"]);
        assert!(flist.lookup(b"a/b/f/../../c").is_some());
        assert!(flist.lookup(b"a/x").is_none());
        let f = flist.resolve(b"up").unwrap();
        assert_eq!(f.name, b"f", "through two links");
        assert_eq!(
            f.node.kind,
            NodeKind::Regular {
                size: BLOCK_SIZE + 10
            }
        );
        assert!(flist.resolve(b"loop").is_none(), "a loop ends");
        assert!(flist.resolve(b"a-z/x").is_none(), "a file has no entries");
        let spans = flist.spans(f).unwrap();
        assert_eq!(
            spans
                .iter()
                .map(|s| (s.offset, s.length))
                .collect::<Vec<_>>(),
            [(0, BLOCK_SIZE as u32), (BLOCK_SIZE, 10)]
        );
        let mut walked = Vec::new();
        flist
            .walk_from(a, |path, entry| {
                walked.push(String::from_utf8_lossy(path).into_owned());
                Ok::<_, ()>(if entry.name == b"b" {
                    Walk::SkipChildren
                } else {
                    Walk::Continue
                })
            })
            .unwrap();
        assert_eq!(walked, ["a", "a/b", "a/c"]);
        let totals = flist.totals();
        assert_eq!((totals.files, totals.symlinks, totals.blocks), (2, 3, 2));
        assert_eq!(flist.distinct_blocks(), 1);
    }
}
