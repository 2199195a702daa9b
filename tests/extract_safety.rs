//! Extracting hostile or broken flists, into hostile destinations, and under hostile limits:
//! nothing outside the destination changes, nothing loops, nothing is silently wrong.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn store(dir: &Path) -> String {
    format!("dir://{}", dir.join("store").display())
}

fn pack(dir: &Path, tree: &Path, out: &Path) {
    ok(flisthub(
        dir,
        args!["pack", tree, "-o", out, "--store", store(dir)],
    ));
}

/// Runs `flisthub extract` as an unprivileged user (`nobody` when the tests run as root).
fn extract_unprivileged(dir: &Path, flist: &Path, dest: &Path) -> Output {
    let bin = env!("CARGO_BIN_EXE_flisthub");
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin]);
        c
    } else {
        Command::new(bin)
    };
    cmd.arg("extract")
        .arg(flist)
        .arg(dest)
        .arg("--store")
        .arg(store(dir))
        .env("HOME", dir)
        .output()
        .expect("run extract")
}

/// The attack found in review: a destination holds a directory the extracting user cannot
/// change, with a symlink in it to a directory outside; the flist has a directory and a file
/// at the symlink's path. The symlink cannot be replaced, and what it points to must then not
/// be changed either (no chmod, chown or times through it).
#[test]
fn a_symlink_left_in_the_destination_is_never_followed() {
    if !is_root() {
        eprintln!("SKIP: needs root to set up a directory the extracting user cannot change");
        return;
    }
    if !have("setpriv") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let victim = dir.join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("c"), b"precious").unwrap();
    std::fs::set_permissions(victim.join("c"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&victim, Some(65534), Some(65534)).unwrap();
    std::os::unix::fs::chown(victim.join("c"), Some(65534), Some(65534)).unwrap();
    let before = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.mode(), m.mtime(), m.mtime_nsec())
    };
    let (victim_before, file_before) = (before(&victim), before(&victim.join("c")));

    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("a/b")).unwrap();
    std::fs::write(tree.join("a/b/c"), b"attacker").unwrap();
    for p in [tree.join("a/b"), tree.join("a/b/c")] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    pack(dir, &tree, &dir.join("t.flist"));

    // The destination: a/ belongs to root (not writable by the extracting user), a/b is a
    // symlink to the victim.
    let dest = dir.join("dest");
    std::fs::create_dir_all(dest.join("a")).unwrap();
    std::os::unix::fs::symlink(&victim, dest.join("a/b")).unwrap();
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o777)).unwrap();

    let out = extract_unprivileged(dir, &dir.join("t.flist"), &dest);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the symlink cannot be replaced: {err}"
    );
    assert!(err.contains("/a/b"), "{err}");
    assert_eq!(
        before(&victim),
        victim_before,
        "the victim directory is untouched"
    );
    assert_eq!(
        before(&victim.join("c")),
        file_before,
        "the victim file is untouched"
    );
    assert_eq!(std::fs::read(victim.join("c")).unwrap(), b"precious");
    assert!(
        std::fs::symlink_metadata(dest.join("a/b"))
            .unwrap()
            .is_symlink()
    );
}

/// When the user can change the directory (it was left read-only by an earlier extraction),
/// the symlink in it is replaced by the flist's directory.
#[test]
fn a_symlink_in_a_writable_destination_is_replaced() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let victim = dir.join("victim");
    std::fs::create_dir(&victim).unwrap();
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("a/b")).unwrap();
    std::fs::write(tree.join("a/b/c"), b"content").unwrap();
    pack(dir, &tree, &dir.join("t.flist"));
    let dest = dir.join("dest");
    std::fs::create_dir_all(dest.join("a")).unwrap();
    std::os::unix::fs::symlink(&victim, dest.join("a/b")).unwrap();
    std::fs::set_permissions(dest.join("a"), std::fs::Permissions::from_mode(0o555)).unwrap();
    ok(flisthub(
        dir,
        args!["extract", dir.join("t.flist"), dest, "--store", store(dir)],
    ));
    assert!(
        std::fs::symlink_metadata(dest.join("a/b"))
            .unwrap()
            .is_dir()
    );
    assert_eq!(std::fs::read(dest.join("a/b/c")).unwrap(), b"content");
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
}

