//! Garbage collection of a hub's chunk store, through the real binary: against a router
//! over a dir store, a real 0-db and a real redis-server (publish, delete, collect with
//! grace 0: exactly the chunks no flist names any more are gone, counted on each server;
//! every remaining flist extracts byte-identical), and while uploads, pushes and deletes
//! keep coming (nothing published during the runs loses a chunk).

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chunkstore::{ChunkKey, ChunkStore};
use common::hub::*;
use common::*;
use reqwest::Method;
use serde_json::Value;
use testkit::RedisServer;
use testkit::peers::Zdb;

/// A tree of `files` files of incompressible content, with one file every tree shares.
fn tree(root: &Path, files: u64, seed: u64) {
    std::fs::create_dir_all(root.join("data")).unwrap();
    for i in 0..files {
        std::fs::write(
            root.join(format!("data/f{i}")),
            noise(40_000 + i as usize * 1000, seed + i),
        )
        .unwrap();
    }
    std::fs::write(root.join("shared"), noise(30_000, 7)).unwrap();
}

fn upload(hub: &HubServer, token: &str, name: &str, src: &Path) {
    let response = hub.upload(token, &format!("{name}.tar.gz"), tar_gz(src));
    let status = response.status();
    assert!(
        status.is_success(),
        "{status}: {}",
        response.text().unwrap()
    );
}

/// Extracts `url` and checks every file against `src`, byte for byte.
fn extracts_identical(work: &Path, url: &str, src: &Path) {
    let dest = work.join(format!("out-{}", rand::random::<u64>()));
    ok(flisthub(work, args!["extract", url, dest]));
    for entry in walkdir::WalkDir::new(src) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let relative = entry.path().strip_prefix(src).unwrap();
            let got = std::fs::read(dest.join(relative))
                .unwrap_or_else(|e| panic!("{url}: {relative:?}: {e}"));
            assert!(
                got == std::fs::read(entry.path()).unwrap(),
                "{url}: {relative:?} differs"
            );
        }
    }
    std::fs::remove_dir_all(dest).unwrap();
}

async fn chunk_count(store: &dyn ChunkStore) -> u64 {
    store.stats().await.unwrap()[0].keys.unwrap()
}

