//! Tar streams (plain, gzip or zstd, detected from the first bytes) into flists.
//!
//! Every entry is checked before anything is recorded: names are made relative (leading `/`
//! and `./` dropped), and a name with a `..` component, a NUL byte, or no name at all is
//! refused; hardlinks must name an earlier entry; a path through a symlink or a file of the
//! archive is refused by the flist writer. The archive must end with tar's end-of-archive
//! marker, so a stream cut at an entry boundary is reported as truncated rather than
//! published as a smaller tree.

use std::cell::Cell;
use std::io::{self, BufReader, Read};
use std::rc::Rc;

use flist::{Node, NodeKind, Timestamp, Xattr};
use tar::EntryType;

use crate::error::{Error, Result, escape_text};
use crate::guard::{Bounds, Consumed, Guard};
use crate::pack::{Limits, Packer};
use crate::progress::CountingReader;

/// Bytes needed to tell the compression (xz's magic is the longest).
const MAGIC_LEN: usize = 6;

/// Bytes after the end-of-archive marker that are read (to let gzip and zstd check their
/// trailers); anything beyond is ignored.
const TRAILER_LIMIT: u64 = 16 << 20;

/// Reads a tar stream into `packer`.
pub(crate) fn read_tar(input: impl Read, packer: &mut Packer) -> Result<()> {
    let limits = packer.limits();
    for_each_entry(input, packer.progress(), &limits, |entry, content| {
        packer.count_entry(&entry.path)?;
        match entry.kind {
            EntryKind::Hardlink(target) => packer.add_hardlink(&entry.path, &target),
            EntryKind::Node(node) if matches!(node.kind, NodeKind::Regular { .. }) => packer
                .add_file(&entry.path, &node, &entry.xattrs, content)
                .map(drop),
            EntryKind::Node(node) => packer.add(&entry.path, &node, &entry.xattrs).map(drop),
        }
    })
}

/// One entry of a tar stream, checked: its name made relative and free of escapes, its
/// fields in range.
pub(crate) struct TarEntry {
    pub path: Vec<u8>,
    pub kind: EntryKind,
    pub xattrs: Vec<Xattr>,
}

pub(crate) enum EntryKind {
    Node(Node),
    /// Another name for the (normalised) path of an earlier entry.
    Hardlink(Vec<u8>),
}

/// Reads a tar stream (plain, gzip or zstd, told from its first bytes), calling `each` with
/// every entry and a reader of its content, which `each` may leave unread. The stream must
/// end with tar's end-of-archive marker; what follows it is read (to let the decompressor
/// check its trailer) up to a bound. Header records and decompression are bounded by
/// `limits` (see the `guard` module).
pub(crate) fn for_each_entry<'a>(
    input: impl Read + 'a,
    progress: std::sync::Arc<crate::Progress>,
    limits: &Limits,
    mut each: impl FnMut(TarEntry, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    let mut counted = CountingReader::new(input, progress);
    // The format is told by the first bytes; a pipe may deliver them one read at a time.
    let mut head = Vec::with_capacity(MAGIC_LEN);
    while head.len() < MAGIC_LEN {
        let mut byte = [0u8; MAGIC_LEN];
        let n = counted
            .read(&mut byte[..MAGIC_LEN - head.len()])
            .map_err(|e| Error::Input(format!("reading the input: {e}")))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&byte[..n]);
    }
    let compression = Compression::detect(&head)?;
    let buffered = BufReader::with_capacity(256 << 10, io::Cursor::new(head).chain(counted));
    let consumed = Rc::new(Cell::new(0u64));
    let compressed = Consumed::new(buffered, Rc::clone(&consumed));
    let decoder: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(compressed),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(compressed)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(compressed)
                .map_err(|e| Error::Input(format!("zstd: {e}")))?,
        ),
    };
    let bounds = Bounds {
        header_record: limits.max_header_record,
        expansion_ratio: limits.max_expansion_ratio,
        expansion_floor: limits.expansion_floor,
    };
    let counted = (!matches!(compression, Compression::None)).then_some(consumed);
    let mut archive = tar::Archive::new(Guard::new(decoder, bounds, counted));
    let mut count = 0u64;
    let read = (|| -> Result<()> {
        for entry in archive
            .entries()
            .map_err(|e| Error::Input(format!("not a tar archive: {e}")))?
        {
            let mut entry = entry.map_err(|e| {
                Error::Input(if count == 0 {
                    format!("not a tar archive: {}", escape_text(&e.to_string()))
                } else {
                    format!(
                        "corrupt tar archive after {count} entries: {}",
                        escape_text(&e.to_string())
                    )
                })
            })?;
            count += 1;
            if let Some(decoded) = decode_entry(&mut entry)? {
                each(decoded, &mut entry)?;
            }
        }
        Ok(())
    })();
    let mut guard = archive.into_inner();
    // A refusal of the guard is the reason, whatever the crate or `each` made of it.
    if let Some(refusal) = guard.take_refusal() {
        return Err(refusal);
    }
    read?;
    if guard.ended() {
        return Err(Error::Input(format!(
            "truncated tar archive: the input ended after {count} entries without tar's end-of-archive marker"
        )));
    }
    // Let the decompressor verify its trailer (gzip CRC, zstd frame end).
    let copied = io::copy(&mut (&mut guard).take(TRAILER_LIMIT), &mut io::sink());
    if let Some(refusal) = guard.take_refusal() {
        return Err(refusal);
    }
    copied.map_err(|e| Error::Input(format!("after the end of the tar archive: {e}")))?;
    Ok(())
}

