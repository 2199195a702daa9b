//! The fl writer and reader against each other, the reader against hostile files, and
//! trees built from native flists.

mod common;

use std::path::{Path, PathBuf};

use legacy::fl::{self, Block, FlFile, Route};
use legacy::{Error, Kind, Tree, zero};

fn sample() -> Tree<Block> {
    common::sample_tree(fl::encode, |b: &Block| b.id.to_vec()).0
}

fn tags() -> std::collections::BTreeMap<String, String> {
    [("version".to_string(), "1.0".to_string())].into()
}

fn routes() -> Vec<Route> {
    vec![Route::all("zdb://hub.example:9900/blocks")]
}

fn write_to(dir: &Path, tree: &Tree<Block>) -> PathBuf {
    let path = dir.join("x.fl");
    let mut out = std::fs::File::create(&path).unwrap();
    fl::write(tree, &tags(), &routes(), &mut out).unwrap();
    path
}

#[test]
fn round_trips_every_entry_type() {
    let dir = tempfile::tempdir().unwrap();
    let tree = sample();
    let fl = FlFile::open(&write_to(dir.path(), &tree)).unwrap();
    // fl keeps no owner names.
    let mut expected = tree.clone();
    let entries: Vec<_> = tree.iter().map(|(p, e)| (p, e.clone())).collect();
    for (path, mut e) in entries {
        e.uname.clear();
        e.gname.clear();
        if path.is_empty() {
            expected = Tree::new(e).unwrap();
        } else {
            expected.insert(&path, e).unwrap();
        }
    }
    assert_eq!(fl.tree().unwrap(), expected);
    assert_eq!(fl.tags().unwrap(), tags());
    assert_eq!(fl.routes().unwrap(), routes());
    assert_eq!(fl.block_ids().unwrap().len(), 8);
}

#[test]
fn the_same_tree_gives_the_same_bytes() {
    let tree = sample();
    let mut first = Vec::new();
    fl::write(&tree, &tags(), &routes(), &mut first).unwrap();
    let mut second = Vec::new();
    fl::write(&tree.clone(), &tags(), &routes(), &mut second).unwrap();
    assert_eq!(common::sha256(&first), common::sha256(&second));
}

#[test]
fn what_fl_cannot_hold_is_refused_by_the_writer() {
    let mut tree = Tree::new(legacy::Entry::directory(0o755)).unwrap();
    let file = legacy::Entry {
        kind: Kind::File {
            size: 10,
            blocks: vec![],
        },
        ..legacy::Entry::directory(0o644)
    };
    tree.insert(b"\xff\xfe", file).unwrap();
    let err = fl::write(&tree, &tags(), &[], Vec::new()).unwrap_err();
    assert!(matches!(err, Error::Tree { .. }), "{err:?}");
    let local = [Route::all("dir:///var/blocks")];
    let err = fl::write(&sample(), &tags(), &local, Vec::new()).unwrap_err();
    assert!(matches!(err, Error::LocalRoute { .. }), "{err:?}");
}

/// Writes the sample, lets `change` edit it, and returns what reading it says.
fn after(change: &str) -> Error {
    let dir = tempfile::tempdir().unwrap();
    let path = write_to(dir.path(), &sample());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(change)
        .unwrap();
    match FlFile::open(&path) {
        Err(e) => e,
        Ok(fl) => match fl.routes() {
            Err(e) => e,
            Ok(_) => fl.tree().expect_err("a hostile fl was read"),
        },
    }
}

