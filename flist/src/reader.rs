//! Reading an flist: every query is an index lookup or a range scan of one B-tree.
//!
//! Everything read is checked against the format's rules (valid names, kinds, modes,
//! contiguous chunks), because flists come from outside: a crafted file must produce an
//! error, never a path that escapes a directory or a loop that never ends.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Row};

use crate::chunks::{ChunkScan, FileChunks, regular_size};
use crate::error::{Error, Result, show};
use crate::metadata::Metadata;
use crate::node::{ChunkRef, Entry, Kind, Node, NodeKind, Timestamp, Totals, Xattr};
use crate::path::{MAX_PATH_LEN, check_name, join};
use crate::schema::{APPLICATION_ID, FORMAT_VERSION, SCHEMA};
use crate::untrusted;

/// What a [`Flist::walk`] callback wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    Continue,
    /// Do not descend into this directory.
    SkipChildren,
}

/// Deepest directory nesting a walk follows. Paths are limited to 4096 bytes, so a valid
/// tree is never deeper than 2048; anything deeper is a crafted cycle.
const MAX_DEPTH: usize = MAX_PATH_LEN / 2;
/// Symlinks followed while resolving one path, as Linux's `MAXSYMLINKS`.
const MAX_SYMLINK_HOPS: usize = 40;
const ROOT: u64 = 1;

/// Columns of `inode`, in the order `decode_inode` reads them.
const INODE_COLUMNS: &str =
    "ino, nlink, kind, mode, uid, gid, mtime, mtime_nsec, size, dev_major, dev_minor, target";

/// An open flist.
pub struct Flist {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Flist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flist").field("path", &self.path).finish()
    }
}

