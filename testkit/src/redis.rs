use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::free_port;

/// A `redis-server` on a loopback port, killed when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    args: Vec<String>,
    tls: Option<PathBuf>,
    /// Cluster nodes also need port + 10000 free.
    bus: bool,
    /// Servers started so far, for fresh data directories.
    generation: u32,
}

impl RedisServer {
    /// Starts a plain server; `None` (and a message) if redis-server is not installed.
    pub fn start() -> Option<RedisServer> {
        Self::start_with(&[])
    }

    /// Starts a server with extra arguments (`--maxmemory 1mb`, ...).
    pub fn start_with(args: &[&str]) -> Option<RedisServer> {
        if !crate::need("redis-server") {
            return None;
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut server = RedisServer::new(
            dir,
            args.iter().map(|a| a.to_string()).collect(),
            None,
            false,
        );
        server.launch();
        Some(server)
    }

    /// Starts a server that only speaks TLS, with a certificate for 127.0.0.1 signed by a
    /// fresh CA ([`ca_file`](Self::ca_file)). `None` if openssl or redis-server is missing.
    pub fn start_tls() -> Option<RedisServer> {
        if !crate::need("redis-server") || !crate::need("openssl") {
            return None;
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        make_certificates(dir.path());
        let d = dir.path();
        let args = vec![
            "--port".into(),
            "0".into(),
            "--tls-cert-file".into(),
            d.join("server.crt").display().to_string(),
            "--tls-key-file".into(),
            d.join("server.key").display().to_string(),
            "--tls-ca-cert-file".into(),
            d.join("ca.crt").display().to_string(),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        let ca = d.join("ca.crt");
        let mut server = RedisServer::new(dir, args, Some(ca), false);
        server.launch();
        Some(server)
    }

    fn new(
        dir: tempfile::TempDir,
        args: Vec<String>,
        tls: Option<PathBuf>,
        bus: bool,
    ) -> RedisServer {
        RedisServer {
            child: None,
            port: 0,
            dir,
            args,
            tls,
            bus,
            generation: 0,
        }
    }

    /// Starts on a free port (another one if it was taken meanwhile).
    fn launch(&mut self) {
        for _ in 0..5 {
            if self.spawn(free_port(self.bus)) {
                return;
            }
            self.kill();
        }
        panic!("redis-server did not start");
    }

    /// Starts a server with an empty data directory on `port`; true once it answers.
    fn spawn(&mut self, port: u16) -> bool {
        self.generation += 1;
        let data = self.dir.path().join(format!("data-{}", self.generation));
        std::fs::create_dir_all(&data).expect("data directory");
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&data)
            .arg(if self.tls.is_some() {
                "--tls-port"
            } else {
                "--port"
            })
            .arg(port.to_string())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(cmd.spawn().expect("start redis-server"));
        self.port = port;
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                return false; // exited (port taken?)
            }
            let ready = match &self.tls {
                None => ping(self.port),
                Some(ca) => Command::new("redis-cli")
                    .args(["--tls", "--cacert"])
                    .arg(ca)
                    .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "ping"])
                    .output()
                    .is_ok_and(|o| o.stdout.starts_with(b"PONG")),
            };
            if ready {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>` (`rediss://` for a TLS server).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The CA certificate of a TLS server.
    pub fn ca_file(&self) -> Option<&Path> {
        self.tls.as_deref()
    }

    /// Kills the server (SIGKILL): connections are reset, the port refuses connections.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        crate::signal(self.child.as_ref(), Signal::STOP);
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        crate::signal(self.child.as_ref(), Signal::CONT);
    }

    /// Replaces the server by an empty one on the same port (a disk swapped, a node
    /// rebuilt).
    pub fn replace_empty(&mut self) {
        self.resume();
        self.kill();
        let port = self.port;
        let deadline = Instant::now() + Duration::from_secs(10);
        // The kernel may hold the port for a moment after the old process died.
        while !self.spawn(port) {
            self.kill();
            assert!(
                Instant::now() < deadline,
                "could not restart redis-server on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Number of keys in database 0.
    pub fn dbsize(&self) -> u64 {
        let reply = command(self.port, &[b"DBSIZE"]).expect("DBSIZE");
        parse_integer(&reply).expect("an integer reply")
    }

    /// Empties every database.
    pub fn flushall(&self) {
        let reply = command(self.port, &[b"FLUSHALL"]).expect("FLUSHALL");
        assert!(
            reply.starts_with(b"+OK"),
            "FLUSHALL: {}",
            String::from_utf8_lossy(&reply)
        );
    }

    /// Stores `value` under `key` directly (to plant damaged copies).
    pub fn set(&self, key: &[u8], value: &[u8]) {
        let reply = command(self.port, &[b"SET", key, value]).expect("SET");
        assert!(
            reply.starts_with(b"+OK"),
            "SET: {}",
            String::from_utf8_lossy(&reply)
        );
    }

    /// Deletes `key`.
    pub fn del(&self, key: &[u8]) {
        command(self.port, &[b"DEL", key]).expect("DEL");
    }

    /// Whether the server holds `key` (database 0); false when it is down.
    pub fn exists(&self, key: &[u8]) -> bool {
        command(self.port, &[b"EXISTS", key]).and_then(|r| parse_integer(&r)) == Some(1)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.resume();
        self.kill();
    }
}

/// A Redis Cluster of three primaries and three replicas, made with
/// `redis-cli --cluster create`.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> Option<RedisCluster> {
        if !crate::need("redis-server") || !crate::need("redis-cli") {
            return None;
        }
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let dir = tempfile::tempdir().expect("temporary directory");
            let conf = dir.path().join("nodes.conf").display().to_string();
            let args = vec![
                "--cluster-enabled".to_string(),
                "yes".into(),
                "--cluster-config-file".into(),
                conf,
                "--cluster-node-timeout".into(),
                "3000".into(),
            ];
            let mut server = RedisServer::new(dir, args, None, true);
            server.launch();
            nodes.push(server);
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while !nodes.iter().all(|n| {
            command(n.port, &[b"CLUSTER", b"INFO"])
                .is_some_and(|info| String::from_utf8_lossy(&info).contains("cluster_state:ok"))
        }) {
            assert!(
                Instant::now() < deadline,
                "the cluster did not become ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(RedisCluster { nodes })
    }

    /// `redis+cluster://` with every node as a seed.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// Keys over the primaries.
    pub fn keys(&self) -> u64 {
        self.nodes
            .iter()
            .filter(|n| {
                command(n.port, &[b"ROLE"])
                    .is_some_and(|role| String::from_utf8_lossy(&role).contains("master"))
            })
            .map(RedisServer::dbsize)
            .sum()
    }
}

fn ping(port: u16) -> bool {
    command(port, &[b"PING"]).is_some_and(|r| r.starts_with(b"+PONG"))
}

/// Sends one command and returns the raw reply (up to what one read brings).
fn command(port: u16, args: &[&[u8]]) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut request = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        request.extend_from_slice(arg);
        request.extend_from_slice(b"\r\n");
    }
    stream.write_all(&request).ok()?;
    let mut reply = vec![0u8; 64 * 1024];
    let n = stream.read(&mut reply).ok()?;
    reply.truncate(n);
    Some(reply)
}

fn parse_integer(reply: &[u8]) -> Option<u64> {
    std::str::from_utf8(reply.strip_prefix(b":")?)
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A CA and a server certificate for 127.0.0.1 / localhost, with the openssl command.
fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=flisthub test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("write san.ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    ]);
}
