//! The web pages in a real browser: Debian's Chromium, driven through chromedriver by a
//! WebDriver client, against the real `flisthub serve`. Browsing from the home page to an
//! flist and copying its URL, search, hostile metadata left inert, logging in with an
//! account and with a token, tokens made, used and revoked, switching identity, logging
//! out. Each page is saved as a screenshot under `target/tmp/screenshots/`.

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::{Browser, assert_inert, log_in, wait_for};
use common::hub::{HubServer, raw_request};
use fantoccini::{Client, Locator};
use serde_json::json;

const PASSWORD: &str = "correct horse battery";

/// A native flist whose metadata carries markup and script in every shape a page might
/// render: a readme, a JSON value, a plain string.
fn hostile_flist() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.flist");
    let mut writer = flist::FlistWriter::create(&path).unwrap();
    let readme = json!({"readme": "# Hello\n\nBuilt **with care**.\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n[click](javascript:alert(3)) <a href=\"javascript:alert(4)\">b</a>"});
    writer.metadata_mut().set("readme", readme.to_string());
    writer.metadata_mut().set(
        "entrypoint",
        r#"["/bin/sh", "<img src=x onerror=alert(5)>"]"#,
    );
    writer
        .metadata_mut()
        .set("note", "<script>alert(6)</script>\"><svg onload=alert(7)>");
    let node = flist::Node {
        kind: flist::NodeKind::Regular { size: 0 },
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: flist::Timestamp::default(),
    };
    writer.add(b"empty", &node, &[]).unwrap();
    writer.finish().unwrap();
    std::fs::read(&path).unwrap()
}

fn upload_flist(hub: &HubServer, token: &str, name: &str, bytes: Vec<u8>) {
    let form = reqwest::blocking::multipart::Form::new().part(
        "file",
        reqwest::blocking::multipart::Part::bytes(bytes).file_name(name.to_owned()),
    );
    let answer = hub
        .with(reqwest::Method::POST, "/api/flist/me/upload-flist", token)
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().unwrap());
}