/// Checks and decodes an entry; `None` for records that describe no file (archive-wide
/// PAX headers, GNU volume labels).
fn decode_entry<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Option<TarEntry>> {
    let raw_path = entry.path_bytes().into_owned();
    let path = normalize(&raw_path).map_err(|bad| Error::name(&raw_path, bad))?;
    let header = entry.header();
    let kind = header.entry_type();
    let bad = |what: &str, e: io::Error| Error::entry(&raw_path, format!("{what}: {e}"));
    let uid = header.uid().map_err(|e| bad("uid", e))?;
    let gid = header.gid().map_err(|e| bad("gid", e))?;
    let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) else {
        return Err(Error::entry(&raw_path, "uid or gid out of range"));
    };
    let mode = header.mode().map_err(|e| bad("mode", e))? & 0o7777;
    let mut mtime = Timestamp {
        secs: i64::try_from(header.mtime().map_err(|e| bad("mtime", e))?).unwrap_or(i64::MAX),
        nanos: 0,
    };
    let device = || -> Result<(u32, u32)> {
        let major = header.device_major().map_err(|e| bad("device major", e))?;
        let minor = header.device_minor().map_err(|e| bad("device minor", e))?;
        Ok((major.unwrap_or(0), minor.unwrap_or(0)))
    };
    let link_target = || {
        entry
            .link_name_bytes()
            .map(|l| l.into_owned())
            .filter(|l| !l.is_empty())
            .ok_or_else(|| Error::bad_link(&raw_path, b"", "a link without a target"))
    };
    let node_kind = match kind {
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            NodeKind::Regular { size: entry.size() }
        }
        EntryType::Directory => NodeKind::Directory,
        EntryType::Symlink => NodeKind::Symlink {
            target: link_target()?,
        },
        EntryType::Char => {
            let (major, minor) = device()?;
            NodeKind::CharDevice { major, minor }
        }
        EntryType::Block => {
            let (major, minor) = device()?;
            NodeKind::BlockDevice { major, minor }
        }
        EntryType::Fifo => NodeKind::Fifo,
        EntryType::Link => {
            let raw_target = link_target()?;
            let target = normalize(&raw_target)
                .map_err(|bad| Error::bad_link(&raw_path, &raw_target, bad.reason()))?;
            // A link to itself stays: the flist writer accepts it only if the name came
            // earlier (tar stores a file named twice that way) and refuses it otherwise.
            return Ok(Some(TarEntry {
                path,
                kind: EntryKind::Hardlink(target),
                xattrs: Vec::new(),
            }));
        }
        // Archive-wide PAX records and GNU volume labels describe no file.
        EntryType::XGlobalHeader => return Ok(None),
        other if other.as_byte() == b'V' => return Ok(None),
        other => {
            return Err(Error::entry(
                &raw_path,
                format!("unsupported tar entry type {:?}", other.as_byte() as char),
            ));
        }
    };
    if path.is_empty() && node_kind != NodeKind::Directory {
        return Err(Error::entry(&raw_path, "an empty name"));
    }

    let mut xattrs = Vec::new();
    if let Some(pax) = entry
        .pax_extensions()
        .map_err(|e| Error::entry(&raw_path, format!("PAX records: {e}")))?
    {
        for record in pax {
            let record = record.map_err(|e| Error::entry(&raw_path, format!("PAX record: {e}")))?;
            let key = record.key_bytes();
            if key == b"mtime" {
                mtime = parse_pax_time(record.value_bytes())
                    .ok_or_else(|| Error::entry(&raw_path, "malformed PAX mtime"))?;
            } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                xattrs.push(Xattr {
                    name: name.to_vec(),
                    value: record.value_bytes().to_vec(),
                });
            }
        }
    }
    let node = Node {
        kind: node_kind,
        mode,
        uid,
        gid,
        mtime,
    };
    Ok(Some(TarEntry {
        path,
        kind: EntryKind::Node(node),
        xattrs,
    }))
}

