//! The 0-flist writer and reader against each other, and the reader against hostile files.

mod common;

use std::io::{Read, Write};

use legacy::zero::{self, Block, ZeroFlist};
use legacy::{Error, Kind, Limits, Tree};

fn sample() -> (Tree<Block>, common::Stored) {
    common::sample_tree(zero::encode, |b: &Block| b.id.to_vec())
}

fn written(tree: &Tree<Block>) -> Vec<u8> {
    let mut out = Vec::new();
    zero::write(tree, &common::sample_metadata(), &mut out).unwrap();
    out
}

fn read(bytes: &[u8]) -> Result<ZeroFlist, Error> {
    ZeroFlist::from_reader(bytes, &Limits::default())
}

#[test]
fn round_trips_every_entry_type() {
    let (tree, _) = sample();
    let bytes = written(&tree);
    let flist = read(&bytes).unwrap();
    assert_eq!(flist.tree().unwrap(), tree);
    assert_eq!(flist.metadata().unwrap(), common::sample_metadata());
    let totals = flist.totals().unwrap();
    assert_eq!(
        (
            totals.files,
            totals.directories,
            totals.symlinks,
            totals.specials
        ),
        (6, 8, 2, 2)
    );
    assert_eq!(totals.blocks, 3 + 1 + 2 + 1 + 1);
    assert_eq!(flist.block_ids().unwrap().len(), 8);
}

#[test]
fn the_same_tree_gives_the_same_bytes() {
    let (tree, _) = sample();
    let first = written(&tree);
    let second = written(&tree.clone());
    assert_eq!(common::sha256(&first), common::sha256(&second));
    // Fixed gzip header: no name, time 0, Unix.
    assert_eq!(&first[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
}

#[test]
fn old_flists_without_a_metadata_table_read() {
    let (tree, _) = sample();
    let bytes = patch_database(&written(&tree), |db| {
        db.execute_batch("DROP TABLE metadata").unwrap();
    });
    let flist = read(&bytes).unwrap();
    assert!(flist.metadata().unwrap().is_empty());
    assert_eq!(flist.tree().unwrap(), tree);
}

/// Unpacks a 0-flist, lets `change` edit its database, and packs it again.
fn patch_database(flist: &[u8], change: impl FnOnce(&rusqlite::Connection)) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(flist));
    tar.unpack(dir.path()).unwrap();
    let db = dir.path().join("flistdb.sqlite3");
    change(&rusqlite::Connection::open(&db).unwrap());
    gzip_tar(&[("./flistdb.sqlite3", &std::fs::read(&db).unwrap())])
}

fn gzip_tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, name, *data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// Replaces the first `from` in the value of every `entries` row with `to` (same length).
fn patch_values(flist: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    patch_database(flist, |db| {
        let rows: Vec<(String, Vec<u8>)> = db
            .prepare("SELECT key, value FROM entries")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut patched = 0;
        for (key, mut value) in rows {
            if let Some(at) = value.windows(from.len()).position(|w| w == from) {
                value[at..at + from.len()].copy_from_slice(to);
                db.execute("UPDATE entries SET value = ?2 WHERE key = ?1", (key, value))
                    .unwrap();
                patched += 1;
            }
        }
        assert!(patched > 0, "nothing to patch");
    })
}

fn corrupt_reason(bytes: &[u8]) -> String {
    let flist = match read(bytes) {
        Ok(flist) => flist,
        Err(e) => return e.to_string(),
    };
    match flist.tree() {
        Ok(_) => panic!("a hostile flist was read"),
        Err(e @ Error::Corrupt { .. }) => e.to_string(),
        Err(e) => panic!("not a Corrupt error: {e:?}"),
    }
}

#[test]
fn broken_containers_are_refused() {
    let (tree, _) = sample();
    let good = written(&tree);

    let truncated = &good[..good.len() - 100];
    assert!(
        matches!(read(truncated), Err(Error::Archive(_))),
        "truncated gzip"
    );
    assert!(matches!(read(b"not gzip at all"), Err(Error::Archive(_))));
    assert!(matches!(
        read(b""),
        Err(Error::Archive(_) | Error::MissingDatabase)
    ));

    let other = gzip_tar(&[("./README", b"hello")]);
    assert!(matches!(read(&other), Err(Error::MissingDatabase)));

    let twice = gzip_tar(&[("flistdb.sqlite3", b"x"), ("./flistdb.sqlite3", b"y")]);
    assert!(matches!(read(&twice), Err(Error::Archive(m)) if m.contains("two")));

    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..18].copy_from_slice(b"../flistdb.sqlite3");
    h.set_size(1);
    h.set_cksum();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(h.as_bytes()).unwrap();
    gz.write_all(&[b'x'; 512]).unwrap();
    let escape = gz.finish().unwrap();
    assert!(matches!(read(&escape), Err(Error::Archive(m)) if m.contains("outside")));

    let not_sqlite = gzip_tar(&[("./flistdb.sqlite3", b"this is no database")]);
    assert!(matches!(read(&not_sqlite), Err(Error::Database { .. })));
}

