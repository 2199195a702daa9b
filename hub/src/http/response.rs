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

/// The status code of an error and what a client may read of it: the message for the
/// client's own mistakes, a summary for the hub's failures (logged here in full, since
/// paths and internal addresses stay in the log). Jobs record the same text.
pub(crate) fn public(e: &Error) -> (StatusCode, String) {
    use StatusCode as S;
    let status = match e {
        Error::BadRequest(_) | Error::MissingChunks { .. } => S::BAD_REQUEST,
        Error::NotFound(_) => S::NOT_FOUND,
        // 0-hub answers link conflicts with 401, and its clients know it.
        Error::LinkConflict(_) => S::UNAUTHORIZED,
        Error::Conflict(_) | Error::Cancelled(_) => S::CONFLICT,
        Error::TooLarge(_) => S::PAYLOAD_TOO_LARGE,
        Error::Quota(_) => S::INSUFFICIENT_STORAGE,
        Error::Timeout(_) => S::REQUEST_TIMEOUT,
        Error::TooManyRequests { .. } => S::TOO_MANY_REQUESTS,
        Error::Unauthenticated {
            malformed: true, ..
        }
        | Error::Readonly => S::BAD_REQUEST,
        Error::Unauthenticated { .. } => S::UNAUTHORIZED,
        Error::Forbidden(_) => S::FORBIDDEN,
        Error::Unavailable(_) => S::SERVICE_UNAVAILABLE,
        Error::Shared(e) => return public(e),
        Error::Convert(e) => return convert_error(e),
        Error::Store(e) => return store_error(e),
        Error::Flist(_)
        | Error::Database(_)
        | Error::Io { .. }
        | Error::Config(_)
        | Error::Internal(_) => return internal(e),
    };
    (status, e.to_string())
}

fn convert_error(e: &converter::Error) -> (StatusCode, String) {
    use converter::Error as C;
    match e {
        // A writer error about an entry is the archive's; one of the file is the hub's.
        C::Flist(flist::Error::Io { .. } | flist::Error::Sqlite(_)) => internal(e),
        C::Input(_) | C::Entry { .. } | C::Flist(_) => (StatusCode::BAD_REQUEST, e.to_string()),
        C::Limit(_) => (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
        C::Store(e) => store_error(e),
        C::Cancelled => (
            StatusCode::SERVICE_UNAVAILABLE,
            "cancelled: the hub is stopping, or the upload was abandoned".into(),
        ),
        C::Image { failure, .. } => (image_status(*failure), e.to_string()),
        C::Io { .. } | C::Extract(_) | C::Worker(_) => internal(e),
    }
}

/// A registry's or daemon's refusal, as the caller of the hub sees it: a registry that
/// refuses credentials is not the hub refusing the caller's token, hence 403 and not 401;
/// what the upstream fails at or sends wrong is a bad gateway.
fn image_status(failure: converter::ImageFailure) -> StatusCode {
    use converter::ImageFailure as F;
    match failure {
        F::NotFound => StatusCode::NOT_FOUND,
        F::Denied => StatusCode::FORBIDDEN,
        F::Reference | F::Platform => StatusCode::BAD_REQUEST,
        F::Unreachable | F::Invalid => StatusCode::BAD_GATEWAY,
    }
}

fn store_error(e: &chunkstore::Error) -> (StatusCode, String) {
    use chunkstore::{Error as E, Refusal};
    tracing::error!(error = %e, "chunk store");
    metrics::counter!("flisthub_store_errors_total").increment(1);
    match e {
        E::Refused {
            kind: Refusal::Full,
            ..
        } => (
            StatusCode::INSUFFICIENT_STORAGE,
            "the chunk store is full; nothing was published".into(),
        ),
        E::Unavailable { .. } | E::Refused { .. } | E::Io { .. } | E::Protocol { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the chunk store is unavailable; nothing was published, try again later".into(),
        ),
        _ => internal(e),
    }
}

fn internal(e: &dyn std::fmt::Display) -> (StatusCode, String) {
    tracing::error!(error = %e, "request failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; the hub's log has the details".into(),
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
