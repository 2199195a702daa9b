//! The pages in process (`oneshot` on the composed router): shapes, escaping of hostile
//! metadata and readmes, HTML errors for browsers, and the CSRF and session refusals, each
//! checked to leave nothing changed.

#[path = "../../hub/tests/common/mod.rs"]
mod common;
mod forms;


use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{TestHub, flist_file, upload_request};
use forms::{PASSWORD, browse, csrf_of, log_in, post, send, set_cookie};

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
