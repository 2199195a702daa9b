//! The limits hold for every way an flist comes in (upload, upload-flist, merge, promote),
//! and metadata is bounded at publish and served from what publish recorded.

mod common;

use common::{TestHub, flist_file, tarball};

const SMALL: &str = "[server]\nauthentication = false\n[limits]\nentries = 20\nmetadata-value = \"1KiB\"\nmetadata-size = \"4KiB\"\nmerge-entries = 30\n";

#[tokio::test]
async fn metadata_is_bounded_at_publish_and_served_from_the_record() {
    let hub = TestHub::open(SMALL).await;
    let big = "x".repeat(2048);
    let answer = hub
        .upload_flist(None, "big.flist", &flist_file(1, &[("readme", &big)]))
        .await;
    assert_eq!(answer.status, 413, "{}", answer.text());
    assert!(
        answer.text().contains("limits.metadata-value"),
        "{}",
        answer.text()
    );
    let many: Vec<(String, String)> = (0..8).map(|i| (format!("k{i}"), "v".repeat(900))).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let answer = hub
        .upload_flist(None, "many.flist", &flist_file(1, &many))
        .await;
    assert_eq!(answer.status, 413, "{}", answer.text());
    assert!(
        answer.text().contains("limits.metadata-size"),
        "{}",
        answer.text()
    );
    assert_eq!(
        hub.get("/api/flist/Administrator").await.status,
        404,
        "nothing published"
    );

    let answer = hub
        .upload_flist(
            None,
            "ok.flist",
            &flist_file(1, &[("readme", "{\"readme\": \"hi\"}"), ("k", "v")]),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    // Served from the database: the file itself can go.
    let sha = answer.json()["payload"]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = hub
        .dir
        .path()
        .join(format!("data/flists/sha256/{}/{sha}", &sha[..2]));
    assert!(file.exists(), "{}", file.display());
    let metadata = hub.get("/api/flist/Administrator/ok/metadata").await.json();
    assert_eq!(metadata["readme"]["readme"], "hi");
    assert_eq!(metadata["k"], "v");
}

#[tokio::test]
async fn every_way_in_obeys_the_entry_limit() {
    let hub = TestHub::open(SMALL).await;
    let answer = hub
        .upload_flist(None, "wide.flist", &flist_file(25, &[]))
        .await;
    assert_eq!(answer.status, 413, "{}", answer.text());
    assert!(answer.text().contains("limits.entries"));

    for name in ["a", "b"] {
        let answer = hub
            .upload_flist(None, &format!("{name}.flist"), &flist_file(12, &[]))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let hub_ref = &hub;
    let merge = |body: &'static str| async move {
        let request = axum::http::Request::post("/api/flist/me/merge/m")
            .body(axum::body::Body::from(body))
            .unwrap();
        hub_ref.send(request).await
    };
    let answer = merge(r#"["Administrator/a", "Administrator/a"]"#).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("twice"), "{}", answer.text());
    // 26 entries read (13 each, the root included) is within merge-entries; the result
    // (12 files and a root: the same names) within entries.
    let answer = merge(r#"["Administrator/a", "Administrator/b"]"#).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer = merge(r#"["Administrator/a", "Administrator/b", "Administrator/m"]"#).await;
    assert_eq!(answer.status, 413, "{}", answer.text());
    assert!(answer.text().contains("limits.merge-entries"));
    let answer = merge(r#"["Administrator/a", "Administrator/nothing"]"#).await;
    assert_eq!(answer.status, 404);
    assert_eq!(
        answer.json()["message"],
        "\"Administrator/nothing.flist\" does not exist",
        "names quoted plainly"
    );

    // Lowered since: a promote of a flist over the limit is refused.
    let hub = hub
        .restart(&SMALL.replace("entries = 20", "entries = 10"))
        .await;
    let answer = hub
        .call("GET", "/api/flist/me/promote/Administrator/a/copy", None)
        .await;
    assert_eq!(answer.status, 413, "{}", answer.text());
}

#[tokio::test]
async fn an_uploads_counts_match_its_contents_dump() {
    let hub = TestHub::open("[server]\nauthentication = false\n").await;
    let answer = hub.upload(None, "a.tar.gz", &tarball("x")).await.json();
    let counted = &answer["payload"]["files"]["response"];
    let dump = hub.get("/api/flist/Administrator/a").await.json();
    for key in ["regular", "symlink", "directory", "special", "fullsize"] {
        assert_eq!(counted[key], dump[key], "{key}");
    }
}

/// The converter's refusals of an archive reach the client with the status of their class:
/// a header record past `limits.header-record` and a compression bomb are 413 and say what
/// was refused, a link out of the tree is 400.
#[tokio::test]
async fn archive_refusals_have_their_status() {
    use testkit::tar::{archive, hardlink, header_bomb, zeros_gzip};
    let hub =
        TestHub::open("[server]\nauthentication = false\n[limits]\nheader-record = \"16KiB\"\n")
            .await;
    let cases: [(&str, Vec<u8>, u16, &str); 3] = [
        (
            "a PAX record past the limit",
            header_bomb(b'x', 20 << 10, 4096),
            413,
            "a PAX record of 20480 bytes, the limit is 16384",
        ),
        (
            "256 MiB of zeros in 256 KB",
            zeros_gzip(b"zeros", 256 << 20),
            413,
            "a ratio above 250",
        ),
        (
            "a hardlink out of the tree",
            archive(&[hardlink(b"up", b"../x")]),
            400,
            "'..' component",
        ),
    ];
    for (what, bytes, status, phrase) in cases {
        let answer = hub.upload(None, "bad.tar.gz", &bytes).await;
        assert_eq!(answer.status, status, "{what}: {}", answer.text());
        assert!(answer.text().contains(phrase), "{what}: {}", answer.text());
    }
}