#[test]
fn browse_to_an_flist_copy_its_url_and_search() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let hub = HubServer::start("");
    let alice = hub.token("alice", &[]);
    upload_flist(&hub, &alice, "app.flist", hostile_flist());
    let answer = hub.upload(&alice, "tools.tar.gz", common::hub::small_tarball("tools"));
    assert_eq!(answer.status(), 200);

    browser.run(async |b: &Browser| {
        let c = &b.client;
        c.goto(&hub.url).await.unwrap();
        assert_eq!(c.title().await.unwrap(), "Repositories · flisthub");
        b.screenshot("home").await;
        c.find(Locator::LinkText("alice"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        assert!(c.current_url().await.unwrap().path().ends_with("/alice"));
        b.screenshot("repository").await;
        c.find(Locator::LinkText("app.flist"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        assert!(
            c.current_url()
                .await
                .unwrap()
                .path()
                .ends_with("/alice/app.flist.md")
        );

        // The download URL's copy button: shown by the page's script, and it copies.
        let copy = c
            .find(Locator::Css("button.copy[aria-label='Copy download URL']"))
            .await
            .unwrap();
        let url = copy.attr("data-copy").await.unwrap().unwrap();
        assert!(url.ends_with("/alice/app.flist"), "{url}");
        copy.click().await.unwrap();
        wait_for(c, "the copy button to say it copied", async || {
            copy.text().await.unwrap() == "Copied"
        })
        .await;
        let copied = c
            .execute_async(
                "navigator.clipboard.readText().then(arguments[0], () => arguments[0](null))",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            copied.as_str(),
            Some(url.as_str()),
            "the clipboard holds the URL"
        );

        // The readme is rendered; none of the hostile markup became markup.
        let readme = c.find(Locator::Css("div.readme h1")).await.unwrap();
        assert_eq!(readme.text().await.unwrap(), "Hello");
        assert_inert(c).await;
        b.screenshot("flist").await;

        // At phone width nothing runs off the side.
        c.set_window_size(390, 844).await.unwrap();
        let overflow = c
            .execute(
                "return document.documentElement.scrollWidth - window.innerWidth",
                vec![],
            )
            .await
            .unwrap();
        assert!(overflow.as_i64().unwrap() <= 0, "{overflow} px too wide");
        b.screenshot("flist-phone").await;
        c.set_window_size(1280, 900).await.unwrap();

        // Search from the header's box.
        let q = c.find(Locator::Id("q")).await.unwrap();
        q.send_keys("tools").await.unwrap();
        q.send_keys("\u{E007}").await.unwrap(); // Enter
        wait_for(c, "the search results", async || {
            c.current_url().await.unwrap().path() == "/search"
        })
        .await;
        c.find(Locator::LinkText("alice/tools.flist"))
            .await
            .unwrap();
        assert!(c.find(Locator::LinkText("alice/app.flist")).await.is_err());
        b.screenshot("search").await;
    });
}

#[test]
fn accounts_tokens_and_sessions() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let hub = HubServer::start("");
    hub.add_user("alice", PASSWORD, &["team"]);
    let bob = hub.token("bob", &[]);
    let api = |token: &str| {
        raw_request(
            &hub.url,
            "GET",
            "/api/flist/me",
            &[format!("Authorization: Bearer {token}")],
        )
        .0
    };

    browser.run(async |b: &Browser| {
        let c = &b.client;
        // A wrong password is refused on the page.
        log_in(c, &hub.url, "alice", "wrong").await;
        let error = c.find(Locator::Css("p.error")).await.unwrap();
        assert_eq!(error.text().await.unwrap(), "Wrong account or password.");
        b.screenshot("login").await;
        log_in(c, &hub.url, "alice", PASSWORD).await;
        c.find(Locator::Css("select#active")).await.unwrap();

        // A token made on the page works with curl until it is revoked.
        c.goto(&format!("{}/tokens", hub.url)).await.unwrap();
        c.find(Locator::Id("note"))
            .await
            .unwrap()
            .send_keys("ci <b>deploys</b>")
            .await
            .unwrap();
        c.find(Locator::Css("form[action='/tokens'] button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let token = c
            .find(Locator::Css("div.secret code"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        b.screenshot("tokens").await;
        assert_eq!(api(&token), 200);
        let note = c
            .find(Locator::XPath("//td[text()='ci <b>deploys</b>']"))
            .await;
        assert!(note.is_ok(), "the note is shown as text");
        c.find(Locator::XPath(
            "//tr[td='ci <b>deploys</b>']//button[text()='Revoke']",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
        wait_for(c, "the token to show as revoked", async || {
            c.find(Locator::XPath(
                "//tr[td='ci <b>deploys</b>']/td[text()='revoked']",
            ))
            .await
            .is_ok()
        })
        .await;
        assert_eq!(api(&token), 401);

        // Acting as the team: the page says so, and sets 0-hub's cookie for API calls.
        let select = c.find(Locator::Css("select#active")).await.unwrap();
        select.select_by_value("team").await.unwrap();
        c.find(Locator::XPath("//form[@action='/account']//button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for(c, "the switch", async || {
            c.get_named_cookie("active-user")
                .await
                .is_ok_and(|cookie| cookie.value() == "team")
        })
        .await;
        let selected = c
            .find(Locator::Css("select#active option:checked"))
            .await
            .unwrap();
        assert_eq!(selected.text().await.unwrap(), "team");

        // Logging out ends the session: its cookie opens nothing afterwards.
        let session = c.get_named_cookie("flisthub-session").await.unwrap();
        let cookie = format!("Cookie: flisthub-session={}", session.value());
        let tokens_page =
            |cookie: &str| raw_request(&hub.url, "GET", "/tokens", &[cookie.to_owned()]).0;
        assert_eq!(tokens_page(&cookie), 200);
        c.find(Locator::XPath("//form[@action='/logout']//button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for(c, "the login link", async || {
            c.find(Locator::LinkText("Log in")).await.is_ok()
        })
        .await;
        assert_eq!(
            tokens_page(&cookie),
            303,
            "the old session cookie still works"
        );

        // Logging in with an API token instead.
        c.goto(&format!("{}/login", hub.url)).await.unwrap();
        c.find(Locator::Id("token"))
            .await
            .unwrap()
            .send_keys(&bob)
            .await
            .unwrap();
        c.find(Locator::XPath("//input[@id='token']/../button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let who = c.find(Locator::Css("div.who b")).await.unwrap();
        assert_eq!(who.text().await.unwrap(), "bob");
    });
}

/// Runs `f` on a thread of its own: the hub's blocking client must not run (and drop its
/// runtime) inside the browser's.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

/// Records, in `sessionStorage` (which outlives the navigation to the flist's page), every
/// value the upload page's progress bars and log take while it runs.
const RECORD_PROGRESS: &str = "
    const record = () => {
        const value = (s) => { const e = document.querySelector(s); return e ? e.value : null; };
        const seen = JSON.parse(sessionStorage.getItem('seen') || '{\"sent\": [], \"built\": []}');
        seen.sent.push(value('[data-transfer-progress]'));
        seen.built.push(value('[data-job-progress]'));
        seen.log = [...document.querySelectorAll('[data-job-log] li')].map(l => l.textContent);
        sessionStorage.setItem('seen', JSON.stringify(seen));
    };
    new MutationObserver(record).observe(document.body,
        {subtree: true, childList: true, attributes: true, characterData: true});";

/// Follows the link with `text`.
async fn follow(c: &Client, text: &str) {
    c.wait()
        .at_most(std::time::Duration::from_secs(10))
        .for_element(Locator::LinkText(text))
        .await
        .unwrap_or_else(|e| panic!("no link {text:?}: {e}"))
        .click()
        .await
        .unwrap();
}

/// The path of the page shown.
async fn path_of(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_owned()
}

/// Chooses `file` in the page's upload form and sends it.
async fn send_file(c: &Client, file: &std::path::Path) {
    c.find(Locator::Id("file"))
        .await
        .unwrap()
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    c.find(Locator::Css("form[data-upload] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The text of the first shown alert of the page, once there is one.
async fn shown_error(c: &Client, selector: &str) -> String {
    let mut text = String::new();
    wait_for(c, "an error on the page", async || {
        if let Ok(e) = c.find(Locator::Css(selector)).await
            && e.attr("hidden").await.unwrap().is_none()
        {
            text = e.text().await.unwrap();
            return !text.is_empty();
        }
        false
    })
    .await;
    text
}

#[test]
fn upload_an_archive_follow_it_to_its_page_and_see_refusals_in_words() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let hub = HubServer::start("");
    hub.add_user("alice", PASSWORD, &[]);
    let alice = hub.token("alice", &[]);
    let work = tempfile::tempdir().unwrap();
    // A tree with a name carrying markup and 3 MiB that do not compress (several progress
    // events on the way up).
    let tree = work.path().join("tree");
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::write(tree.join("etc/motd"), "hello\n").unwrap();
    std::fs::write(tree.join("<b>bold & <i>.txt"), "inert\n").unwrap();
    let noise: Vec<u8> = (0..3u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(tree.join("blob"), &noise).unwrap();
    // A file name carrying markup: the flist is named after its safe part, and the page
    // shows the name sent as text.
    let archive = work.path().join("<img src=x onerror=alert(1)>app.tar.gz");
    std::fs::write(&archive, common::hub::tar_gz(&tree)).unwrap();
    let broken = work.path().join("broken.tar.gz");
    std::fs::write(&broken, b"\x1f\x8b this is no gzip stream, nor a tarball").unwrap();
    let hostile = work.path().join("<img src=x onerror=alert(1)>.zip");
    std::fs::write(&hostile, b"PK").unwrap();

    browser.run(async |b: &Browser| {
        let c = &b.client;
        log_in(c, &hub.url, "alice", PASSWORD).await;
        follow(c, "Upload").await;
        assert_eq!(path_of(c).await, "/upload");
        c.execute(RECORD_PROGRESS, vec![]).await.unwrap();
        send_file(c, &archive).await;
        let page = "/alice/img_srcx_onerroralert1app.flist.md";
        wait_for(c, "the new flist's page", async || path_of(c).await == page).await;
        assert_eq!(
            c.title().await.unwrap(),
            "img_srcx_onerroralert1app.flist · flisthub"
        );
        let source = c
            .find(Locator::XPath(
                "//dt[text()='Source']/following-sibling::dd[1]",
            ))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(
            source,
            "uploaded archive <img src=x onerror=alert(1)>app.tar.gz"
        );
        assert_inert(c).await;
        b.screenshot("upload-done").await;
        let seen = c
            .execute("return JSON.parse(sessionStorage.getItem('seen'))", vec![])
            .await
            .unwrap();
        let values = |key: &str| -> Vec<f64> {
            seen[key]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|v| v.as_f64())
                .collect()
        };
        let sent = values("sent");
        assert_eq!(sent.last(), Some(&100.0), "the bytes reached 100%: {seen}");
        assert!(values("built").contains(&100.0), "{seen}");
        let log: Vec<&str> = seen["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert_eq!(log.last(), Some(&"Image ready !"), "{seen}");
        // The flist is published and lists the files of the tree.
        let contents: serde_json::Value = off_runtime(|| {
            hub.get("/api/flist/alice/img_srcx_onerroralert1app.flist")
                .json()
                .unwrap()
        });
        let mut paths: Vec<&str> = contents["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        paths.sort_unstable();
        assert_eq!(paths, ["/<b>bold & <i>.txt", "/blob", "/etc", "/etc/motd"]);
        assert_eq!(contents["fullsize"], noise.len() + 6 + 6);
        // Its name with markup is text in its file browser.
        follow(c, "Browse the files").await;
        c.find(Locator::LinkText("<b>bold & <i>.txt"))
            .await
            .unwrap();
        assert_inert(c).await;

        // A broken archive: sent, then the conversion fails, in the hub's words.
        c.goto(&format!("{}/upload", hub.url)).await.unwrap();
        send_file(c, &broken).await;
        let error = shown_error(c, "[data-job-error]").await;
        let jobs: serde_json::Value = off_runtime(|| {
            hub.with(reqwest::Method::GET, "/api/v1/jobs", &alice)
                .send()
                .unwrap()
                .json()
                .unwrap()
        });
        let failed = jobs
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == "broken.flist")
            .unwrap();
        assert_eq!(failed["state"], "failed");
        assert_eq!(error, failed["error"].as_str().unwrap());
        assert!(!error.contains("undefined"), "{error}");
        assert_eq!(
            off_runtime(|| hub.get("/api/flist/alice/broken.flist/light").status()),
            404
        );
        b.screenshot("upload-failed").await;

        // A file the hub refuses at once: its message (the name in it escaped by the hub).
        c.goto(&format!("{}/upload", hub.url)).await.unwrap();
        send_file(c, &hostile).await;
        let refused = shown_error(c, "[data-upload-error]").await;
        assert!(
            refused.starts_with(
                "this file is not allowed: \"\\u{3c}img src=x onerror=alert(1)\\u{3e}.zip\""
            ),
            "{refused}"
        );
        assert_inert(c).await;

        // The jobs page: both, with their outcome and a link to the flist.
        follow(c, "Jobs").await;
        let states: Vec<String> = {
            let mut out = Vec::new();
            for cell in c
                .find_all(Locator::Css("td[data-job-state]"))
                .await
                .unwrap()
            {
                out.push(cell.text().await.unwrap());
            }
            out
        };
        assert_eq!(states, ["failed", "succeeded"]);
        b.screenshot("jobs").await;
        follow(c, "open").await;
        assert_eq!(path_of(c).await, page);
    });
}
