//! The image conversion and merge pages in process: their shapes, the refusals (no login,
//! no or another session's CSRF token, another site, bad fields), each checked to start or
//! publish nothing; registry credentials absent from every page and job record; a job that
//! fails shows the hub's message; the merge's precedence and the source search's bounds.

/// A form's fields, the status it must get and a word its page must hold.
type Refusal<'a, F> = (F, StatusCode, &'a str);

#[path = "../../hub/tests/common/mod.rs"]
mod common;
mod forms;

use std::time::{Duration, Instant};

use axum::http::{StatusCode, header};
use common::{TestHub, tarball};
use forms::{PASSWORD, browse, log_in, log_in_as, post};

/// The credentials a form sends: neither may come back in any page or record.
const USERNAME: &str = "puller-name-3141";
const SECRET: &str = "registry-secret-2718";

/// `text` as the templates escape it.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A form body, each value percent-encoded.
fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let v: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn jobs_of(hub: &TestHub, user: &str) -> Vec<hub::JobStatus> {
    hub.hub.jobs().list(user, 100).await.unwrap()
}

#[tokio::test]
async fn the_conversion_form_refuses_and_never_shows_credentials() {
    let hub = TestHub::open("").await;
    hub.hub.accounts().add("alice", PASSWORD, &[]).unwrap();
    hub.hub.accounts().add("bob", PASSWORD, &[]).unwrap();

    // Not logged in: the pages lead to the login, the posts are refused.
    for path in ["/docker-convert", "/merge"] {
        let page = browse(&hub, path, None).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.headers[header::LOCATION], "/login");
        let posted = post(&hub, path, "", None, "csrf=x&image=alpine").await;
        assert_eq!(posted.status, StatusCode::UNAUTHORIZED, "{path}");
    }

    let (cookie, csrf) = log_in(&hub).await;
    let page = browse(&hub, "/docker-convert", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    let html = page.text();
    for field in ["image", "platform", "name", "username", "password"] {
        assert!(
            html.contains(&format!("name=\"{field}\"")),
            "{field}: {html}"
        );
    }
    for platform in ["linux/amd64", "linux/arm64"] {
        assert!(
            html.contains(&format!("<option value=\"{platform}\"")),
            "{html}"
        );
    }
    assert!(html.contains("type=\"password\" name=\"password\""));
    // Every page links to the new ones once logged in.
    assert!(html.contains("href=\"/docker-convert\"") && html.contains("href=\"/merge\""));
    let anonymous = browse(&hub, "/", None).await.text();
    assert!(!anonymous.contains("href=\"/docker-convert\""));

    // Refusals before any job: each leaves none, and shows the form again with the hub's
    // words, the image kept, the credentials gone.
    let secret_fields = [("username", USERNAME), ("password", SECRET)];
    let refusals: [Refusal<&[(&str, &str)]>; 5] = [
        (
            &[("image", "<b>x</b>")],
            StatusCode::BAD_REQUEST,
            "is not an image reference",
        ),
        (
            &[("image", "")],
            StatusCode::BAD_REQUEST,
            "missing docker image name",
        ),
        (
            &[("image", "alpine:3.20"), ("platform", "linux/s390x")],
            StatusCode::BAD_REQUEST,
            "choose one of the platforms offered",
        ),
        (
            &[("image", "alpine:3.20"), ("name", "../x")],
            StatusCode::BAD_REQUEST,
            "",
        ),
        (
            &[("image", "alpine:3.20"), ("username", "only-a-name")],
            StatusCode::BAD_REQUEST,
            "give both or neither",
        ),
    ];
    for (fields, status, says) in refusals {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        if !fields.iter().any(|(k, _)| *k == "username") {
            all.extend_from_slice(&secret_fields);
        }
        let answer = post(&hub, "/docker-convert", &cookie, None, &form(&all)).await;
        let html = answer.text();
        assert_eq!(answer.status, status, "{fields:?}: {html}");
        assert!(html.contains("class=\"error\""), "{fields:?}: {html}");
        assert!(html.contains(&escaped(says)), "{fields:?}: {html}");
        assert!(
            !html.contains(SECRET) && !html.contains(USERNAME),
            "{fields:?}: credentials echoed"
        );
        let image = fields[0].1;
        if !image.is_empty() {
            assert!(
                html.contains(&format!("value=\"{}\"", escaped(image))),
                "{html}"
            );
        }
    }
    assert!(jobs_of(&hub, "alice").await.is_empty());

    // CSRF: none, another session's, another site: 403, no job.
    let (_, bob_csrf) = log_in_as(&hub, "bob").await;
    for (token, origin) in [
        ("", None),
        (bob_csrf.as_str(), None),
        (csrf.as_str(), Some("http://evil.example")),
    ] {
        let body = form(&[("csrf", token), ("image", "alpine:3.20")]);
        let answer = post(&hub, "/docker-convert", &cookie, origin, &body).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{token} {origin:?}");
    }
    assert!(jobs_of(&hub, "alice").await.is_empty());

    // A conversion that starts, then fails (the hub does not reach loopback registries
    // unless told to): its page, for its owner only, ends with the hub's message.
    let body = form(&[
        ("csrf", &csrf),
        ("image", "127.0.0.1:9/none/app:v1"),
        ("platform", "linux/arm64"),
        ("name", "mine"),
        ("username", USERNAME),
        ("password", SECRET),
    ]);
    let started = post(&hub, "/docker-convert", &cookie, None, &body).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.text());
    let location = started.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let id = location
        .strip_prefix("/docker-convert/")
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    let job = loop {
        let job = hub.hub.jobs().get(&id).await.unwrap().unwrap();
        if job.state.finished() {
            break job;
        }
        assert!(Instant::now() < deadline, "the job still runs: {job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(job.state, hub::JobState::Failed, "{job:?}");
    assert_eq!(job.name, "mine.flist");
    assert_eq!(
        job.request,
        Some(
            serde_json::json!({"image": "127.0.0.1:9/none/app:v1", "platform": "linux/arm64", "credentials": true})
        )
    );
    let error = job.error.clone().unwrap();
    let page = browse(&hub, &location, Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains(&escaped(&error)), "{error}: {html}");
    assert!(
        !html.contains("data-convert-job="),
        "a finished job is not followed"
    );
    assert!(!html.contains("/cancel\""), "no cancel button once ended");
    // The credentials are in no page and no record.
    let record = serde_json::to_string(&jobs_of(&hub, "alice").await).unwrap();
    for text in [&html, &record] {
        assert!(!text.contains(SECRET) && !text.contains(USERNAME), "{text}");
    }
    // Another user's job is unknown; cancelling an ended job says it ended.
    let (bob, _) = log_in_as(&hub, "bob").await;
    assert_eq!(
        browse(&hub, &location, Some(&bob)).await.status,
        StatusCode::NOT_FOUND
    );
    let cancel = format!("{location}/cancel");
    let ended = post(&hub, &cancel, &cookie, None, &form(&[("csrf", &csrf)])).await;
    assert_eq!(ended.status, StatusCode::CONFLICT);
    assert!(ended.text().contains("the job has already ended (failed)"));
    let forged = post(&hub, &cancel, &cookie, None, "csrf=0").await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        browse(&hub, "/docker-convert/no-such-job", Some(&cookie))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

/// What `/merge/sources?q=` answers.
async fn found(hub: &TestHub, q: &str) -> serde_json::Value {
    let path = format!("/merge/sources?q={q}");
    let answer = browse(hub, &path, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{path}");
    answer.json()
}

async fn merged(hub: &TestHub) -> bool {
    hub.hub
        .catalogue()
        .resolve("alice", "merged.flist")
        .await
        .is_ok()
}

#[tokio::test]
async fn merges_keep_the_order_and_refuse_what_the_hub_refuses() {
    let hub = TestHub::open("").await;
    hub.hub.accounts().add("alice", PASSWORD, &[]).unwrap();
    let alice = hub.token("alice");
    for (name, content) in [
        ("base.tar.gz", "from base"),
        ("top.tar.gz", "from top, longer"),
    ] {
        let answer = hub.upload(Some(&alice), name, &tarball(content)).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let (cookie, csrf) = log_in(&hub).await;
    let page = browse(&hub, "/merge", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    for part in [
        "id=\"merge-search\"",
        "id=\"merge-chosen\"",
        "name=\"target\"",
        "name=\"sources\"",
    ] {
        assert!(html.contains(part), "{part}: {html}");
    }
    assert!(html.contains("the one higher in the list wins"));

    // The search: flists only, bounded, `repo/` lists a repository.
    let both = serde_json::json!([
        {"source": "alice/base.flist", "kind": "regular"},
        {"source": "alice/top.flist", "kind": "regular"}
    ]);
    assert_eq!(found(&hub, "flist").await, both);
    assert_eq!(found(&hub, "alice/").await, both);
    assert_eq!(
        found(&hub, "ali/top").await,
        serde_json::json!([{"source": "alice/top.flist", "kind": "regular"}])
    );
    assert_eq!(found(&hub, "bob/top").await, serde_json::json!([]));
    assert_eq!(
        found(&hub, "alice").await,
        serde_json::json!([]),
        "a repository is not a source"
    );
    assert_eq!(found(&hub, "").await, serde_json::json!([]));
    let long = browse(&hub, &format!("/merge/sources?q={}", "a".repeat(600)), None).await;
    assert_eq!(long.status, StatusCode::BAD_REQUEST);

    // Refusals: nothing published, the choices shown again (escaped).
    let refusals: [Refusal<Vec<(&str, &str)>>; 4] = [
        (
            vec![("target", "merged")],
            StatusCode::BAD_REQUEST,
            "no source found",
        ),
        (
            vec![
                ("source", "alice/base.flist"),
                ("source", "alice/<gone>.flist"),
                ("target", "merged"),
            ],
            StatusCode::BAD_REQUEST,
            "",
        ),
        (
            vec![
                ("source", "alice/base.flist"),
                ("source", "alice/gone.flist"),
                ("target", "merged"),
            ],
            StatusCode::NOT_FOUND,
            "does not exist",
        ),
        (
            vec![
                ("source", "alice/base.flist"),
                ("source", "alice/base.flist"),
                ("target", "merged"),
            ],
            StatusCode::BAD_REQUEST,
            "given twice",
        ),
    ];
    for (fields, status, says) in refusals {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend(fields.iter().copied());
        let answer = post(&hub, "/merge", &cookie, None, &form(&all)).await;
        let html = answer.text();
        assert_eq!(answer.status, status, "{fields:?}: {html}");
        assert!(html.contains(says), "{fields:?}: {html}");
        for (key, value) in &fields {
            if *key == "source" {
                assert!(
                    html.contains(&format!("value=\"{}\"", escaped(value))),
                    "{html}"
                );
            }
        }
        assert!(!html.contains("<gone>"), "{html}");
        assert!(!merged(&hub).await);
    }
    let many: Vec<(&str, &str)> = std::iter::repeat_n(("source", "alice/base.flist"), 70)
        .chain([("target", "merged"), ("csrf", csrf.as_str())])
        .collect();
    let answer = post(&hub, "/merge", &cookie, None, &form(&many)).await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.text()
    );
    let forged = form(&[
        ("csrf", "0"),
        ("source", "alice/base.flist"),
        ("target", "merged"),
    ]);
    assert_eq!(
        post(&hub, "/merge", &cookie, None, &forged).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(!merged(&hub).await);

    // The picker's order (and the lines of the form without script) is the precedence:
    // the first source's `a` wins.
    for (fields, wins) in [
        (
            vec![
                ("source", "alice/top.flist"),
                ("source", "alice/base.flist"),
            ],
            "from top, longer",
        ),
        (
            vec![("sources", "alice/base.flist\r\nalice/top.flist\r\n")],
            "from base",
        ),
    ] {
        let mut all = vec![("csrf", csrf.as_str()), ("target", "merged")];
        all.extend(fields.iter().copied());
        let answer = post(&hub, "/merge", &cookie, None, &form(&all)).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
        assert_eq!(answer.headers[header::LOCATION], "/alice/merged.flist.md");
        let file = browse(&hub, "/alice/merged.flist/tree/a", None)
            .await
            .text();
        assert!(file.contains(wins), "{wins}: {file}");
    }
}
