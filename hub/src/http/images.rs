//! Image conversions: 0-hub's `POST /api/flist/me/docker`, which answers once the flist is
//! published (as 0-hub's clients expect), and `POST /api/v1/convert`, which answers 202
//! with the job at once. Both run the conversion as a job (`/api/v1/jobs/<id>`,
//! `/listen/<id>`) that outlives the request; `DELETE /api/v1/jobs/<id>` cancels one.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use converter::{Credentials, Platform};
use serde::Deserialize;
use tokio::sync::oneshot;

use super::json::{raw_with_status, success_with};
use super::{Authenticated, Me};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::hub::Hub;
use crate::images::{ConvertRequest, Converted};
use crate::jobs::CancelRefused;

/// Longest image reference taken (Docker's own limit on a whole reference is lower).
const IMAGE_LIMIT: usize = 512;

/// `POST /api/flist/me/docker`: form field `image` (multipart or urlencoded), and
/// optionally `platform`. Answers when the flist is published, with its file name in
/// `payload.name` (0-hub put statistics there) and the job's id in `payload.jobid`.
pub async fn me_docker(
    State(hub): State<Arc<Hub>>,
    Me(caller): Me,
    request: Request,
) -> Result<Response> {
    let form = read_form(&hub, request).await?;
    let image = form
        .get("image")
        .map(|i| i.trim())
        .filter(|i| !i.is_empty())
        .ok_or_else(|| Error::BadRequest("missing docker image name".into()))?;
    let request = convert_request(
        &hub,
        image,
        form.get("platform").map(String::as_str),
        None,
        None,
    )?;
    let (id, outcome) = start(&hub, caller, request).await?;
    let converted = outcome
        .await
        .map_err(|_| Error::Internal("a conversion job ended without an outcome".into()))??;
    let mut payload = super::upload::published_json(
        &hub,
        &converted.published,
        Some(&converted.published.stats),
        &[],
    );
    payload["jobid"] = id.into();
    payload["image"] = converted.reference.clone().into();
    payload["digest"] = converted.digest.clone().into();
    payload["platform"] = converted.platform.clone().into();
    payload["warnings"] = converted.warnings.clone().into();
    Ok(success_with(payload))
}

/// The body of `POST /api/v1/convert`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConvertBody {
    image: String,
    platform: Option<String>,
    credentials: Option<CredentialsBody>,
    /// The flist's name; default: the name 0-hub gives the image.
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsBody {
    username: String,
    password: String,
}

/// `POST /api/v1/convert`: 202 with the job (`Location: /api/v1/jobs/<id>`).
pub async fn convert(State(hub): State<Arc<Hub>>, Me(caller): Me, body: Bytes) -> Result<Response> {
    let body: ConvertBody = serde_json::from_slice(&body)
        .map_err(|e| Error::BadRequest(format!("malformed json request: {e}")))?;
    let credentials = body.credentials.map(|c| Credentials {
        username: c.username,
        password: c.password,
    });
    let request = convert_request(
        &hub,
        &body.image,
        body.platform.as_deref(),
        credentials,
        body.name.as_deref(),
    )?;
    let (id, _) = start(&hub, caller, request).await?;
    let status = hub
        .jobs
        .get(&id)
        .await?
        .ok_or_else(|| Error::Internal("a job just created is gone".into()))?;
    let mut response = raw_with_status(StatusCode::ACCEPTED, &status);
    if let Ok(location) = format!("/api/v1/jobs/{id}").parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `DELETE /api/v1/jobs/<id>`: cancels a queued or running job of the caller. 202: it
/// stops soon (its state becomes `cancelled`).
pub async fn cancel_job(
    State(hub): State<Arc<Hub>>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response> {
    match hub.jobs.cancel(&id, &caller.user).await {
        Ok(()) => {}
        Err(CancelRefused::NotFound) => return Err(Error::NotFound("job id not found".into())),
        Err(CancelRefused::NotOwner) => {
            return Err(Error::Forbidden("this job is another user's".into()));
        }
        Err(CancelRefused::NotCancellable) => {
            return Err(Error::Conflict(
                "only image conversions can be cancelled".into(),
            ));
        }
        Err(CancelRefused::Finished(state)) => {
            return Err(Error::Conflict(format!(
                "the job has already ended ({})",
                serde_json::to_value(state)
                    .unwrap_or_default()
                    .as_str()
                    .unwrap_or_default()
            )));
        }
    }
    let status = hub.jobs.get(&id).await?;
    Ok(raw_with_status(StatusCode::ACCEPTED, &status).into_response())
}

/// Checks a request: conversions on, a sane reference, a platform, a valid name.
fn convert_request(
    hub: &Hub,
    image: &str,
    platform: Option<&str>,
    credentials: Option<Credentials>,
    name: Option<&str>,
) -> Result<ConvertRequest> {
    if !hub.config.images.enabled {
        return Err(Error::Forbidden(
            "image conversion is switched off on this hub (images.enabled)".into(),
        ));
    }
    let image = image.trim();
    if image.is_empty() {
        return Err(Error::BadRequest("missing docker image name".into()));
    }
    if image.len() > IMAGE_LIMIT || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::BadRequest(format!(
            "{} is not an image reference",
            crate::names::quote(image)
        )));
    }
    // Refused here, before a job exists.
    hub.image_registry(image)?;
    let platform = platform
        .filter(|p| !p.is_empty())
        .map(str::parse::<Platform>)
        .transpose()?;
    let name = match name {
        Some(name) => hub.names.flist(name)?,
        None => hub.names.flist(&converter::flist_name(image))?,
    };
    Ok(ConvertRequest {
        image: image.to_owned(),
        platform,
        credentials,
        name,
    })
}

