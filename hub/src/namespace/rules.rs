//! 0-hub's rules for each change (reference sections 3 and 5.3), with its holes closed:
//! links must resolve when made and may not loop, a link never replaces a regular flist,
//! rename refuses to overwrite unless forced, untag works after the source is gone.

use hubapi::changes::ChangeEvent;
use rusqlite::Transaction;

use super::change::{Change, file_ref};
use super::share;
use super::source::Source;
use super::sql::{self, Row, corrupt_row, repository_id, source_not_found, user_not_found};
use super::views::{Kind, Target, shown};
use crate::error::{Error, Result};
use crate::formats::Format;
use crate::names::{FLIST_SUFFIX, quote};

/// Applies one change; the event it records, or `None` when it changed nothing (a rename of
/// a name to itself). Files it frees are pushed to `freed`.
pub(super) fn apply(
    tx: &Transaction<'_>,
    change: &Change,
    actor: &str,
    t: i64,
    freed: &mut Vec<String>,
) -> Result<Option<ChangeEvent>> {
    let repository = change.repository().to_string();
    Ok(Some(match change {
        Change::Publish {
            name,
            file,
            facts,
            source,
            contents,
            ..
        } => {
            let repo = sql::ensure_repository(tx, &repository, t)?;
            sql::insert_blob(tx, file, &facts.to_json(), t)?;
            if file.format == Format::Native {
                share::record(tx, &file.sha256, contents)?;
            }
            let old = sql::remove_entry(tx, repo, name)?;
            same_suffix(old.as_ref(), file.format, name)?;
            sql::insert_regular(tx, repo, name, &file.sha256, (t, actor), Some(source))?;
            sql::free_blob_of(tx, old, freed, t)?;
            sql::touch(tx, repo, t)?;
            ChangeEvent::Publish {
                repository,
                name: name.to_string(),
                file: file_ref(file),
            }
        }
        Change::Link { source, link, .. } => {
            let repo = repository_id(tx, &repository)?.ok_or_else(user_not_found)?;
            let target = Target::Local(source.to_string());
            make_link(tx, &repository, repo, link, &target, t, actor)?;
            ChangeEvent::Link {
                repository,
                name: link.to_string(),
                target: source.to_string(),
            }
        }
        Change::Crosslink {
            link,
            source_repository,
            source,
            ..
        } => {
            repository_id(tx, source_repository)?
                .ok_or_else(|| Error::NotFound("source repository not found".into()))?;
            let repo = sql::ensure_repository(tx, &repository, t)?;
            let target = Target::Flist {
                repository: source_repository.to_string(),
                name: source.to_string(),
            };
            make_link(tx, &repository, repo, link, &target, t, actor)?;
            ChangeEvent::Crosslink {
                repository,
                name: link.to_string(),
                target_repository: source_repository.to_string(),
                target_name: source.to_string(),
            }
        }
        Change::Crosstag {
            link,
            tag_repository,
            tag,
            ..
        } => {
            crosstag(tx, &repository, link, tag_repository, tag, t, actor)?;
            ChangeEvent::Crosstag {
                repository,
                name: link.to_string(),
                tag_repository: tag_repository.to_string(),
                tag: tag.to_string(),
            }
        }
        Change::Uncrosstag {
            link,
            tag_repository,
            tag,
            ..
        } => {
            let expected = Target::Tag {
                repository: tag_repository.to_string(),
                tag: tag.to_string(),
            };
            let repo = repository_id(tx, &repository)?.ok_or_else(user_not_found)?;
            match sql::entry_by_id(tx, repo, link)? {
                Some(row)
                    if row.kind == Kind::Taglink && row.target.as_ref() == Some(&expected) => {}
                _ => {
                    return Err(Error::NotFound(format!(
                        "no taglink {} to {} here",
                        quote(link),
                        expected.cleaned()
                    )));
                }
            }
            sql::remove_entry(tx, repo, link)?;
            sql::touch(tx, repo, t)?;
            ChangeEvent::Uncrosstag {
                repository,
                name: link.to_string(),
                tag_repository: tag_repository.to_string(),
                tag: tag.to_string(),
            }
        }
        Change::Tag {
            tag,
            link,
            source_repository,
            source,
            ..
        } => {
            repository_id(tx, source_repository)?
                .ok_or_else(|| Error::NotFound("source repository not found".into()))?;
            sql::resolve(tx, source_repository, source)?.ok_or_else(source_not_found)?;
            let repo = sql::ensure_repository(tx, &repository, t)?;
            let tag_id = sql::upsert_tag(tx, repo, tag, t)?;
            sql::put_tag_member(tx, tag_id, link, (source_repository, source), t, actor)?;
            sql::touch(tx, repo, t)?;
            ChangeEvent::Tag {
                repository,
                tag: tag.to_string(),
                name: link.to_string(),
                target_repository: source_repository.to_string(),
                target_name: source.to_string(),
            }
        }
        Change::Untag { tag, link, .. } => {
            let repo = repository_id(tx, &repository)?.ok_or_else(user_not_found)?;
            let not_on_tag = || Error::NotFound("target not found on this tag".into());
            let tag_id = sql::tag_id(tx, repo, tag)?.ok_or_else(not_on_tag)?;
            if !sql::remove_tag_member(tx, tag_id, link)? {
                return Err(not_on_tag());
            }
            if sql::tag_member_count(tx, tag_id)? == 0 {
                sql::delete_tag(tx, tag_id)?;
            } else {
                sql::set_tag_mtime(tx, tag_id, t)?;
            }
            sql::touch(tx, repo, t)?;
            ChangeEvent::Untag {
                repository,
                tag: tag.to_string(),
                name: link.to_string(),
            }
        }
        Change::Rename {
            source,
            destination,
            force,
            ..
        } => {
            if !rename(tx, &repository, source, destination, *force, t, freed)? {
                return Ok(None);
            }
            ChangeEvent::Rename {
                repository,
                from: source.to_string(),
                to: destination.to_string(),
            }
        }
        Change::Promote {
            source_repository,
            source,
            local,
            ..
        } => {
            repository_id(tx, source_repository)?.ok_or_else(user_not_found)?;
            let resolved =
                sql::resolve(tx, source_repository, source)?.ok_or_else(source_not_found)?;
            let repo = sql::ensure_repository(tx, &repository, t)?;
            // A copy of a copy names where the first came from, not a chain of copies.
            let origin = match sql::source(tx, &resolved.repository, &resolved.name)? {
                Some(Source::Promote { origin, .. }) => origin,
                other => other.map(Box::new),
            };
            let copied = Source::Promote {
                from: format!("{}/{}", resolved.repository, resolved.name),
                origin,
            };
            let old = sql::remove_entry(tx, repo, local)?;
            same_suffix(old.as_ref(), resolved.digest.format, local)?;
            let sha256 = &resolved.digest.sha256;
            sql::insert_regular(tx, repo, local, sha256, (t, actor), Some(&copied))?;
            sql::free_blob_of(tx, old, freed, t)?;
            sql::touch(tx, repo, t)?;
            ChangeEvent::Promote {
                repository,
                name: local.to_string(),
                source_repository: source_repository.to_string(),
                source_name: source.to_string(),
                file: file_ref(&resolved.digest),
            }
        }
        Change::Delete {
            name, or_taglink, ..
        } => {
            let repo = repository_id(tx, &repository)?.ok_or_else(user_not_found)?;
            let (removed, which) = match sql::remove_entry(tx, repo, name)? {
                Some(row) => (row, name.as_str()),
                None => match sql::entry_by_id(tx, repo, or_taglink)? {
                    Some(row) if row.kind == Kind::Taglink => {
                        sql::remove_entry(tx, repo, or_taglink)?;
                        (row, or_taglink.as_str())
                    }
                    _ => return Err(source_not_found()),
                },
            };
            sql::free_blob_of(tx, Some(removed), freed, t)?;
            sql::touch(tx, repo, t)?;
            ChangeEvent::Delete {
                repository,
                name: which.to_owned(),
                reason: None,
            }
        }
        Change::Expire {
            name,
            sha256,
            reason,
            ..
        } => {
            let repo = repository_id(tx, &repository)?.ok_or_else(user_not_found)?;
            let still = sql::entry_by_id(tx, repo, name)?.is_some_and(|row| {
                row.kind == Kind::Regular && row.digest.is_some_and(|d| d.sha256 == *sha256)
            });
            if !still {
                return Err(Error::Conflict(format!(
                    "{} changed since the retention policy was applied",
                    quote(name)
                )));
            }
            if !super::summary::referrers(tx, &repository, name)?.is_empty() {
                return Err(Error::Conflict(format!(
                    "{} is linked: retention keeps it",
                    quote(name)
                )));
            }
            let removed = sql::remove_entry(tx, repo, name)?;
            sql::free_blob_of(tx, removed, freed, t)?;
            sql::touch(tx, repo, t)?;
            ChangeEvent::Delete {
                repository,
                name: name.to_string(),
                reason: Some(reason.clone()),
            }
        }
    }))
}

