//! Retention policies: what a policy deletes (exactly what its dry run listed, never what a
//! link or a tag names), the change log's reason, the policies' routes and their
//! refusals; and the collector's sweep of flist files no entry names.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use common::{TestHub, flist_file};
use serde_json::{Value, json};

const AUTH: &str = "[auth]\nadministrators = [\"ops\"]\n[retention]\ninterval = \"0s\"\n";
const T0: i64 = 1_700_000_000;

/// Publishes `count` distinct flists `<prefix>-NN` as `user`, the n-th published at
/// `T0 + n` minutes (as if over half an hour).
async fn publish(hub: &TestHub, user: &str, prefix: &str, count: usize) {
    let token = hub.token(user);
    for i in 0..count {
        let name = format!("{prefix}-{i:02}.flist");
        let bytes = flist_file(1, &[("n", name.as_str())]);
        let answer = hub.upload_flist(Some(&token), &name, &bytes).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        set_mtime(hub, user, &name, T0 + 60 * i as i64);
    }
}

/// Sets when an entry was published, in the hub's database.
fn set_mtime(hub: &TestHub, repository: &str, name: &str, mtime: i64) {
    let db = rusqlite::Connection::open(hub.dir.path().join("data/hub.sqlite3")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let set = db
        .execute(
            "UPDATE entry SET mtime = ?3 WHERE name = ?2
             AND repository = (SELECT id FROM repository WHERE name = ?1)",
            rusqlite::params![repository, name, mtime],
        )
        .unwrap();
    assert_eq!(set, 1);
}

fn names(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn range(prefix: &str, from: usize, to: usize) -> BTreeSet<String> {
    (from..to)
        .map(|i| format!("{prefix}-{i:02}.flist"))
        .collect()
}

/// Names listed in `repository` (`/api/flist/<repo>`).
async fn listed(hub: &TestHub, repository: &str) -> BTreeSet<String> {
    let answer = hub.get(&format!("/api/flist/{repository}")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

fn flist_files(hub: &TestHub) -> usize {
    walk(&hub.dir.path().join("data/flists"))
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| match e.file_type().unwrap().is_dir() {
                true => walk(&e.path()),
                false => 1,
            })
            .sum()
    })
}

#[tokio::test]
async fn keep_ten_deletes_exactly_what_the_dry_run_listed_and_nothing_linked() {
    let hub = TestHub::open(&format!(
        "{AUTH}[retention.repositories]\nalice = {{ keep = 10 }}\n"
    ))
    .await;
    publish(&hub, "alice", "app", 30).await;
    let (alice, bob, carol, ops) = (
        hub.token("alice"),
        hub.token("bob"),
        hub.token("carol"),
        hub.token("ops"),
    );
    // The two oldest are linked: app-00 by a symlink of alice's, app-01 by a tag of bob's
    // that carol's taglink points at.
    for (token, path) in [
        (&alice, "/api/flist/me/app-00/link/latest"),
        (&bob, "/api/flist/me/stable/app/tag/alice/app-01"),
        (&carol, "/api/flist/me/release/crosstag/bob/stable"),
    ] {
        let answer = hub.call("GET", path, Some(token)).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    }
    let before = hub.get("/api/v1/changes?limit=1000").await.json()["next"]
        .as_u64()
        .unwrap();
    let doomed = range("app", 2, 20);
    assert_eq!(doomed.len(), 18);

    let dry = hub
        .call("POST", "/api/v1/admin/retention?dry-run=true", Some(&ops))
        .await;
    assert_eq!(dry.status, 200, "{}", dry.text());
    let dry = dry.json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["deleted"], 18);
    let repositories = dry["repositories"].as_array().unwrap();
    assert_eq!(repositories.len(), 1, "only alice has a policy: {dry}");
    let report = &repositories[0];
    assert_eq!(report["repository"], "alice");
    assert_eq!(report["flists"], 30);
    assert_eq!(names(&report["deleted"]), doomed);
    assert_eq!(
        names(&report["kept_linked"]),
        range("app", 0, 2),
        "{report}"
    );
    assert_eq!(
        listed(&hub, "alice").await.len(),
        31,
        "a dry run deletes nothing"
    );
    assert_eq!(flist_files(&hub), 30);

    let run = hub
        .call("POST", "/api/v1/admin/retention", Some(&ops))
        .await;
    assert_eq!(run.status, 200, "{}", run.text());
    let run = run.json();
    assert_eq!(run["dry_run"], false);
    assert_eq!(run["deleted"], 18);
    assert_eq!(names(&run["repositories"][0]["deleted"]), doomed);
    let mut kept = range("app", 0, 2);
    kept.extend(range("app", 20, 30));
    kept.insert("latest.flist".into());
    assert_eq!(listed(&hub, "alice").await, kept);
    assert_eq!(flist_files(&hub), 12, "the deleted flists' files are gone");
    for path in [
        "/alice/latest.flist.md5",
        "/bob/tags/stable/app.flist.md5",
        "/alice/app-29.flist.md5",
    ] {
        assert_eq!(hub.get(path).await.status, 200, "{path}");
    }

    // The change log: one delete per flist, naming the policy and who asked.
    let feed = hub
        .call(
            "GET",
            &format!("/api/v1/changes?after={before}&limit=1000"),
            Some(&ops),
        )
        .await
        .json();
    let changes = feed["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 18);
    let mut logged = BTreeSet::new();
    for change in changes {
        assert_eq!(change["kind"], "delete");
        assert_eq!(change["repository"], "alice");
        assert_eq!(change["actor"], "ops");
        assert_eq!(
            change["reason"], "retention policy of alice (configured): keep 10",
            "{change}"
        );
        logged.insert(change["name"].as_str().unwrap().to_owned());
    }
    assert_eq!(logged, doomed);

    // Applied again: nothing more goes.
    let again = hub
        .call("POST", "/api/v1/admin/retention", Some(&ops))
        .await;
    assert_eq!(again.json()["deleted"], 0);
    assert_eq!(listed(&hub, "alice").await, kept);
}

#[tokio::test]
async fn an_age_policy_set_through_the_api_and_its_routes() {
    let hub = TestHub::open(&format!(
        "{AUTH}default = {{ keep = 100 }}\n[retention.repositories]\nalice = {{ keep = 3, max-age = \"30d\" }}\n"
    ))
    .await;
    let ops = hub.token("ops");
    publish(&hub, "bob", "b", 4).await;
    // Two published 40 days ago, two within the age.
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (i, age) in [(0, 40), (1, 40), (2, 1), (3, 0)] {
        set_mtime(&hub, "bob", &format!("b-0{i}.flist"), now - age * 86_400);
    }
    // Before a policy of its own, bob has the default.
    let answer = hub
        .call("GET", "/api/v1/admin/retention/bob", Some(&ops))
        .await;
    assert_eq!(
        answer.json(),
        json!({"repository": "bob", "policy": {"keep": 100}, "origin": "default"})
    );
    let answer = put(&hub, &ops, "bob", r#"{"max-age": "30d"}"#).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["origin"], "api");
    assert_eq!(answer.json()["policy"]["max-age"], "30days");

    let list = hub.call("GET", "/api/v1/admin/retention", Some(&ops)).await;
    assert_eq!(
        list.json(),
        json!({
            "default": {"keep": 100},
            "repositories": [
                {"repository": "alice", "policy": {"keep": 3, "max-age": "30days"}, "origin": "config"},
                {"repository": "bob", "policy": {"max-age": "30days"}, "origin": "api"},
            ]
        })
    );

    let run = hub
        .call("POST", "/api/v1/admin/retention?repository=bob", Some(&ops))
        .await;
    assert_eq!(run.status, 200, "{}", run.text());
    let run = run.json();
    assert_eq!(run["repositories"].as_array().unwrap().len(), 1);
    assert_eq!(
        names(&run["repositories"][0]["deleted"]),
        range("b", 0, 2),
        "{run}"
    );
    assert_eq!(
        run["repositories"][0]["policy"],
        "retention policy of bob (set through the API): max-age 30days"
    );
    assert_eq!(listed(&hub, "bob").await, range("b", 2, 4));

    // Removed: the default applies again; removed twice: nothing to remove.
    let answer = hub
        .call("DELETE", "/api/v1/admin/retention/bob", Some(&ops))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["origin"], "default");
    let answer = hub
        .call("DELETE", "/api/v1/admin/retention/bob", Some(&ops))
        .await;
    assert_eq!(answer.status, 404, "{}", answer.text());
}

async fn put(hub: &TestHub, token: &str, repository: &str, body: &str) -> common::Answer {
    let request = axum::http::Request::builder()
        .method("PUT")
        .uri(format!("/api/v1/admin/retention/{repository}"))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .body(axum::body::Body::from(body.to_owned()))
        .unwrap();
    hub.send(request).await
}

#[tokio::test]
async fn refusals_change_nothing() {
    let hub = TestHub::open(AUTH).await;
    let (alice, ops) = (hub.token("alice"), hub.token("ops"));
    publish(&hub, "alice", "a", 2).await;
    for (method, path) in [
        ("GET", "/api/v1/admin/retention"),
        ("POST", "/api/v1/admin/retention"),
        ("POST", "/api/v1/admin/retention?dry-run=true"),
        ("GET", "/api/v1/admin/retention/alice"),
        ("DELETE", "/api/v1/admin/retention/alice"),
    ] {
        let answer = hub.call(method, path, Some(&alice)).await;
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.text());
        assert!(
            answer.text().contains("for administrators"),
            "{}",
            answer.text()
        );
        let answer = hub.call(method, path, None).await;
        assert_eq!(answer.status, 401, "{method} {path} anonymous");
    }
    assert_eq!(
        put(&hub, &alice, "alice", r#"{"keep": 1}"#).await.status,
        403
    );

    for (body, says) in [
        ("{}", "needs keep, max-age or both"),
        (r#"{"keep": 0}"#, "between 1 and"),
        (r#"{"keep": -3}"#, "invalid value"),
        (r#"{"max-age": "soon"}"#, "not a duration"),
        (r#"{"max-age": "5s"}"#, "between a minute"),
        (r#"{"keep": 5, "extra": 1}"#, "unknown field"),
        ("keep everything", "invalid retention policy"),
        ("", "invalid retention policy"),
    ] {
        let answer = put(&hub, &ops, "alice", body).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text());
        assert!(answer.text().contains(says), "{body}: {}", answer.text());
    }
    let answer = put(&hub, &ops, "a%3Cb", r#"{"keep": 1}"#).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let answer = hub
        .call("GET", "/api/v1/admin/retention/alice", Some(&ops))
        .await;
    assert_eq!(
        answer.json(),
        json!({"repository": "alice", "policy": null, "origin": null}),
        "nothing was stored"
    );
    let answer = hub
        .call(
            "POST",
            "/api/v1/admin/retention?repository=alice",
            Some(&ops),
        )
        .await;
    assert_eq!(answer.status, 404, "{}", answer.text());
    assert!(answer.text().contains("no retention policy applies"));
    // No policy anywhere: a run deletes nothing.
    let answer = hub
        .call("POST", "/api/v1/admin/retention", Some(&ops))
        .await;
    assert_eq!(answer.json()["deleted"], 0);
    assert_eq!(listed(&hub, "alice").await, range("a", 0, 2));
    let answer = hub
        .call("DELETE", "/api/v1/admin/retention/alice", Some(&ops))
        .await;
    assert_eq!(answer.status, 404);
}

#[tokio::test]
async fn a_read_only_hub_only_tells_what_would_go() {
    let hub = TestHub::open(&format!("{AUTH}default = {{ keep = 1 }}\n")).await;
    publish(&hub, "alice", "a", 3).await;
    let hub = hub
        .restart(&format!(
            "{AUTH}default = {{ keep = 1 }}\n[server]\nreadonly = true\n"
        ))
        .await;
    let ops = hub.token("ops");
    let answer = hub
        .call("POST", "/api/v1/admin/retention", Some(&ops))
        .await;
    assert_eq!(answer.status, 403, "{}", answer.text());
    let answer = hub
        .call("POST", "/api/v1/admin/retention?dry-run=true", Some(&ops))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        names(&answer.json()["repositories"][0]["deleted"]),
        range("a", 0, 2)
    );
    assert_eq!(listed(&hub, "alice").await, range("a", 0, 3));
}

/// Writes a file at `path` last written `age` ago.
fn aged_file(path: &std::path::Path, content: &[u8], age: Duration) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

#[tokio::test]
async fn the_collector_sweeps_unreferenced_flist_files_past_the_grace_period() {
    let hub = TestHub::open(&format!("{AUTH}[gc]\ngrace = \"1h\"\n")).await;
    let ops = hub.token("ops");
    publish(&hub, "alice", "a", 1).await;
    let data = hub.dir.path().join("data");
    let store = data.join("flists/sha256");
    let path = |sha: &str| store.join(&sha[..2]).join(sha);
    let published = hub.get("/alice/a-00.flist.md5").await;
    assert_eq!(published.status, 200);
    let referenced = std::fs::read_dir(&store)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .next()
        .unwrap();
    // Referenced and old: stays.
    let bytes = std::fs::read(&referenced).unwrap();
    aged_file(&referenced, &bytes, Duration::from_secs(7200));
    let (old, fresh) = ("ab".repeat(32), "cd".repeat(32));
    aged_file(&path(&old), b"left by a crash", Duration::from_secs(7200));
    aged_file(&path(&fresh), b"just placed", Duration::from_secs(60));
    // An upload's staging file, however old, is not the collector's.
    let staged = data.join("tmp/upload-in-progress");
    aged_file(&staged, b"being written", Duration::from_secs(7200));

    let dry = hub
        .call("POST", "/api/v1/admin/gc?dry-run=true", Some(&ops))
        .await;
    assert_eq!(dry.status, 200, "{}", dry.text());
    let dry = dry.json();
    let files = &dry["unreferenced_files"];
    assert_eq!(files["swept"], json!({"count": 1, "bytes": 15}), "{dry}");
    assert_eq!(files["kept_by_grace"], json!({"count": 1, "bytes": 11}));
    let would_go: Vec<&str> = dry["would_go"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k.as_str().filter(|k| k.starts_with("flist ")))
        .collect();
    assert_eq!(would_go, [format!("flist {old}")]);
    assert!(path(&old).exists(), "a dry run removes nothing");

    let run = hub.call("POST", "/api/v1/admin/gc", Some(&ops)).await;
    assert_eq!(run.status, 200, "{}", run.text());
    assert_eq!(run.json()["unreferenced_files"]["swept"]["count"], 1);
    assert!(!path(&old).exists());
    assert!(path(&fresh).exists());
    assert!(referenced.exists());
    assert!(staged.exists());
    let download = hub.get("/alice/a-00.flist").await;
    assert_eq!(download.status, 200);
    // The kept reports say it too.
    let reports = hub.call("GET", "/api/v1/admin/gc", Some(&ops)).await.json();
    assert_eq!(reports[0]["unreferenced_files"]["swept"]["count"], 1);
    assert_eq!(reports[1]["unreferenced_files"]["swept"]["count"], 1);
    assert_eq!(reports[1]["dry_run"], true);
}
