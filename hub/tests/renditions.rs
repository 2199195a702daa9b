//! Renditions: the 0-flist and fl files the hub makes of its native flists for Zero-OS
//! nodes, and the blocks the gateway encodes for them from the hub's own chunks. The node
//! readers themselves mount them in the workspace's end-to-end tests (`tests/hub_renditions.rs`);
//! here the files are read back with the `legacy` readers and every block is fetched and
//! decoded, in process.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chunkstore::BlockId;
use common::TestHub;
use legacy::{Kind, fl, zero};

const NO_AUTH: &str = "[server]\nauthentication = false\n[gateway]\nrelease-grace = \"0s\"\n";
const GATEWAY: &str = "zdb://hub.example:9900";

/// A tar of every kind of entry: a file over several 512 KiB windows, a file of exactly
/// one window, an empty file, a symlink, deep directories, a unicode name.
fn tree(seed: u64, shared: &[u8]) -> (Vec<u8>, BTreeMap<String, Vec<u8>>) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut big = vec![0u8; 1_300_000];
    rng.fill(&mut big[..]);
    let mut files = BTreeMap::new();
    files.insert("big.bin".to_owned(), big);
    files.insert("shared.bin".to_owned(), shared.to_vec());
    files.insert("one-window".to_owned(), vec![7u8; 512 << 10]);
    files.insert("empty".to_owned(), Vec::new());
    files.insert("a/b/c/d/deep.txt".to_owned(), b"deep\n".to_vec());
    files.insert("été/naïve ☃.txt".to_owned(), "snow\n".as_bytes().to_vec());
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in &files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o640);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, &content[..])
            .unwrap();
    }
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    builder
        .append_link(&mut header, "link", "a/b/c/d/deep.txt")
        .unwrap();
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    (gz.finish().unwrap(), files)
}

