//! What a hub's image conversions may reach (its egress rule): by default, registries on
//! public addresses only, whatever way a private one is named; a redirect to another host
//! for blobs alone, and checked like the registry; never a remote answer shown to the
//! caller. A registry the operator lists, or a hub told to reach private networks, is
//! reached on loopback; the command line is not restricted.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::hub::*;
use common::images::*;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::RegistryServer;

/// What the fake registry answers: status, headers, body.
type Answer = (u16, Vec<(&'static str, String)>, Vec<u8>);

/// A registry of our own on loopback that answers each GET with `answer(path, its
/// Authorization header)`: the redirects, challenges and failures a test needs. Counts the
/// requests it gets.
struct FakeRegistry {
    host: String,
    requests: Arc<AtomicUsize>,
}

impl FakeRegistry {
    fn start(
        answer: impl Fn(&str, Option<&str>) -> Answer + Send + Sync + 'static,
    ) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let (answer, counted) = (Arc::new(answer), Arc::clone(&requests));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (answer, counted) = (Arc::clone(&answer), Arc::clone(&counted));
                std::thread::spawn(move || {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let _ = respond(stream, answer.as_ref());
                });
            }
        });
        FakeRegistry { host, requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads one request's head and writes `answer`'s response (one request a connection).
fn respond(
    stream: TcpStream,
    answer: &dyn Fn(&str, Option<&str>) -> Answer,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split(' ').nth(1).unwrap_or("/").to_owned();
    let mut authorization = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? <= 2 {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_owned());
        }
    }
    let (status, headers, body) = answer(&path, authorization.as_deref());
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    )?;
    for (name, value) in headers {
        write!(out, "{name}: {value}\r\n")?;
    }
    out.write_all(b"\r\n")?;
    out.write_all(&body)?;
    out.flush()
}

/// Lines of /etc/hosts for the length of a test: appended, and cut off again with one
/// truncate, so that a reader sees the file with the lines or without them, never in part.
struct HostsEntry {
    original: u64,
    line: String,
}

impl HostsEntry {
    const FILE: &str = "/etc/hosts";

    fn add(entries: &[(&str, &str)]) -> Option<HostsEntry> {
        let before = std::fs::read(Self::FILE).ok()?;
        if before.last().is_some_and(|b| *b != b'\n') {
            return None;
        }
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(Self::FILE)
            .ok()?;
        let line: String = entries
            .iter()
            .map(|(address, name)| format!("{address} {name}\n"))
            .collect();
        file.write_all(line.as_bytes()).ok()?;
        Some(HostsEntry {
            original: before.len() as u64,
            line,
        })
    }
}

impl Drop for HostsEntry {
    fn drop(&mut self) {
        let now = std::fs::read(Self::FILE).unwrap_or_default();
        // Only if nobody else changed the file meanwhile.
        if now.len() as u64 == self.original + self.line.len() as u64
            && now.ends_with(self.line.as_bytes())
        {
            let file = std::fs::OpenOptions::new().write(true).open(Self::FILE);
            let _ = file.and_then(|f| f.set_len(self.original));
        } else {
            eprintln!(
                "/etc/hosts changed during the test: {:?} left in it",
                self.line
            );
        }
    }
}

fn docker(hub: &HubServer, token: &str, image: &str) -> (u16, Value) {
    let form = reqwest::blocking::multipart::Form::new().text("image", image.to_owned());
    body_json(
        hub.with(Method::POST, "/api/flist/me/docker", token)
            .multipart(form)
            .send()
            .unwrap(),
    )
}

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

