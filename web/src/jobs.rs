//! `/jobs`: the caller's uploads and conversions, newest first, running and finished, with
//! their state, last phase or error, and a link to what they made. A running one is
//! followed live by the job follower (`static/jobs.js`).

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use hub::{JobStatus, Result};
use maud::{Markup, html};

use crate::State;
use crate::render::{page, path, time};
use crate::session::logged_in;

/// Jobs the page lists (the API's `/api/v1/jobs` gives up to 500).
const JOB_ROWS: usize = 100;

/// `GET /jobs`.
pub async fn jobs_page(web: State, headers: HeaderMap) -> Result<Response> {
    let Some(user) = logged_in(&web, &headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let jobs = web.hub.jobs().list(&user.caller.user, JOB_ROWS).await?;
    let retention = humantime::format_duration(web.hub.config().jobs.retention);
    let body = html! {
        h1 { "Your jobs" }
        p {
            "Archives uploaded from " a href="/upload" { "the upload page" }
            " and image conversions, newest first; finished ones are kept " (retention) "."
        }
        @if jobs.is_empty() {
            p.muted { "None yet." }
        } @else {
            div.table-wrap { table.jobs {
                thead { tr {
                    th { "What" } th { "Flist" } th { "State" } th { "Progress" }
                    th.optional { "Started" } th.optional { "Finished" }
                } }
                tbody { @for job in &jobs { (row(job)) } }
            } }
        }
    };
    Ok(page(
        &web.shell("Your jobs", Some(&user)),
        StatusCode::OK,
        &body.into_string(),
    ))
}

fn row(job: &JobStatus) -> Markup {
    let what = match job.kind.as_str() {
        "upload" => "archive upload",
        "docker" => "image conversion",
        other => other,
    };
    let result = format!("{}.md", path(&[&job.repository, &job.name]));
    let running = !job.state.finished();
    // The state's name as the API writes it.
    let state_name = serde_json::to_value(job.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let succeeded = state_name == "succeeded";
    html! {
        tr data-job=[running.then_some(&job.id)] {
            td { (what) }
            td.name {
                (job.repository) "/" (job.name)
                // A running one's link is shown by the follower when it succeeds.
                @if succeeded || running {
                    " "
                    a href=(result) hidden[!succeeded] data-job-done { "open" }
                }
            }
            td data-job-state { (state_name) }
            td {
                @if running {
                    progress data-job-progress max="100" value=(job.progress) {}
                    " "
                    span data-job-message { (job.message) }
                    span.error hidden data-job-error {}
                } @else if let Some(error) = &job.error {
                    span.error { (error) }
                } @else {
                    span { (job.message) }
                }
            }
            td.optional { (time(job.created)) }
            td.optional { (job.finished.map_or_else(|| html! { span.muted { "—" } }, time)) }
        }
    }
}
