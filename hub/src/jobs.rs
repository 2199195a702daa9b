//! Long work that outlives its request (uploads converted in the background, image
//! conversions), with state in the database and live progress in memory.
//!
//! A running job's state sits in a `watch` channel: every listener sees the latest state
//! and the ones after it, as many listeners as like, and a job nobody listens to keeps one
//! value, not a queue (0-hub's queue split messages between listeners and grew without
//! bound). The database holds each job's state transitions, its phases and its outcome, so
//! a finished job can still be asked about, and a restart marks the jobs it interrupted as
//! failed. A running job can be cancelled by its owner.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::db::{Db, now};
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> State {
        match text {
            "queued" => State::Queued,
            "running" => State::Running,
            "succeeded" => State::Succeeded,
            "cancelled" => State::Cancelled,
            _ => State::Failed,
        }
    }

    pub fn finished(self) -> bool {
        matches!(self, State::Succeeded | State::Failed | State::Cancelled)
    }
}

/// What is known of a job.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    pub id: String,
    pub kind: String,
    /// The user who started it.
    pub owner: String,
    pub repository: String,
    /// The flist it makes.
    pub name: String,
    pub state: State,
    /// 0 to 100, and what is being done.
    pub progress: u8,
    pub message: String,
    /// What the job was asked (an image conversion's image and platform).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<serde_json::Value>,
    pub created: i64,
    pub started: Option<i64>,
    pub finished: Option<i64>,
    /// On success: 0-hub's `info` object (`filename`, `flist` statistics).
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
}

#[derive(Clone)]
pub struct Jobs {
    db: Db,
    live: Arc<Mutex<HashMap<String, Live>>>,
}

/// A job running in this process: its state for listeners, and how to stop it.
struct Live {
    tx: watch::Sender<JobStatus>,
    cancel: CancellationToken,
}

/// Why a job could not be cancelled.
#[derive(Debug, PartialEq, Eq)]
pub enum CancelRefused {
    NotFound,
    NotOwner,
    Finished(State),
    /// Only image conversions stop when asked.
    NotCancellable,
}

impl From<CancelRefused> for crate::error::Error {
    fn from(refused: CancelRefused) -> Self {
        use crate::error::Error;
        match refused {
            CancelRefused::NotFound => Error::NotFound("job id not found".into()),
            CancelRefused::NotOwner => Error::Forbidden("this job is another user's".into()),
            CancelRefused::NotCancellable => {
                Error::Conflict("only image conversions can be cancelled".into())
            }
            CancelRefused::Finished(state) => {
                Error::Conflict(format!("the job has already ended ({})", state.as_str()))
            }
        }
    }
}

impl Jobs {
    pub fn new(db: Db) -> Jobs {
        Jobs {
            db,
            live: Arc::default(),
        }
    }

