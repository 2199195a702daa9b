//! The garbage collector's admin routes: start a run, read the last reports.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::Me;
use super::json::raw;
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::hub::Hub;

#[derive(Deserialize)]
pub struct RunQuery {
    #[serde(default, rename = "dry-run")]
    dry_run: bool,
}

#[derive(Deserialize)]
pub struct ReportsQuery {
    limit: Option<usize>,
}

/// Refuses `caller` unless an administrator: `what` is for administrators.
pub(super) fn admin(caller: &Caller, what: &str) -> Result<()> {
    match caller.admin {
        true => Ok(()),
        false => Err(Error::Forbidden(format!("{what} is for administrators"))),
    }
}

/// `POST /api/v1/admin/gc[?dry-run=true]`: runs a collection (after the one going on, if
/// any) and answers its report.
pub async fn run(
    State(hub): State<Arc<Hub>>,
    Me(caller): Me,
    Query(query): Query<RunQuery>,
) -> Result<Response> {
    admin(&caller, "garbage collection")?;
    if hub.config().server.readonly && !query.dry_run {
        return Err(Error::Forbidden(
            "this hub is read-only (server.readonly)".into(),
        ));
    }
    // In a task of its own: a client that goes away does not stop a run half-way.
    let collector = Arc::clone(hub.collector());
    let report = tokio::spawn(async move { collector.run(query.dry_run).await }).await??;
    Ok(raw(&report))
}

/// `GET /api/v1/admin/gc[?limit=N]`: the last runs' reports, newest first.
pub async fn reports(
    State(hub): State<Arc<Hub>>,
    Me(caller): Me,
    Query(query): Query<ReportsQuery>,
) -> Result<Response> {
    admin(&caller, "garbage collection")?;
    let limit = query.limit.unwrap_or(20).clamp(1, 100);
    Ok(raw(&hub.collector().reports(limit).await?))
}
