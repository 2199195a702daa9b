//! 0-hub's rules through the routes: `updated` moves with changes, links may not loop, the
//! `upload` route is also a name, the hub's own prefixes are not repositories, and one hub
//! per data directory.

mod common;

use common::{TestHub, tarball};

const NO_AUTH: &str = "[server]\nauthentication = false\n";

#[tokio::test]
async fn namespace_rules_through_the_routes() {
    let hub = TestHub::open(NO_AUTH).await;
    assert_eq!(
        hub.upload(None, "a.tar.gz", &tarball("a")).await.status,
        200
    );
    let updated = || async {
        hub.get("/api/repositories").await.json()[0]["updated"]
            .as_i64()
            .unwrap()
    };
    let first = updated().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        hub.upload(None, "b.tar.gz", &tarball("b")).await.status,
        200
    );
    let second = updated().await;
    assert!(
        second > first,
        "an upload moves `updated`: {first} {second}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let promoted = hub
        .call("GET", "/api/flist/me/promote/Administrator/a/c", None)
        .await;
    assert_eq!(promoted.status, 200);
    assert!(updated().await > second, "so does a promote");

    // b2 -> b1 -> b: renaming b2 over b would make b a link to itself through b1.
    assert_eq!(
        hub.call("GET", "/api/flist/me/b/link/b1", None)
            .await
            .status,
        200
    );
    assert_eq!(
        hub.call("GET", "/api/flist/me/b1/link/b2", None)
            .await
            .status,
        200
    );
    let answer = hub
        .call("GET", "/api/flist/me/b2/rename/b?force=true", None)
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(
        answer.json()["message"]
            .as_str()
            .unwrap()
            .contains("itself")
    );
    let hub = &hub;
    let light = |name: &'static str| async move {
        hub.get(&format!("/api/flist/Administrator/{name}/light"))
            .await
            .json()
    };
    assert_eq!(light("b").await["type"], "regular");
    assert_eq!(light("b2").await["type"], "symlink");
    // A link renamed onto another name is fine.
    assert_eq!(
        hub.call("GET", "/api/flist/me/b2/rename/b3", None)
            .await
            .status,
        200
    );
    assert!(light("b3").await["md5"].is_string());

    // `upload` is a route and a name: GET inspects and DELETE deletes `upload.flist`.
    assert_eq!(
        hub.upload(None, "upload.tar.gz", &tarball("u"))
            .await
            .status,
        200
    );
    assert_eq!(
        hub.call("GET", "/api/flist/me/upload", None).await.status,
        200
    );
    assert_eq!(
        hub.call("DELETE", "/api/flist/me/upload", None)
            .await
            .status,
        200
    );
    assert_eq!(
        hub.call("GET", "/api/flist/me/upload", None).await.status,
        404
    );
    // Unknown routes under the hub's own prefixes are 404, not a bad repository name.
    assert_eq!(hub.get("/api/nothing-here").await.status, 404);
    assert_eq!(hub.get("/metrics/x.flist").await.status, 404);
    // HEAD never changes anything (0-hub ran the change).
    assert_eq!(
        hub.call("HEAD", "/api/flist/me/a/link/viahead", None)
            .await
            .status,
        405
    );
    assert_eq!(light("viahead").await["status"], "error");
}

#[tokio::test]
async fn one_hub_per_data_directory() {
    let hub = TestHub::open(NO_AUTH).await;
    let config = {
        let mut config = hub::Config::from_toml(NO_AUTH).unwrap();
        config.server.data_dir = Some(hub.dir.path().join("data"));
        config
    };
    let second = hub::Hub::open(config).await;
    let Err(e) = second else {
        panic!("a second hub opened the same data directory")
    };
    assert!(
        e.to_string()
            .contains("another flisthub serve uses this data directory"),
        "{e}"
    );
    assert_eq!(
        hub.get("/api/flist/Administrator").await.status,
        404,
        "the first goes on"
    );
}
