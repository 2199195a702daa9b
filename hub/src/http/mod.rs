//! The HTTP interface: routes speak HTTP and call the hub's services; errors become answers
//! in `response`.

mod api;
mod chunks;
pub mod cookies;
mod download;
mod drain;
mod events;
mod files;
mod gc;
mod images;
pub mod json;
mod metrics;
#[cfg(test)]
mod openapi_check;
mod pace;
mod response;
mod retention;
mod scrub;
mod upload;
pub mod v1;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get, post};
use tower::Layer;
use tower::util::MapRequestLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{Any, CorsLayer};
use tower_http::normalize_path::NormalizePathLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::auth::{Caller, Credentials};
use crate::config::LimitsConfig;
use crate::error::Error;
use crate::hub::Hub;

/// The cookie that selects the identity to act as (0-hub's).
const ACTIVE_USER_COOKIE: &str = "active-user";

/// Room for the multipart framing around an uploaded flist.
const FORM_OVERHEAD: u64 = 1 << 20;

/// The caller of an `/api/flist/me...` route (and of the other routes that change the
/// namespace): not in read-only mode, authenticated, within its write rate.
pub struct Me(pub Caller);

impl FromRequestParts<Arc<Hub>> for Me {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, Error> {
        if hub.config().server.readonly {
            return Err(Error::Readonly);
        }
        let Authenticated(caller) = Authenticated::from_request_parts(parts, hub).await?;
        hub.limits().check_write(&caller.user)?;
        Ok(Me(caller))
    }
}

/// An authenticated caller, whatever the mode and not counted against the write rate: the
/// chunk API's routes (uploads come by the hundred in one push, and have limits of their
/// own; its usage route is a read).
pub struct Authenticated(pub Caller);

impl FromRequestParts<Arc<Hub>> for Authenticated {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, Error> {
        let active_user = cookies::value(&parts.headers, ACTIVE_USER_COOKIE);
        let credentials = Credentials {
            authorization: parts
                .headers
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
            active_user: active_user.as_deref(),
        };
        Ok(Authenticated(hub.auth().authenticate(credentials).await?))
    }
}

/// The caller of a public route that shows more to some callers (administrators): `None`
/// for an anonymous request; credentials that are sent must be valid.
pub struct MaybeAuthenticated(pub Option<Caller>);

impl FromRequestParts<Arc<Hub>> for MaybeAuthenticated {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, Error> {
        if !parts.headers.contains_key(header::AUTHORIZATION) && hub.auth().enabled() {
            return Ok(MaybeAuthenticated(None));
        }
        let Authenticated(caller) = Authenticated::from_request_parts(parts, hub).await?;
        Ok(MaybeAuthenticated(Some(caller)))
    }
}

pub(crate) use metrics::handle as metrics_handle;

/// The whole HTTP interface: the routes, and before them what makes a request match its
/// route as 0-hub's clients expect.
pub fn router(hub: Arc<Hub>, pages: Option<Router>) -> Router {
    metrics::install();
    // Both act before routing, so they wrap the routes. Methods are matched whatever their
    // case, as Flask does (`curl -X Post`, `Info`); a trailing slash is accepted (0-hub's
    // `strict_slashes=False`).
    let normalised = NormalizePathLayer::trim_trailing_slash()
        .layer(MapRequestLayer::new(uppercase_method).layer(routes(hub, pages)));
    Router::new().fallback_service(normalised)
}

/// The method in upper case, as Werkzeug reads it: one place, so that routing, CORS, the
/// handlers and the metrics all see the same method.
fn uppercase_method(mut request: Request) -> Request {
    let method = request.method().as_str();
    if method.bytes().any(|b| b.is_ascii_lowercase())
        && let Ok(upper) = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
    {
        *request.method_mut() = upper;
    }
    request
}

/// The web pages, when mounted: what the API does not answer goes to them.
#[derive(Clone)]
pub struct Pages(pub Router);

