//! rfs's `fl` format (`.fl`): what `rfs pack` writes and `rfs mount` (2.0.6, the version
//! Zero-OS runs) mounts.
//!
//! One SQLite file: `inode` (one row per name, the root is inode 1 with parent 0), `extra`
//! (symlink targets), `block` (each file's blocks in row order), `tag` (free key/value
//! metadata) and `route` (which stores hold which blocks, by the first byte of their id).
//! Blocks are encoded by [`encode`].

pub(crate) mod codec;
mod read;
mod route;
mod write;

pub use codec::{Block, MAX_PLAINTEXT, blake2b_256, decode, encode, encode_with_key};
pub use read::FlFile;
pub use route::Route;
pub use write::write;

use flist::untrusted::{Index, Schema, Table};

/// The tables of an fl file, as rfs 2.0.6 creates them.
const SCHEMA: Schema = Schema {
    tables: &[
        Table {
            name: "inode",
            columns: &[
                ("ino", "INTEGER"),
                ("parent", "INTEGER"),
                ("name", "VARCHAR(255)"),
                ("size", "INTEGER"),
                ("uid", "INTEGER"),
                ("gid", "INTEGER"),
                ("mode", "INTEGER"),
                ("rdev", "INTEGER"),
                ("ctime", "INTEGER"),
                ("mtime", "INTEGER"),
            ],
            without_rowid: false,
            optional: false,
        },
        // SQLite's own table behind `inode`'s AUTOINCREMENT.
        Table {
            name: "sqlite_sequence",
            columns: &[("name", ""), ("seq", "")],
            without_rowid: false,
            optional: true,
        },
        Table {
            name: "extra",
            columns: &[("ino", "INTEGER"), ("data", "VARCHAR(4096)")],
            without_rowid: false,
            optional: false,
        },
        Table {
            name: "block",
            columns: &[
                ("ino", "INTEGER"),
                ("id", "VARCHAR(32)"),
                ("key", "VARCHAR(32)"),
            ],
            without_rowid: false,
            optional: false,
        },
        Table {
            name: "tag",
            columns: &[("key", "VARCHAR(10)"), ("value", "VARCHAR(255)")],
            without_rowid: false,
            optional: false,
        },
        Table {
            name: "route",
            columns: &[
                ("start", "integer"),
                ("end", "integer"),
                ("url", "VARCHAR(2048)"),
            ],
            without_rowid: false,
            optional: false,
        },
    ],
    indexes: &[
        Index {
            name: "parents",
            table: "inode",
            columns: &["parent"],
            optional: false,
        },
        Index {
            name: "names",
            table: "inode",
            columns: &["name"],
            optional: false,
        },
        Index {
            name: "block_ino",
            table: "block",
            columns: &["ino"],
            optional: false,
        },
        Index {
            name: "sqlite_autoindex_tag_1",
            table: "tag",
            columns: &["key"],
            optional: false,
        },
    ],
};

/// The statements that create [`SCHEMA`], in rfs's order.
const CREATE: &str = "
CREATE TABLE inode (
    ino INTEGER PRIMARY KEY AUTOINCREMENT, parent INTEGER, name VARCHAR(255), size INTEGER,
    uid INTEGER, gid INTEGER, mode INTEGER, rdev INTEGER, ctime INTEGER, mtime INTEGER
);
CREATE INDEX parents ON inode (parent);
CREATE INDEX names ON inode (name);
CREATE TABLE extra (ino INTEGER PRIMARY KEY, data VARCHAR(4096));
CREATE TABLE block (ino INTEGER, id VARCHAR(32), key VARCHAR(32));
CREATE INDEX block_ino ON block (ino);
CREATE TABLE tag (key VARCHAR(10) PRIMARY KEY, value VARCHAR(255));
CREATE TABLE route (start integer, end integer, url VARCHAR(2048));
";

/// `st_mode` file type bits.
mod mode {
    pub const TYPE: u32 = 0o170000;
    pub const SOCKET: u32 = 0o140000;
    pub const SYMLINK: u32 = 0o120000;
    pub const REGULAR: u32 = 0o100000;
    pub const BLOCK: u32 = 0o060000;
    pub const DIRECTORY: u32 = 0o040000;
    pub const CHAR: u32 = 0o020000;
    pub const FIFO: u32 = 0o010000;
}

/// glibc's `makedev`: how `st_rdev` packs a device's major and minor numbers.
fn makedev(major: u32, minor: u32) -> u64 {
    let (major, minor) = (u64::from(major), u64::from(minor));
    ((major & 0xffff_f000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0xff)
}

/// glibc's `major` and `minor`.
fn split_dev(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0xfff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0xff);
    (major as u32, minor as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_round_trip() {
        for (major, minor) in [(0, 0), (1, 3), (8, 17), (259, 65_536), (4095, 1 << 20)] {
            assert_eq!(split_dev(makedev(major, minor)), (major, minor));
        }
        assert_eq!(makedev(1, 3), 0x103);
    }
}