#[test]
fn a_default_hub_refuses_registries_on_private_addresses_however_named() {
    // Anything it is asked, it answers; it must be asked nothing.
    let fake = FakeRegistry::start(|_, _| (200, vec![], b"{}".to_vec()));
    let port = fake.host.rsplit(':').next().unwrap().to_owned();
    let hub = HubServer::start("");
    let token = hub.token("alice", &[]);
    // Names of a private and an IPv6 loopback address (image references cannot write an
    // IPv6 address: `[::1]:5000/app` is not one).
    let (private_name, loopback6_name) = (
        format!("flisthub-egress-{}.test", std::process::id()),
        format!("flisthub-egress6-{}.test", std::process::id()),
    );
    let hosts = HostsEntry::add(&[("10.20.30.40", &private_name), ("::1", &loopback6_name)]);
    if hosts.is_none() {
        println!("SKIP (in part): /etc/hosts cannot be written, no names of private addresses");
    }
    let mut registries = vec![
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("0.0.0.0:{port}"),
        format!("2130706433:{port}"), // 127.0.0.1 as one number
        "10.1.2.3:5000".into(),
        "169.254.169.254".into(),
        "100.64.0.1".into(),
        "192.168.1.1:5000".into(),
    ];
    if hosts.is_some() {
        registries.push(format!("{private_name}:5000"));
        registries.push(format!("{loopback6_name}:{port}"));
    }
    for registry in &registries {
        let (status, body) = docker(&hub, &token, &format!("{registry}/test/app:v1"));
        assert_eq!(status, 403, "{registry}: {body}");
        let said = message(&body);
        assert!(
            said.contains(&format!("refused: the registry {registry}:"))
                && said.contains("not on a public address"),
            "{registry}: {said}"
        );
        // The registry as named, not what it resolved to.
        assert!(
            registry.contains("127.0.0.1") || !said.contains("127.0.0.1"),
            "{said}"
        );
        assert!(!said.contains("10.20.30.40"), "{said}");
    }
    drop(hosts);
    let (status, body) = docker(&hub, &token, &format!("[::1]:{port}/test/app:v1"));
    assert_eq!(status, 400, "{body}");

    // The same as a job: its record and its events say it.
    let image = format!("localhost:{port}/test/app:v1");
    let (status, body) = convert(&hub, &token, json!({"image": image}));
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap();
    let failed = wait_job(&hub, &token, id);
    assert_eq!(failed["state"], "failed");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("refused: the registry localhost:"),
        "{failed}"
    );
    let events = events(&hub, id);
    assert_eq!(events.last().unwrap()["status"], "error", "{events:?}");
    assert!(
        events.last().unwrap().to_string().contains("refused"),
        "{events:?}"
    );

    assert_eq!(
        fake.requests(),
        0,
        "nothing is fetched from a refused registry"
    );
}

