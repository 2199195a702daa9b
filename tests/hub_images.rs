//! Image conversions through a running hub, from the reference registry on loopback:
//! 0-hub's `POST /api/flist/me/docker` (answers when published), `POST /api/v1/convert`
//! (a job), the job's record and its events, credentials, limits, two requests for the
//! same image sharing one conversion, cancellation, a registry that stops answering, and a
//! restart in the middle of a job. The registry is on loopback: the hubs are told to reach
//! private networks (`hub_egress` tests what a hub reaches by default).

mod common;

use std::time::Duration;

use common::hub::*;
use common::images::*;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::RegistryServer;

fn my_flists(hub: &HubServer, token: &str) -> Vec<String> {
    let (_, list) = body_json(hub.get("/api/flist/alice"));
    let _ = token;
    list.as_array()
        .map(|l| {
            l.iter()
                .map(|e| e["name"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_docker_route_as_0_hub_clients_call_it_and_the_job_it_leaves() {
    let Some(registry) = RegistryServer::start() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    push_image(
        &registry,
        work.path(),
        "test/app:v1",
        &[
            ("hello", b"hello\n".to_vec()),
            ("bin/app", noise(200_000, 3)),
        ],
    );
    let hub = HubServer::start(PRIVATE_NETWORKS);
    let token = hub.token("alice", &[]);
    let image = format!("{}/test/app:v1", registry.host());

    let form = reqwest::blocking::multipart::Form::new().text("image", image.clone());
    let (status, answer) = body_json(
        hub.with(Method::POST, "/api/flist/me/docker", &token)
            .multipart(form)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "success");
    let payload = &answer["payload"];
    let name = format!("{}-test-app-v1.flist", registry.host().replace(':', "-"));
    assert_eq!(payload["name"], name.as_str(), "{payload}");
    assert_eq!(payload["files"]["response"]["regular"], 3, "{payload}"); // with /.startup.toml
    let flist = hub.get(&format!("/alice/{name}"));
    assert_eq!(flist.status().as_u16(), 200);
    let bytes = flist.bytes().unwrap();
    let md5 = hub.get(&format!("/alice/{name}.md5")).text().unwrap();
    use md5::Digest;
    assert_eq!(md5.trim(), hex::encode(md5::Md5::digest(&bytes)));
    assert_eq!(payload["md5"], md5.trim());

    // The flist names the hub's chunk API, and reads back through it.
    let local = work.path().join("app.flist");
    std::fs::write(&local, &bytes).unwrap();
    let cat = ok(flisthub(work.path(), args!["cat", local, "hello"]));
    assert_eq!(cat.stdout, b"hello\n");
    let meta = body_json(hub.get(&format!("/api/flist/alice/{name}/metadata"))).1;
    assert_eq!(meta["entrypoint"], json!(["/bin/app"]), "{meta}");

    // The job it ran is on record, and its events replay the end of 0-hub's sequence.
    let id = payload["jobid"].as_str().unwrap();
    let status = job(&hub, &token, id);
    assert_eq!(
        (status["kind"].as_str(), status["state"].as_str()),
        (Some("docker"), Some("succeeded"))
    );
    assert_eq!(status["result"]["file"], name.as_str());
    assert_eq!(status["request"]["image"], image.as_str());
    let events = events(&hub, id);
    assert_eq!(
        events[0],
        json!({"status": "update", "message": "Image ready !", "progress": 100})
    );
    assert_eq!(events[1]["status"], "info");
    assert_eq!(events[1]["info"]["file"], name.as_str());

    // Urlencoded forms work too; converting again republishes the same bytes.
    let (status, again) = body_json(
        hub.with(Method::POST, "/api/flist/me/docker", &token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(urlencoded(&[("image", image.as_str())]))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["payload"]["md5"], md5.trim());

    // Refusals, each publishing nothing.
    let before = my_flists(&hub, &token);
    let refuse = |form: &[(&str, &str)], want: u16, says: &str| {
        let (status, body) = body_json(
            hub.with(Method::POST, "/api/flist/me/docker", &token)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(urlencoded(form))
                .send()
                .unwrap(),
        );
        assert_eq!(status, want, "{form:?}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(says),
            "{form:?}: {body}"
        );
    };
    refuse(&[], 400, "missing docker image name");
    refuse(&[("image", "  ")], 400, "missing docker image name");
    refuse(&[("image", "app::bad")], 400, "not an image reference");
    refuse(&[("image", "<b>x</b>")], 400, "not an image reference");
    refuse(
        &[("image", &format!("{}/test/app:nope", registry.host()))],
        404,
        "no such image",
    );
    refuse(
        &[("image", &format!("{}/test/none:v1", registry.host()))],
        404,
        "",
    );
    refuse(
        &[("image", &image), ("platform", "linux/s390x")],
        400,
        "not linux/s390x",
    );
    refuse(
        &[("image", &image), ("platform", "linux")],
        400,
        "not a platform",
    );
    // A layer whose bytes are not those its digest names: 502, nothing published.
    push_image(
        &registry,
        work.path(),
        "test/damaged:v1",
        &[("x", b"x\n".to_vec())],
    );
    let manifest: Value = serde_json::from_slice(&registry.manifest("test/damaged:v1")).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let other = tar::Builder::new(Vec::new()).into_inner().unwrap();
    std::fs::write(registry.blob_path(layer), gzip(&other)).unwrap();
    refuse(
        &[("image", &format!("{}/test/damaged:v1", registry.host()))],
        502,
        layer,
    );
    assert_eq!(my_flists(&hub, &token), before);
    let anonymous = client()
        .post(format!("{}/api/flist/me/docker", hub.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(urlencoded(&[("image", image.as_str())]))
        .send()
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    // A failed job says why.
    let (_, jobs) = body_json(
        hub.with(Method::GET, "/api/v1/jobs", &token)
            .send()
            .unwrap(),
    );
    let says = |j: &&Value, what: &str| {
        j["state"] == "failed" && j["error"].as_str().unwrap_or_default().contains(what)
    };
    let jobs = jobs.as_array().unwrap();
    assert!(
        jobs.iter().any(|j| says(&j, "no such image or tag")),
        "{jobs:?}"
    );
    assert!(
        jobs.iter().any(|j| says(&j, "does not match its digest")),
        "{jobs:?}"
    );
}

#[test]
fn private_registries_with_credentials_from_the_request_or_the_config() {
    let Some(registry) = RegistryServer::start_with_credentials("puller", "registry-secret-9")
    else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    push_image(
        &registry,
        work.path(),
        "private/app:v1",
        &[("secret", b"s\n".to_vec())],
    );
    let image = format!("{}/private/app:v1", registry.host());

    let hub = HubServer::start(PRIVATE_NETWORKS);
    let token = hub.token("alice", &[]);
    let (status, body) = body_json(
        hub.with(Method::POST, "/api/flist/me/docker", &token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(urlencoded(&[("image", image.as_str())]))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("credentials"),
        "{body}"
    );
    let (status, body) = convert(&hub, &token, json!({"image": image}));
    assert_eq!(status, 202, "{body}");
    let failed = wait_job(&hub, &token, body["id"].as_str().unwrap());
    assert_eq!(failed["state"], "failed");
    assert!(
        failed["error"].as_str().unwrap().contains("credentials"),
        "{failed}"
    );

    let (status, body) = convert(
        &hub,
        &token,
        json!({"image": image, "credentials": {"username": "puller", "password": "wrong-one"}, "name": "mine"}),
    );
    assert_eq!(status, 202);
    assert_eq!(
        wait_job(&hub, &token, body["id"].as_str().unwrap())["state"],
        "failed"
    );
    let (status, body) = convert(
        &hub,
        &token,
        json!({"image": image, "credentials": {"username": "puller", "password": "registry-secret-9"}, "name": "mine"}),
    );
    assert_eq!(status, 202);
    let id = body["id"].as_str().unwrap().to_owned();
    let done = wait_job(&hub, &token, &id);
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["name"], "mine.flist");
    assert_eq!(
        done["request"],
        json!({"image": image, "platform": null, "credentials": true})
    );
    assert_eq!(hub.get("/alice/mine.flist").status().as_u16(), 200);

    // The password is nowhere: not in the database, the log or the flist.
    let flist = hub.get("/alice/mine.flist").bytes().unwrap();
    assert_kept_nowhere(&hub, flist.to_vec(), &["registry-secret-9", "wrong-one"]);

    // Credentials per registry in the configuration, from a file.
    let password = work.path().join("password");
    std::fs::write(&password, "registry-secret-9\n").unwrap();
    let configured = HubServer::start(&format!(
        "[images]\nallowed-registries = [\"{0}\"]\n[images.credentials.\"{0}\"]\nusername = \"puller\"\npassword-file = \"{1}\"\n",
        registry.host(),
        password.display()
    ));
    let token = configured.token("alice", &[]);
    let (status, body) = body_json(
        configured
            .with(Method::POST, "/api/flist/me/docker", &token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(urlencoded(&[("image", image.as_str())]))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    // Only the registries the configuration allows.
    let (status, body) = convert(
        &configured,
        &token,
        json!({"image": "elsewhere.example:5000/app:1"}),
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("allowed-registries"),
        "{body}"
    );
}

#[test]
fn limits_shared_conversions_cancellation_timeouts_and_restarts() {
    let Some(registry) = RegistryServer::start() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    push_image(
        &registry,
        work.path(),
        "test/big:v1",
        &[("blob", noise(48 << 20, 11))],
    );
    push_image(
        &registry,
        work.path(),
        "test/small:v1",
        &[("small", b"small\n".to_vec())],
    );
    let big = format!("{}/test/big:v1", registry.host());
    let small = format!("{}/test/small:v1", registry.host());
    let mut hub = HubServer::start(&format!(
        "{PRIVATE_NETWORKS}concurrent = 1\nper-identity = 2\nregistry-timeout = \"3s\"\n"
    ));
    let alice = hub.token("alice", &[]);
    let bob = hub.token("bob", &[]);

    // Two requests for the same image: one conversion, two flists; a listener attached
    // in the middle sees the rest of the events.
    let (_, first) = convert(&hub, &alice, json!({"image": big, "name": "big-a"}));
    let (_, second) = convert(&hub, &bob, json!({"image": big, "name": "big-b"}));
    let (first, second) = (
        first["id"].as_str().unwrap().to_owned(),
        second["id"].as_str().unwrap().to_owned(),
    );
    let seen = events(&hub, &second);
    let last = seen.last().unwrap();
    assert_eq!(last["status"], "info", "{seen:?}");
    let a = wait_job(&hub, &alice, &first);
    let b = wait_job(&hub, &bob, &second);
    assert_eq!(
        (a["state"].as_str(), b["state"].as_str()),
        (Some("succeeded"), Some("succeeded")),
        "{a} {b}"
    );
    assert_eq!(
        [
            a["result"]["shared"].as_bool(),
            b["result"]["shared"].as_bool()
        ]
        .iter()
        .filter(|s| **s == Some(true))
        .count(),
        1,
        "exactly one followed the other: {a} {b}"
    );
    let md5 = |path: &str| hub.get(path).text().unwrap();
    assert_eq!(md5("/alice/big-a.flist.md5"), md5("/bob/big-b.flist.md5"));

    // A registry that stops answering: requests wait, then time out.
    registry.pause();
    let (_, stuck) = convert(&hub, &alice, json!({"image": small, "name": "stuck"}));
    let (_, cancelled) = convert(&hub, &alice, json!({"image": small, "name": "cancelled"}));
    // A third at once is over alice's limit; bob still may.
    let (status, body) = convert(&hub, &alice, json!({"image": small, "name": "third"}));
    assert_eq!(status, 429, "{body}");
    let stuck = stuck["id"].as_str().unwrap().to_owned();
    let cancelled = cancelled["id"].as_str().unwrap().to_owned();
    // Cancelling: only the owner, only once.
    let cancel = |token: &str| {
        body_json(
            hub.with(Method::DELETE, &format!("/api/v1/jobs/{cancelled}"), token)
                .send()
                .unwrap(),
        )
    };
    assert_eq!(cancel(&bob).0, 403);
    assert_eq!(cancel(&alice).0, 202);
    let gone = wait_job(&hub, &alice, &cancelled);
    assert_eq!(gone["state"], "cancelled", "{gone}");
    assert_eq!(cancel(&alice).0, 409);
    let timed_out = wait_job(&hub, &alice, &stuck);
    assert_eq!(timed_out["state"], "failed");
    assert!(
        timed_out["error"]
            .as_str()
            .unwrap()
            .contains("does not answer"),
        "{timed_out}"
    );
    let (status, _) = body_json(hub.get("/api/flist/alice/stuck.flist/light"));
    assert_eq!(status, 404);

    // A restart in the middle of a job: marked failed, never left running.
    let (_, during) = convert(&hub, &alice, json!({"image": small, "name": "during"}));
    let during = during["id"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(job(&hub, &alice, &during)["state"], "running");
    hub.restart();
    registry.resume();
    let after = job(&hub, &alice, &during);
    assert_eq!(after["state"], "failed", "{after}");
    assert!(
        after["error"].as_str().unwrap().contains("interrupted"),
        "{after}"
    );
    assert!(
        after["message"]
            .as_str()
            .unwrap()
            .contains("Pulling docker image"),
        "{after}"
    );
    // And the hub converts again.
    let (_, again) = convert(&hub, &alice, json!({"image": small, "name": "after"}));
    assert_eq!(
        wait_job(&hub, &alice, again["id"].as_str().unwrap())["state"],
        "succeeded"
    );
}

#[test]
fn push_image_converts_here_and_uploads_only_the_missing_chunks() {
    let Some(registry) = RegistryServer::start() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    push_image(
        &registry,
        w,
        "test/pushed:v1",
        &[("data", noise(3 << 20, 21)), ("hello", b"hi\n".to_vec())],
    );
    let hub = HubServer::start(PRIVATE_NETWORKS);
    let token = hub.token("alice", &[]);
    let image = format!("{}/test/pushed:v1", registry.host());
    let push = || {
        json(&ok(flisthub(
            w,
            args![
                "push", "--image", image, "--hub", hub.url, "--token", token, "--json"
            ],
        )))
    };
    let first = push();
    let name = format!("{}-test-pushed-v1.flist", registry.host().replace(':', "-"));
    assert_eq!(first["name"], name.as_str(), "{first}");
    assert!(first["uploaded"].as_u64().unwrap() > 1, "{first}");
    let again = push();
    assert_eq!(again["uploaded"], 0, "{again}");
    assert_eq!(again["md5"], first["md5"]);
    let url = format!("{}/alice/{name}", hub.url);
    let hello = ok(flisthub(w, args!["cat", url, "hello"]));
    assert_eq!(hello.stdout, b"hi\n");

    // A source and an image at once, or neither, is a usage error.
    let both = fails(flisthub(
        w,
        args![
            "push", w, "--image", image, "--hub", hub.url, "--token", token
        ],
    ));
    assert!(both.contains("cannot be used with"), "{both}");
}
