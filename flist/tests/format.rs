use std::path::{Path, PathBuf};

use flist::{ChunkRef, Error, Flist, FlistWriter, Kind, Node, NodeKind, Timestamp, Walk, Xattr};

fn node(kind: NodeKind, mode: u32) -> Node {
    Node {
        kind,
        mode,
        uid: 1000,
        gid: 100,
        mtime: Timestamp {
            secs: 1_700_000_000,
            nanos: 123_456_789,
        },
    }
}

fn file(size: u64) -> Node {
    node(NodeKind::Regular { size }, 0o644)
}

fn directory() -> Node {
    node(NodeKind::Directory, 0o750)
}

fn chunk(byte: u8, offset: u64, length: u32) -> ChunkRef {
    ChunkRef {
        key: [byte; 32],
        offset,
        length,
    }
}

/// Adds a regular file whose content is described by chunk lengths.
fn add_file(w: &mut FlistWriter, path: &str, lengths: &[u32]) {
    let size = lengths.iter().map(|&l| u64::from(l)).sum();
    let inode = w.add(path.as_bytes(), &file(size), &[]).unwrap();
    let mut offset = 0;
    for (seq, &length) in lengths.iter().enumerate() {
        w.add_chunk(inode, seq as u32, &chunk(seq as u8, offset, length))
            .unwrap();
        offset += u64::from(length);
    }
}

