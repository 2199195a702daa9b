//! The retention policies' admin routes: read, set and remove a repository's policy, list
//! them all, and apply them now (or see what that would delete).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::Authenticated;
use super::gc::admin;
use super::json::raw;
use crate::error::{Error, Result};
use crate::hub::Hub;
use crate::retention::{Origin, Policy};

const WHAT: &str = "retention";

#[derive(Deserialize)]
pub struct RunQuery {
    #[serde(default, rename = "dry-run")]
    dry_run: bool,
    /// One repository only.
    repository: Option<String>,
}

/// A repository's policy in force, as the routes of one repository answer it.
#[derive(Serialize)]
struct InForce {
    repository: String,
    policy: Option<Policy>,
    origin: Option<Origin>,
}

async fn in_force(hub: &Hub, repository: &str) -> Result<Response> {
    let repository = hub.names().repository(repository)?;
    let assigned = hub.retention().policy(&repository).await?;
    Ok(raw(&InForce {
        repository: repository.to_string(),
        policy: assigned.as_ref().map(|a| a.policy),
        origin: assigned.map(|a| a.origin),
    }))
}

/// `GET /api/v1/admin/retention`: the default policy and those of named repositories.
pub async fn list(
    State(hub): State<Arc<Hub>>,
    Authenticated(caller): Authenticated,
) -> Result<Response> {
    admin(&caller, WHAT)?;
    Ok(raw(&hub.retention().policies().await?))
}

/// `POST /api/v1/admin/retention[?dry-run=true][&repository=R]`: applies the policies now
/// (after a run going on, if any) and answers the report.
pub async fn run(
    State(hub): State<Arc<Hub>>,
    Authenticated(caller): Authenticated,
    Query(query): Query<RunQuery>,
) -> Result<Response> {
    admin(&caller, WHAT)?;
    let only = query
        .repository
        .as_deref()
        .map(|name| hub.names().repository(name))
        .transpose()?;
    // In a task of its own: a client that goes away does not stop a run half-way.
    let retention = Arc::clone(hub.retention());
    let actor = caller.user.clone();
    let report =
        tokio::spawn(async move { retention.run(only.as_ref(), query.dry_run, &actor).await })
            .await??;
    Ok(raw(&report))
}

/// `GET /api/v1/admin/retention/<repo>`: its policy and where it comes from (`null`s when
/// none applies).
pub async fn get(
    State(hub): State<Arc<Hub>>,
    Authenticated(caller): Authenticated,
    Path(repository): Path<String>,
) -> Result<Response> {
    admin(&caller, WHAT)?;
    in_force(&hub, &repository).await
}

/// `PUT /api/v1/admin/retention/<repo>` with `{"keep": N, "max-age": "30d"}`: sets its
/// policy, in place of the configuration's.
pub async fn put(
    State(hub): State<Arc<Hub>>,
    Authenticated(caller): Authenticated,
    Path(repository): Path<String>,
    body: Bytes,
) -> Result<Response> {
    admin(&caller, WHAT)?;
    let name = hub.names().repository(&repository)?;
    let policy: Policy = serde_json::from_slice(&body)
        .map_err(|e| Error::BadRequest(format!("invalid retention policy: {e}")))?;
    hub.retention().set(&name, policy, &caller.user).await?;
    in_force(&hub, &repository).await
}

/// `DELETE /api/v1/admin/retention/<repo>`: removes the policy set through the API (the
/// configuration's applies again); 404 when there was none.
pub async fn delete(
    State(hub): State<Arc<Hub>>,
    Authenticated(caller): Authenticated,
    Path(repository): Path<String>,
) -> Result<Response> {
    admin(&caller, WHAT)?;
    let name = hub.names().repository(&repository)?;
    if !hub.retention().unset(&name).await? {
        return Err(Error::NotFound(
            "no retention policy was set through the API for this repository".into(),
        ));
    }
    in_force(&hub, &repository).await
}
