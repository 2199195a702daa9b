//! What reads of the namespace answer: plain values, in 0-hub's terms.

use crate::blobs::Digest256;
use crate::formats::Format;
use crate::names::FLIST_SUFFIX;

/// How a name (stored with `.flist`) is shown: with the suffix of the format of what it is
/// or resolves to, `x.fl` for an rfs fl file, as it is downloaded.
pub fn shown(name: &str, format: Option<Format>) -> String {
    match (format, name.strip_suffix(FLIST_SUFFIX)) {
        (Some(format), Some(stem)) => format!("{stem}{}", format.suffix()),
        _ => name.to_owned(),
    }
}

/// What a link points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An flist of the link's own repository (made by `link`).
    Local(String),
    /// An flist of a named repository (`crosslink`, tag members).
    Flist { repository: String, name: String },
    /// A tag (`crosstag`).
    Tag { repository: String, tag: String },
}

impl Target {
    /// The target with its flist's name shown with the suffix of `format`.
    pub(super) fn shown(self, format: Option<Format>) -> Target {
        match self {
            Target::Local(name) => Target::Local(shown(&name, format)),
            Target::Flist { repository, name } => Target::Flist {
                repository,
                name: shown(&name, format),
            },
            tag @ Target::Tag { .. } => tag,
        }
    }

    /// The form 0-hub's listings show: the link text with `../` dropped and `.tag-` written
    /// `tags/` (`alice/x.flist`, `x.flist`, `alice/tags/v1`).
    pub fn cleaned(&self) -> String {
        match self {
            Target::Local(name) => name.clone(),
            Target::Flist { repository, name } => format!("{repository}/{name}"),
            Target::Tag { repository, tag } => format!("{repository}/tags/{tag}"),
        }
    }

    /// The link text 0-hub's `light` shows (a relative symlink in its users directory).
    pub fn raw(&self) -> String {
        match self {
            Target::Local(name) => name.clone(),
            Target::Flist { repository, name } => format!("../{repository}/{name}"),
            Target::Tag { repository, tag } => format!("../{repository}/.tag-{tag}"),
        }
    }

    /// The flist this target names, seen from `repository`; `None` for a tag.
    pub(super) fn flist_in(&self, repository: &str) -> Option<(String, String)> {
        match self {
            Target::Local(name) => Some((repository.to_owned(), name.clone())),
            Target::Flist { repository, name } => Some((repository.clone(), name.clone())),
            Target::Tag { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Regular,
    Symlink,
    Taglink,
    Tag,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Regular => "regular",
            Kind::Symlink => "symlink",
            Kind::Taglink => "taglink",
            Kind::Tag => "tag",
        }
    }
}

/// One row of a repository or tag listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// As 0-hub lists it: `x.flist`, a taglink's bare name, a tag's name without `.tag-`.
    pub name: String,
    pub kind: Kind,
    /// Size of the flist it is or resolves to; `None` for tags, taglinks and dangling links.
    pub size: Option<u64>,
    pub updated: i64,
    pub linktime: Option<i64>,
    pub target: Option<Target>,
}

/// The flist a name resolves to, after following links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub repository: String,
    pub name: String,
    pub digest: Digest256,
    /// When it was published.
    pub mtime: i64,
}

/// What `light` and `INFO` show of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub name: String,
    pub kind: Kind,
    /// What it resolves to; `None` for a dangling link.
    pub resolved: Option<Resolved>,
    pub linktime: Option<i64>,
    pub target: Option<Target>,
}

impl Info {
    /// The time 0-hub shows: the target's for a link, the link's own when it dangles.
    pub fn updated(&self) -> i64 {
        match (&self.resolved, self.linktime) {
            (Some(r), _) => r.mtime,
            (None, Some(linktime)) => linktime,
            (None, None) => 0,
        }
    }
}