impl Flist {
    /// Opens an flist read-only, after checking that the file is one: an SQLite database
    /// (not empty, not truncated) with flisthub's application id, a format version this
    /// build understands and exactly the format's tables (see [`untrusted::open`], which
    /// also says why the file is opened as immutable).
    pub fn open(path: impl AsRef<Path>) -> Result<Flist> {
        let path = path.as_ref().to_owned();
        let header = untrusted::header(&path)?;
        // The header says which application wrote the file before SQLite reads anything.
        if header.application_id != APPLICATION_ID {
            return Err(Error::NotAnFlist {
                path,
                reason: format!(
                    "an SQLite database with application_id {:#x}, not {APPLICATION_ID:#x}",
                    header.application_id
                ),
            });
        }
        if header.user_version > FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                path,
                found: header.user_version,
                supported: FORMAT_VERSION,
            });
        }
        if header.user_version == 0 {
            return Err(Error::Corrupt(format!(
                "{}: no format version (user_version 0)",
                path.display()
            )));
        }
        let conn = untrusted::open(&path, &SCHEMA)?;
        Ok(Flist { conn, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn metadata(&self) -> Result<Metadata> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT key, value FROM metadata ORDER BY key")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Metadata>>()?)
    }

    /// How large the metadata is, without reading it: the longest value and the sum of
    /// every key and value, in bytes (a file from elsewhere may hold anything there).
    pub fn metadata_size(&self) -> Result<(u64, u64)> {
        let (largest, total): (i64, i64) = self.conn.query_row(
            "SELECT coalesce(max(length(CAST(value AS BLOB))), 0),
                    coalesce(sum(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))), 0)
             FROM metadata",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((largest.max(0) as u64, total.max(0) as u64))
    }

    pub fn totals(&self) -> Result<Totals> {
        query_totals(&self.conn, "main")
    }

    /// The rows of the `entry` and `inode` tables, whatever they hold: a bound on the work of
    /// reading a file that came from elsewhere, known before any walk.
    pub fn row_counts(&self) -> Result<(u64, u64)> {
        let (entries, inodes): (i64, i64) = self.conn.query_row(
            "SELECT (SELECT count(*) FROM entry), (SELECT count(*) FROM inode)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((entries.max(0) as u64, inodes.max(0) as u64))
    }

    /// The root directory (its name is empty).
    pub fn root(&self) -> Result<Entry> {
        let entry = self.inode(ROOT, Vec::new())?;
        if !entry.is_dir() {
            return Err(Error::Corrupt("the root is not a directory".into()));
        }
        Ok(entry)
    }

    /// The inode `ino`, under the name `name`.
    ///
    /// Entries and inodes are read with single-table statements: SQLite (built with STAT4,
    /// as rusqlite bundles it) re-prepares a cached statement that joins them on every reuse,
    /// which costs more than the lookup itself.
    fn inode(&self, ino: u64, name: Vec<u8>) -> Result<Entry> {
        self.conn
            .prepare_cached(&format!("SELECT {INODE_COLUMNS} FROM inode WHERE ino = ?1"))?
            .query_row([ino as i64], |r| decode_inode(r, name))
            .optional()?
            .ok_or_else(|| {
                Error::Corrupt(format!("an entry refers to inode {ino}, which is missing"))
            })?
    }

    /// The entry at `path`, taken literally: symlinks are not followed. A leading `/`, empty
    /// and `.` components are ignored, `..` goes up (never above the root).
    pub fn lookup(&self, path: &[u8]) -> Result<Option<Entry>> {
        Ok(self.locate(path)?.map(|(_, entry)| entry))
    }

    /// [`lookup`](Self::lookup), also returning the entry's canonical path.
    fn locate(&self, path: &[u8]) -> Result<Option<(Vec<u8>, Entry)>> {
        let mut trail = vec![self.root()?];
        for name in path.split(|&b| b == b'/') {
            match name {
                b"" | b"." => {}
                b".." => {
                    if trail.len() > 1 {
                        trail.pop();
                    }
                }
                _ => {
                    let dir = match trail.last() {
                        Some(d) if d.is_dir() => d.ino,
                        _ => return Ok(None),
                    };
                    match self.child(dir, name)? {
                        Some(entry) => trail.push(entry),
                        None => return Ok(None),
                    }
                }
            }
        }
        let names: Vec<&[u8]> = trail[1..].iter().map(|e| e.name.as_slice()).collect();
        let canonical = names.join(&b'/');
        Ok(trail.pop().map(|entry| (canonical, entry)))
    }

    /// The entry at `path` with every symlink on the way (and at the end) followed inside
    /// the flist, as if the flist were the root of the filesystem.
    pub fn resolve(&self, path: &[u8]) -> Result<Option<Entry>> {
        let mut pending: VecDeque<Vec<u8>> = components(path);
        let mut trail = vec![self.root()?];
        let mut hops = 0;
        while let Some(name) = pending.pop_front() {
            if name == b".." {
                if trail.len() > 1 {
                    trail.pop();
                }
                continue;
            }
            let dir = match trail.last() {
                Some(d) if d.is_dir() => d.ino,
                _ => return Ok(None),
            };
            let Some(entry) = self.child(dir, &name)? else {
                return Ok(None);
            };
            if let NodeKind::Symlink { target } = &entry.node.kind {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(Error::Conflict {
                        path: show(path),
                        reason: "too many levels of symbolic links".into(),
                    });
                }
                if target.starts_with(b"/") {
                    trail.truncate(1);
                }
                for (i, c) in components(target).into_iter().enumerate() {
                    pending.insert(i, c);
                }
            } else {
                trail.push(entry);
            }
        }
        Ok(trail.pop())
    }

    /// The entries of the directory at `path` (taken literally), sorted by name.
    pub fn read_dir(&self, path: &[u8]) -> Result<Vec<Entry>> {
        let dir = self
            .lookup(path)?
            .ok_or_else(|| Error::NotFound(show(path)))?;
        if !dir.is_dir() {
            return Err(Error::Conflict {
                path: show(path),
                reason: "not a directory".into(),
            });
        }
        self.children(dir.ino)
    }

    /// The entries of directory inode `ino`, sorted by name.
    pub fn children(&self, ino: u64) -> Result<Vec<Entry>> {
        let (mut children, sorted) = self.children_rows(ino, 0, u64::MAX)?;
        if !sorted {
            children.sort_by(|a, b| a.name.cmp(&b.name));
            // The key (parent, name) is unique in a sound file; a file edited below SQLite
            // can hold one twice, and the tree would then have two entries of one path.
            if let Some(twice) = children.windows(2).find(|w| w[0].name == w[1].name) {
                return Err(Error::Corrupt(format!(
                    "directory inode {ino} holds two entries named {:?}",
                    show(&twice[0].name)
                )));
            }
        }
        Ok(children)
    }

    /// `limit` entries of directory inode `ino` from the `offset`th, by name, and how many
    /// it holds: one page of a large directory without decoding the rest.
    pub fn children_page(&self, ino: u64, offset: u64, limit: u64) -> Result<(Vec<Entry>, u64)> {
        let total: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM entry WHERE parent = ?1")?
            .query_row([ino as i64], |r| r.get(0))?;
        let (page, sorted) = self.children_rows(ino, offset, limit)?;
        if sorted {
            return Ok((page, total.max(0) as u64));
        }
        // Rows out of name order (a file from elsewhere): the whole directory, sorted.
        let all = self.children(ino)?;
        let total = all.len() as u64;
        let page = all
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect();
        Ok((page, total))
    }

    /// Up to `limit` entries of directory inode `ino` from the `offset`th, in the order of
    /// the index, and whether that order was by name.
    fn children_rows(&self, ino: u64, offset: u64, limit: u64) -> Result<(Vec<Entry>, bool)> {
        // One range scan of the `entry` key joined with each child's inode: the rows come in
        // name order (checked below). No ORDER BY: with one, SQLite would re-prepare the
        // cached statement on every reuse (see `inode`).
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {}, e.name, e.ino FROM entry e LEFT JOIN inode i ON i.ino = e.ino
             WHERE e.parent = ?1 LIMIT ?2 OFFSET ?3",
            INODE_COLUMNS
                .split(", ")
                .map(|c| format!("i.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))?;
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let rows = stmt.query_map([ino as i64, clamp(limit), clamp(offset)], |r| {
            let name: Vec<u8> = r.get(12)?;
            let child: i64 = r.get(13)?;
            // LEFT JOIN: no inode row gives NULLs, reported below rather than as a type error.
            let entry = match r.get::<_, Option<i64>>(0)? {
                Some(_) => Some(decode_inode(r, name.clone())?),
                None => None,
            };
            Ok((name, child, entry))
        })?;
        let mut children: Vec<Entry> = Vec::new();
        let mut sorted = true;
        for row in rows {
            let (name, child, entry) = row?;
            check_name(&name).map_err(|reason| {
                Error::Corrupt(format!(
                    "entry {:?} in directory inode {ino}: {reason}",
                    show(&name)
                ))
            })?;
            checked_ino(child)?;
            let entry = entry.ok_or_else(|| {
                Error::Corrupt(format!(
                    "an entry refers to inode {child}, which is missing"
                ))
            })??;
            sorted &= children.last().is_none_or(|last| last.name < entry.name);
            children.push(entry);
        }
        Ok((children, sorted))
    }

    fn child(&self, dir: u64, name: &[u8]) -> Result<Option<Entry>> {
        if check_name(name).is_err() {
            return Ok(None);
        }
        let ino: Option<i64> = self
            .conn
            .prepare_cached("SELECT ino FROM entry WHERE parent = ?1 AND name = ?2")?
            .query_row(rusqlite::params![dir as i64, name], |r| r.get(0))
            .optional()?;
        ino.map(|ino| self.inode(checked_ino(ino)?, name.to_vec()))
            .transpose()
    }

    /// Visits every entry depth-first, the root first (with an empty path), then each
    /// directory's entries in name order, each with its path relative to the root.
    pub fn walk(&self, visit: impl FnMut(&[u8], &Entry) -> Result<Walk>) -> Result<()> {
        self.walk_from(b"", visit)
    }

    /// Like [`walk`](Self::walk), over the subtree at `path` (taken literally); paths given
    /// to `visit` are still relative to the root of the flist.
    pub fn walk_from(
        &self,
        path: &[u8],
        mut visit: impl FnMut(&[u8], &Entry) -> Result<Walk>,
    ) -> Result<()> {
        let (start_path, start) = self
            .locate(path)?
            .ok_or_else(|| Error::NotFound(show(path)))?;
        if visit(&start_path, &start)? == Walk::SkipChildren || !start.is_dir() {
            return Ok(());
        }
        // A directory has exactly one name. Without this check a few crafted entries make a
        // graph whose walk never ends (each directory named twice doubles the tree).
        let mut directories: HashSet<u64> = HashSet::from([start.ino]);
        let mut stack = vec![(start_path, self.children(start.ino)?.into_iter())];
        while let Some((dir, entries)) = stack.last_mut() {
            let Some(entry) = entries.next() else {
                stack.pop();
                continue;
            };
            let path = join(dir, &entry.name);
            if entry.is_dir() && !directories.insert(entry.ino) {
                return Err(Error::Corrupt(format!(
                    "directory inode {} has several names (at {:?})",
                    entry.ino,
                    show(&path)
                )));
            }
            if visit(&path, &entry)? == Walk::Continue && entry.is_dir() {
                if stack.len() >= MAX_DEPTH {
                    return Err(Error::Corrupt(format!(
                        "directories nested deeper than {MAX_DEPTH} at {:?} (a cycle?)",
                        show(&path)
                    )));
                }
                let children = self.children(entry.ino)?;
                stack.push((path, children.into_iter()));
            }
        }
        Ok(())
    }

    /// The chunks of a regular file, in file order, checked to be numbered from 0, to be
    /// contiguous and to add up to the file's size.
    pub fn chunks(&self, file: &Entry) -> Result<Vec<ChunkRef>> {
        let size = regular_size(file)?;
        let ino = file.ino;
        // In key order without ORDER BY (see `children`); the sequence check below would
        // catch any other order.
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, start, length, key FROM chunk WHERE ino = ?1")?;
        let rows = stmt.query_map([ino as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        let mut chunks = FileChunks::new(ino as i64);
        for row in rows {
            let (seq, start, length, key) = row?;
            chunks.push(seq, start, length, key)?;
        }
        chunks.finish(size)
    }

    /// [`walk`](Self::walk), with a [`ChunkScan`] that gives the chunks of the files visited
    /// (as [`chunks`](Self::chunks) does, same checks) from one pass over the chunk table
    /// rather than one query per file: inodes are numbered in walk order, so the pass
    /// follows the walk (files asked out of that order are looked up one by one).
    pub fn walk_with_chunks(
        &self,
        mut visit: impl FnMut(&[u8], &Entry, &mut ChunkScan<'_>) -> Result<Walk>,
    ) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare("SELECT ino, seq, start, length, key FROM chunk ORDER BY ino, seq")?;
        let mut scan = ChunkScan {
            flist: self,
            rows: stmt.query([])?,
            next: None,
            done: false,
            last: 0,
        };
        self.walk(|path, entry| visit(path, entry, &mut scan))
    }

    /// Every chunk key of every regular file, in one pass over the chunk table, each file's
    /// chunks checked as [`chunks`](Self::chunks) checks them (numbered from 0, contiguous,
    /// adding up to the file's size). For checking a whole flist at once: much faster than
    /// a [`chunks`](Self::chunks) call per file. `visit` gets each key with its chunk's
    /// plaintext length, and may end the pass early.
    pub fn chunk_keys(
        &self,
        mut visit: impl FnMut([u8; 32], u32) -> std::ops::ControlFlow<()>,
    ) -> Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT i.ino, i.size, c.seq, c.start, c.length, c.key
             FROM inode i LEFT JOIN chunk c ON c.ino = i.ino
             WHERE i.kind = ?1 ORDER BY i.ino, c.seq",
        )?;
        let mut rows = stmt.query([Kind::Regular.code()])?;
        // The file being checked, and its size.
        let mut file: Option<(FileChunks, u64)> = None;
        let finish = |file: Option<(FileChunks, u64)>| match file {
            Some((chunks, size)) => chunks.finish(size).map(drop),
            None => Ok(()),
        };
        while let Some(row) = rows.next()? {
            let ino: i64 = row.get(0)?;
            let size = u64::try_from(row.get::<_, i64>(1)?)
                .map_err(|_| Error::Corrupt(format!("inode {ino}: size out of range")))?;
            if file.as_ref().is_none_or(|(chunks, _)| chunks.ino() != ino) {
                finish(file.take())?;
                file = Some((FileChunks::new(ino), size));
            }
            let Some(seq) = row.get::<_, Option<i64>>(2)? else {
                continue; // a file without chunks: fine if it is empty (checked at its end)
            };
            let Some((chunks, _)) = file.as_mut() else {
                continue;
            };
            let chunk = chunks.push(seq, row.get(3)?, row.get(4)?, row.get(5)?)?;
            if visit(chunk.key, chunk.length).is_break() {
                return Ok(());
            }
        }
        finish(file)
    }

    /// Extended attributes of inode `ino`, sorted by name.
    pub fn xattrs(&self, ino: u64) -> Result<Vec<Xattr>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, value FROM xattr WHERE ino = ?1")?;
        let rows = stmt.query_map([ino as i64], |r| {
            Ok(Xattr {
                name: r.get(0)?,
                value: r.get(1)?,
            })
        })?;
        let mut xattrs: Vec<Xattr> = rows.collect::<rusqlite::Result<_>>()?;
        xattrs.sort(); // already in key order; sorting a sorted list is one pass
        if let Some(bad) = xattrs.iter().find(|x| !x.has_valid_name()) {
            return Err(Error::Corrupt(format!(
                "inode {ino} has an extended attribute named {:?}",
                show(&bad.name)
            )));
        }
        // As for entries: the key (ino, name) is unique only while SQLite keeps it so.
        if let Some(twice) = xattrs.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(Error::Corrupt(format!(
                "inode {ino} has two extended attributes named {:?}",
                show(&twice[0].name)
            )));
        }
        Ok(xattrs)
    }

    /// The inodes that have extended attributes (one scan of the table's key), so that a
    /// reader visiting every entry asks [`xattrs`](Self::xattrs) only for those.
    pub fn xattr_inodes(&self) -> Result<HashSet<u64>> {
        let mut stmt = self.conn.prepare("SELECT DISTINCT ino FROM xattr")?;
        let rows = stmt.query_map([], |r| r.get::<_, i64>(0))?;
        rows.map(|ino| checked_ino(ino?)).collect()
    }
}

