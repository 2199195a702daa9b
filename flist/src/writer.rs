//! Building an flist from entries that arrive in any order.
//!
//! Entries go into a private staging database (an anonymous SQLite temporary file, unlinked
//! as soon as it is opened, so nothing is left behind even if the process is killed), keyed
//! by path, so the writer's memory does not grow with the tree: a directory may arrive after its children, a
//! path may be given twice (the last one wins, as extraction would), and a hardlink refers to a
//! path seen earlier. [`FlistWriter::finish`] checks the tree, numbers the inodes canonically
//! (depth-first, names in byte order) and copies everything in that order into a fresh file
//! that replaces the output atomically. Because the published file depends only on the final
//! tree, the same input always produces the same bytes.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result, show};
use crate::metadata::{Metadata, keys};
use crate::node::{ChunkRef, Kind, Node, NodeKind, Totals, Xattr};
use crate::path::{split_key, staging_key, validate_path};
use crate::reader::query_totals;
use crate::schema::{APPLICATION_ID, FINAL_TABLES, FORMAT_VERSION, PAGE_SIZE};

const STAGING_TABLES: &str = "
CREATE TABLE s_inode (
    ino INTEGER PRIMARY KEY, kind INTEGER NOT NULL, mode INTEGER NOT NULL,
    uid INTEGER NOT NULL, gid INTEGER NOT NULL, mtime INTEGER NOT NULL,
    mtime_nsec INTEGER NOT NULL, size INTEGER NOT NULL,
    dev_major INTEGER NOT NULL, dev_minor INTEGER NOT NULL, target BLOB
);
CREATE TABLE s_entry (
    key BLOB PRIMARY KEY, parent INTEGER NOT NULL, name BLOB NOT NULL, ino INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE s_chunk (
    ino INTEGER NOT NULL, seq INTEGER NOT NULL, start INTEGER NOT NULL,
    length INTEGER NOT NULL, key BLOB NOT NULL, PRIMARY KEY (ino, seq)
) WITHOUT ROWID;
CREATE TABLE s_undescribed (ino INTEGER PRIMARY KEY);
CREATE TABLE s_xattr (
    ino INTEGER NOT NULL, name BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (ino, name)
) WITHOUT ROWID;
";

/// Staging SQLite page cache, in KiB. Bounds the writer's memory whatever the tree size.
const STAGING_CACHE_KIB: i64 = 16 * 1024;

/// Directories created because an entry arrived before its parent get this mode and the
/// epoch as their time unless the directory shows up later (GNU tar would use the umask and
/// the current time, which would make the result depend on when it was made; umoci, the
/// reference for images, gives the epoch too). The root, when no entry describes it, takes
/// the newest mtime of the tree instead: it becomes the extract's destination, which would
/// otherwise be dated 1970.
const IMPLICIT_DIR_MODE: u32 = 0o755;

/// An inode of the flist being written. Only meaningful for the writer that returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InodeId(i64);

/// Writes one flist. Dropping it without calling [`finish`](Self::finish) leaves nothing
/// behind: no output file, no staging file.
pub struct FlistWriter {
    conn: Connection,
    out: PathBuf,
    metadata: Metadata,
    next_ino: i64,
    /// The last parent directory resolved: siblings arrive together, so this saves a lookup
    /// per entry. Cleared whenever an entry is replaced.
    parent_cache: Option<(Vec<u8>, i64)>,
}

const ROOT: i64 = 1;

impl FlistWriter {
    /// Starts an flist that [`finish`](Self::finish) will write to `out`.
    pub fn create(out: impl AsRef<Path>) -> Result<FlistWriter> {
        let out = out.as_ref().to_owned();
        // Fail now rather than after all the work, when the flist would be written.
        let dir = parent_dir(&out);
        if !dir.is_dir() {
            return Err(Error::io(
                dir,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such directory for the flist",
                ),
            ));
        }
        // The empty name asks SQLite for a private temporary database on disk (in
        // SQLITE_TMPDIR or TMPDIR, else /var/tmp or /tmp), deleted when closed.
        let conn = Connection::open("")?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA locking_mode = EXCLUSIVE;
             PRAGMA temp_store = FILE; PRAGMA cache_size = -{STAGING_CACHE_KIB};
             {STAGING_TABLES}
             BEGIN;"
        ))?;
        let mut writer = FlistWriter {
            conn,
            out,
            metadata: Metadata::new(),
            next_ino: ROOT,
            parent_cache: None,
        };
        let root = writer.insert_undescribed_root()?;
        writer
            .conn
            .execute("INSERT INTO s_entry VALUES (x'', 0, x'', ?1)", [root])?;
        Ok(writer)
    }

    /// Metadata written into the flist. `format-version` is set by the writer.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// Adds (or replaces) the entry at `path` (relative, `/`-separated; empty for the root).
    ///
    /// Missing parent directories are created; an existing directory given again keeps its
    /// children and takes the new attributes; anything else at `path` is replaced, a replaced
    /// directory with all it contained. A path below a symlink or a non-directory is refused.
    pub fn add(&mut self, path: &[u8], node: &Node, xattrs: &[Xattr]) -> Result<InodeId> {
        validate_path(path)?;
        let key = staging_key(path);
        if key.is_empty() {
            if !node.is_dir() {
                return Err(conflict(path, "the root must be a directory"));
            }
            self.update_attributes(ROOT, node, xattrs)?;
            return Ok(InodeId(ROOT));
        }
        let (parent_key, name) = split_key(&key);
        let parent = self.ensure_dir(parent_key, path)?;
        let ino = match self.lookup_key(&key)? {
            Some((ino, Kind::Directory)) if node.is_dir() => {
                self.update_attributes(ino, node, xattrs)?;
                ino
            }
            existing => {
                let ino = self.insert_inode(node)?;
                self.insert_xattrs(ino, xattrs)?;
                self.put_entry(&key, parent, name, ino, existing)?;
                ino
            }
        };
        Ok(InodeId(ino))
    }

    /// Adds `path` as another name of the entry already at `target` (a tar hardlink).
    pub fn add_hardlink(&mut self, path: &[u8], target: &[u8]) -> Result<InodeId> {
        validate_path(target)?;
        let (ino, kind) = self.lookup_key(&staging_key(target))?.ok_or_else(|| {
            conflict(
                path,
                format!("hardlink target {:?} is not an earlier entry", show(target)),
            )
        })?;
        if kind == Kind::Directory {
            return Err(conflict(
                path,
                format!("hardlink target {:?} is a directory", show(target)),
            ));
        }
        self.link(path, InodeId(ino))
    }

    /// Adds `path` as another name of `inode`, which must not be a directory.
    pub fn link(&mut self, path: &[u8], inode: InodeId) -> Result<InodeId> {
        validate_path(path)?;
        let key = staging_key(path);
        if key.is_empty() {
            return Err(conflict(path, "the root cannot be a hardlink"));
        }
        let kind: i64 = self
            .conn
            .prepare_cached("SELECT kind FROM s_inode WHERE ino = ?1")?
            .query_row([inode.0], |r| r.get(0))
            .optional()?
            .ok_or_else(|| conflict(path, "hardlink to an unknown inode"))?;
        if kind == Kind::Directory.code() {
            return Err(conflict(path, "hardlink to a directory"));
        }
        let (parent_key, name) = split_key(&key);
        let parent = self.ensure_dir(parent_key, path)?;
        let existing = self.lookup_key(&key)?;
        if existing.map(|(ino, _)| ino) != Some(inode.0) {
            self.put_entry(&key, parent, name, inode.0, existing)?;
        }
        Ok(inode)
    }

    /// Records chunk number `seq` (from 0) of a regular file. Chunks may arrive in any order;
    /// [`finish`](Self::finish) checks that each file's chunks cover exactly its size.
    pub fn add_chunk(&mut self, inode: InodeId, seq: u32, chunk: &ChunkRef) -> Result<()> {
        self.conn
            .prepare_cached("INSERT INTO s_chunk VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![
                inode.0,
                seq,
                to_i64(chunk.offset)?,
                chunk.length,
                &chunk.key[..]
            ])?;
        Ok(())
    }

    /// The kind of the entry at `path`, if there is one.
    pub fn kind_at(&self, path: &[u8]) -> Result<Option<Kind>> {
        validate_path(path)?;
        Ok(self.lookup_key(&staging_key(path))?.map(|(_, kind)| kind))
    }

    /// Checks the tree and writes the flist to its output path atomically (the file appears
    /// complete or not at all, and is synced to disk first).
    pub fn finish(mut self) -> Result<Totals> {
        self.conn.execute_batch(
            "UPDATE s_inode SET mtime = (SELECT MAX(mtime) FROM s_inode), mtime_nsec = 0
             WHERE ino IN (SELECT ino FROM s_undescribed);
             COMMIT",
        )?;
        self.number_inodes()?;
        self.check_chunks()?;
        self.metadata
            .set(keys::FORMAT_VERSION, FORMAT_VERSION.to_string());

        let dir = parent_dir(&self.out).to_owned();
        let dir = dir.as_path();
        // Mode 0666 less the umask, as for any file a command creates (tempfile's own
        // default, 0600, would make published flists unreadable to others).
        let tmp = tempfile::Builder::new()
            .prefix(".flist-")
            .suffix(".tmp")
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?
            .into_temp_path();
        // Bound as a blob so that paths which are not UTF-8 work: SQLite reads the bytes.
        self.conn
            .execute("ATTACH DATABASE ?1 AS out", [tmp.as_os_str().as_bytes()])?;
        let totals = self.write_out();
        self.conn.execute_batch("DETACH DATABASE out")?;
        let totals = totals?;

        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&*tmp, e))?;
        tmp.persist(&self.out)
            .map_err(|e| Error::io(&self.out, e.error))?;
        // The flist is published; failing to sync the directory only means the rename may
        // not survive a power cut, which is no reason to report the write as failed.
        if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
            tracing::warn!(dir = %dir.display(), error = %e, "could not sync the directory");
        }
        Ok(totals)
    }

    fn write_out(&mut self) -> Result<Totals> {
        self.conn.execute_batch(&format!(
            "PRAGMA out.page_size = {PAGE_SIZE}; PRAGMA out.journal_mode = OFF;
             PRAGMA out.synchronous = OFF;
             PRAGMA out.application_id = {APPLICATION_ID};
             PRAGMA out.user_version = {FORMAT_VERSION};"
        ))?;
        let tables = FINAL_TABLES.replace("CREATE TABLE ", "CREATE TABLE out.");
        self.conn.execute_batch(&format!(
            "BEGIN;
             {tables}
             INSERT INTO out.inode
                 SELECT m.new, i.kind, i.mode, i.uid, i.gid, i.mtime, i.mtime_nsec, i.size,
                        m.nlink, i.dev_major, i.dev_minor, i.target
                 FROM s_inomap m JOIN s_inode i ON i.ino = m.old ORDER BY m.new;
             INSERT INTO out.entry
                 SELECT p.new, e.name, m.new
                 FROM s_entry e JOIN s_inomap m ON m.old = e.ino JOIN s_inomap p ON p.old = e.parent
                 WHERE e.key != x'' ORDER BY p.new, e.name;
             INSERT INTO out.chunk
                 SELECT m.new, c.seq, c.start, c.length, c.key
                 FROM s_inomap m JOIN s_chunk c ON c.ino = m.old ORDER BY m.new, c.seq;
             INSERT INTO out.xattr
                 SELECT m.new, x.name, x.value
                 FROM s_inomap m JOIN s_xattr x ON x.ino = m.old ORDER BY m.new, x.name;"
        ))?;
        {
            let mut insert = self
                .conn
                .prepare("INSERT INTO out.metadata VALUES (?1, ?2)")?;
            for (key, value) in self.metadata.iter() {
                insert.execute([key, value])?;
            }
        }
        self.conn.execute_batch("COMMIT")?;
        query_totals(&self.conn, "out")
    }

    /// Gives every inode still reachable its final number: the order of the first path that
    /// names it, in depth-first pre-order (the root is 1). Replaced entries' inodes drop out.
    fn number_inodes(&mut self) -> Result<()> {
        self.conn.execute_batch(
            "CREATE TABLE s_inomap (old INTEGER PRIMARY KEY, new INTEGER NOT NULL, nlink INTEGER NOT NULL);
             INSERT INTO s_inomap
                 SELECT ino, row_number() OVER (ORDER BY first), n
                 FROM (SELECT ino, min(key) AS first, count(*) AS n FROM s_entry GROUP BY ino);",
        )?;
        Ok(())
    }

    /// Every regular file must be covered exactly by its chunks: numbered from 0 without
    /// gaps, each starting where the previous one ended, summing to the file size. A file
    /// whose content was not completely stored must never be published.
    fn check_chunks(&self) -> Result<()> {
        let bad: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT m.old, CASE
                     WHEN i.kind != 2 THEN 'chunks on an inode that is not a regular file'
                     ELSE 'its chunks do not cover its size' END
                 FROM s_inomap m JOIN s_inode i ON i.ino = m.old
                 LEFT JOIN (SELECT ino, count(*) AS n, max(seq) AS last, sum(length) AS total,
                                   min(length) AS smallest FROM s_chunk GROUP BY ino) c
                        ON c.ino = m.old
                 WHERE (i.kind != 2 AND c.n IS NOT NULL)
                    OR (i.kind = 2 AND (coalesce(c.total, 0) != i.size
                                        OR coalesce(c.last + 1, 0) != coalesce(c.n, 0)
                                        OR coalesce(c.smallest, 1) < 1))
                 LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let bad = match bad {
            Some(bad) => Some(bad),
            None => self
                .conn
                .query_row(
                    "SELECT ino, 'a chunk does not start where the previous one ended' FROM (
                         SELECT ino, start,
                                sum(length) OVER (PARTITION BY ino ORDER BY seq) - length AS expected
                         FROM s_chunk WHERE ino IN (SELECT old FROM s_inomap))
                     WHERE start != expected LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?,
        };
        match bad {
            None => Ok(()),
            Some((ino, reason)) => Err(conflict(&self.path_of(ino)?, reason)),
        }
    }

    fn path_of(&self, ino: i64) -> Result<Vec<u8>> {
        let key: Vec<u8> =
            self.conn
                .query_row("SELECT min(key) FROM s_entry WHERE ino = ?1", [ino], |r| {
                    r.get(0)
                })?;
        Ok(key
            .into_iter()
            .map(|b| if b == 0 { b'/' } else { b })
            .collect())
    }

    fn lookup_key(&self, key: &[u8]) -> Result<Option<(i64, Kind)>> {
        let found: Option<(i64, i64)> = self
            .conn
            // A scalar subquery rather than a join: SQLite re-prepares a cached join on every
            // reuse (see the reader).
            .prepare_cached(
                "SELECT ino, (SELECT kind FROM s_inode WHERE ino = e.ino) FROM s_entry e WHERE key = ?1",
            )?
            .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        found
            .map(|(ino, code)| {
                let kind = Kind::from_code(code)
                    .ok_or_else(|| Error::Corrupt(format!("staging kind {code}")))?;
                Ok((ino, kind))
            })
            .transpose()
    }

    /// Returns the inode of the directory at `key`, creating missing directories on the way.
    /// `path` is the entry being added, for error messages.
    fn ensure_dir(&mut self, key: &[u8], path: &[u8]) -> Result<i64> {
        if key.is_empty() {
            return Ok(ROOT);
        }
        if let Some((cached, ino)) = &self.parent_cache
            && cached == key
        {
            return Ok(*ino);
        }
        let ino = match self.lookup_key(key)? {
            Some((ino, Kind::Directory)) => ino,
            Some((_, kind)) => {
                let dir: Vec<u8> = key.iter().map(|&b| if b == 0 { b'/' } else { b }).collect();
                let what = if kind == Kind::Symlink {
                    "is a symlink; refusing a path through it"
                } else {
                    "is not a directory"
                };
                return Err(conflict(path, format!("{:?} {what}", show(&dir))));
            }
            None => {
                let (parent_key, name) = split_key(key);
                let parent = self.ensure_dir(parent_key, path)?;
                let ino = self.insert_inode(&Node::directory(IMPLICIT_DIR_MODE))?;
                self.put_entry(key, parent, name, ino, None)?;
                ino
            }
        };
        self.parent_cache = Some((key.to_vec(), ino));
        Ok(ino)
    }

    /// Points the entry at `key` to `ino`, replacing what was there (and, for a replaced
    /// directory, everything below it).
    fn put_entry(
        &mut self,
        key: &[u8],
        parent: i64,
        name: &[u8],
        ino: i64,
        existing: Option<(i64, Kind)>,
    ) -> Result<()> {
        match existing {
            None => {
                self.conn
                    .prepare_cached("INSERT INTO s_entry VALUES (?1, ?2, ?3, ?4)")?
                    .execute(params![key, parent, name, ino])?;
            }
            Some((_, kind)) => {
                if kind == Kind::Directory {
                    let mut below = key.to_vec();
                    below.push(0);
                    let mut after = key.to_vec();
                    after.push(1);
                    self.conn
                        .prepare_cached("DELETE FROM s_entry WHERE key >= ?1 AND key < ?2")?
                        .execute([below, after])?;
                }
                self.conn
                    .prepare_cached("UPDATE s_entry SET ino = ?2 WHERE key = ?1")?
                    .execute(params![key, ino])?;
                self.parent_cache = None;
            }
        }
        Ok(())
    }

    fn insert_inode(&mut self, node: &Node) -> Result<i64> {
        let ino = self.next_ino;
        self.next_ino += 1;
        let (major, minor, target) = match &node.kind {
            NodeKind::CharDevice { major, minor } | NodeKind::BlockDevice { major, minor } => {
                (*major, *minor, None)
            }
            NodeKind::Symlink { target } => (0, 0, Some(target.as_slice())),
            _ => (0, 0, None),
        };
        self.conn
            .prepare_cached(
                "INSERT INTO s_inode VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                ino,
                node.kind.kind().code(),
                node.mode & 0o7777,
                node.uid,
                node.gid,
                node.mtime.secs,
                node.mtime.nanos,
                to_i64(node.size())?,
                major,
                minor,
                target
            ])?;
        Ok(ino)
    }

    /// Gives an existing directory new attributes and xattrs (a directory given again).
    /// The root, until an entry describes it (see [`IMPLICIT_DIR_MODE`]).
    fn insert_undescribed_root(&mut self) -> Result<i64> {
        let ino = self.insert_inode(&Node::directory(IMPLICIT_DIR_MODE))?;
        self.conn
            .prepare_cached("INSERT INTO s_undescribed VALUES (?1)")?
            .execute([ino])?;
        Ok(ino)
    }

    fn update_attributes(&mut self, ino: i64, node: &Node, xattrs: &[Xattr]) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM s_undescribed WHERE ino = ?1")?
            .execute([ino])?;
        self.conn
            .prepare_cached(
                "UPDATE s_inode SET mode = ?2, uid = ?3, gid = ?4, mtime = ?5, mtime_nsec = ?6 WHERE ino = ?1",
            )?
            .execute(params![
                ino,
                node.mode & 0o7777,
                node.uid,
                node.gid,
                node.mtime.secs,
                node.mtime.nanos
            ])?;
        self.conn
            .prepare_cached("DELETE FROM s_xattr WHERE ino = ?1")?
            .execute([ino])?;
        self.insert_xattrs(ino, xattrs)
    }

    fn insert_xattrs(&mut self, ino: i64, xattrs: &[Xattr]) -> Result<()> {
        if xattrs.is_empty() {
            return Ok(());
        }
        let mut insert = self
            .conn
            .prepare_cached("INSERT OR REPLACE INTO s_xattr VALUES (?1, ?2, ?3)")?;
        for x in xattrs {
            if !x.has_valid_name() {
                return Err(Error::Conflict {
                    path: format!("inode {ino}"),
                    reason: format!("invalid xattr name {:?}", show(&x.name)),
                });
            }
            insert.execute(params![ino, &x.name, &x.value])?;
        }
        Ok(())
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn conflict(path: &[u8], reason: impl Into<String>) -> Error {
    Error::Conflict {
        path: show(path),
        reason: reason.into(),
    }
}

fn to_i64(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::Corrupt(format!("value {n} exceeds the format's range")))
}
