//! Image conversion and merge from the browser (Chromium through chromedriver) against the
//! real `flisthub serve` and the reference registry on loopback: an image converted while
//! the page follows its phases live and lands on the new flist's page (the registry is
//! held still a moment so that a phase is seen before the end); the registry credentials
//! sent with it found in no page, job record, log or file afterwards; another conversion
//! cancelled from its page; one of an image the registry does not have, ending with the
//! hub's message on the page; two flists found with the picker, ordered, merged, and the
//! merged flist's files checked with `flisthub cat`. Screenshots under
//! `target/tmp/screenshots/`.

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::{Browser, assert_inert, click, fill, log_in, text, wait_for};
use common::hub::{HubServer, tar_gz};
use common::images::{PRIVATE_NETWORKS, assert_kept_nowhere, job, push_image};
use common::{flisthub, ok};
use fantoccini::{Client, Locator};
use testkit::RegistryServer;

const PASSWORD: &str = "correct horse battery";
/// Sent with the first conversion (the registry is open and ignores them): neither may be
/// found anywhere afterwards.
const USERNAME: &str = "browser-puller-577";
const SECRET: &str = "browser-registry-secret-881";

/// The platform of the images umoci makes here: the machine's.
fn platform() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "linux/arm64",
        _ => "linux/amd64",
    }
}

/// Runs blocking client calls (reqwest's blocking client) off the browser's runtime.
fn outside<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(work).join().unwrap())
}

/// Fills the conversion form and sends it; the job's id, from the page it leads to.
async fn convert(c: &Client, url: &str, image: &str, name: &str, credentials: bool) -> String {
    c.goto(&format!("{url}/docker-convert")).await.unwrap();
    fill(c, "convert-image", image).await;
    fill(c, "convert-name", name).await;
    c.find(Locator::Id("convert-platform"))
        .await
        .unwrap()
        .select_by_value(platform())
        .await
        .unwrap();
    if credentials {
        fill(c, "convert-username", USERNAME).await;
        fill(c, "convert-password", SECRET).await;
    }
    click(c, "form[action='/docker-convert'] button[type=submit]").await;
    wait_for(c, "the job's page", async || {
        c.current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/docker-convert/")
    })
    .await;
    let path = c.current_url().await.unwrap().path().to_owned();
    path.trim_start_matches("/docker-convert/").to_owned()
}