#[test]
fn link_members_are_refused() {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    tar.append_link(&mut h, "flistdb.sqlite3", "/etc/passwd")
        .unwrap();
    let bytes = tar.into_inner().unwrap().finish().unwrap();
    assert!(matches!(read(&bytes), Err(Error::Archive(m)) if m.contains("link")));
}

#[test]
fn sizes_are_refused_before_they_are_read() {
    // A header declaring a 100 GiB database, with nothing behind it.
    let mut header = tar::Header::new_gnu();
    header.set_path("./flistdb.sqlite3").unwrap();
    header.set_size(100 << 30);
    header.set_mode(0o644);
    header.set_cksum();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(header.as_bytes()).unwrap();
    let bytes = gz.finish().unwrap();
    assert!(matches!(
        read(&bytes),
        Err(Error::TooLarge {
            what: "flistdb.sqlite3",
            ..
        })
    ));

    // 64 MiB of zeros in a small gzip, read with a 1 MiB expansion limit.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    let limits = Limits {
        expanded_bytes: 1 << 20,
        ..Limits::default()
    };
    // All zeros is an end-of-archive marker to tar: the limit fires while the rest is read.
    let err = ZeroFlist::from_reader(&bomb[..], &limits).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");

    // A directory object over the object limit is refused from its length.
    let (tree, _) = sample();
    let small = Limits {
        object_bytes: 32,
        ..Limits::default()
    };
    let flist = ZeroFlist::from_reader(&written(&tree)[..], &small).unwrap();
    assert!(matches!(
        flist.tree(),
        Err(Error::TooLarge {
            what: "a 0-flist object",
            ..
        })
    ));
    assert!(matches!(flist.metadata(), Err(Error::TooLarge { .. })));

    // A file larger than the archive limit is refused from its size.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.flist");
    std::fs::write(&path, &bomb).unwrap();
    let limits = Limits {
        archive_bytes: 1000,
        ..Limits::default()
    };
    assert!(matches!(
        ZeroFlist::open_with(&path, &limits),
        Err(Error::TooLarge { .. })
    ));
}

#[test]
fn sql_that_would_run_is_refused() {
    let (tree, _) = sample();
    let bytes = patch_database(&written(&tree), |db| {
        db.execute_batch("CREATE TRIGGER t AFTER INSERT ON entries BEGIN SELECT 1; END;")
            .unwrap();
    });
    let err = read(&bytes).unwrap_err();
    assert!(
        matches!(&err, Error::Database { reason, .. } if reason.contains("trigger")),
        "{err:?}"
    );
    let bytes = patch_database(&written(&tree), |db| {
        db.execute_batch("CREATE VIEW v AS SELECT * FROM entries")
            .unwrap();
    });
    assert!(matches!(read(&bytes), Err(Error::Database { .. })));
}

#[test]
fn hostile_names_are_refused() {
    let mut tree = Tree::new(legacy::Entry::directory(0o755)).unwrap();
    let file = |size: u64| legacy::Entry {
        kind: Kind::File {
            size,
            blocks: vec![],
        },
        ..legacy::Entry::directory(0o644)
    };
    for name in ["zz", "yyy", "xxx"] {
        tree.insert(name.as_bytes(), file(0)).unwrap();
    }
    let good = written(&tree);
    assert!(corrupt_reason(&patch_values(&good, b"zz\0", b"..\0")).contains("invalid name"));
    assert!(corrupt_reason(&patch_values(&good, b"yyy\0", b"y/y\0")).contains("invalid name"));
    assert!(corrupt_reason(&patch_values(&good, b"xxx\0", b"yyy\0")).contains("twice"));
}

#[test]
fn a_block_list_longer_than_the_file_is_refused() {
    let (tree, _) = sample();
    // bin/tool has 1,300,000 bytes in 3 blocks; claim 1,000 bytes.
    let from = 1_300_000u64.to_le_bytes();
    let to = 1_000u64.to_le_bytes();
    let reason = corrupt_reason(&patch_values(&written(&tree), &from, &to));
    assert!(reason.contains("3 blocks for 1000 bytes"), "{reason}");
}

