//! A real `flisthub serve` process for black-box tests: its own data directory and
//! configuration, a free loopback port (the hub picks it: `--listen 127.0.0.1:0`), its log
//! kept for assertions and failure messages.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use chunkstore::ChunkKey;
use reqwest::blocking::{Client, RequestBuilder, Response, multipart};

pub struct HubServer {
    child: Option<Child>,
    pub url: String,
    pub dir: tempfile::TempDir,
    config: String,
    log: Arc<Mutex<String>>,
    env: Vec<(String, String)>,
    /// The soft open-file limit the hub starts with, if not the test's own.
    file_limit: Option<u64>,
}

impl HubServer {
    /// Starts a hub with `config` (TOML, any section but `[server]`'s `listen` and
    /// `data-dir`, which the harness sets) over the defaults.
    pub fn start(config: &str) -> HubServer {
        Self::start_with_env(config, &[])
    }

    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> HubServer {
        Self::start_full(config, env, None)
    }

    /// Starts a hub whose soft open-file limit is `soft` (as under systemd's default of
    /// 1024), through util-linux's `prlimit`; `None` (after printing SKIP) without it.
    pub fn start_with_file_limit(config: &str, soft: u64) -> Option<HubServer> {
        if Command::new("prlimit").arg("--version").output().is_err() {
            println!("SKIP: prlimit (util-linux) is not installed");
            return None;
        }
        Some(Self::start_full(config, &[], Some(soft)))
    }

