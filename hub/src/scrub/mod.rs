//! The integrity scrub: every published flist's chunks (a native flist's) and blocks (a
//! hosted 0-flist's or fl's) asked of the store, in batches, each key once per run however
//! many flists name it; deep, each is read, decoded and verified against its key (blocks
//! through their formats' hashes). With a router, each replica's copy is checked and a
//! missing or damaged one rewritten from a copy that verifies (`ChunkStore::scrub`); a key
//! with no sound copy anywhere is lost.
//!
//! Each published file's result is kept (`scrub_result`): verified complete at a time (and
//! whether deep), or the chunks still missing or damaged; `light` shows it (its `scrub`
//! key) and the metrics count it. Damage is logged with the flists it affects.
//!
//! It runs every `[scrub] interval` in `serve`, through `flisthub check`, and through
//! `POST /api/v1/admin/scrub`. Reports are kept in `scrub_run`.

mod record;
mod walk;

use std::sync::Arc;
use std::time::Instant;

use chunkstore::{ChunkStore, Fault, Health};
use serde::{Deserialize, Serialize};

pub use record::Status;

use crate::blobs::Blobs;
use crate::config::{LimitsConfig, ScrubConfig};
use crate::db::{Db, now};
use crate::error::Result;
use crate::names::RepoName;

/// Files with problems a report describes at most (it counts all).
const FILES_SHOWN: usize = 100;

/// A key at fault in a file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyProblem {
    /// `chunk <hex>` or `block <hex>`.
    pub key: String,
    /// `missing` or `damaged`.
    pub fault: String,
    /// Rewritten from a sound copy during the run.
    pub repaired: bool,
}

/// What a run found in one published file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileReport {
    pub sha256: String,
    /// The flists (`<repo>/<name>`) that are this file, at most 10.
    #[serde(default)]
    pub flists: Vec<String>,
    /// Keys it names with no sound copy left: missing, damaged.
    pub missing: u64,
    pub damaged: u64,
    /// Keys it names whose bad copies were rewritten.
    pub repaired: u64,
    /// The first keys at fault.
    pub problems: Vec<KeyProblem>,
}

impl FileReport {
    /// Whether every key it names has a sound copy now.
    pub fn complete(&self) -> bool {
        self.missing + self.damaged == 0
    }
}

/// Keys counted over a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Totals {
    /// Files checked.
    pub flists: u64,
    /// Distinct keys (chunks and blocks) checked.
    pub keys: u64,
    /// Keys found missing (on some copy), or damaged.
    pub missing: u64,
    pub damaged: u64,
    /// Of those, rewritten from a sound copy; with no sound copy left.
    pub repaired: u64,
    pub lost: u64,
}

impl Totals {
    fn count(&mut self, health: Health) {
        let fault = match health {
            Health::Sound => return,
            Health::Repaired(fault) => {
                self.repaired += 1;
                fault
            }
            Health::Lost(fault) => {
                self.lost += 1;
                fault
            }
        };
        match fault {
            Fault::Missing => self.missing += 1,
            Fault::Damaged => self.damaged += 1,
        }
    }
}

/// The report of one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Report {
    /// Every key read and verified, rather than asked about.
    pub deep: bool,
    /// The one repository checked, if the run was limited to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Seconds since the epoch.
    pub started: i64,
    pub duration_ms: u64,
    pub flists_checked: u64,
    pub chunks_checked: u64,
    pub missing: u64,
    pub damaged: u64,
    pub repaired: u64,
    pub lost: u64,
    /// Files with a key lost; files with a key repaired (and none lost).
    pub flists_damaged: u64,
    pub flists_repaired: u64,
    /// The files with a key at fault, repaired or not, at most 100.
    pub files: Vec<FileReport>,
}

/// The scrub of one data directory.
pub struct Scrubber {
    db: Db,
    blobs: Arc<Blobs>,
    /// The store itself: what a scrub reads or rewrites counts as no upload's.
    store: Arc<dyn ChunkStore>,
    limits: LimitsConfig,
    config: ScrubConfig,
    /// One run at a time.
    running: tokio::sync::Mutex<()>,
}

