//! Pack and extract real trees with the real binary, directly and through GNU tar.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }
    fn store(&self) -> String {
        format!("dir://{}", self.path("store").display())
    }
    fn run(&self, args: &[&std::ffi::OsStr]) -> std::process::Output {
        flisthub(self.dir.path(), args)
    }
}

#[test]
fn directory_round_trip_keeps_everything() {
    let env = Env::new();
    let src = env.path("src");
    let info = make_tree(&src);
    let flist = env.path("tree.flist");
    let out = ok(env.run(args![
        "pack",
        src,
        "-o",
        flist,
        "--store",
        env.store(),
        "--json"
    ]));
    let report = json(&out);
    assert_eq!(report["totals"]["files"], 13);
    assert_eq!(report["totals"]["hardlinks"], 2);
    assert_eq!(report["totals"]["symlinks"], 4);
    let specials = 1 + u64::from(info.sockets) + 2 * u64::from(info.devices);
    assert_eq!(report["totals"]["specials"], specials);
    assert!(report["chunks"].as_u64().unwrap() > report["totals"]["files"].as_u64().unwrap());

    let dest = env.path("dest");
    ok(env.run(args!["extract", flist, dest, "--store", env.store()]));
    assert_same_tree(&src, &dest, &nothing);

    // Extracting again over the existing tree gives the same result.
    ok(env.run(args!["extract", flist, dest, "--store", env.store()]));
    assert_same_tree(&src, &dest, &nothing);
}

#[test]
fn pack_and_extract_default_to_the_local_store() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), noise(300_000, 9)).unwrap();
    let flist = env.path("a.flist");
    ok(env.run(args!["pack", src, "-o", flist]));
    assert!(env.path("data/flisthub/store/FLISTHUB-STORE").exists());
    let dest = env.path("dest");
    ok(env.run(args!["extract", flist, dest]));
    assert_eq!(std::fs::read(dest.join("a")).unwrap(), noise(300_000, 9));
}

/// Valid archives that GNU tar would not write: a directory after its children, a path
/// given twice (the last one wins, as extraction would), a hardlink to an earlier entry
/// that is replaced afterwards, and the root itself.
#[test]
fn unusual_but_valid_archives() {
    let env = Env::new();
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        if let Some(link) = link {
            h.set_link_name(link).unwrap();
        }
        builder.append_data(&mut h, path, data).unwrap();
    };
    use tar::EntryType::{Directory, Link, Regular};
    add("d/f", Regular, 0o644, b"first", None);
    add("d", Directory, 0o700, b"", None);
    add("d/h", Link, 0o644, b"", Some("d/f"));
    add("d/f", Regular, 0o600, b"second", None);
    add("./", Directory, 0o751, b"", None);
    let archive = env.path("odd.tar");
    std::fs::write(&archive, builder.into_inner().unwrap()).unwrap();
    let flist = env.path("odd.flist");
    ok(env.run(args!["pack", archive, "-o", flist, "--store", env.store()]));
    let dest = env.path("dest");
    ok(env.run(args!["extract", flist, dest, "--store", env.store()]));
    let mode = |p: &str| {
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dest.join(p)).unwrap().permissions(),
        ) & 0o7777
    };
    assert_eq!(std::fs::read(dest.join("d/f")).unwrap(), b"second");
    assert_eq!(mode("d/f"), 0o600);
    assert_eq!(
        std::fs::read(dest.join("d/h")).unwrap(),
        b"first",
        "the link keeps the old content"
    );
    assert_eq!(mode("d"), 0o700);
    assert_eq!(mode(""), 0o751);
}

#[test]
fn merge_layers_flists_first_wins() {
    let env = Env::new();
    for (name, files) in [
        (
            "app",
            &[("etc/app.conf", "app"), ("etc/os-release", "app's")][..],
        ),
        (
            "base",
            &[("etc/os-release", "debian"), ("bin/sh", "shell")][..],
        ),
    ] {
        for (path, content) in files {
            let p = env.path(name).join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        ok(env.run(args![
            "pack",
            env.path(name),
            "-o",
            env.path(&format!("{name}.flist")),
            "--store",
            env.store()
        ]));
    }
    let merged = env.path("merged.flist");
    ok(env.run(args![
        "merge",
        "-o",
        merged,
        env.path("app.flist"),
        env.path("base.flist")
    ]));
    let dest = env.path("dest");
    ok(env.run(args!["extract", merged, dest, "--store", env.store()]));
    assert_eq!(
        std::fs::read_to_string(dest.join("etc/os-release")).unwrap(),
        "app's"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("etc/app.conf")).unwrap(),
        "app"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("bin/sh")).unwrap(),
        "shell"
    );
    let inspect = json(&ok(env.run(args!["inspect", merged, "--json"])));
    assert_eq!(
        inspect["metadata"]["source"]["name"], "app",
        "metadata of the first"
    );
    let err = fails(env.run(args![
        "merge",
        "-o",
        merged,
        env.path("app.flist"),
        env.path("nope.flist")
    ]));
    assert!(err.contains("nope.flist"), "{err}");
}

