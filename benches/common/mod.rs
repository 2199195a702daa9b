//! Shared by the benches: the generated corpus, and running the real binary.
#![allow(dead_code)]

pub mod load;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CORPUS_VERSION: &str = "corpus v1";

/// Where benches keep their corpus and scratch space: `FLISTHUB_BENCH_DIR`, or
/// `target/flisthub-bench`.
pub fn work_dir() -> PathBuf {
    std::env::var_os("FLISTHUB_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/flisthub-bench"))
}

/// Runs per figure: `FLISTHUB_BENCH_RUNS`, or 3.
pub fn runs() -> usize {
    std::env::var("FLISTHUB_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
}

pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// ext4 avoids reusing inodes deleted in the last few seconds and scans past them when
/// allocating, which makes creating files several times slower right after a mass deletion
/// (seen here as `recently_deleted` in kernel profiles). Flush and wait that out so every
/// figure measures flisthub, not the previous run's cleanup.
pub fn settle() {
    let _ = Command::new("sync").status();
    std::thread::sleep(Duration::from_secs(10));
}

pub fn tree_bytes(root: &Path) -> u64 {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().expect("stat").len())
        .sum()
}

/// xorshift64: fast, deterministic, good enough to make incompressible bytes.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "with", "was", "on", "be",
    "by", "this", "are", "or", "from", "at", "which", "an", "but", "not", "have", "all", "can",
    "file", "data", "system", "value", "return", "function", "error", "config", "struct", "const",
    "import", "package", "string", "buffer", "chunk", "store", "flist", "image", "layer", "node",
    "path", "name", "mode", "size", "time", "user", "group", "index", "table", "query", "select",
    "where", "insert", "update", "delete", "server", "client", "request", "response", "header",
];

/// Text: words from a small vocabulary, lines of varying length (compresses about 3-4x).
fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        out.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
        out.push(if rng.below(12) == 0 { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

/// Binary-like: 4 KiB blocks, half random, half near-copies of a few recurring blocks, as
/// code and data sections repeat structure (compresses about 2x).
fn binary(rng: &mut Rng, patterns: &[Vec<u8>], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 4096);
    while out.len() < len {
        if rng.below(2) == 0 {
            out.extend_from_slice(&rng.bytes(4096));
        } else {
            let mut block = patterns[rng.below(patterns.len() as u64) as usize].clone();
            for _ in 0..8 {
                let i = rng.below(4096) as usize;
                block[i] = rng.next() as u8;
            }
            out.extend_from_slice(&block);
        }
    }
    out.truncate(len);
    out
}

/// Makes the corpus unless an identical one is already there; returns its content bytes.
pub fn ensure_corpus(root: &Path) -> u64 {
    let marker = root.join(".complete");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == CORPUS_VERSION) {
        return tree_bytes(root);
    }
    let _ = std::fs::remove_dir_all(root);
    println!("generating the corpus in {} ...", root.display());
    let mut rng = Rng(0x5eed_f1a7_c0de_0001);
    let patterns: Vec<Vec<u8>> = (0..64).map(|_| rng.bytes(4096)).collect();
    let write = |rel: &str, data: &[u8]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    // 40,000 small files, 200 B to 32 KiB (log-uniform), in 400 directories.
    for i in 0..40_000u64 {
        let len = (200.0 * (164.0f64).powf(rng.below(1000) as f64 / 1000.0)) as usize;
        let data = if i % 2 == 0 {
            text(&mut rng, len)
        } else {
            binary(&mut rng, &patterns, len)
        };
        write(&format!("small/d{:03}/f{i:05}", i % 400), &data);
    }
    // 72 binaries of 2 to 16 MiB; every 16th one is a copy of the one before it.
    let mut previous = Vec::new();
    for i in 0..72 {
        let data = if i % 16 == 15 {
            previous.clone()
        } else {
            let len = (2 << 20) + rng.below(14 << 20) as usize;
            binary(&mut rng, &patterns, len)
        };
        write(&format!("bin/b{i:02}.bin"), &data);
        previous = data;
    }
    // 24 text files of 8 MiB.
    for i in 0..24 {
        write(&format!("text/t{i:02}.txt"), &text(&mut rng, 8 << 20));
    }
    std::fs::write(&marker, CORPUS_VERSION).unwrap();
    let _ = Command::new("sync").status();
    let bytes = tree_bytes(root);
    assert!(
        bytes >= 1 << 30,
        "corpus of {bytes} bytes is smaller than 1 GiB"
    );
    bytes
}

/// A `flisthub serve` on a free loopback port, killed when dropped.
pub struct Hub {
    child: Child,
    pub url: String,
    config: PathBuf,
    data: PathBuf,
}

impl Hub {
    pub fn start(data: &Path) -> Hub {
        Self::start_with(data, "")
    }

    /// A hub with `extra` configuration (TOML sections other than `[limits]`).
    pub fn start_with(data: &Path, extra: &str) -> Hub {
        std::fs::create_dir_all(data).unwrap();
        let config = data.with_extension("toml");
        std::fs::write(
            &config,
            format!("[limits]\nwrite-rate = 1000000\nwrite-burst = 1000000\nconcurrent-uploads = 17\nuploads-per-identity = 8\n{extra}"),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_flisthub"))
            .arg("--config")
            .arg(&config)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            // The default log level: a line per request, as an operator would run it.
            .env_remove("FLISTHUB_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start flisthub serve");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(
                        rest.split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the hub did not start");
        Hub {
            child,
            url,
            config,
            data: data.to_owned(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Mints tokens in-process, as `flisthub token create` does.
    pub fn tokens(&self, users: &[String]) -> Vec<String> {
        let mut config = hub::Config::load(Some(&self.config)).unwrap();
        config.server.data_dir = Some(self.data.clone());
        let tokens = hub::tokens(&config).unwrap();
        users
            .iter()
            .map(|user| {
                tokens
                    .create(user, &[], Duration::from_secs(86_400), None)
                    .unwrap()
                    .1
            })
            .collect()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for the child and returns (exit status, peak RSS in bytes).
pub fn wait_with_rusage(child: &mut std::process::Child) -> (i32, u64) {
    let (code, usage) = wait_with_usage(child);
    (code, usage.ru_maxrss as u64 * 1024)
}

/// Waits for the child and returns its exit status and resource usage (CPU times, peak
/// RSS). `std` does not expose a child's resource usage, so this asks the kernel directly.
pub fn wait_with_usage(child: &mut std::process::Child) -> (i32, libc::rusage) {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, usage)
}

/// Waits until something listens on `port` of loopback.
pub fn wait_for(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// User and system CPU seconds of a process so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields after the command name: utime is the 12th, stime the 13th (0-based 11, 12).
    (ticks(11) + ticks(12)) / 100.0
}

/// A real 0-db (`zdb-2.0.7` at `program`) keeping its data under `root`, on a free loopback
/// port, answering: the process and the port.
pub fn start_zdb(program: &Path, root: &Path) -> (Child, u16) {
    let port = testkit::free_port(false);
    let child = Command::new(program)
        .args(["--listen", "127.0.0.1", "--port", &port.to_string()])
        .arg("--data")
        .arg(root.join("zdb-data"))
        .arg("--index")
        .arg(root.join("zdb-index"))
        .args(["--mode", "user"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start zdb");
    wait_for(port);
    (child, port)
}
