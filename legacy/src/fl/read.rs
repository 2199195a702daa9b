//! Reading an fl file, checking the tree as rfs would need it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row};

use super::{Block, Route, SCHEMA, mode, split_dev};
use crate::Limits;
use crate::error::{Error, Result};
use crate::tree::{Entry, Kind, Special, Totals, Tree, block_count, block_ids};

const FORMAT: &str = "fl";
const ROOT: i64 = 1;
const MAX_DEPTH: usize = flist::MAX_PATH_LEN / 2;
/// rfs's declared widths: `extra.data` VARCHAR(4096), `route.url` VARCHAR(2048).
const MAX_TARGET: usize = 4096;
const MAX_URL: usize = 2048;

fn corrupt(reason: impl Into<String>) -> Error {
    Error::Corrupt {
        format: FORMAT,
        reason: reason.into(),
    }
}

fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// An open fl file.
pub struct FlFile {
    conn: Connection,
    limits: Limits,
}

impl std::fmt::Debug for FlFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlFile").finish_non_exhaustive()
    }
}

/// An `inode` row.
struct InodeRow {
    ino: i64,
    name: Vec<u8>,
    entry: Entry<Block>,
}

impl FlFile {
    /// Opens the fl file at `path` with the default [`Limits`].
    pub fn open(path: &Path) -> Result<FlFile> {
        Self::open_with(path, &Limits::default())
    }

    pub fn open_with(path: &Path, limits: &Limits) -> Result<FlFile> {
        let size = std::fs::metadata(path)
            .map_err(Error::io("opening the fl file"))?
            .len();
        if size > limits.database_bytes {
            return Err(Error::TooLarge {
                what: "the fl file",
                limit: limits.database_bytes,
            });
        }
        let conn = flist::untrusted::open(path, &SCHEMA).map_err(Error::opening(FORMAT))?;
        Ok(FlFile {
            conn,
            limits: *limits,
        })
    }

