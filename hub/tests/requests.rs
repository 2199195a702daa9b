//! What any client can send, and what the hub makes of it: invented methods and paths do
//! not grow `/metrics`; method names match whatever their case, as in Flask; anonymous
//! health names no path or address; two identities cannot take every upload slot.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use common::{TestHub, tarball, upload_request};
use futures_util::StreamExt as _;
use tower::ServiceExt;

#[tokio::test]
async fn junk_methods_and_paths_do_not_grow_the_metrics() {
    let hub = TestHub::open("").await;
    let app = hub::router(Arc::clone(&hub.hub));
    let started = Instant::now();
    for i in 0..20_000u32 {
        let method = format!("JUNK{i}");
        // Two segments match the download route's template; four match none.
        let junk = i.wrapping_mul(2_654_435_761);
        let path = if i % 2 == 0 {
            format!("/{junk:x}/{i}")
        } else {
            format!("/{junk:x}/{i}/x/{junk}")
        };
        let request = Request::builder()
            .method(method.as_str())
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert!(response.status().is_client_error());
    }
    let metrics = hub.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(
        text.len() < 100 << 10,
        "/metrics is {} bytes after 20,000 junk requests",
        text.len()
    );
    assert!(
        text.contains(r#"method="other",route="/{repo}/{file}""#)
            && text.contains(r#"method="other",route="unmatched""#),
        "{text}"
    );
    eprintln!("20,000 junk requests in {:?}", started.elapsed());
}

#[tokio::test]
async fn method_names_match_whatever_their_case() {
    let hub = TestHub::open("").await;
    let alice = hub.token("alice");
    let (request, body) = upload_request(
        "Post",
        "/api/flist/me/upload",
        Some(&alice),
        "app.tar.gz",
        &tarball("one"),
    );
    let answer = hub.send(request.body(Body::from(body)).unwrap()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    for (method, path, canonical) in [
        ("get", "/api/flist/alice", "GET"),
        ("Get", "/api/flist/alice/app.flist/light", "GET"),
        ("Info", "/api/flist/alice/app.flist", "INFO"),
        ("info", "/api/flist/alice/app.flist", "INFO"),
    ] {
        let answer = hub.call(method, path, None).await;
        let expected = hub.call(canonical, path, None).await;
        assert_eq!(answer.status, 200, "{method} {path}: {}", answer.text());
        assert_eq!(answer.body, expected.body, "{method} {path}");
    }
    // INFO is `light`.
    assert_eq!(
        hub.call("Info", "/api/flist/alice/app.flist", None)
            .await
            .json()["md5"],
        hub.get("/api/flist/alice/app.flist/light").await.json()["md5"]
    );
    // The trailing slash rule still applies with the router alone.
    assert_eq!(hub.call("get", "/api/flist/alice/", None).await.status, 200);
    let deleted = hub
        .call("DeLeTe", "/api/flist/me/app.flist", Some(&alice))
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(
        hub.get("/api/flist/alice/app.flist/light").await.status,
        404
    );
    assert_eq!(hub.call("frob", "/api/flist", None).await.status, 405);
}

#[tokio::test]
async fn anonymous_health_names_no_location_and_administrators_see_it() {
    let hub = TestHub::open("[auth]\nadministrators = [\"ops\"]\n").await;
    let data = hub.dir.path().to_string_lossy().into_owned();
    for token in [None, Some(hub.token("alice"))] {
        let answer = hub.call("GET", "/api/v1/health", token.as_deref()).await;
        assert_eq!(answer.status, 200);
        let text = answer.text();
        assert!(!text.contains(&data), "{text}");
        let health = answer.json();
        assert_eq!(health["status"], "ok");
        assert_eq!(
            health["database"],
            serde_json::json!({"name": "database", "ok": true, "state": "ok"})
        );
        assert_eq!(
            health["store"],
            serde_json::json!([{"name": "store 1", "ok": true, "state": "ok"}])
        );
    }
    let ops = hub.token("ops");
    let health = hub.call("GET", "/api/v1/health", Some(&ops)).await.json();
    let location = health["store"][0]["location"].as_str().unwrap();
    assert!(
        location.starts_with("dir://") && location.contains(&data),
        "{health}"
    );
    // Credentials that are sent must be valid.
    assert_eq!(
        hub.call("GET", "/api/v1/health", Some("not-a-token"))
            .await
            .status,
        401
    );
}

/// An upload of a tar holding a 1 MiB file whose body stops after its first 64 KiB (and
/// never ends while the test runs).
fn stalled_upload(token: &str, name: &str) -> Request<Body> {
    let mut header = tar::Header::new_gnu();
    header.set_size(1 << 20);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append_data(&mut header, "big", &vec![7u8; 1 << 20][..])
        .unwrap();
    let archive = builder.into_inner().unwrap();
    let (request, mut body) =
        upload_request("POST", "/api/flist/me/upload", Some(token), name, &archive);
    body.truncate(64 << 10);
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(body))])
        .chain(futures_util::stream::pending());
    request.body(Body::from_stream(stream)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_identities_with_stalled_uploads_cannot_starve_a_third() {
    let hub = TestHub::open("").await;
    let app = hub::router(Arc::clone(&hub.hub));
    let (alice, bob, carol) = (hub.token("alice"), hub.token("bob"), hub.token("carol"));
    let per_identity = hub.hub.config().limits.uploads_per_identity;
    let mut stalled = Vec::new();
    for token in [&alice, &bob] {
        for i in 0..per_identity {
            let request = stalled_upload(token, &format!("slow{i}.tar"));
            stalled.push(tokio::spawn(app.clone().oneshot(request)));
        }
    }
    // Let them start (each takes its slot once its request head is read).
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Each holds its slots: one more is refused at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    for token in [&alice, &bob] {
        loop {
            let answer = hub
                .upload(Some(token), "one-more.tar.gz", &tarball("more"))
                .await;
            if answer.status == StatusCode::TOO_MANY_REQUESTS {
                assert!(
                    answer.text().contains("uploads-per-identity"),
                    "{}",
                    answer.text()
                );
                break;
            }
            assert!(Instant::now() < deadline, "{}", answer.text());
            // Until the stalled uploads hold their slots (later on a busy machine); paced
            // below limits.write-rate, which these retries count against.
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
    // Their uploads are still waiting for bytes, and a third identity still gets a slot.
    assert!(stalled.iter().all(|task| !task.is_finished()));
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        hub.upload(Some(&carol), "app.tar.gz", &tarball("carol")),
    )
    .await
    .expect("carol's upload waited for a slot the stalled uploads hold");
    assert_eq!(answer.status, 200, "{}", answer.text());
    for task in stalled {
        task.abort();
    }
}
