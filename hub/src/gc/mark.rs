//! The mark phase: every chunk and block something the hub holds names.
//!
//! * every published file (the `blob` rows: flists named by entries, which links, tags and
//!   taglinks resolve to, and renditions): a native flist's chunks; a hosted 0-flist's or
//!   fl's blocks (a rendition's blocks are made from native chunks when a node reads them,
//!   so it names nothing stored);
//! * the content windows the 0-db gateway still serves (`content_windows`, kept for a
//!   grace period after the last flist holding them went): their chunks.
//!
//! Uploads, conversions and merges in progress are not read here: what they stored is kept
//! by the fence (see `fence`), and so is what a push sent before its flist arrives, by the
//! grace period.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use chunkstore::{BlockId, ChunkKey};

use super::Item;
use crate::blobs::Blobs;
use crate::config::LimitsConfig;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::formats::{AnyFlist, Format};

/// What the mark phase found.
#[derive(Default)]
pub struct Marks {
    pub chunks: HashSet<ChunkKey>,
    pub blocks: HashSet<BlockId>,
    /// Files read.
    pub files: u64,
}

/// What holds a key the walk found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder<'a> {
    /// A published file, by its sha256.
    File(&'a str),
    /// A content window the 0-db gateway still serves.
    Window,
}

/// Reads the namespace and every file it names. Blocking.
pub fn mark(db: &Db, blobs: &Arc<Blobs>, limits: &LimitsConfig) -> Result<Marks> {
    let mut marks = Marks::default();
    marks.files = walk(db, blobs, limits, &mut |_, item, _| match item {
        Item::Chunk(key) => {
            marks.chunks.insert(key);
        }
        Item::Block(id) => {
            marks.blocks.insert(id);
        }
    })?;
    Ok(marks)
}

/// Calls `found` with every key something the hub holds names (see the module
/// documentation), with what holds it and, for a chunk, its plaintext length; a key is
/// given once per file naming it (a native flist's files may share chunks: once per
/// mention). Answers the number of files read. Blocking. The one walk of the hub's files:
/// the mark phase and the usage figures (`crate::usage`) both read through it.
pub fn walk(
    db: &Db,
    blobs: &Arc<Blobs>,
    limits: &LimitsConfig,
    found: &mut dyn FnMut(Holder<'_>, Item, Option<u32>),
) -> Result<u64> {
    let (files, windows) = db.read_now(|c| {
        let mut stmt =
            c.prepare("SELECT sha256, format, sha256 IN (SELECT sha256 FROM rendition) FROM blob")?;
        let files = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut stmt = c.prepare("SELECT chunks FROM content_windows")?;
        let windows = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((files, windows))
    })?;
    for chunks in windows {
        // Per chunk: its 32-byte key and its 4-byte big-endian length.
        for record in chunks.chunks_exact(36) {
            let key: [u8; 32] = record[..32].try_into().unwrap_or_default();
            let length: [u8; 4] = record[32..].try_into().unwrap_or_default();
            found(
                Holder::Window,
                Item::Chunk(ChunkKey::from_bytes(key)),
                Some(u32::from_be_bytes(length)),
            );
        }
    }
    let mut read = 0;
    for (sha256, format, rendition) in files {
        // A rendition's blocks are made from native chunks: it names nothing stored.
        if rendition && format != "native" {
            continue;
        }
        let holder = Holder::File(&sha256);
        if file_keys(blobs, &sha256, &format, limits, &mut |item, length| {
            found(holder, item, length);
        })? {
            read += 1;
        }
    }
    Ok(read)
}

/// Calls `found` with every key the published file `sha256` (of `format`, as the `blob`
/// table names it) names; false when the file is gone (deleted since the namespace was
/// read: it names nothing any more). Blocking.
pub(crate) fn file_keys(
    blobs: &Blobs,
    sha256: &str,
    format: &str,
    limits: &LimitsConfig,
    found: &mut dyn FnMut(Item, Option<u32>),
) -> Result<bool> {
    let format = match format {
        "native" => Format::Native,
        "0-flist" => Format::ZeroFlist,
        "fl" => Format::Fl,
        other => return Err(Error::Internal(format!("a file of format {other:?}"))),
    };
    let path = blobs.path(sha256);
    let opened = match AnyFlist::open(&path, format, limits) {
        Ok(opened) => opened,
        Err(_) if !path.exists() => return Ok(false),
        Err(e) => return Err(e),
    };
    keys(opened, found)
        .map_err(|e| Error::Internal(format!("reading the keys of {sha256}: {e}")))?;
    Ok(true)
}

/// The keys of one staged file about to be published, for the fence. Blocking.
pub fn keys_of(path: &std::path::Path, format: Format, limits: &LimitsConfig) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    keys(AnyFlist::open(path, format, limits)?, &mut |item, _| {
        items.push(item);
    })?;
    Ok(items)
}

/// Calls `found` with every key a flist names: a native flist's chunks (with their
/// plaintext lengths), a 0-flist's or an fl's blocks.
fn keys(flist: AnyFlist, found: &mut dyn FnMut(Item, Option<u32>)) -> Result<()> {
    let failed =
        |e: &dyn std::fmt::Display| Error::Internal(format!("reading the keys of an flist: {e}"));
    let ids: Vec<Option<BlockId>> = match flist {
        AnyFlist::Native(flist) => {
            return flist
                .chunk_keys(|key, length| {
                    found(Item::Chunk(ChunkKey::from_bytes(key)), Some(length));
                    ControlFlow::Continue(())
                })
                .map_err(|e| failed(&e));
        }
        AnyFlist::ZeroFlist(zero) => zero
            .block_ids()
            .map_err(|e| failed(&e))?
            .iter()
            .map(|id| BlockId::from_slice(id))
            .collect(),
        AnyFlist::Fl(fl) => fl
            .block_ids()
            .map_err(|e| failed(&e))?
            .iter()
            .map(|id| BlockId::from_slice(id))
            .collect(),
    };
    ids.into_iter()
        .flatten()
        .for_each(|id| found(Item::Block(id), None));
    Ok(())
}
