//! The file browser and the diff in process (`oneshot` on the composed router): listings,
//! file views and downloads compared with the bytes the tarball held, the filter, names
//! carrying markup, newlines and bytes that are not UTF-8 shown as text and reachable by
//! their links, nothing outside the flist reachable, and the diff's rows and its cap.

#[path = "../../hub/tests/common/mod.rs"]
mod common;

use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{Answer, TestHub, flist_file};
use tower::ServiceExt;

/// A browser's GET (`html`) or a client's.
async fn get(hub: &TestHub, path: &str, html: bool) -> Answer {
    let mut request = Request::get(path);
    if html {
        request = request.header(header::ACCEPT, "text/html");
    }
    let response = web::app(Arc::clone(&hub.hub))
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    Answer::read(response).await
}

async fn page(hub: &TestHub, path: &str) -> String {
    let answer = get(hub, path, true).await;
    assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text());
    answer.text()
}

enum Item<'a> {
    File(&'a [u8], Vec<u8>, u32),
    Link(&'a [u8], &'a [u8]),
}

/// A gzip'd tar of `items` (names as raw bytes).
fn tarball(items: &[Item]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for item in items {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        let (path, content, mode) = match item {
            Item::File(path, content, mode) => {
                header.set_entry_type(tar::EntryType::Regular);
                (path, &content[..], *mode)
            }
            Item::Link(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header
                    .set_link_name(std::ffi::OsStr::from_bytes(target))
                    .unwrap();
                (path, &[][..], 0o777)
            }
        };
        header.set_mode(mode);
        header.set_size(content.len() as u64);
        header.set_path(std::ffi::OsStr::from_bytes(path)).unwrap();
        header.set_cksum();
        builder.append(&header, content).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// The `href` of the link whose text is `text`.
fn href_of(page: &str, text: &str) -> String {
    let end = page
        .find(&format!(">{text}</a>"))
        .unwrap_or_else(|| panic!("no link {text:?} in {page}"));
    let start = page[..end].rfind("href=\"").unwrap() + 6;
    let stop = start + page[start..].find('"').unwrap();
    page[start..stop].replace("&amp;", "&")
}

fn binary() -> Vec<u8> {
    (0..3000u32).map(|i| (i * 7 % 256) as u8).collect()
}

async fn app_hub() -> (TestHub, String) {
    let hub = TestHub::open("").await;
    let alice = hub.token("alice");
    let items = [
        Item::File(b"etc/hosts", b"127.0.0.1 localhost\n".to_vec(), 0o644),
        Item::Link(b"etc/link", b"hosts"),
        Item::File(b"bin/tool", binary(), 0o4755),
        Item::File(b"usr/share/big.txt", b"x".repeat(300 << 10), 0o644),
        Item::File(b"<script>alert(1)", b"markup\n".to_vec(), 0o644),
        Item::File(b"new\nline", b"newline\n".to_vec(), 0o644),
        Item::File(b"odd\xff\xfe", b"not utf-8\n".to_vec(), 0o600),
        Item::File(b"sp ace#?%.txt", b"spaces\n".to_vec(), 0o644),
        Item::Link(b"evil", b"\"><img src=x onerror=alert(2)>"),
    ];
    let up = hub
        .upload(Some(&alice), "app.tar.gz", &tarball(&items))
        .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.text());
    (hub, alice)
}

#[tokio::test]
async fn directories_list_and_files_open_and_download() {
    let (hub, alice) = app_hub().await;
    // The flist's page links to its files.
    let preview = page(&hub, "/alice/app.flist.md").await;
    assert_eq!(
        href_of(&preview, "Browse the files"),
        "/alice/app.flist/tree/"
    );

    let root = page(&hub, "/alice/app.flist/tree/").await;
    assert_eq!(href_of(&root, "etc"), "/alice/app.flist/tree/etc");
    assert!(root.contains("drwxr-xr-x"), "{root}");
    assert!(root.contains("8 entries"), "{root}");
    let etc = page(&hub, "/alice/app.flist/tree/etc").await;
    assert!(etc.contains("-rw-r--r--"), "{etc}");
    assert!(etc.contains("lrwxrwxrwx"), "{etc}");
    assert!(etc.contains(" ➔ <code>hosts</code>"), "{etc}");
    assert!(etc.contains("0:0"), "{etc}");
    // Breadcrumbs lead back up.
    assert_eq!(href_of(&etc, "(root)"), "/alice/app.flist/tree/");
    assert_eq!(href_of(&etc, "app.flist"), "/alice/app.flist.md");

    // A small text file is shown; every file downloads as the tarball held it.
    let hosts = page(&hub, &href_of(&etc, "hosts")).await;
    assert!(
        hosts.contains("<pre class=\"file\">127.0.0.1 localhost\n</pre>"),
        "{hosts}"
    );
    for (path, bytes) in [
        ("etc/hosts", b"127.0.0.1 localhost\n".to_vec()),
        ("bin/tool", binary()),
        ("usr/share/big.txt", b"x".repeat(300 << 10)),
    ] {
        let view = page(&hub, &format!("/alice/app.flist/tree/{path}")).await;
        let download = href_of(&view, "Download");
        assert_eq!(
            download,
            format!("/api/v1/flists/alice/app.flist/files/{path}")
        );
        let got = get(&hub, &download, false).await;
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.body, bytes, "{path}");
        if path == "bin/tool" {
            assert!(view.contains("-rwsr-xr-x"), "{view}");
            assert!(view.contains("Not UTF-8 text"), "{view}");
        }
        if path == "usr/share/big.txt" {
            assert!(view.contains("Larger than 256.0 KiB"), "{view}");
        }
    }

    // The filter searches below the directory, ASCII case ignored, on the server.
    let found = page(&hub, "/alice/app.flist/tree/?filter=HOST").await;
    assert!(found.contains("1 path matches"), "{found}");
    assert_eq!(
        href_of(&found, "etc/hosts"),
        "/alice/app.flist/tree/etc/hosts"
    );
    assert!(!found.contains("bin/tool"));
    let none = page(&hub, "/alice/app.flist/tree/usr?filter=hosts").await;
    assert!(none.contains("0 paths match"), "{none}");

    // A link's name opens the same tree; so does the name without its suffix.
    let linked = hub
        .call(
            "GET",
            "/api/flist/me/app.flist/link/latest.flist",
            Some(&alice),
        )
        .await;
    assert_eq!(linked.status, StatusCode::OK, "{}", linked.text());
    let via_link = page(&hub, "/alice/latest.flist/tree/etc").await;
    assert!(via_link.contains("A link to alice/app.flist"), "{via_link}");
    page(&hub, "/alice/app/tree/etc/hosts").await;
}

