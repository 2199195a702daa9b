//! Test harness shared by flisthub's test suites.
//!
//! * [`RedisServer`] and [`RedisCluster`]: real `redis-server` processes on free loopback
//!   ports, in private directories, with persistence off; they can be killed, paused
//!   (SIGSTOP, to test timeouts) and replaced by empty ones.
//! * [`ZdbPeer`]: a RESP server that answers as 0-db 2.0.7 does (see
//!   `shared/spec/0-db-reference.md`), records every command it receives, and can be put in
//!   the states 0-db has (read-only, full, locked, namespace gone, sequential mode).
//!
//! * [`peers`]: the real programs of the ecosystem from `shared/peers/`: `zdb-2.0.7` on a
//!   free loopback port, `zflist` in a private workspace, `rfs-2.0.6 pack`, and FUSE mounts by
//!   `rfs-2.0.6` and `g8ufs-1.1.1` that are unmounted however the test ends.
//!
//! * [`RegistryServer`]: Debian's `docker-registry` (the reference OCI registry) on a free
//!   loopback port, open or asking for credentials, fed by skopeo; [`OciLayout`] builds the
//!   images it serves with umoci from tar archives the test writes.
//!
//! * [`tar`]: tar archives built byte by byte, hostile ones included.
//!
//! A test that needs a program that is not installed calls [`need`], which says so and lets
//! the test skip; CI installs everything (`scripts/test-all`), so nothing is skipped there.

#![forbid(unsafe_code)]

pub mod peers;
mod redis;
mod registry;
pub mod tar;
mod zdb;

pub use redis::{RedisCluster, RedisServer};
pub use registry::{OciLayout, RegistryServer};
pub use zdb::ZdbPeer;

use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command};

use rustix::process::{Pid, Signal, kill_process};

/// Deterministic pseudo-random bytes (xorshift): content that does not compress.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Whether `program` is installed; if not, prints why the calling test is skipped.
pub fn need(program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        eprintln!("SKIP: {program} is not installed (scripts/test-all installs it)");
    }
    found
}

/// A loopback port nobody listens on right now (and, with `bus`, whose +10000 cluster bus
/// port is free too). Another process may take it before it is used; callers retry.
pub fn free_port(bus: bool) -> u16 {
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        if !bus {
            return port;
        }
        if port < 55_000 && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// Sends `signal` to a child process that is still running (SIGSTOP freezes a server with
/// its connections open; SIGCONT lets it go on).
fn signal(child: Option<&Child>, signal: Signal) {
    if let Some(pid) = child.and_then(|c| Pid::from_raw(c.id() as i32)) {
        let _ = kill_process(pid, signal);
    }
}
