//! The formats against the real programs: zflist 2.3.0 and g8ufs 1.1.1 for 0-flists, rfs
//! 2.0.6 for fl files, all with blocks in a real zdb-2.0.7.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use legacy::{BLOCK_SIZE, Kind, Tree, fl, zero};
use testkit::peers::{FuseMount, Zdb, Zflist, fuse_available, rfs_pack};

/// Writes the sample files, links and directories under `root`, as a user would.
fn make_source(root: &Path) {
    for (path, content, mode) in common::sample_files() {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, content).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::os::unix::fs::symlink("etc/hosts", root.join("hosts")).unwrap();
    std::os::unix::fs::symlink("/bin/tool", root.join("bin/abs")).unwrap();
}

/// Checks a mounted tree against the sample: contents, sizes, permission bits (`mode_mask`
/// of them: g8ufs shows only 0o777) and link targets.
fn compare_mount(mounted: &Path, mode_mask: u32) {
    for (path, content, mode) in common::sample_files() {
        let file = mounted.join(path);
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(meta.len(), content.len() as u64, "{path}: size");
        assert_eq!(meta.mode() & mode_mask, mode & mode_mask, "{path}: mode");
        assert!(std::fs::read(&file).unwrap() == content, "{path}: content");
    }
    for (link, target) in [("hosts", "etc/hosts"), ("bin/abs", "/bin/tool")] {
        let read = std::fs::read_link(mounted.join(link)).unwrap();
        assert_eq!(read.to_str(), Some(target), "{link}");
    }
}

/// Puts every block of `stored` into `zdb`.
fn store_all(zdb: &Zdb, stored: &common::Stored) {
    for (id, value) in stored {
        zdb.set(id, value);
    }
}

#[test]
fn blocks_zflist_stores_decode_and_its_files_read() {
    let (Some(zdb), Some(dir)) = (Zdb::start(), tempfile::tempdir().ok()) else {
        return;
    };
    let Some(zflist) = Zflist::new(Some(&zdb)) else {
        return;
    };
    let source = dir.path().join("src");
    make_source(&source);
    // 16 MiB + 1: zflist counts its blocks in single-precision floats and writes 32.
    let rounding = vec![7u8; 16 * 1024 * 1024 + 1];
    std::fs::write(source.join("rounding"), &rounding).unwrap();
    let out = dir.path().join("made-by-zflist.flist");
    zflist.ok(&["init"]);
    zflist.ok(&["putdir", source.to_str().unwrap(), "/"]);
    zflist.ok(&[
        "metadata",
        "backend",
        "--host",
        "127.0.0.1",
        "--port",
        &zdb.port().to_string(),
    ]);
    zflist.ok(&["commit", out.to_str().unwrap()]);
    zflist.ok(&["close"]);

    let flist = zero::ZeroFlist::open(&out).unwrap();
    let metadata = flist.metadata().unwrap();
    assert_eq!(
        metadata["backend"],
        format!(r#"{{"host": "127.0.0.1", "port": {}}}"#, zdb.port())
    );
    let tree = flist.tree().unwrap();
    for (path, content, mode) in common::sample_files() {
        let entry = tree.get(path.as_bytes()).unwrap();
        assert_eq!(entry.mode, mode, "{path}");
        let Kind::File { size, blocks } = &entry.kind else {
            panic!("{path} is not a file");
        };
        assert_eq!(*size, content.len() as u64);
        // Our encoder makes exactly zflist's blocks, and our decoder reads them back.
        let mut read = Vec::new();
        for (block, window) in blocks.iter().zip(content.chunks(BLOCK_SIZE as usize)) {
            let (ours, sealed) = zero::encode(window).unwrap();
            assert_eq!(ours, *block, "{path}: block");
            let stored = zdb.get(&block.id).expect("zflist stored the block");
            assert_eq!(stored, sealed, "{path}: stored bytes");
            read.extend(zero::decode(&stored, &block.key).unwrap());
        }
        assert!(read == content, "{path}: content");
    }
    let Kind::Symlink { target } = &tree.get(b"bin/abs").unwrap().kind else {
        panic!("not a symlink");
    };
    assert_eq!(target, b"/bin/tool");
    let Kind::File { blocks, .. } = &tree.get(b"rounding").unwrap().kind else {
        panic!("not a file");
    };
    assert_eq!(blocks.len(), 32, "zflist's count, tolerated");
}

/// The sample tree as a 0-flist naming `zdb` as its backend, its blocks stored there.
fn our_zero_flist(zdb: &Zdb, dir: &Path) -> std::path::PathBuf {
    let (tree, stored) = common::sample_tree(zero::encode, |b: &zero::Block| b.id.to_vec());
    store_all(zdb, &stored);
    let mut metadata = common::sample_metadata();
    let backend = zero::Backend {
        host: "127.0.0.1".into(),
        port: zdb.port(),
        namespace: None,
        password: None,
    };
    metadata.insert("backend".into(), backend.to_json());
    let path = dir.join("ours.flist");
    zero::write(&tree, &metadata, std::fs::File::create(&path).unwrap()).unwrap();
    path
}

#[test]
fn zflist_reads_our_0_flists() {
    let (Some(zdb), Some(dir)) = (Zdb::start(), tempfile::tempdir().ok()) else {
        return;
    };
    let Some(zflist) = Zflist::new(None) else {
        return;
    };
    let flist = our_zero_flist(&zdb, dir.path());
    zflist.ok(&["open", flist.to_str().unwrap()]);
    let listing = zflist.ok(&["ls", "/"]);
    for name in ["a-fifo", "a-null", "bin", "empty", "exact", "hosts", "ünï"] {
        assert!(listing.contains(name), "{name} missing from:\n{listing}");
    }
    let stat = zflist.ok(&["stat", "/bin/tool"]);
    assert!(stat.contains("Size: 1300000 bytes"), "{stat}");
    assert!(stat.contains("4755"), "{stat}");
    assert_eq!(stat.matches("key:").count(), 3, "{stat}");
    let stat = zflist.ok(&["stat", "/hosts"]);
    assert!(stat.contains("Target: etc/hosts"), "{stat}");
    // `get` fetches each block from the backend the flist names and checks its key.
    for (path, content, _) in common::sample_files() {
        if content.is_empty() {
            continue;
        }
        let out = dir.path().join("got");
        zflist.ok(&["get", &format!("/{path}"), out.to_str().unwrap()]);
        assert!(std::fs::read(&out).unwrap() == content, "{path}");
    }
    zflist.ok(&["close"]);
}

#[test]
fn g8ufs_mounts_our_0_flists() {
    if !fuse_available() {
        return;
    }
    let (Some(zdb), Some(dir)) = (Zdb::start(), tempfile::tempdir().ok()) else {
        return;
    };
    let flist = our_zero_flist(&zdb, dir.path());
    let Some(mount) = FuseMount::g8ufs(
        &flist,
        &dir.path().join("cache"),
        None,
        &dir.path().join("mnt"),
    ) else {
        return;
    };
    compare_mount(mount.path(), 0o777);
    let meta = std::fs::metadata(mount.path().join("bin/tool")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1000, 100));
    assert_eq!(meta.mtime(), 1_700_000_000);
}

