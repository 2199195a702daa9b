//! The three flist formats the hub holds, and reading any of them the same way: the native
//! format (one SQLite file, content-defined chunks), and the two Zero-OS nodes read, hosted
//! byte for byte as their producers made them: 0-flist (`.flist`: gzip'd tar of a SQLite
//! file of Cap'n Proto objects; zflist, g8ufs) and rfs `fl` (`.fl`: SQLite; rfs 2.x).

use std::collections::BTreeMap;
use std::path::Path;

use flist::{Flist, NodeKind, Walk};
use legacy::fl::FlFile;
use legacy::zero::ZeroFlist;
use serde::{Deserialize, Serialize};

use crate::config::LimitsConfig;
use crate::error::{Error, Result};
use crate::inspect::Stats;

/// The bounds of the legacy readers, from the hub's limits.
pub fn legacy_limits(limits: &LimitsConfig) -> legacy::Limits {
    legacy::Limits {
        archive_bytes: limits.flist_size,
        entries: limits.entries,
        ..legacy::Limits::default()
    }
}

/// The format of an flist file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Native,
    #[serde(rename = "0-flist")]
    ZeroFlist,
    Fl,
}

impl Format {
    /// Tells a file's format from its first bytes ([`legacy::detect`]: a gzip stream is a
    /// 0-flist, an SQLite file with the native format's application id is native, any other
    /// SQLite file an `fl`), each then checked by its own reader.
    pub fn detect(path: &Path) -> Result<Format> {
        let detected = legacy::detect_file(path).map_err(|e| match e {
            legacy::Error::Io { source, .. } => Error::io(path.display(), source),
            other => Error::BadRequest(other.to_string()),
        })?;
        match detected {
            Some(legacy::Format::Native) => Ok(Format::Native),
            Some(legacy::Format::ZeroFlist) => Ok(Format::ZeroFlist),
            Some(legacy::Format::Fl) => Ok(Format::Fl),
            None => Err(Error::BadRequest(
                "not an flist: neither flisthub's format, nor a 0-flist (gzip), nor an rfs fl (SQLite)"
                    .into(),
            )),
        }
    }

    /// The name in the database and in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::ZeroFlist => "0-flist",
            Format::Fl => "fl",
        }
    }

    pub fn from_name(text: &str) -> Option<Format> {
        match text {
            "native" => Some(Format::Native),
            "0-flist" => Some(Format::ZeroFlist),
            "fl" => Some(Format::Fl),
            _ => None,
        }
    }

    /// The suffix of its URLs: `.fl` for fl files, `.flist` for the others (0-hub's).
    pub fn suffix(self) -> &'static str {
        match self {
            Format::Fl => ".fl",
            Format::Native | Format::ZeroFlist => ".flist",
        }
    }

    /// Whether two flists of these formats can be merged into one.
    pub fn merges_with(self, other: Format) -> bool {
        self == other && self != Format::Fl
    }
}

/// What a walk reports of an entry, whatever the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Directory,
    Regular,
    Symlink,
    Special,
}

/// An open flist of any format.
pub enum AnyFlist {
    Native(Flist),
    ZeroFlist(ZeroFlist),
    Fl(FlFile),
}

impl AnyFlist {
    /// Opens the flist at `path`, of `format`, within `limits` (a file that came from
    /// outside is checked by its reader as it is opened).
    pub fn open(path: &Path, format: Format, limits: &LimitsConfig) -> Result<AnyFlist> {
        let legacy_limits = legacy_limits(limits);
        Ok(match format {
            Format::Native => AnyFlist::Native(Flist::open(path)?),
            Format::ZeroFlist => AnyFlist::ZeroFlist(ZeroFlist::open_with(path, &legacy_limits)?),
            Format::Fl => AnyFlist::Fl(FlFile::open_with(path, &legacy_limits)?),
        })
    }

