//! Issue 12's header bombs against the real programs: gzip uploads of about 1 MB and 4 MB
//! whose PAX record or GNU long name declares (and holds, compressed) 1 GiB and 4 GiB. The
//! tar reader would hold such a record whole in memory; the hub and `flisthub pack` refuse
//! it from its header, and stay small while doing so.

mod common;

use std::process::{Command, Stdio};

use common::hub::HubServer;
use testkit::tar::header_bomb_gz;

const RSS_BOUND: u64 = 200 << 20;

/// The bombs: (type flag, declared record size).
const BOMBS: [(u8, u64); 2] = [(b'x', 1 << 30), (b'L', 4 << 30)];

#[test]
fn header_bombs_are_refused_in_bounded_memory() {
    let hub = HubServer::start("");
    let token = hub.token("alice", &[]);
    let dir = tempfile::tempdir().unwrap();
    for (typeflag, declared) in BOMBS {
        let bomb = header_bomb_gz(typeflag, declared);
        let what = format!(
            "a {} record of {declared} bytes in {} bytes",
            typeflag as char,
            bomb.len()
        );
        assert!((bomb.len() as u64) < (declared >> 10) * 11 / 10, "{what}");

        let response = hub.upload(&token, "bomb.tar.gz", bomb.clone());
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().unwrap();
        let message = body["message"].as_str().unwrap_or_default();
        assert_eq!(status, 413, "{what}: {body}");
        assert!(
            message.contains("././@LongLink") && message.contains("the limit is 65536"),
            "{what}: {message}"
        );

        let input = dir.path().join("bomb.tar.gz");
        std::fs::write(&input, &bomb).unwrap();
        let flist = dir.path().join("bomb.flist");
        let (ok, stderr, peak) = pack_measured(
            &[
                "pack".as_ref(),
                input.as_os_str(),
                "-o".as_ref(),
                flist.as_os_str(),
                "--store".as_ref(),
                format!("dir://{}", dir.path().join("store").display()).as_ref(),
            ],
            dir.path(),
        );
        assert!(!ok, "{what}: packed");
        assert!(
            stderr.contains("././@LongLink") && stderr.contains("bytes, the limit is 65536"),
            "{what}: {stderr}"
        );
        assert!(!flist.exists());
        println!(
            "flisthub pack, {what}: refused, peak RSS {} KiB",
            peak >> 10
        );
        assert!(peak < RSS_BOUND, "{what}: pack peaked at {peak} bytes");
    }
    let hwm = vm_hwm(hub.pid());
    println!(
        "flisthub serve after both uploads: peak RSS (VmHWM) {} KiB",
        hwm >> 10
    );
    assert!(hwm < RSS_BOUND, "the hub peaked at {hwm} bytes");
}

/// Runs flisthub; whether it succeeded, its stderr, and its peak RSS in bytes (from the
/// kernel's accounting of the reaped child).
// The child is reaped by wait4, which std's Child cannot do, for its resource usage.
#[allow(clippy::zombie_processes)]
fn pack_measured(args: &[&std::ffi::OsStr], home: &std::path::Path) -> (bool, String, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flisthub"))
        .args(args)
        .env("HOME", home)
        .env_remove("FLISTHUB_STORE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills; the pid is our own unreaped child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4");
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    (ok, stderr, usage.ru_maxrss as u64 * 1024)
}

/// The peak resident set of a running process, from `/proc/<pid>/status`.
fn vm_hwm(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}