/// Every route the hub serves, as the router mounts it: the router is built from this
/// list alone, so the test that holds `openapi.json` to it sees every route.
fn route_table(limits: &LimitsConfig) -> Vec<(&'static str, MethodRouter<Arc<Hub>>)> {
    let upload_limit =
        DefaultBodyLimit::max(size_limit(limits.upload_size.saturating_add(FORM_OVERHEAD)));
    let flist_limit =
        DefaultBodyLimit::max(size_limit(limits.flist_size.saturating_add(FORM_OVERHEAD)));
    vec![
        // 0-hub's public reads (docs/api.md, "Reading").
        ("/api/repositories", get(api::repositories)),
        ("/api/flist", get(api::all_entries)),
        ("/api/fileslist", get(api::fileslist)),
        ("/api/flist/{repo}", get(api::repository)),
        ("/api/flist/{repo}/tags/{tag}", get(api::tag)),
        // GET dumps the contents; INFO (a method of 0-hub's own) is `light`.
        ("/api/flist/{repo}/{flist}", any(api::flist)),
        ("/api/flist/{repo}/{flist}/light", get(api::light)),
        ("/api/flist/{repo}/{flist}/taglink", get(api::taglink)),
        ("/api/flist/{repo}/{flist}/metadata", get(api::metadata)),
        // The caller's repository, 0-hub's `/api/flist/me...`.
        ("/api/flist/me", get(api::me)),
        (
            "/api/flist/me/upload",
            post(upload::me_upload)
                .layer(upload_limit)
                .get(api::me_inspect_named)
                .delete(api::me_delete_named),
        ),
        (
            "/api/flist/me/upload-flist",
            post(upload::me_upload_flist)
                .layer(flist_limit)
                .get(api::me_inspect_named)
                .delete(api::me_delete_named),
        ),
        (
            "/api/flist/me/docker",
            post(images::me_docker)
                .get(api::me_inspect_named)
                .delete(api::me_delete_named),
        ),
        (
            "/api/flist/me/{a}",
            get(api::me_inspect).delete(api::me_delete),
        ),
        ("/api/flist/me/{a}/link/{b}", changes(api::me_link)),
        (
            "/api/flist/me/{a}/crosslink/{b}/{c}",
            changes(api::me_crosslink),
        ),
        (
            "/api/flist/me/{a}/crosstag/{b}/{c}",
            changes(api::me_crosstag).delete(api::me_crosstag),
        ),
        (
            "/api/flist/me/{a}/{b}/tag/{c}/{d}",
            changes(api::me_tag).delete(api::me_tag),
        ),
        ("/api/flist/me/{a}/rename/{b}", changes(api::me_rename)),
        (
            "/api/flist/me/promote/{a}/{b}/{c}",
            changes(api::me_promote),
        ),
        ("/api/flist/me/merge/{a}", post(api::me_merge)),
        // 0-hub's web form upload and its progress events.
        // GET is the web pages' upload form (0-hub's page at the same URL).
        (
            "/upload",
            post(upload::web_upload)
                .layer(upload_limit)
                .get(download::page),
        ),
        ("/listen/{id}", get(events::listen)),
        // New in flisthub.
        (v1::HEALTH, get(v1::health)),
        (v1::JOBS, get(v1::jobs)),
        (v1::JOB, get(v1::job).delete(images::cancel_job)),
        (v1::OPENAPI_JSON, get(v1::openapi)),
        (v1::CHANGES, get(v1::changes)),
        (v1::CHUNKS, get(chunks::info).post(chunks::upload)),
        (v1::CHUNKS_MISSING, post(chunks::missing)),
        (v1::CHUNKS_GET, post(chunks::get_many)),
        (v1::CHUNKS_USAGE, get(chunks::usage)),
        (v1::CHUNK, get(chunks::get_one)),
        (v1::BLOCK, get(chunks::get_block)),
        (v1::FLIST_FILE, get(files::inner_file)),
        (v1::CONVERT, post(images::convert)),
        (v1::ADMIN_GC, get(gc::reports).post(gc::run)),
        (
            v1::ADMIN_RETENTION,
            get(retention::list).post(retention::run),
        ),
        (
            v1::ADMIN_RETENTION_REPO,
            get(retention::get)
                .put(retention::put)
                .delete(retention::delete),
        ),
        (v1::ADMIN_SCRUB, get(scrub::reports).post(scrub::run)),
        (v1::USAGE, get(v1::usage)),
        ("/metrics", get(v1::metrics)),
        // Downloads.
        ("/{repo}/{file}", get(download::repository_file)),
        ("/{repo}/tags/{tag}/{file}", get(download::tag_file)),
    ]
}

fn routes(hub: Arc<Hub>, pages: Option<Router>) -> Router {
    let request_limit = DefaultBodyLimit::max(size_limit(hub.config().limits.request_body));
    route_table(&hub.config().limits)
        .into_iter()
        .fold(Router::new(), |router, (path, answer)| {
            router.route(path, answer)
        })
        .fallback_service(match &pages {
            Some(pages) => pages.clone(),
            None => Router::new().fallback(not_found),
        })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(request_limit)
        .layer(axum::Extension(pages.map(Pages)))
        .layer(middleware::from_fn(drain::drain_unread_body))
        .layer(middleware::from_fn(response::rejections_as_json))
        .layer(middleware::from_fn_with_state(Arc::clone(&hub), limit_reads))
        .layer(middleware::from_fn(metrics::record))
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([
                    Method::GET,
                    Method::HEAD,
                    Method::POST,
                    Method::DELETE,
                    Method::from_bytes(b"INFO").unwrap_or(Method::GET),
                ])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::RANGE,
                    header::IF_NONE_MATCH,
                    HeaderName::from_static("x-original-name"),
                ])
                .expose_headers([header::ETAG, header::CONTENT_RANGE, header::RETRY_AFTER])
                .max_age(Duration::from_secs(3600)),
        )
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            json::failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error; the hub's log has the details",
                None,
            )
        }))
        .with_state(hub)
}

/// A route that changes something: GET as 0-hub's clients call it, POST as new clients
/// should, and HEAD refused (0-hub ran the change for HEAD too).
fn changes<H, T>(handler: H) -> MethodRouter<Arc<Hub>>
where
    H: axum::handler::Handler<T, Arc<Hub>>,
    T: 'static,
{
    get(handler.clone()).post(handler).head(api::head_refused)
}

fn size_limit(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

async fn not_found() -> Response {
    json::failure(StatusCode::NOT_FOUND, "not found", None)
}

pub(crate) async fn method_not_allowed() -> Response {
    json::failure(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed here",
        None,
    )
}

/// The per-address request rate of `limits.read-rate`.
async fn limit_reads(State(hub): State<Arc<Hub>>, request: Request, next: Next) -> Response {
    if let Some(address) = client_address(&hub, &request)
        && let Err(e) = hub.limits().check_read(address)
    {
        return e.into_response();
    }
    next.run(request).await
}

/// The client's address: the connection's, or, when the hub trusts its proxy, the address
/// that proxy appended to `X-Forwarded-For` (the last one: those before it are whatever the
/// client wrote).
pub fn client_address(hub: &Hub, request: &Request) -> Option<IpAddr> {
    if hub.config().server.trust_forwarded
        && let Some(forwarded) = request
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return Some(forwarded);
    }
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}
