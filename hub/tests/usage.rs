//! `GET /api/v1/usage` (what each repository's flists take, what is unique to each, who sees
//! what, the walk kept between requests) and the storage quota of every way chunks come in
//! (archive uploads, flist uploads, image conversions; the chunk API's is in tests/push.rs).

mod common;

use axum::body::Body;
use axum::http::Request;
use common::{TestHub, flist_file, tarball};
use serde_json::Value;

const ADMIN: &str =
    "[auth]\nadministrators = [\"root\"]\n[server]\nofficial-repositories = [\"alice\"]\n";

/// Contents of single-chunk files (each well below the smallest chunk): their byte counts.
const ALICE_ONLY: usize = 3300;
const SHARED: usize = 3500;
const BOB_ONLY: usize = 1800;

fn text(seed: &str, len: usize) -> String {
    seed.repeat(len / seed.len() + 1)[..len].to_owned()
}

fn repository<'a>(answer: &'a Value, name: &str) -> &'a Value {
    answer["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {answer}"))
}

async fn upload(hub: &TestHub, token: &str, name: &str, content: &str) {
    let answer = hub.upload(Some(token), name, &tarball(content)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
}

#[tokio::test]
async fn usage_tells_each_repository_its_content_and_what_only_it_holds() {
    let hub = TestHub::open(&format!("{ADMIN}[usage]\nrefresh = \"0s\"\n")).await;
    let (alice, bob, root) = (hub.token("alice"), hub.token("bob"), hub.token("root"));
    upload(&hub, &alice, "own.tar.gz", &text("alice only ", ALICE_ONLY)).await;
    upload(&hub, &alice, "shared.tar.gz", &text("shared ", SHARED)).await;
    upload(&hub, &bob, "own.tar.gz", &text("bob only ", BOB_ONLY)).await;
    upload(&hub, &bob, "shared.tar.gz", &text("shared ", SHARED)).await;

    // An administrator: every repository, and the totals.
    let all = hub.call("GET", "/api/v1/usage", Some(&root)).await;
    assert_eq!(all.status, 200, "{}", all.text());
    let all = all.json();
    let a = repository(&all, "alice");
    assert_eq!(a["flists"], 2);
    assert_eq!(a["content_bytes"], ALICE_ONLY + SHARED);
    assert_eq!(a["chunks"], 2);
    assert_eq!(a["chunk_bytes"], ALICE_ONLY + SHARED);
    assert_eq!(a["unique_chunks"], 1, "{all}");
    assert_eq!(a["unique_bytes"], ALICE_ONLY);
    let b = repository(&all, "bob");
    assert_eq!(b["content_bytes"], BOB_ONLY + SHARED);
    assert_eq!(b["unique_bytes"], BOB_ONLY);
    let totals = &all["totals"];
    assert_eq!(totals["repositories"], 2);
    assert_eq!(totals["flists"], 4);
    assert_eq!(totals["chunks"], 3);
    let content = ALICE_ONLY + BOB_ONLY + 2 * SHARED;
    let stored = ALICE_ONLY + BOB_ONLY + SHARED;
    assert_eq!(totals["content_bytes"], content);
    assert_eq!(totals["chunk_bytes"], stored);
    let ratio = totals["dedup_ratio"].as_f64().unwrap();
    assert!(
        (ratio - content as f64 / stored as f64).abs() < 1e-9,
        "{ratio}"
    );
    assert_eq!(all["identity"]["identity"], "root");

    // A user: its own repository only, no totals; its quota standing, which counts what
    // its archive uploads stored new (bob's shared file was in the store already).
    let own = hub.call("GET", "/api/v1/usage", Some(&bob)).await.json();
    let names: Vec<&Value> = own["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["name"])
        .collect();
    assert_eq!(names, ["bob"], "{own}");
    assert!(own.get("totals").is_none(), "{own}");
    assert_eq!(own["identity"]["identity"], "bob");
    assert_eq!(own["identity"]["chunks"], 1, "{own}");
    let alice_usage = hub.call("GET", "/api/v1/usage", Some(&alice)).await.json();
    assert_eq!(alice_usage["identity"]["chunks"], 2, "{alice_usage}");
    assert!(alice_usage["identity"]["bytes"].as_u64().unwrap() > 0);

    // Links name another's flist and count nothing; once alice's flists go, the shared
    // chunk is bob's alone.
    let answer = hub
        .call("GET", "/api/flist/me/own.flist/link/mine", Some(&alice))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    for name in ["own.flist", "shared.flist"] {
        let answer = hub
            .call("DELETE", &format!("/api/flist/me/{name}"), Some(&alice))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let after = hub.call("GET", "/api/v1/usage", Some(&root)).await.json();
    let b = repository(&after, "bob");
    assert_eq!(b["unique_chunks"], 2, "{after}");
    assert_eq!(b["unique_bytes"], BOB_ONLY + SHARED);
    assert_eq!(repository(&after, "alice")["flists"], 0);
    assert_eq!(after["totals"]["chunks"], 2);

    // Anonymous: refused.
    assert_eq!(hub.get("/api/v1/usage").await.status, 401);

    // The metrics: the totals without labels, the official repository (alone) by name.
    let metrics = hub.get("/metrics").await.text();
    assert!(metrics.contains("flisthub_usage_chunks "), "{metrics}");
    assert!(metrics.contains("flisthub_usage_dedup_ratio "), "{metrics}");
    assert!(
        metrics.contains("flisthub_usage_repository_unique_bytes{repository=\"alice\"}"),
        "{metrics}"
    );
    assert!(!metrics.contains("repository=\"bob\""), "{metrics}");
}

#[tokio::test]
async fn usage_is_kept_until_the_namespace_changed_and_the_refresh_passed() {
    let hub = TestHub::open(&format!("{ADMIN}[usage]\nrefresh = \"1h\"\n")).await;
    let (alice, root) = (hub.token("alice"), hub.token("root"));
    upload(&hub, &alice, "one.tar.gz", &text("one ", 2000)).await;
    let first = hub.call("GET", "/api/v1/usage", Some(&root)).await.json();
    assert_eq!(first["totals"]["flists"], 1);
    upload(&hub, &alice, "two.tar.gz", &text("two ", 2000)).await;
    // Changed, but younger than an hour: the same figures, not walked again.
    let second = hub.call("GET", "/api/v1/usage", Some(&root)).await.json();
    assert_eq!(second["totals"]["flists"], 1, "{second}");
    assert_eq!(second["computed"], first["computed"]);

    // Unchanged, whatever the refresh: kept too (a restart walks once, then keeps).
    let hub = hub
        .restart(&format!("{ADMIN}[usage]\nrefresh = \"0s\"\n"))
        .await;
    let root = hub.token("root");
    let third = hub.call("GET", "/api/v1/usage", Some(&root)).await.json();
    assert_eq!(third["totals"]["flists"], 2, "{third}");
    let fourth = hub.call("GET", "/api/v1/usage", Some(&root)).await.json();
    assert_eq!(fourth["duration_ms"], third["duration_ms"]);
    assert_eq!(fourth["computed"], third["computed"]);
}

/// What `token`'s identity has stored, as the chunk API tells it.
async fn stored(hub: &TestHub, token: &str) -> u64 {
    let usage = hub.call("GET", "/api/v1/chunks/usage", Some(token)).await;
    assert_eq!(usage.status, 200, "{}", usage.text());
    usage.json()["bytes"].as_u64().unwrap()
}

/// Incompressible text (zstd leaves it near its length): a chunk whose stored size is
/// close to its content's.
fn noise(len: usize, seed: u64) -> String {
    testkit::noise(len, seed)
        .iter()
        .map(|b| char::from(b'!' + b % 90))
        .collect()
}

#[tokio::test]
async fn quotas_hold_for_archive_uploads_flist_uploads_and_conversions() {
    let quota = |bytes: u64| {
        format!("[chunks]\nquotas = {{ alice = {bytes} }}\n[images]\nenabled = true\n")
    };
    let hub = TestHub::open(&quota(1 << 20)).await;
    let alice = hub.token("alice");
    upload(&hub, &alice, "first.tar.gz", &noise(6000, 1)).await;
    let used = stored(&hub, &alice).await;
    assert!(used > 4000, "the upload's chunk was counted: {used}");

    // Room for a few hundred bytes more: a new chunk of thousands is refused, with 507, and
    // nothing is published or counted.
    let hub = hub.restart(&quota(used + 500)).await;
    let (alice, bob) = (hub.token("alice"), hub.token("bob"));
    let answer = hub
        .upload(Some(&alice), "second.tar.gz", &tarball(&noise(6000, 2)))
        .await;
    assert_eq!(answer.status, 507, "{}", answer.text());
    let message = answer.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("would pass its quota") && message.contains("chunks.quota"),
        "{message}"
    );
    assert_eq!(
        hub.call("GET", "/api/flist/alice/second.flist/light", None)
            .await
            .status,
        404
    );
    assert_eq!(stored(&hub, &alice).await, used);
    // Content already stored takes no room: the same file again is published.
    upload(&hub, &alice, "again.tar.gz", &noise(6000, 1)).await;
    assert_eq!(stored(&hub, &alice).await, used);
    // Another identity has no quota.
    upload(&hub, &bob, "big.tar.gz", &noise(6000, 3)).await;

    // At the quota: every way in is refused before anything is taken.
    let hub = hub.restart(&quota(used)).await;
    let alice = hub.token("alice");
    let answer = hub
        .upload(Some(&alice), "third.tar.gz", &tarball("tiny"))
        .await;
    assert_eq!(answer.status, 507, "{}", answer.text());
    assert!(
        answer.text().contains("no archive upload is taken"),
        "{}",
        answer.text()
    );
    let answer = hub
        .upload_flist(Some(&alice), "x.flist", &flist_file(1, &[]))
        .await;
    assert_eq!(answer.status, 507, "{}", answer.text());
    assert!(
        answer.text().contains("no flist upload is taken"),
        "{}",
        answer.text()
    );
    let request = Request::builder()
        .method("POST")
        .uri("/api/v1/convert")
        .header("authorization", format!("Bearer {alice}"))
        .body(Body::from(r#"{"image": "registry.invalid/x:1"}"#))
        .unwrap();
    let answer = hub.send(request).await;
    assert_eq!(answer.status, 507, "{}", answer.text());
    assert!(
        answer.text().contains("no image conversion is taken"),
        "{}",
        answer.text()
    );
    let jobs = hub.call("GET", "/api/v1/jobs", Some(&alice)).await.json();
    assert_eq!(jobs.as_array().map(Vec::len), Some(0), "no job: {jobs}");
    // The web form's upload too.
    let answer = hub
        .post_file(Some(&alice), "/upload", "web.tar.gz", &tarball("tiny"))
        .await;
    assert_eq!(answer.status, 507, "{}", answer.text());
}
