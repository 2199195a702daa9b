//! What Zero-OS nodes see: trees mounted by their readers compared with the source, and
//! source trees of every entry type the node formats carry.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// A tree with every entry kind the node formats carry: files of many blocks (512 KiB
/// each) and of none, symlinks (relative, absolute, dangling), deep directories, unicode
/// names, modes.
pub fn node_tree(root: &Path) {
    let dir = |p: &str| std::fs::create_dir_all(root.join(p)).unwrap();
    let file = |p: &str, data: &[u8], mode: u32| {
        std::fs::write(root.join(p), data).unwrap();
        std::fs::set_permissions(root.join(p), std::fs::Permissions::from_mode(mode)).unwrap();
    };
    dir("etc/deep/er/still/deeper");
    dir("usr/bin");
    dir("srv/ünïcødé ✓");
    file("etc/hostname", b"node\n", 0o644);
    file("etc/empty", b"", 0o600);
    file("usr/bin/tool", &super::noise(1_300_000, 7), 0o755);
    file("srv/big.bin", &super::noise(3 * 524_288 + 17, 11), 0o640);
    file("srv/exact.bin", &super::noise(524_288, 13), 0o644);
    file("srv/ünïcødé ✓/naïve.txt", "ça va\n".as_bytes(), 0o444);
    file("etc/deep/er/still/deeper/leaf", b"leaf", 0o644);
    std::os::unix::fs::symlink("hostname", root.join("etc/link")).unwrap();
    std::os::unix::fs::symlink("/usr/bin/tool", root.join("usr/tool")).unwrap();
    std::os::unix::fs::symlink("nowhere", root.join("etc/dangling")).unwrap();
}

/// What a node reader must show of an entry: its kind, permission bits, size and content
/// (files), target (symlinks).
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Dir,
    File { mode: u32, content: Vec<u8> },
    Link { target: std::path::PathBuf },
}

fn seen(root: &Path) -> BTreeMap<String, Seen> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false).min_depth(1) {
        let entry = entry.unwrap();
        let path = entry.path();
        let name = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let meta = std::fs::symlink_metadata(path).unwrap();
        let item = if meta.file_type().is_symlink() {
            Seen::Link {
                target: std::fs::read_link(path).unwrap(),
            }
        } else if meta.is_dir() {
            Seen::Dir
        } else {
            Seen::File {
                mode: meta.mode() & 0o7777,
                content: std::fs::read(path).unwrap(),
            }
        };
        out.insert(name, item);
    }
    out
}

/// Asserts that a node reader shows `source` at `mounted`: the same names, kinds, file
/// modes, contents and link targets.
pub fn assert_node_sees(source: &Path, mounted: &Path) {
    let (want, got) = (seen(source), seen(mounted));
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "the same paths"
    );
    for (path, expected) in &want {
        let actual = &got[path];
        if expected != actual {
            let describe = |s: &Seen| match s {
                Seen::File { mode, content } => format!("file {mode:o}, {} bytes", content.len()),
                other => format!("{other:?}"),
            };
            panic!(
                "{path}: expected {}, the reader shows {}",
                describe(expected),
                describe(actual)
            );
        }
    }
}
