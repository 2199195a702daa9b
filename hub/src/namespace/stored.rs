//! A repository as the namespace holds it, whole, for a caller that brings the namespace to
//! a state it was given (the 0-hub import) and changes only what differs; and the times
//! such a caller sets, which 0-hub took from its directories rather than from the changes.

use std::collections::HashMap;

use rusqlite::{Connection, Transaction, params};

use super::sql::{self, repository_id};
use super::views::{Kind, Target};
use crate::error::Result;

/// What a repository holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// The repository's time (0-hub: its directory's mtime).
    pub updated: i64,
    /// Flists, symlinks and taglinks by name (`.flist` names, taglinks bare).
    pub entries: HashMap<String, StoredEntry>,
    /// Tags by name.
    pub tags: HashMap<String, StoredTag>,
}

/// One entry: a regular flist's file, or a link's target, and its time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub kind: Kind,
    /// A regular flist's file.
    pub sha256: Option<String>,
    pub target: Option<Target>,
    /// Published (regular) or linked (links).
    pub mtime: i64,
}

/// A tag: its time (0-hub: the tag directory's mtime) and its members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredTag {
    pub mtime: i64,
    /// By member name: the flist it names (repository, name) and its linktime.
    pub members: HashMap<String, (String, String, i64)>,
}

pub(super) fn read(c: &Connection, repository: &str) -> Result<Option<Stored>> {
    let Some(repo) = repository_id(c, repository)? else {
        return Ok(None);
    };
    let updated = c
        .prepare_cached("SELECT updated FROM repository WHERE id = ?1")?
        .query_row([repo], |r| r.get(0))?;
    let entries = sql::entries(c, repo)?
        .into_iter()
        .map(|(name, row)| {
            let entry = StoredEntry {
                kind: row.kind,
                sha256: row.digest.map(|d| d.sha256),
                target: row.target,
                mtime: row.mtime,
            };
            (name, entry)
        })
        .collect();
    let mut tags = HashMap::new();
    for (name, mtime) in sql::tags(c, repo)? {
        let id = sql::tag_id(c, repo, &name)?.ok_or_else(sql::corrupt_row)?;
        let members = sql::tag_members(c, id)?
            .into_iter()
            .map(|(member, repository, target, linktime)| (member, (repository, target, linktime)))
            .collect();
        tags.insert(name, StoredTag { mtime, members });
    }
    Ok(Some(Stored {
        updated,
        entries,
        tags,
    }))
}

/// Sets a repository's time and its tags' times; whether anything changed.
pub(super) fn set_times(
    tx: &Transaction<'_>,
    repository: &str,
    updated: i64,
    tags: &[(String, i64)],
) -> Result<bool> {
    let Some(repo) = repository_id(tx, repository)? else {
        return Ok(false);
    };
    let mut changed = tx.execute(
        "UPDATE repository SET updated = ?2 WHERE id = ?1 AND updated <> ?2",
        params![repo, updated],
    )?;
    for (tag, mtime) in tags {
        changed += tx.execute(
            "UPDATE tag SET mtime = ?3 WHERE repository = ?1 AND name = ?2 AND mtime <> ?3",
            params![repo, tag, mtime],
        )?;
    }
    Ok(changed > 0)
}
