//! Reading a 0-flist: the archive, then the database, then the tree directory by directory.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use capnp::message::ReaderOptions;
use rusqlite::{Connection, OptionalExtension};

use super::flist_capnp::{a_c_i, dir, inode, special};
use super::{Block, SCHEMA, archive, dir_key};
use crate::Limits;
use crate::error::{Error, Result};
use crate::tree::{BLOCK_SIZE, Entry, Kind, Special, Totals, Tree, block_count, block_ids};

const FORMAT: &str = "0-flist";
/// A valid path is at most 4096 bytes, so a tree deeper than this is crafted.
const MAX_DEPTH: usize = flist::MAX_PATH_LEN / 2;
const MAX_TARGET: usize = flist::MAX_PATH_LEN;

fn corrupt(reason: impl Into<String>) -> Error {
    Error::Corrupt {
        format: FORMAT,
        reason: reason.into(),
    }
}

fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// An open 0-flist. Its database lives in a private temporary directory, removed on drop.
pub struct ZeroFlist {
    conn: Connection,
    limits: Limits,
    acis: RefCell<HashMap<String, Aci>>,
    // Declared last: dropped after the connection that reads from it.
    _scratch: tempfile::TempDir,
}

impl std::fmt::Debug for ZeroFlist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZeroFlist").finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Aci {
    uname: String,
    gname: String,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// One name of a directory, read and checked; `subdir` is the row key of a directory's Dir.
struct Item {
    name: Vec<u8>,
    entry: Entry<Block>,
    subdir: Option<String>,
}

impl ZeroFlist {
    /// Opens the 0-flist at `path` with the default [`Limits`].
    pub fn open(path: &Path) -> Result<ZeroFlist> {
        Self::open_with(path, &Limits::default())
    }

    pub fn open_with(path: &Path, limits: &Limits) -> Result<ZeroFlist> {
        let file = std::fs::File::open(path).map_err(Error::io("opening the 0-flist"))?;
        let size = file
            .metadata()
            .map_err(Error::io("opening the 0-flist"))?
            .len();
        if size > limits.archive_bytes {
            return Err(Error::TooLarge {
                what: "the 0-flist file",
                limit: limits.archive_bytes,
            });
        }
        Self::from_reader(file, limits)
    }

    /// Reads a 0-flist from `input` (for example an upload as it arrives): the database is
    /// extracted to a private temporary directory and opened from there.
    pub fn from_reader(input: impl Read, limits: &Limits) -> Result<ZeroFlist> {
        let scratch = crate::scratch()?;
        let db = scratch.path().join(archive::DATABASE);
        archive::extract_database(input, limits, &db)?;
        let conn = flist::untrusted::open(&db, &SCHEMA).map_err(Error::opening(FORMAT))?;
        Ok(ZeroFlist {
            conn,
            limits: *limits,
            acis: RefCell::new(HashMap::new()),
            _scratch: scratch,
        })
    }