#[test]
fn convert_watch_cancel_fail_and_merge() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let Some(registry) = RegistryServer::start() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    push_image(
        &registry,
        work.path(),
        "test/app:v1",
        &[("hello", b"hello from the image\n".to_vec())],
    );
    let image = format!("{}/test/app:v1", registry.host());
    let hub = HubServer::start(PRIVATE_NETWORKS);
    hub.add_user("alice", PASSWORD, &[]);
    let alice = hub.token("alice", &[]);

    // Two flists to merge: `etc/motd` in both, one file only in each.
    let sources = tempfile::tempdir().unwrap();
    for (name, motd, only) in [
        ("base", "base motd\n", "only-base"),
        ("top", "top motd\n", "only-top"),
    ] {
        let dir = sources.path().join(name);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("etc/motd"), motd).unwrap();
        std::fs::write(dir.join(only), name).unwrap();
        let answer = hub.upload(&alice, &format!("{name}.tar.gz"), tar_gz(&dir));
        assert_eq!(answer.status(), 200, "{}", answer.text().unwrap());
    }

    browser.run(async |b: &Browser| {
        let c = &b.client;
        log_in(c, &hub.url, "alice", PASSWORD).await;

        // 1. Converted with the page following it: the registry is held still, so the job
        // stays in its pull phase, shown live; let go, the page ends on the flist's page.
        c.find(Locator::LinkText("Convert an image")).await.unwrap();
        b.screenshot("convert-form").await;
        registry.pause();
        let first = convert(c, &hub.url, &image, "converted", true).await;
        wait_for(c, "the pull phase in the log", async || {
            c.find(Locator::XPath("//ol[@data-job-log]/li[starts-with(., 'Pulling docker image')]"))
                .await
                .is_ok()
        })
        .await;
        assert_eq!(text(c, "b[data-job-state]").await, "running");
        let progress = c
            .execute("return document.querySelector('progress[data-job-progress]').value", vec![])
            .await
            .unwrap();
        assert_eq!(progress, serde_json::json!(10));
        b.screenshot("convert-progress").await;
        registry.resume();
        wait_for(c, "the flist's page", async || {
            c.current_url().await.unwrap().path() == "/alice/converted.flist.md"
        })
        .await;
        let page = c.source().await.unwrap();
        assert!(page.contains(&image), "the page names the image it came from");
        b.screenshot("convert-done").await;
        let record = outside(|| job(&hub, &alice, &first));
        assert_eq!(record["state"], "succeeded", "{record}");
        assert_eq!(record["request"]["credentials"], true, "{record}");
        let local = work.path().join("converted.flist");
        let bytes = outside(|| hub.get("/alice/converted.flist").bytes().unwrap());
        std::fs::write(&local, bytes).unwrap();
        let cat = ok(flisthub(work.path(), args!["cat", local, "hello"]));
        assert_eq!(cat.stdout, b"hello from the image\n");

        // The credentials went nowhere: not the pages, the job's record, the log, the
        // data directory.
        c.goto(&format!("{}/docker-convert/{first}", hub.url))
            .await
            .unwrap();
        let mut seen = c.source().await.unwrap().into_bytes();
        seen.extend(record.to_string().into_bytes());
        assert_kept_nowhere(&hub, seen, &[SECRET, USERNAME]);

        // 2. Cancelled from its page while it waits for the registry.
        registry.pause();
        let second = convert(c, &hub.url, &image, "cancelled", false).await;
        wait_for(c, "the job to run", async || {
            text(c, "b[data-job-state]").await == "running"
        })
        .await;
        click(c, "[data-job-cancel] button").await;
        wait_for(c, "the page to say it was cancelled", async || {
            c.find(Locator::XPath("//p[@data-job-error][starts-with(., 'Cancelled')]"))
                .await
                .is_ok()
        })
        .await;
        assert_eq!(text(c, "b[data-job-state]").await, "cancelled");
        assert!(c.find(Locator::Css("[data-job-cancel]")).await.is_err());
        b.screenshot("convert-cancelled").await;
        registry.resume();
        assert_eq!(outside(|| job(&hub, &alice, &second))["state"], "cancelled");
        assert_eq!(outside(|| hub.get("/alice/cancelled.flist").status()), 404);

        // 3. An image the registry does not have: the hub's message, in words.
        let missing = format!("{}/test/none:v1", registry.host());
        let third = convert(c, &hub.url, &missing, "missing", false).await;
        wait_for(c, "the error", async || {
            c.find(Locator::Css("[data-job-error]:not([hidden])"))
                .await
                .is_ok()
        })
        .await;
        let failed = outside(|| job(&hub, &alice, &third));
        assert_eq!(failed["state"], "failed", "{failed}");
        let message = failed["error"].as_str().unwrap();
        assert!(!message.is_empty());
        assert_eq!(text(c, "[data-job-error]").await, message);
        assert_eq!(text(c, "b[data-job-state]").await, "failed");
        assert_inert(c).await;
        b.screenshot("convert-failed").await;

        // 4. Merge: two sources found with the picker, the second moved first, so its
        // files win.
        click(c, "header a[href='/merge']").await;
        for (typed, source) in [("base", "alice/base.flist"), ("top", "alice/top.flist")] {
            fill(c, "merge-search", typed).await;
            let add = format!("#merge-results button[data-add='{source}']");
            wait_for(c, "the search's answer", async || {
                c.find(Locator::Css(&add)).await.is_ok()
            })
            .await;
            click(c, &add).await;
        }
        click(c, "#merge-chosen li[data-source='alice/top.flist'] button[data-move='up']").await;
        let order = c
            .execute(
                "return [...document.querySelectorAll('#merge-chosen input[name=source]')].map(i => i.value)",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(order, serde_json::json!(["alice/top.flist", "alice/base.flist"]));
        assert_eq!(
            text(c, "#merge-chosen li:first-child .rank").await,
            "wins on every path it holds"
        );
        fill(c, "merge-target", "merged").await;
        b.screenshot("merge").await;
        click(c, "form[action='/merge'] button[type=submit]").await;
        wait_for(c, "the merged flist's page", async || {
            c.current_url().await.unwrap().path() == "/alice/merged.flist.md"
        })
        .await;
        assert!(c.source().await.unwrap().contains("merged from"));
        let local = work.path().join("merged.flist");
        let bytes = outside(|| hub.get("/alice/merged.flist").bytes().unwrap());
        std::fs::write(&local, bytes).unwrap();
        let motd = ok(flisthub(work.path(), args!["cat", local, "etc/motd"]));
        assert_eq!(motd.stdout, b"top motd\n");
        for (path, content) in [("only-base", "base"), ("only-top", "top")] {
            let got = ok(flisthub(work.path(), args!["cat", local, path]));
            assert_eq!(got.stdout, content.as_bytes(), "{path}");
        }
    });
}
