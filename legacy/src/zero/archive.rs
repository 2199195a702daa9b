//! The container of a 0-flist: a gzip'd tar holding `flistdb.sqlite3`.
//!
//! Reading follows the 512-byte tar headers itself rather than through the `tar` crate,
//! whose entry iterator reads long-name and PAX records whole before the caller can bound
//! them: here every size is checked before a byte of it is read, and only the database
//! member is kept. Writing uses the `tar` crate with fixed headers, so that the same database
//! always gives the same archive bytes.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use flate2::read::GzDecoder;

use crate::Limits;
use crate::error::{Error, Result};

/// The one member a 0-flist needs, as zflist names it.
pub(crate) const DATABASE: &str = "flistdb.sqlite3";

const BLOCK: usize = 512;

/// Extracts `flistdb.sqlite3` from a 0-flist read from `input` into `dest`, within `limits`.
///
/// Refused: a broken or truncated gzip stream, a tar header whose checksum is wrong, more
/// members than allowed, a member name that is absolute or has a `..` component, links,
/// devices, long-name and PAX records (zflist writes none), a second database member, any
/// size over its limit (refused from the header, before the data is read), and an archive
/// without the database. A missing end-of-archive marker is accepted: zflist omits it.
pub(crate) fn extract_database(input: impl Read, limits: &Limits, dest: &Path) -> Result<()> {
    let compressed = Bounded::new(input, limits.archive_bytes, "the 0-flist file");
    let mut tar = Bounded::new(
        GzDecoder::new(compressed),
        limits.expanded_bytes,
        "the uncompressed 0-flist archive",
    );
    let mut found = false;
    let mut members = 0u32;
    let mut header = [0u8; BLOCK];
    while read_block(&mut tar, &mut header)? {
        if header.iter().all(|&b| b == 0) {
            break;
        }
        members += 1;
        if members > limits.members {
            return Err(Error::TooLarge {
                what: "the number of archive members",
                limit: u64::from(limits.members),
            });
        }
        let member = parse_header(&header)?;
        match member.kind {
            MemberKind::Directory => {}
            MemberKind::File if member.name == DATABASE => {
                if found {
                    return Err(archive("two flistdb.sqlite3 members"));
                }
                if member.size > limits.database_bytes {
                    return Err(Error::TooLarge {
                        what: "flistdb.sqlite3",
                        limit: limits.database_bytes,
                    });
                }
                let mut out = File::create(dest).map_err(Error::io("writing the database"))?;
                // A scratch copy to read from, gone with its directory: never synced.
                copy_exactly(&mut tar, &mut out, member.size)?;
                found = true;
            }
            MemberKind::File => copy_exactly(&mut tar, &mut io::sink(), member.size)?,
        }
        let padding = (BLOCK as u64 - member.size % BLOCK as u64) % BLOCK as u64;
        copy_exactly(&mut tar, &mut io::sink(), padding)?;
    }
    // Read to the end of the gzip stream: that is where a truncated or corrupt stream shows
    // (flate2 checks the CRC and length in its trailer), and what follows the tar is bounded
    // like the rest.
    io::copy(&mut tar, &mut io::sink()).map_err(gzip_error)?;
    if !found {
        return Err(Error::MissingDatabase);
    }
    Ok(())
}