/// Makes `link` a symlink to `target`: 0-hub's rules (the target must resolve; a symlink
/// of that name is replaced, a regular flist is not) plus a refusal of loops.
fn make_link(
    tx: &Transaction<'_>,
    repository: &str,
    repo: i64,
    link: &str,
    target: &Target,
    t: i64,
    actor: &str,
) -> Result<()> {
    let (target_repository, target_name) = target.flist_in(repository).ok_or_else(corrupt_row)?;
    let (passed, resolved) = sql::chain(tx, &target_repository, &target_name)?;
    if resolved.is_none() {
        return Err(source_not_found());
    }
    let existing = sql::entry_by_id(tx, repo, link)?;
    if existing
        .as_ref()
        .is_some_and(|row| row.kind == Kind::Regular)
    {
        return Err(already_a_file());
    }
    let this = (repository.to_owned(), link.to_owned());
    if passed.contains(&this)
        || (target_repository.as_str(), target_name.as_str()) == (repository, link)
    {
        return Err(points_at_itself(link));
    }
    if existing.is_some() {
        sql::remove_entry(tx, repo, link)?; // a link: no file to free
    }
    sql::insert_link(tx, repo, link, target, t, actor)?;
    sql::touch(tx, repo, t)
}

/// The taglink `link` (never `.flist`, never beside a `<link>.flist`) points at a tag that
/// exists; it replaces a taglink of that name, nothing else.
fn crosstag(
    tx: &Transaction<'_>,
    repository: &str,
    link: &str,
    tag_repository: &str,
    tag: &str,
    t: i64,
    actor: &str,
) -> Result<()> {
    if link.ends_with(FLIST_SUFFIX) {
        return Err(Error::LinkConflict(
            "tag symlink cannot ends with .flist".into(),
        ));
    }
    let tag_exists = match repository_id(tx, tag_repository)? {
        Some(r) => sql::tag_id(tx, r, tag)?.is_some(),
        None => false,
    };
    if !tag_exists {
        return Err(Error::NotFound("source tag not found".into()));
    }
    let repo = sql::ensure_repository(tx, repository, t)?;
    if sql::entry_by_id(tx, repo, &format!("{link}{FLIST_SUFFIX}"))?.is_some() {
        return Err(Error::LinkConflict(
            "there is a .flist file with the same name existing already".into(),
        ));
    }
    if let Some(row) = sql::entry_by_id(tx, repo, link)?
        && row.kind != Kind::Taglink
    {
        return Err(already_a_file());
    }
    sql::remove_entry(tx, repo, link)?;
    let target = Target::Tag {
        repository: tag_repository.to_owned(),
        tag: tag.to_owned(),
    };
    sql::insert_link(tx, repo, link, &target, t, actor)?;
    sql::touch(tx, repo, t)
}