fn components(path: &[u8]) -> VecDeque<Vec<u8>> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
        .collect()
}

fn checked_ino(ino: i64) -> Result<u64> {
    u64::try_from(ino)
        .ok()
        .filter(|&i| i >= 1)
        .ok_or_else(|| Error::Corrupt(format!("invalid inode number {ino}")))
}

/// Decodes an `inode` row (columns as `INODE_COLUMNS`), checking every field against the
/// format (outer error: SQLite, inner error: the row breaks the format).
fn decode_inode(r: &Row, name: Vec<u8>) -> rusqlite::Result<Result<Entry>> {
    let ino: i64 = r.get(0)?;
    let nlink: i64 = r.get(1)?;
    let code: i64 = r.get(2)?;
    let mode: i64 = r.get(3)?;
    let uid: i64 = r.get(4)?;
    let gid: i64 = r.get(5)?;
    let secs: i64 = r.get(6)?;
    let nanos: i64 = r.get(7)?;
    let size: i64 = r.get(8)?;
    let major: i64 = r.get(9)?;
    let minor: i64 = r.get(10)?;
    let target: Option<Vec<u8>> = r.get(11)?;
    Ok((|| {
        let bad = |what: &str| Err(Error::Corrupt(format!("inode {ino}: {what}")));
        let Some(kind) = Kind::from_code(code) else {
            return bad("unknown kind");
        };
        let (Ok(uid), Ok(gid), Ok(nlink), Ok(size)) = (
            u32::try_from(uid),
            u32::try_from(gid),
            u32::try_from(nlink),
            u64::try_from(size),
        ) else {
            return bad("uid, gid, nlink or size out of range");
        };
        if ino < 1 || !(0..=0o7777).contains(&mode) || !(0..1_000_000_000).contains(&nanos) {
            return bad("inode number, mode or mtime out of range");
        }
        let device = || match (u32::try_from(major), u32::try_from(minor)) {
            (Ok(major), Ok(minor)) => Ok((major, minor)),
            _ => Err(Error::Corrupt(format!(
                "inode {ino}: device number out of range"
            ))),
        };
        if target.is_some() != (kind == Kind::Symlink) {
            return bad("a link target on something other than a symlink, or none on a symlink");
        }
        let kind = match kind {
            Kind::Directory => NodeKind::Directory,
            Kind::Regular => NodeKind::Regular { size },
            Kind::Symlink => NodeKind::Symlink {
                target: target.unwrap_or_default(),
            },
            Kind::CharDevice => {
                let (major, minor) = device()?;
                NodeKind::CharDevice { major, minor }
            }
            Kind::BlockDevice => {
                let (major, minor) = device()?;
                NodeKind::BlockDevice { major, minor }
            }
            Kind::Fifo => NodeKind::Fifo,
            Kind::Socket => NodeKind::Socket,
        };
        Ok(Entry {
            name,
            ino: ino as u64,
            nlink,
            node: Node {
                kind,
                mode: mode as u32,
                uid,
                gid,
                mtime: Timestamp {
                    secs,
                    nanos: nanos as u32,
                },
            },
        })
    })())
}

