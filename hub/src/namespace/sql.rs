//! The namespace's rows: one function per statement, no rule of 0-hub's in here (those are
//! in `rules`). Every function takes the connection or transaction it runs on.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::source::Source;
use super::views::{Kind, Resolved, Target};
use crate::blobs::Digest256;
use crate::error::{Error, Result};
use crate::formats::Format;
use crate::names::{self, quote};

/// Links followed before a chain is considered a loop (as the kernel's ELOOP).
const MAX_HOPS: usize = 40;

/// A row of `entry`.
#[derive(Debug, Clone)]
pub(super) struct Row {
    pub kind: Kind,
    pub digest: Option<Digest256>,
    pub target: Option<Target>,
    pub mtime: i64,
}

pub(super) fn user_not_found() -> Error {
    Error::NotFound("user not found".into())
}

pub(super) fn source_not_found() -> Error {
    Error::NotFound("source not found".into())
}

pub(super) fn corrupt_row() -> Error {
    Error::Internal("the namespace database holds an inconsistent row".into())
}

pub(super) fn repository_id(c: &Connection, name: &str) -> Result<Option<i64>> {
    Ok(
        c.prepare_cached("SELECT id FROM repository WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?,
    )
}

/// The repository `name`, created if needed; refused when it would differ from an existing
/// one only by case or Unicode form.
pub(super) fn ensure_repository(tx: &Transaction<'_>, name: &str, t: i64) -> Result<i64> {
    if let Some(id) = repository_id(tx, name)? {
        return Ok(id);
    }
    let fold = names::fold(name);
    let twin: Option<String> = tx
        .prepare_cached("SELECT name FROM repository WHERE fold = ?1")?
        .query_row([&fold], |r| r.get(0))
        .optional()?;
    if let Some(twin) = twin {
        return Err(Error::Conflict(format!(
            "repository {} would differ from {} only by case or Unicode form",
            quote(name),
            quote(&twin)
        )));
    }
    tx.execute(
        "INSERT INTO repository (name, created, updated, fold) VALUES (?1, ?2, ?2, ?3)",
        params![name, t, fold],
    )?;
    Ok(tx.last_insert_rowid())
}

/// Folds the names of repositories made before folded names were kept; a name whose fold
/// an earlier one already has keeps none (both were made before the rule) and is listed.
pub(super) fn fill_missing_folds(c: &Connection) -> Result<Vec<String>> {
    let names: Vec<String> = c
        .prepare("SELECT name FROM repository WHERE fold IS NULL ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut twins = Vec::new();
    for name in names {
        let set = c.execute(
            "UPDATE OR IGNORE repository SET fold = ?2 WHERE name = ?1",
            params![name, names::fold(&name)],
        )?;
        if set == 0 {
            twins.push(name);
        }
    }
    Ok(twins)
}

/// Records that something in the repository changed at `t`.
pub(super) fn touch(tx: &Transaction<'_>, repo: i64, t: i64) -> Result<()> {
    tx.execute(
        "UPDATE repository SET updated = ?2 WHERE id = ?1",
        params![repo, t],
    )?;
    Ok(())
}

pub(super) fn tag_id(c: &Connection, repo: i64, tag: &str) -> Result<Option<i64>> {
    Ok(
        c.prepare_cached("SELECT id FROM tag WHERE repository = ?1 AND name = ?2")?
            .query_row(params![repo, tag], |r| r.get(0))
            .optional()?,
    )
}

pub(super) fn tag_mtime(c: &Connection, repository: &str, tag: &str) -> Result<Option<i64>> {
    Ok(c.prepare_cached(
        "SELECT t.mtime FROM tag t JOIN repository r ON r.id = t.repository
         WHERE r.name = ?1 AND t.name = ?2",
    )?
    .query_row(params![repository, tag], |r| r.get(0))
    .optional()?)
}

/// Creates the tag if needed and marks it changed at `t`.
pub(super) fn upsert_tag(tx: &Transaction<'_>, repo: i64, tag: &str, t: i64) -> Result<i64> {
    tx.execute(
        "INSERT INTO tag (repository, name, mtime) VALUES (?1, ?2, ?3)
         ON CONFLICT (repository, name) DO UPDATE SET mtime = excluded.mtime",
        params![repo, tag, t],
    )?;
    tag_id(tx, repo, tag)?.ok_or_else(corrupt_row)
}

pub(super) fn put_tag_member(
    tx: &Transaction<'_>,
    tag: i64,
    name: &str,
    target: (&str, &str),
    t: i64,
    actor: &str,
) -> Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO tag_member (tag, name, target_repository, target_name, linktime, author)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![tag, name, target.0, target.1, t, actor],
    )?;
    Ok(())
}

