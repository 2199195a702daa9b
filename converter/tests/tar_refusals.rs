//! The tar refusal corpus, in process: every hostile or broken archive is refused with its
//! typed error, and nothing is left where the flist would have gone.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use chunkstore::{DirOptions, DirStore};
use converter::{Error, Limits, PackOptions, PackSummary, Progress};
use testkit::tar::*;

/// Packs `input` into a fresh directory; returns the result and what the directory holds
/// afterwards besides the store.
fn pack_with(
    input: impl Read + Send + 'static,
    limits: Limits,
) -> (converter::Result<PackSummary>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let store = DirStore::open(dir.path().join("store"), DirOptions::default()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let options = PackOptions {
        limits,
        ..PackOptions::default()
    };
    let result = runtime.block_on(converter::pack_tar(
        input,
        "input.tar".into(),
        out.join("x.flist"),
        Arc::new(store),
        options,
        Arc::new(Progress::default()),
    ));
    (result, listing(&out))
}

fn listing(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Packs `input`, which must be refused, and returns the error.
fn refuse_with(input: Vec<u8>, limits: Limits) -> Error {
    let (result, left) = pack_with(std::io::Cursor::new(input), limits);
    assert_eq!(left, Vec::<String>::new(), "nothing written");
    match result {
        Ok(_) => panic!("packed"),
        Err(e) => e,
    }
}

/// Bytes that do not compress.
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn refuse(input: Vec<u8>) -> Error {
    refuse_with(input, Limits::default())
}

#[test]
fn names_that_escape_the_tree() {
    for name in ["../escape", "a/../../escape", "/../etc/passwd", "ok/.."] {
        match refuse(archive(&[file(name.as_bytes(), b"x")])) {
            Error::Escape { path } => assert_eq!(path, name),
            e => panic!("{name}: {e:?}"),
        }
    }
}

#[test]
fn bad_links() {
    /// (what, archive members, the link, its target, a phrase of the reason)
    type Case = (
        &'static str,
        Vec<Vec<u8>>,
        &'static str,
        &'static str,
        &'static str,
    );
    let cases: [Case; 5] = [
        (
            "a hardlink out of the tree",
            vec![hardlink(b"up", b"../../etc/shadow")],
            "up",
            "../../etc/shadow",
            "'..' component",
        ),
        (
            "a hardlink to an absolute path that is not in the archive",
            vec![hardlink(b"shadow", b"/etc/shadow")],
            "shadow",
            "etc/shadow",
            "not an earlier entry",
        ),
        (
            "a hardlink to a path below a symlink",
            vec![symlink(b"link", b"/etc"), hardlink(b"h", b"link/passwd")],
            "h",
            "link/passwd",
            "not an earlier entry",
        ),
        (
            "a hardlink to a directory",
            vec![dir(b"d"), hardlink(b"h", b"d")],
            "h",
            "d",
            "a directory",
        ),
        (
            "an archive whose only entry is a hardlink to itself",
            vec![hardlink(b"self", b"self")],
            "self",
            "self",
            "not an earlier entry",
        ),
    ];
    for (what, members, want_path, want_target, want_reason) in cases {
        match refuse(archive(&members)) {
            Error::BadLink {
                path,
                target,
                reason,
            } => {
                assert_eq!(
                    (path.as_str(), target.as_str()),
                    (want_path, want_target),
                    "{what}"
                );
                assert!(reason.contains(want_reason), "{what}: {reason}");
            }
            e => panic!("{what}: {e:?}"),
        }
    }
    match refuse(archive(&[symlink(b"nowhere", b"")])) {
        Error::BadLink { path, .. } => assert_eq!(path, "nowhere"),
        e => panic!("a symlink without a target: {e:?}"),
    }
}

#[test]
fn a_file_named_twice_links_to_itself() {
    // GNU tar stores the second of `tar -cf x.tar f f` as a hardlink to itself.
    let input = archive(&[file(b"f", b"content"), hardlink(b"f", b"f")]);
    let (result, _) = pack_with(std::io::Cursor::new(input), Limits::default());
    assert_eq!(result.unwrap().totals.files, 1);
}

#[test]
fn paths_through_symlinks_and_files_of_the_archive() {
    let cases: [(&str, Vec<Vec<u8>>, &str, &str); 3] = [
        (
            "a file below a symlink",
            vec![symlink(b"link", b"/etc"), file(b"link/passwd", b"pwned\n")],
            "link/passwd",
            "is a symlink",
        ),
        (
            "a directory below a symlink to the tree itself",
            vec![symlink(b"d", b"."), dir(b"d/x")],
            "d/x",
            "is a symlink",
        ),
        (
            "a file below a file",
            vec![file(b"f", b"x"), file(b"f/g", b"y")],
            "f/g",
            "is not a directory",
        ),
    ];
    for (what, members, want_path, want_reason) in cases {
        match refuse(archive(&members)) {
            Error::Flist(flist::Error::Conflict { path, reason }) => {
                assert_eq!(path, want_path, "{what}");
                assert!(reason.contains(want_reason), "{what}: {reason}");
            }
            e => panic!("{what}: {e:?}"),
        }
    }
}

#[test]
fn bad_names() {
    let reason_of = |e: Error| match e {
        Error::Entry { reason, .. } => reason,
        e => panic!("{e:?}"),
    };
    assert_eq!(
        reason_of(refuse(archive(&[file(b"", b"x")]))),
        "an empty name"
    );
    let mut nul = pax(&[("path", b"a\0b")]);
    nul.extend(file(b"placeholder", b"x"));
    nul.extend(end_of_archive());
    assert_eq!(reason_of(refuse(nul)), "a NUL byte in the name");
}

#[test]
fn truncated_and_garbage_inputs() {
    let input_error = |e: Error| match e {
        Error::Input(text) => text,
        e => panic!("{e:?}"),
    };
    let good = archive(&[file(b"a", &noise(200_000)), file(b"b", b"b")]);
    let gz = gzip(&good);
    match refuse(gz[..gz.len() - 200].to_vec()) {
        Error::Entry { path, reason } => {
            assert_eq!(path, "a");
            assert!(reason.contains("incomplete deflate stream"), "{reason}");
        }
        e => panic!("{e:?}"),
    }
    // Cut at an entry boundary: no end-of-archive marker.
    let text = input_error(refuse(good[..good.len() - 1024].to_vec()));
    assert!(text.contains("truncated tar archive"), "{text}");
    // Cut in the middle of the second header.
    let text = input_error(refuse(good[..512 + 200_192 + 100].to_vec()));
    assert!(
        text.contains("corrupt tar archive after 1 entries"),
        "{text}"
    );
    // A header declaring more data than the archive holds.
    let mut short = tar_header(b"big", b'0', 1 << 20, b"").to_vec();
    short.extend_from_slice(&[7u8; 1000]);
    match refuse(short) {
        Error::Entry { path, reason } => {
            assert_eq!(path, "big");
            assert!(
                reason.contains("1048576 bytes declared, 1000 bytes of content"),
                "{reason}"
            );
        }
        e => panic!("{e:?}"),
    }
    assert!(input_error(refuse(noise(100_000))).contains("not a tar archive"));
    assert!(input_error(refuse(Vec::new())).contains("the input is empty"));
    assert!(
        input_error(refuse(b"\xfd7zXZ\0 pretend xz".to_vec()))
            .contains("xz-compressed input is not supported")
    );
}

#[test]
fn limits_of_entries_paths_and_content() {
    let bomb = archive(&[tar_header(b"zeros", b'0', 64 << 20, b"").to_vec()]);
    let limits = Limits {
        max_total_size: 10_000_000,
        ..Limits::default()
    };
    match refuse_with(bomb, limits) {
        Error::ContentTooLarge { path, limit } => {
            assert_eq!((path.as_str(), limit), ("zeros", 10_000_000))
        }
        e => panic!("{e:?}"),
    }
    let many: Vec<Vec<u8>> = (0..50)
        .map(|i| file(format!("f{i}").as_bytes(), b""))
        .collect();
    let limits = Limits {
        max_entries: 20,
        ..Limits::default()
    };
    assert!(matches!(
        refuse_with(archive(&many), limits),
        Error::TooManyEntries { limit: 20 }
    ));
    let deep = format!("{}/f", "d".repeat(90));
    let limits = Limits {
        max_path_len: 64,
        ..Limits::default()
    };
    match refuse_with(archive(&[file(deep.as_bytes(), b"")]), limits) {
        Error::PathTooLong { len, limit, .. } => assert_eq!((len, limit), (92, 64)),
        e => panic!("{e:?}"),
    }
}

/// A header record (PAX, global PAX, GNU long name or link) declaring more than the limit is
/// refused from its header, before its data: the 1 MB and 4 MB bombs, one declaring 20 GiB
/// in base-256, and the same through gzip and zstd.
#[test]
fn header_records_are_bounded_before_they_are_read() {
    let kinds = [
        (b'x', "PAX"),
        (b'g', "global PAX"),
        (b'L', "GNU long name"),
        (b'K', "GNU long link name"),
    ];
    for (typeflag, kind) in kinds {
        for (declared, sent) in [(1 << 20, 1 << 20), (4 << 20, 4 << 20), (20 << 30, 1 << 20)] {
            let bomb = header_bomb(typeflag, declared, sent);
            let zstd = zstd::encode_all(bomb.as_slice(), 3).unwrap();
            for input in [bomb.clone(), gzip(&bomb), zstd] {
                match refuse(input) {
                    Error::HeaderRecordTooLarge {
                        entry,
                        kind: got,
                        size,
                        limit,
                    } => {
                        assert_eq!(
                            (entry.as_str(), got, size, limit),
                            ("././@LongLink", kind, declared, 64 << 10)
                        );
                    }
                    e => panic!("{kind} of {declared}: {e:?}"),
                }
            }
        }
    }
    // Within the limit, a record is read (this one, a long name, names the file).
    let name = vec!["n".repeat(200); 14].join("/");
    assert!(name.len() > 2800);
    let mut long = member(b"././@LongLink", b'L', name.as_bytes(), b"");
    long.extend(file(b"short", b"x"));
    let limits = Limits {
        max_header_record: 3000,
        ..Limits::default()
    };
    let (result, _) = pack_with(std::io::Cursor::new(archive(&[long])), limits);
    assert_eq!(result.unwrap().totals.files, 1);
}

/// The guard follows the stream as the tar crate does: a PAX `size` makes the next entry's
/// data longer than its header says, and a bomb-shaped header inside that data is content.
#[test]
fn pax_sizes_are_followed() {
    let mut content = header_bomb(b'x', 1 << 30, 0);
    content.resize(2000, b'c');
    let mut input = pax(&[("size", b"2000")]);
    let mut header = tar_header(b"sized-by-pax", b'0', 0, b"").to_vec();
    header.extend(&content);
    header.resize(header.len().div_ceil(512) * 512, 0);
    input.extend(header);
    input.extend(header_bomb(b'L', 5 << 20, 512));
    match refuse(input) {
        Error::HeaderRecordTooLarge { size, kind, .. } => {
            assert_eq!((size, kind), (5 << 20, "GNU long name"))
        }
        e => panic!("{e:?}"),
    }
}

/// 8 GiB of zeros in about 8 MB of gzip is refused once the floor has come out, long
/// before the 8 GiB.
#[test]
fn decompression_is_bounded() {
    let bomb = zeros_gzip(b"zeros", 8 << 30);
    assert!(bomb.len() < 10 << 20, "{}", bomb.len());
    match refuse(bomb) {
        Error::ExpansionTooLarge {
            expanded, ratio, ..
        } => {
            assert_eq!(ratio, Limits::default().max_expansion_ratio);
            assert!(expanded < 128 << 20, "refused after {expanded} bytes");
        }
        e => panic!("{e:?}"),
    }
}

/// Names and header fields from the archive are printed escaped: no terminal escape
/// reaches a terminal or a log.
#[test]
fn errors_print_names_and_fields_escaped() {
    let e = refuse(archive(&[file(b"\x1b[31mred/../../x", b"x")]));
    let text = e.to_string();
    assert!(text.contains("\\x1b[31mred/../../x"), "{text}");
    assert!(!text.contains('\x1b'), "{text:?}");

    let mut header = tar_header(b"\x1b]0;title\x07", b'0', 0, b"").to_vec();
    set_field(&mut header, 108..116, b"\x1b[2J\0");
    let e = refuse(archive(&[header]));
    let text = e.to_string();
    assert!(matches!(e, Error::Entry { .. }), "{e:?}");
    assert!(text.contains("\\x1b]0;title\\x07"), "{text}");
    assert!(text.contains("\\x1b[2J"), "{text}");
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");

    let bomb = header_bomb(b'L', 1 << 20, 0);
    let mut bomb = bomb[..512].to_vec();
    set_field(&mut bomb, 0..100, b"\x1b[31mlong\xff");
    let text = refuse(bomb).to_string();
    assert!(text.contains("\\x1b[31mlong\\xff"), "{text}");
}
