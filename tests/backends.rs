//! `pack`, `cat`, `extract` and `store` against every network backend, with the real binary:
//! redis-server (plain, TLS, cluster), the 0-db protocol peer, and a replicated router that
//! loses a server in the middle of a pack and of an extract.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use chunkstore::ChunkKey;
use common::*;
use testkit::{RedisCluster, RedisServer, ZdbPeer};

/// Packs a tree with every entry type into `store`, extracts it and compares, and reads one
/// file with `cat`, all without naming the store when reading (the flist's routes say).
fn round_trip(store: &str) {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let src = dir.join("src");
    make_tree(&src);
    let flist = dir.join("t.flist");
    let report = json(&ok(flisthub(
        dir,
        args!["pack", src, "-o", flist, "--store", store, "--json"],
    )));
    assert!(report["new_chunks"].as_u64().unwrap() > 10);
    let again = json(&ok(flisthub(
        dir,
        args![
            "pack",
            src,
            "-o",
            dir.join("again.flist"),
            "--store",
            store,
            "--json"
        ],
    )));
    assert_eq!(again["new_chunks"], 0, "everything already stored");
    let inspect = json(&ok(flisthub(dir, args!["inspect", flist, "--json"])));
    let route = inspect["metadata"]["routes"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !route.contains("password") && !route.contains('@'),
        "{route}"
    );
    let dest = dir.join("dest");
    ok(flisthub(dir, args!["extract", flist, dest]));
    assert_same_tree(&src, &dest, &nothing);
    let cat = ok(flisthub(dir, args!["cat", flist, "bin/big.bin"]));
    assert_eq!(cat.stdout, noise(9 << 20, 1));
}

#[test]
fn redis_server() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    round_trip(&format!("{}/0?namespace=flists", server.url()));
}

#[test]
fn redis_over_tls() {
    let Some(server) = RedisServer::start_tls() else {
        return;
    };
    let ca = server.ca_file().unwrap().display().to_string();
    // The flist's route carries no CA file; reading names the store.
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let store = format!("{}?ca-file={ca}", server.url());
    std::fs::create_dir(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/f"), noise(700_000, 5)).unwrap();
    ok(flisthub(
        dir,
        args![
            "pack",
            dir.join("src"),
            "-o",
            dir.join("t.flist"),
            "--store",
            store
        ],
    ));
    ok(flisthub(
        dir,
        args![
            "extract",
            dir.join("t.flist"),
            dir.join("dest"),
            "--store",
            store
        ],
    ));
    assert_eq!(
        std::fs::read(dir.join("dest/f")).unwrap(),
        noise(700_000, 5)
    );
}

#[test]
fn redis_cluster() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    round_trip(&cluster.url());
}

#[test]
fn zdb_namespace_with_password() {
    let peer = ZdbPeer::start();
    peer.create_namespace("flists", Some("secret"), true);
    let work = tempfile::tempdir().unwrap();
    let password = work.path().join("pw");
    std::fs::write(&password, "secret\n").unwrap();
    // Writes with the password (from a file); reads through the route, without it (public).
    round_trip(&format!(
        "zdb://127.0.0.1:{}/flists?password-file={}",
        peer.port(),
        password.display()
    ));
    let names = peer.command_names();
    assert!(
        !names.iter().any(|n| n == "HELLO" || n == "CLIENT"),
        "{names:?}"
    );
}

/// The keys of every chunk an flist uses.
fn flist_keys(path: &Path) -> Vec<ChunkKey> {
    let flist = flist::Flist::open(path).unwrap();
    let mut keys = Vec::new();
    flist
        .walk(|_, entry| {
            if entry.node.kind.kind() == flist::Kind::Regular {
                keys.extend(flist.chunks(entry)?.iter().map(|c| ChunkKey::from(c.key)));
            }
            Ok(flist::Walk::Continue)
        })
        .unwrap();
    keys.sort();
    keys.dedup();
    keys
}

fn copies(servers: &[RedisServer], key: &ChunkKey) -> usize {
    servers.iter().filter(|s| s.exists(key.as_bytes())).count()
}

