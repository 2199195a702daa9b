//! Hostile names and inputs against a running hub (0-hub reference section 13): HTML in
//! every name a client can choose, `..` and encoded separators where a repository or flist
//! is named, traversal in merge sources, archives that are not archives, cut short, escape
//! their root or blow past the limits, flists that are not flists or name chunks the store
//! lacks. Each is refused with a client error that names the problem without reflecting
//! markup, and nothing is published or left behind.

mod common;

use common::hub::*;
use common::*;
use reqwest::Method;
use reqwest::blocking::multipart::{Form, Part};
use serde_json::Value;

/// Small limits, so that going past them is cheap.
const LIMITS: &str = "[limits]\nentries = 50\nexpanded-size = \"1MiB\"\nupload-size = \"4MiB\"\nflist-size = \"1MiB\"\nrequest-body = \"64KiB\"\nmerge-sources = 3\nwrite-rate = 10000\nwrite-burst = 10000\n";

/// Sends a request and checks it was refused with `status`, and that the answer carries no
/// markup.
fn refused(response: reqwest::blocking::Response, status: u16, what: &str) -> String {
    let got = response.status().as_u16();
    let text = response.text().unwrap();
    assert_eq!(got, status, "{what}: {text}");
    assert!(
        !text.contains('<') && !text.contains('>'),
        "{what}: markup reflected: {text}"
    );
    let value: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
    assert_eq!(value["status"], "error", "{what}: {text}");
    value["message"].as_str().unwrap().to_owned()
}

fn upload_as(
    hub: &HubServer,
    token: &str,
    file_name: &str,
    bytes: Vec<u8>,
    original: Option<&str>,
) -> reqwest::blocking::Response {
    let form = Form::new().part("file", Part::bytes(bytes).file_name(file_name.to_owned()));
    let mut request = hub
        .with(Method::POST, "/api/flist/me/upload", token)
        .multipart(form);
    if let Some(original) = original {
        request = request.header("X-Original-Name", original);
    }
    request.send().unwrap()
}

fn upload_flist(
    hub: &HubServer,
    token: &str,
    file_name: &str,
    bytes: Vec<u8>,
) -> reqwest::blocking::Response {
    let form = Form::new().part("file", Part::bytes(bytes).file_name(file_name.to_owned()));
    hub.with(Method::POST, "/api/flist/me/upload-flist", token)
        .multipart(form)
        .send()
        .unwrap()
}

/// Files in the hub's private staging area (must be none between requests) and published
/// flist files (must be exactly one per distinct published content).
fn leftovers(hub: &HubServer) -> (usize, usize) {
    let staging = std::fs::read_dir(hub.data().join("tmp")).unwrap().count();
    let published = walkdir::WalkDir::new(hub.data().join("flists"))
        .into_iter()
        .filter(|e| e.as_ref().unwrap().file_type().is_file())
        .count();
    (staging, published)
}