fn chunk_keys(report: &Value) -> HashSet<String> {
    report["would_go"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn grace_zero_removes_exactly_the_chunks_no_flist_names() {
    let Some(zdb) = Zdb::start() else { return };
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let backends = [
        format!("dir://{}", work.path().join("store").display()),
        format!("zdb://127.0.0.1:{}/default", zdb.port()),
        format!("{}/0", redis.url()),
    ];
    let config = format!(
        "[auth]\nadministrators = [\"admin\"]\n[gc]\ngrace = \"0s\"\n[store]\nbackends = {backends:?}\nreplicas = 2\n"
    );
    let hub = tokio::task::spawn_blocking(move || HubServer::start(&config))
        .await
        .unwrap();
    let hub = Arc::new(hub);
    let (alice, admin) = (hub.token("alice", &[]), hub.token("admin", &[]));
    let trees: Vec<_> = (0..3)
        .map(|i| work.path().join(format!("src{i}")))
        .collect();
    for (i, src) in trees.iter().enumerate() {
        tree(src, 6, 100 * i as u64);
    }
    let (h, t) = (Arc::clone(&hub), trees.clone());
    let keys = tokio::task::spawn_blocking(move || {
        upload(&h, &alice, "a", &t[0]);
        upload(&h, &alice, "b", &t[1]);
        ok(flisthub(
            t[2].parent().unwrap(),
            args![
                "push", t[2], "--hub", h.url, "--token", alice, "--name", "c"
            ],
        ));
        let keys: Vec<HashSet<ChunkKey>> = ["a", "b", "c"]
            .iter()
            .map(|n| flist_keys(&h, &format!("/alice/{n}.flist")))
            .collect();
        let deleted = h
            .with(Method::DELETE, "/api/flist/me/b.flist", &alice)
            .send()
            .unwrap();
        assert!(deleted.status().is_success(), "{}", deleted.text().unwrap());
        keys
    })
    .await
    .unwrap();
    let kept: HashSet<ChunkKey> = keys[0].union(&keys[2]).copied().collect();
    let gone: HashSet<ChunkKey> = keys[1].difference(&kept).copied().collect();
    assert!(
        !gone.is_empty() && gone.len() < keys[1].len(),
        "b shares a file with the others"
    );

    let stores: Vec<Arc<dyn ChunkStore>> = {
        let mut stores = Vec::new();
        for url in &backends {
            stores.push(chunkstore::open(url).await.unwrap());
        }
        stores
    };
    let mut before = Vec::new();
    for store in &stores {
        before.push(chunk_count(store.as_ref()).await);
    }

    // The dry run, asked of the serving hub through its data directory: exactly those.
    let h = Arc::clone(&hub);
    let dry = tokio::task::spawn_blocking(move || {
        json(&ok(h.cli(&["gc", "--dry-run", "--json"]).output().unwrap()))
    })
    .await
    .unwrap();
    let expected: HashSet<String> = gone.iter().map(|k| format!("chunk {k}")).collect();
    assert_eq!(chunk_keys(&dry), expected);
    assert_eq!(dry["dry_run"], true);
    for (store, before) in stores.iter().zip(&before) {
        assert_eq!(
            chunk_count(store.as_ref()).await,
            *before,
            "a dry run deletes nothing"
        );
    }

    // The run, asked of the hub by URL with an administrator's token.
    let (h, token) = (Arc::clone(&hub), admin.clone());
    let report = tokio::task::spawn_blocking(move || {
        json(&ok(flisthub(
            h.dir.path(),
            args!["gc", "--hub", h.url, "--token", token, "--json"],
        )))
    })
    .await
    .unwrap();
    let mut swept_total = 0;
    for ((store, before), backend) in stores
        .iter()
        .zip(&before)
        .zip(report["backends"].as_array().unwrap())
    {
        assert_eq!(backend["location"], store.location());
        let swept = backend["chunks"]["swept"]["count"].as_u64().unwrap();
        let marked = backend["chunks"]["marked"]["count"].as_u64().unwrap();
        swept_total += swept;
        // Counted by each server itself.
        let after = chunk_count(store.as_ref()).await;
        assert_eq!(after, before - swept, "{}", store.location());
        assert_eq!(
            after,
            marked,
            "{}: only marked chunks are left",
            store.location()
        );
        assert_eq!(backend["chunks"]["kept_by_grace"]["count"], 0);
        let gone: Vec<ChunkKey> = gone.iter().copied().collect();
        assert_eq!(
            store.has_many(&gone).await.unwrap(),
            vec![false; gone.len()]
        );
    }
    assert_eq!(swept_total, 2 * gone.len() as u64, "two replicas of each");
    assert!(
        report["backends"][1]["space"]
            .as_str()
            .unwrap()
            .contains("compacts"),
        "{report}"
    );

    // Everything still named is there, and extracts byte-identical.
    let (h, t) = (Arc::clone(&hub), trees.clone());
    tokio::task::spawn_blocking(move || {
        let work = t[0].parent().unwrap();
        extracts_identical(work, &format!("{}/alice/a.flist", h.url), &t[0]);
        extracts_identical(work, &format!("{}/alice/c.flist", h.url), &t[2]);
        // Nothing more to collect; the reports are kept, newest first.
        let again = json(&ok(h.cli(&["gc", "--json"]).output().unwrap()));
        assert!(
            again["backends"]
                .as_array()
                .unwrap()
                .iter()
                .all(|b| b["chunks"]["swept"]["count"] == 0)
        );
        let (status, reports) = body_json(
            h.with(Method::GET, "/api/v1/admin/gc", &admin)
                .send()
                .unwrap(),
        );
        assert_eq!(status, 200);
        assert_eq!(reports.as_array().unwrap().len(), 3);
        assert_eq!(reports[2]["dry_run"], true);
        // Not for someone who is no administrator.
        let alice = h.token("alice", &[]);
        assert_eq!(
            h.with(Method::POST, "/api/v1/admin/gc", &alice)
                .send()
                .unwrap()
                .status(),
            403
        );
        assert_eq!(
            h.with(Method::GET, "/api/v1/admin/gc", &alice)
                .send()
                .unwrap()
                .status(),
            403
        );
    })
    .await
    .unwrap();
}

/// Uploads, pushes and deletes while collections run back to back, with a grace period of
/// 2 s (time enough for a push to send its flist after its chunks; with grace 0 and runs
/// back to back, a push's chunks are collected before its flist arrives and every attempt
/// is refused): every flist that was published extracts completely afterwards.
#[test]
fn collections_running_while_flists_come_and_go_take_nothing_published() {
    let hub = Arc::new(HubServer::start(
        "[auth]\nadministrators = [\"admin\"]\n[gc]\ngrace = \"2s\"\n\
         [limits]\nwrite-rate = 10000\nwrite-burst = 10000\n",
    ));
    let (alice, admin) = (hub.token("alice", &[]), hub.token("admin", &[]));
    let work = tempfile::tempdir().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let collector = {
        let (hub, stop) = (Arc::clone(&hub), Arc::clone(&stop));
        std::thread::spawn(move || {
            let (mut runs, mut swept) = (0, 0);
            while !stop.load(Ordering::SeqCst) {
                let (status, report) = body_json(
                    hub.with(Method::POST, "/api/v1/admin/gc", &admin)
                        .send()
                        .unwrap(),
                );
                assert_eq!(status, 200, "{report}");
                runs += 1;
                swept += report["backends"][0]["chunks"]["swept"]["count"]
                    .as_u64()
                    .unwrap();
            }
            (runs, swept)
        })
    };
    // 20 s in CI; the long tier (scripts/long-tier) runs it for the minute the issue of
    // record asks for, through FLISTHUB_GC_SOAK_SECONDS.
    let seconds = std::env::var("FLISTHUB_GC_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut published: Vec<(String, std::path::PathBuf)> = Vec::new();
    let mut refused = 0;
    let mut i = 0u64;
    while Instant::now() < deadline {
        let src = work.path().join(format!("t{i}"));
        tree(&src, 3, 1_000 + i * 10);
        let name = format!("f{i}");
        if i % 2 == 0 {
            upload(&hub, &alice, &name, &src);
        } else {
            // A push again after a refusal sends what was collected meanwhile.
            let mut attempts = 0;
            loop {
                let out = flisthub(
                    work.path(),
                    args![
                        "push", src, "--hub", hub.url, "--token", alice, "--name", name
                    ],
                );
                if out.status.success() {
                    break;
                }
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(
                    stderr.contains("collected") || stderr.contains("missing"),
                    "{stderr}"
                );
                refused += 1;
                attempts += 1;
                assert!(attempts < 5, "{stderr}");
            }
        }
        published.push((name, src));
        // Every third flist is deleted again: its own chunks become garbage.
        if i % 3 == 2 {
            let (name, _) = published.remove(published.len() - 2);
            let deleted = hub
                .with(
                    Method::DELETE,
                    &format!("/api/flist/me/{name}.flist"),
                    &alice,
                )
                .send()
                .unwrap();
            assert!(deleted.status().is_success());
        }
        i += 1;
    }
    stop.store(true, Ordering::SeqCst);
    let (runs, swept) = collector.join().unwrap();
    println!(
        "{i} flists in {seconds} s, {runs} collections, {swept} chunks swept, {refused} pushes refused and pushed again"
    );
    assert!(runs >= 3 && swept > 0, "{runs} runs, {swept} swept");
    for (name, src) in &published {
        extracts_identical(work.path(), &format!("{}/alice/{name}.flist", hub.url), src);
    }
}

/// `flisthub retention` beside a serving hub (through its socket), against a remote hub
/// (with an administrator's token), and on a data directory no hub serves; with the
/// flist a link names kept every time.
#[test]
fn retention_through_the_command() {
    let hub = HubServer::start(
        "[auth]\nadministrators = [\"admin\"]\n[retention]\ninterval = \"0s\"\n[retention.repositories]\nalice = { keep = 1 }\n",
    );
    let (alice, admin) = (hub.token("alice", &[]), hub.token("admin", &[]));
    for name in ["a", "b", "c", "d"] {
        let answer = hub.upload(&alice, &format!("{name}.tar.gz"), small_tarball(name));
        assert_eq!(answer.status(), 200, "{}", answer.text().unwrap());
    }
    let linked = hub
        .with(Method::GET, "/api/flist/me/a/link/latest", &alice)
        .send()
        .unwrap();
    assert_eq!(linked.status(), 200);
    let stdout = |out: std::process::Output| String::from_utf8(ok(out).stdout).unwrap();

    // Published in the same second: the newest is the last by name, d.
    let dry = stdout(hub.cli(&["retention", "--dry-run"]).output().unwrap());
    assert_eq!(dry, "alice/c.flist\nalice/b.flist\n");
    let bad = fails(hub.cli(&["retention", "--repo", "a/b"]).output().unwrap());
    assert!(bad.contains("invalid repository name"), "{bad}");
    let remote = json(&ok(flisthub(
        hub.dir.path(),
        args![
            "retention",
            "--hub",
            hub.url,
            "--token",
            admin,
            "--repo",
            "alice",
            "--json"
        ],
    )));
    assert_eq!(remote["dry_run"], false);
    assert_eq!(
        remote["repositories"][0]["deleted"],
        serde_json::json!(["c.flist", "b.flist"])
    );
    assert_eq!(
        remote["repositories"][0]["kept_linked"],
        serde_json::json!(["a.flist"])
    );
    assert_eq!(hub.get("/alice/c.flist").status(), 404);
    assert_eq!(hub.get("/alice/latest.flist").status(), 200);

    // No hub serving the data directory: the command applies the policy itself.
    let mut hub = hub;
    hub.sigterm();
    assert!(hub.wait_exit());
    let alone = json(&ok(hub.cli(&["retention", "--json"]).output().unwrap()));
    assert_eq!(alone["deleted"], 0);
    assert_eq!(
        alone["repositories"][0]["kept_linked"],
        serde_json::json!(["a.flist"])
    );
}
