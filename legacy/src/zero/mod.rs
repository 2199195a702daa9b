//! The 0-flist format (`.flist`): what zflist writes, g8ufs mounts and Zero-OS boots.
//!
//! A gzip'd tar holding `flistdb.sqlite3`, whose `entries` table holds one Cap'n Proto `Dir`
//! per directory (keyed by BLAKE2b-128 of its path) and one `ACI` per distinct owner and
//! mode (keyed by BLAKE2b-64 of its text form), and whose `metadata` table holds the flist's
//! metadata (JSON texts, as zflist writes them). Blocks are encoded by [`encode`].

mod archive;
mod codec;
mod metadata;
mod read;
mod write;
pub(crate) mod xxtea;

#[rustfmt::skip]
#[allow(warnings, clippy::all, clippy::pedantic)]
pub(crate) mod flist_capnp;

pub use codec::{Block, MAX_PLAINTEXT, blake2b_128, decode, encode, encode_with_key};
pub use metadata::{Backend, zflist_json};
pub use read::ZeroFlist;
pub use write::write;

use flist::untrusted::{Index, Schema, Table};

/// The tables of `flistdb.sqlite3`, as libflist creates them. Old flists have no
/// `metadata` table.
const SCHEMA: Schema = Schema {
    tables: &[
        Table {
            name: "entries",
            columns: &[("key", "VARCHAR(64)"), ("value", "BLOB")],
            without_rowid: false,
            optional: false,
        },
        Table {
            name: "metadata",
            columns: &[("key", "VARCHAR(64)"), ("value", "TEXT")],
            without_rowid: false,
            optional: true,
        },
    ],
    indexes: &[
        Index {
            name: "sqlite_autoindex_entries_1",
            table: "entries",
            columns: &["key"],
            optional: false,
        },
        Index {
            name: "sqlite_autoindex_metadata_1",
            table: "metadata",
            columns: &["key"],
            optional: true,
        },
    ],
};

/// The statements that create [`SCHEMA`], as libflist runs them.
const CREATE: &str = "CREATE TABLE entries (key VARCHAR(64) PRIMARY KEY, value BLOB);
CREATE TABLE metadata (key VARCHAR(64) PRIMARY KEY, value TEXT);";

/// Row key of the directory at `path`: lowercase hex of BLAKE2b-128 of the path (relative,
/// no leading or trailing slash; the root is the empty path).
fn dir_key(path: &[u8]) -> String {
    hex::encode(blake2b_128(path))
}

/// Row key of an ACI: lowercase hex of BLAKE2b-64 of libflist's text form of it.
fn acl_key(uname: &str, gname: &str, mode: u32, uid: i64, gid: i64) -> String {
    let text = format!("user:{uname}\ngroup:{gname}\nmode:0o{mode:o}\nuid:{uid}\ngid:{gid}");
    hex::encode(codec::blake2b_64(text.as_bytes()))
}

/// What a 0-flist names a directory's size and a `File`'s `blockSize` (x 4 KiB): fixed
/// values that readers ignore.
const DIR_SIZE: u64 = 4096;
const BLOCK_SIZE_FIELD: u16 = 128;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_libflists() {
        // Both taken from a flist zflist 2.3.0 wrote: the root directory's row and the ACL
        // of a root-owned 0755 directory.
        assert_eq!(dir_key(b""), "cae66941d9efbd404e4d88758ea67670");
        assert_eq!(acl_key("root", "root", 0o755, 0, 0), "d7683de000c13689");
        assert_eq!(acl_key("root", "root", 0o4755, 0, 0), "2d28e41ae14a6bcf");
    }
}