#[test]
fn hostile_names_are_refused_everywhere_and_never_reflected() {
    let hub = HubServer::start(LIMITS);
    let alice = hub.token("alice", &[]);
    assert_eq!(
        upload_as(&hub, &alice, "hello.tar.gz", small_tarball("hi"), None).status(),
        200
    );
    let before = hub.get("/api/flist").text().unwrap();

    for name in [
        "a b<img src=x onerror=alert(1)>",
        "x\"y",
        "it's",
        "a&b",
        "`id`",
    ] {
        let encoded = segment(name);
        let what = format!("X-Original-Name {name:?}");
        let response = upload_as(&hub, &alice, "ok.tar.gz", small_tarball("x"), Some(name));
        let message = refused(response, 400, &what);
        assert!(
            message.starts_with("invalid flist name"),
            "{what}: {message}"
        );
        for path in [
            format!("/api/flist/me/hello/link/{encoded}"),
            format!("/api/flist/me/{encoded}/crosslink/alice/hello"),
            format!("/api/flist/me/{encoded}/crosstag/alice/v1"),
            format!("/api/flist/me/{encoded}/l/tag/alice/hello"),
            format!("/api/flist/me/v1/{encoded}/tag/alice/hello"),
            format!("/api/flist/me/hello/rename/{encoded}"),
            format!("/api/flist/me/promote/alice/hello/{encoded}"),
            format!("/api/flist/me/promote/{encoded}/hello/x"),
            format!("/api/flist/{encoded}"),
            format!("/api/flist/alice/{encoded}/light"),
            format!("/alice/{encoded}.flist"),
            format!("/{encoded}/hello.flist.md5"),
        ] {
            refused(
                hub.with(Method::GET, &path, &alice).send().unwrap(),
                400,
                &path,
            );
        }
        let merge = hub
            .with(
                Method::POST,
                &format!("/api/flist/me/merge/{encoded}"),
                &alice,
            )
            .body("[\"alice/hello\"]")
            .send()
            .unwrap();
        refused(merge, 400, &format!("merge into {name:?}"));
    }

    // A file name is cleaned as Werkzeug cleans it, so markup cannot survive in it.
    let (status, body) = body_json(upload_as(
        &hub,
        &alice,
        "a<b>c.tar.gz",
        small_tarball("x"),
        None,
    ));
    assert_eq!(
        (status, body["payload"]["name"].as_str().unwrap()),
        (200, "abc.flist")
    );
    assert_eq!(
        hub.with(Method::DELETE, "/api/flist/me/abc", &alice)
            .send()
            .unwrap()
            .status(),
        200
    );

    // `..`, encoded separators, control characters, overlong names: never paths.
    let long = "x".repeat(300);
    for path in [
        "/api/flist/%2e%2e",
        "/api/flist/..",
        "/api/flist/%2e%2e/hello/light",
        "/api/flist/alice/%2e%2e%2fhello/light",
        "/%2e%2e/hello.flist",
        "/alice/..%2fhello.flist",
        "/alice/tags/%2e%2e/hello.flist",
        "/api/flist/alice/a%00b/light",
        "/api/flist/alice/a%0ab/light",
        "/api/flist/alice/a%5cb/light",
    ] {
        let (status, body) = raw_get(&hub.url, path);
        assert_eq!(status, 400, "{path}: {body}");
    }
    let authorization = [format!("Authorization: Bearer {alice}")];
    for path in [
        "/api/flist/me/promote/%2e%2e/hello/x".to_owned(),
        "/api/flist/me/x/crosslink/%2e%2e/hello".to_owned(),
        "/api/flist/me/v1/x/tag/%2e%2e/hello".to_owned(),
        "/api/flist/me/hello/link/a%2fb".to_owned(),
        "/api/flist/me/hello/rename/%2e%2e".to_owned(),
        "/api/flist/me/hello/rename/..".to_owned(),
        format!("/api/flist/me/hello/link/{long}"),
    ] {
        let (status, body) = raw_request(&hub.url, "GET", &path, &authorization);
        assert_eq!(status, 400, "{path}: {body}");
    }

    // Merge sources that try to leave the repository tree.
    for body in [
        "[\"../alice/hello\"]",
        "[\"alice/../hello\"]",
        "[\"alice/x/../../hello\"]",
        "[\"/etc/passwd\"]",
        "[\"alice/hello\", 7]",
    ] {
        let response = hub
            .with(Method::POST, "/api/flist/me/merge/m", &alice)
            .body(body)
            .send()
            .unwrap();
        refused(response, 400, body);
    }

    // Metadata keys are keys.
    // Written by hand: HTTP clients encode such a field name their own way.
    let archive = small_tarball("x");
    let (content_type, body) = multipart_body(&[
        ("file", Some("meta.tar.gz"), &archive),
        ("metadata-<script>", None, b"x"),
    ]);
    let response = hub
        .with(Method::POST, "/api/flist/me/upload", &alice)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .unwrap();
    refused(response, 400, "metadata key with markup");

    assert_eq!(
        hub.get("/api/flist").text().unwrap(),
        before,
        "nothing was published"
    );
    assert_eq!(leftovers(&hub), (0, 1));
}

