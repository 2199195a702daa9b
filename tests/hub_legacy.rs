//! What 0-hub's producers make, published to a real `flisthub serve` with the real tools and
//! read back by the real node readers: `zflist putdir` through the hub's 0-db gateway and
//! `zflist hub upload`, then g8ufs mounting the hosted 0-flist; `rfs pack` into the gateway
//! and upload-flist of its fl, then `rfs mount` of it.

mod common;

use std::path::Path;

use common::hub::*;
use common::nodes::{assert_node_sees, node_tree};
use md5::Digest;
use reqwest::Method;
use testkit::peers::{FuseMount, Zflist, rfs_pack};

fn hub_with_gateway() -> (HubServer, u16) {
    let port = testkit::free_port(false);
    let hub = HubServer::start(&format!(
        "[gateway]\nlisten = \"127.0.0.1:{port}\"\npublic-url = \"zdb://127.0.0.1:{port}\"\n"
    ));
    (hub, port)
}

fn download(hub: &HubServer, path: &str) -> (u16, Vec<u8>) {
    let response = hub.get(path);
    (
        response.status().as_u16(),
        response.bytes().unwrap().to_vec(),
    )
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(md5::Md5::digest(data))
}

fn upload_flist(
    hub: &HubServer,
    token: &str,
    file_name: &str,
    bytes: Vec<u8>,
) -> (u16, serde_json::Value) {
    body_json(hub.upload_to("/api/flist/me/upload-flist", token, file_name, bytes))
}

