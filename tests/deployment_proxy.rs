//! `deployment/nginx.conf` in front of a real hub, as the example is written but for its
//! addresses and certificate (free loopback ports, a self-signed one): TLS and the redirect
//! to it, an upload larger than nginx's default body limit, a job's server-sent events,
//! 0-hub's `INFO` method, and `X-Forwarded-For` with `server.trust-forwarded`: the hub
//! limits clients by the address nginx saw, whatever address a client writes.

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::hub::HubServer;
use common::{noise, tar_of};

#[test]
fn nginx_example_proxies_the_hub() {
    if !testkit::need("nginx") || !testkit::need("openssl") || !testkit::need("curl") {
        return;
    }
    // Reads are limited (per client address) so that the test can see which address the
    // hub takes; the burst leaves room for the requests before that check.
    let hub = HubServer::start(
        "[server]\ntrust-forwarded = true\n[limits]\nread-rate = 1\nread-burst = 20\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let (http, https) = (testkit::free_port(false), testkit::free_port(false));
    let nginx = Nginx::start(
        dir.path(),
        hub.url.trim_start_matches("http://"),
        http,
        https,
    );
    let proxy = format!("https://127.0.0.1:{https}");

    let (status, _) = curl(&[&format!("http://127.0.0.1:{http}/api/v1/health")]);
    assert_eq!(status, 301, "plain HTTP is sent to HTTPS");
    let (status, body) = curl(&[&format!("{proxy}/api/v1/health")]);
    assert_eq!(status, 200, "{body}");

    // 3 MiB: over nginx's default client_max_body_size (1 MiB).
    let token = hub.token("deploy", &[]);
    let tree = tempfile::tempdir().unwrap();
    std::fs::write(tree.path().join("app"), noise(3 << 20, 5)).unwrap();
    let archive = dir.path().join("app.tar.gz");
    std::fs::write(&archive, tar_of(tree.path(), &["-z"])).unwrap();
    let auth = format!("Authorization: Bearer {token}");
    let file = format!("file=@{}", archive.display());
    let (status, body) = curl(&[
        "-H",
        &auth,
        "-F",
        &file,
        &format!("{proxy}/api/flist/me/upload"),
    ]);
    assert_eq!(status, 200, "upload through the proxy: {body}");
    let (status, body) = curl(&["-X", "INFO", &format!("{proxy}/api/flist/deploy/app.flist")]);
    assert_eq!(status, 200, "INFO through the proxy: {body}");
    // What the README says of nginx: it refuses a method with a lower-case letter itself.
    let (status, _) = curl(&["-X", "Info", &format!("{proxy}/api/flist/deploy/app.flist")]);
    assert_eq!(status, 400);

    // A web upload's job, followed through the proxy to its end.
    let (status, body) = curl(&["-H", &auth, "-F", &file, &format!("{proxy}/upload")]);
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let job = answer["jobid"].as_str().unwrap();
    let (status, events) = curl(&["-N", &format!("{proxy}/listen/{job}")]);
    assert_eq!(status, 200);
    assert!(events.contains("data:"), "no event came through: {events}");
    assert!(events.contains("Image ready"), "{events}");

    // Clients that each write another X-Forwarded-For are still one address to the hub (the
    // one nginx appended), so its read limit catches them.
    let limited = (0..40).any(|i| {
        let forged = format!("X-Forwarded-For: 10.9.{}.{}", i / 200, i % 200 + 1);
        curl(&["-H", &forged, &format!("{proxy}/api/v1/health")]).0 == 429
    });
    assert!(
        limited,
        "forged X-Forwarded-For headers escaped the read limit"
    );
    // The hub does take the header (trust-forwarded): straight to it, a forged address is
    // another client. Hence the README's rule: only when every connection is the proxy's.
    let direct = curl(&[
        "-H",
        "X-Forwarded-For: 10.1.1.1",
        &format!("{}/api/v1/health", hub.url),
    ]);
    assert_eq!(direct.0, 200, "{}", direct.1);
    drop(nginx);
}

/// nginx with the example's server blocks, on loopback ports; stopped when dropped.
struct Nginx(Child);

impl Nginx {
    fn start(dir: &Path, upstream: &str, http: u16, https: u16) -> Nginx {
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let example = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deployment/nginx.conf"
        ))
        .unwrap();
        let mut site = example;
        for (from, to) in [
            ("server 127.0.0.1:5555;", format!("server {upstream};")),
            ("listen 80;", format!("listen 127.0.0.1:{http};")),
            ("listen [::]:80;", String::new()),
            (
                "listen 443 ssl http2;",
                format!("listen 127.0.0.1:{https} ssl http2;"),
            ),
            ("listen [::]:443 ssl http2;", String::new()),
            (
                "/etc/letsencrypt/live/hub.example.com/fullchain.pem",
                dir.join("cert.pem").display().to_string(),
            ),
            (
                "/etc/letsencrypt/live/hub.example.com/privkey.pem",
                dir.join("key.pem").display().to_string(),
            ),
        ] {
            assert!(site.contains(from), "nginx.conf no longer has {from:?}");
            site = site.replace(from, &to);
        }
        std::fs::write(dir.join("site.conf"), site).unwrap();
        let d = dir.display();
        // Workers run as root only because the test runs as root and its files are private.
        let user = if common::is_root() { "user root;" } else { "" };
        std::fs::write(
            dir.join("nginx.conf"),
            format!(
                "{user}\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\n\
                 http {{\n access_log off;\n client_body_temp_path {d}/body;\n\
                 proxy_temp_path {d}/proxy;\n include {d}/site.conf;\n}}\n"
            ),
        )
        .unwrap();
        let child = Command::new("nginx")
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-p", &d.to_string(), "-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut nginx = Nginx(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", https)).is_err() {
            if let Ok(Some(_)) = nginx.0.try_wait() {
                let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                panic!("nginx did not start: {log}");
            }
            assert!(Instant::now() < deadline, "nginx did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT: nginx's graceful stop; the master then ends its workers.
        let _ = Command::new("kill")
            .args(["-QUIT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// `curl -sk` (the certificate is self-signed): the status and the body.
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "60", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}
