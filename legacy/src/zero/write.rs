//! Writing a 0-flist that zflist and g8ufs read, byte-identical for the same input.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use capnp::message::{Builder, HeapAllocator};
use rusqlite::{Connection, params};

use super::flist_capnp::{dir, inode, special};
use super::{BLOCK_SIZE_FIELD, Block, CREATE, DIR_SIZE, acl_key, archive, dir_key};
use crate::error::{Error, Result};
use crate::tree::{Entry, Kind, Special, Tree, block_count, name_of, parent_of};

/// Writes `tree` with `metadata` (values stored as given: see
/// [`zflist_json`](super::zflist_json) for the JSON ones zflist writes) as a 0-flist to `out`.
///
/// The database is written in one transaction into a fresh file (page size 4096, rows in a
/// fixed order: the root directory first, so it is row 1 as g8ufs assumes, then the other
/// directories depth-first, then the ACLs and the metadata by key), and archived with fixed
/// tar and gzip headers: the same arguments always give the same bytes.
///
/// Refused (as [`Error::Tree`]): names, link targets or owner names that are not UTF-8, and
/// files whose block list is not one block per 512 KiB.
pub fn write(
    tree: &Tree<Block>,
    metadata: &BTreeMap<String, String>,
    out: impl Write,
) -> Result<()> {
    let scratch = crate::scratch()?;
    let db = scratch.path().join(archive::DATABASE);
    write_database(tree, metadata, &db)?;
    archive::write_archive(&db, out)
}

fn write_database(
    tree: &Tree<Block>,
    metadata: &BTreeMap<String, String>,
    db: &Path,
) -> Result<()> {
    let conn = Connection::open(db)?;
    conn.execute_batch(&format!(
        "PRAGMA page_size = 4096; PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
         {CREATE} BEGIN;"
    ))?;
    let entries: Vec<(Vec<u8>, &Entry<Block>)> = tree.iter().collect();
    let mut acls: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    {
        let mut insert = conn.prepare("INSERT INTO entries (key, value) VALUES (?1, ?2)")?;
        for (dir, children) in tree.directories() {
            let (path, entry) = &entries[dir];
            let children: Vec<(&[u8], &Entry<Block>)> = children
                .iter()
                .map(|&i| (entries[i].0.as_slice(), entries[i].1))
                .collect();
            let value = dir_message(path, entry, &children, &mut acls)?;
            insert.execute(params![dir_key(path), value])?;
        }
        for (key, value) in &acls {
            insert.execute(params![key, value])?;
        }
        let mut insert = conn.prepare("INSERT INTO metadata (key, value) VALUES (?1, ?2)")?;
        for (key, value) in metadata {
            insert.execute(params![key, value])?;
        }
    }
    conn.execute_batch("COMMIT")?;
    conn.close().map_err(|(_, e)| Error::Sqlite(e))
}

/// The `Dir` object of the directory at `path`, as one unpacked single-segment message; the
/// ACLs it names are added to `acls`.
fn dir_message(
    path: &[u8],
    entry: &Entry<Block>,
    children: &[(&[u8], &Entry<Block>)],
    acls: &mut BTreeMap<String, Vec<u8>>,
) -> Result<Vec<u8>> {
    // g8ufs numbers a directory's entries by position but skips specials when it loads them,
    // so any entry after a special would be shown with its neighbour's content: specials go
    // last.
    let mut ordered: Vec<&(&[u8], &Entry<Block>)> = children
        .iter()
        .filter(|(_, e)| !matches!(e.kind, Kind::Special(_)))
        .collect();
    ordered.extend(
        children
            .iter()
            .filter(|(_, e)| matches!(e.kind, Kind::Special(_))),
    );

    // A first segment large enough for everything keeps the message in one segment (no far
    // pointers for older readers to follow); built again bigger if the estimate was short.
    let estimate: usize = 64
        + children
            .iter()
            .map(|(p, e)| {
                let extra = match &e.kind {
                    Kind::File { blocks, .. } => blocks.len() * 48,
                    Kind::Symlink { target } => target.len(),
                    _ => 16,
                };
                (p.len() + extra + 128) / 8
            })
            .sum::<usize>();
    let mut words = estimate;
    loop {
        let mut message = Builder::new(HeapAllocator::new().first_segment_words(words as u32));
        build_dir(&mut message, path, entry, &ordered, acls)?;
        let segments = message.get_segments_for_output();
        if segments.len() == 1 {
            return Ok(capnp::serialize::write_message_to_words(&message));
        }
        words = segments.iter().map(|s| s.len() / 8).sum::<usize>() + 64;
    }
}

