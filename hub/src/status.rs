//! Health: whether the database and each chunk store backend answer, and whether the store
//! takes writes.
//!
//! Anyone may ask (load balancers, monitoring), so the public answer names components
//! neutrally (`database`, `store 1`) with a state from a fixed set; where a backend is and
//! what went wrong (hosts, paths, the error's own text) only administrators see.

use std::sync::Arc;
use std::time::Duration;

use chunkstore::{ChunkStore, Refusal};
use serde::Serialize;

use crate::db::Db;
use crate::jobs::Jobs;

/// How long a backend may take to answer a health probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The hub's health, as `/api/v1/health` answers it.
#[derive(Debug, Serialize)]
pub struct Health {
    /// `ok` when every component is, else `degraded`.
    pub status: &'static str,
    pub version: &'static str,
    pub readonly: bool,
    pub database: Component,
    pub store: Vec<Component>,
    pub jobs_running: usize,
}

impl Health {
    /// Whether the hub can serve: the database and every store backend answer. A full or
    /// read-only store still serves every read.
    pub fn available(&self) -> bool {
        std::iter::once(&self.database)
            .chain(&self.store)
            .all(|c| c.state != ComponentState::Unavailable)
    }
}

/// One component: a neutral name and a state; for administrators, where it is and what
/// went wrong.
#[derive(Debug, Serialize)]
pub struct Component {
    pub name: String,
    pub ok: bool,
    pub state: ComponentState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a component's probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComponentState {
    Ok,
    /// The store has no room left for new chunks.
    Full,
    /// The store takes no writes.
    ReadOnly,
    /// The store answers but refuses (locked, credentials).
    Refused,
    /// No answer, or an error.
    Unavailable,
}

impl ComponentState {
    fn of(error: &chunkstore::Error) -> ComponentState {
        match error {
            chunkstore::Error::Refused { kind, .. } => match kind {
                Refusal::Full => ComponentState::Full,
                Refusal::ReadOnly => ComponentState::ReadOnly,
                _ => ComponentState::Refused,
            },
            _ => ComponentState::Unavailable,
        }
    }
}

impl Component {
    fn new(
        name: String,
        location: Option<&str>,
        outcome: Result<(), (ComponentState, String)>,
    ) -> Component {
        let (state, error) = match outcome {
            Ok(()) => (ComponentState::Ok, None),
            Err((state, error)) => (state, Some(error)),
        };
        Component {
            name,
            ok: state == ComponentState::Ok,
            state,
            location: location.map(str::to_owned),
            error,
        }
    }

    /// What anyone may see: the name and the state.
    fn public(self) -> Component {
        Component {
            location: None,
            error: None,
            ..self
        }
    }
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

    /// Asks the database and every store backend; `details` adds where each is and what
    /// went wrong (administrators).
    pub async fn health(&self, readonly: bool, details: bool) -> Health {
        let database = self
            .db
            .read(|c| {
                Ok(c.query_row("SELECT count(*) FROM repository", [], |r| {
                    r.get::<_, i64>(0)
                })?)
            })
            .await
            .map(|_| ())
            .map_err(|e| (ComponentState::Unavailable, e.to_string()));
        let database = Component::new("database".into(), None, database);
        let store = match tokio::time::timeout(PROBE_TIMEOUT, self.store.probe()).await {
            Ok(probes) => probes
                .into_iter()
                .enumerate()
                .map(|(i, (location, result))| {
                    let outcome = result.map_err(|e| (ComponentState::of(&e), e.to_string()));
                    Component::new(format!("store {}", i + 1), Some(&location), outcome)
                })
                .collect(),
            Err(_) => vec![Component::new(
                "store".into(),
                Some(self.store.location()),
                Err((
                    ComponentState::Unavailable,
                    format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
                )),
            )],
        };
        let all_ok = database.ok && store.iter().all(|c| c.ok);
        let (database, store) = if details {
            (database, store)
        } else {
            (
                database.public(),
                store.into_iter().map(Component::public).collect(),
            )
        };
        Health {
            status: if all_ok { "ok" } else { "degraded" },
            version: env!("CARGO_PKG_VERSION"),
            readonly,
            database,
            store,
            jobs_running: self.jobs.running(),
        }
    }

    /// Where the store is, for the log.
    pub fn store_location(&self) -> &str {
        self.store.location()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_or_read_only_store_is_reported_as_such_and_still_serves() {
        let refused = |kind| chunkstore::Error::Refused {
            location: "zdb://10.1.2.3:9900/flists".into(),
            kind,
            message: "namespace full".into(),
        };
        assert_eq!(
            ComponentState::of(&refused(Refusal::Full)),
            ComponentState::Full
        );
        assert_eq!(
            ComponentState::of(&refused(Refusal::ReadOnly)),
            ComponentState::ReadOnly
        );
        assert_eq!(
            ComponentState::of(&refused(Refusal::Locked)),
            ComponentState::Refused
        );
        let component =
            |state| Component::new("store 1".into(), Some("x"), Err((state, "e".into())));
        let health = |store| Health {
            status: "degraded",
            version: "",
            readonly: false,
            database: Component::new("database".into(), None, Ok(())),
            store: vec![store],
            jobs_running: 0,
        };
        assert!(health(component(ComponentState::Full)).available());
        assert!(!health(component(ComponentState::Unavailable)).available());
        let public = serde_json::to_value(component(ComponentState::ReadOnly).public()).unwrap();
        assert_eq!(
            public,
            serde_json::json!({"name": "store 1", "ok": false, "state": "read-only"})
        );
    }
}