impl Scrubber {
    pub(crate) fn new(
        db: Db,
        blobs: Arc<Blobs>,
        store: Arc<dyn ChunkStore>,
        limits: LimitsConfig,
        config: ScrubConfig,
    ) -> Scrubber {
        Scrubber {
            db,
            blobs,
            store,
            limits,
            config,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// Checks every published file (or those of the flists of `only`), keeps each one's
    /// result and the report, and returns it. One run at a time: a second waits.
    pub async fn run(&self, only: Option<&RepoName>, deep: bool) -> Result<Report> {
        let _running = self.running.lock().await;
        let clock = Instant::now();
        let started = now();
        let only = only.map(|r| r.to_string());
        let files = record::files(&self.db, only.clone()).await?;
        let (blobs, store, limits) = (
            Arc::clone(&self.blobs),
            Arc::clone(&self.store),
            self.limits.clone(),
        );
        let runtime = tokio::runtime::Handle::current();
        let (outcomes, totals) = tokio::task::spawn_blocking(move || {
            let pass = walk::Walk {
                blobs: &blobs,
                limits: &limits,
                store: store.as_ref(),
                runtime,
                deep,
            };
            walk::files(&pass, files)
        })
        .await??;
        let mut report = Report {
            deep,
            repository: only.clone(),
            started,
            flists_checked: totals.flists,
            chunks_checked: totals.keys,
            missing: totals.missing,
            damaged: totals.damaged,
            repaired: totals.repaired,
            lost: totals.lost,
            ..Report::default()
        };
        let at_fault: Vec<FileReport> = outcomes
            .iter()
            .filter(|o| !o.problems.is_empty())
            .cloned()
            .collect();
        record::keep_results(&self.db, outcomes, started, deep, only.is_none()).await?;
        for mut file in at_fault {
            file.flists = record::names(&self.db, &file.sha256).await?;
            match file.complete() {
                true => report.flists_repaired += 1,
                false => report.flists_damaged += 1,
            }
            tracing::warn!(
                sha256 = file.sha256,
                flists = file.flists.join(", "),
                missing = file.missing,
                damaged = file.damaged,
                repaired = file.repaired,
                first = file.problems.first().map(|p| p.key.as_str()),
                "the store lacks or holds damaged chunks of published flists"
            );
            if report.files.len() < FILES_SHOWN {
                report.files.push(file);
            }
        }
        report.duration_ms = clock.elapsed().as_millis() as u64;
        record::keep_report(&self.db, &report).await?;
        self.publish(Some(&report)).await;
        tracing::info!(
            deep,
            flists = report.flists_checked,
            chunks = report.chunks_checked,
            missing = report.missing,
            damaged = report.damaged,
            repaired = report.repaired,
            lost = report.lost,
            duration_ms = report.duration_ms,
            "integrity scrub"
        );
        Ok(report)
    }

    /// The last reports, newest first.
    pub async fn reports(&self, limit: usize) -> Result<Vec<Report>> {
        record::reports(&self.db, limit).await
    }

    /// The last result of the published file `sha256`, if it was ever checked.
    pub async fn status(&self, sha256: &str) -> Result<Option<Status>> {
        record::status(&self.db, sha256).await
    }

    /// Sets the metrics: the files verified and damaged (from every file's last result)
    /// and the last run's figures (`last`, else the newest kept).
    async fn publish(&self, last: Option<&Report>) {
        let published = async {
            let kept;
            let last = match last {
                Some(last) => Some(last),
                None => {
                    kept = self.reports(1).await?;
                    kept.first()
                }
            };
            let (verified, damaged) = record::file_counts(&self.db).await?;
            metrics::gauge!("flisthub_scrub_flists_verified").set(verified as f64);
            metrics::gauge!("flisthub_scrub_flists_damaged").set(damaged as f64);
            if let Some(last) = last {
                let gauges = [
                    ("flisthub_scrub_chunks_checked", last.chunks_checked),
                    ("flisthub_scrub_chunks_missing", last.missing),
                    ("flisthub_scrub_chunks_damaged", last.damaged),
                    ("flisthub_scrub_chunks_repaired", last.repaired),
                    ("flisthub_scrub_chunks_lost", last.lost),
                ];
                for (name, value) in gauges {
                    metrics::gauge!(name).set(value as f64);
                }
                metrics::gauge!("flisthub_scrub_last_run_timestamp_seconds")
                    .set(last.started as f64);
                metrics::gauge!("flisthub_scrub_last_run_duration_seconds")
                    .set(last.duration_ms as f64 / 1000.0);
            }
            Ok::<_, crate::error::Error>(())
        };
        if let Err(e) = published.await {
            tracing::warn!(error = %e, "the scrub's metrics");
        }
    }

    /// Sets the metrics from what is kept, then scrubs every `[scrub] interval` if it is
    /// set; aborted when the hub stops.
    pub(crate) fn schedule(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let scrubber = Arc::clone(self);
        tokio::spawn(async move {
            scrubber.publish(None).await;
            let interval = scrubber.config.interval;
            if interval.is_zero() {
                return;
            }
            loop {
                tokio::time::sleep(interval).await;
                if let Err(e) = scrubber.run(None, scrubber.config.deep).await {
                    tracing::error!(error = %e, "integrity scrub failed");
                }
            }
        })
    }
}
