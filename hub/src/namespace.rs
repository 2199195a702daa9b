//! The repository namespace: repositories, flists, symlinks, crosslinks, tags and taglinks,
//! with 0-hub's rules (reference sections 3 and 5.3) and its holes closed.
//!
//! Links are stored as what they name, as a filesystem symlink would be, and resolved when
//! read: a link to a re-published flist follows it, a link whose target is gone dangles.
//! `updated` of a link is its target's time, `linktime` its own, as 0-hub computes them;
//! here they are stored times, not file times.
//!
//! Every change is one transaction on the database writer. The files a change adds or frees
//! are moved into place before its commit and removed after it, while the writer lock is
//! still held, so a publish and a delete of the same content cannot cross.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::blobs::{Blobs, Digest256, Staged};
use crate::db::{Db, now};
use crate::error::{Error, Result};
use crate::names::{FLIST_SUFFIX, quote};

/// Links followed before a chain is considered a loop (as the kernel's ELOOP).
const MAX_HOPS: usize = 40;

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

    fn from_columns(
        kind: &str,
        repository: Option<String>,
        name: Option<String>,
    ) -> Option<Target> {
        let name = name?;
        Some(match (kind, repository) {
            ("taglink", Some(repository)) => Target::Tag {
                repository,
                tag: name,
            },
            (_, Some(repository)) => Target::Flist { repository, name },
            (_, None) => Target::Local(name),
        })
    }

    /// The flist this target names, seen from `repository`.
    fn flist_in(&self, repository: &str) -> Option<(String, String)> {
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
#[derive(Debug, Clone)]
pub struct Listed {
    /// As 0-hub lists it: `x.flist`, a taglink's bare name, a tag's name without `.tag-`.
    pub name: String,
    pub kind: Kind,
    /// Size of the flist it is or resolves to; `None` for tags, taglinks and dangling links.
    pub size: Option<u64>,
    pub updated: i64,
    pub linktime: Option<i64>,
    pub target: Option<Target>,
    /// 0-hub's name on disk, which orders its listings (`.tag-v1` before `a.flist`).
    sort_key: String,
}

/// The flist a name resolves to, after following links.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub repository: String,
    pub name: String,
    pub digest: Digest256,
    /// When it was published.
    pub mtime: i64,
}

/// What `light` and `INFO` show of a name.
#[derive(Debug, Clone)]
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

/// A row of `entry`.
#[derive(Debug, Clone)]
struct Row {
    kind: Kind,
    digest: Option<Digest256>,
    target: Option<Target>,
    mtime: i64,
}

pub struct Namespace {
    db: Db,
    blobs: Arc<Blobs>,
    cache: Arc<InfoCache>,
}

impl Namespace {
    pub fn new(db: Db, blobs: Arc<Blobs>) -> Namespace {
        Namespace {
            db,
            blobs,
            cache: Arc::default(),
        }
    }

    pub fn blobs(&self) -> &Arc<Blobs> {
        &self.blobs
    }