    /// The `metadata` table (empty for old flists without one).
    pub fn metadata(&self) -> Result<BTreeMap<String, String>> {
        let exists: bool = self.conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'metadata'",
            [],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(BTreeMap::new());
        }
        let total: i64 = self.conn.query_row(
            "SELECT coalesce(sum(octet_length(key) + octet_length(value)), 0) \
             FROM metadata",
            [],
            |r| r.get(0),
        )?;
        if total as u64 > self.limits.object_bytes {
            return Err(Error::TooLarge {
                what: "the metadata",
                limit: self.limits.object_bytes,
            });
        }
        let mut stmt = self.conn.prepare("SELECT key, value FROM metadata")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Visits every entry depth-first, the root first (path `""`), each directory's entries
    /// in the order the file stores them, checking each directory as it is read.
    pub fn walk(&self, mut visit: impl FnMut(&[u8], &Entry<Block>) -> Result<()>) -> Result<()> {
        let root_key = dir_key(b"");
        let (root, items) = self.directory(&root_key, b"", &root_key)?;
        visit(b"", &root)?;
        let mut count: u64 = 1;
        let mut stack = vec![(Vec::new(), root_key, items.into_iter())];
        loop {
            let depth = stack.len();
            let Some((location, key, items)) = stack.last_mut() else {
                break;
            };
            let Some(item) = items.next() else {
                stack.pop();
                continue;
            };
            count += 1;
            if count > self.limits.entries {
                return Err(Error::TooLarge {
                    what: "the number of entries",
                    limit: self.limits.entries,
                });
            }
            let path = join(location, &item.name);
            if path.len() > flist::MAX_PATH_LEN {
                return Err(corrupt(format!(
                    "a path longer than 4096 bytes: {:?}",
                    show(&path)
                )));
            }
            visit(&path, &item.entry)?;
            if let Some(subdir) = item.subdir {
                if depth >= MAX_DEPTH {
                    return Err(corrupt(format!(
                        "directories nested deeper than {MAX_DEPTH} at {:?}",
                        show(&path)
                    )));
                }
                let parent = key.clone();
                let (_, items) = self.directory(&subdir, &path, &parent)?;
                stack.push((path, subdir, items.into_iter()));
            }
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

    /// The distinct ids of every block the flist names.
    pub fn block_ids(&self) -> Result<BTreeSet<[u8; 16]>> {
        block_ids(|visit| self.walk(visit), |b: &Block| b.id)
    }

    /// Reads the Dir at row `key`, which must be the directory at `location` whose parent
    /// row is `parent` (the root names itself), and checks every entry it lists.
    fn directory(
        &self,
        key: &str,
        location: &[u8],
        parent: &str,
    ) -> Result<(Entry<Block>, Vec<Item>)> {
        let value = self
            .value(key)?
            .ok_or_else(|| corrupt(format!("the directory {:?} is missing", show(location))))?;
        let message = read_message(&value)?;
        let dir = message.get_root::<dir::Reader>()?;
        let contents = dir.get_contents()?;
        if dir.get_location()?.as_bytes() != location {
            return Err(corrupt(format!(
                "the row of {:?} holds another directory",
                show(location)
            )));
        }
        if dir.get_parent()?.as_bytes() != parent.as_bytes() {
            return Err(corrupt(format!(
                "the directory {:?} names another parent",
                show(location)
            )));
        }
        let aci = self.aci(dir.get_aclkey()?.as_bytes())?;
        let this = entry(
            Kind::Directory,
            &aci,
            dir.get_modification_time(),
            dir.get_creation_time(),
        );
        let mut names = HashSet::new();
        let mut items = Vec::with_capacity(contents.len() as usize);
        for inode in contents {
            let item = self.item(inode, location)?;
            if !names.insert(item.name.clone()) {
                return Err(corrupt(format!(
                    "the name {:?} appears twice in {:?}",
                    show(&item.name),
                    show(location)
                )));
            }
            items.push(item);
        }
        Ok((this, items))
    }

    fn item(&self, inode: inode::Reader, location: &[u8]) -> Result<Item> {
        let name = inode.get_name()?.as_bytes().to_vec();
        let path = join(location, &name);
        let bad = |what: &str| corrupt(format!("{:?}: {what}", show(&path)));
        if name.contains(&b'/') || flist::validate_path(&name).is_err() {
            return Err(corrupt(format!(
                "an invalid name {:?} in {:?}",
                show(&name),
                show(location)
            )));
        }
        let size = inode.get_size();
        let mut subdir = None;
        let kind = match inode.get_attributes().which() {
            Ok(inode::attributes::Dir(sub)) => {
                let key = sub?.get_key()?.to_str().map_err(|_| bad("a bad key"))?;
                if key != dir_key(&path) {
                    return Err(bad("its directory key is not the hash of its path"));
                }
                subdir = Some(key.to_owned());
                Kind::Directory
            }
            Ok(inode::attributes::File(file)) => {
                let blocks = file?.get_blocks()?;
                if !block_count_matches(size, u64::from(blocks.len())) {
                    return Err(bad(&format!("{} blocks for {size} bytes", blocks.len())));
                }
                let blocks = blocks
                    .iter()
                    .map(|b| {
                        let id = b.get_hash()?.try_into();
                        let key = b.get_key()?.try_into();
                        match (id, key) {
                            (Ok(id), Ok(key)) => Ok(Block { id, key }),
                            _ => Err(bad("a block id or key that is not 16 bytes")),
                        }
                    })
                    .collect::<Result<Vec<_>>>()?;
                Kind::File { size, blocks }
            }
            Ok(inode::attributes::Link(link)) => {
                let target = link?.get_target()?.as_bytes().to_vec();
                if target.is_empty() || target.len() > MAX_TARGET || target.contains(&0) {
                    return Err(bad("an invalid link target"));
                }
                Kind::Symlink { target }
            }
            Ok(inode::attributes::Special(special)) => {
                let special = special?;
                Kind::Special(parse_special(special.get_type(), special.get_data()?))
            }
            Err(_) => return Err(bad("an entry of an unknown kind")),
        };
        let aci = self.aci(inode.get_aclkey()?.as_bytes())?;
        let entry = entry(
            kind,
            &aci,
            inode.get_modification_time(),
            inode.get_creation_time(),
        );
        Ok(Item {
            name,
            entry,
            subdir,
        })
    }

    /// The ACI at row `key`, read once.
    fn aci(&self, key: &[u8]) -> Result<Aci> {
        let key = std::str::from_utf8(key).map_err(|_| corrupt("an ACL key that is not text"))?;
        if let Some(aci) = self.acis.borrow().get(key) {
            return Ok(aci.clone());
        }
        let value = self
            .value(key)?
            .ok_or_else(|| corrupt(format!("the ACL {key:?} is missing")))?;
        let message = read_message(&value)?;
        let aci = message.get_root::<a_c_i::Reader>()?;
        let uname = text(aci.get_uname()?)?;
        let gname = text(aci.get_gname()?)?;
        let id = |n: i64, name: &str| match n {
            // Old flists have no numeric ids; g8ufs then looks the name up on the node and
            // falls back to 1000.
            -1 if name == "root" => Ok(0),
            -1 => Ok(1000),
            n => u32::try_from(n).map_err(|_| corrupt(format!("the ACL {key:?} has id {n}"))),
        };
        let parsed = Aci {
            uid: id(aci.get_uid(), &uname)?,
            gid: id(aci.get_gid(), &gname)?,
            mode: u32::from(aci.get_mode()) & 0o7777,
            uname,
            gname,
        };
        if self.acis.borrow().len() < 65_536 {
            self.acis
                .borrow_mut()
                .insert(key.to_owned(), parsed.clone());
        }
        Ok(parsed)
    }

    /// The value of row `key` of `entries`, its length checked before it is read (by its
    /// own statement: SQLite loads every column of a row it returns).
    fn value(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let len: Option<Option<i64>> = self
            .conn
            .prepare_cached("SELECT octet_length(value) FROM entries WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?;
        let Some(len) = len else {
            return Ok(None);
        };
        if len.unwrap_or(0) as u64 > self.limits.object_bytes {
            return Err(Error::TooLarge {
                what: "a 0-flist object",
                limit: self.limits.object_bytes,
            });
        }
        let value: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT value FROM entries WHERE key = ?1")?
            .query_row([key], |r| r.get(0))?;
        Ok(Some(value.unwrap_or_default()))
    }
}

fn entry(kind: Kind<Block>, aci: &Aci, mtime: u32, ctime: u32) -> Entry<Block> {
    Entry {
        kind,
        mode: aci.mode,
        uid: aci.uid,
        gid: aci.gid,
        uname: aci.uname.clone(),
        gname: aci.gname.clone(),
        mtime: i64::from(mtime),
        ctime: i64::from(ctime),
    }
}

fn text(t: capnp::text::Reader) -> Result<String> {
    t.to_string()
        .map_err(|_| corrupt("an owner name that is not UTF-8"))
}

/// An unpacked Cap'n Proto message, read with limits that a crafted one cannot get around:
/// pointers are followed at most a few times the message's size in words, and objects
/// nested at most 16 deep (a valid one nests 6).
fn read_message(value: &[u8]) -> Result<capnp::message::Reader<capnp::serialize::OwnedSegments>> {
    let words = value.len() as u64 / 8;
    let mut options = ReaderOptions::new();
    options
        .traversal_limit_in_words(Some(words.saturating_mul(4).max(1024) as usize))
        .nesting_limit(16);
    // Copied into word-aligned segments: SQLite's buffer has no alignment guarantee.
    Ok(capnp::serialize::read_message(value, options)?)
}

/// A file's block count: [`block_count`], or what zflist 2.3 writes. zflist computes the
/// count as `ceil(size / 524288.0f)` in single precision, so for files over 16 MiB whose
/// size is just above a multiple of 512 KiB it counts one block less (and stores a file
/// short of its last bytes); such files are real and read as zflist left them.
fn block_count_matches(size: u64, count: u64) -> bool {
    let zflist = ((size as f32) / BLOCK_SIZE as f32).ceil() as u64;
    let zflist = if size > 0 { zflist.max(1) } else { 0 };
    count == block_count(size) || count == zflist
}

/// A special file's type and data: the device numbers as `"major,minor"` text, or anything
/// else for FIFOs and sockets.
fn parse_special(kind: Result<special::Type, capnp::NotInSchema>, data: &[u8]) -> Special {
    let device = std::str::from_utf8(data).ok().and_then(|s| {
        let (major, minor) = s.split_once(',')?;
        Some((major.trim().parse().ok()?, minor.trim().parse().ok()?))
    });
    let (major, minor) = device.unwrap_or((0, 0));
    match kind {
        Ok(special::Type::Socket) => Special::Socket,
        Ok(special::Type::Fifopipe) => Special::Fifo,
        Ok(special::Type::Chardev) => Special::CharDevice { major, minor },
        Ok(special::Type::Block) => Special::BlockDevice { major, minor },
        Ok(special::Type::Unknown) | Err(_) => Special::Unknown,
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    [dir, b"/", name].concat()
}