#[test]
fn router_loses_a_server_during_pack_and_extract_then_repairs() {
    let Some(a) = RedisServer::start() else {
        return;
    };
    let (Some(b), Some(c)) = (RedisServer::start(), RedisServer::start()) else {
        return;
    };
    let mut servers = vec![a, b, c];
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let backends: Vec<String> = servers
        .iter()
        .map(|s| format!("'{}?timeout=1s&connect-timeout=500ms'", s.url()))
        .collect();
    let config = dir.join("flisthub.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nbackends = [{}]\nreplicas = 2\nwrite-quorum = 1\n",
            backends.join(", ")
        ),
    )
    .unwrap();
    let flisthub_cfg = |args: &[&std::ffi::OsStr]| {
        let mut all = args!["--config", config].to_vec();
        all.extend_from_slice(args);
        flisthub(dir, &all)
    };

    // A tar stream of 48 files on stdin, half of it held back until a server is killed.
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..48 {
        std::fs::write(
            src.join(format!("f{i:02}")),
            noise(200_000 + i * 1000, i as u64),
        )
        .unwrap();
    }
    // POSIX format keeps nanosecond mtimes.
    let archive = tar_of(&src, &["--format=posix"]);
    let flist = dir.join("t.flist");
    let mut pack = Command::new(env!("CARGO_BIN_EXE_flisthub"))
        .arg("--config")
        .arg(&config)
        .args(["-q", "pack", "-", "-o"])
        .arg(&flist)
        .env("HOME", dir)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = pack.stdin.take().unwrap();
    stdin.write_all(&archive[..archive.len() / 2]).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    servers[1].kill();
    stdin.write_all(&archive[archive.len() / 2..]).unwrap();
    drop(stdin);
    let out = pack.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "pack with a server down: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys = flist_keys(&flist);
    assert!(
        keys.iter().all(|k| copies(&servers, k) >= 1),
        "nothing lost"
    );

    // Extract with the server still down: every chunk read from a live replica.
    ok(flisthub_cfg(args!["extract", flist, dir.join("dest1")]));
    assert_same_tree(&src, &dir.join("dest1"), &nothing);

    // The server comes back empty; repair restores two copies of every chunk.
    servers[1].replace_empty();
    std::thread::sleep(Duration::from_millis(600));
    let repaired =
        String::from_utf8(ok(flisthub_cfg(args!["store", "repair", flist])).stderr).unwrap();
    assert!(repaired.contains("missing everywhere 0"), "{repaired}");
    for key in &keys {
        assert_eq!(copies(&servers, key), 2, "{key} after repair");
    }
    let stats = String::from_utf8(ok(flisthub_cfg(args!["store", "stats"])).stdout).unwrap();
    assert_eq!(stats.lines().count(), 3, "{stats}");

    // A server frozen, then killed, while an extract is waiting on it.
    servers[2].pause();
    let extract = Command::new(env!("CARGO_BIN_EXE_flisthub"))
        .arg("--config")
        .arg(&config)
        .args(["-q", "extract"])
        .arg(&flist)
        .arg(dir.join("dest2"))
        .env("HOME", dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    servers[2].kill();
    let out = extract.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "extract across a failure: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_tree(&src, &dir.join("dest2"), &nothing);

    // Reading without the configuration: the flist's routes name all three servers.
    let inspect = json(&ok(flisthub(dir, args!["inspect", flist, "--json"])));
    assert_eq!(inspect["metadata"]["routes"].as_array().unwrap().len(), 3);
    ok(flisthub(dir, args!["extract", flist, dir.join("dest3")]));
    assert_same_tree(&src, &dir.join("dest3"), &nothing);
}

#[test]
fn bad_store_urls_and_configs_are_clear_errors() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::create_dir(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/f"), b"content").unwrap();
    for (store, part) in [
        ("zdb://:hunter2@h/a/b", "contains '/'"),
        ("redis://h?pool=lots", "pool"),
        ("ftp://h", "unknown scheme \"ftp\""),
    ] {
        let err = fails(flisthub(
            dir,
            args![
                "pack",
                dir.join("src"),
                "-o",
                dir.join("x.flist"),
                "--store",
                store
            ],
        ));
        assert!(err.contains(part), "{store}: {err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
    let config = dir.join("bad.toml");
    std::fs::write(&config, "[store]\nbackend = ['redis://h']\n").unwrap();
    let err = fails(flisthub(dir, args!["--config", config, "store", "stats"]));
    assert!(err.contains("unknown field: found `backend`"), "{err}");
    assert!(err.contains("key store.backend"), "{err}");
    // A server that is not there: a prompt, typed error.
    let port = testkit::free_port(false);
    let err = fails(flisthub(
        dir,
        args![
            "pack",
            dir.join("src"),
            "-o",
            dir.join("x.flist"),
            "--store",
            format!("redis://127.0.0.1:{port}")
        ],
    ));
    assert!(err.contains("unavailable"), "{err}");
}
