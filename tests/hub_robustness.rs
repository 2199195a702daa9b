//! A running hub under the conditions operators meet: many clients publishing and
//! downloading the same name at once, `kill -9` in the middle of an upload and of a job,
//! a chunk store that goes away mid-upload, SIGTERM with an upload in flight, several
//! listeners on a job's progress, rate limits, and a first start with no configuration.

mod common;

use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::hub::*;
use common::*;
use reqwest::Method;
use reqwest::blocking::multipart::{Form, Part};
use serde_json::Value;

const FAST_WRITES: &str = "[limits]\nwrite-rate = 10000\nwrite-burst = 10000\nuploads-per-identity = 8\nconcurrent-uploads = 17\n";

/// md5 by coreutils, so that the check does not trust the hub's own code.
fn md5_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("md5sum");
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    String::from_utf8(out.stdout).unwrap()[..32].to_owned()
}

/// A tar archive of one file of `size` random bytes.
fn noise_tar(size: usize, seed: u64) -> Vec<u8> {
    let mut tar = member(b"data.bin", b'0', &noise(size, seed), b"");
    tar.extend(end_of_archive());
    tar
}

/// Hands out its bytes in 64 KiB pieces, `pause` apart, and counts what was read.
struct Slow {
    data: Vec<u8>,
    at: usize,
    pause: Duration,
    sent: Arc<AtomicU64>,
}

