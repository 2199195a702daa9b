//! Health: whether the database and each chunk store backend answer.

use std::sync::Arc;
use std::time::Duration;

use chunkstore::ChunkStore;
use serde::Serialize;

use crate::db::Db;
use crate::jobs::Jobs;

/// How long a backend may take to answer a health probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The hub's health, as `/api/v1/health` answers it.
#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
    pub readonly: bool,
    pub database: Check,
    pub store: Vec<BackendCheck>,
    pub jobs_running: usize,
}

impl Health {
    pub fn ok(&self) -> bool {
        self.database.ok && self.store.iter().all(|b| b.ok)
    }
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct BackendCheck {
    pub location: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub struct Status {
    db: Db,
    store: Arc<dyn ChunkStore>,
    jobs: Jobs,
}

impl Status {
    pub(crate) fn new(db: Db, store: Arc<dyn ChunkStore>, jobs: Jobs) -> Status {
        Status { db, store, jobs }
    }

    /// Asks the database and every store backend.
    pub async fn health(&self, readonly: bool) -> Health {
        let database = match self
            .db
            .read(|c| {
                Ok(c.query_row("SELECT count(*) FROM repository", [], |r| {
                    r.get::<_, i64>(0)
                })?)
            })
            .await
        {
            Ok(_) => Check {
                ok: true,
                error: None,
            },
            Err(e) => Check {
                ok: false,
                error: Some(e.to_string()),
            },
        };
        let store = match tokio::time::timeout(PROBE_TIMEOUT, self.store.probe()).await {
            Ok(probes) => probes
                .into_iter()
                .map(|(location, result)| BackendCheck {
                    location,
                    ok: result.is_ok(),
                    error: result.err().map(|e| e.to_string()),
                })
                .collect(),
            Err(_) => vec![BackendCheck {
                location: self.store.location().to_owned(),
                ok: false,
                error: Some(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
            }],
        };
        let mut health = Health {
            status: "ok",
            version: env!("CARGO_PKG_VERSION"),
            readonly,
            database,
            store,
            jobs_running: self.jobs.running(),
        };
        if !health.ok() {
            health.status = "degraded";
        }
        health
    }

    /// Where the store is, for the log.
    pub fn store_location(&self) -> &str {
        self.store.location()
    }
}
