//! The change feed: every change recorded in order, paged, public, with who made it shown
//! to administrators only, and kept across restarts.

mod common;

use common::{TestHub, tarball};
use serde_json::Value;

const AUTH: &str = "[auth]\nadministrators = [\"ops\"]\n";

fn kinds(feed: &Value) -> Vec<&str> {
    feed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_feed_pages_hides_actors_from_others_and_survives_a_restart() {
    let hub = TestHub::open(AUTH).await;
    let alice = hub.token("alice");
    assert_eq!(
        hub.upload(Some(&alice), "app.tar.gz", &tarball("one"))
            .await
            .status,
        200
    );
    for path in [
        "/api/flist/me/app/link/latest",
        "/api/flist/me/v1/app/tag/alice/app",
        "/api/flist/me/release/crosstag/alice/v1",
        "/api/flist/me/promote/alice/latest/copy",
        "/api/flist/me/copy/rename/copy2",
    ] {
        let answer = hub.call("GET", path, Some(&alice)).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    }
    // A refused change is not in the feed.
    assert_eq!(
        hub.call("GET", "/api/flist/me/nothing/link/x", Some(&alice))
            .await
            .status,
        404
    );
    assert_eq!(
        hub.call("DELETE", "/api/flist/me/latest", Some(&alice))
            .await
            .status,
        200
    );

    let feed = hub.get("/api/v1/changes").await.json();
    assert_eq!(
        kinds(&feed),
        [
            "publish", "link", "tag", "crosstag", "promote", "rename", "delete"
        ]
    );
    assert_eq!(feed["next"], 7);
    let publish = &feed["changes"][0];
    assert_eq!(publish["seq"], 1);
    assert_eq!(publish["repository"], "alice");
    assert_eq!(publish["name"], "app.flist");
    assert_eq!(publish["file"]["sha256"].as_str().unwrap().len(), 64);
    assert!(
        publish.get("actor").is_none(),
        "anonymous readers do not see who"
    );
    // Alice is not an administrator either.
    let mine = hub
        .call("GET", "/api/v1/changes", Some(&alice))
        .await
        .json();
    assert!(mine["changes"][0].get("actor").is_none());
    let ops = hub.token("ops");
    let admin = hub.call("GET", "/api/v1/changes", Some(&ops)).await.json();
    assert_eq!(admin["changes"][0]["actor"], "alice");

    // Pages follow each other.
    let page = hub.get("/api/v1/changes?after=2&limit=3").await.json();
    assert_eq!(kinds(&page), ["tag", "crosstag", "promote"]);
    assert_eq!(page["next"], 5);
    let end = hub.get("/api/v1/changes?after=7").await.json();
    assert_eq!(end["changes"], serde_json::json!([]));
    assert_eq!(
        end["next"], 7,
        "nothing newer: ask again from the same place"
    );

    // A bad token is refused even on a public route.
    assert_eq!(
        hub.call("GET", "/api/v1/changes", Some("x.y.z"))
            .await
            .status,
        401
    );

    let hub = hub.restart(AUTH).await;
    let after = hub.get("/api/v1/changes").await.json();
    assert_eq!(after["changes"], feed["changes"], "the log is on disk");
    assert_eq!(
        hub.upload(Some(&alice), "b.tar.gz", &tarball("two"))
            .await
            .status,
        200
    );
    let next = hub.get("/api/v1/changes?after=7").await.json();
    assert_eq!(
        next["changes"][0]["seq"], 8,
        "numbers go on after a restart"
    );
}

#[tokio::test]
async fn without_authentication_every_caller_is_the_administrator() {
    let hub = TestHub::open("[server]\nauthentication = false\n").await;
    let up = hub.upload(None, "app.tar.gz", &tarball("one")).await;
    assert_eq!(up.status, 200, "{}", up.text());
    let feed = hub.get("/api/v1/changes").await.json();
    assert_eq!(feed["changes"][0]["actor"], "Administrator");
}