/// Why a name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadName {
    Empty,
    Nul,
    /// A `..` component.
    Escape,
}

impl BadName {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            BadName::Empty => "an empty name",
            BadName::Nul => "a NUL byte in the name",
            BadName::Escape => "a '..' component, which would escape the tree",
        }
    }
}

/// Makes an archive name relative: drops leading `/`, empty and `.` components; refuses
/// `..`, NUL and names with nothing in them. Returns "" for the root (`./` or `/`).
pub(crate) fn normalize(raw: &[u8]) -> std::result::Result<Vec<u8>, BadName> {
    if raw.is_empty() {
        return Err(BadName::Empty);
    }
    if raw.contains(&0) {
        return Err(BadName::Nul);
    }
    let mut path = Vec::with_capacity(raw.len());
    for name in raw.split(|&b| b == b'/') {
        match name {
            b"" | b"." => {}
            b".." => return Err(BadName::Escape),
            name => {
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(name);
            }
        }
    }
    Ok(path)
}

/// Parses a PAX time: decimal seconds, optionally negative, with an optional fraction.
fn parse_pax_time(value: &[u8]) -> Option<Timestamp> {
    let text = std::str::from_utf8(value).ok()?;
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let secs: i64 = whole.parse().ok()?;
    let digits: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(9)
        .collect();
    let nanos: u32 = digits.parse().ok()?;
    Some(match (negative, nanos) {
        (false, _) => Timestamp { secs, nanos },
        (true, 0) => Timestamp {
            secs: -secs,
            nanos: 0,
        },
        (true, _) => Timestamp {
            secs: -secs - 1,
            nanos: 1_000_000_000 - nanos,
        },
    })
}

enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    fn detect(head: &[u8]) -> Result<Compression> {
        let unsupported = |name: &str| {
            Err(Error::Input(format!(
                "{name} input is not supported (use a tar archive, plain or compressed with gzip or zstd)"
            )))
        };
        match head {
            [] => Err(Error::Input("the input is empty, not a tar archive".into())),
            [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Ok(Compression::Zstd),
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => unsupported("xz-compressed"),
            [b'B', b'Z', b'h', ..] => unsupported("bzip2-compressed"),
            [0x04, 0x22, 0x4d, 0x18, ..] => unsupported("lz4-compressed"),
            [b'P', b'K', 3, 4, ..] => unsupported("zip"),
            _ => Ok(Compression::None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_relative_and_escapes_refused() {
        assert_eq!(normalize(b"/etc/passwd").unwrap(), b"etc/passwd");
        assert_eq!(normalize(b"./a/./b/").unwrap(), b"a/b");
        assert_eq!(normalize(b"./").unwrap(), b"");
        assert_eq!(normalize(b"//x//y").unwrap(), b"x/y");
        for bad in [&b"../x"[..], b"a/../../b", b"a/..", b"", b"a\0b"] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pax_times() {
        let t = |s: &str| parse_pax_time(s.as_bytes());
        assert_eq!(
            t("1700000000.5"),
            Some(Timestamp {
                secs: 1_700_000_000,
                nanos: 500_000_000
            })
        );
        assert_eq!(t("12"), Some(Timestamp { secs: 12, nanos: 0 }));
        assert_eq!(t("1.0000000019"), Some(Timestamp { secs: 1, nanos: 1 }));
        assert_eq!(
            t("-1.25"),
            Some(Timestamp {
                secs: -2,
                nanos: 750_000_000
            })
        );
        assert_eq!(t("x"), None);
        assert_eq!(t("1.2.3"), None);
    }
}
