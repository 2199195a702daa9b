//! The SQL schema of format version 1 (see `FORMAT.md`).

use crate::untrusted::{Schema, Table};

/// `PRAGMA application_id` of every flist: ASCII "FLST".
pub const APPLICATION_ID: i32 = 0x464C_5354;
/// `PRAGMA user_version`: the format version this crate writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// Page size of written flists. Fixed so the same content gives the same bytes everywhere.
pub(crate) const PAGE_SIZE: u32 = 4096;

/// Tables of a published flist. `WITHOUT ROWID` keeps each table a single B-tree ordered by
/// its key: a directory listing is one range scan of `entry`, a file's chunks one of `chunk`.
pub(crate) const FINAL_TABLES: &str = "
CREATE TABLE inode (
    ino        INTEGER PRIMARY KEY,
    kind       INTEGER NOT NULL,
    mode       INTEGER NOT NULL,
    uid        INTEGER NOT NULL,
    gid        INTEGER NOT NULL,
    mtime      INTEGER NOT NULL,
    mtime_nsec INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    nlink      INTEGER NOT NULL,
    dev_major  INTEGER NOT NULL,
    dev_minor  INTEGER NOT NULL,
    target     BLOB
);
CREATE TABLE entry (
    parent INTEGER NOT NULL,
    name   BLOB NOT NULL,
    ino    INTEGER NOT NULL,
    PRIMARY KEY (parent, name)
) WITHOUT ROWID;
CREATE TABLE chunk (
    ino    INTEGER NOT NULL,
    seq    INTEGER NOT NULL,
    start  INTEGER NOT NULL,
    length INTEGER NOT NULL,
    key    BLOB NOT NULL,
    PRIMARY KEY (ino, seq)
) WITHOUT ROWID;
CREATE TABLE xattr (
    ino   INTEGER NOT NULL,
    name  BLOB NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (ino, name)
) WITHOUT ROWID;
CREATE TABLE metadata (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

/// The schema of `FINAL_TABLES`, for the check [`untrusted::open`](crate::untrusted::open)
/// makes before anything else is read from a file.
pub(crate) const SCHEMA: Schema = Schema {
    tables: &[
        Table {
            name: "inode",
            columns: &[
                ("ino", "INTEGER"),
                ("kind", "INTEGER"),
                ("mode", "INTEGER"),
                ("uid", "INTEGER"),
                ("gid", "INTEGER"),
                ("mtime", "INTEGER"),
                ("mtime_nsec", "INTEGER"),
                ("size", "INTEGER"),
                ("nlink", "INTEGER"),
                ("dev_major", "INTEGER"),
                ("dev_minor", "INTEGER"),
                ("target", "BLOB"),
            ],
            without_rowid: false,
            optional: false,
        },
        Table {
            name: "entry",
            columns: &[("parent", "INTEGER"), ("name", "BLOB"), ("ino", "INTEGER")],
            without_rowid: true,
            optional: false,
        },
        Table {
            name: "chunk",
            columns: &[
                ("ino", "INTEGER"),
                ("seq", "INTEGER"),
                ("start", "INTEGER"),
                ("length", "INTEGER"),
                ("key", "BLOB"),
            ],
            without_rowid: true,
            optional: false,
        },
        Table {
            name: "xattr",
            columns: &[("ino", "INTEGER"), ("name", "BLOB"), ("value", "BLOB")],
            without_rowid: true,
            optional: false,
        },
        Table {
            name: "metadata",
            columns: &[("key", "TEXT"), ("value", "TEXT")],
            without_rowid: true,
            optional: false,
        },
    ],
    indexes: &[],
};