/// A gzip tarball of `members` (name, content) built byte by byte: names are kept as given.
fn crafted(members: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut tar = Vec::new();
    for (name, data) in members {
        tar.extend(member(name, b'0', data, b""));
    }
    tar.extend(end_of_archive());
    gzip(&tar)
}

#[test]
fn hostile_archives_and_flists_publish_nothing() {
    let hub = HubServer::start(LIMITS);
    let alice = hub.token("alice", &[]);
    let before = hub.get("/api/flist").text().unwrap();
    let good = small_tarball("fine");

    let mut many = Vec::new();
    let names: Vec<Vec<u8>> = (0..60).map(|i| format!("f{i}").into_bytes()).collect();
    for name in &names {
        many.push((name.as_slice(), &b"x"[..]));
    }
    let big = noise(2 << 20, 1);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("random bytes", noise(100_000, 7), 400, ""),
        ("an empty file", Vec::new(), 400, ""),
        (
            "a tarball cut in the middle",
            good[..good.len() / 2].to_vec(),
            400,
            "",
        ),
        (
            "a tar without its end marker",
            gzip(&member(b"a", b'0', b"data", b"")),
            400,
            "",
        ),
        (
            "an entry that climbs out",
            crafted(&[(b"../evil", b"x")]),
            400,
            "evil",
        ),
        (
            "a hardlink to outside",
            gzip(&[member(b"l", b'1', b"", b"/etc/shadow"), end_of_archive()].concat()),
            400,
            "",
        ),
        ("more entries than allowed", crafted(&many), 413, ""),
        (
            "more bytes than allowed",
            crafted(&[(b"big", &big)]),
            413,
            "",
        ),
        ("a zip", b"PK\x03\x04 pretending".to_vec(), 400, ""),
    ];
    for (what, bytes, status, mentions) in cases {
        let message = refused(
            upload_as(&hub, &alice, "bad.tar.gz", bytes, None),
            status,
            what,
        );
        assert!(message.contains(mentions), "{what}: {message}");
    }
    // The same archives, through the web route that runs them as jobs: the job fails.
    let form = Form::new().part(
        "file",
        Part::bytes(noise(10_000, 9)).file_name("web.tar.gz"),
    );
    let (status, started) = body_json(
        hub.with(Method::POST, "/upload", &alice)
            .multipart(form)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{started}");
    let events = hub
        .get(&format!("/listen/{}", started["jobid"].as_str().unwrap()))
        .text()
        .unwrap();
    assert!(events.contains("\"status\": \"error\""), "{events}");

    // Flists: garbage, 0-flist's tar.gz, one whose chunks the store lacks, then a good one.
    let message = refused(
        upload_flist(&hub, &alice, "x.flist", noise(10_000, 5)),
        400,
        "garbage flist",
    );
    assert!(message.contains("not an flist"), "{message}");
    let message = refused(
        upload_flist(&hub, &alice, "x.flist", good.clone()),
        400,
        "a gzip tar that is no 0-flist",
    );
    assert!(message.contains("0-flist"), "{message}");
    refused(
        upload_flist(&hub, &alice, "x.tar.gz", good.clone()),
        400,
        "not named .flist",
    );
    let message = refused(
        upload_flist(&hub, &alice, "x.flist", noise(2 << 20, 4)),
        413,
        "past flist-size",
    );
    assert!(message.contains("flist"), "{message}");

    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    for i in 0..5u64 {
        std::fs::write(tree.join(format!("f{i}")), noise(100_000, 100 + i)).unwrap();
    }
    let elsewhere = format!("dir://{}", work.path().join("elsewhere").display());
    let flist = work.path().join("app.flist");
    ok(flisthub(
        work.path(),
        args!["pack", tree, "-o", flist, "--store", elsewhere, "--quiet"],
    ));
    let (status, body) = body_json(upload_flist(
        &hub,
        &alice,
        "app.flist",
        std::fs::read(&flist).unwrap(),
    ));
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("5 of 5 chunks are missing"), "{message}");
    assert_eq!(body["payload"]["missing"], 5);
    assert_eq!(body["payload"]["first"].as_array().unwrap().len(), 5);
    assert_eq!(
        body["payload"]["first"][0].as_str().unwrap().len(),
        64,
        "keys in hex"
    );

    assert_eq!(
        hub.get("/api/flist").text().unwrap(),
        before,
        "nothing was published"
    );
    assert_eq!(leftovers(&hub), (0, 0));

    // The same flist once its chunks are in the hub's store: accepted unchanged.
    let store = format!("dir://{}", hub.data().join("store").display());
    ok(flisthub(
        work.path(),
        args!["pack", tree, "-o", flist, "--store", store, "--quiet"],
    ));
    let bytes = std::fs::read(&flist).unwrap();
    let (status, body) = body_json(upload_flist(&hub, &alice, "app.flist", bytes.clone()));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payload"]["files"]["response"]["regular"], 5);
    assert_eq!(hub.get("/alice/app.flist").bytes().unwrap(), bytes);

    // Merge: too many sources, a body past the limit.
    let sources = Value::from(vec!["alice/app"; 4]).to_string();
    let response = hub
        .with(Method::POST, "/api/flist/me/merge/m", &alice)
        .body(sources)
        .send()
        .unwrap();
    refused(response, 413, "too many merge sources");
    let huge = format!("[\"{}\"]", "a".repeat(100_000));
    let response = hub
        .with(Method::POST, "/api/flist/me/merge/m", &alice)
        .body(huge)
        .send()
        .unwrap();
    refused(response, 413, "a merge body past request-body");
    assert_eq!(leftovers(&hub), (0, 1));
}