/// Starts the job of `request`; its outcome comes on the receiver (dropping it does not
/// stop the job).
async fn start(
    hub: &Arc<Hub>,
    caller: Caller,
    request: ConvertRequest,
) -> Result<(String, oneshot::Receiver<Result<Converted>>)> {
    let slot = hub.limits.conversion_slot(&caller.user)?;
    let job = hub
        .jobs
        .create(
            "docker",
            &caller.user,
            &caller.repository,
            &request.name,
            Some(request.recorded()),
        )
        .await?;
    let id = job.id();
    let (tx, rx) = oneshot::channel();
    let runner = Arc::clone(hub);
    hub.tasks.spawn(async move {
        let _slot = slot;
        if let Err(e) = job.start_with("Initializing docker converter").await {
            tracing::error!(error = %e, "recording a job start");
        }
        let outcome = runner.convert_image(&caller, request, &job).await;
        let recorded = match &outcome {
            Ok(converted) => {
                tracing::info!(
                    image = %converted.reference,
                    digest = %converted.digest,
                    name = %converted.published.name,
                    shared = converted.shared,
                    "image converted"
                );
                job.succeed(serde_json::json!({
                    "status": "success",
                    "file": converted.published.name,
                    "flist": converted.published.stats,
                    "image": converted.reference,
                    "digest": converted.digest,
                    "platform": converted.platform,
                    "warnings": converted.warnings,
                    "shared": converted.shared,
                    "timing": {"seconds": converted.seconds},
                }))
                .await
            }
            Err(Error::Cancelled(why)) => job.cancel(why.clone()).await,
            Err(e) => {
                tracing::info!(error = %e, "image conversion failed");
                job.fail(super::response::public(e).1).await
            }
        };
        if let Err(e) = recorded {
            tracing::error!(error = %e, "recording a job outcome");
        }
        let _ = tx.send(outcome);
    });
    Ok((id, rx))
}

/// The fields of a small form, multipart (`curl -F`) or urlencoded (`curl -d`).
async fn read_form(hub: &Arc<Hub>, request: Request) -> Result<HashMap<String, String>> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        let axum::Form(fields) = axum::Form::<HashMap<String, String>>::from_request(request, hub)
            .await
            .map_err(|e| Error::BadRequest(format!("malformed form: {}", e.body_text())))?;
        return Ok(fields);
    }
    let mut form = Multipart::from_request(request, hub)
        .await
        .map_err(|e| Error::BadRequest(format!("malformed multipart form: {}", e.body_text())))?;
    let mut fields = HashMap::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| Error::BadRequest(format!("malformed multipart form: {}", e.body_text())))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let value = field.text().await.map_err(|e| {
            Error::BadRequest(format!("malformed multipart form: {}", e.body_text()))
        })?;
        fields.insert(name, value);
    }
    Ok(fields)
}