impl Read for Slow {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at > 0 {
            std::thread::sleep(self.pause);
        }
        let n = buf.len().min(64 << 10).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// An HTTP answer (status, body), or why there was none.
type Answer = Result<(u16, String), String>;

/// Starts a slow streamed upload of `data` as `file_name`; returns the bytes sent so far
/// and the answer (status, body, or the transport error) once it comes.
fn slow_upload(
    hub: &HubServer,
    token: &str,
    file_name: &str,
    data: Vec<u8>,
    pause: Duration,
) -> (Arc<AtomicU64>, mpsc::Receiver<Answer>) {
    let sent = Arc::new(AtomicU64::new(0));
    let len = data.len() as u64;
    let reader = Slow {
        data,
        at: 0,
        pause,
        sent: Arc::clone(&sent),
    };
    let form = Form::new().part(
        "file",
        Part::reader_with_length(reader, len).file_name(file_name.to_owned()),
    );
    let request = hub
        .with(Method::POST, "/api/flist/me/upload", token)
        .multipart(form);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let answer = request
            .send()
            .map(|r| (r.status().as_u16(), r.text().unwrap_or_default()))
            .map_err(|e| e.to_string());
        let _ = tx.send(answer);
    });
    (sent, rx)
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The hub's database and flist files agree: integrity check passes, every file has a
/// row and every row a file, the staging area is empty.
fn assert_consistent(hub: &HubServer) {
    let db = rusqlite::Connection::open_with_flags(
        hub.data().join("hub.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let rows: HashSet<String> = db
        .prepare("SELECT sha256 FROM blob")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let files: HashSet<String> = walkdir::WalkDir::new(hub.data().join("flists"))
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(rows, files, "flist files and blob rows differ");
    let staging: Vec<_> = std::fs::read_dir(hub.data().join("tmp")).unwrap().collect();
    assert!(staging.is_empty(), "left in staging: {staging:?}");
}

#[test]
fn concurrent_publishers_and_readers_of_one_name_only_ever_see_whole_flists() {
    let hub = HubServer::start(FAST_WRITES);
    let token = hub.token("alice", &[]);
    let versions: Vec<Vec<u8>> = (0..4)
        .map(|i| small_tarball(&format!("version {i}")))
        .collect();
    let published = Arc::new(Mutex::new(HashSet::new()));
    let uploads_done = Arc::new(AtomicBool::new(false));

    let downloaders: Vec<_> = (0..4)
        .map(|_| {
            let (url, done) = (hub.url.clone(), Arc::clone(&uploads_done));
            std::thread::spawn(move || {
                let c = client();
                let mut seen = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    let response = c.get(format!("{url}/alice/app.flist")).send().unwrap();
                    if response.status() == 404 {
                        continue;
                    }
                    assert_eq!(response.status(), 200);
                    let length: usize = response.headers()["content-length"]
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    let bytes = response.bytes().unwrap();
                    assert_eq!(bytes.len(), length, "a short download");
                    let md5 = c
                        .get(format!("{url}/alice/app.flist.md5"))
                        .send()
                        .unwrap()
                        .text()
                        .unwrap();
                    seen.push((bytes.to_vec(), md5.trim().to_owned()));
                }
                seen
            })
        })
        .collect();
    let uploaders: Vec<_> = versions
        .iter()
        .map(|version| {
            let (url, token, version, published) = (
                hub.url.clone(),
                token.clone(),
                version.clone(),
                Arc::clone(&published),
            );
            std::thread::spawn(move || {
                for _ in 0..5 {
                    let form = Form::new()
                        .part("file", Part::bytes(version.clone()).file_name("x.tar.gz"));
                    let response = client()
                        .post(format!("{url}/api/flist/me/upload"))
                        .header("Authorization", format!("Bearer {token}"))
                        .header("X-Original-Name", "app.tar.gz")
                        .multipart(form)
                        .send()
                        .unwrap();
                    let (status, body) = body_json(response);
                    assert_eq!(status, 200, "{body}");
                    published
                        .lock()
                        .unwrap()
                        .insert(body["payload"]["md5"].as_str().unwrap().to_owned());
                }
            })
        })
        .collect();
    for uploader in uploaders {
        uploader.join().unwrap();
    }
    uploads_done.store(true, Ordering::Relaxed);
    let published = published.lock().unwrap().clone();
    assert_eq!(
        published.len(),
        versions.len(),
        "the same input gives the same flist"
    );

    let mut checked = HashSet::new();
    let mut downloads = 0;
    for downloader in downloaders {
        for (bytes, md5_answer) in downloader.join().unwrap() {
            downloads += 1;
            let md5 = md5_hex(&bytes);
            assert!(
                published.contains(&md5),
                "a download matches no published flist"
            );
            assert!(
                published.contains(&md5_answer),
                ".md5 names no published flist"
            );
            if checked.insert(md5) {
                let file = tempfile::NamedTempFile::new().unwrap();
                std::fs::write(file.path(), &bytes).unwrap();
                let inspected = ok(flisthub(
                    file.path().parent().unwrap(),
                    args!["inspect", file.path(), "--json"],
                ));
                assert_eq!(json(&inspected)["totals"]["files"], 2, "a whole flist");
            }
        }
    }
    assert!(downloads > 0, "the readers never saw the flist");
    let last = hub.get("/alice/app.flist").bytes().unwrap();
    assert_eq!(
        hub.get("/alice/app.flist.md5").text().unwrap(),
        format!("{}\n", md5_hex(&last))
    );
    let (_, listing) = body_json(hub.get("/api/flist/alice"));
    assert_eq!(listing.as_array().unwrap().len(), 1);
    assert_consistent(&hub);
}

#[test]
fn kill_9_during_an_upload_and_a_job_leaves_nothing_half_done() {
    // The chunk store is frozen (SIGSTOP) before the job starts: its first store call
    // waits, so the job is certainly running when the hub is killed.
    let Some(redis) = testkit::RedisServer::start() else {
        return;
    };
    let mut hub = HubServer::start(&format!(
        "{FAST_WRITES}[store]\nurl = \"{}/0?timeout=120s\"\n",
        redis.url()
    ));
    let token = hub.token("alice", &[]);
    assert_eq!(
        hub.upload(&token, "kept.tar.gz", small_tarball("kept"))
            .status(),
        200
    );

    let (sent, answer) = slow_upload(
        &hub,
        &token,
        "app.tar",
        noise_tar(24 << 20, 1),
        Duration::from_millis(10),
    );
    wait_until("the upload to start", Duration::from_secs(30), || {
        sent.load(Ordering::Relaxed) > 4 << 20
    });
    redis.pause();
    let form = Form::new().part(
        "file",
        Part::bytes(small_tarball("job")).file_name("job.tar.gz"),
    );
    let (status, started) = body_json(
        hub.with(Method::POST, "/upload", &token)
            .multipart(form)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{started}");
    let job = started["jobid"].as_str().unwrap().to_owned();
    wait_until("the job to run", Duration::from_secs(30), || {
        body_json(
            hub.with(Method::GET, &format!("/api/v1/jobs/{job}"), &token)
                .send()
                .unwrap(),
        )
        .1["state"]
            == "running"
    });

    hub.kill9();
    assert!(
        answer
            .recv_timeout(Duration::from_secs(30))
            .unwrap()
            .is_err(),
        "the upload got an answer"
    );
    redis.resume();
    hub.restart();

    let (_, listing) = body_json(hub.get("/api/flist/alice"));
    let names: Vec<&str> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["kept.flist"],
        "nothing of the interrupted work is visible"
    );
    let (_, status) = body_json(
        hub.with(Method::GET, &format!("/api/v1/jobs/{job}"), &token)
            .send()
            .unwrap(),
    );
    assert_eq!(status["state"], "failed");
    assert!(
        status["error"].as_str().unwrap().contains("interrupted"),
        "{status}"
    );
    let events = hub.get(&format!("/listen/{job}")).text().unwrap();
    assert!(
        events.contains("\"status\": \"error\"") && events.contains("interrupted"),
        "{events}"
    );
    assert_consistent(&hub);
    // The hub works on after the restart.
    assert_eq!(
        hub.upload(&token, "after.tar.gz", small_tarball("after"))
            .status(),
        200
    );
}

#[test]
fn a_store_that_goes_away_mid_upload_fails_it_cleanly() {
    let Some(mut redis) = testkit::RedisServer::start() else {
        return;
    };
    let hub = HubServer::start(&format!(
        "{FAST_WRITES}[store]\nurl = \"{}/0?timeout=1s&connect-timeout=1s\"\n",
        redis.url()
    ));
    let token = hub.token("alice", &[]);
    assert_eq!(body_json(hub.get("/api/v1/health")).0, 200);
    let before = hub.get("/api/flist").text().unwrap();

    let (sent, answer) = slow_upload(
        &hub,
        &token,
        "app.tar",
        noise_tar(12 << 20, 2),
        Duration::from_millis(5),
    );
    wait_until("the upload to start", Duration::from_secs(30), || {
        sent.load(Ordering::Relaxed) > 3 << 20
    });
    redis.kill();
    let (status, body) = answer
        .recv_timeout(Duration::from_secs(60))
        .unwrap()
        .unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("the chunk store is unavailable; nothing was published"),
        "{body}"
    );
    assert_eq!(hub.get("/api/flist").text().unwrap(), before);
    assert_consistent(&hub);

    let (status, health) = body_json(hub.get("/api/v1/health"));
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["database"]["ok"], true);
    assert_eq!(health["store"][0]["ok"], false, "{health}");
    assert_eq!(health["store"][0]["state"], "unavailable", "{health}");

    // A replacement server: the hub reconnects and publishes again.
    redis.replace_empty();
    wait_until(
        "the store to be healthy again",
        Duration::from_secs(30),
        || body_json(hub.get("/api/v1/health")).0 == 200,
    );
    assert_eq!(
        hub.upload(&token, "app.tar.gz", small_tarball("again"))
            .status(),
        200
    );
    assert!(redis.dbsize() > 0);
}