fn tar_round_trip(compress: &[&str], name: &str) {
    let env = Env::new();
    let src = env.path("src");
    make_tree(&src);
    let archive = env.path(name);
    let mut tar = Command::new("tar");
    tar.args(["--format=posix", "--xattrs", "--xattrs-include=*"])
        .args(compress)
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(&src)
        .arg(".");
    run(&mut tar);
    let flist = env.path("t.flist");
    ok(env.run(args!["pack", archive, "-o", flist, "--store", env.store()]));
    let dest = env.path("dest");
    ok(env.run(args!["extract", flist, dest, "--store", env.store()]));
    // GNU tar does not archive sockets.
    assert_same_tree(&src, &dest, &|p: &Path| p == Path::new("socket"));
}

#[test]
fn gnu_tar_plain_round_trip() {
    tar_round_trip(&[], "t.tar");
}

#[test]
fn gnu_tar_gzip_round_trip() {
    tar_round_trip(&["-z"], "t.tar.gz");
}

#[test]
fn gnu_tar_zstd_round_trip() {
    if !have("zstd") {
        return;
    }
    tar_round_trip(&["--zstd"], "t.tar.zst");
}

#[test]
fn tar_on_stdin_with_gnu_long_names() {
    let env = Env::new();
    let src = env.path("src");
    let long_dir = "d".repeat(200);
    let deep = src.join(&long_dir).join("e".repeat(200));
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("f".repeat(200)), b"long path\n").unwrap();
    std::os::unix::fs::symlink("t".repeat(300), src.join("long-target")).unwrap();
    std::fs::hard_link(
        deep.join("f".repeat(200)),
        src.join(&long_dir).join("h".repeat(150)),
    )
    .unwrap();
    let archive = tar_of(&src, &["--format=gnu", "-z"]);
    let flist = env.path("s.flist");
    ok(flisthub_with_stdin(
        env.dir.path(),
        args!["pack", "-", "-o", flist, "--store", env.store()],
        Some(&archive),
    ));
    let dest = env.path("dest");
    ok(env.run(args!["extract", flist, dest, "--store", env.store()]));
    // GNU format keeps whole seconds only.
    let cat = ok(env.run(args![
        "cat",
        flist,
        format!("{long_dir}/{}/{}", "e".repeat(200), "f".repeat(200)),
        "--store",
        env.store()
    ]));
    assert_eq!(cat.stdout, b"long path\n");
    assert_eq!(
        std::fs::read_link(dest.join("long-target")).unwrap(),
        Path::new(&"t".repeat(300))
    );
    let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    assert_eq!(
        ino(&dest.join(&long_dir).join("h".repeat(150))),
        ino(&dest
            .join(&long_dir)
            .join("e".repeat(200))
            .join("f".repeat(200)))
    );
}

#[test]
fn packing_is_deterministic_and_deduplicated() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("many")).unwrap();
    std::fs::write(src.join("large.bin"), noise(24 << 20, 3)).unwrap();
    for i in 0..300 {
        std::fs::write(
            src.join(format!("many/f{i:03}")),
            noise(1000 + i * 37, i as u64),
        )
        .unwrap();
    }
    let pack = |out: &str| {
        json(&ok(env.run(args![
            "pack",
            src,
            "-o",
            env.path(out),
            "--store",
            env.store(),
            "--json"
        ])))
    };
    let first = pack("a.flist");
    assert!(first["new_chunks"].as_u64().unwrap() > 300);
    assert_eq!(first["new_chunks"], first["chunks"]);

    // The same tree somewhere else, with another home and another store, as on another
    // machine: the same bytes.
    let elsewhere = env.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    run(Command::new("cp").arg("-a").arg(&src).arg(&elsewhere));
    let other_store = format!("dir://{}", env.path("other-store").display());
    let other_home = env.path("other-home");
    std::fs::create_dir_all(&other_home).unwrap();
    ok(flisthub(
        &other_home,
        args![
            "pack",
            elsewhere.join("src"),
            "-o",
            env.path("elsewhere.flist"),
            "--store",
            other_store
        ],
    ));
    assert_eq!(
        std::fs::read(env.path("a.flist")).unwrap(),
        std::fs::read(env.path("elsewhere.flist")).unwrap(),
        "the flist does not depend on where the tree or the store is"
    );

    let second = pack("b.flist");
    assert_eq!(second["new_chunks"], 0, "everything is already stored");
    assert_eq!(second["stored_bytes"], 0);
    assert_eq!(
        std::fs::read(env.path("a.flist")).unwrap(),
        std::fs::read(env.path("b.flist")).unwrap(),
        "the same tree gives the same flist bytes"
    );

    // One byte changed in the middle of the large file: only its chunk is new.
    let mut large = noise(24 << 20, 3);
    large[12 << 20] ^= 0xff;
    std::fs::write(src.join("large.bin"), &large).unwrap();
    let mtime = std::fs::metadata(src.join("many"))
        .unwrap()
        .modified()
        .unwrap();
    std::fs::File::options()
        .write(true)
        .open(src.join("large.bin"))
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let third = pack("c.flist");
    let new = third["new_chunks"].as_u64().unwrap();
    assert!(
        (1..=2).contains(&new),
        "{new} new chunks for a one-byte change"
    );
    assert!(third["stored_bytes"].as_u64().unwrap() < 5 << 20);
}

