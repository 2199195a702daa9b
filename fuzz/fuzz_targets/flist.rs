//! The flist reader on a file from disk: `Flist::open` (SQLite's hardening, the schema
//! check), then everything a reader asks (metadata, totals, the walk, chunk lists, xattrs).
//! An accepted file is written again with `FlistWriter` from what was read, and the copy
//! must read back the same: names, inodes shared by hardlinks, attributes, chunks, xattrs,
//! metadata. A refusal is an `flist::Error`, which the types already guarantee.

#![no_main]

use std::collections::HashMap;

use flist::{ChunkRef, Flist, FlistWriter, InodeId, Metadata, Node, NodeKind, Walk, Xattr};
use libfuzzer_sys::fuzz_target;

/// One name of the tree: its path, the first path of its inode (for hardlinks), and all
/// that the inode holds.
#[derive(Debug, PartialEq)]
struct Name {
    path: Vec<u8>,
    first: Vec<u8>,
    node: Node,
    chunks: Vec<ChunkRef>,
    xattrs: Vec<Xattr>,
}

/// Everything the reader gives, or its first error.
fn read(flist: &Flist) -> flist::Result<(Metadata, Vec<Name>)> {
    let metadata = flist.metadata()?;
    flist.totals()?;
    let mut firsts: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut names = Vec::new();
    flist.walk(|path, entry| {
        flist::validate_path(path).expect("the reader gives only valid paths");
        let first = firsts
            .entry(entry.ino)
            .or_insert_with(|| path.to_vec())
            .clone();
        let chunks = match entry.node.kind {
            NodeKind::Regular { .. } => flist.chunks(entry)?,
            _ => Vec::new(),
        };
        names.push(Name {
            path: path.to_vec(),
            first,
            node: entry.node.clone(),
            chunks,
            xattrs: flist.xattrs(entry.ino)?,
        });
        Ok(Walk::Continue)
    })?;
    Ok((metadata, names))
}

/// Writes `names` as a new flist at `out`.
fn write(out: &std::path::Path, metadata: &Metadata, names: &[Name]) -> flist::Result<()> {
    let mut writer = FlistWriter::create(out)?;
    for (key, value) in metadata.iter() {
        if key != "format-version" {
            writer.metadata_mut().set(key, value);
        }
    }
    let mut inodes: HashMap<&[u8], InodeId> = HashMap::new();
    for name in names {
        if let Some(&inode) = inodes.get(name.first.as_slice()) {
            writer.link(&name.path, inode)?;
            continue;
        }
        let inode = writer.add(&name.path, &name.node, &name.xattrs)?;
        for (seq, chunk) in name.chunks.iter().enumerate() {
            writer.add_chunk(inode, seq as u32, chunk)?;
        }
        inodes.insert(&name.path, inode);
    }
    writer.finish()?;
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("scratch directory");
    let path = dir.path().join("in.flist");
    std::fs::write(&path, data).expect("writing the input");
    let Ok(flist) = Flist::open(&path) else {
        return;
    };
    let Ok((metadata, names)) = read(&flist) else {
        return;
    };
    let copy = dir.path().join("copy.flist");
    write(&copy, &metadata, &names).expect("what the reader accepts, the writer takes");
    let again = Flist::open(&copy).expect("the copy opens");
    let (copied_metadata, copied_names) = read(&again).expect("the copy reads");
    assert_eq!(copied_names, names);
    assert_eq!(
        copied_metadata
            .iter()
            .filter(|(k, _)| *k != "format-version")
            .collect::<Vec<_>>(),
        metadata
            .iter()
            .filter(|(k, _)| *k != "format-version")
            .collect::<Vec<_>>()
    );
});
