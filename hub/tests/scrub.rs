//! The integrity scrub in process, on a dir store: a chunk file deleted and another
//! corrupted by hand, and a hosted 0-flist's block damaged; what a check and a deep check
//! report (exactly the flists affected, each chunk checked once), what `light` shows, the
//! reports kept, and the admin route's refusals.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chunkstore::ChunkKey;
use common::{TestHub, tarball};
use serde_json::Value;

const CONFIG: &str = "[auth]\nadministrators = [\"ops\"]\n[scrub]\ninterval = \"off\"\n";

fn content(seed: &str) -> String {
    seed.repeat(3000 / seed.len())
}

/// The file of the chunk holding `content` (a single-chunk file) in the hub's dir store.
fn chunk_file(root: &Path, content: &str) -> PathBuf {
    let name = ChunkKey::of(content.as_bytes()).to_hex();
    find(root, &name).unwrap_or_else(|| panic!("no chunk file {name}"))
}

fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if entry.file_name() == name {
            return Some(path);
        }
        if entry.file_type().unwrap().is_dir()
            && let Some(found) = find(&path, name)
        {
            return Some(found);
        }
    }
    None
}

/// The flists a report names as affected, `<repo>/<name>`, and whether each lost a key.
fn affected(report: &Value) -> BTreeSet<String> {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["flists"].as_array().unwrap().clone())
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