/// Opens a packed flist for editing, as an attacker crafting one would.
fn craft(flist: &Path, sql: &str) {
    let db = rusqlite::Connection::open(flist).unwrap();
    db.execute_batch(sql).unwrap();
}

#[test]
fn a_flist_whose_directories_have_several_names_fails_fast() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let tree = dir.join("tree");
    let mut deep = tree.clone();
    for i in 0..30 {
        deep.push(format!("d{i}"));
    }
    std::fs::create_dir_all(&deep).unwrap();
    let flist = dir.join("t.flist");
    pack(dir, &tree, &flist);
    // Every directory gets a second name: 2^31 paths if the walk followed them.
    craft(
        &flist,
        "INSERT INTO entry SELECT parent, x'62', ino FROM entry;",
    );
    let started = std::time::Instant::now();
    for args in [
        args!["extract", flist, dir.join("dest"), "--store", store(dir)].to_vec(),
        args!["ls", "-R", flist].to_vec(),
    ] {
        let err = fails(flisthub(dir, &args));
        assert!(err.contains("has several names"), "{err}");
    }
    assert!(started.elapsed().as_secs() < 10);
}

#[test]
fn a_chunk_that_decodes_to_another_length_is_an_error() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("f"), b"second").unwrap();
    let flist = dir.join("t.flist");
    pack(dir, &tree, &flist);
    // Consistent sizes (6 -> 2 both in the inode and the chunk), but the chunk holds 6 bytes.
    craft(
        &flist,
        "UPDATE chunk SET length = 2; UPDATE inode SET size = 2 WHERE kind = 2;",
    );
    let err = fails(flisthub(
        dir,
        args!["extract", flist, dir.join("dest"), "--store", store(dir)],
    ));
    assert!(
        err.contains("/f") && err.contains("holds 6 bytes, the flist says 2"),
        "{err}"
    );
    let err = fails(flisthub(
        dir,
        args!["cat", flist, "f", "--store", store(dir)],
    ));
    assert!(err.contains("holds 6 bytes, the flist says 2"), "{err}");
}

#[test]
fn many_small_files_with_few_file_descriptors() {
    if !have("prlimit") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let tree = dir.join("tree");
    for d in 0..20 {
        std::fs::create_dir_all(tree.join(format!("d{d}"))).unwrap();
        for f in 0..150 {
            std::fs::write(tree.join(format!("d{d}/f{f}")), format!("{d}/{f}")).unwrap();
        }
    }
    let flist = dir.join("t.flist");
    pack(dir, &tree, &flist);
    let dest = dir.join("dest");
    let out = Command::new("prlimit")
        .arg("--nofile=64:64")
        .arg(env!("CARGO_BIN_EXE_flisthub"))
        .args(["-q", "extract"])
        .arg(&flist)
        .arg(&dest)
        .arg("--store")
        .arg(store(dir))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(dest.join("d19/f149")).unwrap(), b"19/149");
}

/// An flist's routes come from whoever made the flist: they may name a server, never make
/// the reader read a local file (a password file, a key) and send it there, nor point at a
/// local directory.
#[test]
fn routes_cannot_make_a_reader_send_local_files() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let peer = testkit::ZdbPeer::start();
    let secret = dir.join("secret");
    std::fs::write(&secret, "the reader's private token").unwrap();
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("f"), b"content").unwrap();
    let flist = dir.join("t.flist");
    pack(dir, &tree, &flist);
    for route in [
        format!(
            "zdb://127.0.0.1:{}/default?admin-password-file={}",
            peer.port(),
            secret.display()
        ),
        format!(
            "zdb://127.0.0.1:{}/default?password-file={}",
            peer.port(),
            secret.display()
        ),
        format!("dir://{}", dir.join("store").display()),
    ] {
        craft(
            &flist,
            &format!(
                "DELETE FROM metadata WHERE key = 'routes'; INSERT INTO metadata VALUES ('routes', '[\"{route}\"]');"
            ),
        );
        let err = fails(flisthub(dir, args!["extract", flist, dir.join("dest")]));
        assert!(err.contains("not usable as a route"), "{route}: {err}");
        assert!(!err.contains("private token"), "{err}");
    }
    assert!(
        peer.commands().is_empty(),
        "nothing was sent: {:?}",
        peer.command_names()
    );
}
