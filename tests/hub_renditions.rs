//! Every flist the hub builds boots on a Zero-OS node: a tree uploaded as a tarball and one
//! pushed are mounted by the real node readers from the hub's renditions, `rfs-2.0.6` from
//! `.fl` and `g8ufs-1.1.1` from `.flist`, their blocks read through the hub's 0-db gateway,
//! also through a symlink, a tag and a taglink. Zero-OS's own first steps are replayed on
//! the `.flist`: `.md5` first, the body's md5 equal to it, then gzip, tar and
//! `flistdb.sqlite3`.

mod common;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use common::hub::*;
use common::nodes::{assert_node_sees, node_tree};
use common::*;
use md5::Digest;
use testkit::peers::FuseMount;

fn hub_with_gateway(more: &str) -> HubServer {
    let port = testkit::free_port(false);
    HubServer::start(&format!(
        "{more}[gateway]\nlisten = \"127.0.0.1:{port}\"\npublic-url = \"zdb://127.0.0.1:{port}\"\n"
    ))
}

fn download(hub: &HubServer, path: &str) -> Vec<u8> {
    let response = hub.get(path);
    assert_eq!(response.status(), 200, "{path}");
    response.bytes().unwrap().to_vec()
}

/// Waits until `alice/<name>` has renditions (made in the background).
fn wait_for_renditions(hub: &HubServer, name: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, light) = body_json(hub.get(&format!("/api/flist/alice/{name}/light")));
        if light.get("renditions").is_some() {
            return light;
        }
        assert!(
            Instant::now() < deadline,
            "no renditions of {name}: {light}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What Zero-OS's upgrader does with a `.flist`: `.md5` first, the download checked
/// against it, then the gzip'd tar opened and `flistdb.sqlite3` read.
fn as_zero_os_reads_it(hub: &HubServer, path: &str) -> Vec<u8> {
    let md5 = hub.get(&format!("{path}.md5")).text().unwrap();
    let body = download(hub, path);
    assert_eq!(md5.trim(), hex::encode(md5::Md5::digest(&body)), "{path}");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&body[..]));
    let mut found = false;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().ends_with("flistdb.sqlite3") {
            let mut db = Vec::new();
            entry.read_to_end(&mut db).unwrap();
            assert!(db.starts_with(b"SQLite format 3\0"));
            found = true;
        }
    }
    assert!(found, "{path}: no flistdb.sqlite3");
    body
}

/// Mounts `file` (a `.fl` with rfs, a `.flist` with g8ufs) as a node would and runs
/// `check` on the mounted tree; false when the reader is missing (the test then says so
/// and skips).
fn node_mounts(file: &[u8], fl: bool, check: impl FnOnce(&Path)) -> bool {
    let node = tempfile::tempdir().unwrap();
    let meta = node.path().join(if fl { "x.fl" } else { "x.flist" });
    std::fs::write(&meta, file).unwrap();
    let (cache, root) = (node.path().join("cache"), node.path().join("root"));
    let mount = if fl {
        FuseMount::rfs(&meta, &cache, &root)
    } else {
        FuseMount::g8ufs(&meta, &cache, None, &root)
    };
    let Some(mount) = mount else {
        return false;
    };
    check(mount.path());
    true
}

/// [`node_mounts`], the mounted tree equal to `source`.
fn node_sees(file: &[u8], fl: bool, source: &Path) -> bool {
    node_mounts(file, fl, |mounted| assert_node_sees(source, mounted))
}