#[tokio::test]
async fn hostile_names_are_text_and_their_links_work() {
    let (hub, _) = app_hub().await;
    let root = page(&hub, "/alice/app.flist/tree/").await;
    for injected in ["<script>alert", "<img src=x", "onerror=alert(2)>"] {
        assert!(!root.contains(injected), "{injected} in {root}");
    }
    assert!(root.contains("&lt;script&gt;alert(1)"), "{root}");
    assert!(root.contains("new\\nline"), "{root}");
    assert!(root.contains("odd\u{fffd}\u{fffd}"), "{root}");
    assert!(root.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
    for (text, href, content) in [
        (
            "&lt;script&gt;alert(1)",
            "/alice/app.flist/tree/%3Cscript%3Ealert(1)",
            &b"markup\n"[..],
        ),
        (
            "new\\nline",
            "/alice/app.flist/tree/new%0Aline",
            b"newline\n",
        ),
        (
            "odd\u{fffd}\u{fffd}",
            "/alice/app.flist/tree/odd%FF%FE",
            b"not utf-8\n",
        ),
        (
            "sp ace#?%.txt",
            "/alice/app.flist/tree/sp%20ace%23%3F%25.txt",
            b"spaces\n",
        ),
    ] {
        assert_eq!(href_of(&root, text), href);
        let view = page(&hub, href).await;
        let download = href_of(&view, "Download");
        let got = get(&hub, &download, false).await;
        assert_eq!(got.status, StatusCode::OK, "{download}");
        assert_eq!(got.body, content, "{download}");
    }
}

#[tokio::test]
async fn nothing_outside_the_flist_and_nothing_missing_is_reachable() {
    let (hub, _) = app_hub().await;
    for (path, status) in [
        (
            "/alice/app.flist/tree/%2e%2e/%2e%2e/etc/passwd",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/alice/app.flist/tree/etc/%2E%2E/%2E%2E",
            StatusCode::BAD_REQUEST,
        ),
        ("/alice/app.flist/tree/etc/hosts/x", StatusCode::NOT_FOUND),
        ("/alice/app.flist/tree/nothing", StatusCode::NOT_FOUND),
        ("/alice/none.flist/tree/", StatusCode::NOT_FOUND),
        ("/nobody/app.flist/tree/etc", StatusCode::NOT_FOUND),
        ("/alice/app.flist/tree/etc/link/x", StatusCode::NOT_FOUND),
        (
            "/api/v1/flists/alice/app.flist/files/etc/%2e%2e/%2e%2e/x",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/flists/alice/app.flist/files/etc",
            StatusCode::CONFLICT,
        ),
        (
            "/diff?a=alice/app.flist&b=alice/none.flist",
            StatusCode::NOT_FOUND,
        ),
        ("/diff?a=alice&b=alice/app.flist", StatusCode::BAD_REQUEST),
    ] {
        let answer = get(&hub, path, true).await;
        assert_eq!(answer.status, status, "{path}: {}", answer.text());
        if !path.starts_with("/api/") {
            assert!(answer.text().contains("<!DOCTYPE html>"), "{path}");
        }
    }
    // A client that is not a browser gets the API's JSON.
    let answer = get(&hub, "/alice/none.flist/tree/", false).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(answer.json().get("message").is_some());
    let long = format!("/alice/app.flist/tree/?filter={}", "a".repeat(5000));
    assert_eq!(get(&hub, &long, true).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_diff_lists_what_changed_from_the_indexes() {
    let hub = TestHub::open("").await;
    let alice = hub.token("alice");
    let one = [
        Item::File(b"same", b"same\n".to_vec(), 0o644),
        Item::File(b"edited", b"before\n".to_vec(), 0o644),
        Item::File(b"gone", b"gone\n".to_vec(), 0o644),
        Item::File(b"chmod", b"x\n".to_vec(), 0o644),
        Item::File(b"d/<b>x", b"x\n".to_vec(), 0o644),
    ];
    let two = [
        Item::File(b"same", b"same\n".to_vec(), 0o644),
        Item::File(b"edited", b"after!\n".to_vec(), 0o644),
        Item::File(b"chmod", b"x\n".to_vec(), 0o755),
        Item::File(b"new", b"new\n".to_vec(), 0o644),
        Item::File(b"d/<b>x", b"x\n".to_vec(), 0o644),
    ];
    for (name, items) in [("one.tar.gz", &one[..]), ("two.tar.gz", &two[..])] {
        let up = hub.upload(Some(&alice), name, &tarball(items)).await;
        assert_eq!(up.status, StatusCode::OK, "{}", up.text());
    }
    // Tags name them as well as their names do.
    for (tag, source) in [("v1", "one.flist"), ("v2", "two.flist")] {
        let tagged = hub
            .call(
                "GET",
                &format!("/api/flist/me/{tag}/app.flist/tag/alice/{source}"),
                Some(&alice),
            )
            .await;
        assert_eq!(tagged.status, StatusCode::OK, "{}", tagged.text());
    }
    // The repository page offers the comparison of its two newest.
    let repository = page(&hub, "/alice").await;
    assert!(
        repository.contains("<form class=\"stack\" action=\"/diff\""),
        "{repository}"
    );

    for query in [
        "a=alice/one.flist&b=alice/two.flist",
        "a=alice%2Ftags%2Fv1%2Fapp.flist&b=alice/tags/v2/app.flist",
    ] {
        let diff = page(&hub, &format!("/diff?{query}")).await;
        assert!(
            diff.contains("1 added</b>, <b class=\"removed\">1 removed</b>, <b class=\"changed\">2 changed</b>"),
            "{diff}"
        );
        let row = |path: &str| {
            let at = diff
                .find(&format!("\">{path}</a>"))
                .unwrap_or_else(|| panic!("no row {path}: {diff}"));
            let start = diff[..at].rfind("<tr").unwrap();
            let end = at + diff[at..].find("</tr>").unwrap();
            diff[start..end].to_owned()
        };
        assert!(row("new").contains("class=\"added\""));
        assert!(row("new").contains("/alice/two.flist/tree/new"));
        assert!(row("gone").contains("class=\"removed\""));
        assert!(row("gone").contains("/alice/one.flist/tree/gone"));
        assert!(
            row("edited").ends_with("<td>content</td>"),
            "{}",
            row("edited")
        );
        assert!(row("chmod").contains("-rw-r--r--"));
        assert!(row("chmod").contains("-rwxr-xr-x"));
        assert!(row("chmod").ends_with("<td>mode</td>"), "{}", row("chmod"));
        assert!(!diff.contains("\">same</a>"));
        assert!(!diff.contains("<b>x"));
    }

    // A huge diff lists its first rows and counts the rest.
    for (name, files) in [("few.flist", 2), ("many.flist", 1_010)] {
        let up = hub
            .upload_flist(Some(&alice), name, &flist_file(files, &[]))
            .await;
        assert_eq!(up.status, StatusCode::OK, "{}", up.text());
    }
    let diff = page(&hub, "/diff?a=alice/few.flist&b=alice/many.flist").await;
    assert!(diff.contains("1008 added"), "{diff}");
    assert!(
        diff.contains("The first 1000 differences are listed; 8 more are not."),
        "{diff}"
    );
    assert_eq!(diff.matches("<tr class=\"added\"").count(), 1_000);

    // A large directory comes a page at a time.
    let second = page(&hub, "/alice/many.flist/tree/?page=2").await;
    assert!(second.contains("1010 entries, 1001–1010 shown"), "{second}");
    assert_eq!(second.matches("-rw-r--r--").count(), 10);
    assert_eq!(
        href_of(&second, "← Previous"),
        "/alice/many.flist/tree/?page=1"
    );
}
