//! flisthub's web pages: server-rendered HTML over the hub's services, at 0-hub's URLs.
//!
//! The pages read through [`hub::Catalogue`] and change things through the same services
//! (and the same authorization) as the API; this crate never opens the database or the
//! chunk store. Templates are `maud`, which escapes everything it is given; the only
//! markup that is not built here is a readme's, rendered from markdown and cleaned by
//! `ammonia`. One stylesheet and one small script are embedded in the binary and served
//! under names that carry their hash, with a year's cache; every answer carries a strict
//! Content-Security-Policy (no inline script or style at all).
//!
//! [`app`] is the whole HTTP interface of a hub with its pages: the API answers first, the
//! pages take what it has no route for, and errors become HTML pages for browsers.

#![forbid(unsafe_code)]

mod account;
mod assets;
mod bridge;
mod browse;
mod cache;
mod convert;
mod diff;
mod errors;
mod jobs;
mod markdown;
mod merge;
mod preview;
mod render;
mod session;
mod tree;
mod upload;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use hub::Hub;
use tower::util::MapResponseLayer;

/// What every handler shares.
pub(crate) struct Web {
    hub: Arc<Hub>,
    cache: cache::PageCache,
}

pub(crate) type State = axum::extract::State<Arc<Web>>;

/// The Content-Security-Policy of every page: scripts, styles and images from the hub
/// itself only (a readme's remote images are not loaded), forms posted only to it, never
/// framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The pages alone, for [`hub::router_with_pages`].
pub fn pages(hub: Arc<Hub>) -> Router {
    routes(Arc::new(Web {
        hub,
        cache: cache::PageCache::default(),
    }))
}

fn routes(web: Arc<Web>) -> Router {
    Router::new()
        .route("/", get(browse::home))
        .route("/search", get(browse::search))
        .route("/diff", get(diff::diff))
        .route(
            "/docker-convert",
            get(convert::form_page).post(convert::start),
        )
        .route("/docker-convert/{id}", get(convert::job_page))
        .route("/docker-convert/{id}/cancel", post(convert::cancel))
        .route("/merge", get(merge::form_page).post(merge::merge))
        .route("/merge/sources", get(merge::sources))
        .route("/login", get(account::login_page).post(account::login))
        .route("/logout", get(account::logout_page).post(account::logout))
        .route("/account", post(account::switch))
        .route("/token", get(account::token_redirect))
        // `POST /upload` is the API's (the page's script sends the form there).
        .route("/upload", get(upload::upload_page))
        .route("/upload-flist", get(upload::upload_flist_page))
        .route("/jobs", get(jobs::jobs_page))
        .route(
            "/tokens",
            get(account::tokens_page).post(account::tokens_post),
        )
        .route("/static/{file}", get(assets::serve))
        .route("/{repo}", get(browse::repository))
        .route("/{repo}/{file}", get(preview::file))
        .route("/{repo}/tags/{tag}", get(browse::tag))
        .route("/{repo}/{file}/tree", get(tree::tree))
        .route("/{repo}/{file}/tree/", get(tree::tree))
        .route("/{repo}/{file}/tree/{*path}", get(tree::tree))
        .fallback(errors::not_found)
        .with_state(web)
        .layer(MapResponseLayer::new(security_headers))
}

/// The hub's whole HTTP interface with its pages; the pages' scripts call the API as
/// the logged-in browser through [`bridge`].
pub fn app(hub: Arc<Hub>) -> Router {
    let web = Arc::new(Web {
        hub: Arc::clone(&hub),
        cache: cache::PageCache::default(),
    });
    hub::router_with_pages(hub, routes(Arc::clone(&web)))
        .layer(axum::middleware::from_fn_with_state(
            web,
            bridge::session_to_bearer,
        ))
        .layer(axum::middleware::from_fn(errors::html_errors))
}

fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
