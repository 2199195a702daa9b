//! Routes that are new in flisthub, under `/api/v1/` and described in `openapi.json`;
//! and `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::Me;
use super::json::{raw, raw_with_status};
use crate::error::{Error, Result};
use crate::hub::Hub;

/// The OpenAPI description of the routes below.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Every `/api/v1` route, as the router mounts it and `openapi.json` must describe it
/// (checked by a test).
pub const ROUTES: &[&str] = &[
    "/api/v1/health",
    "/api/v1/jobs",
    "/api/v1/jobs/{id}",
    "/api/v1/openapi.json",
    "/api/v1/chunks",
    "/api/v1/chunks/missing",
    "/api/v1/chunks/get",
    "/api/v1/chunks/usage",
    "/api/v1/chunks/{key}",
    "/api/v1/convert",
];

/// How long a backend may take to answer a health probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    readonly: bool,
    database: Check,
    store: Vec<Backend>,
    jobs_running: usize,
}

#[derive(Serialize)]
struct Check {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct Backend {
    location: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `GET /api/v1/health`: the database and each store backend; 503 if any is down.
pub async fn health(State(hub): State<Arc<Hub>>) -> Response {
    let database = match hub
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
    let store = match tokio::time::timeout(PROBE_TIMEOUT, hub.store.probe()).await {
        Ok(probes) => probes
            .into_iter()
            .map(|(location, result)| Backend {
                location,
                ok: result.is_ok(),
                error: result.err().map(|e| e.to_string()),
            })
            .collect(),
        Err(_) => vec![Backend {
            location: hub.store.location().to_owned(),
            ok: false,
            error: Some(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
        }],
    };
    let ok = database.ok && store.iter().all(|b| b.ok);
    let health = Health {
        status: if ok { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        readonly: hub.config.server.readonly,
        database,
        store,
        jobs_running: hub.jobs.running(),
    };
    let status = if ok {
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
    Ok(raw(&hub.jobs.list(&caller.user, limit).await?))
}

/// `GET /api/v1/jobs/<id>`: one job's state and outcome (job ids are unguessable, and
/// what a job publishes is public).
pub async fn job(State(hub): State<Arc<Hub>>, Path(id): Path<String>) -> Result<Response> {
    let job = hub
        .jobs
        .get(&id)
        .await?
        .ok_or_else(|| Error::NotFound("job id not found".into()))?;
    Ok(raw(&job))
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(hub): State<Arc<Hub>>) -> Response {
    match super::metrics_handle() {
        Some(handle) if hub.config.server.metrics => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        _ => Error::NotFound("metrics are off (server.metrics)".into()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_description_names_exactly_the_mounted_routes() {
        let document: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let mut described: Vec<&str> = document["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        described.sort_unstable();
        let mut mounted = ROUTES.to_vec();
        mounted.sort_unstable();
        assert_eq!(described, mounted);
    }
}