#[test]
fn rows_that_do_not_fit_together_are_refused() {
    let (tree, _) = sample();
    let good = written(&tree);
    // The directory "bin" stored under the key of "etc".
    let bytes = patch_database(&good, |db| {
        let key = |p: &str| hex::encode(zero::blake2b_128(p.as_bytes()));
        db.execute(
            "UPDATE entries SET value = (SELECT value FROM entries WHERE key = ?1) WHERE key = ?2",
            (key("bin"), key("etc")),
        )
        .unwrap();
    });
    assert!(corrupt_reason(&bytes).contains("holds another directory"));
    // An ACL row missing.
    let bytes = patch_database(&good, |db| {
        db.execute("DELETE FROM entries WHERE length(key) = 16", [])
            .unwrap();
    });
    assert!(corrupt_reason(&bytes).contains("ACL"));
    // A subdirectory row missing.
    let bytes = patch_database(&good, |db| {
        let key = hex::encode(zero::blake2b_128(b"deep/a/b"));
        db.execute("DELETE FROM entries WHERE key = ?1", [key])
            .unwrap();
    });
    assert!(corrupt_reason(&bytes).contains("missing"));
}

/// A root `Dir` row replaced by `words` (a Cap'n Proto message with a one-segment table).
fn with_root_message(words: &[u64]) -> Vec<u8> {
    let mut message = Vec::new();
    message.extend_from_slice(&0u32.to_le_bytes());
    message.extend_from_slice(&(words.len() as u32).to_le_bytes());
    for w in words {
        message.extend_from_slice(&w.to_le_bytes());
    }
    let (tree, _) = sample();
    patch_database(&written(&tree), |db| {
        let root = hex::encode(zero::blake2b_128(b""));
        db.execute(
            "UPDATE entries SET value = ?2 WHERE key = ?1",
            (root, message),
        )
        .unwrap();
    })
}

/// A struct pointer: target `offset` words after the pointer's end.
fn struct_pointer(offset: i32, data: u16, pointers: u16) -> u64 {
    u64::from((offset as u32) << 2) | (u64::from(data) << 32) | (u64::from(pointers) << 48)
}

#[test]
fn hostile_capnp_messages_are_refused() {
    // The root pointer aims far outside the one-word segment.
    let out_of_bounds = with_root_message(&[struct_pointer(1_000_000, 2, 5)]);
    assert!(corrupt_reason(&out_of_bounds).contains("Cap'n Proto"));

    // A Dir whose `contents` is a far pointer landing on itself: a cycle.
    let mut words = vec![struct_pointer(0, 2, 5), 0, 0, 0, 0, 0, 0, 0];
    words[5] = 2 | (5 << 3); // far pointer, segment 0, landing pad at word 5 (itself)
    let cyclic = with_root_message(&words);
    let reason = corrupt_reason(&cyclic);
    assert!(reason.contains("Cap'n Proto"), "{reason}");

    // A list pointer claiming 2^29 elements of 8 bytes in a segment of 8 words.
    let mut words = vec![struct_pointer(0, 2, 5), 0, 0, 0, 0, 0, 0, 0];
    words[5] = 1 | (5u64 << 32) | ((1u64 << 29) - 1) << 35;
    let huge = with_root_message(&words);
    assert!(corrupt_reason(&huge).contains("Cap'n Proto"));

    // A segment table announcing 1000 segments.
    let (tree, _) = sample();
    let bytes = patch_database(&written(&tree), |db| {
        let root = hex::encode(zero::blake2b_128(b""));
        let mut v = 999u32.to_le_bytes().to_vec();
        v.extend_from_slice(&[0xff; 64]);
        db.execute("UPDATE entries SET value = ?2 WHERE key = ?1", (root, v))
            .unwrap();
    });
    assert!(corrupt_reason(&bytes).contains("Cap'n Proto"));
}

/// A pointer at word `from` to a list at word `to` of `count` elements of size code `size`
/// (2: bytes; 7: structs, `count` then being the words after the tag).
fn list_pointer(from: usize, to: usize, size: u64, count: usize) -> u64 {
    let offset = (to as i64 - from as i64 - 1) as i32 as u32;
    1 | u64::from(offset << 2) | (size << 32) | ((count as u64) << 35)
}

/// A text at word `at`, its list pointer for a pointer at word `from`.
fn put_text(words: &mut Vec<u64>, from: usize, text: &str) {
    let at = words.len();
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    bytes.resize(bytes.len().div_ceil(8) * 8, 0);
    words.extend(
        bytes
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap())),
    );
    words[from] = list_pointer(from, at, 2, text.len() + 1);
}

