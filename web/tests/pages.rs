//! The pages in process (`oneshot` on the composed router): shapes, escaping of hostile
//! metadata and readmes, HTML errors for browsers, and the CSRF and session refusals, each
//! checked to leave nothing changed.

#[path = "../../hub/tests/common/mod.rs"]
mod common;
mod forms;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{Answer, TestHub, flist_file, upload_request};
use forms::{PASSWORD, browse, csrf_of, log_in, post, send, set_cookie};
use tower::ServiceExt;

const AUTH: &str = "";

/// The tags of a page (`<...>`): escaped text (`&lt;`) is never one.
fn tags(html: &str) -> Vec<&str> {
    html.split('<')
        .skip(1)
        .map(|rest| &rest[..rest.find('>').unwrap_or(rest.len())])
        .collect()
}

fn own_tokens(hub: &TestHub) -> usize {
    hub.hub
        .tokens()
        .list()
        .unwrap()
        .iter()
        .filter(|t| t.user == "alice" && t.revoked.is_none())
        .count()
}

#[tokio::test]
async fn pages_render_hostile_content_inert() {
    let hub = TestHub::open(AUTH).await;
    let alice = hub.token("alice");
    let hostile = flist_file(
        2,
        &[
            (
                "readme",
                r##"{"readme": "# Title\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n[a](javascript:alert(3)) <a href=\"javascript:alert(4)\">b</a> **ok**"}"##,
            ),
            (
                "entrypoint",
                r#"["/bin/sh", "<img src=x onerror=alert(5)>"]"#,
            ),
            ("note", "<script>alert(6)</script>\"><svg onload=alert(7)>"),
        ],
    );
    let (request, body) = upload_request(
        "POST",
        "/api/flist/me/upload-flist",
        Some(&alice),
        "app.flist",
        &hostile,
    );
    let uploaded = send(&hub, request.body(Body::from(body)).unwrap()).await;
    assert_eq!(uploaded.status, 200, "{}", uploaded.text());

    for path in [
        "/",
        "/alice",
        "/alice/app.flist.md",
        "/search?q=app",
        "/search?q=%3Cscript%3E",
    ] {
        let page = browse(&hub, path, None).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(
            page.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let csp = page.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        let html = page.text();
        // The page's own script is the one script element; nothing hostile became markup.
        assert_eq!(html.matches("<script").count(), 1, "{path}: {html}");
        for bad in ["<img", "<svg", "<iframe"] {
            assert!(!html.contains(bad), "{path}: {bad} in {html}");
        }
        for tag in tags(&html) {
            let lower = tag.to_ascii_lowercase();
            for bad in ["onerror", "onload", "onclick", "javascript:"] {
                assert!(!lower.contains(bad), "{path}: {bad} in the tag {tag}");
            }
        }
    }
    let preview = browse(&hub, "/alice/app.flist.md", None).await.text();
    assert!(
        preview.contains("<h1>Title</h1>"),
        "the readme is rendered: {preview}"
    );
    assert!(preview.contains("<strong>ok</strong>"));
    assert!(
        preview.contains("&lt;img src=x onerror=alert(5)&gt;"),
        "metadata is shown escaped"
    );
    let md5 = hub
        .hub
        .catalogue()
        .resolve("alice", "app.flist")
        .await
        .unwrap()
        .digest
        .md5;
    assert!(
        preview.contains(&md5)
            && preview.contains("flisthub extract http://hub.test/alice/app.flist")
    );

    let home = browse(&hub, "/", None).await.text();
    assert!(
        home.contains("href=\"/alice\"") && home.contains("<td class=\"num\">1</td>"),
        "{home}"
    );
    let search = browse(&hub, "/search?q=app", None).await.text();
    assert!(search.contains("href=\"/alice/app.flist.md\""), "{search}");

    // Errors: a page for browsers, the JSON envelope for clients; the API keeps its JSON.
    let missing = browse(&hub, "/nobody", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.text().contains("user not found") && missing.text().starts_with("<!DOCTYPE html>")
    );
    let json = send(
        &hub,
        Request::get("/nobody/x.flist").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(json.status, StatusCode::NOT_FOUND);
    assert_eq!(json.json()["status"], "error");
    let api = browse(&hub, "/api/flist/alice", None).await;
    assert_eq!(api.status, StatusCode::OK);
    assert!(api.json().is_array());
    // Downloads still work beside the pages.
    let download = browse(&hub, "/alice/app.flist", None).await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.body.len(), hostile.len());
}

#[tokio::test]
async fn forms_refuse_csrf_and_sessions_end() {
    let hub = TestHub::open(AUTH).await;
    hub.hub.accounts().add("alice", PASSWORD, &[]).unwrap();
    hub.hub.accounts().add("bob", PASSWORD, &[]).unwrap();
    // A wrong password: no session.
    let login = browse(&hub, "/login", None).await;
    let pre = set_cookie(&login, "flisthub-csrf").unwrap();
    let csrf = csrf_of(&login.text());
    let wrong = post(
        &hub,
        "/login",
        &pre,
        None,
        &format!("csrf={csrf}&name=alice&password=nope+nope+nope"),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&wrong, "flisthub-session").is_none());
    // Login without the double-submit cookie's token.
    let forged = post(
        &hub,
        "/login",
        &pre,
        None,
        "csrf=0000&name=alice&password=correct+horse+battery",
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let (cookie, csrf) = log_in(&hub).await;
    let before = own_tokens(&hub);
    let create = "action=create&days=7&note=ci";
    // No token, another session's token, another site: refused, nothing made.
    let other = {
        // Bob's session has its own CSRF token.
        let login = browse(&hub, "/login", None).await;
        let pre = set_cookie(&login, "flisthub-csrf").unwrap();
        let c = csrf_of(&login.text());
        let answer = post(
            &hub,
            "/login",
            &pre,
            None,
            &format!("csrf={c}&name=bob&password=correct+horse+battery"),
        )
        .await;
        let bob = set_cookie(&answer, "flisthub-session").unwrap();
        csrf_of(&browse(&hub, "/tokens", Some(&bob)).await.text())
    };
    assert_ne!(other, csrf);
    for (form, origin) in [
        (create.to_owned(), None),
        (format!("csrf={other}&{create}"), None),
        (format!("csrf={csrf}&{create}"), Some("http://evil.example")),
    ] {
        let answer = post(&hub, "/tokens", &cookie, origin, &form).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{form} {origin:?}");
        assert!(answer.text().starts_with("<!DOCTYPE html>"));
    }
    assert_eq!(own_tokens(&hub), before, "refused forms changed nothing");

    // The right token from the hub's own origin: a token that the API accepts.
    let made = post(
        &hub,
        "/tokens",
        &cookie,
        Some("http://hub.test"),
        &format!("csrf={csrf}&{create}"),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.text());
    assert_eq!(made.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(own_tokens(&hub), before + 1);
    let page = made.text();
    let at = page.find("data-copy=\"ey").unwrap() + 11;
    let token = &page[at..at + page[at..].find('"').unwrap()];
    assert_eq!(
        hub.call("GET", "/api/flist/me", Some(token)).await.status,
        200
    );
    // Bob cannot revoke Alice's token, even with his own valid form.
    let id = hub
        .hub
        .tokens()
        .list()
        .unwrap()
        .into_iter()
        .find(|t| t.note.as_deref() == Some("ci"))
        .unwrap()
        .id;
    let revoke = format!("action=revoke&id={id}");

    // A pasted token logs in too; revoking it ends that session.
    let login = browse(&hub, "/login", None).await;
    let pre = set_cookie(&login, "flisthub-csrf").unwrap();
    let c = csrf_of(&login.text());
    let answer = post(
        &hub,
        "/login",
        &pre,
        None,
        &format!("csrf={c}&token={token}"),
    )
    .await;
    let by_token = set_cookie(&answer, "flisthub-session").unwrap();
    assert_eq!(
        browse(&hub, "/tokens", Some(&by_token)).await.status,
        StatusCode::OK
    );

    let revoked = post(
        &hub,
        "/tokens",
        &cookie,
        None,
        &format!("csrf={csrf}&{revoke}"),
    )
    .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(
        hub.call("GET", "/api/flist/me", Some(token)).await.status,
        401
    );
    let ended = browse(&hub, "/tokens", Some(&by_token)).await;
    assert_eq!(
        ended.status,
        StatusCode::SEE_OTHER,
        "the token's session ended"
    );

    // Logout: the old cookie no longer works, and the session's own token is revoked.
    let out = post(&hub, "/logout", &cookie, None, &format!("csrf={csrf}")).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let after = browse(&hub, "/tokens", Some(&cookie)).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.headers[header::LOCATION], "/login");
    assert!(
        hub.hub
            .tokens()
            .list()
            .unwrap()
            .iter()
            .filter(|t| t.note.as_deref() == Some("web session") && t.user == "alice")
            .all(|t| t.revoked.is_some())
    );
}

/// A gzip'd tar of the files given (path, content).
fn archive(files: &[(&str, String)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder
            .append_data(&mut header, path, content.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// The text of the `<dd>` after `<dt>label</dt>` on a page, tags removed.
fn fact(page: &str, label: &str) -> String {
    let start = page
        .find(&format!("<dt>{label}</dt><dd>"))
        .unwrap_or_else(|| panic!("no {label:?} on the page: {page}"));
    let rest = &page[start + label.len() + 13..];
    let dd = &rest[..rest.find("</dd>").unwrap()];
    let mut text = String::new();
    for (i, piece) in dd.split(['<', '>']).enumerate() {
        if i % 2 == 0 {
            text.push_str(piece);
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn the_page_says_how_much_content_other_flists_hold() {
    let hub = TestHub::open(AUTH).await;
    let alice = hub.token("alice");
    let common = "shared by two flists\n".repeat(50); // 1,050 bytes
    let one = archive(&[("etc/common", common.clone()), ("etc/one", "1".repeat(450))]);
    let two = archive(&[
        ("srv/common", common.clone()),
        ("srv/two", "2".repeat(3150)),
    ]);
    let lone = archive(&[("lone", "only here\n".repeat(70))]);
    for (name, bytes) in [
        ("one.tar.gz", &one),
        ("two.tar.gz", &two),
        ("lone.tar.gz", &lone),
    ] {
        let up = hub.upload(Some(&alice), name, bytes).await;
        assert_eq!(up.status, 200, "{}", up.text());
    }
    let shared = |name: &'static str| {
        let hub = &hub;
        async move {
            fact(
                &browse(hub, &format!("/alice/{name}.md"), None).await.text(),
                "Shared content",
            )
        }
    };
    assert_eq!(
        shared("one.flist").await,
        "70% of its content (1.0 KiB of 1.5 KiB) is also held by other flists on the hub"
    );
    assert!(shared("two.flist").await.starts_with("25% of its content"));
    assert!(shared("lone.flist").await.starts_with("0% of its content"));
    // A copy is the same file: it shares nothing more.
    let promoted = hub
        .call(
            "POST",
            "/api/flist/me/promote/alice/lone.flist/copy.flist",
            Some(&alice),
        )
        .await;
    assert_eq!(promoted.status, 200, "{}", promoted.text());
    assert!(shared("copy.flist").await.starts_with("0% of its content"));
    // When `two` goes, nothing else holds `common`.
    let gone = hub
        .call("DELETE", "/api/flist/me/two.flist", Some(&alice))
        .await;
    assert_eq!(gone.status, 200, "{}", gone.text());
    assert!(shared("one.flist").await.starts_with("0% of its content"));
}

#[tokio::test]
async fn the_page_says_where_an_flist_came_from() {
    let hub = TestHub::open(AUTH).await;
    let alice = hub.token("alice");
    let up = hub
        .upload(Some(&alice), "app.tar.gz", &archive(&[("a", "a\n".into())]))
        .await;
    assert_eq!(up.status, 200, "{}", up.text());
    let other = hub
        .upload(Some(&alice), "lib.tar", &archive(&[("b", "b\n".into())]))
        .await;
    assert_eq!(other.status, 200, "{}", other.text());
    let source = |name: &'static str| {
        let hub = &hub;
        async move {
            fact(
                &browse(hub, &format!("/alice/{name}.md"), None).await.text(),
                "Source",
            )
        }
    };
    assert_eq!(source("app.flist").await, "uploaded archive app.tar.gz");

    let (request, _) = upload_request("POST", "/api/flist/me/merge/both", Some(&alice), "x", b"");
    let body = r#"["alice/app.flist", "alice/lib.flist"]"#;
    let merged = send(
        &hub,
        request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(merged.status, 200, "{}", merged.text());
    let page = browse(&hub, "/alice/both.flist.md", None).await.text();
    assert_eq!(
        fact(&page, "Source"),
        "merged from alice/app.flist, alice/lib.flist"
    );
    assert!(
        page.contains(r#"<a href="/alice/app.flist.md">alice/app.flist</a>"#),
        "{page}"
    );

    let promoted = hub
        .call(
            "POST",
            "/api/flist/me/promote/alice/app.flist/copy.flist",
            Some(&alice),
        )
        .await;
    assert_eq!(promoted.status, 200, "{}", promoted.text());
    assert_eq!(
        source("copy.flist").await,
        "promoted from alice/app.flist (uploaded archive app.tar.gz)"
    );
    let pushed = flist_file(1, &[("source", r#"{"type":"directory","name":"rootfs"}"#)]);
    let up = hub.upload_flist(Some(&alice), "built.flist", &pushed).await;
    assert_eq!(up.status, 200, "{}", up.text());
    assert_eq!(
        source("built.flist").await,
        "pushed: built by the client from rootfs and uploaded as built.flist"
    );
    let plain = hub
        .upload_flist(Some(&alice), "plain.flist", &flist_file(1, &[]))
        .await;
    assert_eq!(plain.status, 200, "{}", plain.text());
    assert_eq!(
        source("plain.flist").await,
        "uploaded flist file plain.flist"
    );
}

#[tokio::test]
async fn hostile_source_names_are_escaped() {
    let hub = TestHub::open(AUTH).await;
    let alice = hub.token("alice");
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>.tar.gz";
    let up = hub
        .upload(Some(&alice), hostile, &archive(&[("a", "a\n".into())]))
        .await;
    assert_eq!(up.status, 200, "{}", up.text());
    let name = up.json()["payload"]["name"].as_str().unwrap().to_owned();
    let pushed = flist_file(
        1,
        &[(
            "source",
            r#"{"type":"directory","name":"<svg onload=alert(3)>"}"#,
        )],
    );
    let up = hub
        .upload_flist(Some(&alice), "pushed.flist", &pushed)
        .await;
    assert_eq!(up.status, 200, "{}", up.text());
    for (page, shown) in [
        (format!("/alice/{}.md", hub::encode_segment(&name)), hostile),
        ("/alice/pushed.flist.md".into(), "<svg onload=alert(3)>"),
    ] {
        let answer = browse(&hub, &page, None).await;
        assert_eq!(answer.status, 200, "{page}: {}", answer.text());
        let html = answer.text();
        assert!(fact(&html, "Source").contains(shown), "{html}");
        for tag in tags(&html) {
            let tag = tag.to_ascii_lowercase();
            assert!(
                !tag.starts_with("script>") && !tag.starts_with("img") && !tag.starts_with("svg"),
                "{page}: a tag from the source reached the page: <{tag}>"
            );
        }
    }
}

/// A multipart upload to an API route as a page's script sends it: the session cookie,
/// the CSRF header when given, an `Origin` when given, no token.
async fn script_upload(
    hub: &TestHub,
    path: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
    origin: Option<&str>,
    file_name: &str,
    bytes: &[u8],
) -> Answer {
    let (mut request, body) = upload_request("POST", path, None, file_name, bytes);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    if let Some(csrf) = csrf {
        request = request.header("x-flisthub-csrf", csrf);
    }
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    send(hub, request.body(Body::from(body)).unwrap()).await
}

/// Waits for a job to finish; its last state.
async fn finished(hub: &TestHub, id: &str) -> hub::JobStatus {
    for _ in 0..200 {
        let job = hub.hub.jobs().get(id).await.unwrap().unwrap();
        if job.state.finished() {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("job {id} did not finish in 5 s");
}

#[tokio::test]
async fn upload_pages_are_for_logged_in_users() {
    let hub = TestHub::open(AUTH).await;
    hub.hub.accounts().add("alice", PASSWORD, &[]).unwrap();
    for path in ["/upload", "/upload-flist", "/jobs"] {
        let answer = browse(&hub, path, None).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(answer.headers[header::LOCATION], "/login", "{path}");
    }
    // Anonymous pages do not offer them.
    let home = browse(&hub, "/", None).await.text();
    assert!(!home.contains("href=\"/upload\""), "{home}");

    let (cookie, csrf) = log_in(&hub).await;
    let upload = browse(&hub, "/upload", Some(&cookie)).await;
    assert_eq!(upload.status, StatusCode::OK);
    let html = upload.text();
    for shape in [
        "<form class=\"stack upload\" action=\"/upload\" method=\"post\" enctype=\"multipart/form-data\" data-upload=\"archive\"",
        &format!("data-csrf=\"{csrf}\""),
        "data-result=\"/alice/{name}.md\"",
        "accept=\".tar.gz,.tgz,.tar.zst,.tzst,.tar\"",
        "data-job-progress",
        "data-job-log",
        "href=\"/jobs\"",
        "href=\"/upload-flist\"",
    ] {
        assert!(html.contains(shape), "{shape}: {html}");
    }
    assert_eq!(html.matches("<script").count(), 1, "the page's one script");
    let flist = browse(&hub, "/upload-flist", Some(&cookie)).await.text();
    for shape in [
        "action=\"/api/flist/me/upload-flist\"",
        "data-upload=\"flist\"",
        "accept=\".flist,.fl\"",
        "<div class=\"missing\" hidden data-missing",
        "flisthub push",
    ] {
        assert!(flist.contains(shape), "{shape}: {flist}");
    }
    // The navigation leads to both, logged in.
    let home = browse(&hub, "/", Some(&cookie)).await.text();
    assert!(home.contains("<a href=\"/upload\">Upload</a>"), "{home}");
    assert!(home.contains("<a href=\"/jobs\">Jobs</a>"), "{home}");
    let jobs = browse(&hub, "/jobs", Some(&cookie)).await.text();
    assert!(jobs.contains("None yet."), "{jobs}");

    // Without its pages, the hub's GET /upload is a 404 (the API has no page).
    let bare = hub::router(Arc::clone(&hub.hub))
        .oneshot(Request::get("/upload").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_api_takes_a_session_only_with_its_csrf_header() {
    let hub = TestHub::open(AUTH).await;
    hub.hub.accounts().add("alice", PASSWORD, &[]).unwrap();
    hub.hub.accounts().add("bob", PASSWORD, &[]).unwrap();
    let (cookie, csrf) = log_in(&hub).await;
    let bob_csrf = {
        let login = browse(&hub, "/login", None).await;
        let pre = set_cookie(&login, "flisthub-csrf").unwrap();
        let c = csrf_of(&login.text());
        let form = format!("csrf={c}&name=bob&password=correct+horse+battery");
        let bob = set_cookie(
            &post(&hub, "/login", &pre, None, &form).await,
            "flisthub-session",
        )
        .unwrap();
        csrf_of(&browse(&hub, "/tokens", Some(&bob)).await.text())
    };
    let archive = common::tarball("hello");
    // The cookie alone, another session's token, another site, no session: refused.
    for (cookie, csrf, origin, status) in [
        (Some(cookie.as_str()), None, None, StatusCode::UNAUTHORIZED),
        (
            Some(cookie.as_str()),
            Some(bob_csrf.as_str()),
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            Some(cookie.as_str()),
            Some(csrf.as_str()),
            Some("http://evil.example"),
            StatusCode::FORBIDDEN,
        ),
        (None, Some(csrf.as_str()), None, StatusCode::UNAUTHORIZED),
        (
            Some("flisthub-session=00"),
            Some(csrf.as_str()),
            None,
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let answer = script_upload(
            &hub,
            "/upload",
            cookie,
            csrf,
            origin,
            "app.tar.gz",
            &archive,
        )
        .await;
        assert_eq!(answer.status, status, "{cookie:?} {csrf:?} {origin:?}");
        assert!(answer.json()["message"].is_string(), "{}", answer.text());
    }
    assert!(
        hub.hub.jobs().list("alice", 10).await.unwrap().is_empty(),
        "refused uploads started nothing"
    );

    // The session's own token from the hub's origin: the API's answer, as alice.
    let answer = script_upload(
        &hub,
        "/upload",
        Some(&cookie),
        Some(&csrf),
        Some("http://hub.test"),
        "app.tar.gz",
        &archive,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let id = answer.json()["jobid"].as_str().unwrap().to_owned();
    let job = finished(&hub, &id).await;
    assert_eq!(job.owner, "alice");
    assert!(job.error.is_none(), "{:?}", job.error);
    assert_eq!(
        hub.get("/api/flist/alice/app.flist/light").await.status,
        200
    );

    // A bad archive: the job fails with the hub's message, and the jobs page says it.
    let answer = script_upload(
        &hub,
        "/upload",
        Some(&cookie),
        Some(&csrf),
        None,
        "broken.tar.gz",
        b"this is not a tarball at all",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let failed = finished(&hub, answer.json()["jobid"].as_str().unwrap()).await;
    let error = failed.error.clone().expect("the job failed");
    assert_eq!(
        hub.get("/api/flist/alice/broken.flist/light").await.status,
        404
    );
    let jobs = browse(&hub, "/jobs", Some(&cookie)).await.text();
    assert!(
        jobs.contains(&format!("<span class=\"error\">{error}</span>")),
        "{error}: {jobs}"
    );
    assert!(
        jobs.contains("<a href=\"/alice/app.flist.md\" data-job-done>open</a>"),
        "{jobs}"
    );
    assert!(jobs.contains("<td data-job-state>succeeded</td>"), "{jobs}");
    assert!(jobs.contains("<td data-job-state>failed</td>"), "{jobs}");
    assert!(!jobs.contains("data-job=\""), "nothing runs: {jobs}");
}

#[tokio::test]
async fn jobs_page_follows_running_jobs_and_escapes_what_they_say() {
    let hub = TestHub::open(AUTH).await;
    hub.hub.accounts().add("alice", PASSWORD, &[]).unwrap();
    let (cookie, _) = log_in(&hub).await;
    let jobs = hub.hub.jobs();
    let running = jobs
        .create("docker", "alice", "alice", "run<b>.flist", None)
        .await
        .unwrap();
    running.start().await.unwrap();
    running.progress(42, "pulling <img src=x onerror=alert(1)>".into());
    let failed = jobs
        .create("upload", "alice", "alice", "x.flist", None)
        .await
        .unwrap();
    failed
        .fail("bad entry <script>alert(2)</script>".into())
        .await
        .unwrap();
    // Another user's job is not listed.
    jobs.create("upload", "bob", "bob", "bobs.flist", None)
        .await
        .unwrap();

    let page = browse(&hub, "/jobs", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(
        html.contains(&format!("<tr data-job=\"{}\">", running.id())),
        "{html}"
    );
    assert!(
        html.contains("<progress data-job-progress max=\"100\" value=\"42\">"),
        "{html}"
    );
    assert!(
        html.contains("pulling &lt;img src=x onerror=alert(1)&gt;"),
        "{html}"
    );
    assert!(html.contains("run&lt;b&gt;.flist"), "{html}");
    assert!(
        html.contains("bad entry &lt;script&gt;alert(2)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("bobs.flist"), "{html}");
    assert!(!tags(&html).iter().any(|t| t.starts_with("img")), "{html}");
    assert_eq!(html.matches("<script").count(), 1, "{html}");
}

/// A native flist naming one chunk the hub's store does not hold.
fn flist_with_missing_chunk() -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.flist");
    let mut writer = flist::FlistWriter::create(&path).unwrap();
    let node = flist::Node {
        kind: flist::NodeKind::Regular { size: 10 },
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: flist::Timestamp::default(),
    };
    let inode = writer.add(b"data", &node, &[]).unwrap();
    let key = [7u8; 32];
    writer
        .add_chunk(
            inode,
            0,
            &flist::ChunkRef {
                key,
                offset: 0,
                length: 10,
            },
        )
        .unwrap();
    writer.finish().unwrap();
    (std::fs::read(&path).unwrap(), hex::encode(key))
}

#[tokio::test]
async fn upload_flist_refusal_for_missing_chunks_is_explained() {
    let hub = TestHub::open(AUTH).await;
    hub.hub.accounts().add("alice", PASSWORD, &[]).unwrap();
    let (cookie, csrf) = log_in(&hub).await;
    let upload = async |name: &str, bytes: &[u8]| {
        let path = "/api/flist/me/upload-flist";
        script_upload(&hub, path, Some(&cookie), Some(&csrf), None, name, bytes).await
    };
    let (flist, key) = flist_with_missing_chunk();
    let answer = upload("app.flist", &flist).await;
    // What the page's script reads: the hub's message and the missing chunks.
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    let body = answer.json();
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("1 of 1 chunks are missing"), "{message}");
    assert!(message.contains("flisthub push"), "{message}");
    assert_eq!(body["payload"]["missing"], 1);
    assert_eq!(body["payload"]["checked"], 1);
    assert_eq!(body["payload"]["first"], serde_json::json!([key]));
    assert_eq!(
        hub.get("/api/flist/alice/app.flist/light").await.status,
        404
    );
    // The page holds the explanation the script fills in.
    let page = browse(&hub, "/upload-flist", Some(&cookie)).await.text();
    for shape in [
        "data-missing-count",
        "data-missing-checked",
        "data-missing-first",
        "sends the chunks the hub lacks first",
    ] {
        assert!(page.contains(shape), "{shape}: {page}");
    }
    // A flist whose content is there is published, and its page is where the script goes.
    let answer = upload("good.flist", &flist_file(1, &[])).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["payload"]["name"], "good.flist");
    assert_eq!(
        browse(&hub, "/alice/good.flist.md", None).await.status,
        StatusCode::OK
    );
}