#[test]
fn cat_ls_and_inspect() {
    let env = Env::new();
    let src = env.path("src");
    make_tree(&src);
    let flist = env.path("t.flist");
    ok(env.run(args!["pack", src, "-o", flist, "--store", env.store()]));

    let cat = ok(env.run(args!["cat", flist, "/bin/big.bin", "--store", env.store()]));
    assert_eq!(cat.stdout, noise(9 << 20, 1));
    // Through a symlink inside the flist.
    let cat = ok(env.run(args![
        "cat",
        flist,
        "docs/bin-link/big.bin",
        "--store",
        env.store()
    ]));
    assert_eq!(cat.stdout.len(), 9 << 20);
    let err = fails(env.run(args!["cat", flist, "docs", "--store", env.store()]));
    assert!(err.contains("is a directory"), "{err}");
    let err = fails(env.run(args!["cat", flist, "nope", "--store", env.store()]));
    assert!(err.contains("no such file"), "{err}");

    let ls = String::from_utf8(ok(env.run(args!["ls", flist, "/bin"])).stdout).unwrap();
    assert!(ls.contains("-rwsr-xr-x"), "{ls}");
    assert!(ls.contains(&format!("{} ", 9 << 20)), "{ls}");
    let ls = String::from_utf8(ok(env.run(args!["ls", flist])).stdout).unwrap();
    assert!(ls.contains("link-relative -> hello.txt"), "{ls}");
    assert!(ls.contains("drwxrwxrwt"), "{ls}");
    let ls = String::from_utf8(ok(env.run(args!["ls", flist, "with space"])).stdout).unwrap();
    assert!(
        ls.contains(" and\\nnewline\n"),
        "control characters are escaped: {ls}"
    );
    let ls = String::from_utf8(ok(env.run(args!["ls", "-R", flist, "deep"])).stdout).unwrap();
    assert_eq!(ls.matches(":\n").count(), 41, "{ls}");
    assert!(ls.contains("bottom"));

    let inspect = json(&ok(env.run(args!["inspect", flist, "--json"])));
    assert_eq!(inspect["metadata"]["format-version"], 1);
    assert_eq!(inspect["metadata"]["hash"], "blake3-256");
    assert_eq!(inspect["metadata"]["chunker"]["avg"], 524288);
    assert_eq!(inspect["metadata"]["source"]["type"], "directory");
    assert!(
        inspect["metadata"]["routes"].is_null(),
        "a local store is no route for other machines"
    );
    assert_eq!(inspect["totals"]["hardlinks"], 2);
    let text = String::from_utf8(ok(env.run(args!["inspect", flist])).stdout).unwrap();
    // One column of values, however wide the longest key makes it.
    assert!(
        text.lines()
            .any(|line| line.split_whitespace().eq(["hardlinks", "2"])),
        "{text}"
    );
}

