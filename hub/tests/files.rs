//! The file reader: one file inside a published flist, whole or a range, from a native flist
//! (through the chunk reader) and from a hosted 0-flist and fl file (through their blocks),
//! with the refusals of paths that name no regular file.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chunkstore::BlockId;
use common::{Answer, TestHub};
use legacy::{fl, zero};

const NO_AUTH: &str = "[server]\nauthentication = false\n";

/// A gzip'd tar of `big` (random, several chunks and 512 KiB blocks), `etc/hosts`, a
/// directory and a symlink; and `big`'s content.
fn archive() -> (Vec<u8>, Vec<u8>) {
    use rand::{Rng, SeedableRng};
    let mut big = vec![0u8; 2_600_000];
    rand::rngs::StdRng::seed_from_u64(7).fill(&mut big[..]);
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o640);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        match link {
            Some(target) => builder.append_link(&mut header, path, target).unwrap(),
            None => builder.append_data(&mut header, path, data).unwrap(),
        }
    };
    add("big", tar::EntryType::Regular, &big, None);
    add("etc/", tar::EntryType::Directory, b"", None);
    add(
        "etc/hosts",
        tar::EntryType::Regular,
        b"127.0.0.1 localhost\n",
        None,
    );
    add("hosts", tar::EntryType::Symlink, b"", Some("etc/hosts"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &builder.into_inner().unwrap()).unwrap();
    (gz.finish().unwrap(), big)
}

async fn get(hub: &TestHub, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    hub.send(request.body(Body::empty()).unwrap()).await
}

/// Reads `big` whole and in ranges from `flist` (a name in repository `Administrator`).
async fn check_reads(hub: &TestHub, flist: &str, big: &[u8]) {
    let url = format!("/api/v1/flists/Administrator/{flist}/files/big");
    let whole = get(hub, &url, &[]).await;
    assert_eq!(whole.status, StatusCode::OK, "{}", whole.text());
    assert!(whole.body == big, "{flist}: the whole file");
    assert_eq!(whole.headers["content-length"], big.len().to_string());
    assert_eq!(
        whole.headers["content-disposition"],
        "attachment; filename*=UTF-8''big"
    );
    // Across chunk and block boundaries, from the end, and one byte.
    for (range, from, to) in [
        ("bytes=500000-1600000", 500_000, 1_600_001),
        ("bytes=-1000", big.len() - 1000, big.len()),
        ("bytes=524288-524288", 524_288, 524_289),
    ] {
        let part = get(hub, &url, &[("range", range)]).await;
        assert_eq!(part.status, StatusCode::PARTIAL_CONTENT, "{flist} {range}");
        assert!(part.body == big[from..to], "{flist} {range}");
    }
    let beyond = get(hub, &url, &[("range", "bytes=9999999-")]).await;
    assert_eq!(beyond.status, StatusCode::RANGE_NOT_SATISFIABLE);
    let etag = whole.headers["etag"].to_str().unwrap();
    let again = get(hub, &url, &[("if-none-match", etag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    let hosts = get(
        hub,
        &format!("/api/v1/flists/Administrator/{flist}/files//etc/./hosts"),
        &[],
    )
    .await;
    assert_eq!(hosts.text(), "127.0.0.1 localhost\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn files_inside_native_and_legacy_flists() {
    let hub = TestHub::open(NO_AUTH).await;
    hub.hub
        .renditions()
        .start("zdb://hub.example:9900")
        .unwrap();
    let (archive, big) = archive();
    let uploaded = hub.upload(None, "app.tar.gz", &archive).await;
    assert_eq!(uploaded.status, 200, "{}", uploaded.text());
    check_reads(&hub, "app.flist", &big).await;

    // What is not a regular file, or not there, or climbs out.
    for (path, status) in [
        ("etc", StatusCode::CONFLICT),
        ("hosts", StatusCode::CONFLICT),
        ("nothing", StatusCode::NOT_FOUND),
        ("etc/../big", StatusCode::BAD_REQUEST),
    ] {
        let answer = get(
            &hub,
            &format!("/api/v1/flists/Administrator/app.flist/files/{path}"),
            &[],
        )
        .await;
        assert_eq!(answer.status, status, "{path}: {}", answer.text());
    }
    let unknown = get(
        &hub,
        "/api/v1/flists/Administrator/none.flist/files/big",
        &[],
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // The renditions, hosted as files of their own: read through their blocks.
    for _ in 0..200 {
        if get(&hub, "/Administrator/app.fl", &[]).await.status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let zero = get(&hub, "/Administrator/app.flist", &[]).await.body;
    let fl = get(&hub, "/Administrator/app.fl", &[]).await.body;
    assert!(zero.starts_with(&[0x1f, 0x8b]), "the 0-flist rendition");
    // Hosted files' blocks are those clients store, as zflist and rfs would through the
    // gateway.
    let scratch = tempfile::tempdir().unwrap();
    let (zero_path, fl_path) = (scratch.path().join("z.flist"), scratch.path().join("r.fl"));
    std::fs::write(&zero_path, &zero).unwrap();
    std::fs::write(&fl_path, &fl).unwrap();
    let mut ids: Vec<BlockId> = zero::ZeroFlist::open(&zero_path)
        .unwrap()
        .block_ids()
        .unwrap()
        .into_iter()
        .map(BlockId::from)
        .collect();
    ids.extend(
        fl::FlFile::open(&fl_path)
            .unwrap()
            .block_ids()
            .unwrap()
            .into_iter()
            .map(BlockId::from),
    );
    let blocks = hub.hub.renditions().blocks(&ids).await.unwrap();
    let blocks: Vec<_> = ids
        .iter()
        .zip(blocks)
        .map(|(id, b)| (*id, b.unwrap()))
        .collect();
    let store = chunkstore::open(&format!(
        "dir://{}",
        hub.dir.path().join("data/store").display()
    ))
    .await
    .unwrap();
    store.put_blocks(&blocks).await.unwrap();
    let hosted = hub.upload_flist(None, "zero.flist", &zero).await;
    assert_eq!(hosted.status, StatusCode::OK, "{}", hosted.text());
    let hosted = hub.upload_flist(None, "rfs.fl", &fl).await;
    assert_eq!(hosted.status, StatusCode::OK, "{}", hosted.text());
    check_reads(&hub, "zero.flist", &big).await;
    check_reads(&hub, "rfs.fl", &big).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_whose_chunk_is_lost_is_an_error_not_a_short_body() {
    let hub = TestHub::open(NO_AUTH).await;
    let (archive, _) = archive();
    let uploaded = hub.upload(None, "app.tar.gz", &archive).await;
    assert_eq!(uploaded.status, 200, "{}", uploaded.text());
    // Every chunk of the store removed: the file's first chunk is missing.
    let store = hub.dir.path().join("data/store");
    for entry in walkdir(&store) {
        std::fs::remove_file(entry).unwrap();
    }
    let answer = get(
        &hub,
        "/api/v1/flists/Administrator/app.flist/files/big",
        &[],
    )
    .await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        answer
            .text()
            .contains("the hub's chunk store is damaged: missing chunk"),
        "{}",
        answer.text()
    );
}

/// Every regular file under `dir`.
fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}