    fn start_full(config: &str, env: &[(&str, &str)], file_limit: Option<u64>) -> HubServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut hub = HubServer {
            child: None,
            url: String::new(),
            dir,
            config: config.to_owned(),
            log: Arc::default(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            file_limit,
        };
        hub.launch();
        hub
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    fn command(&self) -> Command {
        self.configure(Command::new(env!("CARGO_BIN_EXE_flisthub")))
    }

    /// `cmd` (flisthub, or a program that runs it) with this hub's environment and
    /// configuration.
    fn configure(&self, mut cmd: Command) -> Command {
        cmd.env("HOME", self.dir.path())
            .env("XDG_DATA_HOME", self.dir.path().join("xdg"))
            .env_remove("FLISTHUB_STORE")
            .env_remove("FLISTHUB_LOG")
            .env_remove("FLISTHUB_CONFIG")
            .arg("--config")
            .arg(self.config_path());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    fn launch(&mut self) {
        std::fs::write(self.config_path(), &self.config).expect("write the config");
        let mut command = match self.file_limit {
            None => self.command(),
            Some(soft) => {
                let mut prlimit = Command::new("prlimit");
                prlimit
                    .arg(format!("--nofile={soft}:"))
                    .arg(env!("CARGO_BIN_EXE_flisthub"));
                self.configure(prlimit)
            }
        };
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(self.data())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start flisthub serve");
        let stderr = child.stderr.take().expect("stderr");
        let (ready_tx, ready_rx) = mpsc::channel();
        let log = Arc::clone(&self.log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = ready_tx.send(url);
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        self.child = Some(child);
        match ready_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => self.url = url,
            Err(_) => panic!("the hub did not start; its log:\n{}", self.log()),
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Mints a token with `flisthub token create`.
    pub fn token(&self, user: &str, memberof: &[&str]) -> String {
        let mut cmd = self.command();
        cmd.args(["token", "create", "--user", user, "--data-dir"])
            .arg(self.data());
        for m in memberof {
            cmd.args(["--memberof", m]);
        }
        let out = cmd.output().expect("flisthub token create");
        assert!(
            out.status.success(),
            "token create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Adds a local account with `flisthub user add` (the password on standard input).
    pub fn add_user(&self, name: &str, password: &str, memberof: &[&str]) {
        use std::io::Write;
        let mut cmd = self.command();
        cmd.args(["user", "add", name, "--data-dir"])
            .arg(self.data());
        for m in memberof {
            cmd.args(["--memberof", m]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("flisthub user add");
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{password}").unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "user add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `flisthub token <args>` on this hub's data directory.
    pub fn token_command(&self, args: &[&str]) -> std::process::Output {
        self.command()
            .arg("token")
            .args(args)
            .arg("--data-dir")
            .arg(self.data())
            .output()
            .expect("flisthub token")
    }

    /// `flisthub <args> --data-dir <this hub's data>` with this hub's configuration, to run
    /// beside it.
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = self.command();
        cmd.args(args).arg("--data-dir").arg(self.data());
        cmd
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and returns at once.
    pub fn sigterm(&self) {
        if let Some(child) = &self.child {
            rustix::process::kill_process(
                rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
                rustix::process::Signal::TERM,
            )
            .unwrap();
        }
    }

    /// Waits for the process to exit; returns whether it exited cleanly.
    pub fn wait_exit(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        child.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// Starts the hub again on the same data directory (on a new port).
    pub fn restart(&mut self) {
        self.kill9();
        self.launch();
    }

    pub fn get(&self, path: &str) -> Response {
        client().get(format!("{}{path}", self.url)).send().unwrap()
    }

    /// A request with the token.
    pub fn with(&self, method: reqwest::Method, path: &str, token: &str) -> RequestBuilder {
        client()
            .request(method, format!("{}{path}", self.url))
            .header("Authorization", format!("Bearer {token}"))
    }

    /// Uploads an archive to `/api/flist/me/upload`.
    pub fn upload(&self, token: &str, file_name: &str, bytes: Vec<u8>) -> Response {
        self.upload_to("/api/flist/me/upload", token, file_name, bytes)
    }

    /// Sends `bytes` as the form field `file` named `file_name` to `path`.
    pub fn upload_to(&self, path: &str, token: &str, file_name: &str, bytes: Vec<u8>) -> Response {
        let form = multipart::Form::new().part(
            "file",
            multipart::Part::bytes(bytes).file_name(file_name.to_owned()),
        );
        self.with(reqwest::Method::POST, path, token)
            .multipart(form)
            .send()
            .unwrap()
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn client() -> Client {
    // reqwest's TLS is built without a crypto provider (the project uses ring's).
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// The body of a JSON answer, checked to end with a newline as 0-hub's did.
pub fn body_json(response: Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    assert!(text.ends_with('\n'), "no final newline: {text:?}");
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, value)
}

/// The keys of a JSON object, in order.
pub fn keys(value: &serde_json::Value) -> Vec<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// A gzip tarball of the directory `dir`, keeping nanoseconds and xattrs.
pub fn tar_gz(dir: &Path) -> Vec<u8> {
    super::tar_of(
        dir,
        &["--format=posix", "--xattrs", "--xattrs-include=*", "-z"],
    )
}

/// Sends `GET <path>` byte for byte (HTTP clients normalise `..` and `%2e%2e` away) and
/// returns the status code and the body.
pub fn raw_get(url: &str, path: &str) -> (u16, String) {
    raw_request(url, "GET", path, &[])
}

/// Sends a request byte for byte, with extra header lines (`Name: value`).
pub fn raw_request(url: &str, method: &str, path: &str, headers: &[String]) -> (u16, String) {
    use std::io::{Read, Write};
    let address = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A small tree with a file, a readme and a subdirectory, as a gzip tarball.
pub fn small_tarball(content: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), content).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/b"), b"bee").unwrap();
    tar_gz(dir.path())
}

/// `name` as one URL path segment: every byte but ASCII letters and digits percent-encoded.
pub fn segment(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A multipart/form-data body written byte for byte (HTTP clients encode odd field names
/// their own way): `(name, file name, content)` for each part. Returns the content type
/// and the body.
pub fn multipart_body(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "flisthub-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, file_name, content) in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
        );
        if let Some(file_name) = file_name {
            body.extend_from_slice(format!("; filename=\"{file_name}\"").as_bytes());
        }
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The chunk keys a native flist names (its `chunk` table).
pub fn flist_keys(hub: &HubServer, path: &str) -> HashSet<ChunkKey> {
    let bytes = hub.get(path).bytes().unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &bytes).unwrap();
    let conn = rusqlite::Connection::open(file.path()).unwrap();
    let mut stmt = conn.prepare("SELECT DISTINCT key FROM chunk").unwrap();
    stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|k| ChunkKey::from_bytes(k.unwrap().try_into().unwrap()))
        .collect()
}