async fn scrub(hub: &TestHub, query: &str, token: &str) -> Value {
    let answer = hub
        .call("POST", &format!("/api/v1/admin/scrub{query}"), Some(token))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

async fn light(hub: &TestHub, path: &str) -> Value {
    let answer = hub.get(&format!("/api/flist/{path}/light")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

#[tokio::test]
async fn a_check_names_exactly_the_flists_whose_chunks_are_missing_or_damaged() {
    let hub = TestHub::open(CONFIG).await;
    let (alice, bob, ops) = (hub.token("alice"), hub.token("bob"), hub.token("ops"));
    let (good, gone, bad) = (content("good "), content("gone "), content("bad "));
    for (token, name, content) in [
        (&alice, "good", &good),
        (&alice, "gone", &gone),
        (&alice, "bad", &bad),
        // Another flist naming the chunk that goes: affected too, the chunk checked once.
        (&bob, "gone-too", &gone),
    ] {
        let file = format!("{name}.tar.gz");
        let answer = hub.upload(Some(token), &file, &tarball(content)).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    // Before any run, `light` has no scrub key.
    assert!(light(&hub, "alice/good.flist").await.get("scrub").is_none());

    let store = hub.dir.path().join("data");
    std::fs::remove_file(chunk_file(&store, &gone)).unwrap();
    let damaged = chunk_file(&store, &bad);
    let mut bytes = std::fs::read(&damaged).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&damaged, bytes).unwrap();

    // An existence check: the missing chunk, not the damaged one (it is there).
    let report = scrub(&hub, "", &ops).await;
    assert_eq!(report["deep"], false);
    // The two flists of the same content may be one file.
    let mut files = BTreeSet::new();
    for path in ["alice/gone.flist", "bob/gone-too.flist"] {
        files.insert(light(&hub, path).await["sha256"].to_string());
    }
    assert_eq!(report["flists_checked"], 2 + files.len(), "{report}");
    assert_eq!(report["chunks_checked"], 3, "{report}");
    assert_eq!(
        (&report["missing"], &report["damaged"], &report["lost"]),
        (&Value::from(1), &Value::from(0), &Value::from(1)),
        "{report}"
    );
    assert_eq!(report["repaired"], 0);
    assert_eq!(
        affected(&report),
        set(&["alice/gone.flist", "bob/gone-too.flist"])
    );
    let file = &report["files"][0];
    assert_eq!(file["problems"][0]["fault"], "missing");
    assert_eq!(file["problems"][0]["repaired"], false);
    assert_eq!(
        file["problems"][0]["key"],
        format!("chunk {}", ChunkKey::of(gone.as_bytes()))
    );

    let verified = light(&hub, "alice/good.flist").await;
    assert_eq!(verified["scrub"]["complete"], true, "{verified}");
    assert_eq!(verified["scrub"]["deep"], false);
    assert!(verified["scrub"]["checked"].as_i64().unwrap() > 1_700_000_000);
    assert!(verified["scrub"].get("missing").is_none());
    let missing = light(&hub, "alice/gone.flist").await;
    assert_eq!(missing["scrub"]["complete"], false, "{missing}");
    assert_eq!(missing["scrub"]["missing"], 1);
    assert_eq!(
        light(&hub, "alice/bad.flist").await["scrub"]["complete"],
        true
    );

    // A deep check reads every chunk: the damaged one too.
    let deep = scrub(&hub, "?deep=true", &ops).await;
    assert_eq!(deep["deep"], true);
    assert_eq!(deep["chunks_checked"], 3);
    assert_eq!(
        (&deep["missing"], &deep["damaged"]),
        (&Value::from(1), &Value::from(1))
    );
    assert_eq!(deep["lost"], 2);
    assert_eq!(
        affected(&deep),
        set(&["alice/bad.flist", "alice/gone.flist", "bob/gone-too.flist"])
    );
    let bad_light = light(&hub, "alice/bad.flist").await;
    assert_eq!(bad_light["scrub"]["complete"], false, "{bad_light}");
    assert_eq!(bad_light["scrub"]["damaged"], 1);
    assert_eq!(bad_light["scrub"]["deep"], true);
    assert_eq!(
        light(&hub, "alice/good.flist").await["scrub"]["complete"],
        true
    );

    // One repository only.
    let bob_only = scrub(&hub, "?repository=bob", &ops).await;
    assert_eq!(bob_only["repository"], "bob");
    assert_eq!(bob_only["flists_checked"], 1);
    assert_eq!(affected(&bob_only), set(&["bob/gone-too.flist"]));

    // The reports, newest first.
    let answer = hub.call("GET", "/api/v1/admin/scrub", Some(&ops)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let reports = answer.json();
    assert_eq!(reports.as_array().unwrap().len(), 3);
    assert_eq!(reports[0]["repository"], "bob");
    assert_eq!(reports[1]["deep"], true);
    let answer = hub
        .call("GET", "/api/v1/admin/scrub?limit=1", Some(&ops))
        .await;
    assert_eq!(answer.json().as_array().unwrap().len(), 1);

    // Refusals.
    for method in ["GET", "POST"] {
        let answer = hub.call(method, "/api/v1/admin/scrub", Some(&alice)).await;
        assert_eq!(answer.status, 403, "{method}: {}", answer.text());
        assert!(
            answer.text().contains("administrators"),
            "{}",
            answer.text()
        );
        let answer = hub.call(method, "/api/v1/admin/scrub", None).await;
        assert_eq!(answer.status, 401, "{method}: {}", answer.text());
    }
    for (query, status) in [
        ("?deep=maybe", 400),
        ("?dry-run=true", 400),
        ("?repository=no%20such%2Fname", 400),
        ("?repository=nobody", 404),
    ] {
        let path = format!("/api/v1/admin/scrub{query}");
        let answer = hub.call("POST", &path, Some(&ops)).await;
        assert_eq!(answer.status, status, "{query}: {}", answer.text());
    }
}

/// The blocks of a hosted 0-flist are scrubbed as chunks are: a block damaged by hand is
/// there for an existence check and found by a deep one, which checks it with the
/// format's own hash (its id is the BLAKE2b-128 of the stored bytes).
#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_block_of_a_hosted_0_flist_is_found_by_a_deep_check() {
    let hub = TestHub::open(CONFIG).await;
    let (alice, ops) = (hub.token("alice"), hub.token("ops"));
    let plain = content("a hosted block ");
    let (block, sealed) = legacy::zero::encode(plain.as_bytes()).unwrap();
    let id = chunkstore::BlockId::from_slice(&block.id).unwrap();
    // The hub's own dir store (the default, in its data directory).
    let data = hub.dir.path().join("data").join("store");
    let store = chunkstore::DirStore::open(&data, chunkstore::DirOptions::default()).unwrap();
    chunkstore::ChunkStore::put_blocks(&store, &[(id, bytes::Bytes::from(sealed))])
        .await
        .unwrap();
    let mut tree = legacy::Tree::new(legacy::Entry::directory(0o755)).unwrap();
    let file = legacy::Entry {
        kind: legacy::Kind::File {
            size: plain.len() as u64,
            blocks: vec![block],
        },
        ..legacy::Entry::directory(0o644)
    };
    tree.insert(b"data", file).unwrap();
    let mut hosted = Vec::new();
    legacy::zero::write(&tree, &Default::default(), &mut hosted).unwrap();
    let answer = hub
        .upload_flist(Some(&alice), "hosted.flist", &hosted)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let clean = scrub(&hub, "?deep=true", &ops).await;
    assert_eq!(
        (&clean["missing"], &clean["damaged"]),
        (&Value::from(0), &Value::from(0)),
        "{clean}"
    );

    let path = find(&data, &id.to_hex()).expect("the block's file");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let shallow = scrub(&hub, "", &ops).await;
    assert_eq!(shallow["damaged"], 0, "{shallow}");
    let deep = scrub(&hub, "?deep=true", &ops).await;
    assert_eq!(
        (&deep["damaged"], &deep["lost"]),
        (&Value::from(1), &Value::from(1)),
        "{deep}"
    );
    assert_eq!(affected(&deep), set(&["alice/hosted.flist"]));
}