    /// Records a new queued job; `request` says what it was asked to do.
    pub async fn create(
        &self,
        kind: &str,
        owner: &str,
        repository: &str,
        name: &str,
        request: Option<serde_json::Value>,
    ) -> Result<Job> {
        let status = JobStatus {
            id: uuid::Uuid::new_v4().to_string(),
            kind: kind.into(),
            owner: owner.into(),
            repository: repository.into(),
            name: name.into(),
            state: State::Queued,
            progress: 0,
            message: "Queued".into(),
            request,
            created: now(),
            started: None,
            finished: None,
            result: None,
            error: None,
        };
        let row = status.clone();
        self.db
            .write(move |c| {
                c.execute(
                    "INSERT INTO job (id, kind, owner, repository, name, state, created, message, request) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        row.id, row.kind, row.owner, row.repository, row.name, row.state.as_str(),
                        row.created, row.message, row.request.as_ref().map(|r| r.to_string())
                    ],
                )?;
                Ok(())
            })
            .await?;
        let (tx, _) = watch::channel(status.clone());
        let cancel = CancellationToken::new();
        let live = Live {
            tx: tx.clone(),
            cancel: cancel.clone(),
        };
        self.lock().insert(status.id.clone(), live);
        Ok(Job {
            jobs: self.clone(),
            tx,
            cancel,
            finished: false,
        })
    }

    /// Follows a running job; `None` if it is not running in this process.
    pub fn subscribe(&self, id: &str) -> Option<watch::Receiver<JobStatus>> {
        self.lock().get(id).map(|live| live.tx.subscribe())
    }

    /// Asks job `id` of `owner` to stop; it ends as `cancelled` soon after.
    pub async fn cancel(&self, id: &str, owner: &str) -> Result<(), CancelRefused> {
        if let Some(live) = self.lock().get(id) {
            let status = live.tx.borrow();
            if status.owner != owner {
                return Err(CancelRefused::NotOwner);
            }
            if status.kind != "docker" {
                return Err(CancelRefused::NotCancellable);
            }
            drop(status);
            live.cancel.cancel();
            return Ok(());
        }
        match self.get(id).await {
            Ok(Some(status)) if status.owner != owner => Err(CancelRefused::NotOwner),
            Ok(Some(status)) => Err(CancelRefused::Finished(status.state)),
            _ => Err(CancelRefused::NotFound),
        }
    }

    /// The current state of a job, live or recorded.
    pub async fn get(&self, id: &str) -> Result<Option<JobStatus>> {
        if let Some(rx) = self.subscribe(id) {
            return Ok(Some(rx.borrow().clone()));
        }
        let id = id.to_owned();
        self.db
            .read(move |c| {
                Ok(
                    c.prepare_cached(&format!("SELECT {COLUMNS} FROM job WHERE id = ?1"))?
                        .query_row([id], read_status)
                        .optional()?,
                )
            })
            .await
    }

    /// The jobs of `owner`, newest first (`created` is in seconds: jobs of the same second
    /// in the order they were made, which the rowid keeps).
    pub async fn list(&self, owner: &str, limit: usize) -> Result<Vec<JobStatus>> {
        let owner = owner.to_owned();
        let mut jobs: Vec<JobStatus> = self
            .db
            .read(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM job WHERE owner = ?1 ORDER BY created DESC, rowid DESC LIMIT ?2"
                ))?;
                let rows = stmt.query_map(params![owner, limit as i64], read_status)?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await?;
        for job in &mut jobs {
            if let Some(rx) = self.subscribe(&job.id) {
                *job = rx.borrow().clone();
            }
        }
        Ok(jobs)
    }

    /// Marks jobs left queued or running by an earlier process as failed (they keep the
    /// phase they were in). Run at start.
    pub async fn fail_interrupted(&self) -> Result<usize> {
        self.db
            .write(|c| {
                Ok(c.execute(
                    "UPDATE job SET state = 'failed', finished = ?1, error = 'interrupted: the hub stopped while this job ran'
                     WHERE state IN ('queued', 'running')",
                    [now()],
                )?)
            })
            .await
    }

    /// Forgets jobs finished longer than `retention` ago.
    pub async fn expire(&self, retention: Duration) -> Result<usize> {
        let before = now() - retention.as_secs() as i64;
        self.db
            .write(move |c| Ok(c.execute("DELETE FROM job WHERE finished < ?1", [before])?))
            .await
    }

    /// How many jobs run in this process.
    pub fn running(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

const COLUMNS: &str = "id, kind, owner, repository, name, state, created, started, finished, result, error, progress, message, request";

fn read_status(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobStatus> {
    let state = State::parse(&r.get::<_, String>(5)?);
    let result: Option<String> = r.get(9)?;
    Ok(JobStatus {
        id: r.get(0)?,
        kind: r.get(1)?,
        owner: r.get(2)?,
        repository: r.get(3)?,
        name: r.get(4)?,
        state,
        progress: r.get::<_, i64>(11)?.clamp(0, 100) as u8,
        message: r.get(12)?,
        request: r
            .get::<_, Option<String>>(13)?
            .and_then(|r| serde_json::from_str(&r).ok()),
        created: r.get(6)?,
        started: r.get(7)?,
        finished: r.get(8)?,
        result: result.and_then(|r| serde_json::from_str(&r).ok()),
        error: r.get(10)?,
    })
}

/// A job being run. Finish it with [`Job::succeed`] or [`Job::fail`]; dropped unfinished
/// (its task panicked or was cancelled), it is recorded as failed.
/// The message of a job that succeeded: 0-hub's last progress event.
pub const FINISHED_MESSAGE: &str = "Image ready !";

pub struct Job {
    jobs: Jobs,
    tx: watch::Sender<JobStatus>,
    cancel: CancellationToken,
    finished: bool,
}

impl Job {
    pub fn id(&self) -> String {
        self.tx.borrow().id.clone()
    }

    /// Cancelled when the owner asks the job to stop.
    pub fn cancelled(&self) -> &CancellationToken {
        &self.cancel
    }

    pub async fn start(&self) -> Result<()> {
        self.start_with("Started").await
    }

    /// Marks the job running, in its first phase.
    pub async fn start_with(&self, message: &str) -> Result<()> {
        let started = now();
        self.tx.send_modify(|s| {
            s.state = State::Running;
            s.started = Some(started);
            s.progress = 0;
            s.message = message.into();
        });
        let (id, message) = (self.id(), message.to_owned());
        self.jobs
            .db
            .write(move |c| {
                c.execute(
                    "UPDATE job SET state = 'running', started = ?2, progress = 0, message = ?3 WHERE id = ?1",
                    params![id, started, message],
                )?;
                Ok(())
            })
            .await
    }

    /// A new phase of the job: shown live and recorded (what a restart leaves to see).
    pub async fn phase(&self, percent: u8, message: String) {
        self.progress(percent, message.clone());
        let id = self.id();
        let recorded = self
            .jobs
            .db
            .write(move |c| {
                c.execute(
                    "UPDATE job SET progress = ?2, message = ?3 WHERE id = ?1",
                    params![id, percent.min(100), message],
                )?;
                Ok(())
            })
            .await;
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "recording a job's phase");
        }
    }

    /// Live progress; listeners are woken only when the percentage or message changes.
    pub fn progress(&self, percent: u8, message: String) {
        self.tx.send_if_modified(|s| {
            let changed = s.progress != percent || s.message != message;
            s.progress = percent.min(100);
            s.message = message;
            changed
        });
    }

    pub async fn succeed(mut self, result: serde_json::Value) -> Result<()> {
        self.finish(State::Succeeded, Some(result), None).await
    }

    pub async fn fail(mut self, error: String) -> Result<()> {
        self.finish(State::Failed, None, Some(error)).await
    }

    pub async fn cancel(mut self, why: String) -> Result<()> {
        self.finish(State::Cancelled, None, Some(why)).await
    }

    async fn finish(
        &mut self,
        state: State,
        result: Option<serde_json::Value>,
        error: Option<String>,
    ) -> Result<()> {
        self.finished = true;
        let finished = now();
        let id = self.id();
        let result_json = result.as_ref().map(|r| r.to_string());
        let error_text = error.clone();
        let (progress, message) = if state == State::Succeeded {
            // What the last event of `/listen` says too.
            (100, FINISHED_MESSAGE.to_owned())
        } else {
            // The phase it ended in: live progress is not recorded as it goes.
            let live = self.tx.borrow();
            (live.progress, live.message.clone())
        };
        let recorded_message = message.clone();
        let recorded = self
            .jobs
            .db
            .write(move |c| {
                c.execute(
                    "UPDATE job SET state = ?2, finished = ?3, result = ?4, error = ?5, progress = ?6, message = ?7 WHERE id = ?1",
                    params![id, state.as_str(), finished, result_json, error_text, progress, recorded_message],
                )?;
                Ok(())
            })
            .await;
        // Listeners see the outcome even if recording it failed.
        self.tx.send_modify(|s| {
            s.state = state;
            s.finished = Some(finished);
            s.progress = progress;
            s.message = message;
            s.result = result;
            s.error = error;
        });
        self.jobs.lock().remove(&self.id());
        recorded
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let id = self.id();
        let message = self.tx.borrow().message.clone();
        self.tx.send_modify(|s| {
            s.state = State::Failed;
            s.error = Some("the job stopped unexpectedly".into());
        });
        self.jobs.lock().remove(&id);
        let db = self.jobs.db.clone();
        let record = move || {
            db.write_now(|c| {
                c.execute(
                    "UPDATE job SET state = 'failed', finished = ?2, message = ?3, error = 'the job stopped unexpectedly' WHERE id = ?1",
                    params![id, now(), message],
                )?;
                Ok(())
            })
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(record);
            }
            Err(_) => {
                let _ = record();
            }
        }
    }
}
