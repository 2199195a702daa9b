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
use converter::Credentials;
use serde::Deserialize;

use super::json::{raw_with_status, success_with};
use super::{Authenticated, Me};
use crate::error::{Error, Result};
use crate::hub::Hub;

/// `POST /api/flist/me/docker`: form field `image` (multipart or urlencoded), and
/// optionally `platform`. Answers when the flist is published, with its file name in
/// `payload.name` (0-hub put statistics there) and the job's id in `payload.jobid`.
pub async fn me_docker(
    State(hub): State<Arc<Hub>>,
    Me(caller): Me,
    request: Request,
) -> Result<Response> {
    let form = read_form(&hub, request).await?;
    let images = hub.images();
    let image = form
        .get("image")
        .map(|i| i.trim())
        .filter(|i| !i.is_empty())
        .ok_or_else(|| Error::BadRequest("missing docker image name".into()))?;
    let request = images.request(image, form.get("platform").map(String::as_str), None, None)?;
    let (id, outcome) = images.start(caller, request).await?;
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
    let images = hub.images();
    let request = images.request(
        &body.image,
        body.platform.as_deref(),
        credentials,
        body.name.as_deref(),
    )?;
    let (id, _) = images.start(caller, request).await?;
    let status = hub
        .jobs()
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
    hub.jobs().cancel(&id, &caller.user).await?;
    let status = hub.jobs().get(&id).await?;
    Ok(raw_with_status(StatusCode::ACCEPTED, &status).into_response())
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
