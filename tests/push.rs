//! The hub-client flow against a running hub: `flisthub push` uploads only the chunks the
//! hub lacks and publishes the flist; `extract` and `cat` read it back from the hub's URL,
//! through the chunk API or straight from the store the flist names; a push run again
//! sends nothing, a small change sends about that much, and an interrupted push resumes.
//! The chunk API itself is driven by hand with bad chunks, cut frames, oversize frames,
//! missing or foreign tokens and a quota.

mod common;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use chunkstore::frames::{MAX_FRAME_PAYLOAD, put_frame};
use chunkstore::{Chunk, ChunkKey, Codec};
use common::hub::*;
use common::*;
use reqwest::Method;
use serde_json::Value;

/// A tree of `files` files of incompressible content, `size` bytes each.
fn noise_tree(root: &std::path::Path, files: u64, size: usize, seed: u64) {
    std::fs::create_dir_all(root.join("data")).unwrap();
    for i in 0..files {
        std::fs::write(root.join(format!("data/f{i:03}")), noise(size, seed + i)).unwrap();
    }
}

/// Runs `flisthub push --json` and returns its report.
fn push(
    work: &std::path::Path,
    hub: &HubServer,
    token: &str,
    source: &std::path::Path,
    name: &str,
) -> Value {
    json(&ok(flisthub(
        work,
        args![
            "push", source, "--hub", hub.url, "--token", token, "--name", name, "--json"
        ],
    )))
}

fn usage(hub: &HubServer, token: &str) -> Value {
    body_json(
        hub.with(Method::GET, "/api/v1/chunks/usage", token)
            .send()
            .unwrap(),
    )
    .1
}