#[test]
fn rfs_mounts_our_fl_files() {
    if !fuse_available() {
        return;
    }
    let (Some(zdb), Some(dir)) = (Zdb::start(), tempfile::tempdir().ok()) else {
        return;
    };
    let (tree, stored) = common::sample_tree(fl::encode, |b: &fl::Block| b.id.to_vec());
    store_all(&zdb, &stored);
    let path = dir.path().join("ours.fl");
    let routes = [fl::Route::all(format!(
        "zdb://127.0.0.1:{}/default",
        zdb.port()
    ))];
    let tags = [("version".to_string(), "1".to_string())].into();
    fl::write(&tree, &tags, &routes, std::fs::File::create(&path).unwrap()).unwrap();
    let Some(mount) = FuseMount::rfs(&path, &dir.path().join("cache"), &dir.path().join("mnt"))
    else {
        return;
    };
    compare_mount(mount.path(), 0o7777);
    let meta = std::fs::metadata(mount.path().join("bin/tool")).unwrap();
    // rfs 2.0.6 reads the uid column for both owner ids.
    assert_eq!((meta.uid(), meta.gid()), (1000, 1000));
    assert_eq!(meta.mtime(), 1_700_000_000);
}

#[test]
fn we_read_what_rfs_packs() {
    let (Some(zdb), Some(dir)) = (Zdb::start(), tempfile::tempdir().ok()) else {
        return;
    };
    let source = dir.path().join("src");
    make_source(&source);
    let path = dir.path().join("made-by-rfs.fl");
    let store = format!("zdb://127.0.0.1:{}/default", zdb.port());
    let Some(out) = rfs_pack(&path, &store, &source) else {
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let fl = fl::FlFile::open(&path).unwrap();
    assert_eq!(fl.routes().unwrap(), vec![fl::Route::all(store)]);
    let tree: Tree<fl::Block> = fl.tree().unwrap();
    for (path, content, mode) in common::sample_files() {
        let entry = tree.get(path.as_bytes()).unwrap();
        assert_eq!(entry.mode, mode, "{path}");
        let Kind::File { blocks, .. } = &entry.kind else {
            panic!("{path} is not a file");
        };
        let mut read = Vec::new();
        for (block, window) in blocks.iter().zip(content.chunks(BLOCK_SIZE as usize)) {
            assert_eq!(fl::encode(window).unwrap().0, *block, "{path}: block");
            let stored = zdb.get(&block.id).expect("rfs stored the block");
            read.extend(fl::decode(&stored, &block.key).unwrap());
        }
        assert!(read == content, "{path}: content");
    }
    let Kind::Symlink { target } = &tree.get(b"hosts").unwrap().kind else {
        panic!("not a symlink");
    };
    assert_eq!(target, b"etc/hosts");
    assert_eq!(tree.totals().files, common::sample_files().len() as u64);
}
