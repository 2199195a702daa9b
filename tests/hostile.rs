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

fn archive(members: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = members.concat();
    out.extend(end_of_archive());
    out
}

#[test]
fn dot_dot_escapes() {
    for name in [
        &b"../escape"[..],
        b"a/../../escape",
        b"/../etc/passwd",
        b"ok/..",
    ] {
        let err = refuse(&archive(&[member(name, b'0', b"x", b"")]), &[]);
        assert!(err.contains("'..' component"), "{err}");
        assert!(
            err.contains(&String::from_utf8_lossy(name).into_owned()),
            "names the entry: {err}"
        );
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
    let err = refuse(
        &archive(&[member(b"shadow", b'1', b"", b"/etc/shadow")]),
        &[],
    );
    assert!(
        err.contains("shadow") && err.contains("not an earlier entry"),
        "{err}"
    );
    let err = refuse(
        &archive(&[member(b"up", b'1', b"", b"../../etc/shadow")]),
        &[],
    );
    assert!(err.contains("'..' component"), "{err}");
}

#[test]
fn a_file_through_a_symlink_of_the_archive() {
    let err = refuse(
        &archive(&[
            member(b"link", b'2', b"", b"/etc"),
            member(b"link/passwd", b'0', b"pwned\n", b""),
        ]),
        &[],
    );
    assert!(
        err.contains("link/passwd") && err.contains("symlink"),
        "{err}"
    );

    // The same trick with a hardlink target below the symlink.
    let err = refuse(
        &archive(&[
            member(b"link", b'2', b"", b"/etc"),
            member(b"h", b'1', b"", b"link/passwd"),
        ]),
        &[],
    );
    assert!(err.contains("not an earlier entry"), "{err}");

    // And a directory symlink replaced by nothing cannot be written through either.
    let err = refuse(
        &archive(&[
            member(b"d", b'2', b"", b"."),
            member(b"d/x", b'5', b"", b""),
        ]),
        &[],
    );
    assert!(err.contains("symlink"), "{err}");
}

#[test]
fn declared_size_larger_than_the_data() {
    let mut input = tar_header(b"big", b'0', 1 << 20, b"").to_vec();
    input.extend_from_slice(&[7u8; 1000]);
    let err = refuse(&input, &[]);
    assert!(err.contains("big"), "{err}");
    assert!(
        err.contains("1048576 bytes declared") || err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn truncated_and_garbage_inputs() {
    let good = archive(&[
        member(b"a", b'0', &noise(200_000, 1), b""),
        member(b"b", b'0', b"b", b""),
    ]);

    let gz = gzip(&good);
    let err = refuse(&gz[..gz.len() - 200], &[]);
    assert!(
        err.contains("entry \"a\"") && err.contains("incomplete deflate stream"),
        "{err}"
    );

    // Cut at an entry boundary: no end-of-archive marker.
    let err = refuse(&good[..good.len() - 1024], &[]);
    assert!(
        err.contains("truncated tar archive") && err.contains("end-of-archive"),
        "{err}"
    );

    // Cut in the middle of a header.
    let err = refuse(&good[..512 + 200_192 + 100], &[]);
    assert!(
        err.contains("corrupt tar archive") || err.contains("truncated"),
        "{err}"
    );

    let err = refuse(&noise(100_000, 5), &[]);
    assert!(err.contains("not a tar archive"), "{err}");
    let err = refuse(b"", &[]);
    assert!(err.contains("the input is empty"), "{err}");
    let err = refuse(b"\xfd7zXZ\0 pretend xz", &[]);
    assert!(
        err.contains("xz-compressed input is not supported"),
        "{err}"
    );
}

#[test]
fn bad_names() {
    let err = refuse(&archive(&[member(b"", b'0', b"x", b"")]), &[]);
    assert!(err.contains("an empty name"), "{err}");
    let mut input = pax(&[("path", b"a\0b")]);
    input.extend(member(b"placeholder", b'0', b"x", b""));
    input.extend(end_of_archive());
    let err = refuse(&input, &[]);
    assert!(err.contains("NUL"), "{err}");
    let err = refuse(
        &archive(&[
            member(b"f", b'0', b"x", b""),
            member(b"f/g", b'0', b"y", b""),
        ]),
        &[],
    );
    assert!(
        err.contains("f/g") && err.contains("not a directory"),
        "{err}"
    );
    let err = refuse(
        &archive(&[member(b"d", b'5', b"", b""), member(b"h", b'1', b"", b"d")]),
        &[],
    );
    assert!(err.contains("is a directory"), "{err}");
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
