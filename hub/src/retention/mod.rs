//! Retention policies: per repository, which flists the hub deletes by itself. A policy
//! keeps the newest `keep` flists and/or those published within `max-age`
//! ([`Policy::expires`]); an flist a symlink (of any repository) or a tag member names is
//! never deleted, whatever points at that link in turn (a chain of links, a taglink's tag).
//!
//! A repository's policy is the one set through the admin API, else the configuration's
//! for it (`[retention.repositories]`), else the configuration's default.
//!
//! Each deletion is a [`Change::Expire`]: the namespace's delete, in its own transaction,
//! which checks again that the flist is the file the run judged and that nothing links to
//! it (a link made meanwhile keeps it), and records a `delete` in the change log whose
//! `reason` names the policy. The chunks it frees go at the garbage collector's next run,
//! by its own rules: retention only changes the namespace.
//!
//! It runs every `[retention] interval` in `serve`, through `flisthub retention`, and
//! through `POST /api/v1/admin/retention`; a dry run deletes nothing and lists exactly
//! what a run would delete now.

mod policy;

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use policy::{Assigned, Origin, Policy};

use crate::config::RetentionConfig;
use crate::db::{Db, now};
use crate::error::{Error, Result};
use crate::names::{FlistName, RepoName, quote};
use crate::namespace::{Change, Namespace};

/// Who the change log names for deletions nobody asked for by name (the schedule, the
/// command through the data directory's socket).
pub const ACTOR: &str = "retention";

/// What a run did in one repository.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RepositoryReport {
    pub repository: String,
    /// The policy applied, and the reason recorded with each deletion.
    pub policy: String,
    /// Flists it held when the run began.
    pub flists: u64,
    /// Deleted (a dry run: would be), as listed.
    pub deleted: Vec<String>,
    /// Kept only because something links to them.
    pub kept_linked: Vec<String>,
    /// Linked or changed between the run's read and its delete: kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
}

/// The report of one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Report {
    pub dry_run: bool,
    /// Seconds since the epoch.
    pub started: i64,
    pub duration_ms: u64,
    /// Flists deleted in all (a dry run: would be).
    pub deleted: u64,
    /// Every repository with a policy, by name.
    pub repositories: Vec<RepositoryReport>,
}

/// Every policy in force.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Policies {
    /// The configuration's default, for repositories without a policy of their own.
    pub default: Option<Policy>,
    /// The policies of named repositories (API or configuration), by name.
    pub repositories: Vec<Assigned>,
}

pub struct Retention {
    db: Db,
    namespace: Arc<Namespace>,
    config: RetentionConfig,
    /// A read-only hub (a mirror) deletes nothing by itself.
    readonly: bool,
    /// One run at a time.
    running: tokio::sync::Mutex<()>,
}

