//! Flists crafted to run SQL when read: each is refused by `Flist::open` before any query.

use std::path::Path;

use flist::{Error, Flist, FlistWriter, Node, NodeKind, Timestamp};

fn sample(out: &Path) {
    let mut w = FlistWriter::create(out).unwrap();
    let file = Node {
        kind: NodeKind::Regular { size: 0 },
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: Timestamp::default(),
    };
    w.add(b"etc/hosts", &file, &[]).unwrap();
    w.finish().unwrap();
}

/// Applies `sql` to a fresh flist and returns what opening it says.
fn open_after(sql: &str) -> Error {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.flist");
    sample(&out);
    let db = rusqlite::Connection::open(&out).unwrap();
    db.execute_batch(sql).unwrap();
    drop(db);
    Flist::open(&out).unwrap_err()
}

#[test]
fn an_untouched_flist_opens() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.flist");
    sample(&out);
    let f = Flist::open(&out).unwrap();
    assert_eq!(f.totals().unwrap().files, 1);
    // Opened immutable: no side file was created or is needed.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn objects_that_run_sql_are_refused() {
    let cases = [
        (
            "CREATE TRIGGER t AFTER INSERT ON inode BEGIN SELECT 1; END;",
            "unexpected trigger \"t\"",
        ),
        (
            "CREATE VIEW v AS SELECT * FROM inode;",
            "unexpected view \"v\"",
        ),
        (
            "ALTER TABLE inode ADD COLUMN g INTEGER GENERATED ALWAYS AS (ino * 2) VIRTUAL;",
            "generated or hidden",
        ),
        ("CREATE TABLE extra (x);", "unexpected table \"extra\""),
        ("CREATE INDEX i ON inode (uid);", "unexpected index \"i\""),
        (
            "ALTER TABLE metadata RENAME TO meta;",
            "unexpected table \"meta\"",
        ),
        (
            "ALTER TABLE inode ADD COLUMN spare INTEGER;",
            "has columns (",
        ),
    ];
    for (sql, expected) in cases {
        let err = open_after(sql);
        assert!(
            matches!(err, Error::UnexpectedSchema { .. }),
            "{sql}: {err:?}"
        );
        assert!(err.to_string().contains(expected), "{sql}: {err}");
    }
}

#[test]
fn a_table_replaced_by_a_view_or_with_other_types_is_refused() {
    let err = open_after(
        "ALTER TABLE xattr RENAME TO old_xattr;
         CREATE VIEW xattr AS SELECT * FROM old_xattr;",
    );
    assert!(err.to_string().contains("unexpected"), "{err}");

    let err = open_after(
        "DROP TABLE xattr;
         CREATE TABLE xattr (ino TEXT, name BLOB, value BLOB, PRIMARY KEY (ino, name)) WITHOUT ROWID;",
    );
    assert!(err.to_string().contains("ino TEXT"), "{err}");

    let err = open_after(
        "DROP TABLE xattr;
         CREATE TABLE xattr (ino INTEGER, name BLOB, value BLOB);",
    );
    assert!(err.to_string().contains("WITHOUT ROWID"), "{err}");
}
