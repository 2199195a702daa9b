//! A job's record once it has ended: what it did last, shown to its owner only; its events
//! at `/listen` stay public, as 0-hub's upload page needs them.

mod common;

use std::time::{Duration, Instant};

use common::{TestHub, tarball};

#[tokio::test]
async fn an_ended_job_shows_its_last_message_to_its_owner_only() {
    let hub = TestHub::open("").await;
    let (alice, bob) = (hub.token("alice"), hub.token("bob"));
    let started = hub
        .post_file(Some(&alice), "/upload", "web.tar.gz", &tarball("hello"))
        .await;
    assert_eq!(started.status, 200, "{}", started.text());
    let id = started.json()["jobid"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/jobs/{id}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let record = loop {
        let answer = hub.call("GET", &path, Some(&alice)).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let record = answer.json();
        if record["state"] != "queued" && record["state"] != "running" {
            break record;
        }
        assert!(Instant::now() < deadline, "{record}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(record["state"], "succeeded", "{record}");
    assert_eq!(record["message"], "Image ready !", "{record}");
    assert_eq!(record["progress"], 100, "{record}");

    // Anonymous: a token is needed; another user: as if there were no such job.
    let anonymous = hub.call("GET", &path, None).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    let other = hub.call("GET", &path, Some(&bob)).await;
    assert_eq!(other.status, 404, "{}", other.text());
    assert_eq!(other.json()["message"], "job id not found");
    let unknown = hub
        .call("GET", "/api/v1/jobs/no-such-job", Some(&alice))
        .await;
    assert_eq!(unknown.text(), other.text());

    // The events replay the outcome to anyone, as 0-hub's did.
    let events = hub.get(&format!("/listen/{id}")).await;
    assert_eq!(events.status, 200);
    let text = events.text();
    assert!(
        text.contains(r#""message": "Image ready !""#) && text.contains(r#""status": "info""#),
        "{text}"
    );
}
