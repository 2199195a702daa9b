//! Hostile and broken inputs through the command line: refused with an error that says what
//! is wrong and a failing exit, and no flist (nor any temporary file) left behind. The
//! corpus of refusals, each with its typed error, runs in process in
//! `converter/tests/tar_refusals.rs`; here are the flows around it.

mod common;

use common::*;
use testkit::tar::{archive, file, hardlink};

/// Packs `input` from a file and returns stderr, asserting the pack failed and wrote nothing.
fn refuse(input: &[u8], extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let archive = dir.path().join("input.tar");
    std::fs::write(&archive, input).unwrap();
    let store = format!("dir://{}", dir.path().join("store").display());
    let flist = out_dir.join("x.flist");
    let mut args: Vec<&std::ffi::OsStr> =
        args!["pack", archive, "-o", flist, "--store", store].to_vec();
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let err = fails(flisthub(dir.path(), &args));
    assert_eq!(listing(&out_dir), Vec::<String>::new(), "nothing written");
    err
}

/// Asserts that packing `input` fails with an error containing every one of `phrases`.
fn refused_with(input: &[u8], extra: &[&str], phrases: &[&str]) {
    let err = refuse(input, extra);
    for phrase in phrases {
        assert!(err.contains(phrase), "expected {phrase:?} in: {err}");
    }
}

#[test]
fn absolute_paths_stay_inside_and_cannot_link_outside() {
    // Leading '/' is dropped, as GNU tar does: the entry lands inside the tree.
    let dir = tempfile::tempdir().unwrap();
    let archive_path = dir.path().join("abs.tar");
    std::fs::write(
        &archive_path,
        archive(&[member(b"/etc/passwd", b'0', b"inside\n", b"")]),
    )
    .unwrap();
    let store = format!("dir://{}", dir.path().join("store").display());
    let flist = dir.path().join("abs.flist");
    ok(flisthub(
        dir.path(),
        args!["pack", archive_path, "-o", flist, "--store", store],
    ));
    let dest = dir.path().join("dest");
    ok(flisthub(
        dir.path(),
        args!["extract", flist, dest, "--store", store],
    ));
    assert_eq!(std::fs::read(dest.join("etc/passwd")).unwrap(), b"inside\n");

    // A hardlink to an absolute path that is not an earlier entry of the archive.
    refused_with(
        &archive(&[hardlink(b"shadow", b"/etc/shadow")]),
        &[],
        &["\"shadow\"", "not an earlier entry"],
    );
}

/// A refusal on the terminal: names escaped, the limit named, exit status non-zero.
#[test]
fn refusals_print_escaped_names() {
    let err = refuse(&archive(&[file(b"\x1b[31mred/../../x", b"x")]), &[]);
    assert!(
        err.contains("\\x1b[31mred/../../x") && err.contains("'..' component"),
        "{err}"
    );
    assert!(!err.contains('\x1b'), "{err:?}");
    let many: Vec<Vec<u8>> = (0..50)
        .map(|i| member(format!("f{i}").as_bytes(), b'0', b"", b""))
        .collect();
    let err = refuse(&archive(&many), &["--max-entries", "20"]);
    assert!(err.contains("more than 20 entries"), "{err}");
}

#[test]
fn stdin_garbage_is_refused_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.flist");
    let store = format!("dir://{}", dir.path().join("store").display());
    let err = fails(flisthub_with_stdin(
        dir.path(),
        args!["pack", "-", "-o", out, "--store", store],
        Some(&noise(4096, 2)),
    ));
    assert!(err.contains("not a tar archive"), "{err}");
    assert!(!out.exists());
}