/// Answers that come before the body was read reach the client whole: a refused token on
/// a large upload, a metadata field past its limit, an flist with more entries than allowed.
#[test]
fn early_refusals_reach_clients_still_sending() {
    let hub = HubServer::start(LIMITS);
    let alice = hub.token("alice", &[]);
    let big = noise(3 << 20, 11);
    for _ in 0..5 {
        let message = refused(
            upload_as(&hub, "not-a-token", "x.tar", big.clone(), None),
            401,
            "a bad token with a large body",
        );
        assert!(message.contains("invalid"), "{message}");
    }

    let archive = small_tarball("x");
    let value = vec![b'v'; 100 << 10];
    let (content_type, body) = multipart_body(&[
        ("file", Some("meta.tar.gz"), &archive),
        ("metadata-note", None, &value),
    ]);
    let response = hub
        .with(Method::POST, "/api/flist/me/upload", &alice)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .unwrap();
    let message = refused(response, 413, "a metadata value past 64 KiB");
    assert!(message.contains("metadata-note"), "{message}");

    // An flist whose chunks are all there but that holds more entries than allowed.
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    for i in 0..60 {
        std::fs::write(tree.join(format!("f{i}")), b"").unwrap();
    }
    let flist = work.path().join("many.flist");
    let store = format!("dir://{}", hub.data().join("store").display());
    ok(flisthub(
        work.path(),
        args!["pack", tree, "-o", flist, "--store", store, "--quiet"],
    ));
    let message = refused(
        upload_flist(&hub, &alice, "many.flist", std::fs::read(&flist).unwrap()),
        413,
        "an flist past limits.entries",
    );
    assert!(message.contains("limits.entries"), "{message}");
    assert_eq!(hub.get("/api/flist").text().unwrap(), "[]\n");
    assert_eq!(leftovers(&hub), (0, 0));

    // A good archive, past upload-size: refused while it streams in.
    let small = HubServer::start("[limits]\nupload-size = \"1MiB\"\n");
    let token = small.token("alice", &[]);
    let mut tar = member(b"zeros", b'0', &vec![0; 3 << 20], b"");
    tar.extend(end_of_archive());
    let message = refused(
        upload_as(&small, &token, "huge.tar", tar, None),
        413,
        "a body past upload-size",
    );
    assert!(message.contains("larger than the hub accepts"), "{message}");
    assert_eq!(small.get("/api/flist").text().unwrap(), "[]\n");
    assert_eq!(leftovers(&small), (0, 0));
}
