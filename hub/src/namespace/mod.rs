//! The repository namespace: repositories, flists, symlinks, crosslinks, tags and taglinks,
//! with 0-hub's rules (reference sections 3 and 5.3) and its holes closed.
//!
//! * [`Change`] is a change as a value, and [`change::apply`] the one function that makes
//!   it, inside a transaction, at a time it is given; `rules` holds 0-hub's rules for each
//!   kind, `sql` the rows, `log` the change log every applied change is appended to.
//! * `read` answers 0-hub's listings and `light`, through a cache emptied by every change.
//!
//! Links are stored as what they name, as a filesystem symlink would be, and resolved when
//! read: a link to a re-published flist follows it, a link whose target is gone dangles.
//! `updated` of a link is its target's time, `linktime` its own, as 0-hub computes them;
//! here they are stored times, not file times.
//!
//! Every change is one transaction on the database writer. The files a change adds or frees
//! are moved into place before its commit and removed after it, while the writer lock is
//! still held, so a publish and a delete of the same content cannot cross.

mod cache;
pub mod change;
mod log;
mod read;
mod retained;
mod rules;
pub(crate) mod share;
mod source;
mod sql;
mod stored;
mod summary;
pub(crate) mod unused;
mod views;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use hubapi::changes::ChangeRecord;

use crate::blobs::{Blobs, Staged};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::facts::Facts;
use crate::formats::Format;
use crate::names::{FlistName, RepoName, TagName, TaglinkName};
use cache::InfoCache;
pub use change::{Applied, Change};
pub use retained::Held;
pub use share::Share;
pub use source::Source;
pub(crate) use sql::{blob_known, drop_rendition, insert_file};
pub use stored::{Stored, StoredEntry};
pub use summary::{Hit, Referrer, RepositoryFigures, Totals};

/// What [`Namespace::page`] reads.
#[derive(Debug, Clone)]
pub struct Page {
    pub facts: Facts,
    /// Who made the entry asked for (a link's maker, for a link).
    pub author: Option<String>,
    pub referrers: Vec<Referrer>,
    /// How the flist it resolves to came in, when recorded.
    pub source: Option<Source>,
    /// Share figures of its file (native files published by this version or filled at
    /// start).
    pub share: Option<Share>,
}
pub use views::{Info, Kind, Listed, Resolved, Target, shown};

pub struct Namespace {
    db: Db,
    blobs: Arc<Blobs>,
    cache: Arc<InfoCache>,
    /// The database's `data_version` when the cache was last checked against it: another
    /// process (`flisthub import-0hub` beside a running hub) commits without this one
    /// knowing, and a new version empties the cache.
    seen_version: AtomicI64,
}

impl Namespace {
    pub fn new(db: Db, blobs: Arc<Blobs>) -> Namespace {
        Namespace {
            db,
            blobs,
            cache: Arc::default(),
            seen_version: AtomicI64::new(-1),
        }
    }

