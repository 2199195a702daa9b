//! The 0-hub API of a running `flisthub serve`, replayed as 0-hub answered the same calls
//! (captured from the real service): field names, JSON types and order, `target` forms,
//! status codes, the raw-versus-envelope rule.

mod common;

use common::hub::*;
use reqwest::Method;
use serde_json::{Value, json};

const INFO: &[u8] = b"INFO";

/// The hub of appendix B: authentication off, a public 0-db backend.
fn appendix_b_hub() -> HubServer {
    HubServer::start(
        "[server]\nauthentication = false\n[publish]\nroutes = [\"zdb://hub.tld:9900/default\"]\n",
    )
}

fn text(response: reqwest::blocking::Response) -> (u16, String) {
    (response.status().as_u16(), response.text().unwrap())
}

fn call(hub: &HubServer, method: Method, path: &str) -> (u16, Value) {
    body_json(hub.with(method, path, "unused").send().unwrap())
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
fn appendix_b_replayed() {
    let hub = appendix_b_hub();

    // Upload, with a custom and a protected metadata field.
    let form = reqwest::blocking::multipart::Form::new()
        .part(
            "file",
            reqwest::blocking::multipart::Part::bytes(small_tarball("four"))
                .file_name("hello.tar.gz"),
        )
        .text("metadata-foo", "bar")
        .text("metadata-readme", "ignored");
    let (status, body) = body_json(
        hub.with(Method::POST, "/api/flist/me/upload", "-")
            .multipart(form)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys(&body), ["status", "payload"]);
    let payload = &body["payload"];
    assert_eq!(&keys(payload)[..2], ["name", "files"]);
    assert_eq!(payload["name"], "hello.flist");
    assert_eq!(
        keys(&payload["files"]),
        ["success", "error", "response", "status"]
    );
    assert_eq!(payload["files"]["success"], true);
    assert_eq!(payload["files"]["error"], Value::Null);
    assert_eq!(payload["files"]["status"], 0);
    assert_eq!(
        keys(&payload["files"]["response"]),
        [
            "regular",
            "symlink",
            "directory",
            "special",
            "failure",
            "fullsize"
        ]
    );
    assert_eq!(payload["files"]["response"]["regular"], 2);
    assert_eq!(payload["files"]["response"]["fullsize"], 7);
    assert_eq!(payload["ignored-metadata"], json!(["readme"]));

    // The identity, in the exact bytes 0-hub wrote.
    let (status, me) = text(hub.get("/api/flist/me"));
    assert_eq!(status, 200);
    assert_eq!(
        me,
        "{\"status\": \"success\", \"payload\": {\"username\": \"Administrator\"}}\n"
    );

    let (_, repos) = get(&hub, "/api/repositories");
    assert_eq!(keys(&repos[0]), ["name", "official", "updated"]);
    assert_eq!(repos[0]["name"], "Administrator");
    assert_eq!(
        repos[0]["official"], true,
        "auth off: Administrator is official"
    );
    assert!(repos[0]["updated"].is_i64());
    assert_eq!(
        get(&hub, "/api/flist").1,
        json!(["Administrator/hello.flist"])
    );

    // Link, tag, crosstag.
    for path in [
        "/api/flist/me/hello/link/latest",
        "/api/flist/me/v1/latest/tag/Administrator/hello",
        "/api/flist/me/mytag/crosstag/Administrator/v1",
    ] {
        let (status, body) = call(&hub, Method::GET, path);
        assert_eq!(
            (status, body),
            (200, json!({"status": "success"})),
            "{path}"
        );
    }

    let (status, listing) = get(&hub, "/api/flist/Administrator");
    assert_eq!(status, 200);
    let rows = listing.as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["v1", "hello.flist", "latest.flist", "mytag"],
        "0-hub's on-disk order"
    );
    assert_eq!(keys(&rows[0]), ["name", "size", "updated", "type"]);
    assert_eq!(rows[0]["type"], "tag");
    assert_eq!(rows[0]["size"], "0 KB");
    assert_eq!(keys(&rows[1]), ["name", "size", "updated", "type"]);
    assert_eq!(rows[1]["type"], "regular");
    let size_text = rows[1]["size"].as_str().unwrap();
    assert!(
        size_text.ends_with(" KB") && size_text.contains('.'),
        "{size_text}"
    );
    assert_eq!(
        keys(&rows[2]),
        ["name", "size", "updated", "linktime", "type", "target"]
    );
    assert_eq!(rows[2]["type"], "symlink");
    assert_eq!(rows[2]["target"], "hello.flist");
    assert_eq!(
        rows[2]["size"], rows[1]["size"],
        "a link shows its target's size"
    );
    assert_eq!(
        keys(&rows[3]),
        ["name", "size", "updated", "linktime", "type", "target"]
    );
    assert_eq!(rows[3]["type"], "taglink");
    assert_eq!(rows[3]["target"], "Administrator/tags/v1");
    assert_eq!(
        rows[3]["size"], "4.00 KB",
        "0-hub's size of the tag directory"
    );
    for row in rows {
        assert!(row["updated"].is_i64(), "{row}");
    }

    let (status, tag) = get(&hub, "/api/flist/Administrator/tags/v1");
    assert_eq!(status, 200);
    assert_eq!(
        keys(&tag[0]),
        ["name", "size", "updated", "linktime", "type", "target"]
    );
    assert_eq!(tag[0]["name"], "latest.flist");
    assert_eq!(tag[0]["type"], "symlink");
    assert_eq!(tag[0]["target"], "Administrator/hello.flist");

    // The download, and what light and INFO say of it.
    let download = hub.get("/Administrator/hello.flist").bytes().unwrap();
    let md5 = md5_hex(&download);
    let info_method = Method::from_bytes(INFO).unwrap();
    for (method, path) in [
        (info_method.clone(), "/api/flist/Administrator/hello.flist"),
        (Method::GET, "/api/flist/Administrator/hello/light"),
    ] {
        let (status, light) = call(&hub, method, path);
        assert_eq!(status, 200);
        assert_eq!(
            &keys(&light)[..5],
            ["name", "size", "updated", "type", "md5"],
            "{light}"
        );
        assert_eq!(light["name"], "hello.flist");
        assert_eq!(light["size"], download.len());
        assert_eq!(light["type"], "regular");
        assert_eq!(light["md5"], md5.as_str());
        assert!(light.get("status").is_none(), "raw replies have no status");
    }
    let (_, light) = get(&hub, "/api/flist/Administrator/latest/light");
    assert_eq!(
        &keys(&light)[..7],
        [
            "name", "size", "updated", "type", "md5", "linktime", "target"
        ]
    );
    assert_eq!(light["type"], "symlink");
    assert_eq!(
        light["target"], "hello.flist",
        "light shows the raw link text"
    );
    assert_eq!(light["md5"], md5.as_str());
    assert_eq!(light["size"], download.len());

    let (status, contents) = get(&hub, "/api/flist/Administrator/hello");
    assert_eq!(status, 200);
    assert_eq!(
        keys(&contents),
        [
            "content",
            "regular",
            "symlink",
            "directory",
            "special",
            "failure",
            "fullsize"
        ]
    );
    assert_eq!(
        contents["content"],
        json!([{"size": 4, "path": "/a"}, {"size": 0, "path": "/sub"}, {"size": 3, "path": "/sub/b"}])
    );
    assert_eq!(
        (contents["regular"].clone(), contents["fullsize"].clone()),
        (json!(2), json!(7))
    );

    let (_, metadata) = get(&hub, "/api/flist/Administrator/hello/metadata");
    assert_eq!(metadata["foo"], "bar");
    assert_eq!(
        metadata["backend"],
        json!({"host": "hub.tld", "port": 9900, "namespace": "default"})
    );
    assert_eq!(metadata["routes"], json!(["zdb://hub.tld:9900/default"]));
    assert!(
        metadata.get("readme").is_none(),
        "metadata-readme is protected"
    );

    assert_eq!(
        get(&hub, "/api/flist/Administrator/mytag/taglink").1,
        json!({"target": "Administrator/tags/v1"})
    );

    let (status, txt) = text(hub.get("/Administrator/hello.txt"));
    assert_eq!(status, 200);
    assert_eq!(
        txt,
        format!(
            "File:     hello.flist\nUploader: Administrator\nSource:   {}/Administrator/hello.flist\nStorage:  zdb://hub.tld:9900\nChecksum: {md5}\n",
            hub.url
        )
    );
    assert_eq!(
        text(hub.get("/Administrator/hello.flist.md5")),
        (200, format!("{md5}\n"))
    );
    assert_eq!(
        text(hub.get("/Administrator/tags/v1/latest.flist.md5")),
        (200, format!("{md5}\n")),
        "md5 through a tag, which 0-hub lacked"
    );
    assert_eq!(
        hub.get("/Administrator/tags/v1/latest.flist")
            .bytes()
            .unwrap(),
        download
    );
    let (status, summary) = get(&hub, "/Administrator/hello.json");
    assert_eq!(status, 200, "0-hub always failed here");
    assert_eq!(
        &keys(&summary)[..5],
        ["flist", "uploader", "source", "storage", "checksum"]
    );
    assert_eq!(summary["checksum"], md5.as_str());

    // Conflicts keep 0-hub's codes and messages.
    assert_eq!(
        call(&hub, Method::GET, "/api/flist/me/hello/link/hello"),
        (
            401,
            json!({"status": "error", "message": "link destination is already a file"})
        )
    );
    assert_eq!(
        call(
            &hub,
            Method::GET,
            "/api/flist/me/mytag.flist/crosstag/Administrator/v1"
        ),
        (
            401,
            json!({"status": "error", "message": "tag symlink cannot ends with .flist"})
        )
    );

    let (status, promoted) = call(
        &hub,
        Method::GET,
        "/api/flist/me/promote/Administrator/hello/copy",
    );
    assert_eq!(status, 200);
    assert_eq!(
        promoted,
        json!({"status": "success", "payload": {
            "source": {"username": "Administrator", "filename": "hello.flist"},
            "destination": {"username": "Administrator", "filename": "copy.flist"}}})
    );
    assert_eq!(
        hub.get("/Administrator/copy.flist").bytes().unwrap(),
        download
    );

    // Rename refuses to overwrite unless asked (0-hub overwrote silently).
    let (status, refused) = call(&hub, Method::GET, "/api/flist/me/copy/rename/hello");
    assert_eq!(status, 409, "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("force=true"));
    assert_eq!(
        call(&hub, Method::GET, "/api/flist/me/copy/rename/renamed").0,
        200
    );
    assert_eq!(hub.get("/Administrator/copy.flist").status(), 404);
    assert_eq!(
        call(
            &hub,
            Method::POST,
            "/api/flist/me/renamed/rename/hello?force=true"
        )
        .0,
        200
    );
    assert_eq!(
        hub.get("/Administrator/hello.flist").bytes().unwrap(),
        download
    );

    // 0-hub's route precedence: GET of `upload` inspects `upload.flist`.
    assert_eq!(
        call(&hub, Method::GET, "/api/flist/me/upload"),
        (
            404,
            json!({"status": "error", "message": "source not found"})
        )
    );

    // Merge: 0-hub's messages, with client-error codes.
    for (body, status, message) in [
        ("notjson", 400, "malformed json request"),
        ("{\"a\": 1}", 400, "malformed json request"),
        ("[]", 400, "no source found"),
        ("[\"nope\"]", 400, "malformed source filename"),
        ("[\"Administrator/x/y\"]", 400, "malformed source filename"),
    ] {
        let (got, answer) = body_json(
            hub.with(Method::POST, "/api/flist/me/merge/merged", "-")
                .body(body)
                .send()
                .unwrap(),
        );
        assert_eq!(
            (got, answer["message"].as_str().unwrap()),
            (status, message),
            "{body}"
        );
    }
    let (got, answer) = body_json(
        hub.with(Method::POST, "/api/flist/me/merge/merged", "-")
            .body("[\"Administrator/zzz\"]")
            .send()
            .unwrap(),
    );
    assert_eq!(got, 404);
    assert!(
        answer["message"].as_str().unwrap().contains("zzz.flist"),
        "{answer}"
    );
    let second = tempfile::tempdir().unwrap();
    std::fs::write(second.path().join("a"), b"second wins nothing").unwrap();
    std::fs::write(second.path().join("only-in-second"), b"2").unwrap();
    assert_eq!(
        hub.upload("-", "second.tar.gz", tar_gz(second.path()))
            .status(),
        200
    );
    let (status, merged) = body_json(
        hub.with(Method::POST, "/api/flist/me/merge/merged", "-")
            .body("[\"Administrator/hello\", \"Administrator/second.flist\"]")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{merged}");
    assert_eq!(merged["status"], "success");
    let (_, contents) = get(&hub, "/api/flist/Administrator/merged");
    let paths: Vec<(&str, u64)> = contents["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap(), e["size"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        paths,
        [
            ("/a", 4),
            ("/only-in-second", 1),
            ("/sub", 0),
            ("/sub/b", 3)
        ],
        "first wins"
    );

    // Upload errors are client errors now (0-hub: 500).
    let empty_form = reqwest::blocking::multipart::Form::new().text("other", "x");
    let (status, answer) = body_json(
        hub.with(Method::POST, "/api/flist/me/upload", "-")
            .multipart(empty_form)
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, answer["message"].as_str().unwrap()),
        (400, "no file found")
    );
    let (status, answer) = body_json(hub.upload("-", "a.zip", b"PK\x03\x04".to_vec()));
    assert_eq!(status, 400);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("this file is not allowed")
    );

    // Unknown jobs, in jsonify's compact style.
    assert_eq!(
        text(hub.get("/listen/unknown")),
        (
            404,
            "{\"message\":\"job id not found\",\"status\":\"error\"}\n".into()
        )
    );

    // HEAD never changes anything (0-hub created the link).
    let head = hub
        .with(Method::HEAD, "/api/flist/me/hello/link/viahead", "-")
        .send()
        .unwrap();
    assert_eq!(head.status(), 405);
    assert_eq!(get(&hub, "/api/flist/Administrator/viahead/light").0, 404);
    assert_eq!(
        call(&hub, Method::POST, "/api/flist/me/hello/link/viapost").0,
        200
    );

    // A trailing slash is accepted, as by Flask.
    assert_eq!(get(&hub, "/api/flist/Administrator/").0, 200);
    assert_eq!(
        get(&hub, "/api/flist/nobody").1,
        json!({"status": "error", "message": "user not found"})
    );

    // Deleting: a symlink, a taglink (named without .flist); untag after the source is
    // gone (0-hub could not); the crosstag DELETE 0-hub's README promised.
    assert_eq!(call(&hub, Method::DELETE, "/api/flist/me/viapost").0, 200);
    assert_eq!(call(&hub, Method::DELETE, "/api/flist/me/mytag").0, 200);
    assert_eq!(call(&hub, Method::DELETE, "/api/flist/me/mytag").0, 404);
    assert_eq!(
        call(
            &hub,
            Method::GET,
            "/api/flist/me/t2/crosstag/Administrator/v1"
        )
        .0,
        200
    );
    assert_eq!(
        call(
            &hub,
            Method::DELETE,
            "/api/flist/me/t2/crosstag/Administrator/nope"
        )
        .0,
        404
    );
    assert_eq!(
        call(
            &hub,
            Method::DELETE,
            "/api/flist/me/t2/crosstag/Administrator/v1"
        )
        .0,
        200
    );
    assert_eq!(
        call(
            &hub,
            Method::GET,
            "/api/flist/me/v1/gone/tag/Administrator/copy"
        )
        .0,
        404,
        "no such source"
    );
    assert_eq!(
        call(
            &hub,
            Method::GET,
            "/api/flist/me/v1/merged/tag/Administrator/merged"
        )
        .0,
        200
    );
    assert_eq!(call(&hub, Method::DELETE, "/api/flist/me/merged").0, 200);
    assert_eq!(
        call(
            &hub,
            Method::DELETE,
            "/api/flist/me/v1/merged/tag/Administrator/merged"
        )
        .0,
        200
    );
    assert_eq!(
        call(
            &hub,
            Method::DELETE,
            "/api/flist/me/v1/latest/tag/Administrator/hello"
        )
        .0,
        200
    );
    assert_eq!(
        get(&hub, "/api/flist/Administrator/tags/v1").0,
        404,
        "an empty tag is removed"
    );
    let (_, listing) = get(&hub, "/api/flist/Administrator");
    let names: Vec<&str> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hello.flist", "latest.flist", "second.flist"]);
    assert_eq!(call(&hub, Method::DELETE, "/api/flist/me/hello").0, 200);
    let (_, light) = get(&hub, "/api/flist/Administrator/latest/light");
    assert_eq!(light["md5"], Value::Null, "a dangling link has no md5");
    assert_eq!(hub.get("/Administrator/latest.flist").status(), 404);
}
