//! The SQL schema of format version 1 (see `FORMAT.md`) and the header checks that tell an
//! flist from any other file before SQLite is asked to open it.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
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

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// What the header of an SQLite file says about the application that wrote it.
pub(crate) struct Header {
    pub application_id: i32,
    pub user_version: u32,
}

/// Checks the 100-byte SQLite header: an flist is a SQLite file in rollback-journal mode
/// whose length matches the page count the header declares. SQLite itself would only notice
/// truncation when it reads a missing page, deep inside some query.
pub(crate) fn check_header(path: &Path) -> Result<Header> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let actual = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let not_flist = |reason: &str| Error::NotAnFlist {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if actual == 0 {
        return Err(not_flist("the file is empty"));
    }
    let mut header = [0u8; 100];
    let n = read_up_to(&mut file, &mut header).map_err(|e| Error::io(path, e))?;
    let header = &header[..n];
    let magic_len = n.min(SQLITE_MAGIC.len());
    if header[..magic_len] != SQLITE_MAGIC[..magic_len] {
        return Err(not_flist("not an SQLite database"));
    }
    if n < 100 {
        return Err(Error::Truncated {
            path: path.to_owned(),
            expected: 100,
            actual,
        });
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536,
        n => u64::from(n),
    };
    if header[18] != 1 || header[19] != 1 {
        return Err(Error::Corrupt(format!(
            "{}: SQLite file in WAL mode; flists are single self-contained files",
            path.display()
        )));
    }
    let change_counter = &header[24..28];
    let valid_for = &header[92..96];
    let pages = u64::from(u32::from_be_bytes([
        header[28], header[29], header[30], header[31],
    ]));
    if change_counter == valid_for && pages > 0 {
        let expected = pages * page_size;
        if actual < expected {
            return Err(Error::Truncated {
                path: path.to_owned(),
                expected,
                actual,
            });
        }
    }
    let be32 = |at: usize| [header[at], header[at + 1], header[at + 2], header[at + 3]];
    Ok(Header {
        application_id: i32::from_be_bytes(be32(68)),
        user_version: u32::from_be_bytes(be32(60)),
    })
}

fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
