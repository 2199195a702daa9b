//! The integrity scrub's admin routes: start a run, read the last reports.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::Authenticated;
use super::gc::admin;
use super::json::raw;
use crate::error::Result;
use crate::hub::Hub;

const WHAT: &str = "the integrity scrub";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunQuery {
    #[serde(default)]
    deep: bool,
    /// The flists of one repository only.
    repository: Option<String>,
}

#[derive(Deserialize)]
pub struct ReportsQuery {
    limit: Option<usize>,
}

/// `POST /api/v1/admin/scrub[?deep=true][&repository=R]`: runs a scrub (after the one going
/// on, if any) and answers its report.
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
    let scrubber = Arc::clone(hub.scrubber());
    let report =
        tokio::spawn(async move { scrubber.run(only.as_ref(), query.deep).await }).await??;
    Ok(raw(&report))
}

/// `GET /api/v1/admin/scrub[?limit=N]`: the last runs' reports, newest first.
pub async fn reports(
    State(hub): State<Arc<Hub>>,
    Authenticated(caller): Authenticated,
    Query(query): Query<ReportsQuery>,
) -> Result<Response> {
    admin(&caller, WHAT)?;
    let limit = query.limit.unwrap_or(20).clamp(1, 100);
    Ok(raw(&hub.scrubber().reports(limit).await?))
}