    /// Opens the file of the flist `resolve` names with `open` (on a blocking thread). A
    /// name re-published or deleted between the lookup and the open has lost its old file:
    /// it is then looked up again. Once open, a file stays readable whatever happens to
    /// its name.
    pub async fn open_file<T: Send + 'static, Fut: Future<Output = Result<Resolved>>>(
        &self,
        resolve: impl Fn() -> Fut,
        open: impl Fn(&std::path::Path) -> Result<T> + Send + Sync + 'static,
    ) -> Result<(Resolved, T)> {
        let open = Arc::new(open);
        for _ in 0..3 {
            let resolved = resolve().await?;
            let path = self.blobs.path(&resolved.digest.sha256);
            let open = Arc::clone(&open);
            let (path, opened) = tokio::task::spawn_blocking(move || {
                let opened = open(&path);
                (path, opened)
            })
            .await?;
            match opened {
                Ok(value) => return Ok((resolved, value)),
                Err(_) if !path.exists() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Unavailable(
            "the flist changed while it was being read; retry".into(),
        ))
    }

    // ----- reads -----

    /// Every repository with its last change, by name.
    pub async fn repositories(&self) -> Result<Vec<(String, i64)>> {
        self.db
            .read(|c| {
                let mut stmt =
                    c.prepare_cached("SELECT name, updated FROM repository ORDER BY name")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    /// `repo/entry` for every entry of every repository, tags as `repo/.tag-name`, in 0-hub's
    /// on-disk order.
    pub async fn all_entries(&self) -> Result<Vec<String>> {
        self.db
            .read(|c| {
                let mut stmt = c.prepare_cached(
                    "SELECT r.name, e.name FROM entry e JOIN repository r ON r.id = e.repository
                     UNION ALL
                     SELECT r.name, '.tag-' || t.name FROM tag t JOIN repository r ON r.id = t.repository
                     ORDER BY 1, 2",
                )?;
                let rows = stmt.query_map([], |r| {
                    Ok(format!("{}/{}", r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    /// A repository's entries and tags, or `None` if there is no such repository.
    pub async fn list(&self, repository: &str) -> Result<Option<Vec<Listed>>> {
        let repository = repository.to_owned();
        self.db.read(move |c| list(c, &repository)).await
    }

    /// Every repository's listing, for `/api/fileslist`.
    pub async fn list_all(&self) -> Result<Vec<(String, Vec<Listed>)>> {
        self.db
            .read(|c| {
                let names: Vec<String> = c
                    .prepare_cached("SELECT name FROM repository ORDER BY name")?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                names
                    .into_iter()
                    .map(|name| {
                        let listed = list(c, &name)?.unwrap_or_default();
                        Ok((name, listed))
                    })
                    .collect()
            })
            .await
    }

    /// The members of a tag.
    pub async fn list_tag(&self, repository: &str, tag: &str) -> Result<Vec<Listed>> {
        let (repository, tag) = (repository.to_owned(), tag.to_owned());
        self.db
            .read(move |c| {
                let repo = repository_id(c, &repository)?.ok_or_else(user_not_found)?;
                let tag_id = tag_id(c, repo, &tag)?
                    .ok_or_else(|| Error::NotFound("tag not found".into()))?;
                let mut stmt = c.prepare_cached(
                    "SELECT name, target_repository, target_name, linktime FROM tag_member
                     WHERE tag = ?1 ORDER BY name",
                )?;
                let members: Vec<(String, String, String, i64)> = stmt
                    .query_map([tag_id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                members
                    .into_iter()
                    .map(|(name, target_repository, target_name, linktime)| {
                        let resolved = resolve(c, &target_repository, &target_name)?;
                        Ok(Listed {
                            sort_key: name.clone(),
                            name,
                            kind: Kind::Symlink,
                            size: resolved.as_ref().map(|r| r.digest.size),
                            updated: resolved.map_or(linktime, |r| r.mtime),
                            linktime: Some(linktime),
                            target: Some(Target::Flist {
                                repository: target_repository,
                                name: target_name,
                            }),
                        })
                    })
                    .collect()
            })
            .await
    }

    /// What `light` shows of `name` (an flist name, `.flist` included).
    pub async fn info(&self, repository: &str, name: &str) -> Result<Info> {
        let key = (repository.to_owned(), name.to_owned());
        let generation = match self.cache.get(&key) {
            Ok(info) => return Ok(info),
            Err(generation) => generation,
        };
        let (repository, name) = key.clone();
        let info = self
            .db
            .read(move |c| {
                repository_id(c, &repository)?.ok_or_else(user_not_found)?;
                let row = entry(c, &repository, &name)?.ok_or_else(source_not_found)?;
                let resolved = match row.kind {
                    Kind::Taglink | Kind::Tag => return Err(source_not_found()),
                    Kind::Regular => Some(Resolved {
                        repository: repository.clone(),
                        name: name.clone(),
                        digest: row.digest.clone().ok_or_else(corrupt_row)?,
                        mtime: row.mtime,
                    }),
                    Kind::Symlink => resolve(c, &repository, &name)?,
                };
                let is_link = row.kind == Kind::Symlink;
                Ok(Info {
                    name,
                    kind: row.kind,
                    resolved,
                    linktime: is_link.then_some(row.mtime),
                    target: row.target,
                })
            })
            .await?;
        self.cache.put(key, generation, &info);
        Ok(info)
    }

    /// The flist `name` of `repository` resolves to, for downloads and reading it.
    /// Errors are 0-hub's: `user not found`, `source not found`.
    pub async fn resolve(&self, repository: &str, name: &str) -> Result<Resolved> {
        self.info(repository, name)
            .await?
            .resolved
            .ok_or_else(source_not_found)
    }

    /// The flist member `name` of a tag resolves to.
    pub async fn resolve_in_tag(
        &self,
        repository: &str,
        tag: &str,
        name: &str,
    ) -> Result<Resolved> {
        let (repository, tag, name) = (repository.to_owned(), tag.to_owned(), name.to_owned());
        self.db
            .read(move |c| {
                let repo = repository_id(c, &repository)?.ok_or_else(user_not_found)?;
                let tag = tag_id(c, repo, &tag)?.ok_or_else(|| Error::NotFound("tag not found".into()))?;
                let target: Option<(String, String)> = c
                    .prepare_cached(
                        "SELECT target_repository, target_name FROM tag_member WHERE tag = ?1 AND name = ?2",
                    )?
                    .query_row(params![tag, name], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let (target_repository, target_name) = target.ok_or_else(source_not_found)?;
                resolve(c, &target_repository, &target_name)?.ok_or_else(source_not_found)
            })
            .await
    }

    /// The tag a taglink points at (`name` as given, 0-hub adds no suffix here).
    pub async fn taglink(&self, repository: &str, name: &str) -> Result<Target> {
        let (repository, name) = (repository.to_owned(), name.to_owned());
        self.db
            .read(move |c| {
                repository_id(c, &repository)?.ok_or_else(user_not_found)?;
                match entry(c, &repository, &name)? {
                    Some(Row {
                        kind: Kind::Taglink,
                        target: Some(target),
                        ..
                    }) => Ok(target),
                    _ => Err(source_not_found()),
                }
            })
            .await
    }

    // ----- changes -----

    /// Publishes a staged flist as `name` (`.flist` included) in `repository`, replacing
    /// whatever had that name. Creates the repository if needed.
    pub async fn publish(
        &self,
        repository: &str,
        name: &str,
        staged: Staged,
        actor: &str,
    ) -> Result<Digest256> {
        let (repository, name, actor) = (repository.to_owned(), name.to_owned(), actor.to_owned());
        self.change(move |tx, blobs, freed| {
            let t = now();
            let repo = ensure_repository(tx, &repository, t)?;
            let digest = staged.digest.clone();
            tx.execute(
                "INSERT OR IGNORE INTO blob (sha256, md5, size, created) VALUES (?1, ?2, ?3, ?4)",
                params![digest.sha256, digest.md5, digest.size as i64, t],
            )?;
            blobs.place(staged)?;
            let old = remove_entry(tx, repo, &name)?;
            insert_entry(
                tx,
                repo,
                &name,
                "regular",
                Some(&digest.sha256),
                None,
                t,
                &actor,
            )?;
            free_blob_of(tx, old, freed)?;
            touch(tx, repo, t)?;
            audit(
                tx,
                &actor,
                "publish",
                &repository,
                Some(&name),
                Some(&digest.sha256),
            )?;
            Ok(digest)
        })
        .await
    }

    /// 0-hub's `link`: `link` becomes a symlink to `source` in the same repository.
    pub async fn link(
        &self,
        repository: &str,
        source: &str,
        link: &str,
        actor: &str,
    ) -> Result<()> {
        let (repository, source, link, actor) = (
            repository.to_owned(),
            source.to_owned(),
            link.to_owned(),
            actor.to_owned(),
        );
        self.change(move |tx, _, _| {
            let t = now();
            let repo = repository_id(tx, &repository)?.ok_or_else(user_not_found)?;
            let target = Target::Local(source.clone());
            make_link(tx, &repository, repo, &link, &target, t, &actor)?;
            audit(
                tx,
                &actor,
                "link",
                &repository,
                Some(&link),
                Some(&target.cleaned()),
            )
        })
        .await
    }

    /// 0-hub's `crosslink`: `link` in `repository` becomes a symlink to `source` of
    /// `source_repository`.
    pub async fn crosslink(
        &self,
        repository: &str,
        link: &str,
        source_repository: &str,
        source: &str,
        actor: &str,
    ) -> Result<()> {
        let source_repository = source_repository.to_owned();
        let target = Target::Flist {
            repository: source_repository.clone(),
            name: source.to_owned(),
        };
        let (repository, link, actor) = (repository.to_owned(), link.to_owned(), actor.to_owned());
        self.change(move |tx, _, _| {
            let t = now();
            repository_id(tx, &source_repository)?
                .ok_or_else(|| Error::NotFound("source repository not found".into()))?;
            let repo = ensure_repository(tx, &repository, t)?;
            make_link(tx, &repository, repo, &link, &target, t, &actor)?;
            audit(
                tx,
                &actor,
                "crosslink",
                &repository,
                Some(&link),
                Some(&target.cleaned()),
            )
        })
        .await
    }

    /// 0-hub's `crosstag`: `link` (no `.flist`) in `repository` points at a tag.
    pub async fn crosstag(
        &self,
        repository: &str,
        link: &str,
        tag_repository: &str,
        tag: &str,
        actor: &str,
    ) -> Result<()> {
        if link.ends_with(FLIST_SUFFIX) {
            return Err(Error::LinkConflict(
                "tag symlink cannot ends with .flist".into(),
            ));
        }
        let (tag_repository, tag) = (tag_repository.to_owned(), tag.to_owned());
        let target = Target::Tag {
            repository: tag_repository.clone(),
            tag: tag.clone(),
        };
        let (repository, link, actor) = (repository.to_owned(), link.to_owned(), actor.to_owned());
        self.change(move |tx, _, _| {
            let t = now();
            let tag_repo = repository_id(tx, &tag_repository)?;
            if tag_repo
                .map(|r| tag_id(tx, r, &tag))
                .transpose()?
                .flatten()
                .is_none()
            {
                return Err(Error::NotFound("source tag not found".into()));
            }
            let repo = ensure_repository(tx, &repository, t)?;
            if entry_by_id(tx, repo, &format!("{link}{FLIST_SUFFIX}"))?.is_some() {
                return Err(Error::LinkConflict(
                    "there is a .flist file with the same name existing already".into(),
                ));
            }
            if let Some(row) = entry_by_id(tx, repo, &link)?
                && row.kind != Kind::Taglink
            {
                return Err(Error::LinkConflict(
                    "link destination is already a file".into(),
                ));
            }
            remove_entry(tx, repo, &link)?;
            insert_link(tx, repo, &link, &target, t, &actor)?;
            touch(tx, repo, t)?;
            audit(
                tx,
                &actor,
                "crosstag",
                &repository,
                Some(&link),
                Some(&target.cleaned()),
            )
        })
        .await
    }

    /// Removes the taglink `link` if it points at the tag named (the DELETE 0-hub's README
    /// promised).
    pub async fn uncrosstag(
        &self,
        repository: &str,
        link: &str,
        tag_repository: &str,
        tag: &str,
        actor: &str,
    ) -> Result<()> {
        let expected = Target::Tag {
            repository: tag_repository.to_owned(),
            tag: tag.to_owned(),
        };
        let (repository, link, actor) = (repository.to_owned(), link.to_owned(), actor.to_owned());
        self.change(move |tx, _, _| {
            let repo = repository_id(tx, &repository)?.ok_or_else(user_not_found)?;
            match entry_by_id(tx, repo, &link)? {
                Some(row)
                    if row.kind == Kind::Taglink && row.target.as_ref() == Some(&expected) => {}
                _ => {
                    return Err(Error::NotFound(format!(
                        "no taglink {} to {} here",
                        quote(&link),
                        expected.cleaned()
                    )));
                }
            }
            remove_entry(tx, repo, &link)?;
            touch(tx, repo, now())?;
            audit(
                tx,
                &actor,
                "uncrosstag",
                &repository,
                Some(&link),
                Some(&expected.cleaned()),
            )
        })
        .await
    }

    /// 0-hub's `tag`: `link` in tag `tag` of `repository` points at `source` of
    /// `source_repository`; the tag is created if needed.
    #[allow(clippy::too_many_arguments)]
    pub async fn tag(
        &self,
        repository: &str,
        tag: &str,
        link: &str,
        source_repository: &str,
        source: &str,
        actor: &str,
    ) -> Result<()> {
        let owned = |s: &str| s.to_owned();
        let (repository, tag, link, source_repository, source, actor) = (
            owned(repository),
            owned(tag),
            owned(link),
            owned(source_repository),
            owned(source),
            owned(actor),
        );
        self.change(move |tx, _, _| {
            let t = now();
            repository_id(tx, &source_repository)?
                .ok_or_else(|| Error::NotFound("source repository not found".into()))?;
            resolve(tx, &source_repository, &source)?.ok_or_else(source_not_found)?;
            let repo = ensure_repository(tx, &repository, t)?;
            tx.execute(
                "INSERT INTO tag (repository, name, mtime) VALUES (?1, ?2, ?3)
                 ON CONFLICT (repository, name) DO UPDATE SET mtime = excluded.mtime",
                params![repo, tag, t],
            )?;
            let tag_id = tag_id(tx, repo, &tag)?.ok_or_else(corrupt_row)?;
            tx.execute(
                "INSERT OR REPLACE INTO tag_member (tag, name, target_repository, target_name, linktime, author)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![tag_id, link, source_repository, source, t, actor],
            )?;
            touch(tx, repo, t)?;
            let detail = format!("{link} -> {source_repository}/{source}");
            audit(tx, &actor, "tag", &repository, Some(&tag), Some(&detail))
        })
        .await
    }

    /// Removes `link` from tag `tag`, and the tag once empty. Works whether or not the
    /// source still exists (0-hub could not untag a deleted source).
    pub async fn untag(&self, repository: &str, tag: &str, link: &str, actor: &str) -> Result<()> {
        let (repository, tag, link, actor) = (
            repository.to_owned(),
            tag.to_owned(),
            link.to_owned(),
            actor.to_owned(),
        );
        self.change(move |tx, _, _| {
            let t = now();
            let repo = repository_id(tx, &repository)?.ok_or_else(user_not_found)?;
            let not_on_tag = || Error::NotFound("target not found on this tag".into());
            let tag_id = tag_id(tx, repo, &tag)?.ok_or_else(not_on_tag)?;
            let removed = tx.execute(
                "DELETE FROM tag_member WHERE tag = ?1 AND name = ?2",
                params![tag_id, link],
            )?;
            if removed == 0 {
                return Err(not_on_tag());
            }
            let left: i64 = tx.query_row(
                "SELECT count(*) FROM tag_member WHERE tag = ?1",
                [tag_id],
                |r| r.get(0),
            )?;
            if left == 0 {
                tx.execute("DELETE FROM tag WHERE id = ?1", [tag_id])?;
            } else {
                tx.execute(
                    "UPDATE tag SET mtime = ?2 WHERE id = ?1",
                    params![tag_id, t],
                )?;
            }
            touch(tx, repo, t)?;
            audit(tx, &actor, "untag", &repository, Some(&tag), Some(&link))
        })
        .await
    }

    /// Renames `source` to `destination` in `repository`. An existing destination is
    /// replaced only with `force` (0-hub replaced it silently).
    pub async fn rename(
        &self,
        repository: &str,
        source: &str,
        destination: &str,
        force: bool,
        actor: &str,
    ) -> Result<()> {
        let (repository, source, destination, actor) = (
            repository.to_owned(),
            source.to_owned(),
            destination.to_owned(),
            actor.to_owned(),
        );
        self.change(move |tx, _, freed| {
            let repo = repository_id(tx, &repository)?.ok_or_else(user_not_found)?;
            let renamed = entry_by_id(tx, repo, &source)?.ok_or_else(source_not_found)?;
            if source == destination {
                return Ok(());
            }
            if entry_by_id(tx, repo, &destination)?.is_some() {
                if !force {
                    return Err(Error::Conflict(format!(
                        "{} already exists; rename with ?force=true to replace it",
                        quote(&destination)
                    )));
                }
                let old = remove_entry(tx, repo, &destination)?;
                free_blob_of(tx, old, freed)?;
            }
            tx.execute(
                "UPDATE entry SET name = ?3 WHERE repository = ?1 AND name = ?2",
                params![repo, source, destination],
            )?;
            // A link renamed onto what it points at (directly or through other links) would
            // point at itself, and the flist it replaced would be gone: refused, and the
            // transaction with it.
            if renamed.kind == Kind::Symlink {
                let this = (repository.clone(), destination.clone());
                let (passed, _) = chain(tx, &repository, &destination)?;
                if passed.iter().filter(|hop| **hop == this).count() > 1 {
                    return Err(Error::BadRequest(format!(
                        "{} would point at itself through its target",
                        quote(&destination)
                    )));
                }
            }
            touch(tx, repo, now())?;
            audit(
                tx,
                &actor,
                "rename",
                &repository,
                Some(&source),
                Some(&destination),
            )
        })
        .await
    }

    /// 0-hub's `promote`: `local` in `repository` becomes a copy of what `source` of
    /// `source_repository` resolves to, published now.
    pub async fn promote(
        &self,
        repository: &str,
        source_repository: &str,
        source: &str,
        local: &str,
        actor: &str,
    ) -> Result<()> {
        let owned = |s: &str| s.to_owned();
        let (repository, source_repository, source, local, actor) = (
            owned(repository),
            owned(source_repository),
            owned(source),
            owned(local),
            owned(actor),
        );
        self.change(move |tx, _, freed| {
            let t = now();
            repository_id(tx, &source_repository)?.ok_or_else(user_not_found)?;
            let resolved =
                resolve(tx, &source_repository, &source)?.ok_or_else(source_not_found)?;
            let repo = ensure_repository(tx, &repository, t)?;
            let old = remove_entry(tx, repo, &local)?;
            insert_entry(
                tx,
                repo,
                &local,
                "regular",
                Some(&resolved.digest.sha256),
                None,
                t,
                &actor,
            )?;
            free_blob_of(tx, old, freed)?;
            touch(tx, repo, t)?;
            let detail = format!("{source_repository}/{source}");
            audit(
                tx,
                &actor,
                "promote",
                &repository,
                Some(&local),
                Some(&detail),
            )
        })
        .await
    }

    /// Deletes `name` (`.flist` appended by the caller) or, if there is none, the taglink
    /// `bare` (0-hub's fallback). Targets are never touched.
    pub async fn delete(
        &self,
        repository: &str,
        name: &str,
        bare: &str,
        actor: &str,
    ) -> Result<()> {
        let (repository, name, bare, actor) = (
            repository.to_owned(),
            name.to_owned(),
            bare.to_owned(),
            actor.to_owned(),
        );
        self.change(move |tx, _, freed| {
            let repo = repository_id(tx, &repository)?.ok_or_else(user_not_found)?;
            let (removed, which) = match remove_entry(tx, repo, &name)? {
                Some(row) => (Some(row), name),
                None => match entry_by_id(tx, repo, &bare)? {
                    Some(row) if row.kind == Kind::Taglink => {
                        (remove_entry(tx, repo, &bare)?, bare)
                    }
                    _ => (None, name),
                },
            };
            if removed.is_none() {
                return Err(source_not_found());
            }
            free_blob_of(tx, removed, freed)?;
            touch(tx, repo, now())?;
            audit(tx, &actor, "delete", &repository, Some(&which), None)
        })
        .await
    }

    /// Removes files of the flist store that no row names: what a crash between a file move
    /// and its commit, or between a commit and a file removal, can leave. Run at start.
    pub async fn sweep_unused_files(&self) -> Result<usize> {
        self.change(|tx, blobs, freed| {
            let mut stmt = tx.prepare("SELECT 1 FROM blob WHERE sha256 = ?1")?;
            for sha in blobs.list()? {
                if !stmt.exists([&sha])? {
                    freed.push(sha);
                }
            }
            Ok(freed.len())
        })
        .await
    }

    /// Runs one change: `f` gets the open transaction and the list of blobs it freed; after
    /// the commit their files are removed, still under the writer lock.
    async fn change<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction<'_>, &Blobs, &mut Vec<String>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (blobs, cache) = (Arc::clone(&self.blobs), Arc::clone(&self.cache));
        self.db
            .write(move |conn| {
                // IMMEDIATE: the write lock is taken at the start, so the busy timeout covers
                // a writer in another process; a deferred transaction would fail instead.
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut freed = Vec::new();
                let value = f(&tx, &blobs, &mut freed)?;
                tx.commit()?;
                // Before the files go: no answer naming a freed file survives it.
                cache.clear();
                for sha in &freed {
                    blobs.remove(sha);
                }
                Ok(value)
            })
            .await
    }
}

/// The answers of `info` (and so of `resolve`), kept until the next change of the
/// namespace. Nodes ask for the same names again and again (`light`, `.md5`, downloads);
/// any change empties the cache, which keeps it right without tracking what depends on
/// what (a link's answer depends on its target's). Each answer carries the generation it
/// was read in, so an answer read before a change is never kept after it.
#[derive(Default)]
struct InfoCache {
    state: std::sync::Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    generation: u64,
    entries: std::collections::HashMap<(String, String), Info>,
}

impl InfoCache {
    /// Answers kept at most; past that the cache starts over.
    const CAPACITY: usize = 100_000;

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        // The state is a map and a counter: a panic elsewhere cannot leave it half-changed.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The kept answer, or the generation to read a new one in.
    fn get(&self, key: &(String, String)) -> std::result::Result<Info, u64> {
        let state = self.lock();
        state.entries.get(key).cloned().ok_or(state.generation)
    }

    fn put(&self, key: (String, String), generation: u64, info: &Info) {
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        if state.entries.len() >= Self::CAPACITY {
            state.entries.clear();
        }
        state.entries.insert(key, info.clone());
    }

    fn clear(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.entries.clear();
    }
}

fn user_not_found() -> Error {
    Error::NotFound("user not found".into())
}

fn source_not_found() -> Error {
    Error::NotFound("source not found".into())
}

fn corrupt_row() -> Error {
    Error::Internal("the namespace database holds an inconsistent row".into())
}

fn repository_id(c: &Connection, name: &str) -> Result<Option<i64>> {
    Ok(
        c.prepare_cached("SELECT id FROM repository WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?,
    )
}

fn ensure_repository(tx: &Transaction<'_>, name: &str, t: i64) -> Result<i64> {
    if let Some(id) = repository_id(tx, name)? {
        return Ok(id);
    }
    tx.execute(
        "INSERT INTO repository (name, created, updated) VALUES (?1, ?2, ?2)",
        params![name, t],
    )?;
    Ok(tx.last_insert_rowid())
}

fn touch(tx: &Transaction<'_>, repo: i64, t: i64) -> Result<()> {
    tx.execute(
        "UPDATE repository SET updated = ?2 WHERE id = ?1",
        params![repo, t],
    )?;
    Ok(())
}

fn tag_id(c: &Connection, repo: i64, tag: &str) -> Result<Option<i64>> {
    Ok(
        c.prepare_cached("SELECT id FROM tag WHERE repository = ?1 AND name = ?2")?
            .query_row(params![repo, tag], |r| r.get(0))
            .optional()?,
    )
}

const ROW_COLUMNS: &str =
    "e.kind, e.blob, b.md5, b.size, e.target_repository, e.target_name, e.mtime";

fn entry(c: &Connection, repository: &str, name: &str) -> Result<Option<Row>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM entry e JOIN repository r ON r.id = e.repository
         LEFT JOIN blob b ON b.sha256 = e.blob WHERE r.name = ?1 AND e.name = ?2"
    ))?
    .query_row(params![repository, name], |r| read_row(r, 0))
    .optional()?)
}

fn entry_by_id(c: &Connection, repo: i64, name: &str) -> Result<Option<Row>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM entry e LEFT JOIN blob b ON b.sha256 = e.blob
         WHERE e.repository = ?1 AND e.name = ?2"
    ))?
    .query_row(params![repo, name], |r| read_row(r, 0))
    .optional()?)
}

/// Follows links from `name` of `repository` to a published flist. `None` when the chain
/// ends nowhere (a missing name, a taglink, or a loop).
fn resolve(c: &Connection, repository: &str, name: &str) -> Result<Option<Resolved>> {
    Ok(chain(c, repository, name)?.1)
}

/// A (repository, name) pair a chain of links passes through.
type Hop = (String, String);

/// The names a chain of links passes through, and the flist it ends at.
fn chain(c: &Connection, repository: &str, name: &str) -> Result<(Vec<Hop>, Option<Resolved>)> {
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

fn list(c: &Connection, repository: &str) -> Result<Option<Vec<Listed>>> {
    let Some(repo) = repository_id(c, repository)? else {
        return Ok(None);
    };
    let mut listed = Vec::new();
    let rows: Vec<(String, Row)> = c
        .prepare_cached(&format!(
            "SELECT e.name, {ROW_COLUMNS} FROM entry e LEFT JOIN blob b ON b.sha256 = e.blob
             WHERE e.repository = ?1"
        ))?
        .query_map([repo], |r| Ok((r.get(0)?, read_row(r, 1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, row) in rows {
        let item = match row.kind {
            Kind::Regular => Listed {
                sort_key: name.clone(),
                name,
                kind: Kind::Regular,
                size: row.digest.map(|d| d.size),
                updated: row.mtime,
                linktime: None,
                target: None,
            },
            Kind::Symlink => {
                let resolved = resolve(c, repository, &name)?;
                Listed {
                    sort_key: name.clone(),
                    name,
                    kind: Kind::Symlink,
                    size: resolved.as_ref().map(|r| r.digest.size),
                    updated: resolved.map_or(row.mtime, |r| r.mtime),
                    linktime: Some(row.mtime),
                    target: row.target,
                }
            }
            Kind::Taglink | Kind::Tag => {
                let tag_time = match &row.target {
                    Some(Target::Tag { repository, tag }) => match repository_id(c, repository)? {
                        Some(r) => c
                            .prepare_cached(
                                "SELECT mtime FROM tag WHERE repository = ?1 AND name = ?2",
                            )?
                            .query_row(params![r, tag], |r| r.get(0))
                            .optional()?,
                        None => None,
                    },
                    _ => None,
                };
                Listed {
                    sort_key: name.clone(),
                    name,
                    kind: Kind::Taglink,
                    size: None,
                    updated: tag_time.unwrap_or(row.mtime),
                    linktime: Some(row.mtime),
                    target: row.target,
                }
            }
        };
        listed.push(item);
    }
    let mut stmt = c.prepare_cached("SELECT name, mtime FROM tag WHERE repository = ?1")?;
    let tags = stmt.query_map([repo], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    for tag in tags {
        let (name, mtime) = tag?;
        listed.push(Listed {
            sort_key: format!(".tag-{name}"),
            name,
            kind: Kind::Tag,
            size: None,
            updated: mtime,
            linktime: None,
            target: None,
        });
    }
    listed.sort_by(|a, b| a.sort_key.cmp(&b.sort_key));
    Ok(Some(listed))
}

/// Reads the [`ROW_COLUMNS`] of a statement, which start at column `offset`.
fn read_row(r: &rusqlite::Row<'_>, offset: usize) -> rusqlite::Result<Row> {
    let kind: String = r.get(offset)?;
    let digest = match (
        r.get::<_, Option<String>>(offset + 1)?,
        r.get::<_, Option<String>>(offset + 2)?,
        r.get::<_, Option<i64>>(offset + 3)?,
    ) {
        (Some(sha256), Some(md5), Some(size)) => Some(Digest256 {
            sha256,
            md5,
            size: size as u64,
        }),
        _ => None,
    };
    let kind_enum = match kind.as_str() {
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
    Ok(Row {
        target: Target::from_columns(&kind, r.get(offset + 4)?, r.get(offset + 5)?),
        kind: kind_enum,
        digest,
        mtime: r.get(offset + 6)?,
    })
}

#[allow(clippy::too_many_arguments)]
fn insert_entry(
    tx: &Transaction<'_>,
    repo: i64,
    name: &str,
    kind: &str,
    blob: Option<&str>,
    target: Option<&Target>,
    t: i64,
    actor: &str,
) -> Result<()> {
    let (target_repository, target_name) = match target {
        None => (None, None),
        Some(Target::Local(name)) => (None, Some(name.as_str())),
        Some(Target::Flist { repository, name }) => {
            (Some(repository.as_str()), Some(name.as_str()))
        }
        Some(Target::Tag { repository, tag }) => (Some(repository.as_str()), Some(tag.as_str())),
    };
    tx.execute(
        "INSERT INTO entry (repository, name, kind, blob, target_repository, target_name, mtime, author)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![repo, name, kind, blob, target_repository, target_name, t, actor],
    )?;
    Ok(())
}

fn insert_link(
    tx: &Transaction<'_>,
    repo: i64,
    name: &str,
    target: &Target,
    t: i64,
    actor: &str,
) -> Result<()> {
    let kind = if matches!(target, Target::Tag { .. }) {
        "taglink"
    } else {
        "symlink"
    };
    insert_entry(tx, repo, name, kind, None, Some(target), t, actor)
}

fn remove_entry(tx: &Transaction<'_>, repo: i64, name: &str) -> Result<Option<Row>> {
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
fn free_blob_of(tx: &Transaction<'_>, removed: Option<Row>, freed: &mut Vec<String>) -> Result<()> {
    let Some(Digest256 { sha256, .. }) = removed.and_then(|r| r.digest) else {
        return Ok(());
    };
    let used = tx
        .prepare_cached("SELECT 1 FROM entry WHERE blob = ?1")?
        .exists([&sha256])?;
    if !used {
        tx.execute("DELETE FROM blob WHERE sha256 = ?1", [&sha256])?;
        freed.push(sha256);
    }
    Ok(())
}

/// Makes `link` a symlink to `target`: 0-hub's rules (the target must resolve; a symlink
/// of that name is replaced, a regular flist is not) plus a refusal of loops.
#[allow(clippy::too_many_arguments)]
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
    let (passed, resolved) = chain(tx, &target_repository, &target_name)?;
    if resolved.is_none() {
        return Err(source_not_found());
    }
    let existing = entry_by_id(tx, repo, link)?;
    if existing
        .as_ref()
        .is_some_and(|row| row.kind == Kind::Regular)
    {
        return Err(Error::LinkConflict(
            "link destination is already a file".into(),
        ));
    }
    let this = (repository.to_owned(), link.to_owned());
    if passed.contains(&this)
        || (target_repository.as_str(), target_name.as_str()) == (repository, link)
    {
        return Err(Error::BadRequest(format!(
            "{} would point at itself through its target",
            quote(link)
        )));
    }
    if existing.is_some() {
        remove_entry(tx, repo, link)?; // a link: no file to free
    }
    insert_link(tx, repo, link, target, t, actor)?;
    touch(tx, repo, t)
}

fn audit(
    tx: &Transaction<'_>,
    actor: &str,
    action: &str,
    repository: &str,
    name: Option<&str>,
    detail: Option<&str>,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit (time, actor, action, repository, name, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![now(), actor, action, repository, name, detail])?;
    Ok(())
}