#[test]
fn redirects_for_blobs_only_and_no_remote_answer_shown() {
    let Some(registry) = RegistryServer::start() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    push_image(
        &registry,
        work.path(),
        "test/app:v1",
        &[("hello", b"hello\n".to_vec())],
    );
    let manifest = registry.manifest("test/app:v1");
    let media_type = serde_json::from_slice::<Value>(&manifest).unwrap()["mediaType"]
        .as_str()
        .unwrap_or("application/vnd.oci.image.manifest.v1+json")
        .to_owned();
    let real = registry.host();
    let real_port = real.rsplit(':').next().unwrap().to_owned();
    const SECRET: &str = "SECRET-7f3a9c-db-password";
    let host = Arc::new(std::sync::OnceLock::<String>::new());
    let own = Arc::clone(&host);
    let fake = FakeRegistry::start(move |path, authorization| {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let segments: Vec<&str> = path.trim_start_matches("/v2/").split('/').collect();
        let bearer = authorization == Some("Bearer t0ken");
        match segments.as_slice() {
            // Docker Hub's way: a token from the service the challenge names, then blobs
            // from storage elsewhere (without the token).
            ["", "token"] if query.contains("scope=repository%3Atok%2Fapp%3Apull") => {
                (200, vec![], br#"{"token": "t0ken"}"#.to_vec())
            }
            ["tok", "app", "manifests", _] if bearer => (
                200,
                vec![("Content-Type", media_type.clone())],
                manifest.clone(),
            ),
            ["tok", "app", "blobs", digest] if bearer => (
                307,
                vec![(
                    "Location",
                    format!("http://localhost:{real_port}/v2/test/app/blobs/{digest}"),
                )],
                vec![],
            ),
            ["tok", ..] => (
                401,
                vec![(
                    "WWW-Authenticate",
                    format!(
                        r#"Bearer realm="http://{}/token",service="fake""#,
                        own.get().unwrap()
                    ),
                )],
                vec![],
            ),
            // A manifest sent to another host: never followed.
            ["moved", "app", "manifests", tag] => (
                307,
                vec![(
                    "Location",
                    format!("http://{real}/v2/test/app/manifests/{tag}"),
                )],
                vec![],
            ),
            // Blobs from another host (by a name of loopback): followed only if the hub
            // reaches that address.
            ["blobs", "app", "manifests", _] => (
                200,
                vec![("Content-Type", media_type.clone())],
                manifest.clone(),
            ),
            ["blobs", "app", "blobs", digest] => (
                307,
                vec![(
                    "Location",
                    format!("http://localhost:{real_port}/v2/test/app/blobs/{digest}"),
                )],
                vec![],
            ),
            // A token service on a private address.
            ["token", "app", "manifests", _] => (
                401,
                vec![(
                    "WWW-Authenticate",
                    format!(r#"Bearer realm="http://localhost:{real_port}/token",service="x""#),
                )],
                vec![],
            ),
            // What a service inside the network might say.
            ["failing", "app", "manifests", _] => (
                500,
                vec![],
                format!("internal error: {SECRET} at 10.0.0.7").into_bytes(),
            ),
            _ => (200, vec![], b"{}".to_vec()),
        }
    });
    host.set(fake.host.clone()).unwrap();
    let image = |repo: &str| format!("{}/{repo}/app:v1", fake.host);

    // A listed registry is reached on loopback; where it sends the hub is checked.
    let listed = HubServer::start(&format!(
        "[images]\nallowed-registries = [\"{}\"]\n",
        fake.host
    ));
    let token = listed.token("alice", &[]);
    let (status, body) = docker(&listed, &token, &image("moved"));
    assert_eq!(status, 403, "{body}");
    assert!(
        message(&body).contains("redirects a request that is not for a blob"),
        "{body}"
    );
    for repo in ["blobs", "token"] {
        let (status, body) = docker(&listed, &token, &image(repo));
        assert_eq!(status, 403, "{body}");
        assert!(
            message(&body).contains("sends the hub to an address that is not public"),
            "{body}"
        );
    }
    // A refusal: its status and a fixed phrase, in the answer, the job and its events.
    let (status, body) = docker(&listed, &token, &image("failing"));
    assert_eq!(status, 502, "{body}");
    assert!(message(&body).contains("answered 500"), "{body}");
    let (_, body) = convert(&listed, &token, json!({"image": image("failing")}));
    let id = body["id"].as_str().unwrap();
    let failed = wait_job(&listed, &token, id);
    assert_eq!(failed["state"], "failed");
    let seen = format!("{body} {failed} {:?} {}", events(&listed, id), listed.log());
    assert!(
        !seen.contains(SECRET) && !seen.contains("10.0.0.7"),
        "{seen}"
    );

    // A hub that reaches private networks follows a blob's redirect, never a manifest's.
    let open = HubServer::start(PRIVATE_NETWORKS);
    let token = open.token("alice", &[]);
    let (status, body) = docker(&open, &token, &image("blobs"));
    assert_eq!(status, 200, "{body}");
    let name = body["payload"]["name"].as_str().unwrap();
    let flist = open.get(&format!("/alice/{name}")).bytes().unwrap();
    std::fs::write(work.path().join("app.flist"), &flist).unwrap();
    let cat = ok(flisthub(
        work.path(),
        args!["cat", work.path().join("app.flist"), "hello"],
    ));
    assert_eq!(cat.stdout, b"hello\n");
    let (status, body) = docker(&open, &token, &image("moved"));
    assert_eq!(status, 403, "{body}");
    let (status, body) = docker(&open, &token, &image("tok"));
    assert_eq!(status, 200, "{body}");

    // The operator's command line reaches what the operator's machine reaches.
    let out = work.path().join("cli.flist");
    let store = format!("dir://{}", work.path().join("store").display());
    ok(flisthub(
        work.path(),
        args!["convert", image("blobs"), "-o", out, "--store", store],
    ));
    assert!(out.exists());
}