/// A root Dir whose `n` files all point at one shared File of `k` blocks (each block's id
/// and key the same 16 bytes): about 6 words per file and 2 per block, but `n * k` blocks
/// for a reader that follows every pointer.
fn amplified(parent: &str, acl: &str, n: usize, k: usize) -> Vec<u64> {
    let mut w = vec![struct_pointer(0, 2, 5), 0, 0, 0, 0, 0, 0, 0];
    put_text(&mut w, 6, parent);
    put_text(&mut w, 7, acl);
    let acl_at = w.len() - 3; // the text just written: 17 bytes, 3 words
    // contents: an inline-composite list of n Inodes (3 data words, 3 pointers)
    let tag = w.len();
    w[5] = list_pointer(5, tag, 7, n * 6);
    w.push(struct_pointer(n as i32, 3, 3));
    let first = w.len();
    w.resize(first + n * 6, 0);
    let file = w.len();
    w.extend([0, 0]); // File: blockSize, blocks pointer
    let block_tag = w.len();
    w[file + 1] = list_pointer(file + 1, block_tag, 7, k * 2);
    w.push(struct_pointer(k as i32, 0, 2));
    let blocks = w.len();
    w.resize(blocks + k * 2, 0);
    let data = w.len();
    w.extend([0x1111_1111_1111_1111, 0x2222_2222_2222_2222]);
    for b in 0..k * 2 {
        let at = blocks + b;
        w[at] = list_pointer(at, data, 2, 16);
    }
    for i in 0..n {
        let inode = first + i * 6;
        w[inode] = (k as u64) * legacy::BLOCK_SIZE; // size
        w[inode + 1] = 1; // union tag: file
        put_text(&mut w, inode + 3, &format!("f{i}"));
        w[inode + 4] = struct_pointer((file - inode - 5) as i32, 1, 1);
        w[inode + 5] = list_pointer(inode + 5, acl_at, 2, 17);
    }
    w
}

#[test]
fn pointers_shared_to_amplify_a_directory_are_refused() {
    let (tree, _) = sample();
    let good = written(&tree);
    let bytes = patch_database(&good, |db| {
        let acl: String = db
            .query_row("SELECT key FROM entries WHERE length(key) = 16", [], |r| {
                r.get(0)
            })
            .unwrap();
        let root = hex::encode(zero::blake2b_128(b""));
        // 2,000 files of 20,000 blocks: 40 million blocks (1.3 GB of lists) from 430 KB.
        let words = amplified(&root, &acl, 2_000, 20_000);
        let mut message = 0u32.to_le_bytes().to_vec();
        message.extend_from_slice(&(words.len() as u32).to_le_bytes());
        message.extend(words.iter().flat_map(|w| w.to_le_bytes()));
        db.execute(
            "UPDATE entries SET value = ?2 WHERE key = ?1",
            (root, message),
        )
        .unwrap();
    });
    let started = std::time::Instant::now();
    let reason = corrupt_reason(&bytes);
    assert!(reason.contains("Read limit exceeded"), "{reason}");
    assert!(started.elapsed().as_secs() < 5);

    // The same shape, small enough to stay within the traversal limit, reads: the message
    // above is refused for its amplification, not for its shape.
    let bytes = patch_database(&good, |db| {
        let acl: String = db
            .query_row("SELECT key FROM entries WHERE length(key) = 16", [], |r| {
                r.get(0)
            })
            .unwrap();
        let root = hex::encode(zero::blake2b_128(b""));
        let words = amplified(&root, &acl, 2, 3);
        let mut message = 0u32.to_le_bytes().to_vec();
        message.extend_from_slice(&(words.len() as u32).to_le_bytes());
        message.extend(words.iter().flat_map(|w| w.to_le_bytes()));
        db.execute(
            "UPDATE entries SET value = ?2 WHERE key = ?1",
            (root, message),
        )
        .unwrap();
    });
    let flist = read(&bytes).unwrap();
    let totals = flist.totals().unwrap();
    assert_eq!((totals.files, totals.blocks), (2, 6));
}

#[test]
fn reads_from_a_stream_without_the_end_marker() {
    // zflist's archives end right after the database member, without tar's two zero blocks.
    let (tree, _) = sample();
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&written(&tree)[..])
        .read_to_end(&mut tar)
        .unwrap();
    // The database's size is a whole number of pages: the end marker is the last 1024 bytes.
    assert!(tar[tar.len() - 1024..].iter().all(|&b| b == 0));
    tar.truncate(tar.len() - 1024);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let flist = read(&gz.finish().unwrap()).unwrap();
    assert_eq!(flist.tree().unwrap(), tree);
}