    /// The `tag` table.
    pub fn tags(&self) -> Result<BTreeMap<String, String>> {
        let total: i64 = self.conn.query_row(
            "SELECT coalesce(sum(octet_length(key) + octet_length(value)), 0) \
             FROM tag",
            [],
            |r| r.get(0),
        )?;
        if total as u64 > self.limits.object_bytes {
            return Err(Error::TooLarge {
                what: "the tags",
                limit: self.limits.object_bytes,
            });
        }
        let mut stmt = self.conn.prepare("SELECT key, value FROM tag")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The `route` table, in row order, each route checked by [`Route::check`]: a file that
    /// points at a local path gives [`Error::LocalRoute`].
    pub fn routes(&self) -> Result<Vec<Route>> {
        // Sizes first, by a statement of their own: SQLite loads every column of a row.
        let (count, longest): (i64, i64) = self.conn.query_row(
            "SELECT count(*), coalesce(max(octet_length(url)), 0) FROM route",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if count > 256 {
            return Err(corrupt(format!("{count} routes")));
        }
        if longest as usize > MAX_URL {
            return Err(corrupt("a route URL longer than 2048 bytes"));
        }
        let mut stmt = self
            .conn
            .prepare("SELECT start, end, CAST(url AS BLOB) FROM route ORDER BY rowid")?;
        let mut rows = stmt.query([])?;
        let mut routes = Vec::new();
        while let Some(r) = rows.next()? {
            let (start, end): (i64, i64) = (r.get(0)?, r.get(1)?);
            let url = String::from_utf8(r.get::<_, Vec<u8>>(2)?)
                .map_err(|_| corrupt("a route URL that is not UTF-8"))?;
            let (Ok(start), Ok(end)) = (u8::try_from(start), u8::try_from(end)) else {
                return Err(corrupt(format!("route {url:?} has a range beyond 0-255")));
            };
            let route = Route { start, end, url };
            route.check()?;
            routes.push(route);
        }
        Ok(routes)
    }

    /// Visits every entry depth-first, the root first (path `""`), each directory's entries
    /// in name order, checking the tree: the root is inode 1 with parent 0; names are valid
    /// and unique in their directory; every inode is reached from the root exactly once
    /// (no cycles, no orphans); types, ids and sizes are in range; symlinks have targets;
    /// files have one 32-byte id and key per 512 KiB.
    pub fn walk(&self, mut visit: impl FnMut(&[u8], &Entry<Block>) -> Result<()>) -> Result<()> {
        let total: i64 = self
            .conn
            .query_row("SELECT count(*) FROM inode", [], |r| r.get(0))?;
        if total as u64 > self.limits.entries {
            return Err(Error::TooLarge {
                what: "the number of entries",
                limit: self.limits.entries,
            });
        }
        let root = self
            .conn
            .query_row(&format!("{SELECT} WHERE ino = ?1"), [ROOT], |r| self.row(r))
            .optional()?
            .ok_or_else(|| corrupt("no root inode (1)"))??;
        let parent: i64 =
            self.conn
                .query_row("SELECT parent FROM inode WHERE ino = ?1", [ROOT], |r| {
                    r.get(0)
                })?;
        if parent != 0 || !root.entry.is_dir() {
            return Err(corrupt("inode 1 is not a root directory (parent 0)"));
        }
        visit(b"", &root.entry)?;
        let mut seen: HashSet<i64> = HashSet::from([ROOT]);
        let mut stack = vec![(Vec::new(), self.children(ROOT)?.into_iter())];
        while let Some((dir, rows)) = stack.last_mut() {
            let Some(row) = rows.next() else {
                stack.pop();
                continue;
            };
            if !seen.insert(row.ino) {
                return Err(corrupt(format!("inode {} is reached twice", row.ino)));
            }
            let path = if dir.is_empty() {
                row.name.clone()
            } else {
                [dir.as_slice(), b"/", &row.name].concat()
            };
            if path.len() > flist::MAX_PATH_LEN {
                return Err(corrupt(format!(
                    "a path longer than 4096 bytes: {:?}",
                    show(&path)
                )));
            }
            let entry = self.complete(row.ino, &path, row.entry)?;
            visit(&path, &entry)?;
            if entry.is_dir() {
                if stack.len() >= MAX_DEPTH {
                    return Err(corrupt(format!(
                        "directories nested deeper than {MAX_DEPTH} at {:?}",
                        show(&path)
                    )));
                }
                let children = self.children(row.ino)?;
                stack.push((path, children.into_iter()));
            }
        }
        if seen.len() as i64 != total {
            return Err(corrupt(format!(
                "{} inodes are not reachable from the root",
                total - seen.len() as i64
            )));
        }
        Ok(())
    }

    /// The whole tree in memory.
    pub fn tree(&self) -> Result<Tree<Block>> {
        Tree::collect(|visit| self.walk(visit))
    }

    pub fn totals(&self) -> Result<Totals> {
        Totals::collect(|visit| self.walk(visit))
    }

    /// The distinct ids of every block the file names.
    pub fn block_ids(&self) -> Result<BTreeSet<[u8; 32]>> {
        block_ids(|visit| self.walk(visit), |b: &Block| b.id)
    }

    /// The entries of directory `ino`, by name, names checked and unique.
    fn children(&self, ino: i64) -> Result<Vec<InodeRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{SELECT} WHERE parent = ?1 AND ino != ?1 ORDER BY CAST(name AS BLOB)"
        ))?;
        let rows = stmt
            .query_map([ino], |r| self.row(r))?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
        for pair in rows.windows(2) {
            if pair[0].name == pair[1].name {
                return Err(corrupt(format!(
                    "the name {:?} appears twice in a directory",
                    show(&pair[0].name)
                )));
            }
        }
        // A self-parented inode is never reached from the root: it shows as an orphan.
        Ok(rows)
    }

    /// An inode row (columns as [`SELECT`]) checked, without what other tables add (outer
    /// error: SQLite, inner error: the row breaks the format).
    fn row(&self, r: &Row) -> rusqlite::Result<Result<InodeRow>> {
        let ino: i64 = r.get(0)?;
        let name = match r.get_ref(1)? {
            ValueRef::Text(t) | ValueRef::Blob(t) => t.to_vec(),
            _ => return Ok(Err(corrupt(format!("inode {ino} has no name")))),
        };
        let ints: [Option<i64>; 7] = [
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
        ];
        Ok((|| {
            let bad = |what: &str| corrupt(format!("inode {ino}: {what}"));
            let [
                Some(size),
                Some(uid),
                Some(gid),
                Some(st_mode),
                Some(rdev),
                Some(ctime),
                Some(mtime),
            ] = ints
            else {
                return Err(bad("a column is NULL"));
            };
            if ino != ROOT && (name.contains(&b'/') || flist::validate_path(&name).is_err()) {
                return Err(bad(&format!("invalid name {:?}", show(&name))));
            }
            // Names are text in this format: rfs reads them as strings and refuses others.
            if std::str::from_utf8(&name).is_err() {
                return Err(bad(&format!("the name {:?} is not UTF-8", show(&name))));
            }
            let (Ok(size), Ok(uid), Ok(gid), Ok(st_mode)) = (
                u64::try_from(size),
                u32::try_from(uid),
                u32::try_from(gid),
                u32::try_from(st_mode),
            ) else {
                return Err(bad("size, uid, gid or mode out of range"));
            };
            let (major, minor) = split_dev(rdev as u64);
            let kind = match st_mode & mode::TYPE {
                mode::DIRECTORY => Kind::Directory,
                mode::REGULAR => Kind::File {
                    size,
                    blocks: Vec::new(),
                },
                mode::SYMLINK => Kind::Symlink { target: Vec::new() },
                mode::SOCKET => Kind::Special(Special::Socket),
                mode::FIFO => Kind::Special(Special::Fifo),
                mode::CHAR => Kind::Special(Special::CharDevice { major, minor }),
                mode::BLOCK => Kind::Special(Special::BlockDevice { major, minor }),
                _ => return Err(bad("an unknown file type")),
            };
            Ok(InodeRow {
                ino,
                name,
                entry: Entry {
                    kind,
                    mode: st_mode & 0o7777,
                    uid,
                    gid,
                    uname: String::new(),
                    gname: String::new(),
                    mtime,
                    ctime,
                },
            })
        })())
    }

    /// Adds a symlink's target and a file's blocks to the entry of inode `ino`.
    fn complete(&self, ino: i64, path: &[u8], mut entry: Entry<Block>) -> Result<Entry<Block>> {
        let bad = |what: String| corrupt(format!("{:?}: {what}", show(path)));
        match &mut entry.kind {
            Kind::Symlink { target } => {
                // The length first, by a statement of its own (see `routes`).
                let len: Option<Option<i64>> = self
                    .conn
                    .prepare_cached("SELECT octet_length(data) FROM extra WHERE ino = ?1")?
                    .query_row([ino], |r| r.get(0))
                    .optional()?;
                let found: Option<Vec<u8>> = match len {
                    Some(Some(len)) if len > 0 && len as usize <= MAX_TARGET => self
                        .conn
                        .prepare_cached("SELECT CAST(data AS BLOB) FROM extra WHERE ino = ?1")?
                        .query_row([ino], |r| r.get(0))?,
                    _ => None,
                };
                match found {
                    Some(data) if !data.is_empty() && !data.contains(&0) => {
                        *target = data;
                    }
                    _ => return Err(bad("a symlink without a valid target".into())),
                }
            }
            Kind::File { size, blocks } => {
                let mut stmt = self.conn.prepare_cached(
                    "SELECT CAST(id AS BLOB), CAST(key AS BLOB) FROM block WHERE ino = ?1 \
                     ORDER BY rowid LIMIT ?2",
                )?;
                // One more than needed: enough to see a list that is too long.
                let want = block_count(*size).saturating_add(1).min(i64::MAX as u64) as i64;
                let rows = stmt.query_map(rusqlite::params![ino, want], |r| {
                    Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
                })?;
                for row in rows {
                    let (id, key) = row?;
                    let (Ok(id), Ok(key)) = (id.try_into(), key.try_into()) else {
                        return Err(bad("a block id or key that is not 32 bytes".into()));
                    };
                    blocks.push(Block { id, key });
                }
                if blocks.len() as u64 != block_count(*size) {
                    return Err(bad(format!(
                        "{}{} blocks for {size} bytes",
                        blocks.len(),
                        if blocks.len() as u64 > block_count(*size) {
                            " or more"
                        } else {
                            ""
                        }
                    )));
                }
            }
            _ => {}
        }
        Ok(entry)
    }
}

/// Columns `row` reads.
const SELECT: &str = "SELECT ino, name, size, uid, gid, mode, rdev, ctime, mtime FROM inode";
