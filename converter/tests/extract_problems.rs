//! Extraction from a store that lacks some chunks: the rest of the tree is extracted, every
//! file that could not be written completely is removed (all its names), and the error
//! counts every broken file and lists the first 20.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use chunkstore::{ChunkKey, ChunkStore, DirOptions, DirStore};
use converter::{ExtractOptions, PackOptions, Progress};
use rand::RngCore;

const SMALL: usize = 150;

/// The chunk keys of `path` in the flist.
fn keys_of(flist: &Path, path: &str) -> Vec<ChunkKey> {
    let flist = flist::Flist::open(flist).unwrap();
    let entry = flist.lookup(path.as_bytes()).unwrap().unwrap();
    flist
        .chunks(&entry)
        .unwrap()
        .iter()
        .map(|c| ChunkKey::from(c.key))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_files_are_removed_and_all_counted() {
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    for i in 0..SMALL {
        std::fs::write(tree.join(format!("sub/f{i:03}")), format!("file {i}\n")).unwrap();
    }
    let mut big = vec![0u8; 6 << 20];
    rand::rng().fill_bytes(&mut big);
    std::fs::write(tree.join("big"), &big).unwrap();
    std::fs::hard_link(tree.join("sub/f000"), tree.join("f000-link")).unwrap();
    std::fs::write(tree.join("keep"), b"kept\n").unwrap();

    let store_dir = work.path().join("store");
    let store = Arc::new(DirStore::open(&store_dir, DirOptions::default()).unwrap());
    let flist = work.path().join("t.flist");
    converter::pack_dir(
        tree.clone(),
        flist.clone(),
        Arc::clone(&store) as Arc<dyn ChunkStore>,
        PackOptions::default(),
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();

    // Every small file but the last 30 loses its chunk; the big file loses one in the middle.
    let broken = SMALL - 30;
    for i in 0..broken {
        let [key] = keys_of(&flist, &format!("sub/f{i:03}"))[..] else {
            panic!("a small file of one chunk")
        };
        std::fs::remove_file(store.chunk_path(&key)).unwrap();
    }
    let big_keys = keys_of(&flist, "big");
    assert!(big_keys.len() > 2, "{} chunks", big_keys.len());
    std::fs::remove_file(store.chunk_path(&big_keys[big_keys.len() / 2])).unwrap();

    let dest = work.path().join("dest");
    let err = converter::extract(
        flist,
        dest.clone(),
        store,
        ExtractOptions::default(),
        Arc::new(Progress::default()),
    )
    .await
    .unwrap_err();
    let converter::Error::Extract { total, listed } = &err else {
        panic!("{err}")
    };
    assert_eq!(*total, broken + 1, "one problem per broken file");
    assert_eq!(listed.len(), 20);
    assert!(
        listed.iter().all(|p| p.contains("missing chunk")),
        "{listed:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{} problem(s)", broken + 1)),
        "{text}"
    );
    assert!(
        text.contains(&format!("... and {} more", broken + 1 - 20)),
        "{text}"
    );

    // Broken files are gone, every name of them; the others are whole.
    for i in 0..SMALL {
        let path = dest.join(format!("sub/f{i:03}"));
        if i < broken {
            assert!(!path.exists(), "{} left behind", path.display());
        } else {
            assert_eq!(
                std::fs::read(&path).unwrap(),
                format!("file {i}\n").as_bytes()
            );
        }
    }
    assert!(!dest.join("f000-link").exists());
    assert!(!dest.join("big").exists());
    assert_eq!(std::fs::read(dest.join("keep")).unwrap(), b"kept\n");
    // Directories still get their attributes.
    let mtime = std::fs::metadata(tree.join("sub")).unwrap().mtime();
    assert_eq!(std::fs::metadata(dest.join("sub")).unwrap().mtime(), mtime);
}