fn build_dir(
    message: &mut Builder<HeapAllocator>,
    path: &[u8],
    entry: &Entry<Block>,
    children: &[&(&[u8], &Entry<Block>)],
    acls: &mut BTreeMap<String, Vec<u8>>,
) -> Result<()> {
    let mut dir = message.init_root::<dir::Builder>();
    dir.set_name(text(path, name_of(path))?);
    dir.set_location(text(path, path)?);
    // The root names itself: the parent of "" is "".
    dir.set_parent(dir_key(parent_of(path)).as_str());
    dir.set_size(DIR_SIZE);
    dir.set_aclkey(acl(path, entry, acls)?.as_str());
    dir.set_modification_time(seconds(entry.mtime));
    dir.set_creation_time(seconds(entry.ctime));
    let mut contents = dir.init_contents(children.len() as u32);
    for (i, (child, e)) in children.iter().enumerate() {
        let mut inode = contents.reborrow().get(i as u32);
        inode.set_name(text(child, name_of(child))?);
        inode.set_aclkey(acl(child, e, acls)?.as_str());
        inode.set_modification_time(seconds(e.mtime));
        inode.set_creation_time(seconds(e.ctime));
        set_kind(inode, child, &e.kind)?;
    }
    Ok(())
}

fn set_kind(mut inode: inode::Builder, path: &[u8], kind: &Kind<Block>) -> Result<()> {
    match kind {
        Kind::Directory => {
            inode.set_size(DIR_SIZE);
            inode
                .init_attributes()
                .init_dir()
                .set_key(dir_key(path).as_str());
        }
        Kind::File { size, blocks } => {
            if blocks.len() as u64 != block_count(*size) {
                return Err(Error::tree(
                    path,
                    format!("{} blocks for {size} bytes (one per 512 KiB)", blocks.len()),
                ));
            }
            inode.set_size(*size);
            let mut file = inode.init_attributes().init_file();
            file.set_block_size(BLOCK_SIZE_FIELD);
            // zflist leaves an empty file's list unset; readers see an empty list either way.
            if !blocks.is_empty() {
                let mut list = file.init_blocks(blocks.len() as u32);
                for (i, block) in blocks.iter().enumerate() {
                    let mut b = list.reborrow().get(i as u32);
                    b.set_hash(&block.id);
                    b.set_key(&block.key);
                }
            }
        }
        Kind::Symlink { target } => {
            inode.set_size(target.len() as u64);
            inode
                .init_attributes()
                .init_link()
                .set_target(text(path, target)?);
        }
        Kind::Special(special) => {
            inode.set_size(0);
            let (kind, data) = match special {
                Special::Socket => (special::Type::Socket, "(nothing)".to_owned()),
                Special::Fifo => (special::Type::Fifopipe, "(nothing)".to_owned()),
                Special::CharDevice { major, minor } => {
                    (special::Type::Chardev, format!("{major},{minor}"))
                }
                Special::BlockDevice { major, minor } => {
                    (special::Type::Block, format!("{major},{minor}"))
                }
                Special::Unknown => (special::Type::Unknown, "(nothing)".to_owned()),
            };
            let mut s = inode.init_attributes().init_special();
            s.set_type(kind);
            s.set_data(data.as_bytes());
        }
    }
    Ok(())
}

/// The key of the ACL of `entry`, adding its object to `acls` the first time.
fn acl(path: &[u8], entry: &Entry<Block>, acls: &mut BTreeMap<String, Vec<u8>>) -> Result<String> {
    let (uid, gid) = (i64::from(entry.uid), i64::from(entry.gid));
    let mode = entry.mode & 0o7777;
    let key = acl_key(&entry.uname, &entry.gname, mode, uid, gid);
    if !acls.contains_key(&key) {
        let mut message = Builder::new_default();
        let mut aci = message.init_root::<super::flist_capnp::a_c_i::Builder>();
        aci.set_uname(text(path, entry.uname.as_bytes())?);
        aci.set_gname(text(path, entry.gname.as_bytes())?);
        aci.set_mode(mode as u16);
        aci.set_id(0);
        aci.set_uid(uid);
        aci.set_gid(gid);
        acls.insert(
            key.clone(),
            capnp::serialize::write_message_to_words(&message),
        );
    }
    Ok(key)
}

/// Cap'n Proto text must be UTF-8 (g8ufs refuses anything else).
fn text<'a>(path: &[u8], bytes: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(bytes)
        .map_err(|_| Error::tree(path, "not UTF-8, which a 0-flist cannot hold"))
}

/// Times as the format's unsigned 32-bit seconds.
fn seconds(t: i64) -> u32 {
    t.clamp(0, i64::from(u32::MAX)) as u32
}
