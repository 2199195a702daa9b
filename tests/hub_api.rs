//! A running `flisthub serve`: downloads, modes, configuration mistakes and the curl flows
//! of the design.

mod common;

use common::hub::*;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};

/// The hub of appendix B: authentication off, a public 0-db backend.
fn appendix_b_hub() -> HubServer {
    HubServer::start(
        "[server]\nauthentication = false\n[publish]\nroutes = [\"zdb://hub.tld:9900/default\"]\n",
    )
}

fn text(response: reqwest::blocking::Response) -> (u16, String) {
    (response.status().as_u16(), response.text().unwrap())
}

fn get(hub: &HubServer, path: &str) -> (u16, Value) {
    body_json(hub.get(path))
}

/// md5 by coreutils, so that the check does not trust the hub's own code.
fn md5_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("md5sum");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..32].to_owned()
}

#[test]
fn downloads_answer_conditions_and_ranges() {
    let hub = appendix_b_hub();
    assert_eq!(
        hub.upload("-", "app.tar.gz", small_tarball("data"))
            .status(),
        200
    );
    let whole = hub.get("/Administrator/app.flist");
    assert_eq!(whole.status(), 200);
    let etag = whole.headers()["etag"].to_str().unwrap().to_owned();
    let modified = whole.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(whole.headers()["cache-control"], "public, no-cache");
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.headers()["access-control-allow-origin"], "*");
    let bytes = whole.bytes().unwrap();
    let size = bytes.len();
    let url = format!("{}/Administrator/app.flist", hub.url);
    let c = client();

    let not_modified = c.get(&url).header("If-None-Match", &etag).send().unwrap();
    assert_eq!(not_modified.status(), 304);
    assert_eq!(not_modified.headers()["etag"].to_str().unwrap(), etag);
    let since = c
        .get(&url)
        .header("If-Modified-Since", &modified)
        .send()
        .unwrap();
    assert_eq!(since.status(), 304);
    let changed = c
        .get(&url)
        .header("If-None-Match", "\"other\"")
        .send()
        .unwrap();
    assert_eq!(changed.status(), 200);
    assert_eq!(
        c.get(&url)
            .header("If-Match", "\"other\"")
            .send()
            .unwrap()
            .status(),
        412
    );

    let part = c.get(&url).header("Range", "bytes=10-19").send().unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 10-19/{size}").as_str()
    );
    assert_eq!(part.bytes().unwrap(), bytes[10..20]);
    let tail = c.get(&url).header("Range", "bytes=-5").send().unwrap();
    assert_eq!(tail.bytes().unwrap(), bytes[size - 5..]);
    let beyond = c
        .get(&url)
        .header("Range", format!("bytes={size}-"))
        .send()
        .unwrap();
    assert_eq!(beyond.status(), 416);
    assert_eq!(
        beyond.headers()["content-range"],
        format!("bytes */{size}").as_str()
    );
    let stale = c
        .get(&url)
        .header("Range", "bytes=0-0")
        .header("If-Range", "\"stale\"")
        .send()
        .unwrap();
    assert_eq!(stale.status(), 200, "a stale If-Range gets the whole file");
    let head = c.head(&url).send().unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], size.to_string().as_str());

    // Names are never paths.
    assert_eq!(raw_get(&hub.url, "/api/flist/%2e%2e").0, 400);
    assert_eq!(raw_get(&hub.url, "/api/flist/..").0, 400);
    assert_eq!(raw_get(&hub.url, "/%2e%2e/app.flist").0, 400);
    assert_eq!(raw_get(&hub.url, "/Administrator/..%2fapp.flist").0, 400);
    assert_eq!(hub.get("/Administrator/nothing.flist").status(), 404);
    assert_eq!(get(&hub, "/no/such/route/here/at/all").0, 404);
}

#[test]
fn read_only_mode_json_logs_and_environment_overrides() {
    // The environment overrides the file: the file says writable, the variable read-only.
    let hub = HubServer::start_with_env(
        "[server]\nreadonly = false\n",
        &[
            ("FLISTHUB__SERVER__READONLY", "true"),
            ("FLISTHUB__SERVER__LOG_FORMAT", "json"),
        ],
    );
    let token = hub.token("alice", &[]);
    assert_eq!(
        text(
            hub.with(Method::GET, "/api/flist/me", &token)
                .send()
                .unwrap()
        ),
        (
            400,
            "{\"message\":\"readonly mode\",\"status\":\"error\"}\n".into()
        )
    );
    assert_eq!(
        hub.upload(&token, "x.tar.gz", small_tarball("x")).status(),
        400
    );
    assert_eq!(get(&hub, "/api/repositories").1, json!([]));
    let (status, health) = get(&hub, "/api/v1/health");
    assert_eq!((status, health["readonly"].clone()), (200, json!(true)));
    // One JSON object a line, requests included (a request's line is written once its
    // answer is sent: it may come a moment after the client read it).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let log = hub.log();
        let lines: Vec<Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let logged = lines
            .iter()
            .any(|l| l["span"]["path"] == "/api/v1/health" && l["fields"]["status"] == 200);
        if logged {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{log}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn configuration_mistakes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[limits]\nupload-sise = \"1G\"\n").unwrap();
    let out = flisthub(
        dir.path(),
        args!["--config", config, "serve", "--listen", "127.0.0.1:0"],
    );
    let stderr = fails(out);
    assert!(stderr.contains("upload-sise"), "{stderr}");
}

/// The design's flows 1 and 3 with curl: upload with a token, then anonymous download,
/// `.md5`, and `flisthub extract` of what was downloaded.
#[test]
fn curl_upload_then_anonymous_download_and_extract() {
    if !testkit::need("curl") {
        return;
    }
    let hub = HubServer::start("");
    let token = hub.token("alice", &[]);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_tree(&src);
    let archive = work.path().join("app.tar.gz");
    std::fs::write(&archive, tar_gz(&src)).unwrap();
    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--fail-with-body"])
            .args(args)
            .current_dir(work.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let answer = curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        "-F",
        "file=@app.tar.gz",
        &format!("{}/api/flist/me/upload", hub.url),
    ]);
    assert!(answer.contains("\"name\": \"app.flist\""), "{answer}");
    curl(&["-O", &format!("{}/alice/app.flist", hub.url)]);
    let md5 = curl(&[&format!("{}/alice/app.flist.md5", hub.url)]);
    let flist = std::fs::read(work.path().join("app.flist")).unwrap();
    assert_eq!(md5.trim(), md5_hex(&flist));
    let store = format!("dir://{}", hub.data().join("store").display());
    let dest = work.path().join("dest");
    ok(flisthub(
        work.path(),
        args![
            "extract",
            work.path().join("app.flist"),
            dest,
            "--store",
            store
        ],
    ));
    // GNU tar does not archive sockets.
    assert_same_tree(&src, &dest, &|p: &std::path::Path| {
        p == std::path::Path::new("socket")
    });
}
