//! A sample tree with real content, shared by the format and peer tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use legacy::{BLOCK_SIZE, Entry, Kind, Result, Special, Tree};

/// Deterministic bytes that do not compress (xorshift).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Files of the sample tree: path, content, mode.
pub fn sample_files() -> Vec<(&'static str, Vec<u8>, u32)> {
    vec![
        ("bin/tool", noise(1_300_000, 1), 0o4755),
        ("etc/hosts", b"127.0.0.1 localhost\n".to_vec(), 0o644),
        ("empty", Vec::new(), 0o600),
        ("exact", noise(2 * BLOCK_SIZE as usize, 2), 0o640),
        ("deep/a/b/c/d.txt", b"deep\n".repeat(1000), 0o644),
        ("ünï/cödé.txt", "héllo wörld\n".as_bytes().to_vec(), 0o644),
    ]
}

fn attrs<B>(kind: Kind<B>, mode: u32) -> Entry<B> {
    Entry {
        kind,
        mode,
        uid: 1000,
        gid: 100,
        uname: "user".into(),
        gname: "users".into(),
        mtime: 1_700_000_000,
        ctime: 1_700_000_100,
    }
}

/// Encoded blocks: (id, stored bytes).
pub type Stored = Vec<(Vec<u8>, Vec<u8>)>;

/// The sample tree: every entry type, with each file's blocks made by `encode`; also returns
/// every encoded block (id bytes, stored bytes) to put in a store.
pub fn sample_tree<B: Clone>(
    encode: impl Fn(&[u8]) -> Result<(B, Vec<u8>)>,
    id: impl Fn(&B) -> Vec<u8>,
) -> (Tree<B>, Stored) {
    let mut tree = Tree::new(attrs(Kind::Directory, 0o755)).unwrap();
    let mut stored = Vec::new();
    let dir = |mode| attrs(Kind::Directory, mode);
    for d in [
        "bin",
        "deep",
        "deep/a",
        "deep/a/b",
        "deep/a/b/c",
        "etc",
        "ünï",
    ] {
        tree.insert(d.as_bytes(), dir(0o750)).unwrap();
    }
    for (path, content, mode) in sample_files() {
        let mut blocks = Vec::new();
        for window in content.chunks(BLOCK_SIZE as usize) {
            let (block, sealed) = encode(window).unwrap();
            stored.push((id(&block), sealed));
            blocks.push(block);
        }
        let kind = Kind::File {
            size: content.len() as u64,
            blocks,
        };
        tree.insert(path.as_bytes(), attrs(kind, mode)).unwrap();
    }
    let link = |target: &str| {
        attrs(
            Kind::Symlink {
                target: target.as_bytes().to_vec(),
            },
            0o777,
        )
    };
    tree.insert(b"hosts", link("etc/hosts")).unwrap();
    tree.insert(b"bin/abs", link("/bin/tool")).unwrap();
    // Specials sort before files here ("a..." < "b..."): the 0-flist writer must still put
    // them last for g8ufs.
    tree.insert(b"a-fifo", attrs(Kind::Special(Special::Fifo), 0o644))
        .unwrap();
    let null = Special::CharDevice { major: 1, minor: 3 };
    tree.insert(b"a-null", attrs(Kind::Special(null), 0o666))
        .unwrap();
    (tree, stored)
}

/// Metadata as a hub would give a rendition.
pub fn sample_metadata() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "entrypoint".to_string(),
            r#"["/bin/tool", "--serve"]"#.to_string(),
        ),
        (
            "readme".to_string(),
            r##"{"readme": "# sample"}"##.to_string(),
        ),
    ])
}

pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
