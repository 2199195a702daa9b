//! `openapi.json` held to the router: every route the hub mounts is described, with the
//! methods it answers, and nothing else is.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use tower::ServiceExt;

use super::{route_table, v1};
use crate::config::Config;
use crate::hub::Hub;

/// The methods probed on each route. HEAD and OPTIONS come with GET and CORS; `INFO` is
/// described in the text of the route that takes it (OpenAPI has no field for it).
const PROBED: [&str; 5] = ["GET", "POST", "DELETE", "PUT", "PATCH"];

/// A path with its parameters unnamed: the router names the segments of the
/// `/api/flist/me/...` routes alike (`{a}`, `{b}`: its matcher needs one name per position)
/// where the description names what each is; and OpenAPI writes the wildcard `{*path}`
/// as `{path}`.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "{}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The operations described for each path shape.
fn described() -> BTreeMap<String, serde_json::Value> {
    let document: serde_json::Value = serde_json::from_str(v1::OPENAPI).unwrap();
    let paths = document["paths"].as_object().unwrap();
    let shapes: BTreeMap<_, _> = paths.iter().map(|(p, o)| (shape(p), o.clone())).collect();
    assert_eq!(
        shapes.len(),
        paths.len(),
        "two described paths differ only by names"
    );
    shapes
}

#[test]
fn every_mounted_route_is_described_and_nothing_else() {
    let config = Config::from_toml("").unwrap();
    let mounted: BTreeSet<String> = route_table(&config.limits)
        .iter()
        .map(|(path, _)| shape(path))
        .collect();
    let described: BTreeSet<String> = described().keys().cloned().collect();
    let undescribed: Vec<_> = mounted.difference(&described).collect();
    let unmounted: Vec<_> = described.difference(&mounted).collect();
    assert!(
        undescribed.is_empty() && unmounted.is_empty(),
        "routes missing from openapi.json: {undescribed:?}; described but not mounted: {unmounted:?}"
    );
}

/// Each route is asked each method with placeholder segments and no credentials: a method
/// described must not be refused as a method (405), one not described must be.
#[tokio::test]
async fn every_route_answers_the_methods_described_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::from_toml("").unwrap();
    config.server.data_dir = Some(dir.path().join("data"));
    let routes = route_table(&config.limits);
    let hub = Arc::new(Hub::open(config).await.unwrap());
    let router = super::router(hub, None);
    let described = described();
    let mut wrong = Vec::new();
    for (path, _) in &routes {
        let operations = &described[&shape(path)];
        let uri = shape(path).replace("{}", "x");
        for method in PROBED {
            let request = Request::builder()
                .method(Method::from_bytes(method.as_bytes()).unwrap())
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let status = router.clone().oneshot(request).await.unwrap().status();
            let is_described = operations.get(method.to_ascii_lowercase()).is_some();
            if is_described == (status == StatusCode::METHOD_NOT_ALLOWED) {
                wrong.push(format!(
                    "{method} {path}: {status}, described: {is_described}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
