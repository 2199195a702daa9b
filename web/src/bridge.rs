//! The pages' scripts calling the hub's API as the logged-in browser: an API request that
//! carries the session's CSRF token in [`CSRF_HEADER`] (and no credentials of its own) is
//! sent on with the session's bearer token and chosen identity, so that `POST /upload`,
//! `upload-flist` and the job routes are answered by the API's own handlers with the API's
//! own authorization, and the token never reaches the page (the session cookie is
//! `HttpOnly`; the token stays on the server).
//!
//! The cookie alone never authenticates an API request: the header must hold the
//! session's synchronizer token, which another site cannot read, and a request from
//! another origin is refused as a form from one is ([`check_form`]). A request without the
//! header is left as it came (a client's bearer token, or 0-hub's anonymous answers).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hub::Error;

use crate::Web;
use crate::session::{ACTIVE_USER_COOKIE, check_form, logged_in};

/// The header a page's script sends the session's CSRF token in.
pub const CSRF_HEADER: &str = "x-flisthub-csrf";

/// The middleware: see the module.
pub async fn session_to_bearer(
    State(web): State<Arc<Web>>,
    mut request: Request,
    next: Next,
) -> Response {
    let sent = match request.headers().get(CSRF_HEADER) {
        // With the client's own credentials, those decide and the header means nothing.
        Some(sent) if !request.headers().contains_key(header::AUTHORIZATION) => {
            sent.to_str().unwrap_or("").to_owned()
        }
        _ => return next.run(request).await,
    };
    // A copy: the request (its body) is not held across the session's lookup.
    let headers = request.headers().clone();
    let user = match logged_in(&web, &headers).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return Error::Unauthenticated {
                message: "your session has ended: log in again".into(),
                malformed: false,
            }
            .into_response();
        }
        Err(e) => return e.into_response(),
    };
    if let Err(e) = check_form(&web, &headers, Some(&user), Some(&sent)) {
        return e.into_response();
    }
    let Ok(mut bearer) = HeaderValue::from_str(&format!("bearer {}", user.session.token)) else {
        return Error::Internal("a session's token is not a header value".into()).into_response();
    };
    bearer.set_sensitive(true);
    // The identity is the session's choice, whatever `active-user` cookie the browser has.
    let mut cookies: Vec<String> = hub::cookies::pairs(&headers)
        .filter(|pair| {
            pair.split_once('=')
                .is_none_or(|(name, _)| name.trim() != ACTIVE_USER_COOKIE)
        })
        .map(str::to_owned)
        .collect();
    if let Some(active) = &user.session.active {
        // Encoded as the account switcher sets it.
        let active = hub::encode_segment(active);
        cookies.push(format!("{ACTIVE_USER_COOKIE}={active}"));
    }
    let Ok(cookie) = HeaderValue::from_str(&cookies.join("; ")) else {
        return Error::BadRequest("a cookie is not text".into()).into_response();
    };
    let headers = request.headers_mut();
    headers.remove(CSRF_HEADER);
    headers.remove(header::COOKIE);
    if !cookies.is_empty() {
        headers.insert(header::COOKIE, cookie);
    }
    headers.insert(header::AUTHORIZATION, bearer);
    next.run(request).await
}
