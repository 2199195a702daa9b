//! Reads of the namespace, as 0-hub's routes show it: listings, `light`, resolution.
//! Synchronous functions of a connection; `Namespace` runs them on the database's readers.

use rusqlite::Connection;

use super::sql::{self, Row, corrupt_row, repository_id, source_not_found, user_not_found};
use super::views::{Info, Kind, Listed, Resolved, Target, shown};
use crate::error::{Error, Result};
use crate::formats::Format;

fn tag_not_found() -> Error {
    Error::NotFound("tag not found".into())
}

/// Every repository with its last change, by name.
pub(super) fn repositories(c: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt = c.prepare_cached("SELECT name, updated FROM repository ORDER BY name")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// `repo/entry` for every entry of every repository, tags as `repo/.tag-name`, in 0-hub's
/// on-disk order; flists with the suffix of their format.
pub(super) fn all_entries(c: &Connection) -> Result<Vec<String>> {
    let mut stmt = c.prepare_cached(
        "SELECT r.name, e.name, e.kind, b.format FROM entry e
         JOIN repository r ON r.id = e.repository LEFT JOIN blob b ON b.sha256 = e.blob
         UNION ALL
         SELECT r.name, '.tag-' || t.name, 'tag', NULL FROM tag t
         JOIN repository r ON r.id = t.repository
         ORDER BY 1, 2",
    )?;
    let rows: Vec<(String, String, String, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    rows.into_iter()
        .map(|(repository, name, kind, format)| {
            let format = match kind.as_str() {
                "regular" => format.as_deref().and_then(Format::from_name),
                // Few, and each shown as what it resolves to.
                "symlink" => sql::resolve(c, &repository, &name)?.map(|r| r.digest.format),
                _ => None,
            };
            Ok(format!("{repository}/{}", shown(&name, format)))
        })
        .collect()
}

/// A repository's entries and tags in 0-hub's order (by name on disk: `.tag-v1` before
/// `a.flist`), or `None` if there is no such repository.
pub(super) fn list(c: &Connection, repository: &str) -> Result<Option<Vec<Listed>>> {
    let Some(repo) = repository_id(c, repository)? else {
        return Ok(None);
    };
    let mut listed: Vec<(String, Listed)> = Vec::new();
    for (name, row) in sql::entries(c, repo)? {
        let item = listed_entry(c, repository, name, row)?;
        listed.push((item.name.clone(), item));
    }
    for (name, mtime) in sql::tags(c, repo)? {
        listed.push((
            format!(".tag-{name}"),
            Listed {
                name,
                kind: Kind::Tag,
                size: None,
                updated: mtime,
                linktime: None,
                target: None,
            },
        ));
    }
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Some(listed.into_iter().map(|(_, l)| l).collect()))
}

fn listed_entry(c: &Connection, repository: &str, name: String, row: Row) -> Result<Listed> {
    Ok(match row.kind {
        Kind::Regular => Listed {
            name: shown(&name, row.digest.as_ref().map(|d| d.format)),
            kind: Kind::Regular,
            size: row.digest.map(|d| sql::served_size(c, &d)).transpose()?,
            updated: row.mtime,
            linktime: None,
            target: None,
        },
        Kind::Symlink => {
            let resolved = sql::resolve(c, repository, &name)?;
            let format = resolved.as_ref().map(|r| r.digest.format);
            Listed {
                name: shown(&name, format),
                kind: Kind::Symlink,
                size: resolved
                    .as_ref()
                    .map(|r| sql::served_size(c, &r.digest))
                    .transpose()?,
                updated: resolved.map_or(row.mtime, |r| r.mtime),
                linktime: Some(row.mtime),
                target: row.target.map(|t| t.shown(format)),
            }
        }
        Kind::Taglink | Kind::Tag => {
            // A taglink shows its tag's time (0-hub: the tag directory's mtime).
            let tag_time = match &row.target {
                Some(Target::Tag { repository, tag }) => sql::tag_mtime(c, repository, tag)?,
                _ => None,
            };
            Listed {
                name,
                kind: Kind::Taglink,
                size: None,
                updated: tag_time.unwrap_or(row.mtime),
                linktime: Some(row.mtime),
                target: row.target,
            }
        }
    })
}

/// The members of a tag.
pub(super) fn list_tag(c: &Connection, repository: &str, tag: &str) -> Result<Vec<Listed>> {
    let repo = repository_id(c, repository)?.ok_or_else(user_not_found)?;
    let tag = sql::tag_id(c, repo, tag)?.ok_or_else(tag_not_found)?;
    sql::tag_members(c, tag)?
        .into_iter()
        .map(|(name, target_repository, target_name, linktime)| {
            let resolved = sql::resolve(c, &target_repository, &target_name)?;
            let format = resolved.as_ref().map(|r| r.digest.format);
            Ok(Listed {
                name: shown(&name, format),
                kind: Kind::Symlink,
                size: resolved
                    .as_ref()
                    .map(|r| sql::served_size(c, &r.digest))
                    .transpose()?,
                updated: resolved.map_or(linktime, |r| r.mtime),
                linktime: Some(linktime),
                target: Some(
                    Target::Flist {
                        repository: target_repository,
                        name: target_name,
                    }
                    .shown(format),
                ),
            })
        })
        .collect()
}

/// What `light` shows of `name` (an flist name, `.flist` included).
pub(super) fn info(c: &Connection, repository: &str, name: &str) -> Result<Info> {
    repository_id(c, repository)?.ok_or_else(user_not_found)?;
    let row = sql::entry(c, repository, name)?.ok_or_else(source_not_found)?;
    let resolved = match row.kind {
        Kind::Taglink | Kind::Tag => return Err(source_not_found()),
        Kind::Regular => Some(Resolved {
            repository: repository.to_owned(),
            name: name.to_owned(),
            digest: row.digest.clone().ok_or_else(corrupt_row)?,
            mtime: row.mtime,
        }),
        Kind::Symlink => sql::resolve(c, repository, name)?,
    };
    let is_link = row.kind == Kind::Symlink;
    let format = resolved.as_ref().map(|r| r.digest.format);
    Ok(Info {
        name: shown(name, format),
        kind: row.kind,
        resolved,
        linktime: is_link.then_some(row.mtime),
        target: row.target.map(|t| t.shown(format)),
    })
}

/// The flist member `name` of a tag resolves to.
pub(super) fn resolve_in_tag(
    c: &Connection,
    repository: &str,
    tag: &str,
    name: &str,
) -> Result<Resolved> {
    let repo = repository_id(c, repository)?.ok_or_else(user_not_found)?;
    let tag = sql::tag_id(c, repo, tag)?.ok_or_else(tag_not_found)?;
    let (target_repository, target_name) =
        sql::tag_member(c, tag, name)?.ok_or_else(source_not_found)?;
    sql::resolve(c, &target_repository, &target_name)?.ok_or_else(source_not_found)
}

/// The tag a taglink points at (`name` as given: 0-hub adds no suffix here).
pub(super) fn taglink(c: &Connection, repository: &str, name: &str) -> Result<Target> {
    repository_id(c, repository)?.ok_or_else(user_not_found)?;
    match sql::entry(c, repository, name)? {
        Some(Row {
            kind: Kind::Taglink,
            target: Some(target),
            ..
        }) => Ok(target),
        _ => Err(source_not_found()),
    }
}
