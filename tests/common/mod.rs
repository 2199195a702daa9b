//! Helpers for the end-to-end tests: running the real `flisthub` binary, building trees with
//! every kind of entry, comparing trees, and crafting tar archives byte by byte.
#![allow(dead_code)]

pub mod hub;
pub mod images;
pub mod nodes;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Runs `flisthub` with `args`, with a private home so no default store leaks between tests.
pub fn flisthub(home: &Path, args: &[&OsStr]) -> Output {
    flisthub_with_stdin(home, args, None)
}

pub fn flisthub_with_stdin(home: &Path, args: &[&OsStr], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flisthub"));
    cmd.args(args)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env_remove("FLISTHUB_STORE")
        .env_remove("FLISTHUB_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run flisthub");
    if let Some(input) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("stdin");
        // The child may refuse the input early and close the pipe.
        let _ = pipe.write_all(input);
    }
    child.wait_with_output().expect("wait for flisthub")
}

/// Builds the argument list from anything path-like or string-like.
#[macro_export]
macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$(std::ffi::OsStr::new(&$a)),*] };
}

pub fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "flisthub failed: {}\nstdout: {}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// Asserts failure and returns stderr.
pub fn fails(out: Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "expected a failure, got success; stderr: {stderr}"
    );
    stderr
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// Deterministic pseudo-random bytes.
pub use testkit::noise;

pub fn xattrs_supported(dir: &Path) -> bool {
    let probe = dir.join(".xattr-probe");
    std::fs::write(&probe, b"").unwrap();
    let ok = xattr::set(&probe, "user.probe", b"1").is_ok();
    std::fs::remove_file(probe).unwrap();
    ok
}

fn set_mtime(path: &Path, secs: i64, nanos: i64) {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps};
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: nanos as _,
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

/// What a tree holds beyond plain files, so tests know what to expect of it.
pub struct TreeInfo {
    pub sockets: bool,
    pub devices: bool,
    pub xattrs: bool,
}