#[test]
fn hostile_files_are_refused() {
    let cases: &[(&str, &str)] = &[
        ("UPDATE route SET url = 'dir:///srv/blocks'", "local path"),
        ("UPDATE route SET url = 'zdb:///run/zdb.sock'", "local path"),
        (
            "INSERT INTO route VALUES (0, 300, 'zdb://h')",
            "beyond 0-255",
        ),
        (
            "CREATE TRIGGER t AFTER INSERT ON inode BEGIN SELECT 1; END;",
            "unexpected trigger",
        ),
        ("CREATE TABLE more (x)", "unexpected table"),
        (
            "UPDATE inode SET name = '..' WHERE name = 'etc'",
            "invalid name",
        ),
        (
            "UPDATE inode SET name = 'a/b' WHERE name = 'etc'",
            "invalid name",
        ),
        ("UPDATE inode SET name = 'bin' WHERE name = 'etc'", "twice"),
        // Found by fuzzing: read, then refused by the writer.
        (
            "UPDATE inode SET name = CAST(x'6574ff63' AS TEXT) WHERE name = 'etc'",
            "not UTF-8",
        ),
        (
            "UPDATE inode SET parent = ino WHERE name = 'deep'",
            "not reachable",
        ),
        (
            "UPDATE inode SET parent = (SELECT ino FROM inode WHERE name = 'c')
             WHERE name = 'deep'",
            "not reachable",
        ),
        ("DELETE FROM inode WHERE ino = 1", "no root"),
        ("UPDATE inode SET parent = 5 WHERE ino = 1", "not a root"),
        (
            "DELETE FROM block WHERE rowid = (SELECT max(rowid) FROM block)",
            "blocks for",
        ),
        (
            "INSERT INTO block SELECT ino, id, key FROM block WHERE rowid = 1",
            "or more blocks",
        ),
        ("UPDATE block SET id = x'00'", "not 32 bytes"),
        (
            "UPDATE inode SET size = 10 WHERE name = 'tool'",
            "blocks for 10 bytes",
        ),
        ("DELETE FROM extra", "without a valid target"),
        (
            "UPDATE extra SET data = zeroblob(5000)",
            "without a valid target",
        ),
        (
            "UPDATE route SET url = 'zdb://' || hex(zeroblob(2000))",
            "longer than 2048",
        ),
        (
            "UPDATE inode SET mode = 0 WHERE name = 'tool'",
            "unknown file type",
        ),
        (
            "UPDATE inode SET uid = -5 WHERE name = 'tool'",
            "out of range",
        ),
    ];
    for (sql, expected) in cases {
        let err = after(sql);
        assert!(err.to_string().contains(expected), "{sql}: {err}");
        assert!(
            !matches!(err, Error::Io { .. } | Error::Sqlite(_)),
            "{sql}: {err:?}"
        );
    }
}

#[test]
fn trees_come_from_native_flists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("native.flist");
    let files = common::sample_files();
    let mut w = flist::FlistWriter::create(&path).unwrap();
    let node = |kind, mode| flist::Node {
        kind,
        mode,
        uid: 0,
        gid: 7,
        mtime: flist::Timestamp {
            secs: 1_600_000_000,
            nanos: 5,
        },
    };
    for (name, content, mode) in &files {
        let size = content.len() as u64;
        let ino = w
            .add(
                name.as_bytes(),
                &node(flist::NodeKind::Regular { size }, *mode),
                &[],
            )
            .unwrap();
        if size > 0 {
            let chunk = flist::ChunkRef {
                key: [1; 32],
                offset: 0,
                length: size as u32,
            };
            w.add_chunk(ino, 0, &chunk).unwrap();
        }
    }
    w.add_hardlink(b"tool-again", b"bin/tool").unwrap();
    let target = flist::NodeKind::Symlink {
        target: b"bin/tool".to_vec(),
    };
    w.add(b"link", &node(target, 0o777), &[]).unwrap();
    let null = flist::NodeKind::CharDevice { major: 1, minor: 3 };
    w.add(b"null", &node(null, 0o666), &[]).unwrap();
    w.finish().unwrap();

    let native = flist::Flist::open(&path).unwrap();
    let contents: std::collections::HashMap<&str, &Vec<u8>> =
        files.iter().map(|(p, c, _)| (*p, c)).collect();
    let mut calls = Vec::new();
    let tree: Tree<zero::Block> = Tree::from_native(&native, |path, _entry| {
        let path = std::str::from_utf8(path).unwrap().to_owned();
        let content = contents[if path == "tool-again" {
            "bin/tool"
        } else {
            &path
        }];
        calls.push(path);
        content
            .chunks(legacy::BLOCK_SIZE as usize)
            .map(|w| zero::encode(w).map(|(b, _)| b))
            .collect::<legacy::Result<Vec<_>>>()
    })
    .unwrap();
    assert_eq!(calls.len(), files.len() + 1, "one call per file name");
    let tool = tree.get(b"bin/tool").unwrap();
    assert_eq!((tool.mode, tool.uid, tool.gid), (0o4755, 0, 7));
    assert_eq!((tool.uname.as_str(), tool.gname.as_str()), ("root", "7"));
    assert_eq!(tool.mtime, 1_600_000_000);
    assert_eq!(tree.get(b"tool-again").unwrap().kind, tool.kind);
    assert_eq!(
        tree.get(b"null").unwrap().kind,
        Kind::Special(legacy::Special::CharDevice { major: 1, minor: 3 })
    );
    let mut out = Vec::new();
    zero::write(&tree, &Default::default(), &mut out).unwrap();
    let back = zero::ZeroFlist::from_reader(&out[..], &legacy::Limits::default()).unwrap();
    assert_eq!(back.tree().unwrap(), tree);

    // A caller that gives a wrong number of blocks is refused.
    let err =
        Tree::<zero::Block>::from_native(&native, |_, _| Ok::<_, Error>(Vec::new())).unwrap_err();
    assert!(err.to_string().contains("blocks given for"), "{err}");
}
