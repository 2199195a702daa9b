//! Changes of the namespace as values: what a route asks for ([`Change`], with checked
//! names), applied by one function ([`apply`]) inside a transaction, at a time given to it,
//! and recorded in the change log as the self-contained event it produced.

use hubapi::changes::{ChangeEvent, FileRef};
use rusqlite::Transaction;

use super::share::ContentSize;
use super::source::Source;
use super::{log, rules};
use crate::blobs::Digest256;
use crate::error::Result;
use crate::facts::Facts;
use crate::names::{FlistName, RepoName, TagName, TaglinkName};

/// A change of the namespace. Every route that changes the namespace makes one of these and
/// hands it to [`super::Namespace::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `name` becomes the flist `file` (already placed among the published files), whatever
    /// it was; the repository is created if needed.
    Publish {
        repository: RepoName,
        name: FlistName,
        file: Digest256,
        /// What the publisher read of the file, kept with it.
        facts: Facts,
        /// How it came in, kept with the name.
        source: Source,
        /// Its distinct contents with their sizes (native files; empty for hosted legacy
        /// files), kept with the file for [`super::share`].
        contents: Vec<ContentSize>,
    },
    /// 0-hub's `link`: `link` becomes a symlink to `source` of the same repository.
    Link {
        repository: RepoName,
        source: FlistName,
        link: FlistName,
    },
    /// 0-hub's `crosslink`: `link` becomes a symlink to `source` of `source_repository`.
    Crosslink {
        repository: RepoName,
        link: FlistName,
        source_repository: RepoName,
        source: FlistName,
    },
    /// 0-hub's `crosstag`: the taglink `link` points at `tag` of `tag_repository`.
    Crosstag {
        repository: RepoName,
        link: TaglinkName,
        tag_repository: RepoName,
        tag: TagName,
    },
    /// Removes the taglink `link` if it points at `tag` of `tag_repository` (the DELETE
    /// 0-hub's README promised).
    Uncrosstag {
        repository: RepoName,
        link: TaglinkName,
        tag_repository: RepoName,
        tag: TagName,
    },
    /// 0-hub's `tag`: `link` in tag `tag` points at `source` of `source_repository`.
    Tag {
        repository: RepoName,
        tag: TagName,
        link: FlistName,
        source_repository: RepoName,
        source: FlistName,
    },
    /// Removes `link` from tag `tag`, and the tag once empty.
    Untag {
        repository: RepoName,
        tag: TagName,
        link: FlistName,
    },
    /// Renames `source` to `destination`; an existing destination is replaced only with
    /// `force` (0-hub replaced it silently).
    Rename {
        repository: RepoName,
        source: FlistName,
        destination: FlistName,
        force: bool,
    },
    /// 0-hub's `promote`: `local` becomes a copy of what `source` of `source_repository`
    /// resolves to, published now.
    Promote {
        repository: RepoName,
        source_repository: RepoName,
        source: FlistName,
        local: FlistName,
    },
    /// Deletes `name` or, if there is none, the taglink `or_taglink` (0-hub's fallback: the
    /// same name without `.flist`). What it pointed at is never touched.
    Delete {
        repository: RepoName,
        name: FlistName,
        or_taglink: TaglinkName,
    },
    /// Deletes the flist `name` for a retention policy, as [`Change::Delete`] does, when it
    /// still is the file `sha256` and no symlink or tag member names it; else refused
    /// (409), so that a link made or a publish since the policy was read keeps it. Recorded
    /// as a delete whose `reason` is `reason`.
    Expire {
        repository: RepoName,
        name: FlistName,
        sha256: String,
        reason: String,
    },
}

impl Change {
    /// The repository the change is made in.
    pub fn repository(&self) -> &RepoName {
        match self {
            Change::Publish { repository, .. }
            | Change::Link { repository, .. }
            | Change::Crosslink { repository, .. }
            | Change::Crosstag { repository, .. }
            | Change::Uncrosstag { repository, .. }
            | Change::Tag { repository, .. }
            | Change::Untag { repository, .. }
            | Change::Rename { repository, .. }
            | Change::Promote { repository, .. }
            | Change::Delete { repository, .. }
            | Change::Expire { repository, .. } => repository,
        }
    }
}

/// What applying a change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The change as recorded, and its place in the change log; `None` when it changed
    /// nothing (a name renamed to itself), which is not recorded.
    pub recorded: Option<(u64, ChangeEvent)>,
    /// Published files no entry names any more, to remove once the transaction commits.
    pub freed: Vec<String>,
}

/// Applies `change` on `tx` as `actor` at `time` (seconds since the epoch) with 0-hub's
/// rules, and appends it to the change log. Nothing is committed: the caller commits, or
/// drops the transaction on an error and nothing happened.
pub fn apply(tx: &Transaction<'_>, change: &Change, actor: &str, time: i64) -> Result<Applied> {
    let mut freed = Vec::new();
    let recorded = match rules::apply(tx, change, actor, time, &mut freed)? {
        Some(event) => Some((log::append(tx, time, actor, &event)?, event)),
        None => None,
    };
    Ok(Applied { recorded, freed })
}

pub(super) fn file_ref(digest: &Digest256) -> FileRef {
    FileRef {
        sha256: digest.sha256.clone(),
        md5: digest.md5.clone(),
        size: digest.size,
    }
}
