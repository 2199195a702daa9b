//! The tree both legacy formats describe, independent of either: what their readers return
//! and their writers take.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};

/// Plaintext bytes per block in both formats: every block of a file holds this much except
/// its last, and both node readers find the block of an offset by dividing by it.
pub const BLOCK_SIZE: u64 = 512 * 1024;

/// Blocks a file of `size` bytes is cut into.
pub fn block_count(size: u64) -> u64 {
    size.div_ceil(BLOCK_SIZE)
}

/// What a name is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind<B> {
    Directory,
    /// `blocks` are the file's 512 KiB windows in order ([`block_count`] of them).
    File {
        size: u64,
        blocks: Vec<B>,
    },
    Symlink {
        target: Vec<u8>,
    },
    Special(Special),
}

/// A device, FIFO or socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Socket,
    Fifo,
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    /// A 0-flist entry of type `unknown`.
    Unknown,
}

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<B> {
    pub kind: Kind<B>,
    /// Permission bits with setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Owner names, kept by the 0-flist format only (its readers show them; g8ufs uses them
    /// only when the numeric ids are missing).
    pub uname: String,
    pub gname: String,
    /// Seconds since the Unix epoch.
    pub mtime: i64,
    pub ctime: i64,
}

impl<B> Entry<B> {
    /// A directory owned by `root` with mode `mode` and times 0.
    pub fn directory(mode: u32) -> Entry<B> {
        Entry {
            kind: Kind::Directory,
            mode,
            uid: 0,
            gid: 0,
            uname: "root".into(),
            gname: "root".into(),
            mtime: 0,
            ctime: 0,
        }
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Directory)
    }
}

/// Counts over a tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub directories: u64,
    pub files: u64,
    pub symlinks: u64,
    pub specials: u64,
    /// Content bytes of all files.
    pub bytes: u64,
    /// Block references (a block used twice counts twice).
    pub blocks: u64,
}

/// What a reader's walk calls for each entry: the root first (path `""`), every directory
/// before what it holds.
pub(crate) type Visit<'a, B> = &'a mut dyn FnMut(&[u8], &Entry<B>) -> Result<()>;

impl Totals {
    /// Counts a reader's walk.
    pub(crate) fn collect<B>(walk: impl FnOnce(Visit<B>) -> Result<()>) -> Result<Totals> {
        let mut totals = Totals::default();
        walk(&mut |_, entry| {
            totals.count(entry);
            Ok(())
        })?;
        Ok(totals)
    }

    /// Adds one entry.
    pub fn count<B>(&mut self, entry: &Entry<B>) {
        match &entry.kind {
            Kind::Directory => self.directories += 1,
            Kind::File { size, blocks } => {
                self.files += 1;
                self.bytes += size;
                self.blocks += blocks.len() as u64;
            }
            Kind::Symlink { .. } => self.symlinks += 1,
            Kind::Special(_) => self.specials += 1,
        }
    }
}

/// A whole tree in memory: entries by path, the root (path `""`) always a directory, every
/// other entry's parent a directory of the tree.
///
/// Paths are relative and `/`-separated bytes, with the rules of the native format
/// ([`flist::validate_path`]). Iteration is depth-first, each directory's entries in byte
/// order of their names, which is the order both writers store them in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree<B> {
    /// Keyed by the path with `/` replaced by NUL: since NUL sorts before every byte a name
    /// can hold, key order is depth-first pre-order with siblings sorted.
    entries: BTreeMap<Vec<u8>, Entry<B>>,
}

/// The distinct block ids of a reader's walk.
pub(crate) fn block_ids<B, const N: usize>(
    walk: impl FnOnce(Visit<B>) -> Result<()>,
    id: impl Fn(&B) -> [u8; N],
) -> Result<BTreeSet<[u8; N]>> {
    let mut ids = BTreeSet::new();
    walk(&mut |_, entry| {
        if let Kind::File { blocks, .. } = &entry.kind {
            ids.extend(blocks.iter().map(&id));
        }
        Ok(())
    })?;
    Ok(ids)
}

