//! Tokens minted by the hub: what `token list` shows is what the hub enforces.

mod common;

use common::TestHub;

#[tokio::test]
async fn a_token_minted_in_the_second_of_a_revocation_is_valid() {
    let hub = TestHub::open("").await;
    for _ in 0..5 {
        let old = hub.token("alice");
        assert_eq!(
            hub.call("GET", "/api/flist/me", Some(&old)).await.status,
            200
        );
        hub.hub.tokens().revoke_user("alice").unwrap();
        let new = hub.token("alice");
        let answer = hub.call("GET", "/api/flist/me", Some(&old)).await;
        assert_eq!(answer.status, 401, "{}", answer.text());
        assert_eq!(answer.json()["message"], "token revoked");
        let answer = hub.call("GET", "/api/flist/me", Some(&new)).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let valid = hub
            .hub
            .tokens()
            .list()
            .unwrap()
            .iter()
            .filter(|t| t.revoked.is_none())
            .count();
        assert_eq!(
            valid, 1,
            "token list shows the new one valid, every old one revoked"
        );
    }
}
