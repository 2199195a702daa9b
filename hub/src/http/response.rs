//! The one place errors become HTTP answers: the status code of each kind, the body style
//! 0-hub used for it, and what a client may read. Server-side failures are logged in full
//! and answered with a short message: paths and internal addresses stay in the log.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::json::{compact_failure, failure};
use crate::error::Error;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        use StatusCode as S;
        let envelope = |status: StatusCode, message: &str| failure(status, message, None);
        match &self {
            Error::BadRequest(m) => envelope(S::BAD_REQUEST, m),
            Error::NotFound(m) => envelope(S::NOT_FOUND, m),
            Error::LinkConflict(m) => envelope(S::UNAUTHORIZED, m),
            Error::Conflict(m) => envelope(S::CONFLICT, m),
            Error::TooLarge(m) => envelope(S::PAYLOAD_TOO_LARGE, m),
            Error::Unauthenticated {
                message,
                malformed: true,
            } => compact_failure(S::BAD_REQUEST, message),
            Error::Unauthenticated { message, .. } => {
                metrics::counter!("flisthub_auth_failures_total").increment(1);
                let mut response = compact_failure(S::UNAUTHORIZED, message);
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            Error::Forbidden(m) => compact_failure(S::FORBIDDEN, m),
            Error::Readonly => compact_failure(S::BAD_REQUEST, "readonly mode"),
            Error::TooManyRequests {
                message,
                retry_after,
            } => {
                let mut response = envelope(S::TOO_MANY_REQUESTS, message);
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
                response
            }
            Error::MissingChunks {
                missing,
                checked,
                first,
            } => failure(
                S::BAD_REQUEST,
                &self.to_string(),
                Some(serde_json::json!({"missing": missing, "checked": checked, "first": first})),
            ),
            Error::Convert(e) => convert_error(e, &self),
            Error::Store(e) => store_error(e),
            Error::Unavailable(m) => envelope(S::SERVICE_UNAVAILABLE, m),
            Error::Flist(_)
            | Error::Database(_)
            | Error::Io { .. }
            | Error::Config(_)
            | Error::Internal(_) => internal(&self),
        }
    }
}

fn convert_error(e: &converter::Error, whole: &Error) -> Response {
    use converter::Error as C;
    match e {
        C::Input(_) | C::Entry { .. } | C::Flist(_) => {
            failure(StatusCode::BAD_REQUEST, &e.to_string(), None)
        }
        C::Limit(_) => failure(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string(), None),
        C::Store(e) => store_error(e),
        C::Cancelled => failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "cancelled: the hub is stopping, or the upload was abandoned",
            None,
        ),
        C::Io { .. } | C::Extract(_) | C::Worker(_) => internal(whole),
    }
}

fn store_error(e: &chunkstore::Error) -> Response {
    use chunkstore::{Error as E, Refusal};
    tracing::error!(error = %e, "chunk store");
    metrics::counter!("flisthub_store_errors_total").increment(1);
    match e {
        E::Refused {
            kind: Refusal::Full,
            ..
        } => failure(
            StatusCode::INSUFFICIENT_STORAGE,
            "the chunk store is full; nothing was published",
            None,
        ),
        E::Unavailable { .. } | E::Refused { .. } | E::Io { .. } | E::Protocol { .. } => failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "the chunk store is unavailable; nothing was published, try again later",
            None,
        ),
        _ => internal(&Error::Internal(e.to_string())),
    }
}

fn internal(e: &Error) -> Response {
    tracing::error!(error = %e, "request failed");
    failure(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; the hub's log has the details",
        None,
    )
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
