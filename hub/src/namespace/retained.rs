//! What retention policies judge: a repository's flists, newest first, and whether
//! anything points at each. The deletions themselves are [`super::Change::Expire`]s,
//! which check the same again inside their transaction.

use rusqlite::{Connection, params};

use super::views::shown;
use crate::error::Result;
use crate::formats::Format;

/// An flist of a repository (a regular entry, of any format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// As stored: with `.flist`.
    pub name: String,
    /// As listed: `x.fl` for an rfs fl file.
    pub shown: String,
    pub sha256: String,
    /// When it was published (seconds since the epoch).
    pub mtime: i64,
    /// A symlink (of any repository) or a tag member names it: retention keeps it.
    pub linked: bool,
}

/// The flists of `repository`, newest first (ties by name, last first); `None` if there is
/// no such repository.
pub(super) fn held(c: &Connection, repository: &str) -> Result<Option<Vec<Held>>> {
    if super::sql::repository_id(c, repository)?.is_none() {
        return Ok(None);
    }
    // A link names its target directly: whatever points at the link (a chain of links, a
    // taglink's tag) reaches the flist through a link that is counted here.
    let mut stmt = c.prepare_cached(
        "SELECT e.name, e.blob, e.mtime,
                EXISTS (SELECT 1 FROM entry l
                        WHERE l.kind = 'symlink' AND l.target_name = e.name
                          AND (l.target_repository = r.name
                               OR (l.target_repository IS NULL AND l.repository = e.repository)))
                OR EXISTS (SELECT 1 FROM tag_member m
                           WHERE m.target_repository = r.name AND m.target_name = e.name),
                b.format
         FROM entry e JOIN repository r ON r.id = e.repository
         JOIN blob b ON b.sha256 = e.blob
         WHERE r.name = ?1 AND e.kind = 'regular'
         ORDER BY e.mtime DESC, e.name DESC",
    )?;
    let rows = stmt.query_map(params![repository], |r| {
        let name: String = r.get(0)?;
        let format = Format::from_name(&r.get::<_, String>(4)?);
        Ok(Held {
            shown: shown(&name, format),
            name,
            sha256: r.get(1)?,
            mtime: r.get(2)?,
            linked: r.get(3)?,
        })
    })?;
    Ok(Some(rows.collect::<rusqlite::Result<_>>()?))
}
