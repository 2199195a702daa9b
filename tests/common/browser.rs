//! A real browser for the web tests: Debian's Chromium in headless mode, driven through its
//! own chromedriver on a free loopback port (`scripts/install-deps` installs both). Included
//! by the browser tests with `#[path]`, beside `common`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

/// No alert is open, the page's one script is its own, and no event handler attribute,
/// `javascript:` link or injected element reached the DOM.
pub async fn assert_inert(c: &Client) {
    assert!(c.get_alert_text().await.is_err(), "an alert fired");
    let found = c
        .execute(
            "return {
                scripts: [...document.scripts].map(s => new URL(s.src || 'inline:', location).pathname)
                    .filter(p => !(p.startsWith('/static/app-') && p.endsWith('.js'))),
                handlers: document.querySelectorAll('[onerror],[onload],[onclick]').length,
                javascript: document.querySelectorAll('a[href^=\"javascript:\" i]').length,
                injected: document.querySelectorAll('img[src=x],svg').length,
            }",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        found,
        json!({"scripts": [], "handlers": 0, "javascript": 0, "injected": 0})
    );
}

/// Waits up to 10 s for `condition`.
pub async fn wait_for(c: &Client, what: &str, mut condition: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = c.source().await.unwrap_or_default();
    panic!("waited 10 s for {what}; the page:\n{page}");
}

/// Fills and sends the login form with an account and password.
pub async fn log_in(c: &Client, url: &str, name: &str, password: &str) {
    c.goto(&format!("{url}/login")).await.unwrap();
    fill(c, "name", name).await;
    fill(c, "password", password).await;
    // The first of the page's two forms: by account (the other takes a token).
    let form = c.find(Locator::Css("form[action='/login']")).await.unwrap();
    click(c, "form[action='/login'] button[type=submit]").await;
    // The click returns before the browser leaves the page: wait until the form is gone
    // (its element stale), so that what follows looks at the answer, not at this page.
    for _ in 0..200 {
        if form.is_displayed().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the login form as {name} was not answered within 10 s");
}

/// Replaces the text of the field with id `id`.
pub async fn fill(c: &Client, id: &str, text: &str) {
    let field = c
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no field #{id}: {e}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Clicks the first element `css` matches.
pub async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("nothing matches {css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// The text of the first element `css` matches.
pub async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("nothing matches {css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Headless Chromium driven by its own chromedriver on a free loopback port.
pub struct Browser {
    pub client: Client,
    driver: Child,
    runtime: tokio::runtime::Runtime,
    _profile: tempfile::TempDir,
    downloads: tempfile::TempDir,
}

impl Browser {
    /// `None`, after saying why, when Chromium or chromedriver is not installed
    /// (`scripts/install-deps` installs both).
    pub fn start() -> Option<Browser> {
        for program in ["chromium", "chromedriver"] {
            if !crate::common::have(program) {
                println!("SKIP: {program} is not installed (scripts/install-deps installs it)");
                return None;
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let capabilities = json!({
            "goog:chromeOptions": {
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900", "--lang=en-GB",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                // Pages on loopback may use the clipboard without asking (the copy buttons).
                "prefs": {
                    "profile.content_settings.exceptions.clipboard": {
                        "http://127.0.0.1:*,*": {"setting": 1}
                    },
                    // Downloads land in the test's directory, without asking.
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                },
            }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = runtime.block_on(async {
            // chromedriver takes a moment to listen.
            let mut last = None;
            for _ in 0..100 {
                match ClientBuilder::new(HttpConnector::new())
                    .capabilities(capabilities.clone())
                    .connect(&format!("http://127.0.0.1:{port}"))
                    .await
                {
                    Ok(client) => return client,
                    Err(e) => last = Some(e),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("no WebDriver session: {last:?}");
        });
        Some(Browser {
            client,
            driver,
            runtime,
            _profile: profile,
            downloads,
        })
    }

    /// Runs the browser part of a test, then closes the browser.
    pub fn run(mut self, test: impl AsyncFnOnce(&Browser)) {
        let runtime = std::mem::replace(
            &mut self.runtime,
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
        );
        runtime.block_on(async {
            test(&self).await;
            let _ = self.client.clone().close().await;
        });
    }

    /// Saves the page as `target/tmp/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

impl Browser {
    /// Where the browser saves downloads.
    pub fn downloads(&self) -> &Path {
        self.downloads.path()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