    pub fn format(&self) -> Format {
        match self {
            AnyFlist::Native(_) => Format::Native,
            AnyFlist::ZeroFlist(_) => Format::ZeroFlist,
            AnyFlist::Fl(_) => Format::Fl,
        }
    }

    /// The metadata: the native and 0-flist `metadata` tables, an fl file's `tag` table.
    pub fn metadata(&self) -> Result<BTreeMap<String, String>> {
        Ok(match self {
            AnyFlist::Native(flist) => flist
                .metadata()?
                .iter()
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect(),
            AnyFlist::ZeroFlist(flist) => flist.metadata()?,
            AnyFlist::Fl(fl) => fl.tags()?,
        })
    }

    /// Visits every entry below the root, directories before their content: its path
    /// (relative, `/`-separated), kind and size (content bytes of a file, 0 else).
    pub fn walk(&self, mut visit: impl FnMut(&[u8], EntryKind, u64) -> Result<()>) -> Result<()> {
        match self {
            AnyFlist::Native(flist) => {
                let mut failure = None;
                flist.walk(|path, entry| {
                    if path.is_empty() || failure.is_some() {
                        return Ok(Walk::Continue);
                    }
                    let (kind, size) = match entry.node.kind {
                        NodeKind::Directory => (EntryKind::Directory, 0),
                        NodeKind::Regular { size } => (EntryKind::Regular, size),
                        NodeKind::Symlink { .. } => (EntryKind::Symlink, 0),
                        _ => (EntryKind::Special, 0),
                    };
                    if let Err(e) = visit(path, kind, size) {
                        failure = Some(e);
                    }
                    Ok(Walk::Continue)
                })?;
                failure.map_or(Ok(()), Err)
            }
            AnyFlist::ZeroFlist(flist) => walk_legacy(|v| flist.walk(v), &mut visit),
            AnyFlist::Fl(fl) => walk_legacy(|v| fl.walk(v), &mut visit),
        }
    }

    /// 0-hub's counts, and the entries of every kind (the root included).
    pub fn stats(&self) -> Result<(Stats, u64)> {
        match self {
            AnyFlist::Native(flist) => {
                let t = flist.totals()?;
                let entries = t.files + t.hardlinks + t.directories + t.symlinks + t.specials;
                Ok((Stats::from(t), entries))
            }
            AnyFlist::ZeroFlist(flist) => Ok(legacy_stats(flist.totals()?)),
            AnyFlist::Fl(fl) => Ok(legacy_stats(fl.totals()?)),
        }
    }
}

fn legacy_stats(t: legacy::Totals) -> (Stats, u64) {
    let stats = Stats {
        regular: t.files,
        symlink: t.symlinks,
        // The root is not listed in the contents dump.
        directory: t.directories.saturating_sub(1),
        special: t.specials,
        failure: 0,
        fullsize: t.bytes,
    };
    (stats, t.directories + t.files + t.symlinks + t.specials)
}

/// A legacy reader's walk, seen as [`AnyFlist::walk`] reports it.
fn walk_legacy<B>(
    walk: impl FnOnce(
        &mut dyn FnMut(&[u8], &legacy::Entry<B>) -> legacy::Result<()>,
    ) -> legacy::Result<()>,
    visit: &mut impl FnMut(&[u8], EntryKind, u64) -> Result<()>,
) -> Result<()> {
    let mut failure = None;
    let walked = walk(&mut |path, entry| {
        if path.is_empty() || failure.is_some() {
            return Ok(());
        }
        let (kind, size) = match &entry.kind {
            legacy::Kind::Directory => (EntryKind::Directory, 0),
            legacy::Kind::File { size, .. } => (EntryKind::Regular, *size),
            legacy::Kind::Symlink { .. } => (EntryKind::Symlink, 0),
            legacy::Kind::Special(_) => (EntryKind::Special, 0),
        };
        if let Err(e) = visit(path, kind, size) {
            failure = Some(e);
        }
        Ok(())
    });
    walked?;
    failure.map_or(Ok(()), Err)
}