#[test]
fn zflist_through_the_gateway_then_g8ufs_from_the_hub() {
    let (hub, port) = hub_with_gateway();
    let token = hub.token("alice", &[]);
    let source = tempfile::tempdir().unwrap();
    node_tree(source.path());
    let backend = format!(r#"{{"host": "127.0.0.1", "port": {port}, "token": "{token}"}}"#);
    let Some(zflist) = Zflist::with_backend(Some(backend)) else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let flist = out.path().join("app.flist");
    zflist.ok(&["init"]);
    zflist.ok(&["putdir", &source.path().to_string_lossy(), "/"]);
    zflist.ok(&[
        "metadata",
        "backend",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
    ]);
    zflist.ok(&["commit", &flist.to_string_lossy()]);
    let made = std::fs::read(&flist).unwrap();

    // zflist's own upload: GET /api/flist/me, then upload-flist.
    let env = [
        ("ZFLIST_HUB", hub.url.as_str()),
        ("ZFLIST_HUB_TOKEN", token.as_str()),
    ];
    let uploaded = zflist.run_with(&env, &["hub", "upload", &flist.to_string_lossy()]);
    assert!(
        uploaded.status.success(),
        "zflist hub upload: {}{}\n{}",
        String::from_utf8_lossy(&uploaded.stdout),
        String::from_utf8_lossy(&uploaded.stderr),
        hub.log()
    );

    // Byte for byte, with the md5 a node computes.
    let (status, served) = download(&hub, "/alice/app.flist");
    assert_eq!(status, 200);
    assert!(served == made, "the hosted 0-flist is the file zflist made");
    let (_, md5) = download(&hub, "/alice/app.flist.md5");
    assert_eq!(
        String::from_utf8(md5).unwrap(),
        format!("{}\n", md5_hex(&made))
    );
    let (_, light) = body_json(hub.get("/api/flist/alice/app/light"));
    assert_eq!(light["md5"], md5_hex(&made));
    let (_, listing) = body_json(hub.get("/api/flist/alice"));
    assert_eq!(listing[0]["name"], "app.flist");
    let (_, contents) = body_json(hub.get("/api/flist/alice/app"));
    let paths: Vec<&str> = contents["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"/srv/big.bin") && paths.contains(&"/etc/link"),
        "{paths:?}"
    );
    assert_eq!(contents["fullsize"], light_fullsize(source.path()));
    let (.., fl) = download(&hub, "/alice/app.fl");
    assert!(fl.len() < 1000, "no fl of a 0-flist");

    // A node: the file from the hub, blocks from the gateway its backend names.
    let node = tempfile::tempdir().unwrap();
    let meta = node.path().join("app.flist");
    std::fs::write(&meta, &served).unwrap();
    let Some(mount) = FuseMount::g8ufs(
        &meta,
        &node.path().join("cache"),
        None,
        &node.path().join("root"),
    ) else {
        return;
    };
    assert_node_sees(source.path(), mount.path());
}

/// The bytes of the regular files of a tree.
fn light_fullsize(root: &Path) -> u64 {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[test]
fn rfs_pack_into_the_gateway_then_rfs_mounts_it_from_the_hub() {
    let (hub, port) = hub_with_gateway();
    let token = hub.token("alice", &[]);
    let source = tempfile::tempdir().unwrap();
    node_tree(source.path());
    let out = tempfile::tempdir().unwrap();
    let fl = out.path().join("app.fl");
    let store = format!("zdb://alice:{token}@127.0.0.1:{port}/flists");
    let Some(packed) = rfs_pack(&fl, &store, source.path()) else {
        return;
    };
    assert!(
        packed.status.success(),
        "rfs pack: {}{}",
        String::from_utf8_lossy(&packed.stdout),
        String::from_utf8_lossy(&packed.stderr)
    );
    let made = std::fs::read(&fl).unwrap();
    let (status, answer) = upload_flist(&hub, &token, "app.fl", made.clone());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["payload"]["name"], "app.fl");
    let (_, listing) = body_json(hub.get("/api/flist/alice"));
    assert_eq!(
        listing[0]["name"], "app.fl",
        "listed with its format's suffix"
    );
    let (status, served) = download(&hub, "/alice/app.fl");
    assert_eq!(status, 200);
    assert!(served == made);
    let (_, md5) = download(&hub, "/alice/app.fl.md5");
    assert_eq!(
        String::from_utf8(md5).unwrap(),
        format!("{}\n", md5_hex(&made))
    );
    assert_eq!(
        download(&hub, "/alice/app.flist").0,
        404,
        "no .flist of an fl"
    );
    // A link takes its target's kind.
    let (status, _) = body_json(
        hub.with(Method::GET, "/api/flist/me/app/link/latest", &token)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    assert_eq!(download(&hub, "/alice/latest.fl").1, made);
    // One entry per name: a native upload of the same name is refused.
    let (status, _) = body_json(hub.upload(&token, "app.tar.gz", small_tarball("x")));
    assert_eq!(status, 409);

    let node = tempfile::tempdir().unwrap();
    let meta = node.path().join("app.fl");
    std::fs::write(&meta, &served).unwrap();
    let Some(mount) = FuseMount::rfs(&meta, &node.path().join("cache"), &node.path().join("root"))
    else {
        return;
    };
    assert_node_sees(source.path(), mount.path());
}

#[test]
fn legacy_files_are_refused_when_blocks_are_missing_or_they_are_damaged() {
    let (hub, port) = hub_with_gateway();
    let token = hub.token("alice", &[]);
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("a"), common::noise(600_000, 3)).unwrap();
    // Made without a backend: its blocks were never sent.
    let Some(zflist) = Zflist::with_backend(None) else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let flist = out.path().join("lonely.flist");
    zflist.ok(&["init"]);
    zflist.ok(&["putdir", &source.path().to_string_lossy(), "/"]);
    zflist.ok(&["commit", &flist.to_string_lossy()]);
    let made = std::fs::read(&flist).unwrap();
    let (status, answer) = upload_flist(&hub, &token, "lonely.flist", made.clone());
    assert_eq!(status, 400, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("2 of 2 blocks are missing"), "{message}");
    let (status, answer) = upload_flist(&hub, &token, "cut.flist", made[..made.len() / 2].to_vec());
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = upload_flist(
        &hub,
        &token,
        "junk.fl",
        b"SQLite format 3\0 but not really".to_vec(),
    );
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        hub.get("/api/flist/alice").status(),
        404,
        "nothing published"
    );
    let _ = port;
}
