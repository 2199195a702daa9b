//! The answers of 0-hub's API, encoded as `crate::pyjson` writes them: raw replies
//! (listings, info) are the bare value; the others an envelope with `status`, and
//! `message` or `payload`; each ends with a newline.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub use crate::pyjson::{compact, python};

fn respond(status: StatusCode, mut body: Vec<u8>) -> Response {
    body.push(b'\n');
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A raw reply: the bare value (listings, info, contents, metadata).
pub fn raw(value: &impl Serialize) -> Response {
    respond(StatusCode::OK, python(value))
}

/// A raw reply with another status (the `/api/v1` routes use the same style).
pub fn raw_with_status(status: StatusCode, value: &impl Serialize) -> Response {
    respond(status, python(value))
}

/// A raw reply already encoded, newline included (a cached contents dump).
pub fn raw_bytes(body: bytes::Bytes) -> Response {
    raw_stream(axum::body::Body::from(body))
}

/// A raw reply written as it is sent (a contents dump being made).
pub fn raw_stream(body: axum::body::Body) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

#[derive(Serialize)]
struct Success<'a, P: Serialize> {
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<P>,
}

/// `{"status": "success"}`.
pub fn success() -> Response {
    respond(
        StatusCode::OK,
        python(&Success::<()> {
            status: "success",
            payload: None,
        }),
    )
}

/// `{"status": "success", "payload": ...}`.
pub fn success_with(payload: impl Serialize) -> Response {
    respond(
        StatusCode::OK,
        python(&Success {
            status: "success",
            payload: Some(payload),
        }),
    )
}

#[derive(Serialize)]
struct Failure<'a> {
    status: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<serde_json::Value>,
}

/// `{"status": "error", "message": ...}`, the API's error envelope.
pub fn failure(status: StatusCode, message: &str, payload: Option<serde_json::Value>) -> Response {
    respond(
        status,
        python(&Failure {
            status: "error",
            message,
            payload,
        }),
    )
}

#[derive(Serialize)]
struct CompactFailure<'a> {
    message: &'a str,
    status: &'a str,
}

/// `{"message":...,"status":"error"}`, as `jsonify` wrote authentication errors.
pub fn compact_failure(status: StatusCode, message: &str) -> Response {
    respond(
        status,
        compact(&CompactFailure {
            message,
            status: "error",
        }),
    )
}