/// Removes a member; whether there was one.
pub(super) fn remove_tag_member(tx: &Transaction<'_>, tag: i64, name: &str) -> Result<bool> {
    Ok(tx.execute(
        "DELETE FROM tag_member WHERE tag = ?1 AND name = ?2",
        params![tag, name],
    )? > 0)
}

pub(super) fn tag_member_count(c: &Connection, tag: i64) -> Result<i64> {
    Ok(c.query_row(
        "SELECT count(*) FROM tag_member WHERE tag = ?1",
        [tag],
        |r| r.get(0),
    )?)
}

pub(super) fn delete_tag(tx: &Transaction<'_>, tag: i64) -> Result<()> {
    tx.execute("DELETE FROM tag WHERE id = ?1", [tag])?;
    Ok(())
}

pub(super) fn set_tag_mtime(tx: &Transaction<'_>, tag: i64, t: i64) -> Result<()> {
    tx.execute("UPDATE tag SET mtime = ?2 WHERE id = ?1", params![tag, t])?;
    Ok(())
}

/// A tag member's target.
pub(super) fn tag_member(c: &Connection, tag: i64, name: &str) -> Result<Option<(String, String)>> {
    Ok(c.prepare_cached(
        "SELECT target_repository, target_name FROM tag_member WHERE tag = ?1 AND name = ?2",
    )?
    .query_row(params![tag, name], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()?)
}

/// A tag's members: name, target repository, target name, linktime; by name.
pub(super) fn tag_members(c: &Connection, tag: i64) -> Result<Vec<(String, String, String, i64)>> {
    let mut stmt = c.prepare_cached(
        "SELECT name, target_repository, target_name, linktime FROM tag_member
         WHERE tag = ?1 ORDER BY name",
    )?;
    let rows = stmt.query_map([tag], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

const ROW_COLUMNS: &str =
    "e.kind, e.blob, b.md5, b.size, e.target_repository, e.target_name, e.mtime, b.format";

pub(super) fn entry(c: &Connection, repository: &str, name: &str) -> Result<Option<Row>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM entry e JOIN repository r ON r.id = e.repository
         LEFT JOIN blob b ON b.sha256 = e.blob WHERE r.name = ?1 AND e.name = ?2"
    ))?
    .query_row(params![repository, name], |r| read_row(r, 0))
    .optional()?)
}

pub(super) fn entry_by_id(c: &Connection, repo: i64, name: &str) -> Result<Option<Row>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM entry e LEFT JOIN blob b ON b.sha256 = e.blob
         WHERE e.repository = ?1 AND e.name = ?2"
    ))?
    .query_row(params![repo, name], |r| read_row(r, 0))
    .optional()?)
}