fn shared_content() -> Vec<u8> {
    (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

/// Waits for the renditions of `name` in repository `repo`; `/light`'s answer.
async fn renditions_of(hub: &TestHub, repo: &str, name: &str) -> serde_json::Value {
    for _ in 0..200 {
        let light = hub
            .get(&format!("/api/flist/{repo}/{name}/light"))
            .await
            .json();
        if light.get("renditions").is_some() {
            return light;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no renditions of {repo}/{name} in 10 s");
}

/// Reads every file of `tree` through `read` (one block at a time) and checks it against
/// `files`.
async fn check_tree<B: Clone>(
    tree: &legacy::Tree<B>,
    files: &BTreeMap<String, Vec<u8>>,
    mut read: impl AsyncFnMut(&B) -> Vec<u8>,
) {
    let mut seen = 0;
    for (path, entry) in tree.iter() {
        let path = String::from_utf8(path).unwrap();
        match &entry.kind {
            Kind::File { size, blocks } => {
                let mut content = Vec::new();
                for block in blocks {
                    content.extend(read(block).await);
                }
                assert_eq!(content.len() as u64, *size, "{path}");
                assert!(content == files[&path], "{path}: content differs");
                assert_eq!(entry.mode, 0o640, "{path}");
                assert_eq!(entry.mtime, 1_700_000_000, "{path}");
                seen += 1;
            }
            Kind::Symlink { target } => assert_eq!(target, b"a/b/c/d/deep.txt"),
            _ => {}
        }
    }
    assert_eq!(seen, files.len());
}

async fn block(hub: &TestHub, id: &[u8]) -> Option<bytes::Bytes> {
    let id = BlockId::from_slice(id).unwrap();
    hub.hub
        .renditions()
        .blocks(&[id])
        .await
        .unwrap()
        .pop()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn renditions_read_back_block_by_block() {
    let hub = TestHub::open(NO_AUTH).await;
    hub.hub.renditions().start(GATEWAY).unwrap();
    let (archive, files) = tree(1, &shared_content());
    assert_eq!(hub.upload(None, "app.tar.gz", &archive).await.status, 200);
    let light = renditions_of(&hub, "Administrator", "app.flist").await;
    // The window keys came from the pack: the content was not read again.
    let sources = hub.hub.renditions().window_sources();
    assert_eq!((sources.from_pack, sources.from_store), (6, 0));

    // `.flist` serves the 0-flist rendition, described by `.md5`, `light` and its headers;
    // the native file is there for whoever asks for it.
    let zero_file = hub.get("/Administrator/app.flist").await;
    assert_eq!(zero_file.status, 200);
    assert!(
        zero_file.body.starts_with(&[0x1f, 0x8b]),
        "a gzip'd 0-flist"
    );
    let md5 = hub.get("/Administrator/app.flist.md5").await.text();
    assert_eq!(md5.trim(), {
        use md5::Digest;
        hex::encode(md5::Md5::digest(&zero_file.body))
    });
    assert_eq!(light["md5"], md5.trim());
    assert_eq!(light["size"], zero_file.body.len());
    assert_eq!(light["renditions"]["0-flist"]["md5"], md5.trim());
    let listing = hub.get("/api/flist/Administrator").await.json();
    let kilobytes = format!("{:.2} KB", zero_file.body.len() as f64 / 1024.0);
    assert_eq!(
        listing[0]["size"], kilobytes,
        "the listing gives the served file's size"
    );
    let txt = hub.get("/Administrator/app.txt").await.text();
    assert!(txt.contains(&format!("Checksum: {}", md5.trim())), "{txt}");
    assert_eq!(zero_file.headers["vary"], "Accept");
    let sha = light["renditions"]["0-flist"]["sha256"].as_str().unwrap();
    assert_eq!(zero_file.headers["etag"], format!("\"{sha}\""));
    assert!(
        zero_file.headers["repr-digest"]
            .to_str()
            .unwrap()
            .starts_with("sha-256=:")
    );

    let native = hub
        .send(
            axum::http::Request::get("/Administrator/app.flist")
                .header("accept", "application/vnd.flisthub.flist")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert!(native.body.starts_with(b"SQLite format 3\0"));
    assert_eq!(
        native.headers["etag"],
        format!(
            "\"{}\"",
            light["renditions"]["native"]["sha256"].as_str().unwrap()
        )
    );

    // The 0-flist: its metadata names the gateway, and every block decodes to the file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.flist");
    std::fs::write(&path, &zero_file.body).unwrap();
    let flist = zero::ZeroFlist::open(&path).unwrap();
    assert_eq!(
        flist.metadata().unwrap()["backend"],
        r#"{"host": "hub.example", "port": 9900}"#
    );
    let tree = flist.tree().unwrap();
    check_tree(&tree, &files, async |b: &zero::Block| {
        let sealed = block(&hub, &b.id).await.expect("every block is served");
        zero::decode(&sealed, &b.key).unwrap()
    })
    .await;

    // The fl file: route to the gateway, every block decodes.
    let fl_file = hub.get("/Administrator/app.fl").await;
    assert_eq!(fl_file.status, 200);
    assert_eq!(
        hub.get("/Administrator/app.fl.md5").await.text().trim(),
        light["renditions"]["fl"]["md5"]
    );
    let path = dir.path().join("app.fl");
    std::fs::write(&path, &fl_file.body).unwrap();
    let fl = fl::FlFile::open(&path).unwrap();
    assert_eq!(fl.routes().unwrap()[0].url, GATEWAY);
    let tree = fl.tree().unwrap();
    check_tree(&tree, &files, async |b: &fl::Block| {
        let sealed = block(&hub, &b.id).await.expect("every block is served");
        fl::decode(&sealed, &b.key).unwrap()
    })
    .await;

    // Through a symlink and a tag as well.
    assert_eq!(
        hub.call("GET", "/api/flist/me/app.flist/link/alias.flist", None)
            .await
            .status,
        200
    );
    let via_link = hub.get("/Administrator/alias.fl").await;
    assert_eq!(via_link.body, fl_file.body);
    assert_eq!(
        hub.call("GET", "/api/flist/me/v1/app/tag/Administrator/app", None)
            .await
            .status,
        200
    );
    assert_eq!(
        hub.get("/Administrator/tags/v1/app.fl").await.body,
        fl_file.body
    );
    assert_eq!(
        hub.get("/Administrator/tags/v1/app.flist").await.body,
        zero_file.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn same_tarball_same_bytes_and_shared_files_share_blocks() {
    let (one, two) = (TestHub::open(NO_AUTH).await, TestHub::open(NO_AUTH).await);
    for hub in [&one, &two] {
        hub.hub.renditions().start(GATEWAY).unwrap();
    }
    let (archive, _) = tree(1, &shared_content());
    for hub in [&one, &two] {
        assert_eq!(hub.upload(None, "app.tar.gz", &archive).await.status, 200);
        renditions_of(hub, "Administrator", "app.flist").await;
    }
    for file in ["app.flist", "app.fl"] {
        let path = format!("/Administrator/{file}");
        assert!(
            one.get(&path).await.body == two.get(&path).await.body,
            "{file} differs"
        );
    }

    // A merge makes a new native file of known contents: nothing is hashed again.
    let before = one.hub.renditions().window_sources();
    let merge = one
        .send(
            axum::http::Request::post("/api/flist/me/merge/merged.flist")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(r#"["Administrator/app.flist"]"#))
                .unwrap(),
        )
        .await;
    assert_eq!(merge.status, 200, "{}", merge.text());
    renditions_of(&one, "Administrator", "merged.flist").await;
    assert_eq!(one.hub.renditions().window_sources(), before);

    // Another tree holding the same shared file: its blocks have the same ids.
    let (other, _) = tree(2, &shared_content());
    assert_eq!(one.upload(None, "other.tar.gz", &other).await.status, 200);
    renditions_of(&one, "Administrator", "other.flist").await;
    let ids = |body: &[u8]| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.fl");
        std::fs::write(&path, body).unwrap();
        fl::FlFile::open(&path).unwrap().block_ids().unwrap()
    };
    let a = ids(&one.get("/Administrator/app.fl").await.body);
    let b = ids(&one.get("/Administrator/other.fl").await.body);
    // All but the random file: the shared file (2 windows), the file of one window and the
    // two small ones.
    assert_eq!(a.intersection(&b).count(), 5, "shared windows share ids");
}

#[tokio::test(flavor = "multi_thread")]
async fn blocks_live_while_an_flist_holds_them() {
    let hub = TestHub::open(NO_AUTH).await;
    hub.hub.renditions().start(GATEWAY).unwrap();
    let (archive, _) = tree(3, &shared_content());
    assert_eq!(hub.upload(None, "app.tar.gz", &archive).await.status, 200);
    renditions_of(&hub, "Administrator", "app.flist").await;
    let body = hub.get("/Administrator/app.fl").await.body;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.fl");
    std::fs::write(&path, &body).unwrap();
    let ids = fl::FlFile::open(&path).unwrap().block_ids().unwrap();
    let id = *ids.iter().next().unwrap();

    // A rename changes no id.
    assert_eq!(
        hub.call("GET", "/api/flist/me/app.flist/rename/new.flist", None)
            .await
            .status,
        200
    );
    assert_eq!(hub.get("/Administrator/new.fl").await.body, body);
    assert!(block(&hub, &id).await.is_some());

    // Deleted (grace 0 s here): the ids are unknown, the renditions gone.
    assert_eq!(
        hub.call("DELETE", "/api/flist/me/new.flist", None)
            .await
            .status,
        200
    );
    assert!(block(&hub, &id).await.is_none());
    assert_eq!(hub.get("/Administrator/new.fl").await.status, 404);
    // An id nobody uses: nothing, as 0-db answers.
    assert!(block(&hub, &[9u8; 32]).await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_gateway_nothing_changes() {
    let hub = TestHub::open(NO_AUTH).await;
    let (archive, _) = tree(4, &shared_content());
    let up = hub.upload(None, "app.tar.gz", &archive).await;
    assert_eq!(up.status, 200, "{}", up.text());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let light = hub
        .get("/api/flist/Administrator/app.flist/light")
        .await
        .json();
    assert!(light.get("renditions").is_none());
    let file = hub.get("/Administrator/app.flist").await;
    assert!(
        file.body.starts_with(b"SQLite format 3\0"),
        "the native file"
    );
    assert_eq!(hub.get("/Administrator/app.fl").await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_gateway_address_remakes_the_renditions() {
    let hub = TestHub::open(NO_AUTH).await;
    hub.hub.renditions().start(GATEWAY).unwrap();
    let (archive, _) = tree(5, &shared_content());
    assert_eq!(hub.upload(None, "app.tar.gz", &archive).await.status, 200);
    let before = renditions_of(&hub, "Administrator", "app.flist").await;

    let hub = hub.restart(NO_AUTH).await;
    hub.hub
        .renditions()
        .start("zdb://other.example:9900")
        .unwrap();
    let after = renditions_of(&hub, "Administrator", "app.flist").await;
    assert_ne!(
        before["md5"], after["md5"],
        "the backend changed, so the file did"
    );
    let body = hub.get("/Administrator/app.flist").await.body;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.flist"), &body).unwrap();
    let metadata = zero::ZeroFlist::open(&dir.path().join("x.flist"))
        .unwrap()
        .metadata()
        .unwrap();
    assert_eq!(
        metadata["backend"],
        r#"{"host": "other.example", "port": 9900}"#
    );
    // The old files are gone with their rows.
    let old = before["renditions"]["0-flist"]["sha256"].as_str().unwrap();
    let data = hub.dir.path().join("data/flists/sha256");
    assert!(
        !data.join(&old[..2]).join(old).exists(),
        "the old rendition's file is removed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_block_whose_chunk_is_lost_is_an_error_not_nil() {
    let hub = TestHub::open(NO_AUTH).await;
    hub.hub.renditions().start(GATEWAY).unwrap();
    let (archive, _) = tree(6, &shared_content());
    assert_eq!(hub.upload(None, "app.tar.gz", &archive).await.status, 200);
    renditions_of(&hub, "Administrator", "app.flist").await;
    let body = hub.get("/Administrator/app.fl").await.body;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.fl"), &body).unwrap();
    let ids = fl::FlFile::open(&dir.path().join("x.fl"))
        .unwrap()
        .block_ids()
        .unwrap();
    // Every chunk file of the hub's store goes (no block was read yet: nothing is cached).
    fn remove_files(dir: &std::path::Path) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                remove_files(&path);
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
    remove_files(&hub.dir.path().join("data/store"));
    let id = BlockId::from_slice(ids.iter().next().unwrap()).unwrap();
    assert!(
        hub.hub.renditions().blocks(&[id]).await.is_err(),
        "a damaged flist's block is an error"
    );
}

/// A 0-flist and an fl file hosted as they came are their own bodies, whatever the request
/// accepts: asking for flisthub's format (as `flisthub` does) gets the hosted bytes with
/// their own media type, never a 406, and `.md5` describes them.
#[tokio::test(flavor = "multi_thread")]
async fn a_hosted_legacy_file_answers_a_request_for_the_native_format() {
    let hub = TestHub::open(NO_AUTH).await;
    hub.hub.renditions().start(GATEWAY).unwrap();
    // Nothing but names: no block to send before publishing.
    fn names_only<B>() -> legacy::Tree<B> {
        let mut tree = legacy::Tree::new(legacy::Entry::directory(0o755)).unwrap();
        tree.insert(b"etc", legacy::Entry::directory(0o755))
            .unwrap();
        let empty = legacy::Entry {
            kind: Kind::File {
                size: 0,
                blocks: Vec::new(),
            },
            ..legacy::Entry::directory(0o644)
        };
        tree.insert(b"etc/empty", empty).unwrap();
        tree
    }
    let mut zero_file = Vec::new();
    zero::write(&names_only(), &BTreeMap::new(), &mut zero_file).unwrap();
    let mut fl_file = Vec::new();
    fl::write(&names_only(), &BTreeMap::new(), &[], &mut fl_file).unwrap();
    for (name, hosted) in [("zero.flist", zero_file), ("rfs.fl", fl_file)] {
        let up = hub.upload_flist(None, name, &hosted).await;
        assert_eq!(up.status, 200, "{}", up.text());
        let path = format!("/Administrator/{name}");
        for accept in [
            "application/vnd.flisthub.flist",
            "application/vnd.flisthub.flist, */*;q=0",
        ] {
            let answer = hub
                .send(
                    axum::http::Request::get(&path)
                        .header("accept", accept)
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await;
            assert_eq!(answer.status, 200, "{name}, Accept: {accept}");
            assert!(answer.body == hosted, "{name}: the hosted bytes");
            assert_eq!(
                answer.headers["content-type"], "application/octet-stream",
                "{name}: not labelled as flisthub's format"
            );
            assert_eq!(answer.headers["vary"], "Accept");
        }
        let md5 = hub
            .send(
                axum::http::Request::get(format!("{path}.md5"))
                    .header("accept", "application/vnd.flisthub.flist")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(md5.text().trim(), {
            use md5::Digest;
            hex::encode(md5::Md5::digest(&hosted))
        });
    }
}