#[test]
fn missing_and_corrupt_chunks_are_reported_by_path_and_key() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("victim"), b"the only copy of this content\n").unwrap();
    std::fs::write(src.join("bystander"), b"fine\n").unwrap();
    let flist = env.path("t.flist");
    ok(env.run(args!["pack", src, "-o", flist, "--store", env.store()]));
    let key = blake3::hash(b"the only copy of this content\n")
        .to_hex()
        .to_string();
    let chunk = env.path("store/chunks").join(&key[..2]).join(&key);
    assert!(chunk.exists());

    let mut bytes = std::fs::read(&chunk).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&chunk, &bytes).unwrap();
    let err = fails(env.run(args![
        "extract",
        flist,
        env.path("d1"),
        "--store",
        env.store()
    ]));
    assert!(err.contains("/victim") && err.contains(&key), "{err}");
    assert!(err.contains("does not match its key"), "{err}");
    assert_eq!(std::fs::read(env.path("d1/bystander")).unwrap(), b"fine\n");

    std::fs::remove_file(&chunk).unwrap();
    let err = fails(env.run(args![
        "extract",
        flist,
        env.path("d2"),
        "--store",
        env.store()
    ]));
    assert!(
        err.contains("/victim") && err.contains(&format!("missing chunk {key}")),
        "{err}"
    );
    let err = fails(env.run(args!["cat", flist, "victim", "--store", env.store()]));
    assert!(err.contains(&key), "{err}");
}

#[test]
fn format_errors_are_clear() {
    let env = Env::new();
    let garbage = env.path("garbage.flist");
    std::fs::write(&garbage, noise(5000, 1)).unwrap();
    let err = fails(env.run(args!["inspect", garbage]));
    assert!(
        err.contains("not an flist: not an SQLite database"),
        "{err}"
    );
    let empty = env.path("empty.flist");
    std::fs::write(&empty, b"").unwrap();
    let err = fails(env.run(args!["ls", empty]));
    assert!(err.contains("the file is empty"), "{err}");
    let err = fails(env.run(args!["extract", env.path("absent.flist"), env.path("d")]));
    assert!(err.contains("absent.flist"), "{err}");
}

#[test]
#[should_panic(expected = "entry")]
fn the_tree_comparison_notices_a_changed_mtime() {
    let env = Env::new();
    make_tree(&env.path("a"));
    make_tree(&env.path("b"));
    assert_same_tree(&env.path("a"), &env.path("b"), &nothing); // identical so far
    let f = std::fs::File::options()
        .write(true)
        .open(env.path("b/secret"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    assert_same_tree(&env.path("a"), &env.path("b"), &nothing);
}

/// Killed outright in the middle of a pack, or interrupted: no flist, no staging file, no
/// temporary file in the output directory. The tar stream arrives on stdin and half of it is
/// held back, so the signal always lands in the middle.
#[test]
fn killed_or_interrupted_packs_leave_nothing_behind() {
    use std::io::Write;
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..8 {
        std::fs::write(src.join(format!("f{i}")), noise(1 << 20, i)).unwrap();
    }
    let archive = tar_of(&src, &[]);
    let out_dir = env.path("out");
    std::fs::create_dir(&out_dir).unwrap();
    for (signal, code) in [("KILL", None), ("INT", Some(130)), ("TERM", Some(130))] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flisthub"))
            .args(["-q", "pack", "-", "-o"])
            .arg(out_dir.join("x.flist"))
            .arg("--store")
            .arg(env.store())
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        if let Err(e) = stdin.write_all(&archive[..archive.len() / 2]) {
            // The child stopped reading before the signal: say why, from its own words.
            drop(stdin);
            let out = child.wait_with_output().unwrap();
            panic!(
                "SIG{signal}: pack stopped reading early ({e}), {:?}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        run(Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string()));
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            code,
            "SIG{signal}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(listing(&out_dir), Vec::<String>::new(), "after SIG{signal}");
    }
}

/// The first bytes of a compressed stream may come one read at a time.
#[test]
fn compression_is_detected_on_a_slow_pipe() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"slow").unwrap();
    let archive = tar_of(&src, &["-z"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_flisthub"))
        .args(["-q", "pack", "-", "-o"])
        .arg(env.path("s.flist"))
        .arg("--store")
        .arg(env.store())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        for byte in &archive[..3] {
            stdin.write_all(&[*byte]).unwrap();
            stdin.flush().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        stdin.write_all(&archive[3..]).unwrap();
    }
    assert!(child.wait().unwrap().success());
    let cat = ok(env.run(args![
        "cat",
        env.path("s.flist"),
        "a",
        "--store",
        env.store()
    ]));
    assert_eq!(cat.stdout, b"slow");
}

/// `pack dir -o dir/x.flist` again does not pack the previous x.flist into the new one.
#[test]
fn the_output_is_not_packed_into_itself() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"a").unwrap();
    let flist = src.join("x.flist");
    ok(env.run(args!["pack", src, "-o", flist, "--store", env.store()]));
    ok(env.run(args!["pack", src, "-o", flist, "--store", env.store()]));
    let ls = String::from_utf8(ok(env.run(args!["ls", flist])).stdout).unwrap();
    assert!(!ls.contains("x.flist"), "{ls}");
    assert!(ls.contains(" a\n"), "{ls}");
}
