//! The integrity scrub through the real binary, on a router of two replicas (a dir store
//! and a real redis-server): a copy damaged by hand on one replica is reported with the
//! flists it affects and rewritten from the other (read back from that replica itself); a
//! chunk whose only copy left is damaged is reported lost. `flisthub check` asks the
//! serving hub through its data directory, and a remote hub by URL.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chunkstore::{ChunkKey, ChunkStore, Codec, DEFAULT_LEVEL, DirOptions, DirStore};
use common::hub::*;
use common::*;
use reqwest::Method;
use serde_json::Value;
use testkit::RedisServer;

/// Whether `store` holds a copy of `key` that decodes to content of that key.
async fn sound(store: &dyn ChunkStore, key: ChunkKey) -> bool {
    let copy = store.get(key).await.unwrap();
    copy.is_some_and(|bytes| {
        Codec::new(DEFAULT_LEVEL)
            .unwrap()
            .decode(&key, &bytes)
            .is_ok()
    })
}

/// Flips the last byte of the dir store's copy of `key`.
fn damage(dir: &DirStore, key: ChunkKey) {
    let path = dir.chunk_path(&key);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
}

fn affected(report: &Value, repaired: bool) -> BTreeSet<String> {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            (f["missing"].as_u64().unwrap() + f["damaged"].as_u64().unwrap() == 0) == repaired
        })
        .flat_map(|f| f["flists"].as_array().unwrap().clone())
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_copy_is_repaired_from_the_other_replica_and_a_lone_one_reported_lost() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let dir_path = work.path().join("store");
    let backends = [
        format!("dir://{}", dir_path.display()),
        format!("{}/0", redis.url()),
    ];
    let config = format!(
        "[auth]\nadministrators = [\"admin\"]\n[scrub]\ninterval = \"off\"\n\
         [store]\nbackends = {backends:?}\nreplicas = 2\n"
    );
    let hub = Arc::new(
        tokio::task::spawn_blocking(move || HubServer::start(&config))
            .await
            .unwrap(),
    );
    let h = Arc::clone(&hub);
    let (keys, admin) = tokio::task::spawn_blocking(move || {
        let (alice, bob) = (h.token("alice", &[]), h.token("bob", &[]));
        for (token, name, seed) in [(&alice, "one", 1), (&bob, "one-too", 1), (&alice, "two", 2)] {
            let response = h.upload(token, &format!("{name}.tar.gz"), small_tarball(&hex(seed)));
            assert!(
                response.status().is_success(),
                "{}",
                response.text().unwrap()
            );
        }
        let keys: Vec<HashSet<ChunkKey>> = ["/alice/one.flist", "/alice/two.flist"]
            .iter()
            .map(|path| flist_keys(&h, path))
            .collect();
        (keys, h.token("admin", &[]))
    })
    .await
    .unwrap();
    // Each flist's own chunk (they share the tarball's other file).
    let (one, two) = (
        ChunkKey::of(hex(1).as_bytes()),
        ChunkKey::of(hex(2).as_bytes()),
    );
    assert!(keys[0].contains(&one) && keys[1].contains(&two));

    let dir = DirStore::open(&dir_path, DirOptions::default()).unwrap();
    let replicas: Vec<Arc<dyn ChunkStore>> = vec![
        Arc::new(DirStore::open(&dir_path, DirOptions::default()).unwrap()),
        chunkstore::open(&backends[1]).await.unwrap(),
    ];
    // Which replicas hold each chunk, as each says: with two replicas of two, both.
    for key in [one, two] {
        for replica in &replicas {
            assert!(replica.has(key).await.unwrap(), "{}", replica.location());
        }
    }
    // `one`: its dir copy damaged, the other sound. `two`: its only copy left damaged.
    damage(&dir, one);
    damage(&dir, two);
    assert_eq!(replicas[1].delete_many(&[two]).await.unwrap(), 1);
    assert!(!sound(&dir, one).await);

    // A deep check asked of the serving hub through its data directory: it fails, since a
    // chunk is lost, and reports.
    let h = Arc::clone(&hub);
    let out = tokio::task::spawn_blocking(move || {
        h.cli(&["check", "--deep", "--json"]).output().unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let report = json(&out);
    assert_eq!(report["deep"], true);
    // Three flists; the two of the same content may be one file.
    let checked = report["flists_checked"].as_u64().unwrap();
    assert!((2..=3).contains(&checked), "{report}");
    assert_eq!(report["damaged"], 2, "{report}");
    assert_eq!(
        (&report["repaired"], &report["lost"]),
        (&Value::from(1), &Value::from(1))
    );
    assert_eq!(
        affected(&report, true),
        set(&["alice/one.flist", "bob/one-too.flist"])
    );
    assert_eq!(affected(&report, false), set(&["alice/two.flist"]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no sound copy"));
    // The damaged copy, read from that replica itself, is sound again.
    assert!(
        sound(&dir, one).await,
        "the dir replica's copy was rewritten"
    );
    assert!(sound(replicas[1].as_ref(), one).await);
    assert!(!sound(&dir, two).await && !replicas[1].has(two).await.unwrap());

    // Asked of the hub by URL: nothing left to repair; the lost chunk still lost.
    let (h, token) = (Arc::clone(&hub), admin.clone());
    let (again, light, metrics) = tokio::task::spawn_blocking(move || {
        let out = flisthub(
            h.dir.path(),
            args!["check", "--hub", h.url, "--token", token, "--json"],
        );
        let (_, light) = body_json(h.get("/api/flist/alice/two.flist/light"));
        (json(&out), light, h.get("/metrics").text().unwrap())
    })
    .await
    .unwrap();
    assert_eq!(again["deep"], false);
    assert_eq!(
        (&again["repaired"], &again["lost"]),
        (&Value::from(0), &Value::from(1)),
        "{again}"
    );
    assert_eq!(affected(&again, false), set(&["alice/two.flist"]));
    assert_eq!(light["scrub"]["complete"], false, "{light}");
    assert!(
        metrics.contains("flisthub_scrub_chunks_lost 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("flisthub_scrub_flists_damaged 1"),
        "{metrics}"
    );
    assert!(
        hub.log()
            .contains("the store lacks or holds damaged chunks")
    );
}

/// `serve` scrubs by itself every `[scrub] interval`: without anyone asking, the flist
/// shows as verified in `light` and the run's report is listed.
#[test]
fn serve_scrubs_on_its_schedule() {
    let hub =
        HubServer::start("[auth]\nadministrators = [\"admin\"]\n[scrub]\ninterval = \"1s\"\n");
    let alice = hub.token("alice", &[]);
    let response = hub.upload(&alice, "one.tar.gz", small_tarball(&hex(3)));
    assert!(
        response.status().is_success(),
        "{}",
        response.text().unwrap()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, light) = body_json(hub.get("/api/flist/alice/one.flist/light"));
        if light["scrub"]["complete"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "no scheduled scrub: {light}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let admin = hub.token("admin", &[]);
    let response = hub.with(Method::GET, "/api/v1/admin/scrub", &admin).send();
    let (status, reports) = body_json(response.unwrap());
    assert_eq!(status, 200);
    assert!(
        reports.as_array().is_some_and(|r| !r.is_empty()),
        "{reports}"
    );
}

/// Content of its own for each seed, well below the smallest chunk: one chunk a file.
fn hex(seed: u64) -> String {
    noise(3000, seed)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
