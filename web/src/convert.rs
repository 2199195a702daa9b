//! `/docker-convert` (0-hub's URL): an image converted into an flist from the browser. The
//! form starts a conversion job through the hub's [`hub::Images`], as `POST
//! /api/v1/convert` does, and leads to the job's page, `/docker-convert/<id>`, which
//! follows it live (the job follower of `jobs.js`, through `/listen/<id>`) and ends on the
//! new flist's page; its Cancel button stops the job.
//!
//! Registry credentials go from the form to the job's request and nowhere else: the job
//! records only that some were given, and no page, not even the form shown again after a
//! refusal, carries them back.

use std::collections::HashMap;
use std::time::Duration;

use axum::Form;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use hub::{Error, JobState, JobStatus, RegistryCredentials, Result};
use maud::{Markup, html};

use crate::account::{Fields, field};
use crate::errors::described;
use crate::render::{page, path};
use crate::session::{LoggedIn, check_form, logged_in, writer};
use crate::{State, Web};

/// The platforms offered (besides the hub's default): the ones Zero-OS nodes run.
pub const PLATFORMS: [&str; 4] = [
    "linux/amd64",
    "linux/arm64",
    "linux/arm/v7",
    "linux/riscv64",
];
/// How long a cancel waits for its job to end before showing the job's page.
const CANCEL_WAIT: Duration = Duration::from_secs(5);
/// The longest username or password taken (registries' tokens are a few KiB at most).
const CREDENTIAL_LIMIT: usize = 8 << 10;

/// What the form is shown with again after a refusal: never the credentials.
#[derive(Default)]
struct Asked<'a> {
    image: &'a str,
    platform: &'a str,
    name: &'a str,
}

/// `GET /docker-convert`: the form (logged-in users only).
pub async fn form_page(web: State, headers: HeaderMap) -> Result<Response> {
    let Some(user) = logged_in(&web, &headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    Ok(form(&web, &user, StatusCode::OK, &Asked::default(), None))
}

fn form(
    web: &Web,
    user: &LoggedIn,
    status: StatusCode,
    asked: &Asked<'_>,
    error: Option<&str>,
) -> Response {
    let default_platform = &web.hub.config().images.default_platform;
    let body = html! {
        h1 { "Convert a container image" }
        p {
            "The hub pulls the image from its registry and publishes it as an flist in "
            b { (user.caller.repository) } ", storing each chunk of its files once."
        }
        @if let Some(error) = error { p.error role="alert" { (error) } }
        form.stack action="/docker-convert" method="post" autocomplete="off" {
            input type="hidden" name="csrf" value=(user.session.csrf);
            label for="convert-image" { "Image (as " code { "docker pull" } " takes it)" }
            input #convert-image name="image" value=(asked.image) required maxlength="512"
                placeholder="alpine:3.20, ghcr.io/org/app:1.2, host:5000/app@sha256:…";
            label for="convert-platform" { "Platform" }
            select #convert-platform name="platform" {
                option value="" selected[asked.platform.is_empty()] { "The hub's default (" (default_platform) ")" }
                @for platform in PLATFORMS {
                    option value=(platform) selected[asked.platform == platform] { (platform) }
                }
            }
            label for="convert-name" { "Flist name (optional; by default made from the image, as 0-hub does)" }
            input #convert-name name="name" value=(asked.name) maxlength="255";
            fieldset {
                legend { "Registry credentials (for a private image; used for this pull only, never stored)" }
                label for="convert-username" { "Username" }
                input #convert-username name="username" autocomplete="off";
                label for="convert-password" { "Password or token" }
                input #convert-password type="password" name="password" autocomplete="new-password";
            }
            button type="submit" { "Convert" }
        }
    };
    no_store(page(
        &web.shell("Convert an image", Some(user)),
        status,
        &body.into_string(),
    ))
}

/// `POST /docker-convert`: starts the job and goes to its page; a refusal shows the form
/// again with the hub's message.
pub async fn start(web: State, headers: HeaderMap, Form(fields): Fields) -> Result<Response> {
    let user = writer(&web, &headers).await?;
    check_form(&web, &headers, Some(&user), field(&fields, "csrf"))?;
    let asked = Asked {
        image: field(&fields, "image").unwrap_or("").trim(),
        platform: field(&fields, "platform").unwrap_or("").trim(),
        name: field(&fields, "name").unwrap_or("").trim(),
    };
    match convert(&web, &user, &asked, &fields).await {
        Ok(id) => Ok(Redirect::to(&job_url(&id)).into_response()),
        Err(e) => {
            let (status, message) = described(e);
            Ok(form(&web, &user, status, &asked, Some(&message)))
        }
    }
}

