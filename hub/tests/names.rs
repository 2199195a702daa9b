//! Names from outside: the reserved list, hostile names, and 0-hub's normalisation.

mod common;

use common::{TestHub, tarball};

#[tokio::test]
async fn reserved_and_hostile_names_are_refused_with_the_reason() {
    let hub = TestHub::open("[server]\nauthentication = false\n").await;
    assert_eq!(
        hub.upload(None, "app.tar.gz", &tarball("x")).await.status,
        200
    );
    for reserved in ["diff", "tokens", "static", "account", "favicon.ico", "v2"] {
        let answer = hub
            .call(
                "GET",
                &format!("/api/flist/me/x/crosslink/{reserved}/app"),
                None,
            )
            .await;
        assert_eq!(answer.status, 400, "{reserved}");
        assert!(
            answer.json()["message"]
                .as_str()
                .unwrap()
                .contains("reserved")
        );
        // As a listing, the same refusal.
        assert_eq!(hub.get(&format!("/api/flist/{reserved}")).await.status, 400);
    }
    for hostile in ["%2e%2e", "a%3Cb", "a%5Cb", "%E2%80%AEevil"] {
        let answer = hub.get(&format!("/api/flist/{hostile}")).await;
        assert_eq!(answer.status, 400, "{hostile}");
        assert!(!answer.text().contains('<'));
    }
    // `x` and `x.flist` are the same name.
    let a = hub.get("/api/flist/Administrator/app/light").await.json();
    let b = hub
        .get("/api/flist/Administrator/app.flist/light")
        .await
        .json();
    assert_eq!(a, b);
    assert_eq!(a["name"], "app.flist");
}
