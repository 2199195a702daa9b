//! Hostile and broken inputs: each refused with an error that says what is wrong, and no
//! flist (nor any temporary file) left behind.

mod common;

use common::*;

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

fn archive(members: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = members.concat();
    out.extend(end_of_archive());
    out
}

fn file(name: &[u8], data: &[u8]) -> Vec<u8> {
    member(name, b'0', data, b"")
}

fn symlink(name: &[u8], target: &[u8]) -> Vec<u8> {
    member(name, b'2', b"", target)
}

fn hardlink(name: &[u8], target: &[u8]) -> Vec<u8> {
    member(name, b'1', b"", target)
}

fn dir(name: &[u8]) -> Vec<u8> {
    member(name, b'5', b"", b"")
}

#[test]
fn dot_dot_escapes() {
    for name in ["../escape", "a/../../escape", "/../etc/passwd", "ok/.."] {
        let input = archive(&[file(name.as_bytes(), b"x")]);
        refused_with(&input, &[], &["'..' component", name]);
    }
    refused_with(
        &archive(&[hardlink(b"up", b"../../etc/shadow")]),
        &[],
        &["\"up\"", "'..' component"],
    );
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

#[test]
fn paths_through_symlinks_and_files_of_the_archive() {
    // (what, archive members, phrases the error must contain)
    type Case = (&'static str, Vec<Vec<u8>>, &'static [&'static str]);
    let cases: [Case; 5] = [
        (
            "a file below a symlink",
            vec![symlink(b"link", b"/etc"), file(b"link/passwd", b"pwned\n")],
            &["link/passwd", "is a symlink"],
        ),
        (
            "a hardlink to a path below a symlink",
            vec![symlink(b"link", b"/etc"), hardlink(b"h", b"link/passwd")],
            &["\"h\"", "not an earlier entry"],
        ),
        (
            "a directory below a symlink to the tree itself",
            vec![symlink(b"d", b"."), dir(b"d/x")],
            &["d/x", "is a symlink"],
        ),
        (
            "a file below a file",
            vec![file(b"f", b"x"), file(b"f/g", b"y")],
            &["f/g", "is not a directory"],
        ),
        (
            "a hardlink to a directory",
            vec![dir(b"d"), hardlink(b"h", b"d")],
            &["\"h\"", "is a directory"],
        ),
    ];
    for (what, members, phrases) in cases {
        eprintln!("case: {what}");
        refused_with(&archive(&members), &[], phrases);
    }
}

#[test]
fn bad_names() {
    refused_with(&archive(&[file(b"", b"x")]), &[], &["an empty name"]);
    let mut nul = pax(&[("path", b"a\0b")]);
    nul.extend(file(b"placeholder", b"x"));
    nul.extend(end_of_archive());
    refused_with(&nul, &[], &["a NUL byte in the name"]);
}

#[test]
fn truncated_and_garbage_inputs() {
    let good = archive(&[file(b"a", &noise(200_000, 1)), file(b"b", b"b")]);
    let gz = gzip(&good);
    refused_with(
        &gz[..gz.len() - 200],
        &[],
        &["entry \"a\"", "incomplete deflate stream"],
    );
    // Cut at an entry boundary: no end-of-archive marker.
    refused_with(
        &good[..good.len() - 1024],
        &[],
        &[
            "truncated tar archive",
            "without tar's end-of-archive marker",
        ],
    );
    // Cut in the middle of the second header.
    refused_with(
        &good[..512 + 200_192 + 100],
        &[],
        &[
            "corrupt tar archive after 1 entries",
            "failed to read entire block",
        ],
    );
    // A header declaring more data than the archive holds.
    let mut short = tar_header(b"big", b'0', 1 << 20, b"").to_vec();
    short.extend_from_slice(&[7u8; 1000]);
    refused_with(
        &short,
        &[],
        &[
            "entry \"big\"",
            "1048576 bytes declared, 1000 bytes of content",
        ],
    );
    refused_with(&noise(100_000, 5), &[], &["not a tar archive"]);
    refused_with(b"", &[], &["the input is empty"]);
    refused_with(
        b"\xfd7zXZ\0 pretend xz",
        &[],
        &["xz-compressed input is not supported"],
    );
}

#[test]
fn limits_stop_tar_bombs() {
    // 64 MiB of zeros gzip to about 64 KiB.
    let bomb = gzip(&archive(&[member(
        b"zeros",
        b'0',
        &vec![0u8; 64 << 20],
        b"",
    )]));
    assert!(bomb.len() < 200_000);
    let err = refuse(&bomb, &["--max-size", "10000000"]);
    assert!(
        err.contains("limit exceeded") && err.contains("10000000"),
        "{err}"
    );

    let many: Vec<Vec<u8>> = (0..50)
        .map(|i| member(format!("f{i}").as_bytes(), b'0', b"", b""))
        .collect();
    let err = refuse(&archive(&many), &["--max-entries", "20"]);
    assert!(err.contains("more than 20 entries"), "{err}");

    let deep = format!("{}/f", "d".repeat(90));
    let err = refuse(
        &archive(&[member(deep.as_bytes(), b'0', b"", b"")]),
        &["--max-path", "64"],
    );
    assert!(err.contains("the limit is 64"), "{err}");
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
