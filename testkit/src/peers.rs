//! The real programs of the ecosystem (`shared/peers/` beside the workspace): a `zdb-2.0.7`
//! server on a free loopback port, `zflist` in a private workspace, `rfs-2.0.6 pack`, and
//! FUSE mounts by `rfs-2.0.6` and `g8ufs-1.1.1` that are always unmounted.
//!
//! Each starter returns `None` after printing `SKIP: <why>` when its program (or what it
//! needs: its shared libraries, `/dev/fuse`, `fusermount3`) is missing, so a test can
//! return early.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// The copy of peer `name` this workspace runs (`target/peers/<name>`, copied from
/// `../shared/peers/` with its execute bit set, since that folder may come without it), or
/// `None` after a `SKIP:` line.
pub fn peer(name: &str) -> Option<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let source = workspace.join("../shared/peers").join(name);
    let Ok(meta) = std::fs::metadata(&source) else {
        eprintln!("SKIP: peer {name} not found in ../shared/peers");
        return None;
    };
    // One copier per process: tests of one binary run on threads.
    static COPYING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _copying = COPYING.lock().unwrap_or_else(|p| p.into_inner());
    let dir = workspace.join("target/peers");
    std::fs::create_dir_all(&dir).expect("target/peers");
    let copy = dir.join(name);
    if std::fs::metadata(&copy).map(|m| m.len()).ok() != Some(meta.len()) {
        // Copied under a private name and renamed: test processes run side by side. The
        // copy is made by `cp`, so that this process never holds the file open for writing:
        // a child that another thread forks meanwhile would inherit that descriptor until
        // its own exec, and starting the peer then fails with "text file busy".
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        let copied = std::process::Command::new("cp")
            .arg("--")
            .arg(&source)
            .arg(&tmp)
            .status()
            .expect("run cp");
        assert!(copied.success(), "copying the peer {name} failed");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::rename(&tmp, &copy).expect("rename a peer");
    }
    Some(copy)
}

/// Whether FUSE mounts can be made here (as root with `/dev/fuse` and `fusermount3`).
pub fn fuse_available() -> bool {
    if !Path::new("/dev/fuse").exists() {
        eprintln!("SKIP: /dev/fuse is missing");
        return false;
    }
    crate::need("fusermount3")
}

/// A `zdb-2.0.7` on a loopback port, with its own small data directory; killed when
/// dropped.
pub struct Zdb {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Zdb {
    /// A server in user mode.
    pub fn start() -> Option<Zdb> {
        Zdb::start_in(&["--mode", "user"])
    }

    /// A server in mixed mode, where `NSSET <ns> mode seq` turns an empty namespace
    /// sequential.
    pub fn start_mixed() -> Option<Zdb> {
        Zdb::start_in(&[])
    }

