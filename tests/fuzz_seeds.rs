//! Writes the seed corpora of the fuzz targets (`fuzz/corpus/<target>/`) from the fixtures the tests use: testkit's tar members and
//! hostile archives, legacy's sample tree and blocks, the chunk codec and frames, the embedded
//! configuration. The corpora are committed; this regenerates them:
//!
//!     cargo test --test fuzz_seeds -- --ignored

#[path = "../legacy/tests/common/mod.rs"]
mod legacy_common;

use std::path::{Path, PathBuf};

use bytes::BytesMut;
use chunkstore::frames::put_frame;
use chunkstore::{Chunk, Codec};
use testkit::tar::*;

/// Seed files of one target: name, bytes.
type Seeds = Vec<(&'static str, Vec<u8>)>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Replaces the seeds of `target` (under `dir`) with `seeds`.
fn write(dir: &Path, target: &str, seeds: &[(&str, Vec<u8>)]) {
    let dir = dir.join("corpus").join(target);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn tar_seeds() -> Seeds {
    let tree = archive(&[
        dir(b"etc"),
        file(b"etc/hosts", b"127.0.0.1 localhost\n"),
        pax(&[("path", b"etc/long-name"), ("SCHILY.xattr.user.k", b"v")]),
        file(b"ignored", b"from pax"),
        symlink(b"hosts", b"etc/hosts"),
        hardlink(b"etc/again", b"etc/hosts"),
        member(b"fifo", b'6', b"", b""),
    ]);
    let zstd = zstd::encode_all(tree.as_slice(), 3).unwrap();
    let gzip = gzip(&tree);
    vec![
        ("tree.tar", tree),
        ("tree.tar.gz", gzip),
        ("tree.tar.zst", zstd),
        ("escape.tar", archive(&[file(b"a/../../x", b"x")])),
        (
            "self-hardlink.tar",
            archive(&[file(b"f", b"c"), hardlink(b"f", b"f")]),
        ),
        (
            "through-symlink.tar",
            archive(&[symlink(b"l", b"/etc"), file(b"l/passwd", b"x")]),
        ),
        ("pax-bomb.tar", header_bomb(b'x', 1 << 30, 512)),
        ("longname-bomb.tar", header_bomb(b'L', 5 << 20, 512)),
        ("no-end.tar", file(b"f", b"cut before the end marker")),
    ]
}

fn flist_seeds(scratch: &Path) -> Seeds {
    use flist::{ChunkRef, FlistWriter, Node, NodeKind, Timestamp, Xattr};
    let path = scratch.join("seed.flist");
    let mut writer = FlistWriter::create(&path).unwrap();
    writer.metadata_mut().set("readme", "# seed");
    let node = |kind| Node {
        kind,
        mode: 0o644,
        uid: 1000,
        gid: 100,
        mtime: Timestamp {
            secs: 1_700_000_000,
            nanos: 5,
        },
    };
    let content = b"hello\n";
    let file = writer
        .add(
            b"etc/hosts",
            &node(NodeKind::Regular { size: 6 }),
            &[Xattr {
                name: b"user.k".to_vec(),
                value: b"v".to_vec(),
            }],
        )
        .unwrap();
    let key = *blake3::hash(content).as_bytes();
    let chunk = ChunkRef {
        key,
        offset: 0,
        length: 6,
    };
    writer.add_chunk(file, 0, &chunk).unwrap();
    writer.link(b"hosts-again", file).unwrap();
    let target = b"etc/hosts".to_vec();
    writer
        .add(b"link", &node(NodeKind::Symlink { target }), &[])
        .unwrap();
    let null = NodeKind::CharDevice { major: 1, minor: 3 };
    writer.add(b"dev/null", &node(null), &[]).unwrap();
    writer.finish().unwrap();
    vec![("tree.flist", std::fs::read(&path).unwrap())]
}

fn chunk_seeds() -> (Seeds, Seeds) {
    let mut codec = Codec::new(3).unwrap();
    let text = codec
        .encode(&Chunk::new(b"hello world\n".repeat(40)))
        .unwrap();
    let raw = codec
        .encode(&Chunk::new(legacy_common::noise(300, 1)))
        .unwrap();
    let mut cut = text.bytes().to_vec();
    cut.truncate(cut.len() - 3);
    let chunks = vec![
        ("zstd", text.bytes().to_vec()),
        ("raw", raw.bytes().to_vec()),
        ("cut", cut),
    ];
    let mut body = BytesMut::new();
    put_frame(&mut body, &text.key(), text.bytes());
    put_frame(&mut body, &raw.key(), raw.bytes());
    let mut whole = vec![255];
    whole.extend_from_slice(&body);
    let mut pieces = vec![7];
    pieces.extend_from_slice(&body[..body.len() - 1]);
    let frames = vec![("two-frames", whole), ("cut-in-pieces", pieces)];
    (chunks, frames)
}

fn resp_seeds() -> Seeds {
    let seed = |piece: u8, text: &[u8]| [&[piece][..], text].concat();
    vec![
        ("get", seed(255, b"*2\r\n$3\r\nGET\r\n$4\r\nab\r\n\r\n")),
        (
            "pipelined",
            seed(
                3,
                b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
            ),
        ),
        (
            "select",
            seed(255, b"*3\r\n$6\r\nSELECT\r\n$4\r\nhub1\r\n$5\r\ntoken\r\n"),
        ),
        ("inline", seed(255, b"PING\r\n")),
    ]
}

fn legacy_seeds(scratch: &Path) -> (Seeds, Seeds) {
    let metadata = legacy_common::sample_metadata();
    let (tree, _) = legacy_common::sample_tree(legacy::zero::encode, |b| b.id.to_vec());
    let mut zero = Vec::new();
    legacy::zero::write(&tree, &metadata, &mut zero).unwrap();
    let (tree, _) = legacy_common::sample_tree(legacy::fl::encode, |b| b.id.to_vec());
    let routes = [legacy::fl::Route::all("zdb://hub.example.com:9900/blocks")];
    let path = scratch.join("seed.fl");
    legacy::fl::write(
        &tree,
        &metadata,
        &routes,
        std::fs::File::create(&path).unwrap(),
    )
    .unwrap();
    (
        vec![("sample.flist", zero)],
        vec![("sample.fl", std::fs::read(&path).unwrap())],
    )
}

fn block_seeds() -> Seeds {
    let plain: Vec<u8> = (0..20_000u32).map(|i| (i * 31 % 97) as u8).collect();
    let payload = snap::raw::Encoder::new().compress_vec(&plain).unwrap();
    // A snappy header declaring 16 MiB, twice the plaintext bound, then a literal.
    let bomb = [&[0x80, 0x80, 0x80, 0x08][..], &[0x0c], b"bomb"].concat();
    let with_mode = |mode: u8, bytes: &[u8]| [&[mode][..], bytes].concat();
    vec![
        (
            "zero-block",
            with_mode(0, &legacy::zero::encode(&plain).unwrap().1),
        ),
        (
            "fl-block",
            with_mode(1, &legacy::fl::encode(&plain).unwrap().1),
        ),
        ("zero-payload", with_mode(2, &payload)),
        ("fl-payload", with_mode(3, &payload)),
        ("zero-payload-bomb", with_mode(2, &bomb)),
        ("fl-payload-empty", with_mode(3, &[0])),
    ]
}

fn hub_seeds() -> (Seeds, Seeds) {
    // `@JWT@` stands for a token signed with the target's secret (or minted by the scratch
    // hub of its replay in hub/tests/fuzz_corpus.rs: a hub token verifies only in the hub
    // that minted it); 0-hub tokens are signed with the target's fixed seed
    // (fuzz/checks/token.rs).
    let zero_hub = hub::zero_hub_token(&[7; 32], "alice", 1_700_000_000);
    let token = vec![
        ("jwt", b"Bearer @JWT@".to_vec()),
        ("jwt-active-user", b"bearer @JWT@\nteam".to_vec()),
        ("zero-hub", format!("Bearer {zero_hub}").into_bytes()),
        (
            "zero-hub-mapped",
            format!("Bearer {zero_hub}\nofficial").into_bytes(),
        ),
        (
            "none-alg",
            b"Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOiJmbGlzdGh1YiJ9.".to_vec(),
        ),
    ];
    let config = vec![
        ("default.toml", hub::DEFAULT_CONFIG.as_bytes().to_vec()),
        (
            "custom.toml",
            b"[server]\nreadonly = true\n[limits]\nupload-size = \"2GiB\"\n\
              [auth]\nadministrators = [\"ops\"]\n[auth.zero-hub]\nseed = \"0707\"\n"
                .to_vec(),
        ),
    ];
    (token, config)
}

#[test]
#[ignore = "writes the fuzz seed corpora: cargo test --test fuzz_seeds -- --ignored"]
fn write_fuzz_seeds() {
    let scratch = tempfile::tempdir().unwrap();
    let fuzz = root();
    write(&fuzz, "tar", &tar_seeds());
    write(&fuzz, "flist", &flist_seeds(scratch.path()));
    let (chunks, frames) = chunk_seeds();
    write(&fuzz, "chunk", &chunks);
    write(&fuzz, "frames", &frames);
    write(&fuzz, "resp", &resp_seeds());
    let (zero, fl) = legacy_seeds(scratch.path());
    write(&fuzz, "zero_flist", &zero);
    write(&fuzz, "fl", &fl);
    write(&fuzz, "blocks", &block_seeds());
    let (token, config) = hub_seeds();
    write(&fuzz, "token", &token);
    write(&fuzz, "config", &config);
}