#[test]
fn push_extract_push_again_and_push_a_small_change() {
    let hub = HubServer::start("");
    let token = hub.token("alice", &[]);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_tree(&src);
    noise_tree(&src, 100, 100_000, 1_000);

    let first = push(work.path(), &hub, &token, &src, "app");
    let chunks = first["chunks"].as_u64().unwrap();
    assert!(chunks > 100, "{first}");
    let uploaded = first["uploaded"].as_u64().unwrap();
    // Files of the tree that share content share chunks: those count as present.
    assert_eq!(uploaded + first["present"].as_u64().unwrap(), chunks);
    assert!(uploaded > 100, "{first}");
    assert_eq!(
        first["url"],
        format!("{}/alice/app.flist", hub.url).as_str()
    );
    let md5 = hub.get("/alice/app.flist.md5").text().unwrap();
    assert_eq!(first["md5"], md5.trim());
    let (_, metadata) = body_json(hub.get("/api/flist/alice/app/metadata"));
    assert_eq!(
        metadata["routes"],
        serde_json::json!([format!("{}/api/v1/chunks", hub.url)])
    );

    // Straight from the hub's URL, chunks through its chunk API: no store named.
    let dest = work.path().join("dest");
    let url = format!("{}/alice/app.flist", hub.url);
    ok(flisthub(work.path(), args!["extract", url, dest]));
    assert_same_tree(&src, &dest, &nothing);
    let cat = ok(flisthub(work.path(), args!["cat", url, "hello.txt"]));
    assert_eq!(cat.stdout, b"hello, flist\n");

    // Again: nothing to send.
    let again = push(work.path(), &hub, &token, &src, "app");
    assert_eq!(
        (again["uploaded"].as_u64(), again["present"].as_u64()),
        (Some(0), Some(chunks))
    );
    assert_eq!(
        again["md5"], first["md5"],
        "the same tree gives the same flist"
    );

    // One file of a hundred replaced: about its bytes are sent.
    let changed = noise(100_000, 99_999);
    std::fs::write(src.join("data/f050"), &changed).unwrap();
    let small = push(work.path(), &hub, &token, &src, "app");
    assert_eq!(small["uploaded"], 1, "{small}");
    let sent = small["uploaded_bytes"].as_u64().unwrap();
    assert!(
        (100_000..=101_000).contains(&sent),
        "sent {sent} bytes for a 100,000-byte change"
    );

    let used = usage(&hub, &token);
    let total: u64 = [&first, &again, &small]
        .iter()
        .map(|r| r["uploaded_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(used["bytes"], total, "{used}");
    assert_eq!(used["chunks"], uploaded + 1);
    assert_eq!(used["quota"], Value::Null);
}

#[test]
fn push_to_a_hub_on_redis_and_read_from_redis_directly() {
    let Some(redis) = testkit::RedisServer::start() else {
        return;
    };
    let hub = HubServer::start(&format!("[store]\nurl = \"{}/0\"\n", redis.url()));
    let token = hub.token("alice", &[]);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_tree(&src);
    let first = push(work.path(), &hub, &token, &src, "app");
    let chunks = first["chunks"].as_u64().unwrap();
    assert_eq!(redis.dbsize(), chunks);
    let (_, metadata) = body_json(hub.get("/api/flist/alice/app/metadata"));
    assert_eq!(
        metadata["routes"],
        serde_json::json!([format!("{}/0", redis.url())])
    );
    let dest = work.path().join("dest");
    ok(flisthub(
        work.path(),
        args!["extract", format!("{}/alice/app.flist", hub.url), dest],
    ));
    assert_same_tree(&src, &dest, &nothing);
    let again = push(work.path(), &hub, &token, &src, "app2");
    assert_eq!(again["uploaded"], 0);
    assert_eq!(redis.dbsize(), chunks);
}

#[test]
fn an_interrupted_push_resumes_with_what_is_missing() {
    let hub = HubServer::start("");
    let token = hub.token("alice", &[]);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    noise_tree(&src, 48, 3 << 20, 7);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_flisthub"))
        .args([
            "push", "--quiet", "--name", "big", "--hub", &hub.url, "--token", &token,
        ])
        .arg(&src)
        .env("HOME", work.path())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while usage(&hub, &token)["chunks"].as_u64().unwrap() == 0 {
        assert!(Instant::now() < deadline, "the push never stored a chunk");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Let the hub finish what it had received (a batch is counted, then stored, then
    // synced): until its usage stops changing.
    let mut stored = usage(&hub, &token)["chunks"].as_u64().unwrap();
    loop {
        std::thread::sleep(Duration::from_millis(1000));
        let now = usage(&hub, &token)["chunks"].as_u64().unwrap();
        if now == stored {
            break;
        }
        assert!(Instant::now() < deadline, "the hub never settled");
        stored = now;
    }
    assert_eq!(
        hub.get("/alice/big.flist").status(),
        404,
        "not published yet"
    );

    let resumed = push(work.path(), &hub, &token, &src, "big");
    let chunks = resumed["chunks"].as_u64().unwrap();
    assert!(
        stored < chunks,
        "the push was not interrupted: {stored} of {chunks} stored"
    );
    assert_eq!(resumed["present"], stored, "{resumed}");
    assert_eq!(resumed["uploaded"], chunks - stored);
    let dest = work.path().join("dest");
    ok(flisthub(
        work.path(),
        args!["extract", format!("{}/alice/big.flist", hub.url), dest],
    ));
    assert_same_tree(&src, &dest, &nothing);
}

#[test]
fn login_keeps_the_token_for_push_and_repo_acts_as_a_member_repository() {
    let hub = HubServer::start("");
    let token = hub.token("carol", &["team"]);
    let work = tempfile::tempdir().unwrap();
    let home = work.path();
    let src = home.join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("file"), b"content").unwrap();

    let stderr = fails(flisthub(
        home,
        args!["login", "--hub", hub.url, "--token", "not-a-token"],
    ));
    assert!(stderr.contains("401"), "{stderr}");
    let out = ok(flisthub(
        home,
        args!["login", "--hub", hub.url, "--token", token],
    ));
    assert!(String::from_utf8_lossy(&out.stderr).contains("as carol"));
    let saved = home.join(".config/flisthub/credentials.toml");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&saved).unwrap().permissions().mode() & 0o077,
        0
    );

    ok(flisthub(
        home,
        args!["push", src, "--name", "mine", "--quiet"],
    ));
    assert_eq!(hub.get("/carol/mine.flist").status(), 200);
    ok(flisthub(
        home,
        args!["push", src, "--name", "ours", "--repo", "team", "--quiet"],
    ));
    assert_eq!(hub.get("/team/ours.flist").status(), 200);
    let stderr = fails(flisthub(
        home,
        args!["push", src, "--name", "x", "--repo", "other"],
    ));
    assert!(stderr.contains("403"), "{stderr}");
    assert_eq!(hub.get("/other/x.flist").status(), 404);
}

/// The stored form of `data` and its key.
fn encoded(data: &[u8]) -> (ChunkKey, bytes::Bytes) {
    let chunk = Codec::new(3)
        .unwrap()
        .encode(&Chunk::new(data.to_vec()))
        .unwrap();
    (chunk.key(), chunk.bytes().clone())
}

fn framed(frames: &[(ChunkKey, &[u8])]) -> Vec<u8> {
    let mut body = BytesMut::new();
    for (key, bytes) in frames {
        put_frame(&mut body, key, bytes);
    }
    body.to_vec()
}

fn upload(
    hub: &HubServer,
    token: Option<&str>,
    cookie: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = client()
        .post(format!("{}/api/v1/chunks", hub.url))
        .header("Content-Type", "application/vnd.flisthub.chunks")
        .body(body);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    body_json(request.send().unwrap())
}

fn in_store(hub: &HubServer, key: &ChunkKey) -> bool {
    hub.get(&format!("/api/v1/chunks/{key}")).status() == 200
}

#[test]
fn the_chunk_api_keeps_bad_chunks_out_of_the_store() {
    let hub = HubServer::start("[chunks]\nquota = \"1MiB\"\n");
    let token = hub.token("alice", &["team"]);
    let (good, good_bytes) = encoded(b"a good chunk");
    let (other, other_bytes) = encoded(b"another chunk");
    let lying = ChunkKey::of(b"what the bytes claim to be");

    // Credentials first: nothing is read or stored without them.
    let body = framed(&[(good, &good_bytes)]);
    assert_eq!(upload(&hub, None, None, body.clone()).0, 401);
    assert_eq!(upload(&hub, Some("bad"), None, body.clone()).0, 401);
    assert_eq!(
        upload(&hub, Some(&token), Some("active-user=other"), body.clone()).0,
        403
    );
    assert!(!in_store(&hub, &good));
    let (status, answer) = body_json(
        hub.with(Method::POST, "/api/v1/chunks", &token)
            .header("Content-Type", "text/plain")
            .body(body.clone())
            .send()
            .unwrap(),
    );
    assert_eq!(status, 400, "{answer}");

    // A bad chunk is refused; the good ones of the same request are stored.
    let (status, report) = upload(
        &hub,
        Some(&token),
        None,
        framed(&[
            (good, &good_bytes),
            (lying, &other_bytes),
            (good, &good_bytes),
        ]),
    );
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["stored"], serde_json::json!([good.to_hex()]));
    assert_eq!(
        report["present"],
        serde_json::json!([good.to_hex()]),
        "sent twice"
    );
    assert_eq!(report["rejected"][0]["key"], lying.to_hex());
    assert!(
        report["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{report}"
    );
    assert!(in_store(&hub, &good) && !in_store(&hub, &lying));
    let garbage = noise(1000, 3);
    let (_, report) = upload(&hub, Some(&token), None, framed(&[(other, &garbage)]));
    assert!(
        report["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("bad magic"),
        "{report}"
    );
    assert!(!in_store(&hub, &other));

    // A frame cut short, and one longer than any chunk: 400, what came whole is kept.
    let mut cut = framed(&[(other, &other_bytes)]);
    cut.extend_from_slice(&framed(&[(lying, &good_bytes)])[..40]);
    let (status, answer) = upload(&hub, Some(&token), None, cut);
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("ends inside a frame"),
        "{answer}"
    );
    assert_eq!(
        answer["payload"]["stored"],
        serde_json::json!([other.to_hex()])
    );
    let mut oversize = lying.as_bytes().to_vec();
    oversize.extend_from_slice(&((MAX_FRAME_PAYLOAD + 1) as u32).to_be_bytes());
    oversize.extend_from_slice(&[0; 1000]);
    let (status, answer) = upload(&hub, Some(&token), None, oversize);
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("more than"),
        "{answer}"
    );
    assert!(!in_store(&hub, &lying));

    // At most 4096 chunks in one request: the answer names each.
    let tiny: Vec<(ChunkKey, bytes::Bytes)> =
        (0..4097u32).map(|i| encoded(&i.to_le_bytes())).collect();
    let frames: Vec<(ChunkKey, &[u8])> = tiny.iter().map(|(k, b)| (*k, &b[..])).collect();
    let (status, answer) = upload(&hub, Some(&token), None, framed(&frames));
    assert_eq!(status, 413, "{}", answer["message"]);
    assert!(
        answer["message"].as_str().unwrap().contains("4096"),
        "{}",
        answer["message"]
    );

    // Reads: one chunk, cacheable for ever; a batch, with a gap for what is missing.
    let response = hub.get(&format!("/api/v1/chunks/{good}"));
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(response.bytes().unwrap(), good_bytes);
    assert_eq!(hub.get(&format!("/api/v1/chunks/{lying}")).status(), 404);
    assert_eq!(hub.get("/api/v1/chunks/xyz").status(), 400);
    let keys = serde_json::json!({"keys": [good.to_hex(), lying.to_hex()]});
    let batch = client()
        .post(format!("{}/api/v1/chunks/get", hub.url))
        .json(&keys)
        .send()
        .unwrap();
    assert_eq!(
        batch.bytes().unwrap().to_vec(),
        framed(&[(good, &good_bytes), (lying, b"")])
    );
    let (_, missing) = body_json(
        client()
            .post(format!("{}/api/v1/chunks/missing", hub.url))
            .json(&keys)
            .send()
            .unwrap(),
    );
    assert_eq!(missing["missing"], serde_json::json!([lying.to_hex()]));

    // A chunk damaged in the store is not served.
    let path = hub.data().join(format!(
        "store/chunks/{}/{}",
        &good.to_hex()[..2],
        good.to_hex()
    ));
    std::fs::write(&path, b"FLCK damaged").unwrap();
    assert_eq!(hub.get(&format!("/api/v1/chunks/{good}")).status(), 404);

    // The quota: 1 MiB of stored chunks for alice.
    let pieces: Vec<(ChunkKey, bytes::Bytes)> =
        (0..3).map(|i| encoded(&noise(600_000, 50 + i))).collect();
    let (status, answer) = upload(
        &hub,
        Some(&token),
        None,
        framed(&[(pieces[0].0, &pieces[0].1)]),
    );
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = upload(
        &hub,
        Some(&token),
        None,
        framed(&[(pieces[1].0, &pieces[1].1)]),
    );
    assert_eq!(status, 507, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("quota"),
        "{answer}"
    );
    assert!(!in_store(&hub, &pieces[1].0));
    let used = usage(&hub, &token);
    assert_eq!(used["quota"], 1 << 20);
    assert!(used["bytes"].as_u64().unwrap() < 1 << 20, "{used}");
    // Chunks already in the store cost nothing.
    let (status, _) = upload(
        &hub,
        Some(&token),
        None,
        framed(&[(pieces[0].0, &pieces[0].1)]),
    );
    assert_eq!(status, 200);
}
