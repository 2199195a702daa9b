//! Telling the three flist formats apart by their first bytes, before any reader opens the
//! file: the hub does it for every upload, the command line for every file it is given.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// The format of an flist file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// flisthub's own (the `flist` crate): SQLite with its application id.
    Native,
    /// 0-flist ([`crate::zero`]): a gzip stream.
    ZeroFlist,
    /// rfs `fl` ([`crate::fl`]): SQLite with any other application id.
    Fl,
}

/// Bytes [`detect`] looks at: the SQLite header, whose application id is at offset 68.
pub const HEAD_LEN: usize = 100;

/// The format the first bytes of a file say it has, or `None` when they are none of the
/// three. Each format's reader then checks the rest: this only chooses which reader.
pub fn detect(head: &[u8]) -> Option<Format> {
    if head.starts_with(&[0x1f, 0x8b]) {
        return Some(Format::ZeroFlist);
    }
    if head.len() >= HEAD_LEN && head.starts_with(b"SQLite format 3\0") {
        let application_id = i32::from_be_bytes([head[68], head[69], head[70], head[71]]);
        return Some(if application_id == flist::APPLICATION_ID {
            Format::Native
        } else {
            Format::Fl
        });
    }
    None
}

/// [`detect`] on the first [`HEAD_LEN`] bytes of the file at `path`.
pub fn detect_file(path: &Path) -> Result<Option<Format>> {
    let file = std::fs::File::open(path).map_err(Error::io("opening the flist"))?;
    let mut head = Vec::with_capacity(HEAD_LEN);
    file.take(HEAD_LEN as u64)
        .read_to_end(&mut head)
        .map_err(Error::io("reading the flist"))?;
    Ok(detect(&head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_first_bytes() {
        let mut sqlite = [0u8; HEAD_LEN];
        sqlite[..16].copy_from_slice(b"SQLite format 3\0");
        assert_eq!(detect(&sqlite), Some(Format::Fl));
        sqlite[68..72].copy_from_slice(&flist::APPLICATION_ID.to_be_bytes());
        assert_eq!(detect(&sqlite), Some(Format::Native));
        assert_eq!(detect(&sqlite[..50]), None, "a truncated header");
        assert_eq!(detect(&[0x1f, 0x8b, 8]), Some(Format::ZeroFlist));
        assert_eq!(detect(b""), None);
        assert_eq!(detect(b"PK\x03\x04"), None);
    }
}