/// Every entry of a repository, unordered.
pub(super) fn entries(c: &Connection, repo: i64) -> Result<Vec<(String, Row)>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT e.name, {ROW_COLUMNS} FROM entry e LEFT JOIN blob b ON b.sha256 = e.blob
         WHERE e.repository = ?1"
    ))?;
    let rows = stmt.query_map([repo], |r| Ok((r.get(0)?, read_row(r, 1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A repository's tags with their times.
pub(super) fn tags(c: &Connection, repo: i64) -> Result<Vec<(String, i64)>> {
    let mut stmt = c.prepare_cached("SELECT name, mtime FROM tag WHERE repository = ?1")?;
    let rows = stmt.query_map([repo], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Reads the `ROW_COLUMNS` of a statement, which start at column `offset`.
fn read_row(r: &rusqlite::Row<'_>, offset: usize) -> rusqlite::Result<Row> {
    let kind: String = r.get(offset)?;
    let digest = match (
        r.get::<_, Option<String>>(offset + 1)?,
        r.get::<_, Option<String>>(offset + 2)?,
        r.get::<_, Option<i64>>(offset + 3)?,
        r.get::<_, Option<String>>(offset + 7)?,
    ) {
        (Some(sha256), Some(md5), Some(size), Some(format)) => Some(Digest256 {
            sha256,
            md5,
            size: size as u64,
            format: Format::from_name(&format).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    offset + 7,
                    rusqlite::types::Type::Text,
                    format!("unknown flist format {format:?}").into(),
                )
            })?,
        }),
        _ => None,
    };
    let kind = match kind.as_str() {
        "regular" => Kind::Regular,
        "symlink" => Kind::Symlink,
        "taglink" => Kind::Taglink,
        other => {
            return Err(rusqlite::Error::FromSqlConversionFailure(
                offset,
                rusqlite::types::Type::Text,
                format!("unknown entry kind {other:?}").into(),
            ));
        }
    };
    let target = match (
        r.get::<_, Option<String>>(offset + 4)?,
        r.get::<_, Option<String>>(offset + 5)?,
    ) {
        (_, None) => None,
        (Some(repository), Some(tag)) if kind == Kind::Taglink => {
            Some(Target::Tag { repository, tag })
        }
        (Some(repository), Some(name)) => Some(Target::Flist { repository, name }),
        (None, Some(name)) => Some(Target::Local(name)),
    };
    Ok(Row {
        kind,
        digest,
        target,
        mtime: r.get(offset + 6)?,
    })
}

/// Records a published file and its facts (once per content).
pub(super) fn insert_blob(
    tx: &Transaction<'_>,
    digest: &Digest256,
    facts: &str,
    t: i64,
) -> Result<()> {
    insert_file(tx, digest, t)?;
    put_facts(tx, &digest.sha256, facts)
}

/// Records a file of the hub's (a published flist, a rendition), once per content.
pub(crate) fn insert_file(tx: &Transaction<'_>, digest: &Digest256, t: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO blob (sha256, md5, size, created, format) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![digest.sha256, digest.md5, digest.size as i64, t, digest.format.as_str()])?;
    Ok(())
}

/// Records the facts of a published file.
pub(super) fn put_facts(c: &Connection, sha256: &str, facts: &str) -> Result<()> {
    c.prepare_cached("INSERT OR REPLACE INTO blob_facts (sha256, facts) VALUES (?1, ?2)")?
        .execute(params![sha256, facts])?;
    Ok(())
}

/// The facts of a published file, as JSON.
pub(super) fn facts(c: &Connection, sha256: &str) -> Result<Option<String>> {
    Ok(
        c.prepare_cached("SELECT facts FROM blob_facts WHERE sha256 = ?1")?
            .query_row([sha256], |r| r.get(0))
            .optional()?,
    )
}

/// Files published before their facts were kept, with their formats (renditions, which
/// no name shows, need none).
pub(super) fn blobs_without_facts(c: &Connection) -> Result<Vec<(String, Format)>> {
    let mut stmt = c.prepare(
        "SELECT b.sha256, b.format FROM blob b LEFT JOIN blob_facts f ON f.sha256 = b.sha256
         WHERE f.sha256 IS NULL AND EXISTS (SELECT 1 FROM entry e WHERE e.blob = b.sha256)",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    rows.map(|row| {
        let (sha, format) = row?;
        let format = Format::from_name(&format).ok_or_else(corrupt_row)?;
        Ok((sha, format))
    })
    .collect()
}

pub(super) fn insert_regular(
    tx: &Transaction<'_>,
    repo: i64,
    name: &str,
    sha256: &str,
    (t, actor): (i64, &str),
    source: Option<&Source>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO entry (repository, name, kind, blob, mtime, author, source)
         VALUES (?1, ?2, 'regular', ?3, ?4, ?5, ?6)",
        params![repo, name, sha256, t, actor, source.map(Source::to_json)],
    )?;
    Ok(())
}

pub(super) fn insert_link(
    tx: &Transaction<'_>,
    repo: i64,
    name: &str,
    target: &Target,
    t: i64,
    actor: &str,
) -> Result<()> {
    let (kind, target_repository, target_name) = match target {
        Target::Local(name) => ("symlink", None, name.as_str()),
        Target::Flist { repository, name } => ("symlink", Some(repository.as_str()), name.as_str()),
        Target::Tag { repository, tag } => ("taglink", Some(repository.as_str()), tag.as_str()),
    };
    tx.execute(
        "INSERT INTO entry (repository, name, kind, target_repository, target_name, mtime, author)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![repo, name, kind, target_repository, target_name, t, actor],
    )?;
    Ok(())
}

pub(super) fn rename_entry(tx: &Transaction<'_>, repo: i64, from: &str, to: &str) -> Result<()> {
    tx.execute(
        "UPDATE entry SET name = ?3 WHERE repository = ?1 AND name = ?2",
        params![repo, from, to],
    )?;
    Ok(())
}

/// Removes an entry; the row it was, if any.
pub(super) fn remove_entry(tx: &Transaction<'_>, repo: i64, name: &str) -> Result<Option<Row>> {
    let old = entry_by_id(tx, repo, name)?;
    if old.is_some() {
        tx.execute(
            "DELETE FROM entry WHERE repository = ?1 AND name = ?2",
            params![repo, name],
        )?;
    }
    Ok(old)
}

/// Drops the blob row of a removed entry if nothing else names it, and notes its file for
/// removal after the commit.
pub(super) fn free_blob_of(
    tx: &Transaction<'_>,
    removed: Option<Row>,
    freed: &mut Vec<String>,
    t: i64,
) -> Result<()> {
    let Some(Digest256 { sha256, .. }) = removed.and_then(|r| r.digest) else {
        return Ok(());
    };
    release_blob(tx, &sha256, freed, t)
}

/// Drops a file's row when no entry and no rendition names it any more; with it go its
/// renditions, and the contents only it held are released (their blocks stay readable for
/// the gateway's grace period).
fn release_blob(tx: &Transaction<'_>, sha256: &str, freed: &mut Vec<String>, t: i64) -> Result<()> {
    let named = tx
        .prepare_cached(
            "SELECT 1 WHERE EXISTS (SELECT 1 FROM entry WHERE blob = ?1)
                OR EXISTS (SELECT 1 FROM rendition WHERE sha256 = ?1)",
        )?
        .exists([sha256])?;
    if named {
        return Ok(());
    }
    // Before the file's row, which its share row names.
    let contents = super::share::release(tx, sha256)?;
    drop_blob(tx, sha256, freed)?;
    let renditions: Vec<String> = tx
        .prepare_cached("DELETE FROM rendition WHERE native = ?1 RETURNING sha256")?
        .query_map([sha256], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for rendition in renditions {
        release_blob(tx, &rendition, freed, t)?;
    }
    for content in contents {
        tx.prepare_cached(
            "UPDATE content_windows SET released = ?2
             WHERE content = ?1 AND released IS NULL
               AND NOT EXISTS (SELECT 1 FROM blob_content WHERE content = ?1)",
        )?
        .execute(params![content, t])?;
    }
    Ok(())
}

/// Drops a rendition of `native` (made for a gateway address no longer used), and its file
/// if nothing else names it.
pub(crate) fn drop_rendition(
    tx: &Transaction<'_>,
    (native, format, public_url): (&str, &str, &str),
    freed: &mut Vec<String>,
    t: i64,
) -> Result<()> {
    let files: Vec<String> = tx
        .prepare_cached(
            "DELETE FROM rendition WHERE native = ?1 AND format = ?2 AND public_url = ?3
             RETURNING sha256",
        )?
        .query_map([native, format, public_url], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for file in files {
        release_blob(tx, &file, freed, t)?;
    }
    Ok(())
}

/// Removes a file's row; its file is removed after the commit.
fn drop_blob(tx: &Transaction<'_>, sha256: &str, freed: &mut Vec<String>) -> Result<()> {
    tx.execute("DELETE FROM blob_facts WHERE sha256 = ?1", [sha256])?;
    tx.execute("DELETE FROM blob WHERE sha256 = ?1", [sha256])?;
    freed.push(sha256.to_owned());
    Ok(())
}

/// The size of what a `.flist` download of this file serves by default: its 0-flist
/// rendition once made (only the current gateway address has renditions, after start).
pub(super) fn served_size(c: &Connection, file: &Digest256) -> Result<u64> {
    if file.format != Format::Native {
        return Ok(file.size);
    }
    let rendition: Option<i64> = c
        .prepare_cached(
            "SELECT b.size FROM rendition r JOIN blob b ON b.sha256 = r.sha256
             WHERE r.native = ?1 AND r.format = '0-flist'",
        )?
        .query_row([&file.sha256], |r| r.get(0))
        .optional()?;
    Ok(rendition.map_or(file.size, |size| size as u64))
}

/// Whether a blob row names this file.
pub(crate) fn blob_known(c: &Connection, sha256: &str) -> Result<bool> {
    Ok(c.prepare_cached("SELECT 1 FROM blob WHERE sha256 = ?1")?
        .exists([sha256])?)
}

/// A (repository, name) pair a chain of links passes through.
pub(super) type Hop = (String, String);

/// Follows links from `name` of `repository` to a published flist: the names the chain
/// passes through, and the flist it ends at (`None` when it ends nowhere: a missing name, a
/// taglink, or a loop).
pub(super) fn chain(
    c: &Connection,
    repository: &str,
    name: &str,
) -> Result<(Vec<Hop>, Option<Resolved>)> {
    let mut at = (repository.to_owned(), name.to_owned());
    let mut passed = Vec::new();
    for _ in 0..=MAX_HOPS {
        let Some(row) = entry(c, &at.0, &at.1)? else {
            break;
        };
        match row.kind {
            Kind::Regular => {
                let digest = row.digest.ok_or_else(corrupt_row)?;
                let (repository, name) = at;
                return Ok((
                    passed,
                    Some(Resolved {
                        repository,
                        name,
                        digest,
                        mtime: row.mtime,
                    }),
                ));
            }
            Kind::Symlink => {
                let Some(next) = row.target.as_ref().and_then(|t| t.flist_in(&at.0)) else {
                    break;
                };
                passed.push(std::mem::replace(&mut at, next));
            }
            Kind::Taglink | Kind::Tag => break,
        }
    }
    Ok((passed, None))
}

/// The flist `name` of `repository` resolves to, if any.
pub(super) fn resolve(c: &Connection, repository: &str, name: &str) -> Result<Option<Resolved>> {
    Ok(chain(c, repository, name)?.1)
}

/// Where the entry `name` of `repository` came from, as recorded when it was published.
pub(super) fn source(c: &Connection, repository: &str, name: &str) -> Result<Option<Source>> {
    let json: Option<Option<String>> = c
        .prepare_cached(
            "SELECT e.source FROM entry e JOIN repository r ON r.id = e.repository
             WHERE r.name = ?1 AND e.name = ?2",
        )?
        .query_row(params![repository, name], |r| r.get(0))
        .optional()?;
    Ok(json.flatten().as_deref().and_then(Source::from_json))
}