    /// Empties the cache when the database changed since it was last looked at, whoever
    /// changed it. A failure to tell empties it too.
    fn follow_other_writers(&self) {
        let version = self.db.data_version().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the database's data version");
            -2
        });
        if version < 0 || self.seen_version.swap(version, Ordering::SeqCst) != version {
            self.cache.clear();
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
        open: impl Fn(&Path) -> Result<T> + Send + Sync + 'static,
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
                Err(_) if !path.exists() => {}
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
        self.db.read(read::repositories).await
    }

    /// `repo/entry` for every entry of every repository, tags as `repo/.tag-name`, in
    /// 0-hub's on-disk order.
    pub async fn all_entries(&self) -> Result<Vec<String>> {
        self.db.read(read::all_entries).await
    }

    /// A repository's entries and tags, or `None` if there is no such repository.
    pub async fn list(&self, repository: &RepoName) -> Result<Option<Vec<Listed>>> {
        let repository = repository.clone();
        self.db.read(move |c| read::list(c, &repository)).await
    }

    /// Every repository's listing, for `/api/fileslist`.
    pub async fn list_all(&self) -> Result<Vec<(String, Vec<Listed>)>> {
        self.db
            .read(|c| {
                read::repositories(c)?
                    .into_iter()
                    .map(|(name, _)| {
                        let listed = read::list(c, &name)?.unwrap_or_default();
                        Ok((name, listed))
                    })
                    .collect()
            })
            .await
    }

    /// The members of a tag.
    pub async fn list_tag(&self, repository: &RepoName, tag: &TagName) -> Result<Vec<Listed>> {
        let (repository, tag) = (repository.clone(), tag.clone());
        self.db
            .read(move |c| read::list_tag(c, &repository, &tag))
            .await
    }

    /// What `light` shows of `name`.
    pub async fn info(&self, repository: &RepoName, name: &FlistName) -> Result<Info> {
        self.follow_other_writers();
        let key = (repository.to_string(), name.to_string());
        let generation = match self.cache.get(&key) {
            Ok(info) => return Ok(info),
            Err(generation) => generation,
        };
        let (repository, name) = key.clone();
        let info = self
            .db
            .read(move |c| read::info(c, &repository, &name))
            .await?;
        self.cache.put(key, generation, &info);
        Ok(info)
    }

    /// The flist `name` of `repository` resolves to, for downloads and reading it.
    /// Errors are 0-hub's: `user not found`, `source not found`.
    pub async fn resolve(&self, repository: &RepoName, name: &FlistName) -> Result<Resolved> {
        self.info(repository, name)
            .await?
            .resolved
            .ok_or_else(sql::source_not_found)
    }

    /// The flist member `name` of a tag resolves to.
    pub async fn resolve_in_tag(
        &self,
        repository: &RepoName,
        tag: &TagName,
        name: &FlistName,
    ) -> Result<Resolved> {
        let (repository, tag, name) = (repository.clone(), tag.clone(), name.clone());
        self.db
            .read(move |c| read::resolve_in_tag(c, &repository, &tag, &name))
            .await
    }

    /// The tag a taglink points at.
    pub async fn taglink(&self, repository: &RepoName, name: &TaglinkName) -> Result<Target> {
        let (repository, name) = (repository.clone(), name.clone());
        self.db
            .read(move |c| read::taglink(c, &repository, &name))
            .await
    }

    /// Drops every kept answer, for what changes them outside a namespace change (the
    /// renditions of a file, once made).
    pub(crate) fn forget_answers(&self) {
        self.cache.clear();
    }

    /// A number that changes with every change of the namespace: what was read under one
    /// value may be kept and shown until it changes.
    pub fn generation(&self) -> u64 {
        self.follow_other_writers();
        self.cache.generation()
    }

    /// Every repository with its figures, by name.
    pub async fn repository_figures(&self) -> Result<Vec<RepositoryFigures>> {
        self.db.read(summary::repository_figures).await
    }

    /// Figures of the whole hub.
    pub async fn totals(&self) -> Result<Totals> {
        self.db.read(summary::totals).await
    }

    /// Repositories, names and tags containing `text`.
    pub async fn search(&self, text: &str, offset: u64, limit: u64) -> Result<Vec<Hit>> {
        let text = text.to_owned();
        self.db
            .read(move |c| summary::search(c, &text, offset, limit))
            .await
    }

    /// What an flist's page shows beyond its name, in one read: the facts of the file
    /// `resolved` names, where that entry came from, who made the entry asked for (a link's
    /// maker, for a link), what points at the flist, and its share figures.
    pub async fn page(&self, asked: (&RepoName, &FlistName), resolved: &Resolved) -> Result<Page> {
        let asked = (asked.0.to_string(), asked.1.to_string());
        let (repository, name) = (resolved.repository.clone(), resolved.name.clone());
        let sha256 = resolved.digest.sha256.clone();
        let (json, author, referrers, source, share) = self
            .db
            .read(move |c| {
                Ok((
                    sql::facts(c, &sha256)?,
                    summary::author(c, &asked.0, &asked.1)?,
                    summary::referrers(c, &repository, &name)?,
                    sql::source(c, &repository, &name)?,
                    share::share(c, &sha256)?,
                ))
            })
            .await?;
        let json =
            json.ok_or_else(|| Error::Internal("a published flist without its facts".into()))?;
        Ok(Page {
            facts: Facts::from_json(&json)?,
            author,
            referrers,
            source,
            share,
        })
    }

    /// The facts of the published file `sha256`.
    pub async fn facts(&self, sha256: &str) -> Result<Facts> {
        let sha256 = sha256.to_owned();
        let json = self
            .db
            .read(move |c| sql::facts(c, &sha256))
            .await?
            .ok_or_else(|| Error::Internal("a published flist without its facts".into()))?;
        Facts::from_json(&json)
    }

    /// Folds the names of repositories made before folded names were kept (see
    /// [`crate::names::fold`]); the names that could not be, because an older one folds
    /// alike. Run at start.
    pub async fn fill_missing_folds(&self) -> Result<Vec<String>> {
        self.db.write(|conn| sql::fill_missing_folds(conn)).await
    }

    /// Records the facts of files published before they were kept, read by `read` from
    /// each file. Run at start.
    pub async fn fill_missing_facts(
        &self,
        read: impl Fn(&Path, Format) -> Result<Facts> + Send + 'static,
    ) -> Result<usize> {
        let blobs = Arc::clone(&self.blobs);
        self.db
            .write(move |conn| {
                let missing = sql::blobs_without_facts(conn)?;
                for (sha, format) in &missing {
                    let facts = read(&blobs.path(sha), *format)?;
                    sql::put_facts(conn, sha, &facts.to_json())?;
                }
                Ok(missing.len())
            })
            .await
    }

    /// Records the contents of native files published before they were kept (see
    /// [`share`]), read by `read` from each file. Run at start.
    pub async fn fill_missing_shares(
        &self,
        read: impl Fn(&Path) -> Result<Vec<share::ContentSize>> + Send + 'static,
    ) -> Result<usize> {
        let blobs = Arc::clone(&self.blobs);
        self.db
            .write(move |conn| {
                let missing = share::files_without(conn)?;
                for sha in &missing {
                    let contents = read(&blobs.path(sha))?;
                    let tx = conn.transaction()?;
                    share::record(&tx, sha, &contents)?;
                    tx.commit()?;
                }
                Ok(missing.len())
            })
            .await
    }

    /// What `repository` holds, or `None` if there is no such repository.
    pub async fn stored(&self, repository: &RepoName) -> Result<Option<Stored>> {
        let repository = repository.clone();
        self.db.read(move |c| stored::read(c, &repository)).await
    }

    /// Sets the time of `repository` and of its `tags` (each a time 0-hub showed), outside
    /// the change log: times are not changes. Whether anything changed.
    pub async fn set_times(
        &self,
        repository: &RepoName,
        updated: i64,
        tags: Vec<(TagName, i64)>,
    ) -> Result<bool> {
        let repository = repository.clone();
        let cache = Arc::clone(&self.cache);
        self.db
            .write(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let tags: Vec<(String, i64)> =
                    tags.into_iter().map(|(t, m)| (t.to_string(), m)).collect();
                let changed = stored::set_times(&tx, &repository, updated, &tags)?;
                tx.commit()?;
                cache.clear();
                Ok(changed)
            })
            .await
    }

    /// The flists of `repository` as retention judges them (see [`Held`]), newest first;
    /// `None` if there is no such repository.
    pub async fn held(&self, repository: &str) -> Result<Option<Vec<Held>>> {
        let repository = repository.to_owned();
        self.db.read(move |c| retained::held(c, &repository)).await
    }

    /// Up to `limit` records of the change log after sequence number `after`.
    pub async fn changes(&self, after: u64, limit: usize) -> Result<Vec<ChangeRecord>> {
        self.db.read(move |c| log::read(c, after, limit)).await
    }

    // ----- changes -----

    /// Applies `change` as `actor` at `time` in one transaction; see [`change::apply`].
    pub async fn apply(&self, change: Change, actor: &str, time: i64) -> Result<Applied> {
        self.run(change, None, actor, time).await
    }

    /// Publishes a staged flist file as `name` of `repository` (created if needed),
    /// replacing whatever had that name.
    pub async fn publish(
        &self,
        repository: RepoName,
        name: FlistName,
        staged: Staged,
        (facts, contents): (Facts, Vec<share::ContentSize>),
        source: Source,
        (actor, time): (&str, i64),
    ) -> Result<Applied> {
        let change = Change::Publish {
            repository,
            name,
            file: staged.digest.clone(),
            facts,
            source,
            contents,
        };
        self.run(change, Some(staged), actor, time).await
    }

    /// Runs one change on the writer: the staged file (if any) is moved into place before
    /// the commit; after it, the cache is emptied and the files the change freed removed,
    /// still under the writer lock.
    async fn run(
        &self,
        change: Change,
        staged: Option<Staged>,
        actor: &str,
        time: i64,
    ) -> Result<Applied> {
        let (blobs, cache) = (Arc::clone(&self.blobs), Arc::clone(&self.cache));
        let actor = actor.to_owned();
        self.db
            .write(move |conn| {
                // IMMEDIATE: the write lock is taken at the start, so the busy timeout covers
                // a writer in another process; a deferred transaction would fail instead.
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                if let Some(staged) = staged {
                    blobs.place(staged)?;
                }
                let applied = change::apply(&tx, &change, &actor, time)?;
                tx.commit()?;
                // Before the files go: no answer naming a freed file survives it.
                cache.clear();
                for sha in &applied.freed {
                    blobs.remove(sha);
                }
                Ok(applied)
            })
            .await
    }

    /// Removes files of the flist store that no row names: what a crash between a file move
    /// and its commit, or between a commit and a file removal, can leave. Run at start.
    pub async fn sweep_unused_files(&self) -> Result<usize> {
        let how = unused::Sweep {
            kept_since: None,
            dry_run: false,
        };
        Ok(unused::sweep(&self.db, &self.blobs, how).await?.gone.len())
    }
}
