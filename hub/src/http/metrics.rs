//! Prometheus metrics of the HTTP interface, served at `/metrics`.
//!
//! Every distinct set of labels is a series the recorder keeps for the life of the process,
//! so labels only ever take values from fixed sets: the methods the hub knows, the route
//! templates of the router, and status codes (which only the hub's own code and axum
//! choose). A label copied from the request (an invented method, a path) would let any
//! client grow the hub's memory and every scrape without bound.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The route label of a request no route matched.
const UNMATCHED: &str = "unmatched";
/// The method label of a method the hub does not know.
const OTHER: &str = "other";

pub async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Route templates (`/api/flist/{repo}`), never the path itself.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |m| m.as_str().to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", status),
    ];
    metrics::counter!("flisthub_http_requests_total", &labels).increment(1);
    metrics::histogram!("flisthub_http_request_duration_seconds", &labels[..2])
        .record(started.elapsed().as_secs_f64());
    response
}

/// The method as a label: one of the methods of HTTP and 0-hub's `INFO`, else `other`.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [&str; 10] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "INFO",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method.as_str())
        .unwrap_or(OTHER)
}

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder (once per process).
pub fn install() {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                120.0,
            ])
            .ok()?
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).ok()?;
        Some(handle)
    });
}

pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get().and_then(Option::as_ref)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_known_set_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"INFO").unwrap()), "INFO");
        assert_eq!(
            method_label(&Method::from_bytes(b"X-JUNK-1").unwrap()),
            OTHER
        );
        assert_eq!(method_label(&Method::from_bytes(b"info").unwrap()), OTHER);
    }
}
