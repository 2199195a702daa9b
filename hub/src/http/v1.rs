//! Routes that are new in flisthub, under `/api/v1/` and described in `openapi.json`;
//! and `/metrics`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::json::{raw, raw_with_status};
use super::{Authenticated, MaybeAuthenticated, Me};
use crate::error::{Error, Result};
use crate::hub::Hub;

/// The OpenAPI description of the routes below.
pub const OPENAPI: &str = include_str!("../openapi.json");

pub const HEALTH: &str = "/api/v1/health";
pub const JOBS: &str = "/api/v1/jobs";
pub const JOB: &str = "/api/v1/jobs/{id}";
pub const OPENAPI_JSON: &str = "/api/v1/openapi.json";
pub const CHANGES: &str = "/api/v1/changes";
pub const CHUNKS: &str = "/api/v1/chunks";
pub const CHUNKS_MISSING: &str = "/api/v1/chunks/missing";
pub const CHUNKS_GET: &str = "/api/v1/chunks/get";
pub const CHUNKS_USAGE: &str = "/api/v1/chunks/usage";
pub const CHUNK: &str = "/api/v1/chunks/{key}";
pub const BLOCK: &str = "/api/v1/blocks/{id}";
pub const CONVERT: &str = "/api/v1/convert";
pub const FLIST_FILE: &str = "/api/v1/flists/{repo}/{flist}/files/{*path}";
pub const ADMIN_GC: &str = "/api/v1/admin/gc";
pub const ADMIN_RETENTION: &str = "/api/v1/admin/retention";
pub const ADMIN_RETENTION_REPO: &str = "/api/v1/admin/retention/{repo}";
pub const ADMIN_SCRUB: &str = "/api/v1/admin/scrub";
pub const USAGE: &str = "/api/v1/usage";

/// `GET /api/v1/health`: the state of the database and of each store backend (where they
/// are and what went wrong for administrators only); 503 if one does not answer.
pub async fn health(
    State(hub): State<Arc<Hub>>,
    MaybeAuthenticated(caller): MaybeAuthenticated,
) -> Response {
    let details = caller.is_some_and(|c| c.admin);
    let health = hub
        .status()
        .health(hub.config().server.readonly, details)
        .await;
    let status = if health.available() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = raw_with_status(status, &health);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

#[derive(Deserialize)]
pub struct JobsQuery {
    limit: Option<usize>,
}

/// `GET /api/v1/jobs`: the caller's jobs, newest first.
pub async fn jobs(
    State(hub): State<Arc<Hub>>,
    Me(caller): Me,
    Query(query): Query<JobsQuery>,
) -> Result<Response> {
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    Ok(raw(&hub.jobs().list(&caller.user, limit).await?))
}

/// `GET /api/v1/jobs/<id>`: one job's state and outcome, for the user who started it and
/// administrators. It holds the request and its errors (a private registry's answers):
/// another caller gets the answer of an unknown id. (`/listen/<id>` stays public for
/// 0-hub's upload page, which cannot send a token.)
pub async fn job(
    State(hub): State<Arc<Hub>>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    let job = hub
        .jobs()
        .get(&id)
        .await?
        .filter(|job| caller.admin || job.owner == caller.user)
        .ok_or_else(|| Error::NotFound("job id not found".into()))?;
    Ok(raw(&job))
}

#[derive(Deserialize)]
pub struct ChangesQuery {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

/// `GET /api/v1/changes?after=SEQ&limit=N`: the change feed, public; who made each change
/// is shown to administrators only.
pub async fn changes(
    State(hub): State<Arc<Hub>>,
    MaybeAuthenticated(caller): MaybeAuthenticated,
    Query(query): Query<ChangesQuery>,
) -> Result<Response> {
    let admin = caller.is_some_and(|c| c.admin);
    let limit = query.limit.unwrap_or(100);
    Ok(raw(&hub
        .catalogue()
        .changes(query.after, limit, admin)
        .await?))
}

/// `GET /api/v1/usage`: what repositories' flists take in the store (`hub::usage`), and the
/// caller's quota. An administrator sees every repository and the hub's totals; anyone
/// else the repositories it may act as, and no totals (they would tell about the others').
pub async fn usage(
    State(hub): State<Arc<Hub>>,
    Authenticated(caller): Authenticated,
) -> Result<Response> {
    let snapshot = hub.usage().figures().await?;
    let own = |name: &str| {
        caller.admin
            || name == caller.repository.as_str()
            || caller.accounts.iter().any(|a| a == name)
    };
    let repositories: Vec<_> = snapshot
        .repositories
        .iter()
        .filter(|r| own(&r.name))
        .collect();
    let mut answer = serde_json::json!({
        "computed": snapshot.computed,
        "duration_ms": snapshot.duration_ms,
        "identity": hub.chunks().chunk_usage(&caller.user).await?,
        "repositories": repositories,
    });
    if caller.admin {
        answer["totals"] = serde_json::json!(snapshot.totals);
    }
    Ok(raw(&answer))
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// `GET /metrics`: Prometheus text format. The usage figures are brought up to date in the
/// background when due (a scrape never waits for a walk of every flist).
pub async fn metrics(State(hub): State<Arc<Hub>>) -> Response {
    match super::metrics_handle() {
        Some(handle) if hub.config().server.metrics => {
            hub.usage().refresh_in_background();
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                handle.render(),
            )
                .into_response()
        }
        _ => Error::NotFound("metrics are off (server.metrics)".into()).into_response(),
    }
}
