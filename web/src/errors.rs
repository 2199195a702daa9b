//! Errors for people: a browser (a request that accepts `text/html`, outside `/api/`) gets
//! a page where the API would answer its JSON envelope; clients get the JSON unchanged.
//! The message shown is the one the API gives (the hub decides what a client may read).

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use maud::html;

use crate::render::{Shell, page};

/// JSON error bodies read at most (they are a line or two).
const MAX_ERROR_BODY: usize = 64 << 10;

/// What no page and no route answers: a page for browsers, the API's JSON 404 for
/// clients (0-hub's clients read it).
pub async fn not_found(headers: HeaderMap) -> Response {
    if wants_html(&headers) {
        error_page(StatusCode::NOT_FOUND, "not found", false)
    } else {
        axum::response::IntoResponse::into_response(hub::Error::NotFound("not found".into()))
    }
}

/// Rewrites the JSON errors of browser requests into pages.
pub async fn html_errors(request: Request, next: Next) -> Response {
    let browser = wants_html(request.headers()) && !request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let status = response.status();
    if !browser || !(status.is_client_error() || status.is_server_error()) || !is_json(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let message = match to_bytes(body, MAX_ERROR_BODY).await {
        Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| default_message(status)),
        Err(_) => default_message(status),
    };
    let mut page = error_page(status, &message, false);
    // What the API said of the error beyond its body (Retry-After, WWW-Authenticate).
    for name in [header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = parts.headers.get(&name) {
            page.headers_mut().insert(name, value.clone());
        }
    }
    page
}

/// The status and the message the API would answer for `error`, for a page that shows
/// it in place (a form shown again with what the hub said).
pub fn described(error: hub::Error) -> (StatusCode, String) {
    let message = error.client_message();
    let status = axum::response::IntoResponse::into_response(error).status();
    (status, message)
}

/// A page saying what went wrong.
pub fn error_page(status: StatusCode, message: &str, readonly: bool) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = html! {
        h1 { (status.as_u16()) " · " (title) }
        p.error { (message) }
        p { a href="/" { "Back to the repositories" } }
    };
    let shell = Shell {
        title,
        readonly,
        user: None,
    };
    let mut response = page(&shell, status, &body.into_string());
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(crate::CONTENT_SECURITY_POLICY),
    );
    response
}

fn default_message(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("error").to_lowercase()
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

fn is_json(response: &Response<Body>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}