async fn convert(
    web: &Web,
    user: &LoggedIn,
    asked: &Asked<'_>,
    fields: &HashMap<String, String>,
) -> Result<String> {
    if !asked.platform.is_empty() && !PLATFORMS.contains(&asked.platform) {
        return Err(Error::BadRequest(
            "choose one of the platforms offered".into(),
        ));
    }
    let username = field(fields, "username").unwrap_or("").trim();
    let password = field(fields, "password").unwrap_or("");
    if username.len() > CREDENTIAL_LIMIT || password.len() > CREDENTIAL_LIMIT {
        return Err(Error::BadRequest(format!(
            "registry credentials have at most {CREDENTIAL_LIMIT} bytes"
        )));
    }
    let credentials = match (username.is_empty(), password.is_empty()) {
        (true, true) => None,
        (false, false) => Some(RegistryCredentials {
            username: username.to_owned(),
            password: password.to_owned(),
        }),
        _ => {
            return Err(Error::BadRequest(
                "registry credentials are a username and a password: give both or neither".into(),
            ));
        }
    };
    let images = web.hub.images();
    let request = images.request(
        asked.image,
        Some(asked.platform),
        credentials,
        Some(asked.name).filter(|n| !n.is_empty()),
    )?;
    let (id, _) = images.start(user.caller.clone(), request).await?;
    Ok(id)
}

/// `GET /docker-convert/<id>`: the job's page, for its owner: live progress while it runs
/// (the page's script follows it and goes to the flist's page at the end), its outcome
/// once it has ended.
pub async fn job_page(web: State, headers: HeaderMap, Path(id): Path<String>) -> Result<Response> {
    let Some(user) = logged_in(&web, &headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let job = own_job(&web, &user, &id).await?;
    let body = job_body(&web, &user, &job);
    Ok(no_store(page(
        &web.shell("Image conversion", Some(&user)),
        StatusCode::OK,
        &body.into_string(),
    )))
}

/// `POST /docker-convert/<id>/cancel`: asks the job to stop, waits a moment for it to end,
/// and shows its page.
pub async fn cancel(
    web: State,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(fields): Fields,
) -> Result<Response> {
    let user = writer(&web, &headers).await?;
    check_form(&web, &headers, Some(&user), field(&fields, "csrf"))?;
    own_job(&web, &user, &id).await?;
    let jobs = web.hub.jobs();
    let live = jobs.subscribe(&id);
    jobs.cancel(&id, &user.caller.user).await?;
    if let Some(mut rx) = live {
        // A cancelled conversion stops at its next step: usually at once.
        let _ = tokio::time::timeout(CANCEL_WAIT, rx.wait_for(|s| s.state.finished())).await;
    }
    Ok(Redirect::to(&job_url(&id)).into_response())
}

/// Job `id` if it is one of the caller's conversions; any other is unknown (as the API's
/// `/api/v1/jobs/<id>` answers).
async fn own_job(web: &Web, user: &LoggedIn, id: &str) -> Result<JobStatus> {
    web.hub
        .jobs()
        .get(id)
        .await?
        .filter(|job| job.owner == user.caller.user && job.kind == "docker")
        .ok_or_else(|| Error::NotFound("no such image conversion of yours".into()))
}

fn job_body(web: &Web, user: &LoggedIn, job: &JobStatus) -> Markup {
    let request = job.request.as_ref();
    let image = request
        .and_then(|r| r.get("image"))
        .and_then(|i| i.as_str())
        .unwrap_or("");
    let platform = request
        .and_then(|r| r.get("platform"))
        .and_then(|p| p.as_str())
        .map_or_else(
            || {
                format!(
                    "the hub's default ({})",
                    web.hub.config().images.default_platform
                )
            },
            str::to_owned,
        );
    let flist = format!("{}.md", path(&[&job.repository, &job.name]));
    let running = !job.state.finished();
    // What a job that did not succeed says, where the follower writes it live.
    let ended = match job.state {
        JobState::Failed => Some(
            job.error
                .clone()
                .unwrap_or_else(|| "the conversion failed".into()),
        ),
        JobState::Cancelled => Some(match &job.error {
            Some(why) => format!("Cancelled: {why}."),
            None => "Cancelled.".into(),
        }),
        _ => None,
    };
    html! {
        h1 { "Image conversion" }
        dl.facts {
            dt { "Image" } dd { code { (image) } }
            dt { "Platform" } dd { (platform) }
            dt { "Flist" } dd { (job.repository) "/" (job.name) }
        }
        div.job data-convert-job=[running.then_some(&job.id)] data-convert-result=(flist) {
            p { "State: " b data-job-state { (job.state.as_str()) } }
            progress data-job-progress max="100" value=(job.progress) { (job.progress) "%" }
            p data-job-message aria-live="polite" { (job.message) }
            h2 { "Phases" }
            // Filled live by the follower; an ended job shows the phase it ended in.
            ol.log data-job-log { @if !running { li { (job.message) } } }
            p.error data-job-error role="alert" hidden[ended.is_none()] { (ended.unwrap_or_default()) }
            @match job.state {
                JobState::Succeeded => {
                    p role="status" { "Converted: " a href=(flist) { (job.repository) "/" (job.name) } }
                }
                JobState::Failed | JobState::Cancelled => {}
                JobState::Queued | JobState::Running => {
                    div data-job-cancel {
                        form.inline action={ (job_url(&job.id)) "/cancel" } method="post" {
                            input type="hidden" name="csrf" value=(user.session.csrf);
                            button.secondary type="submit" { "Cancel" }
                        }
                    }
                    noscript { p { "Reload this page to see how far it is." } }
                }
            }
        }
    }
}

fn job_url(id: &str) -> String {
    path(&["docker-convert", id])
}

/// A page that is not kept by caches or the back button (it holds a form for secrets, or
/// a job's live state).
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}