/// Writes the database at `db` as a 0-flist archive to `out`: a GNU tar of `./` and
/// `./flistdb.sqlite3` (as zflist lays it out) with fixed owner, modes and times, gzip'd
/// with a fixed header (no name, no time).
pub(crate) fn write_archive(db: &Path, out: impl Write) -> Result<()> {
    let gz = flate2::GzBuilder::new()
        .operating_system(3)
        .write(out, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let fail = Error::io("writing the 0-flist archive");
    let mut dir = header(tar::EntryType::Directory, 0o755, 0);
    tar.append_data(&mut dir, "./", io::empty()).map_err(fail)?;
    let mut file = File::open(db).map_err(Error::io("reading the database"))?;
    let size = file
        .metadata()
        .map_err(Error::io("reading the database"))?
        .len();
    let mut member = header(tar::EntryType::Regular, 0o644, size);
    tar.append_data(&mut member, format!("./{DATABASE}"), &mut file)
        .map_err(Error::io("writing the 0-flist archive"))?;
    tar.into_inner()
        .and_then(|gz| gz.finish())
        .and_then(|mut out| out.flush())
        .map_err(Error::io("writing the 0-flist archive"))
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    // Set before the path: both are part of the checksum that append_data computes.
    let _ = h.set_username("root");
    let _ = h.set_groupname("root");
    h
}

enum MemberKind {
    File,
    Directory,
}

struct Member {
    name: String,
    kind: MemberKind,
    size: u64,
}

fn archive(reason: impl Into<String>) -> Error {
    Error::Archive(reason.into())
}

fn parse_header(h: &[u8; BLOCK]) -> Result<Member> {
    let stored = parse_octal(&h[148..156]).ok_or_else(|| archive("a header without checksum"))?;
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    if sum != stored {
        return Err(archive(
            "a tar header with a wrong checksum (not a tar archive?)",
        ));
    }
    let field = |range: std::ops::Range<usize>| {
        let f = &h[range];
        &f[..f.iter().position(|&b| b == 0).unwrap_or(f.len())]
    };
    let mut name = field(0..100).to_vec();
    // POSIX ustar keeps long names' directories in `prefix`; GNU headers use that space for
    // other fields.
    if &h[257..263] == b"ustar\0" && !field(345..500).is_empty() {
        name = [field(345..500), b"/", &name].concat();
    }
    let name = member_name(&name)?;
    let size =
        parse_size(&h[124..136]).ok_or_else(|| archive("a member size that is not a number"))?;
    let kind = match h[156] {
        b'0' | b'\0' | b'7' => MemberKind::File,
        b'5' => MemberKind::Directory,
        b'1' | b'2' => return Err(archive(format!("a link member ({name:?})"))),
        b'x' | b'g' | b'L' | b'K' => {
            return Err(archive("a long-name or PAX record (zflist writes none)"));
        }
        other => {
            return Err(archive(format!(
                "a member of type {:?} ({name:?})",
                char::from(other)
            )));
        }
    };
    Ok(Member { name, kind, size })
}

/// A member name without its leading `./`, refused when absolute, with a `..` component or
/// not UTF-8.
fn member_name(raw: &[u8]) -> Result<String> {
    let name = std::str::from_utf8(raw).map_err(|_| archive("a member name that is not UTF-8"))?;
    if name.starts_with('/') || name.split('/').any(|c| c == "..") {
        return Err(archive(format!(
            "a member name outside the archive ({name:?})"
        )));
    }
    let mut name = name;
    while let Some(rest) = name.strip_prefix("./") {
        name = rest;
    }
    Ok(name.to_owned())
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let digits: &[u8] = field
        .split(|&b| b == 0 || b == b' ')
        .find(|s| !s.is_empty())
        .unwrap_or(b"");
    if digits.is_empty() || digits.len() > 22 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| match d {
        b'0'..=b'7' => Some(n * 8 + u64::from(d - b'0')),
        _ => None,
    })
}

/// A size field: octal, or GNU's base-256 (high bit of the first byte set) for large sizes.
fn parse_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 == 0 {
        return parse_octal(field);
    }
    if field[0] != 0x80 || field[1..4].iter().any(|&b| b != 0) {
        return None; // negative, or beyond 64 bits
    }
    Some(
        field[4..]
            .iter()
            .fold(0u64, |n, &b| (n << 8) | u64::from(b)),
    )
}

/// Reads one 512-byte block; `false` at a clean end of the stream (the archive had no end
/// marker), an error when the stream ends inside a block.
fn read_block(input: &mut impl Read, block: &mut [u8; BLOCK]) -> Result<bool> {
    let mut filled = 0;
    while filled < BLOCK {
        match input.read(&mut block[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(archive("the archive ends inside a tar header")),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(gzip_error(e)),
        }
    }
    Ok(true)
}

fn copy_exactly(input: &mut impl Read, out: &mut impl Write, len: u64) -> Result<()> {
    let copied = io::copy(&mut input.take(len), out).map_err(gzip_error)?;
    if copied != len {
        return Err(archive("the archive ends inside a member"));
    }
    Ok(())
}

/// Errors of the decompressing reader: a limit, the input's own I/O error, or a stream that
/// is not (or no longer) gzip.
fn gzip_error(e: io::Error) -> Error {
    match e
        .into_inner()
        .map(|inner| inner.downcast::<LimitExceeded>())
    {
        Some(Ok(limit)) => Error::TooLarge {
            what: limit.what,
            limit: limit.limit,
        },
        Some(Err(inner)) => archive(format!("not a complete gzip stream ({inner})")),
        None => archive("not a complete gzip stream"),
    }
}

#[derive(Debug)]
struct LimitExceeded {
    what: &'static str,
    limit: u64,
}

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} exceeds {} bytes", self.what, self.limit)
    }
}

impl std::error::Error for LimitExceeded {}

/// A reader that fails, rather than ending, once more than `limit` bytes went through.
struct Bounded<R> {
    inner: R,
    left: u64,
    limit: u64,
    what: &'static str,
}

impl<R> Bounded<R> {
    fn new(inner: R, limit: u64, what: &'static str) -> Self {
        Bounded {
            inner,
            left: limit,
            limit,
            what,
        }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Ask for one byte more than allowed, so that going over is seen, not silently cut.
        let want = buf
            .len()
            .min(usize::try_from(self.left + 1).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(io::Error::other(LimitExceeded {
                what: self.what,
                limit: self.limit,
            }));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