/// A tree with every entry type the format supports: empty, small and multi-chunk files,
/// unicode, spaces, newlines and invalid UTF-8 in names, 40 levels of nesting, relative,
/// absolute and dangling symlinks, hardlinks across directories, a FIFO, a socket, device
/// nodes (as root), setuid, sticky and read-only modes, xattrs (where supported), foreign
/// owners (as root) and mtimes with nanoseconds.
pub fn make_tree(root: &Path) -> TreeInfo {
    use std::fs;
    fs::create_dir_all(root).unwrap();
    let w = |rel: &str, data: &[u8]| {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
    };
    w("empty", b"");
    w("hello.txt", b"hello, flist\n");
    w("docs/README.md", &b"# readme\n".repeat(5000));
    w("bin/big.bin", &noise(9 << 20, 1)); // several chunks
    w("bin/zeros", &vec![0u8; 3 << 20]); // compresses to almost nothing, max-size chunks
    w("ünïcödé/ファイル.txt", "こんにちは".as_bytes());
    w("with space/and\nnewline", b"odd names\n");
    w(&"n".repeat(255), b"long name\n");
    let weird = root.join(OsStr::from_bytes(b"latin1-\xe9t\xe9"));
    fs::write(&weird, b"not utf-8\n").unwrap();
    let mut deep = root.join("deep");
    for i in 0..40 {
        deep.push(format!("level{i}"));
    }
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("bottom"), b"deep\n").unwrap();

    std::os::unix::fs::symlink("hello.txt", root.join("link-relative")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("link-absolute")).unwrap();
    std::os::unix::fs::symlink("does/not/exist", root.join("link-dangling")).unwrap();
    std::os::unix::fs::symlink("../bin", root.join("docs/bin-link")).unwrap();
    fs::hard_link(root.join("hello.txt"), root.join("hardlink-same-dir")).unwrap();
    fs::hard_link(root.join("hello.txt"), root.join("docs/hardlink-other-dir")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    let sockets = std::os::unix::net::UnixListener::bind(root.join("socket")).is_ok();
    let devices = is_root();
    if devices {
        for (name, kind, dev) in [
            (
                "dev/null",
                rustix::fs::FileType::CharacterDevice,
                rustix::fs::makedev(1, 3),
            ),
            (
                "dev/sda",
                rustix::fs::FileType::BlockDevice,
                rustix::fs::makedev(8, 0),
            ),
        ] {
            fs::create_dir_all(root.join("dev")).unwrap();
            rustix::fs::mknodat(
                rustix::fs::CWD,
                root.join(name),
                kind,
                rustix::fs::Mode::from_raw_mode(0o660),
                dev,
            )
            .unwrap();
        }
        std::os::unix::fs::chown(root.join("hello.txt"), Some(1234), Some(5678)).unwrap();
        std::os::unix::fs::lchown(root.join("link-relative"), Some(4321), Some(8765)).unwrap();
        std::os::unix::fs::chown(root.join("docs"), Some(42), Some(43)).unwrap();
    }
    let xattrs = xattrs_supported(root);
    if xattrs {
        xattr::set(
            root.join("docs/README.md"),
            "user.comment",
            b"a \x00binary\xff value",
        )
        .unwrap();
        xattr::set(root.join("docs"), "user.dir", b"on a directory").unwrap();
    }
    fs::write(root.join("bin/setuid"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(root.join("bin/setuid"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::create_dir(root.join("tmp")).unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::write(root.join("secret"), b"s3cret\n").unwrap();
    fs::set_permissions(root.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::create_dir(root.join("readonly")).unwrap();
    fs::write(root.join("readonly/inside"), b"in a read-only directory\n").unwrap();
    fs::set_permissions(root.join("readonly"), fs::Permissions::from_mode(0o555)).unwrap();

    // Times last, deepest first, so nothing disturbs them afterwards.
    let mut paths: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .collect();
    paths.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, p) in paths.iter().enumerate() {
        set_mtime(
            p,
            1_600_000_000 + i as i64 * 1000,
            (i as i64 * 7_919_111) % 1_000_000_000,
        );
    }
    TreeInfo {
        sockets,
        devices,
        xattrs,
    }
}

/// Everything a tree comparison looks at for one entry.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    kind: &'static str,
    mode: u32,
    owner: Option<(u32, u32)>,
    mtime: (i64, i64),
    size: u64,
    content: Option<[u8; 32]>,
    link: Option<Vec<u8>>,
    rdev: u64,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// Every entry by path, and the groups of paths that share an inode.
struct Tree {
    entries: BTreeMap<Vec<u8>, Observed>,
    hardlink_groups: Vec<Vec<Vec<u8>>>,
}

fn observe(root: &Path, owners: bool, skip: &dyn Fn(&Path) -> bool) -> Tree {
    let mut entries = BTreeMap::new();
    let mut inodes: HashMap<u64, Vec<Vec<u8>>> = HashMap::new();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        if skip(Path::new(OsStr::from_bytes(&rel))) {
            continue;
        }
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_fifo() {
            "fifo"
        } else if ft.is_socket() {
            "socket"
        } else if ft.is_char_device() {
            "char"
        } else {
            "block"
        };
        if ft.is_file() && meta.nlink() > 1 {
            inodes.entry(meta.ino()).or_default().push(rel.clone());
        }
        let xattrs = xattr::list(entry.path())
            .map(|names| {
                names
                    .filter(|n| n.as_bytes().starts_with(b"user."))
                    .map(|n| {
                        let v = xattr::get(entry.path(), &n).unwrap().unwrap_or_default();
                        (n.as_bytes().to_vec(), v)
                    })
                    .collect()
            })
            .unwrap_or_default();
        // The root's attributes depend on where the tree was made; everything below counts.
        let is_root = rel.is_empty();
        entries.insert(
            rel,
            Observed {
                kind,
                mode: if is_root || ft.is_symlink() {
                    0
                } else {
                    meta.mode() & 0o7777
                },
                owner: (owners && !is_root).then(|| (meta.uid(), meta.gid())),
                mtime: if is_root {
                    (0, 0)
                } else {
                    (meta.mtime(), meta.mtime_nsec())
                },
                size: if ft.is_dir() { 0 } else { meta.len() },
                content: ft
                    .is_file()
                    .then(|| *blake3::hash(&std::fs::read(entry.path()).unwrap()).as_bytes()),
                link: ft.is_symlink().then(|| {
                    std::fs::read_link(entry.path())
                        .unwrap()
                        .as_os_str()
                        .as_bytes()
                        .to_vec()
                }),
                rdev: meta.rdev(),
                xattrs,
            },
        );
    }
    let mut hardlink_groups: Vec<Vec<Vec<u8>>> = inodes.into_values().collect();
    hardlink_groups.sort();
    Tree {
        entries,
        hardlink_groups,
    }
}

/// Asserts that two trees hold the same entries with the same content, modes, mtimes,
/// link targets, device numbers, xattrs, owners (as root) and hardlink groups.
pub fn assert_same_tree(expected: &Path, actual: &Path, skip: &dyn Fn(&Path) -> bool) {
    let owners = is_root();
    let Tree {
        entries: a,
        hardlink_groups: ga,
    } = observe(expected, owners, skip);
    let Tree {
        entries: b,
        hardlink_groups: gb,
    } = observe(actual, owners, skip);
    let names = |m: &BTreeMap<Vec<u8>, Observed>| -> Vec<String> {
        m.keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()
    };
    assert_eq!(names(&a), names(&b), "the same paths");
    for (path, want) in &a {
        assert_eq!(
            Some(want),
            b.get(path),
            "entry {:?}",
            String::from_utf8_lossy(path)
        );
    }
    assert_eq!(ga, gb, "the same hardlink groups");
}

pub fn nothing(_: &Path) -> bool {
    false
}

/// Files in `dir` (not recursive), for checking that failures leave nothing behind.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// The byte-level tar builders are testkit's, shared with the converter's own tests.
#[allow(unused_imports)]
pub use testkit::tar::{end_of_archive, gzip, member, pax, tar_header};

/// Runs a command, asserting success.
pub fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether a program is on PATH; tests that need a missing one say so and skip.
pub fn have(program: &str) -> bool {
    testkit::need(program)
}

/// `tar -c` of the directory's contents, with extra options (`-z`, `--format=posix`).
pub fn tar_of(dir: &Path, options: &[&str]) -> Vec<u8> {
    let out = Command::new("tar")
        .args(options)
        .args(["-cf", "-", "-C"])
        .arg(dir)
        .arg(".")
        .output()
        .expect("tar");
    assert!(
        out.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