impl<B: Clone> Tree<B> {
    /// Layers `other` under this tree as `zflist merge` does: what is missing here is
    /// copied (directories with what they hold), what exists here stays as it is, so the
    /// tree merged into first wins on every path. A name that is a file here and a
    /// directory there keeps the file, and nothing below it is taken.
    pub fn merge_from(&mut self, other: &Tree<B>) {
        for (key, entry) in &other.entries {
            if key.is_empty() || self.entries.contains_key(key) {
                continue;
            }
            if self.entries.get(parent_key(key)).is_some_and(Entry::is_dir) {
                self.entries.insert(key.clone(), entry.clone());
            }
        }
    }

    /// The tree of a reader's walk.
    pub(crate) fn collect(walk: impl FnOnce(Visit<B>) -> Result<()>) -> Result<Tree<B>> {
        let mut tree: Option<Tree<B>> = None;
        walk(&mut |path, entry| {
            match tree.as_mut() {
                None => tree = Some(Tree::new(entry.clone())?),
                Some(tree) => tree.insert(path, entry.clone())?,
            }
            Ok(())
        })?;
        tree.ok_or_else(|| Error::tree(b"", "no root directory"))
    }
}

impl<B> Tree<B> {
    /// A tree holding only its root directory.
    pub fn new(root: Entry<B>) -> Result<Tree<B>> {
        if !root.is_dir() {
            return Err(Error::tree(b"", "the root must be a directory"));
        }
        Ok(Tree {
            entries: BTreeMap::from([(Vec::new(), root)]),
        })
    }

    /// Adds (or replaces) the entry at `path`. Its parent must already be a directory of the
    /// tree; a directory that has entries below it can only be replaced by a directory.
    pub fn insert(&mut self, path: &[u8], entry: Entry<B>) -> Result<()> {
        flist::validate_path(path).map_err(|e| Error::tree(path, e.to_string()))?;
        let key = key_of(path);
        if key.is_empty() && !entry.is_dir() {
            return Err(Error::tree(path, "the root must be a directory"));
        }
        if !key.is_empty()
            && !self
                .entries
                .get(parent_key(&key))
                .is_some_and(Entry::is_dir)
        {
            return Err(Error::tree(
                path,
                "its parent is not a directory of the tree",
            ));
        }
        if !entry.is_dir() && self.has_children(&key) {
            return Err(Error::tree(
                path,
                "a directory with entries can only stay one",
            ));
        }
        self.entries.insert(key, entry);
        Ok(())
    }

    pub fn get(&self, path: &[u8]) -> Option<&Entry<B>> {
        self.entries.get(&key_of(path))
    }

    pub fn root(&self) -> &Entry<B> {
        // `new` puts the root in and nothing removes it.
        &self.entries[&Vec::new()]
    }

    /// Entries with their paths, depth-first, siblings in name order, the root first.
    pub fn iter(&self) -> impl Iterator<Item = (Vec<u8>, &Entry<B>)> {
        self.entries
            .iter()
            .map(|(key, entry)| (path_of(key), entry))
    }

    /// Number of entries, the root included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Never: a tree always holds its root.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for entry in self.entries.values() {
            totals.count(entry);
        }
        totals
    }

    /// The directories of the tree, each with its entries' indexes in [`iter`](Self::iter)
    /// order: what both writers lay out.
    pub(crate) fn directories(&self) -> Vec<(usize, Vec<usize>)> {
        // Where each directory is in `dirs`, by key: parents come before their entries.
        let mut slot: BTreeMap<&[u8], usize> = BTreeMap::new();
        let mut dirs: Vec<(usize, Vec<usize>)> = Vec::new();
        for (i, (key, entry)) in self.entries.iter().enumerate() {
            if !key.is_empty()
                && let Some(&s) = slot.get(parent_key(key))
            {
                dirs[s].1.push(i);
            }
            if entry.is_dir() {
                slot.insert(key, dirs.len());
                dirs.push((i, Vec::new()));
            }
        }
        dirs
    }

    /// Whether anything is below `key`: in key order, the entry right after a directory is
    /// its first child if it has any.
    fn has_children(&self, key: &[u8]) -> bool {
        use std::ops::Bound::{Excluded, Unbounded};
        self.entries
            .range::<[u8], _>((Excluded(key), Unbounded))
            .next()
            .is_some_and(|(k, _)| {
                key.is_empty() || k.get(key.len()) == Some(&0) && k.starts_with(key)
            })
    }
}