#[test]
fn sigterm_lets_an_upload_in_flight_finish() {
    let mut hub = HubServer::start(FAST_WRITES);
    let token = hub.token("alice", &[]);
    let (sent, answer) = slow_upload(
        &hub,
        &token,
        "app.tar",
        noise_tar(6 << 20, 3),
        Duration::from_millis(10),
    );
    wait_until("the upload to start", Duration::from_secs(30), || {
        sent.load(Ordering::Relaxed) > 1 << 20
    });
    hub.sigterm();
    wait_until(
        "new connections to be refused",
        Duration::from_secs(10),
        || {
            client()
                .get(format!("{}/api/flist", hub.url))
                .send()
                .is_err()
        },
    );
    let (status, body) = answer
        .recv_timeout(Duration::from_secs(60))
        .unwrap()
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        hub.wait_exit(),
        "the hub did not exit cleanly; its log:\n{}",
        hub.log()
    );
    assert!(hub.log().contains("stopped"), "{}", hub.log());
    assert!(sent.load(Ordering::Relaxed) >= 6 << 20);
}

/// The `data:` lines of a server-sent event stream, parsed.
fn events(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

#[test]
fn job_progress_reaches_every_listener() {
    let hub = HubServer::start(FAST_WRITES);
    let token = hub.token("alice", &[]);
    let form = Form::new().part(
        "file",
        Part::bytes(noise_tar(48 << 20, 4)).file_name("big.tar"),
    );
    let (status, started) = body_json(
        hub.with(Method::POST, "/upload", &token)
            .multipart(form)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{started}");
    assert_eq!(common::hub::keys(&started), ["jobid", "status"]);
    let job = started["jobid"].as_str().unwrap().to_owned();
    let listeners: Vec<_> = (0..3)
        .map(|_| {
            let url = format!("{}/listen/{job}", hub.url);
            std::thread::spawn(move || {
                let response = client().get(url).send().unwrap();
                assert_eq!(response.headers()["content-type"], "text/event-stream");
                events(&response.text().unwrap())
            })
        })
        .collect();
    for listener in listeners {
        let events = listener.join().unwrap();
        let n = events.len();
        assert!(n >= 2, "{events:?}");
        let mut progress = 0;
        for update in &events[..n - 1] {
            assert_eq!(common::hub::keys(update), ["status", "message", "progress"]);
            assert_eq!(update["status"], "update");
            let p = update["progress"].as_u64().unwrap();
            assert!(p >= progress, "progress went back: {events:?}");
            progress = p;
        }
        assert_eq!(events[n - 2]["message"], "Image ready !");
        assert_eq!(events[n - 2]["progress"], 100);
        assert_eq!(events[n - 1]["status"], "info");
        assert_eq!(events[n - 1]["info"]["filename"], "big.flist");
        assert_eq!(events[n - 1]["info"]["flist"]["regular"], 1);
    }
    // After the end: the outcome again (0-hub answered 404), and the job's record.
    let late = events(&hub.get(&format!("/listen/{job}")).text().unwrap());
    assert_eq!(late.last().unwrap()["status"], "info");
    // The record is its owner's; anonymous callers get what an unknown id gets.
    assert_eq!(hub.get(&format!("/api/v1/jobs/{job}")).status(), 401);
    let (_, record) = body_json(
        hub.with(Method::GET, &format!("/api/v1/jobs/{job}"), &token)
            .send()
            .unwrap(),
    );
    assert_eq!(record["state"], "succeeded");
    assert_eq!(record["message"], "Image ready !");
    assert_eq!(record["result"]["filename"], "big.flist");
    let (_, mine) = body_json(
        hub.with(Method::GET, "/api/v1/jobs", &token)
            .send()
            .unwrap(),
    );
    assert_eq!(mine[0]["id"], job.as_str());
    assert_eq!(hub.get("/alice/big.flist").status(), 200);
}

#[test]
fn rate_limits_answer_429_with_retry_after() {
    let hub = HubServer::start(
        "[limits]\nwrite-rate = 1\nwrite-burst = 3\nread-rate = 1\nread-burst = 30\n",
    );
    let token = hub.token("alice", &[]);
    let statuses: Vec<u16> = (0..5)
        .map(|_| {
            hub.with(Method::GET, "/api/flist/me", &token)
                .send()
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    let limited = hub
        .with(Method::GET, "/api/flist/me", &token)
        .send()
        .unwrap();
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let (status, body) = body_json(limited);
    assert_eq!(status, 429);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("too many write requests"),
        "{body}"
    );
    // Reads are limited per address, past their burst.
    let reads: Vec<u16> = (0..40)
        .map(|_| hub.get("/api/flist").status().as_u16())
        .collect();
    assert_eq!(reads[0], 200, "{reads:?}");
    assert!(reads.contains(&429), "{reads:?}");
}

#[test]
fn serve_with_no_configuration_runs_on_the_embedded_defaults() {
    let home = tempfile::tempdir().unwrap();
    let command = || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_flisthub"));
        cmd.env("HOME", home.path())
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("FLISTHUB_CONFIG")
            .env_remove("FLISTHUB_STORE")
            .env_remove("FLISTHUB_LOG");
        cmd
    };
    let mut child = KillOnDrop(
        command()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = std::io::BufReader::new(child.0.stderr.take().unwrap());
    let (mut url, mut advice) = (String::new(), String::new());
    let mut line = String::new();
    while url.is_empty() || advice.is_empty() {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut lines, &mut line).unwrap() > 0,
            "the hub stopped"
        );
        if let Some(rest) = line.split("listening on ").nth(1) {
            url = rest.split_whitespace().next().unwrap().to_owned();
        }
        if line.contains("no token minted yet") {
            advice = line.clone();
        }
    }
    let data = home.path().join(".local/share/flisthub");
    assert!(
        advice.contains(&format!(
            "flisthub token create --user NAME --data-dir {}",
            data.display()
        )),
        "{advice}"
    );
    use std::os::unix::fs::PermissionsExt;
    let secret = std::fs::metadata(data.join("token-secret")).unwrap();
    assert_eq!(
        secret.permissions().mode() & 0o077,
        0,
        "the signing secret is private"
    );
    assert!(data.join("hub.sqlite3").exists());

    // The token command finds the same data directory by itself.
    let out = command()
        .args(["token", "create", "--user", "alice"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let response = client()
        .get(format!("{url}/api/flist/me"))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .unwrap();
    assert_eq!(body_json(response).1["payload"]["username"], "alice");
    let (status, health) = body_json(client().get(format!("{url}/api/v1/health")).send().unwrap());
    assert_eq!(status, 200, "{health}");
    // Anonymous: a neutral name and a state, never where the store is.
    assert_eq!(health["store"][0]["name"], "store 1", "{health}");
    assert_eq!(health["store"][0]["state"], "ok", "{health}");
    assert!(
        !health.to_string().contains(&*data.to_string_lossy()),
        "{health}"
    );
    let metrics = client()
        .get(format!("{url}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("flisthub_http_requests_total"),
        "{metrics}"
    );
}

/// A child process killed when the test ends, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_stalled_upload_is_cut_off_and_frees_its_slot() {
    let hub = HubServer::start(
        "[limits]\nidle-timeout = \"1s\"\nconcurrent-uploads = 3\nuploads-per-identity = 1\n",
    );
    let token = hub.token("alice", &[]);
    // A client that sends the start of a form and then nothing: written by hand, so that
    // what the hub answers can be read while the client still owes most of its body.
    use std::io::Write;
    let archive = noise_tar(1 << 20, 5);
    let (content_type, body) = multipart_body(&[("file", Some("app.tar"), &archive)]);
    let address = hub.url.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "POST /api/flist/me/upload HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..64 << 10]).unwrap();
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("limits.idle-timeout"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Its slot is free again: the one upload this identity may have goes through.
    assert_eq!(
        hub.upload(&token, "next.tar.gz", small_tarball("next"))
            .status(),
        200
    );
    assert_consistent(&hub);
}
