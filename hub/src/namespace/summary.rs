//! Reads for people rather than for 0-hub's clients: per-repository figures, hub totals,
//! search, and what points at an flist. Synchronous functions of a connection, each one
//! statement or a few, so that the pages built on them stay cheap on a hub of thousands of
//! repositories.

use rusqlite::{Connection, params};

use super::views::Kind;
use crate::error::Result;

/// A repository with its figures, as the home page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryFigures {
    pub name: String,
    /// Flists and symlinks (what can be downloaded by name).
    pub flists: u64,
    /// Bytes of the flist files it holds itself (links count nothing).
    pub size: u64,
    pub updated: i64,
}

/// Figures of the whole hub.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub repositories: u64,
    /// Names that can be downloaded (flists and symlinks).
    pub flists: u64,
    /// Distinct flist files, and their bytes.
    pub files: u64,
    pub file_bytes: u64,
    /// What the distinct flists expand to (sum of their files' sizes).
    pub expanded: u64,
    /// Chunk bytes stored through the chunk API.
    pub chunk_bytes: u64,
}

/// One search result: a repository, or a name in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub repository: String,
    /// `None` when the repository itself matched; else the stored name (`x.flist`, a
    /// taglink's bare name, a tag's name).
    pub name: Option<String>,
    pub kind: Option<Kind>,
    pub updated: i64,
}

/// A name that points at an flist: a symlink, or a member of a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    pub repository: String,
    /// The tag, for a tag member.
    pub tag: Option<String>,
    pub name: String,
}

pub(super) fn repository_figures(c: &Connection) -> Result<Vec<RepositoryFigures>> {
    let mut stmt = c.prepare_cached(
        "SELECT r.name, r.updated,
            (SELECT count(*) FROM entry e WHERE e.repository = r.id AND e.kind <> 'taglink'),
            (SELECT coalesce(sum(b.size), 0) FROM entry e JOIN blob b ON b.sha256 = e.blob
             WHERE e.repository = r.id)
         FROM repository r ORDER BY r.name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(RepositoryFigures {
            name: r.get(0)?,
            updated: r.get(1)?,
            flists: r.get::<_, i64>(2)?.max(0) as u64,
            size: r.get::<_, i64>(3)?.max(0) as u64,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn totals(c: &Connection) -> Result<Totals> {
    let mut stmt = c.prepare_cached(
        "SELECT (SELECT count(*) FROM repository),
            (SELECT count(*) FROM entry WHERE kind <> 'taglink'),
            (SELECT count(*) FROM blob),
            (SELECT coalesce(sum(size), 0) FROM blob),
            (SELECT coalesce(sum(json_extract(facts, '$.stats.fullsize')), 0) FROM blob_facts),
            (SELECT coalesce(sum(bytes), 0) FROM chunk_usage)",
    )?;
    let figure = |r: &rusqlite::Row<'_>, i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
    Ok(stmt.query_row([], |r| {
        Ok(Totals {
            repositories: figure(r, 0)?,
            flists: figure(r, 1)?,
            files: figure(r, 2)?,
            file_bytes: figure(r, 3)?,
            expanded: figure(r, 4)?,
            chunk_bytes: figure(r, 5)?,
        })
    })?)
}

/// Repositories, names and tags containing `text` (case-insensitive for ASCII, as SQLite's
/// LIKE), by repository then name; `limit` of them from `offset`.
pub(super) fn search(c: &Connection, text: &str, offset: u64, limit: u64) -> Result<Vec<Hit>> {
    let pattern = format!("%{}%", escape_like(text));
    let mut stmt = c.prepare_cached(
        "SELECT name, NULL, NULL, updated FROM repository WHERE name LIKE ?1 ESCAPE '\\'
         UNION ALL
         SELECT r.name, e.name, e.kind, e.mtime FROM entry e
         JOIN repository r ON r.id = e.repository WHERE e.name LIKE ?1 ESCAPE '\\'
         UNION ALL
         SELECT r.name, t.name, 'tag', t.mtime FROM tag t
         JOIN repository r ON r.id = t.repository WHERE t.name LIKE ?1 ESCAPE '\\'
         ORDER BY 1, 2 LIMIT ?2 OFFSET ?3",
    )?;
    let rows = stmt.query_map(
        params![
            pattern,
            limit.min(i64::MAX as u64) as i64,
            offset.min(i64::MAX as u64) as i64
        ],
        |r| {
            let kind: Option<String> = r.get(2)?;
            Ok(Hit {
                repository: r.get(0)?,
                name: r.get(1)?,
                kind: kind.as_deref().and_then(kind_of),
                updated: r.get(3)?,
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The symlinks and tag members naming the flist `name` of `repository`.
pub(super) fn referrers(c: &Connection, repository: &str, name: &str) -> Result<Vec<Referrer>> {
    let mut stmt = c.prepare_cached(
        "SELECT r.name, NULL, e.name FROM entry e JOIN repository r ON r.id = e.repository
         WHERE r.name = ?1 AND e.target_name = ?2 AND e.target_repository IS NULL
           AND e.kind = 'symlink'
         UNION ALL
         SELECT r.name, NULL, e.name FROM entry e JOIN repository r ON r.id = e.repository
         WHERE e.target_name = ?2 AND e.target_repository = ?1 AND e.kind = 'symlink'
         UNION ALL
         SELECT r.name, t.name, m.name FROM tag_member m JOIN tag t ON t.id = m.tag
         JOIN repository r ON r.id = t.repository
         WHERE m.target_repository = ?1 AND m.target_name = ?2
         ORDER BY 1, 2, 3 LIMIT 1000",
    )?;
    let rows = stmt.query_map(params![repository, name], |r| {
        Ok(Referrer {
            repository: r.get(0)?,
            tag: r.get(1)?,
            name: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Who made the entry `name` of `repository`.
pub(super) fn author(c: &Connection, repository: &str, name: &str) -> Result<Option<String>> {
    let mut stmt = c.prepare_cached(
        "SELECT e.author FROM entry e JOIN repository r ON r.id = e.repository
         WHERE r.name = ?1 AND e.name = ?2",
    )?;
    let mut rows = stmt.query_map(params![repository, name], |r| r.get(0))?;
    Ok(rows.next().transpose()?)
}

fn kind_of(kind: &str) -> Option<Kind> {
    match kind {
        "regular" => Some(Kind::Regular),
        "symlink" => Some(Kind::Symlink),
        "taglink" => Some(Kind::Taglink),
        "tag" => Some(Kind::Tag),
        _ => None,
    }
}

/// `text` with LIKE's wildcards taken literally.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