fn parent_key(key: &[u8]) -> &[u8] {
    &key[..key.iter().rposition(|&b| b == 0).unwrap_or(0)]
}

fn key_of(path: &[u8]) -> Vec<u8> {
    path.iter()
        .map(|&b| if b == b'/' { 0 } else { b })
        .collect()
}

fn path_of(key: &[u8]) -> Vec<u8> {
    key.iter().map(|&b| if b == 0 { b'/' } else { b }).collect()
}

/// The last component of a path (the whole path when it has one component).
pub(crate) fn name_of(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// The parent directory of a path (`""` for the root's entries).
pub(crate) fn parent_of(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[..i],
        None => b"",
    }
}

#[cfg(test)]
mod merge_tests {
    use super::*;

    fn file(size: u64) -> Entry<u8> {
        Entry {
            kind: Kind::File {
                size,
                blocks: vec![0; block_count(size) as usize],
            },
            ..Entry::directory(0o644)
        }
    }

    #[test]
    fn the_first_tree_wins_on_every_path() {
        let mut first = Tree::new(Entry::directory(0o755)).unwrap();
        first.insert(b"etc", Entry::directory(0o755)).unwrap();
        first.insert(b"etc/a", file(1)).unwrap();
        first.insert(b"x", file(2)).unwrap();
        let mut second = Tree::new(Entry::directory(0o700)).unwrap();
        second.insert(b"etc", Entry::directory(0o700)).unwrap();
        second.insert(b"etc/a", file(10)).unwrap();
        second.insert(b"etc/b", file(11)).unwrap();
        second.insert(b"x", Entry::directory(0o755)).unwrap();
        second.insert(b"x/y", file(12)).unwrap();
        second.insert(b"usr", Entry::directory(0o755)).unwrap();
        second.insert(b"usr/z", file(13)).unwrap();
        first.merge_from(&second);
        let sizes: Vec<(Vec<u8>, u64)> = first
            .iter()
            .filter_map(|(path, e)| match e.kind {
                Kind::File { size, .. } => Some((path, size)),
                _ => None,
            })
            .collect();
        assert_eq!(
            sizes,
            [
                (b"etc/a".to_vec(), 1),
                (b"etc/b".to_vec(), 11),
                (b"usr/z".to_vec(), 13),
                (b"x".to_vec(), 2)
            ]
        );
        assert_eq!(first.root().mode, 0o755, "the first root stays");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Entry<()> {
        Entry {
            kind: Kind::File {
                size: 0,
                blocks: vec![],
            },
            ..Entry::directory(0o644)
        }
    }

    #[test]
    fn iterates_depth_first_with_sorted_siblings() {
        let mut t: Tree<()> = Tree::new(Entry::directory(0o755)).unwrap();
        for p in ["a", "a-c", "a/b", "ab"] {
            let e = if p == "a" {
                Entry::directory(0o755)
            } else {
                file()
            };
            t.insert(p.as_bytes(), e).unwrap();
        }
        let paths: Vec<Vec<u8>> = t.iter().map(|(p, _)| p).collect();
        assert_eq!(paths, [&b""[..], b"a", b"a/b", b"a-c", b"ab"]);
        let dirs = t.directories();
        assert_eq!(dirs, vec![(0, vec![1, 3, 4]), (1, vec![2])]);
    }

    #[test]
    fn refuses_orphans_and_bad_paths() {
        let mut t: Tree<()> = Tree::new(Entry::directory(0o755)).unwrap();
        assert!(t.insert(b"a/b", file()).is_err());
        t.insert(b"f", file()).unwrap();
        assert!(t.insert(b"f/x", file()).is_err());
        assert!(t.insert(b"../x", file()).is_err());
        assert!(t.insert(b"", file()).is_err());
        t.insert(b"d", Entry::directory(0o700)).unwrap();
        t.insert(b"d/x", file()).unwrap();
        assert!(t.insert(b"d", file()).is_err());
        t.insert(b"d", Entry::directory(0o755)).unwrap();
        assert_eq!(t.get(b"d").unwrap().mode, 0o755);
    }
}