#[test]
fn uploaded_and_pushed_trees_mount_on_nodes_from_their_renditions() {
    let hub = hub_with_gateway("");
    let token = hub.token("alice", &[]);
    let source = tempfile::tempdir().unwrap();
    node_tree(source.path());
    let (status, _) = body_json(hub.upload(&token, "app.tar.gz", tar_gz(source.path())));
    assert_eq!(status, 200);
    let light = wait_for_renditions(&hub, "app.flist");
    assert_eq!(light["md5"], light["renditions"]["0-flist"]["md5"]);

    // Names a node may be given: the flist, a symlink, a tag, a taglink.
    for (method, path) in [
        ("GET", "/api/flist/me/app.flist/link/current.flist"),
        ("GET", "/api/flist/me/v1/app/tag/alice/app"),
        ("GET", "/api/flist/me/app-v1/crosstag/alice/v1"),
    ] {
        let response = hub
            .with(method.parse().unwrap(), path, &token)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let zero = as_zero_os_reads_it(&hub, "/alice/app.flist");
    let fl = download(&hub, "/alice/app.fl");
    for (name, same) in [
        ("/alice/current.flist", &zero),
        ("/alice/current.fl", &fl),
        ("/alice/tags/v1/app.flist", &zero),
        ("/alice/tags/v1/app.fl", &fl),
    ] {
        assert!(&download(&hub, name) == same, "{name} serves another file");
    }
    let (_, taglink) = body_json(hub.get("/api/flist/alice/app-v1/taglink"));
    assert_eq!(taglink["target"], "alice/tags/v1");

    if !node_sees(&fl, true, source.path()) || !node_sees(&zero, false, source.path()) {
        eprintln!("skipped: the node readers (rfs-2.0.6, g8ufs-1.1.1) or FUSE are missing");
        return;
    }

    // A pushed tree: the hub never saw its plaintext; a background job reads its chunks.
    let home = tempfile::tempdir().unwrap();
    ok(flisthub(
        home.path(),
        args![
            "push",
            source.path(),
            "--hub",
            hub.url,
            "--token",
            token,
            "--name",
            "pushed",
            "--quiet"
        ],
    ));
    wait_for_renditions(&hub, "pushed.flist");
    let pushed_fl = download(&hub, "/alice/pushed.fl");
    assert!(node_sees(&pushed_fl, true, source.path()));
    let pushed = as_zero_os_reads_it(&hub, "/alice/pushed.flist");
    assert!(node_sees(&pushed, false, source.path()));
}

#[test]
fn a_converted_image_mounts_on_nodes_with_its_metadata() {
    let Some(registry) = testkit::RegistryServer::start() else {
        eprintln!("skipped: no registry");
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let app = noise(1_200_000, 5);
    common::images::push_image(
        &registry,
        work.path(),
        "test/app:v1",
        &[("hello", b"hello\n".to_vec()), ("bin/app", app.clone())],
    );
    let hub = hub_with_gateway(common::images::PRIVATE_NETWORKS);
    let token = hub.token("alice", &[]);
    let form = reqwest::blocking::multipart::Form::new()
        .text("image", format!("{}/test/app:v1", registry.host()));
    let (status, answer) = body_json(
        hub.with(reqwest::Method::POST, "/api/flist/me/docker", &token)
            .multipart(form)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{answer}");
    let name = answer["payload"]["name"].as_str().unwrap().to_owned();
    wait_for_renditions(&hub, &name);

    let zero = as_zero_os_reads_it(&hub, &format!("/alice/{name}"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.flist"), &zero).unwrap();
    let metadata = legacy::zero::ZeroFlist::open(&dir.path().join("x.flist"))
        .unwrap()
        .metadata()
        .unwrap();
    assert_eq!(metadata["entrypoint"], r#"["/bin/app"]"#);
    let fl = download(&hub, &format!("/alice/{}", name.replace(".flist", ".fl")));
    let check = |root: &Path| {
        assert_eq!(std::fs::read(root.join("hello")).unwrap(), b"hello\n");
        assert!(std::fs::read(root.join("bin/app")).unwrap() == app);
    };
    if !node_mounts(&fl, true, check) || !node_mounts(&zero, false, check) {
        eprintln!("skipped: the node readers (rfs-2.0.6, g8ufs-1.1.1) or FUSE are missing");
    }
}