/// Totals over the flist in database `db` ("main", or "out" while writing).
pub(crate) fn query_totals(conn: &Connection, db: &str) -> Result<Totals> {
    let mut totals = Totals::default();
    let mut stmt = conn.prepare(&format!(
        "SELECT kind, count(*), coalesce(sum(size), 0), coalesce(sum(nlink - 1), 0)
         FROM {db}.inode GROUP BY kind"
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let (kind, count, size, extra_names): (i64, i64, i64, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let [count, size, extra_names] = [count, size, extra_names]
            .map(|n| u64::try_from(n).map_err(|_| Error::Corrupt("negative size or nlink".into())));
        let (count, size, extra_names) = (count?, size?, extra_names?);
        totals.hardlinks += extra_names;
        match Kind::from_code(kind) {
            Some(Kind::Directory) => totals.directories += count,
            Some(Kind::Regular) => {
                totals.files += count;
                totals.bytes += size;
            }
            Some(Kind::Symlink) => totals.symlinks += count,
            Some(_) => totals.specials += count,
            None => return Err(Error::Corrupt(format!("unknown inode kind {kind}"))),
        }
    }
    let (chunks, unique_chunks): (i64, i64) = conn.query_row(
        &format!("SELECT count(*), count(DISTINCT key) FROM {db}.chunk"),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    // Counts are never negative.
    (totals.chunks, totals.unique_chunks) = (chunks as u64, unique_chunks as u64);
    Ok(totals)
}
