//! Who is browsing: the session cookie, the caller it acts as (re-authenticated on every
//! request through the hub's [`hub::Authenticator`], with the session's token and chosen
//! identity, so a revoked or expired token ends the session), and the CSRF checks every
//! form goes through: the request's `Origin`, when sent, must be the hub's, and the form
//! must carry the session's synchronizer token (before login: the double-submit cookie's
//! value).

use axum::http::{HeaderMap, HeaderValue, header};
pub use hub::cookies::value as cookie;
use hub::{Caller, Credentials, Error, Result, Session};

use crate::Web;

pub const SESSION_COOKIE: &str = "flisthub-session";
/// The double-submit token of forms shown before login.
pub const CSRF_COOKIE: &str = "flisthub-csrf";
/// 0-hub's cookie selecting the identity to act as.
pub const ACTIVE_USER_COOKIE: &str = "active-user";

/// A logged-in browser.
pub struct LoggedIn {
    pub cookie: String,
    pub session: Session,
    pub caller: Caller,
}

/// The browser's session, if it has a live one.
pub async fn logged_in(web: &Web, headers: &HeaderMap) -> Result<Option<LoggedIn>> {
    let Some(cookie) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let hub = &web.hub;
    let Some(session) = hub.accounts().session(&cookie).await? else {
        return Ok(None);
    };
    let authorization = format!("bearer {}", session.token);
    let credentials = Credentials {
        authorization: Some(authorization.as_bytes()),
        active_user: session.active.as_deref(),
    };
    match hub.auth().authenticate(credentials).await {
        Ok(caller) => Ok(Some(LoggedIn {
            cookie,
            session,
            caller,
        })),
        Err(e) => {
            // Revoked or expired: the session ends with its token.
            tracing::debug!(error = %e, "a web session's token is no longer valid");
            hub.accounts().end_session(&cookie).await?;
            Ok(None)
        }
    }
}

/// The browser's session, or the refusal of a page that needs one.
pub async fn required(web: &Web, headers: &HeaderMap) -> Result<LoggedIn> {
    logged_in(web, headers)
        .await?
        .ok_or_else(|| Error::Unauthenticated {
            message: "log in first".into(),
            malformed: false,
        })
}

/// A logged-in caller who may change the namespace now: what the API asks of its
/// `/api/flist/me...` callers (not a read-only hub, within the write rate).
pub async fn writer(web: &Web, headers: &HeaderMap) -> Result<LoggedIn> {
    if web.hub.config().server.readonly {
        return Err(Error::Readonly);
    }
    let user = required(web, headers).await?;
    web.hub.limits().check_write(&user.caller.user)?;
    Ok(user)
}

/// Refuses a form post that may come from another site.
pub fn check_form(
    web: &Web,
    headers: &HeaderMap,
    logged_in: Option<&LoggedIn>,
    sent: Option<&str>,
) -> Result<()> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let public = origin_of(web.hub.config().public_url().as_str());
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let same_host = origin
            .split_once("://")
            .is_some_and(|(_, rest)| !host.is_empty() && rest == host);
        if origin != public && !same_host {
            return Err(Error::Forbidden(
                "this form was sent from another site".into(),
            ));
        }
    }
    let expected = match logged_in {
        Some(l) => Some(l.session.csrf.clone()),
        None => cookie(headers, CSRF_COOKIE),
    };
    match (expected, sent) {
        (Some(expected), Some(sent))
            if !expected.is_empty() && constant_time_eq(expected.as_bytes(), sent.as_bytes()) =>
        {
            Ok(())
        }
        _ => Err(Error::Forbidden(
            "this form's security token is missing or stale: reload the page and send it again"
                .into(),
        )),
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", rest.split('/').next().unwrap_or("")),
        None => url.to_owned(),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A `Set-Cookie` value: `Secure` when the hub is reached over TLS.
pub fn set_cookie(
    web: &Web,
    name: &str,
    value: &str,
    http_only: bool,
    max_age: i64,
) -> HeaderValue {
    let secure = web.hub.config().public_url().starts_with("https://");
    let mut cookie = format!("{name}={value}; Path=/; SameSite=Lax; Max-Age={max_age}");
    if http_only {
        cookie.push_str("; HttpOnly");
    }
    if secure {
        cookie.push_str("; Secure");
    }
    // Names and values are ours (hex, or a checked repository name).
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("x=; Max-Age=0"))
}
