//! The flist formats Zero-OS nodes read, beside flisthub's own (the `flist` crate):
//!
//! * [`zero`]: the 0-flist format (`.flist`), a gzip'd tar of an SQLite file of Cap'n Proto
//!   objects, whose blocks are snappy-compressed and XXTEA-encrypted, named by BLAKE2b-128.
//!   zflist writes it; g8ufs mounts it; Zero-OS's bootstrap and upgrader read it.
//! * [`fl`]: rfs's `fl` format (`.fl`), one SQLite file, whose blocks are snappy-compressed
//!   and AES-256-GCM-encrypted, named by BLAKE2b-256. rfs 2.0.6 writes and mounts it.
//!
//! Both describe a [`Tree`]: the readers return one (or walk it entry by entry), the
//! writers take one, and [`Tree::from_native`] builds one from a native flist given each
//! file's block list. Files are cut into 512 KiB blocks ([`BLOCK_SIZE`]) in both formats.
//!
//! Every reader treats its input as hostile: sizes are bounded before they are read
//! ([`Limits`]), SQLite files are opened with [`flist::untrusted::open`] and their schema
//! checked, Cap'n Proto objects are read with traversal and nesting limits, and every rule
//! of the format (keys, names, links between rows, block lists) is checked, so a crafted
//! file gets an [`Error`], never a panic, a loop or an allocation of the size it claims.
//! Writers are deterministic: the same tree and metadata give the same bytes.
//!
//! # What the legacy formats cannot hold
//!
//! | | 0-flist | fl |
//! |---|---|---|
//! | extended attributes | no | no |
//! | sub-second times | no (seconds, unsigned 32-bit: before 1970 and after 2106 are clamped) | no (seconds) |
//! | hardlinks | no: each name is a file of its own (same blocks) | no: each name is an inode of its own (same blocks) |
//! | device numbers | as text `"major,minor"`; zflist 2.3 writes every special as a socket and g8ufs shows none | yes (`rdev`) |
//! | setuid, setgid, sticky | stored; g8ufs shows only the `0o777` bits | yes |
//! | owner names | yes (`uname`, `gname`) | no (numeric ids only) |
//! | non-UTF-8 names or link targets | no (Cap'n Proto text; g8ufs refuses them) | no (names are text) |
//! | a change time | yes | yes |
//!
//! A native flist has no change time: [`Tree::from_native`] uses the modification time.

#![forbid(unsafe_code)]

mod detect;
mod error;
pub mod fl;
mod native;
mod snappy;
mod tree;
pub mod window;
pub mod zero;

/// What the `blocks` fuzz target needs to reach the block decoders' inner layers with bytes
/// of its choosing: each codec's encryption of an arbitrary payload (which `encode` only
/// ever applies to snappy output). Built only under `cargo fuzz` (`--cfg fuzzing`).
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    /// Seals `payload` as a 0-flist block's ciphertext (XXTEA under `key`).
    pub fn seal_zero(payload: &[u8], key: &[u8; 16]) -> Vec<u8> {
        crate::zero::xxtea::encrypt(payload, key)
    }

    /// Seals `payload` as an fl block's ciphertext (AES-256-GCM under `key`).
    pub fn seal_fl(payload: &[u8], key: &[u8; 32]) -> crate::Result<Vec<u8>> {
        crate::fl::codec::seal(payload, key)
    }
}

pub use detect::{Format, HEAD_LEN, detect, detect_file};
pub use error::{Error, Result};
pub use tree::{BLOCK_SIZE, Entry, Kind, Special, Totals, Tree, block_count};

/// A private temporary directory for a database being written or read.
fn scratch() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(".legacy-")
        .tempdir()
        .map_err(Error::io("creating a temporary directory"))
}

/// Bounds on what a reader accepts, each checked before the bytes it bounds are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Size of a 0-flist file (the gzip stream).
    pub archive_bytes: u64,
    /// Bytes a 0-flist's gzip stream may expand to (the whole tar).
    pub expanded_bytes: u64,
    /// Size of the SQLite database: a 0-flist's `flistdb.sqlite3`, or an fl file.
    pub database_bytes: u64,
    /// Members of a 0-flist's tar.
    pub members: u32,
    /// One stored object: a 0-flist directory with all its entries, or the metadata.
    pub object_bytes: u64,
    /// Entries of the tree (the root included).
    pub entries: u64,
}

impl Default for Limits {
    /// Far above what real flists need (a 300,000-file image makes a database of some
    /// 60 MiB and directories of a few MiB), far below what would hurt a server.
    fn default() -> Self {
        Limits {
            archive_bytes: 512 << 20,
            expanded_bytes: 2 << 30,
            database_bytes: 2 << 30,
            members: 64,
            object_bytes: 64 << 20,
            entries: 10_000_000,
        }
    }
}
