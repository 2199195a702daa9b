//! The one place errors become HTTP answers: the status code of each kind, the body style
//! 0-hub used for it, and what a client may read. Server-side failures are logged in full
//! and answered with a short message: paths and internal addresses stay in the log.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::json::{compact_failure, failure};
use crate::error::{Class, Error};

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, message) = public(&self);
        let mut response = match &self {
            // The styles 0-hub's clients know: `jsonify`'s for authentication and
            // read-only errors, the API envelope for the rest.
            Error::Unauthenticated { .. } | Error::Forbidden(_) | Error::Readonly => {
                compact_failure(status, &message)
            }
            Error::MissingChunks {
                missing,
                checked,
                first,
                ..
            } => failure(
                status,
                &message,
                Some(serde_json::json!({"missing": missing, "checked": checked, "first": first})),
            ),
            _ => failure(status, &message, None),
        };
        let headers = response.headers_mut();
        match &self {
            Error::Unauthenticated {
                malformed: false, ..
            } => {
                metrics::counter!("flisthub_auth_failures_total").increment(1);
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Error::TooManyRequests { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        response
    }
}

/// The status code of an error and what a client may read of it.
pub(crate) fn public(e: &Error) -> (StatusCode, String) {
    (status(e.class()), e.client_message())
}

/// The status code of each class of error: 0-hub's where its clients look at them.
fn status(class: Class) -> StatusCode {
    use StatusCode as S;
    match class {
        Class::BadRequest | Class::Unauthenticated { malformed: true } | Class::Readonly => {
            S::BAD_REQUEST
        }
        Class::NotFound => S::NOT_FOUND,
        // 0-hub answers link conflicts with 401, and its clients know it.
        Class::LinkConflict | Class::Unauthenticated { malformed: false } => S::UNAUTHORIZED,
        Class::Conflict => S::CONFLICT,
        Class::TooLarge => S::PAYLOAD_TOO_LARGE,
        Class::Quota => S::INSUFFICIENT_STORAGE,
        Class::Timeout => S::REQUEST_TIMEOUT,
        Class::TooManyRequests => S::TOO_MANY_REQUESTS,
        Class::Forbidden => S::FORBIDDEN,
        Class::Unavailable => S::SERVICE_UNAVAILABLE,
        Class::BadGateway => S::BAD_GATEWAY,
        Class::Internal => S::INTERNAL_SERVER_ERROR,
    }
}

/// axum's own rejections (a body past its limit, a path segment that is not UTF-8, a bad
/// query string) are plain text; clients of this API read JSON, so they are rewritten into
/// the error envelope. Only client errors in plain text are: the hub's own plain-text
/// answers (`.md5`, `.txt`) are successes.
pub async fn rejections_as_json(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !response.status().is_client_error() || !plain {
        return response;
    }
    let status = response.status();
    let text = match axum::body::to_bytes(response.into_body(), 64 << 10).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is larger than the hub accepts (limits)".to_owned()
        }
        _ if text.is_empty() => status
            .canonical_reason()
            .unwrap_or("bad request")
            .to_owned(),
        _ => text,
    };
    failure(status, &message, None)
}
