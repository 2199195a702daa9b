//! The page shell and the small pieces every page uses: sizes, times, copy buttons.

use std::time::{Duration, UNIX_EPOCH};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::assets;
use crate::session::LoggedIn;

/// What the shell shows around a page's body.
pub struct Shell<'a> {
    pub title: &'a str,
    pub readonly: bool,
    pub user: Option<&'a LoggedIn>,
}

/// A whole page: the shell around `body` (already rendered: bodies may come from the cache).
pub fn page(shell: &Shell<'_>, status: StatusCode, body: &str) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (shell.title) " · flisthub" }
                link rel="stylesheet" href=(assets::css_url());
                script src=(assets::js_url()) defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "flisthub" }
                    nav aria-label="Main" {
                        a href="/" { "Repositories" }
                        @if shell.user.is_some() {
                            a href="/upload" { "Upload" }
                            a href="/jobs" { "Jobs" }
                            a href="/docker-convert" { "Convert an image" }
                            a href="/merge" { "Merge" }
                        }
                        form.search action="/search" method="get" role="search" {
                            label for="q" hidden { "Search" }
                            input #q type="search" name="q" placeholder="Search flists, tags, repositories";
                            button type="submit" { "Search" }
                        }
                    }
                    div.who {
                        @if let Some(user) = shell.user {
                            (switcher(user))
                            a href="/tokens" { "API tokens" }
                            form.inline action="/logout" method="post" {
                                input type="hidden" name="csrf" value=(user.session.csrf);
                                button.secondary type="submit" { "Log out" }
                            }
                        } @else {
                            a href="/login" { "Log in" }
                        }
                    }
                }
                @if shell.readonly {
                    p.notice role="status" {
                        "This hub is a read-only mirror: browsing and downloads work, changes are refused."
                    }
                }
                main { (PreEscaped(body)) }
                footer { "flisthub · " a href="/api/v1/openapi.json" { "API" } }
            }
        }
    };
    html_response(status, markup)
}

/// Who is logged in, and the identities they may act as (0-hub's `active-user`).
fn switcher(user: &LoggedIn) -> Markup {
    let caller = &user.caller;
    let acting = caller.repository.to_string();
    let identities: Vec<&str> = std::iter::once(caller.user.as_str())
        .chain(caller.accounts.iter().map(String::as_str))
        .collect();
    html! {
        @if identities.len() > 1 {
            form.inline action="/account" method="post" {
                input type="hidden" name="csrf" value=(user.session.csrf);
                label for="active" { (caller.user) " acting as " }
                select #active name="active" {
                    @for identity in &identities {
                        option value=(identity) selected[*identity == acting] { (identity) }
                    }
                }
                " "
                button.secondary type="submit" { "Switch" }
            }
        } @else {
            span { "Logged in as " b { (caller.user) } }
        }
    }
}

pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// A size for people: `1.5 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A time: UTC in the page, the reader's locale once the script runs.
pub fn time(seconds: i64) -> Markup {
    if seconds <= 0 {
        return html! { span.muted { "—" } };
    }
    let at = UNIX_EPOCH + Duration::from_secs(seconds as u64);
    let iso = humantime::format_rfc3339_seconds(at).to_string();
    let shown = format!("{} UTC", iso.trim_end_matches('Z').replacen('T', " ", 1));
    html! { time datetime=(iso) { (shown) } }
}

/// A value shown in full with a button that copies it (hidden until the script runs).
pub fn copyable(label: &str, value: &str) -> Markup {
    html! {
        span.copyable {
            code { (value) }
            button.copy type="button" data-copy=(value) hidden aria-label={ "Copy " (label) } { "Copy" }
        }
    }
}

/// `/<segment>` percent-encoded, for links inside the hub.
pub fn path(segments: &[&str]) -> String {
    let mut out = String::new();
    for segment in segments {
        out.push('/');
        out.push_str(&hub::encode_segment(segment));
    }
    out
}
