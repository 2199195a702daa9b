//! `GET /listen/<jobid>`: a job's progress as server-sent events, in 0-hub's shapes
//! (reference section 5.5): `update` events while it runs, then `Image ready !` and the
//! `info` event, or an `error` event; then the stream ends.
//!
//! Any number of listeners may follow a job, from its start or from the middle; one that
//! comes after the end gets the final events (0-hub answered 404).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde::Serialize;
use tokio::sync::watch;

use super::json::{compact_failure, python};
use crate::error::Result;
use crate::hub::Hub;
use crate::jobs::{JobStatus, State as JobState};

pub async fn listen(State(hub): State<Arc<Hub>>, Path(id): Path<String>) -> Result<Response> {
    let phase = match hub.jobs().subscribe(&id) {
        Some(rx) => Phase::Live { rx, last: None },
        None => match hub.jobs().get(&id).await? {
            Some(status) => Phase::Final(final_events(&status)),
            None => return Ok(compact_failure(StatusCode::NOT_FOUND, "job id not found")),
        },
    };
    Ok(Sse::new(events(phase))
        .keep_alive(KeepAlive::default())
        .into_response())
}

enum Phase {
    Live {
        rx: watch::Receiver<JobStatus>,
        /// The progress last sent, to send only changes.
        last: Option<(u8, String)>,
    },
    Final(VecDeque<String>),
}

fn events(phase: Phase) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(phase, |mut phase| async move {
        loop {
            match &mut phase {
                Phase::Final(queue) => {
                    let data = queue.pop_front()?;
                    return Some((Ok(Event::default().data(data)), phase));
                }
                Phase::Live { rx, last } => {
                    let status = rx.borrow_and_update().clone();
                    if status.state.finished() {
                        phase = Phase::Final(final_events(&status));
                        continue;
                    }
                    let now = (status.progress, status.message.clone());
                    if status.state == JobState::Running && last.as_ref() != Some(&now) {
                        *last = Some(now);
                        let data = update(&status.message, status.progress);
                        return Some((Ok(Event::default().data(data)), phase));
                    }
                    if rx.changed().await.is_err() {
                        // The job ended: its last state is its outcome.
                        let status = rx.borrow().clone();
                        phase = Phase::Final(final_events(&status));
                    }
                }
            }
        }
    })
}

#[derive(Serialize)]
struct Update<'a> {
    status: &'static str,
    message: &'a str,
    progress: u8,
}

fn update(message: &str, progress: u8) -> String {
    json(&Update {
        status: "update",
        message,
        progress,
    })
}

/// The events that close a job's stream.
fn final_events(status: &JobStatus) -> VecDeque<String> {
    #[derive(Serialize)]
    struct Info<'a> {
        status: &'static str,
        info: &'a serde_json::Value,
    }
    #[derive(Serialize)]
    struct Failed<'a> {
        status: &'static str,
        message: &'a str,
    }
    match (status.state, &status.result) {
        (JobState::Succeeded, Some(result)) => VecDeque::from([
            update(crate::jobs::FINISHED_MESSAGE, 100),
            json(&Info {
                status: "info",
                info: result,
            }),
        ]),
        _ => VecDeque::from([json(&Failed {
            status: "error",
            message: status.error.as_deref().unwrap_or("the job failed"),
        })]),
    }
}

fn json(value: &impl Serialize) -> String {
    String::from_utf8(python(value)).unwrap_or_default()
}
