//! The file browser and the diff in a real browser (Chromium through chromedriver) against
//! the real `flisthub serve`: from an flist's page into its tree, a text file read on the
//! page and a binary one downloaded by the browser, both compared with the bytes of the
//! tree the tarball was made of; then two tags compared, the rows checked against what
//! differs between the two source trees. Screenshots under `target/tmp/screenshots/`.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use browser::{Browser, assert_inert, wait_for};
use common::hub::{HubServer, tar_gz};
use fantoccini::Locator;

/// The two versions' trees: `(path, content, mode)`.
fn version(dir: &Path, v: u8) {
    let tool: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let mut files: Vec<(&str, Vec<u8>, u32)> = vec![
        ("etc/motd", format!("hello v{v}\n").into_bytes(), 0o644),
        ("bin/tool", tool, 0o755),
        ("docs/<script>alert(1).txt", b"inert\n".to_vec(), 0o644),
        ("docs/same.txt", b"same\n".to_vec(), 0o644),
    ];
    if v == 1 {
        files.push(("docs/old.txt", b"old\n".to_vec(), 0o644));
        files.push(("bin/script", b"#!/bin/sh\n".to_vec(), 0o644));
    } else {
        files.push(("docs/new.txt", b"new\n".to_vec(), 0o644));
        files.push(("bin/script", b"#!/bin/sh\n".to_vec(), 0o755));
    }
    for (path, content, mode) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// Every path below `dir` with its content (files) and mode.
fn tree(dir: &Path) -> BTreeMap<String, (Option<Vec<u8>>, u32)> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let relative = path.strip_prefix(dir).unwrap().to_str().unwrap().to_owned();
            let content = meta.is_file().then(|| std::fs::read(&path).unwrap());
            if meta.is_dir() {
                pending.push(path);
            }
            out.insert(relative, (content, meta.permissions().mode() & 0o7777));
        }
    }
    out
}

#[test]
fn browse_open_download_and_diff_two_tags() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let hub = HubServer::start("");
    let alice = hub.token("alice", &[]);
    let sources = tempfile::tempdir().unwrap();
    let (one, two) = (sources.path().join("one"), sources.path().join("two"));
    version(&one, 1);
    version(&two, 2);
    for (name, dir) in [("app-1.tar.gz", &one), ("app-2.tar.gz", &two)] {
        let answer = hub.upload(&alice, name, tar_gz(dir));
        assert_eq!(answer.status(), 200, "{}", answer.text().unwrap());
    }
    for (tag, source) in [("v1", "app-1.flist"), ("v2", "app-2.flist")] {
        let path = format!("/api/flist/me/{tag}/app.flist/tag/alice/{source}");
        let answer = hub
            .with(reqwest::Method::GET, &path, &alice)
            .send()
            .unwrap();
        assert_eq!(answer.status(), 200, "{}", answer.text().unwrap());
    }

    browser.run(async |b: &Browser| {
        let c = &b.client;
        let click = async |text: &str| {
            c.find(Locator::LinkText(text))
                .await
                .unwrap_or_else(|e| panic!("no link {text:?}: {e}"))
                .click()
                .await
                .unwrap();
        };
        c.goto(&format!("{}/alice/app-1.flist.md", hub.url))
            .await
            .unwrap();
        click("Browse the files").await;
        assert!(
            c.current_url()
                .await
                .unwrap()
                .path()
                .ends_with("/alice/app-1.flist/tree/")
        );
        b.screenshot("tree-root").await;
        click("etc").await;
        click("motd").await;
        let shown = c.find(Locator::Css("pre.file")).await.unwrap();
        let motd = std::fs::read_to_string(one.join("etc/motd")).unwrap();
        assert_eq!(shown.text().await.unwrap(), motd.trim_end());
        b.screenshot("tree-file").await;

        // Back up through the breadcrumbs, into bin, and the binary downloaded.
        click("(root)").await;
        click("bin").await;
        click("tool").await;
        c.find(Locator::Css("p.muted")).await.unwrap();
        click("Download").await;
        let saved = b.downloads().join("tool");
        wait_for(c, "the download", async || saved.exists()).await;
        let source = std::fs::read(one.join("bin/tool")).unwrap();
        wait_for(c, "the whole download", async || {
            std::fs::read(&saved).is_ok_and(|got| got == source)
        })
        .await;

        // A name carrying markup is text in the page, and its file opens.
        click("(root)").await;
        click("docs").await;
        assert_inert(c).await;
        click("<script>alert(1).txt").await;
        assert_eq!(
            c.find(Locator::Css("pre.file"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
            "inert"
        );
        assert_inert(c).await;

        // The two tags compared: the rows are what differs between the source trees.
        c.goto(&format!("{}/diff", hub.url)).await.unwrap();
        let field = |id: &'static str| async move { c.find(Locator::Id(id)).await.unwrap() };
        field("diff-a")
            .await
            .send_keys("alice/tags/v1/app.flist")
            .await
            .unwrap();
        field("diff-b")
            .await
            .send_keys("alice/tags/v2/app.flist")
            .await
            .unwrap();
        c.find(Locator::Css("form[action='/diff'] button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for(c, "the differences", async || {
            c.find(Locator::Css("table.diff")).await.is_ok()
        })
        .await;
        b.screenshot("diff").await;
        let mut listed = BTreeMap::new();
        for row in c
            .find_all(Locator::Css("table.diff tbody tr"))
            .await
            .unwrap()
        {
            let class = row.attr("class").await.unwrap().unwrap();
            let path = row
                .find(Locator::Css("td.name a"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            listed.insert(path, class);
        }
        let (before, after) = (tree(&one), tree(&two));
        let mut expected = BTreeMap::new();
        for (path, old) in &before {
            match after.get(path) {
                None => expected.insert(path.clone(), "removed".to_owned()),
                Some(new) if new != old => expected.insert(path.clone(), "changed".to_owned()),
                Some(_) => None,
            };
        }
        for path in after.keys().filter(|p| !before.contains_key(*p)) {
            expected.insert(path.clone(), "added".to_owned());
        }
        assert_eq!(listed, expected);
        assert_inert(c).await;
    });
}
