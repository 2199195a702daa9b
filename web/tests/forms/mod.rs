//! What the in-process page tests share: requests as a browser sends them (pages, form
//! posts with cookies) through the composed router, and logging in.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

use crate::common::{Answer, TestHub};

/// The password of every account the tests make.
pub const PASSWORD: &str = "correct horse battery";

pub async fn send(hub: &TestHub, request: Request<Body>) -> Answer {
    let response = web::app(Arc::clone(&hub.hub))
        .oneshot(request)
        .await
        .unwrap();
    Answer::read(response).await
}

/// A browser's GET, with a cookie header if given.
pub async fn browse(hub: &TestHub, path: &str, cookie: Option<&str>) -> Answer {
    let mut request = Request::get(path).header(header::ACCEPT, "text/html");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    send(hub, request.body(Body::empty()).unwrap()).await
}

/// A form post.
pub async fn post(
    hub: &TestHub,
    path: &str,
    cookie: &str,
    origin: Option<&str>,
    form: &str,
) -> Answer {
    let mut request = Request::post(path)
        .header(header::ACCEPT, "text/html")
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    send(hub, request.body(Body::from(form.to_owned())).unwrap()).await
}

pub fn set_cookie(answer: &Answer, name: &str) -> Option<String> {
    answer
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

pub fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF field")
        + 19;
    page[at..at + 64].to_owned()
}

/// Logs `alice` in with her password; the session cookie and its CSRF token.
pub async fn log_in(hub: &TestHub) -> (String, String) {
    log_in_as(hub, "alice").await
}

/// Logs `name` in with [`PASSWORD`]; the session cookie and its CSRF token.
pub async fn log_in_as(hub: &TestHub, name: &str) -> (String, String) {
    let login = browse(hub, "/login", None).await;
    let pre = set_cookie(&login, "flisthub-csrf").unwrap();
    let csrf = csrf_of(&login.text());
    let form = format!("csrf={csrf}&name={name}&password=correct+horse+battery");
    let answer = post(hub, "/login", &pre, None, &form).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    let cookie = set_cookie(&answer, "flisthub-session").unwrap();
    let tokens = browse(hub, "/tokens", Some(&cookie)).await;
    assert_eq!(tokens.status, StatusCode::OK);
    let csrf = csrf_of(&tokens.text());
    (cookie, csrf)
}