/// Whether anything changed (a name renamed to itself does not).
fn rename(
    tx: &Transaction<'_>,
    repository: &str,
    source: &str,
    destination: &str,
    force: bool,
    t: i64,
    freed: &mut Vec<String>,
) -> Result<bool> {
    let repo = repository_id(tx, repository)?.ok_or_else(user_not_found)?;
    let renamed: Row = sql::entry_by_id(tx, repo, source)?.ok_or_else(source_not_found)?;
    if source == destination {
        return Ok(false);
    }
    if sql::entry_by_id(tx, repo, destination)?.is_some() {
        if !force {
            return Err(Error::Conflict(format!(
                "{} already exists; rename with ?force=true to replace it",
                quote(destination)
            )));
        }
        let old = sql::remove_entry(tx, repo, destination)?;
        sql::free_blob_of(tx, old, freed, t)?;
    }
    sql::rename_entry(tx, repo, source, destination)?;
    // A link renamed onto what it points at (directly or through other links) would point
    // at itself, and the flist it replaced would be gone: refused, and the transaction
    // with it.
    if renamed.kind == Kind::Symlink {
        let this = (repository.to_owned(), destination.to_owned());
        let (passed, _) = sql::chain(tx, repository, destination)?;
        if passed.iter().filter(|hop| **hop == this).count() > 1 {
            return Err(points_at_itself(destination));
        }
    }
    sql::touch(tx, repo, t)?;
    Ok(true)
}

/// A name holds one entry whatever its format: an flist published where an flist of the
/// other suffix is (`x.fl` over `x.flist`, or the reverse) is refused, not replaced.
fn same_suffix(old: Option<&Row>, format: Format, name: &str) -> Result<()> {
    match old.and_then(|row| row.digest.as_ref()) {
        Some(digest) if digest.format.suffix() != format.suffix() => Err(Error::Conflict(format!(
            "{} exists as {}; delete it first to publish {}",
            quote(&shown(name, Some(digest.format))),
            digest.format.as_str(),
            quote(&shown(name, Some(format)))
        ))),
        _ => Ok(()),
    }
}

fn already_a_file() -> Error {
    Error::LinkConflict("link destination is already a file".into())
}

fn points_at_itself(link: &str) -> Error {
    Error::BadRequest(format!(
        "{} would point at itself through its target",
        quote(link)
    ))
}