/// One step of building an flist.
enum Op {
    Node(&'static [u8], Node, Vec<Xattr>),
    File(&'static str, &'static [u32]),
    Hardlink(&'static [u8], &'static [u8]),
}

/// Every entry type, children before their directory (as tar streams may deliver them).
fn sample_ops() -> Vec<Op> {
    let symlink = node(
        NodeKind::Symlink {
            target: b"/bin/busybox".to_vec(),
        },
        0o777,
    );
    let xattr = Xattr {
        name: b"user.comment".to_vec(),
        value: b"\x00binary\xff".to_vec(),
    };
    vec![
        Op::File("etc/conf/app.toml", &[10]),
        Op::Node(b"etc", directory(), vec![]),
        Op::File("bin/tool", &[100, 50]),
        Op::Hardlink(b"bin/tool-alias", b"bin/tool"),
        Op::Node(b"bin/sh", symlink, vec![]),
        Op::File("empty", &[]),
        Op::Node(
            b"dev/null",
            node(NodeKind::CharDevice { major: 1, minor: 3 }, 0o666),
            vec![],
        ),
        Op::Node(
            b"dev/sda",
            node(NodeKind::BlockDevice { major: 8, minor: 0 }, 0o660),
            vec![],
        ),
        Op::Node(b"run/fifo", node(NodeKind::Fifo, 0o600), vec![]),
        Op::Node(b"run/sock", node(NodeKind::Socket, 0o755), vec![]),
        Op::Node("ünïcode name \u{1F600}".as_bytes(), file(0), vec![xattr]),
        Op::Node(b"", node(NodeKind::Directory, 0o755), vec![]),
    ]
}

fn write(out: &Path, ops: &[Op]) {
    let mut w = FlistWriter::create(out).unwrap();
    w.metadata_mut().set_readme("hello");
    for op in ops {
        match op {
            Op::Node(path, node, xattrs) => {
                w.add(path, node, xattrs).unwrap();
            }
            Op::File(path, lengths) => add_file(&mut w, path, lengths),
            Op::Hardlink(path, target) => {
                w.add_hardlink(path, target).unwrap();
            }
        }
    }
    w.finish().unwrap();
}

fn sample(out: &Path) {
    write(out, &sample_ops());
}

/// The sample written to `out`, then edited with `sql` below the writer, and opened.
fn sample_after(out: &Path, sql: &str) -> Flist {
    sample(out);
    rusqlite::Connection::open(out)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
    Flist::open(out).unwrap()
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn writes_and_reads_every_entry_type() {
    let dir = tmp();
    let out = dir.path().join("a.flist");
    sample(&out);
    let f = Flist::open(&out).unwrap();

    let tool = f.lookup(b"/bin/tool").unwrap().unwrap();
    assert_eq!(tool.node.kind, NodeKind::Regular { size: 150 });
    assert_eq!(tool.nlink, 2);
    assert_eq!(tool.node.mtime.nanos, 123_456_789);
    let alias = f.lookup(b"bin/tool-alias").unwrap().unwrap();
    assert_eq!(alias.ino, tool.ino, "hardlinks share one inode");
    let chunks = f.chunks(&tool).unwrap();
    assert_eq!(chunks, vec![chunk(0, 0, 100), chunk(1, 100, 50)]);
    let mut keys = Vec::new();
    f.chunk_keys(|key, _| {
        keys.push(key);
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    for c in &chunks {
        assert!(keys.contains(&c.key), "chunk_keys has every file's chunks");
    }

    let sh = f.lookup(b"bin/sh").unwrap().unwrap();
    assert_eq!(
        sh.node.kind,
        NodeKind::Symlink {
            target: b"/bin/busybox".to_vec()
        }
    );
    assert_eq!(
        f.lookup(b"dev/null").unwrap().unwrap().node.kind,
        NodeKind::CharDevice { major: 1, minor: 3 }
    );
    assert_eq!(
        f.lookup(b"run/sock").unwrap().unwrap().node.kind.kind(),
        Kind::Socket
    );
    assert_eq!(
        f.lookup(b"run/fifo").unwrap().unwrap().node.kind.kind(),
        Kind::Fifo
    );
    assert!(f.lookup(b"nope").unwrap().is_none());
    assert!(f.lookup(b"bin/tool/below-a-file").unwrap().is_none());

    // The implicit parent got defaults (as umoci gives them), the explicit one its own
    // attributes.
    assert_eq!(f.lookup(b"etc").unwrap().unwrap().node.mode, 0o750);
    let conf = f.lookup(b"etc/conf").unwrap().unwrap();
    assert_eq!((conf.node.mode, conf.node.mtime.secs), (0o755, 0));

    let uni = f
        .lookup("ünïcode name \u{1F600}".as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(f.xattrs(uni.ino).unwrap()[0].value, b"\x00binary\xff");

    let names: Vec<_> = f
        .read_dir(b"/bin")
        .unwrap()
        .into_iter()
        .map(|e| String::from_utf8(e.name).unwrap())
        .collect();
    assert_eq!(names, ["sh", "tool", "tool-alias"]);

    let mut walked = Vec::new();
    f.walk(|path, _| {
        walked.push(String::from_utf8_lossy(path).into_owned());
        Ok(Walk::Continue)
    })
    .unwrap();
    assert_eq!(
        walked,
        [
            "",
            "bin",
            "bin/sh",
            "bin/tool",
            "bin/tool-alias",
            "dev",
            "dev/null",
            "dev/sda",
            "empty",
            "etc",
            "etc/conf",
            "etc/conf/app.toml",
            "run",
            "run/fifo",
            "run/sock",
            "ünïcode name \u{1F600}",
        ]
    );

    let t = f.totals().unwrap();
    assert_eq!(
        (
            t.files,
            t.directories,
            t.symlinks,
            t.specials,
            t.hardlinks,
            t.bytes,
            t.chunks
        ),
        (4, 6, 1, 4, 1, 160, 3)
    );
    assert_eq!(
        f.metadata().unwrap().readme().unwrap().as_deref(),
        Some("hello")
    );
    assert_eq!(f.metadata().unwrap().format_version(), Some("1"));
    // Inodes are numbered in walk order: the root is 1, `bin` 2.
    assert_eq!(f.root().unwrap().ino, 1);
    assert_eq!(f.lookup(b"bin").unwrap().unwrap().ino, 2);
}

#[test]
fn a_root_no_entry_describes_takes_the_newest_time_of_the_tree() {
    let dir = tmp();
    let out = dir.path().join("x.flist");
    let mut w = FlistWriter::create(&out).unwrap();
    let mut older = file(0);
    older.mtime.secs = 1_600_000_000;
    w.add(b"old", &older, &[]).unwrap();
    w.add(b"sub/new", &file(0), &[]).unwrap();
    w.finish().unwrap();
    let f = Flist::open(&out).unwrap();
    let root = f.root().unwrap();
    assert_eq!(
        (root.node.mode, root.node.mtime.secs),
        (0o755, 1_700_000_000)
    );
    // An implied parent keeps the epoch, as umoci makes it for images.
    assert_eq!(f.lookup(b"sub").unwrap().unwrap().node.mtime.secs, 0);
}

#[test]
fn same_tree_in_any_order_gives_identical_bytes() {
    let dir = tmp();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    sample(&a);
    sample(&b);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    // The same final tree reached in reverse order (hardlinks still after their target),
    // with an entry that is replaced on the way.
    let mut ops = sample_ops();
    ops.reverse();
    let link = ops
        .iter()
        .position(|op| matches!(op, Op::Hardlink(..)))
        .unwrap();
    let link = ops.remove(link);
    ops.push(link);
    ops.insert(0, Op::File("bin/sh", &[7]));
    write(&c, &ops);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());
}

#[test]
fn later_entries_replace_earlier_ones() {
    let dir = tmp();
    let out = dir.path().join("x.flist");
    let mut w = FlistWriter::create(&out).unwrap();
    add_file(&mut w, "d/inner/f", &[1]);
    add_file(&mut w, "d", &[2]); // a file replaces the directory and all below it
    add_file(&mut w, "f", &[3]);
    w.add(b"f", &directory(), &[]).unwrap(); // a directory replaces the file
    add_file(&mut w, "f/g", &[4]);
    add_file(&mut w, "h", &[5]);
    w.add_hardlink(b"h2", b"h").unwrap();
    add_file(&mut w, "h", &[6]); // h2 still names the old content
    w.finish().unwrap();

    let f = Flist::open(&out).unwrap();
    assert_eq!(
        f.lookup(b"d").unwrap().unwrap().node.kind,
        NodeKind::Regular { size: 2 }
    );
    assert!(f.lookup(b"d/inner").unwrap().is_none());
    assert!(f.lookup(b"f/g").unwrap().is_some());
    let h = f.lookup(b"h").unwrap().unwrap();
    let h2 = f.lookup(b"h2").unwrap().unwrap();
    assert_ne!(h.ino, h2.ino);
    assert_eq!((h.nlink, h2.nlink), (1, 1));
    assert_eq!(h2.node.kind, NodeKind::Regular { size: 5 });
    let t = f.totals().unwrap();
    assert_eq!(
        (t.files, t.chunks),
        (4, 4),
        "replaced inodes are not published"
    );
}

#[test]
fn refuses_paths_through_symlinks_and_files() {
    let dir = tmp();
    let mut w = FlistWriter::create(dir.path().join("x")).unwrap();
    w.add(
        b"link",
        &node(
            NodeKind::Symlink {
                target: b"/etc".to_vec(),
            },
            0o777,
        ),
        &[],
    )
    .unwrap();
    add_file(&mut w, "file", &[1]);
    let err = w
        .add(b"link/passwd", &file(0), &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("link/passwd") && err.contains("symlink"),
        "{err}"
    );
    let err = w.add(b"file/x", &file(0), &[]).unwrap_err().to_string();
    assert!(err.contains("not a directory"), "{err}");
    let err = w.add_hardlink(b"x", b"missing").unwrap_err().to_string();
    assert!(err.contains("not an earlier entry"), "{err}");
    w.add(b"d", &directory(), &[]).unwrap();
    assert!(
        w.add_hardlink(b"y", b"d").is_err(),
        "hardlink to a directory"
    );
    for bad in [&b"../x"[..], b"/abs", b"a//b", b"a\0b", b"."] {
        assert!(matches!(
            w.add(bad, &file(0), &[]),
            Err(Error::InvalidPath { .. })
        ));
    }
    assert!(
        w.add(b"", &file(0), &[]).is_err(),
        "the root must stay a directory"
    );
}

#[test]
fn incomplete_content_is_never_published() {
    let dir = tmp();
    let out = dir.path().join("x.flist");
    let mut w = FlistWriter::create(&out).unwrap();
    let inode = w.add(b"f", &file(100), &[]).unwrap();
    w.add_chunk(inode, 0, &chunk(1, 0, 60)).unwrap();
    let err = w.finish().unwrap_err().to_string();
    assert!(
        err.contains("\"f\"") && err.contains("do not cover"),
        "{err}"
    );

    let mut w = FlistWriter::create(&out).unwrap();
    let inode = w.add(b"g", &file(100), &[]).unwrap();
    w.add_chunk(inode, 0, &chunk(1, 0, 50)).unwrap();
    w.add_chunk(inode, 1, &chunk(1, 40, 50)).unwrap();
    let err = w.finish().unwrap_err().to_string();
    assert!(err.contains("does not start where"), "{err}");

    let mut w = FlistWriter::create(&out).unwrap();
    let inode = w.add(b"d", &directory(), &[]).unwrap();
    w.add_chunk(inode, 0, &chunk(1, 0, 50)).unwrap();
    assert!(w.finish().is_err());

    // Neither the output nor any staging file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn dropped_writer_leaves_nothing() {
    let dir = tmp();
    let mut w = FlistWriter::create(dir.path().join("x.flist")).unwrap();
    add_file(&mut w, "a", &[1]);
    drop(w);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

fn open_err(path: &Path) -> String {
    Flist::open(path).unwrap_err().to_string()
}

#[test]
fn opening_something_else_says_what_it_is() {
    let dir = tmp();
    let p = |n: &str| -> PathBuf { dir.path().join(n) };

    std::fs::write(p("empty"), b"").unwrap();
    assert!(open_err(&p("empty")).contains("not an flist: the file is empty"));

    std::fs::write(
        p("garbage"),
        b"this is not a database at all, just some text\n",
    )
    .unwrap();
    assert!(open_err(&p("garbage")).contains("not an SQLite database"));

    let db = rusqlite::Connection::open(p("other.db")).unwrap();
    db.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(db);
    assert!(open_err(&p("other.db")).contains("application_id 0x0"));

    let db = rusqlite::Connection::open(p("emptydb")).unwrap();
    db.execute_batch("VACUUM").unwrap();
    drop(db);
    let err = open_err(&p("emptydb"));
    assert!(err.contains("not an flist"), "{err}");

    sample(&p("good"));
    let bytes = std::fs::read(p("good")).unwrap();
    std::fs::write(p("truncated"), &bytes[..bytes.len() - 4096]).unwrap();
    assert!(open_err(&p("truncated")).contains("truncated flist"));
    std::fs::write(p("stub"), &bytes[..50]).unwrap();
    assert!(open_err(&p("stub")).contains("truncated flist"));

    std::fs::copy(p("good"), p("newer")).unwrap();
    let db = rusqlite::Connection::open(p("newer")).unwrap();
    db.execute_batch("PRAGMA user_version = 2").unwrap();
    drop(db);
    let err = open_err(&p("newer"));
    assert!(
        err.contains("version 2 is newer than this build supports (1)"),
        "{err}"
    );
}

#[test]
fn crafted_entries_are_refused_on_read() {
    let dir = tmp();
    let out = dir.path().join("x.flist");
    let f = sample_after(
        &out,
        "UPDATE entry SET name = x'2e2e' WHERE name = x'62696e'",
    );
    let err = f.walk(|_, _| Ok(Walk::Continue)).unwrap_err().to_string();
    assert!(
        err.contains("corrupt flist") && err.contains("'..'"),
        "{err}"
    );

    // A directory that contains itself must not loop forever.
    let f = sample_after(&out, "INSERT INTO entry VALUES (2, x'6c6f6f70', 2)");
    let err = f.walk(|_, _| Ok(Walk::Continue)).unwrap_err().to_string();
    assert!(err.contains("several names"), "{err}");

    // Thirty directories each named twice by the one before: 2^31 paths if followed.
    let mut w = FlistWriter::create(&out).unwrap();
    let deep: Vec<String> = (0..30).map(|i| format!("d{i}")).collect();
    w.add(deep.join("/").as_bytes(), &directory(), &[]).unwrap();
    w.finish().unwrap();
    let db = rusqlite::Connection::open(&out).unwrap();
    db.execute("INSERT INTO entry SELECT parent, x'62', ino FROM entry", [])
        .unwrap();
    drop(db);
    let f = Flist::open(&out).unwrap();
    let started = std::time::Instant::now();
    let err = f.walk(|_, _| Ok(Walk::Continue)).unwrap_err().to_string();
    assert!(err.contains("several names"), "{err}");
    assert!(started.elapsed().as_secs() < 2);

    // One name twice in a directory (found by fuzzing: the key (parent, name) is unique only
    // while SQLite keeps it so; here a key widened to hold the inode lets both in).
    let f = sample_after(
        &out,
        "CREATE TABLE wide (parent INTEGER NOT NULL, name BLOB NOT NULL, ino INTEGER NOT NULL,
                            PRIMARY KEY (parent, name, ino)) WITHOUT ROWID;
         INSERT INTO wide SELECT * FROM entry;
         INSERT INTO wide SELECT parent, x'62696e', ino FROM entry WHERE name = x'657463';
         DROP TABLE entry;
         ALTER TABLE wide RENAME TO entry;",
    );
    let err = f.walk(|_, _| Ok(Walk::Continue)).unwrap_err().to_string();
    assert!(err.contains("two entries named \"bin\""), "{err}");

    // An extended attribute named with NUL bytes (found by fuzzing as well).
    let f = sample_after(&out, "UPDATE xattr SET name = x'7573657200'");
    let named = f
        .lookup("ünïcode name \u{1F600}".as_bytes())
        .unwrap()
        .unwrap();
    let err = f.xattrs(named.ino).unwrap_err().to_string();
    assert!(err.contains("extended attribute named"), "{err}");

    // Chunk lengths that do not add up to the size.
    let f = sample_after(&out, "UPDATE inode SET size = 1000 WHERE size = 150");
    let tool = f.lookup(b"bin/tool").unwrap().unwrap();
    let err = f.chunks(&tool).unwrap_err().to_string();
    assert!(
        err.contains("add up to 150 bytes, the file has 1000"),
        "{err}"
    );
    let err = f
        .chunk_keys(|_, _| std::ops::ControlFlow::Continue(()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("add up to 150 bytes, the file has 1000"),
        "{err}"
    );
    let dir = f.lookup(b"bin").unwrap().unwrap();
    assert!(f.chunks(&dir).is_err());

    // A gap in a file's chunk numbers, seen by the one-pass check too.
    let f = sample_after(&out, "UPDATE chunk SET seq = 5 WHERE seq = 1");
    let err = f
        .chunk_keys(|_, _| std::ops::ControlFlow::Continue(()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not contiguous"), "{err}");
}

#[test]
fn resolve_follows_symlinks_inside_the_tree() {
    let dir = tmp();
    let out = dir.path().join("x.flist");
    let mut w = FlistWriter::create(&out).unwrap();
    add_file(&mut w, "usr/lib/libc.so.6", &[9]);
    let sym = |t: &[u8]| node(NodeKind::Symlink { target: t.to_vec() }, 0o777);
    w.add(b"lib", &sym(b"usr/lib"), &[]).unwrap();
    w.add(b"usr/lib/libc.so", &sym(b"../../lib/libc.so.6"), &[])
        .unwrap();
    w.add(b"abs", &sym(b"/usr/lib/libc.so"), &[]).unwrap();
    w.add(b"loop", &sym(b"loop"), &[]).unwrap();
    w.finish().unwrap();
    let f = Flist::open(&out).unwrap();
    for path in [
        &b"lib/libc.so.6"[..],
        b"/usr/lib/libc.so",
        b"abs",
        b"/../abs",
    ] {
        let e = f.resolve(path).unwrap().unwrap();
        assert_eq!(e.node.kind, NodeKind::Regular { size: 9 }, "{path:?}");
    }
    assert!(f.resolve(b"loop").is_err());
    assert!(f.resolve(b"lib/missing").unwrap().is_none());
}

#[test]
fn merge_keeps_the_first_on_every_path() {
    let dir = tmp();
    let (a, b, m) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("m"),
    );
    let mut w = FlistWriter::create(&a).unwrap();
    w.metadata_mut().set_readme("from a");
    add_file(&mut w, "app/bin", &[1]);
    add_file(&mut w, "etc/os-release", &[2]);
    add_file(&mut w, "clash", &[3]); // a file here, a directory in b
    w.finish().unwrap();

    let mut w = FlistWriter::create(&b).unwrap();
    w.metadata_mut().set_readme("from b");
    add_file(&mut w, "etc/os-release", &[20]);
    add_file(&mut w, "etc/passwd", &[21]);
    add_file(&mut w, "clash/inner", &[22]);
    add_file(&mut w, "usr/lib/x", &[23]);
    w.add_hardlink(b"usr/lib/y", b"usr/lib/x").unwrap();
    w.finish().unwrap();

    let (fa, fb) = (Flist::open(&a).unwrap(), Flist::open(&b).unwrap());
    flist::merge(&[&fa, &fb], &m).unwrap();
    let fm = Flist::open(&m).unwrap();
    let size = |p: &[u8]| fm.lookup(p).unwrap().unwrap().node.size();
    assert_eq!(size(b"etc/os-release"), 2, "first wins");
    assert_eq!(size(b"etc/passwd"), 21, "later ones fill gaps");
    assert_eq!(size(b"clash"), 3);
    assert!(fm.lookup(b"clash/inner").unwrap().is_none());
    let x = fm.lookup(b"usr/lib/x").unwrap().unwrap();
    assert_eq!(x.ino, fm.lookup(b"usr/lib/y").unwrap().unwrap().ino);
    assert_eq!(fm.chunks(&x).unwrap()[0].key, [0; 32]);
    assert_eq!(
        fm.metadata().unwrap().readme().unwrap().as_deref(),
        Some("from a")
    );

    // The other order: b's versions win.
    flist::merge(&[&fb, &fa], &m).unwrap();
    let fm = Flist::open(&m).unwrap();
    assert_eq!(
        fm.lookup(b"etc/os-release").unwrap().unwrap().node.size(),
        20
    );
    assert!(fm.lookup(b"clash/inner").unwrap().is_some());
    assert!(fm.lookup(b"app/bin").unwrap().is_some());
}

#[test]
fn writer_memory_does_not_hold_entries() {
    // 200k entries through a writer whose SQLite cache is 16 MiB: the staging database,
    // not the heap, holds them. (Peak RSS of a whole pack is measured in benches/.)
    let dir = tmp();
    let out = dir.path().join("many.flist");
    let mut w = FlistWriter::create(&out).unwrap();
    for i in 0..200_000u32 {
        let path = format!("d{}/f{i}", i % 500);
        w.add(path.as_bytes(), &file(0), &[]).unwrap();
    }
    let totals = w.finish().unwrap();
    assert_eq!((totals.files, totals.directories), (200_000, 501));
    let f = Flist::open(&out).unwrap();
    assert_eq!(f.read_dir(b"d7").unwrap().len(), 400);
}
