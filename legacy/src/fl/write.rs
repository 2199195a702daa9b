//! Writing an fl file that rfs 2.0.6 mounts, byte-identical for the same input.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use rusqlite::{Connection, params};

use super::{Block, CREATE, Route, makedev, mode};
use crate::error::{Error, Result};
use crate::tree::{Entry, Kind, Special, Tree, block_count, name_of, parent_of};

/// Directories' `size`, as `stat` gives it on most filesystems (rfs stores what it reads).
const DIR_SIZE: i64 = 4096;

/// Writes `tree` as an fl file to `out`, with `tags` in the `tag` table and `routes` (each
/// checked by [`Route::check`]) in the `route` table.
///
/// Inodes are numbered 1, 2, ... in the tree's depth-first order (the root is 1, its parent
/// 0, its name `/`, as rfs writes it); everything is written in one transaction into a fresh
/// file with page size 4096, so the same arguments always give the same bytes.
///
/// Refused (as [`Error::Tree`]): names that are not UTF-8 (rfs reads names as text), special
/// files of unknown type, and files whose block list is not one block per 512 KiB.
pub fn write(
    tree: &Tree<Block>,
    tags: &BTreeMap<String, String>,
    routes: &[Route],
    mut out: impl Write,
) -> Result<()> {
    for route in routes {
        route.check()?;
    }
    let scratch = crate::scratch()?;
    let db = scratch.path().join("flist.fl");
    write_database(tree, tags, routes, &db)?;
    let mut file = std::fs::File::open(&db).map_err(Error::io("reading the fl file"))?;
    std::io::copy(&mut file, &mut out)
        .and_then(|_| out.flush())
        .map_err(Error::io("writing the fl file"))
}

fn write_database(
    tree: &Tree<Block>,
    tags: &BTreeMap<String, String>,
    routes: &[Route],
    db: &Path,
) -> Result<()> {
    let conn = Connection::open(db)?;
    conn.execute_batch(&format!(
        "PRAGMA page_size = 4096; PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
         {CREATE} BEGIN;"
    ))?;
    {
        let mut inode = conn.prepare(
            "INSERT INTO inode (ino, parent, name, size, uid, gid, mode, rdev, ctime, mtime)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        let mut extra = conn.prepare("INSERT INTO extra (ino, data) VALUES (?1, ?2)")?;
        let mut block = conn.prepare("INSERT INTO block (ino, id, key) VALUES (?1, ?2, ?3)")?;
        let mut directories: HashMap<Vec<u8>, i64> = HashMap::new();
        for (index, (path, entry)) in tree.iter().enumerate() {
            let ino = index as i64 + 1;
            let (parent, name) = if path.is_empty() {
                (0, "/")
            } else {
                let parent = directories.get(parent_of(&path)).copied().unwrap_or(1);
                let name = std::str::from_utf8(name_of(&path)).map_err(|_| {
                    Error::tree(&path, "a name that is not UTF-8, which fl cannot hold")
                })?;
                (parent, name)
            };
            let (kind, size, rdev) = shape(&path, entry)?;
            inode.execute(params![
                ino,
                parent,
                name,
                size,
                entry.uid,
                entry.gid,
                kind | (entry.mode & 0o7777),
                rdev as i64,
                entry.ctime,
                entry.mtime
            ])?;
            match &entry.kind {
                Kind::Directory => {
                    directories.insert(path, ino);
                }
                Kind::Symlink { target } => {
                    extra.execute(params![ino, target])?;
                }
                Kind::File { blocks, .. } => {
                    for b in blocks {
                        block.execute(params![ino, &b.id[..], &b.key[..]])?;
                    }
                }
                Kind::Special(_) => {}
            }
        }
        let mut tag = conn.prepare("INSERT INTO tag (key, value) VALUES (?1, ?2)")?;
        for (key, value) in tags {
            tag.execute(params![key, value])?;
        }
        let mut route = conn.prepare("INSERT INTO route (start, end, url) VALUES (?1, ?2, ?3)")?;
        for r in routes {
            route.execute(params![r.start, r.end, r.url])?;
        }
    }
    conn.execute_batch("COMMIT")?;
    conn.close().map_err(|(_, e)| Error::Sqlite(e))
}

/// An entry's file type bits, `size` and `rdev`.
fn shape(path: &[u8], entry: &Entry<Block>) -> Result<(u32, i64, u64)> {
    let size = |n: u64| i64::try_from(n).map_err(|_| Error::tree(path, "a size beyond 2^63"));
    Ok(match &entry.kind {
        Kind::Directory => (mode::DIRECTORY, DIR_SIZE, 0),
        Kind::File { size: n, blocks } => {
            if blocks.len() as u64 != block_count(*n) {
                return Err(Error::tree(
                    path,
                    format!("{} blocks for {n} bytes (one per 512 KiB)", blocks.len()),
                ));
            }
            (mode::REGULAR, size(*n)?, 0)
        }
        Kind::Symlink { target } => (mode::SYMLINK, size(target.len() as u64)?, 0),
        Kind::Special(Special::Socket) => (mode::SOCKET, 0, 0),
        Kind::Special(Special::Fifo) => (mode::FIFO, 0, 0),
        Kind::Special(Special::CharDevice { major, minor }) => {
            (mode::CHAR, 0, makedev(*major, *minor))
        }
        Kind::Special(Special::BlockDevice { major, minor }) => {
            (mode::BLOCK, 0, makedev(*major, *minor))
        }
        Kind::Special(Special::Unknown) => {
            return Err(Error::tree(path, "a special file of unknown type"));
        }
    })
}