impl Retention {
    pub(crate) fn new(
        db: Db,
        namespace: Arc<Namespace>,
        config: RetentionConfig,
        readonly: bool,
    ) -> Retention {
        Retention {
            db,
            namespace,
            config,
            readonly,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// The policy of `repository`, and where it comes from; `None` when none applies.
    pub async fn policy(&self, repository: &RepoName) -> Result<Option<Assigned>> {
        let name = repository.to_string();
        let set = self.db.read(move |c| policy::read(c, &name)).await?;
        Ok(self.assign(repository, set))
    }

    fn assign(&self, repository: &str, set: Option<Policy>) -> Option<Assigned> {
        let (policy, origin) = match set {
            Some(policy) => (policy, Origin::Api),
            None => match self.config.repositories.get(repository) {
                Some(policy) => (*policy, Origin::Config),
                None => (self.config.default?, Origin::Default),
            },
        };
        Some(Assigned {
            repository: repository.to_owned(),
            policy,
            origin,
        })
    }

    /// Every policy in force: the default and those of named repositories.
    pub async fn policies(&self) -> Result<Policies> {
        let set = self.db.read(policy::read_all).await?;
        let mut named: std::collections::BTreeMap<String, Assigned> = self
            .config
            .repositories
            .iter()
            .map(|(repository, policy)| {
                let assigned = Assigned {
                    repository: repository.clone(),
                    policy: *policy,
                    origin: Origin::Config,
                };
                (repository.clone(), assigned)
            })
            .collect();
        for (repository, policy) in set {
            let assigned = Assigned {
                repository: repository.clone(),
                policy,
                origin: Origin::Api,
            };
            named.insert(repository, assigned);
        }
        Ok(Policies {
            default: self.config.default,
            repositories: named.into_values().collect(),
        })
    }

    /// Sets the policy of `repository` (which need not exist yet), in place of the
    /// configuration's.
    pub async fn set(&self, repository: &RepoName, policy: Policy, actor: &str) -> Result<()> {
        let (repository, actor) = (repository.to_string(), actor.to_owned());
        self.db
            .write(move |c| policy::write(c, &repository, &policy, &actor, now()))
            .await
    }

    /// Removes the policy set through the API for `repository` (the configuration's
    /// applies again); whether there was one.
    pub async fn unset(&self, repository: &RepoName) -> Result<bool> {
        let repository = repository.to_string();
        self.db.write(move |c| policy::remove(c, &repository)).await
    }

    /// Applies the policies (of `only`, or of every repository), as `actor`; a dry run
    /// deletes nothing and lists what would go. One run at a time: a second waits.
    pub async fn run(&self, only: Option<&RepoName>, dry_run: bool, actor: &str) -> Result<Report> {
        if self.readonly && !dry_run {
            return Err(Error::Forbidden(
                "this hub is read-only (server.readonly): retention deletes nothing".into(),
            ));
        }
        let _running = self.running.lock().await;
        let clock = Instant::now();
        let mut report = Report {
            dry_run,
            started: now(),
            ..Report::default()
        };
        let repositories: Vec<String> = match only {
            Some(repository) => vec![repository.to_string()],
            None => self
                .namespace
                .repositories()
                .await?
                .into_iter()
                .map(|(name, _)| name)
                .collect(),
        };
        let set: std::collections::HashMap<String, Policy> =
            self.db.read(policy::read_all).await?.into_iter().collect();
        for repository in repositories {
            let Some(assigned) = self.assign(&repository, set.get(&repository).copied()) else {
                if only.is_some() {
                    return Err(Error::NotFound(format!(
                        "no retention policy applies to {}",
                        quote(&repository)
                    )));
                }
                continue;
            };
            let done = self.apply(&assigned, dry_run, actor).await?;
            report.deleted += done.deleted.len() as u64;
            report.repositories.push(done);
        }
        report.duration_ms = clock.elapsed().as_millis() as u64;
        if report.deleted > 0 || !dry_run {
            tracing::info!(
                dry_run,
                deleted = report.deleted,
                repositories = report.repositories.len(),
                duration_ms = report.duration_ms,
                "retention"
            );
        }
        Ok(report)
    }

    /// Applies one repository's policy.
    async fn apply(
        &self,
        assigned: &Assigned,
        dry_run: bool,
        actor: &str,
    ) -> Result<RepositoryReport> {
        let reason = assigned.reason();
        let held = self
            .namespace
            .held(&assigned.repository)
            .await?
            .unwrap_or_default();
        let mut done = RepositoryReport {
            repository: assigned.repository.clone(),
            policy: reason.clone(),
            flists: held.len() as u64,
            ..RepositoryReport::default()
        };
        let t = now();
        for (rank, flist) in held.into_iter().enumerate() {
            if !assigned.policy.expires(rank, flist.mtime, t) {
                continue;
            }
            if flist.linked {
                done.kept_linked.push(flist.shown);
                continue;
            }
            if dry_run {
                done.deleted.push(flist.shown);
                continue;
            }
            let change = Change::Expire {
                repository: RepoName::stored(&assigned.repository),
                name: FlistName::stored(&flist.name),
                sha256: flist.sha256,
                reason: reason.clone(),
            };
            match self.namespace.apply(change, actor, now()).await {
                Ok(_) => done.deleted.push(flist.shown),
                // Linked or re-published since it was read, or its repository is gone.
                Err(Error::Conflict(_) | Error::NotFound(_)) => done.changed.push(flist.shown),
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Applies the policies every `[retention] interval`, if it is set and the hub is not
    /// read-only; aborted when the hub stops.
    pub(crate) fn schedule(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let interval = self.config.interval;
        if interval.is_zero() || self.readonly {
            return None;
        }
        let retention = Arc::clone(self);
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                if let Err(e) = retention.run(None, false, ACTOR).await {
                    tracing::error!(error = %e, "retention failed");
                }
            }
        }))
    }
}