    fn start_in(mode: &[&str]) -> Option<Zdb> {
        let program = peer("zdb-2.0.7")?;
        let dir = tempfile::tempdir().expect("temporary directory");
        for attempt in 0..5 {
            let port = free_port(false);
            let data = dir.path().join(format!("data-{attempt}"));
            let index = dir.path().join(format!("index-{attempt}"));
            let mut child = Command::new(&program)
                .args(["--listen", "127.0.0.1", "--port", &port.to_string()])
                .arg("--data")
                .arg(&data)
                .arg("--index")
                .arg(&index)
                // Data files of 32 MiB, not the default 256 MiB preallocated per namespace.
                .args(mode)
                .args(["--datasize", "33554432"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start zdb");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited: the port was taken
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(Zdb {
                        child,
                        port,
                        _dir: dir,
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("zdb-2.0.7 did not start");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `SET key value` in the default namespace.
    pub fn set(&self, key: &[u8], value: &[u8]) {
        let reply = self.command(&[b"SET", key, value]);
        assert!(
            !reply.starts_with(b"-"),
            "SET: {}",
            String::from_utf8_lossy(&reply)
        );
    }

    /// `GET key`: `None` when 0-db answers nil.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let reply = self.command(&[b"GET", key]);
        match reply.first() {
            Some(b'$') => Some(reply[1..].to_vec()),
            Some(b'-') => panic!("GET: {}", String::from_utf8_lossy(&reply)),
            _ => None,
        }
    }

    /// Sends one command on a new connection; the reply's type byte followed by its payload
    /// (a bulk string's bytes, a simple string or error's text), or `b"$"`-less `b"nil"`.
    pub fn command(&self, args: &[&[u8]]) -> Vec<u8> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to zdb");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            request.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            request.extend_from_slice(a);
            request.extend_from_slice(b"\r\n");
        }
        stream.write_all(&request).expect("send to zdb");
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        reader.read_until(b'\n', &mut line).expect("zdb reply");
        let head = String::from_utf8_lossy(&line[..line.len().saturating_sub(2)]).into_owned();
        if let Some(len) = head.strip_prefix('$') {
            let Ok(len) = len.parse::<usize>() else {
                return b"nil".to_vec(); // $-1
            };
            let mut value = vec![0; len + 2];
            reader.read_exact(&mut value).expect("zdb value");
            value.truncate(len);
            return [b"$".as_slice(), &value].concat();
        }
        head.into_bytes()
    }
}

impl Drop for Zdb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `zflist` with its own workspace (`ZFLIST_MNT`) and, when given, a backend for uploads
/// (`ZFLIST_BACKEND`).
pub struct Zflist {
    program: PathBuf,
    workspace: tempfile::TempDir,
    backend: Option<String>,
}

impl Zflist {
    /// `None` (after a `SKIP:` line) when zflist or one of its libraries is missing.
    pub fn new(backend: Option<&Zdb>) -> Option<Zflist> {
        Self::with_backend(
            backend.map(|z| format!(r#"{{"host": "127.0.0.1", "port": {}}}"#, z.port())),
        )
    }

    /// [`Zflist::new`] with `ZFLIST_BACKEND` as given (a host, port, token: a hub's
    /// gateway).
    pub fn with_backend(backend: Option<String>) -> Option<Zflist> {
        let program = peer("zflist")?;
        let zflist = Zflist {
            program,
            workspace: tempfile::tempdir().expect("temporary directory"),
            backend,
        };
        let probe = zflist.command().output().expect("run zflist");
        if String::from_utf8_lossy(&probe.stderr).contains("error while loading shared libraries") {
            eprintln!(
                "SKIP: zflist cannot load its libraries (scripts/test-all installs them): {}",
                String::from_utf8_lossy(&probe.stderr).trim()
            );
            return None;
        }
        Some(zflist)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.env("ZFLIST_MNT", self.workspace.path());
        match &self.backend {
            Some(b) => cmd.env("ZFLIST_BACKEND", b),
            None => cmd.env_remove("ZFLIST_BACKEND"),
        };
        cmd
    }

    /// Runs `zflist args...`, whatever its exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run zflist")
    }

    /// Runs `zflist args...` with more environment (`ZFLIST_HUB`, `ZFLIST_HUB_TOKEN`).
    pub fn run_with(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        self.command()
            .envs(env.iter().copied())
            .args(args)
            .output()
            .expect("run zflist")
    }

    /// Runs `zflist args...` and returns its standard output; panics with its output when it
    /// fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "zflist {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// `rfs-2.0.6 pack -m <fl> -s <store> <dir>`.
pub fn rfs_pack(fl: &Path, store: &str, dir: &Path) -> Option<Output> {
    let program = peer("rfs-2.0.6")?;
    Some(
        Command::new(program)
            .arg("pack")
            .arg("-m")
            .arg(fl)
            .args(["-s", store])
            .arg(dir)
            .output()
            .expect("run rfs pack"),
    )
}

/// A FUSE mount by a peer, unmounted (and its process ended) when dropped, however the
/// test ends.
pub struct FuseMount {
    child: Child,
    mountpoint: PathBuf,
    log: PathBuf,
}

impl FuseMount {
    /// `rfs-2.0.6 mount -m <fl> -c <cache> <mountpoint>`.
    pub fn rfs(fl: &Path, cache: &Path, mountpoint: &Path) -> Option<FuseMount> {
        let program = peer("rfs-2.0.6")?;
        let mut cmd = Command::new(program);
        cmd.arg("mount").arg("-m").arg(fl).arg("-c").arg(cache);
        Self::start(cmd, mountpoint)
    }

    /// `g8ufs-1.1.1 --meta <flist> --cache <cache> [--storage-url <url>] <mountpoint>`.
    pub fn g8ufs(
        flist: &Path,
        cache: &Path,
        storage_url: Option<&str>,
        mountpoint: &Path,
    ) -> Option<FuseMount> {
        let program = peer("g8ufs-1.1.1")?;
        let mut cmd = Command::new(program);
        cmd.arg("--meta").arg(flist).arg("--cache").arg(cache);
        if let Some(url) = storage_url {
            cmd.args(["--storage-url", url]);
        }
        Self::start(cmd, mountpoint)
    }

    fn start(mut cmd: Command, mountpoint: &Path) -> Option<FuseMount> {
        if !fuse_available() {
            return None;
        }
        std::fs::create_dir_all(mountpoint).expect("mountpoint");
        let mountpoint = mountpoint.canonicalize().expect("mountpoint path");
        let log = mountpoint.with_extension("log");
        let out = std::fs::File::create(&log).expect("mount log");
        let err = out.try_clone().expect("mount log");
        let child = cmd
            .arg(&mountpoint)
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start a FUSE peer");
        let mut mount = FuseMount {
            child,
            mountpoint,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if mount.is_mounted() {
                return Some(mount);
            }
            if let Ok(Some(status)) = mount.child.try_wait() {
                panic!("the FUSE peer exited ({status}): {}", mount.log_text());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("the FUSE peer did not mount in 15 s: {}", mount.log_text());
    }

    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// What the peer printed so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn is_mounted(&self) -> bool {
        let target = self.mountpoint.to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(target.as_str()))
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        let unmounted = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.mountpoint)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted && self.is_mounted() {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&self.mountpoint)
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
