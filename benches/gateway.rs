//! The hub's 0-db gateway beside a real 0-db (`zdb-2.0.7`) on the same machine, with the
//! same client: one connection, 16 requests in flight, SETs then GETs of real 512 KiB
//! blocks (random, so incompressible) under their BLAKE2b-128 ids, authenticated on the
//! gateway (a hub token), as zflist and the publish action send them. Every run writes
//! blocks neither server has seen. Both servers keep their data in the bench directory and
//! neither syncs each write (0-db does not by default; the hub's `dir` store is opened with
//! `fsync=false` here, said in the figures).
//!
//! ```sh
//! cargo bench --bench gateway
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

mod common;
use common::{Hub, Rng, cpu_seconds, wait_for, work_dir};

const BLOCK: usize = 512 << 10;
const BLOCKS: usize = 256;
const DEPTH: usize = 16;

fn main() {
    let Some(zdb_program) = testkit::peers::peer("zdb-2.0.7") else {
        return;
    };
    let root = work_dir().join("gateway");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let runs = common::runs();

    let (mut zdb, zdb_port) = common::start_zdb(&zdb_program, &root);
    let gateway_port = testkit::free_port(false);
    let hub = Hub::start_with(
        &root.join("hub"),
        &format!(
            "[store]\nurl = \"dir://{}?fsync=false\"\n[gateway]\nlisten = \"127.0.0.1:{gateway_port}\"\npublic-url = \"zdb://127.0.0.1:{gateway_port}\"\n",
            root.join("hub-store").display()
        ),
    );
    let token = hub.tokens(&["bench".into()]).remove(0);
    wait_for(gateway_port);

    let mut rng = Rng(7);
    let (mut zdb_set, mut zdb_get, mut hub_set, mut hub_get) = (vec![], vec![], vec![], vec![]);
    let (mut zdb_cpu, mut hub_cpu) = (vec![], vec![]);
    for _ in 0..runs {
        for (port, auth, sets, gets, cpu, pid) in [
            (
                zdb_port,
                None,
                &mut zdb_set,
                &mut zdb_get,
                &mut zdb_cpu,
                zdb.id(),
            ),
            (
                gateway_port,
                Some(token.as_str()),
                &mut hub_set,
                &mut hub_get,
                &mut hub_cpu,
                hub.pid(),
            ),
        ] {
            let blocks: Vec<(Vec<u8>, Vec<u8>)> = (0..BLOCKS)
                .map(|_| {
                    let block = rng.bytes(BLOCK);
                    (legacy::zero::blake2b_128(&block).to_vec(), block)
                })
                .collect();
            let mut client = Client::connect(port, auth);
            let before = cpu_seconds(pid);
            let started = Instant::now();
            client.pipeline(
                blocks
                    .iter()
                    .map(|(id, block)| command(&[b"SET", id, block])),
                |reply| {
                    assert!(
                        reply.starts_with(b"$16"),
                        "{}",
                        String::from_utf8_lossy(&reply[..reply.len().min(80)])
                    );
                },
            );
            sets.push(started.elapsed());
            let started = Instant::now();
            client.pipeline(
                blocks.iter().map(|(id, _)| command(&[b"GET", id])),
                |reply| {
                    assert!(reply.len() > BLOCK, "a whole block");
                },
            );
            gets.push(started.elapsed());
            cpu.push(cpu_seconds(pid) - before);
        }
    }
    let mb = |d: Duration| (BLOCKS * BLOCK) as f64 / 1e6 / d.as_secs_f64();
    let median_secs = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (zs, zg, hs, hg) = (
        mb(common::median(zdb_set)),
        mb(common::median(zdb_get)),
        mb(common::median(hub_set)),
        mb(common::median(hub_get)),
    );
    println!(
        "{BLOCKS} blocks of 512 KiB per run, {DEPTH} in flight, {runs} runs, medians; server CPU seconds per run (SET and GET together): zdb {:.2}, gateway {:.2}\n",
        median_secs(zdb_cpu),
        median_secs(hub_cpu)
    );
    println!("| | zdb-2.0.7 | flisthub gateway (dir store, fsync=false) | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| SET, 512 KiB blocks | {zs:.0} MB/s | {hs:.0} MB/s | {:.2} |",
        hs / zs
    );
    println!(
        "| GET, 512 KiB blocks | {zg:.0} MB/s | {hg:.0} MB/s | {:.2} |",
        hg / zg
    );
    let _ = zdb.kill();
    let _ = zdb.wait();
    drop(hub);
    let _ = std::fs::remove_dir_all(&root);
}

fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend(b"\r\n");
    }
    out
}

struct Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(port: u16, token: Option<&str>) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut client = Client {
            reader: BufReader::with_capacity(1 << 20, stream.try_clone().unwrap()),
            writer: stream,
        };
        if let Some(token) = token {
            client.pipeline([command(&[b"AUTH", token.as_bytes()])].into_iter(), |r| {
                assert!(r.starts_with(b"+OK"), "{}", String::from_utf8_lossy(&r));
            });
        }
        client
    }

    /// Sends `requests` with up to DEPTH waiting for their replies.
    fn pipeline(
        &mut self,
        requests: impl Iterator<Item = Vec<u8>>,
        mut check: impl FnMut(Vec<u8>),
    ) {
        let mut in_flight = 0;
        for request in requests {
            if in_flight == DEPTH {
                check(self.reply());
                in_flight -= 1;
            }
            self.writer.write_all(&request).unwrap();
            in_flight += 1;
        }
        for _ in 0..in_flight {
            check(self.reply());
        }
    }

    fn reply(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line).unwrap();
        if line[0] == b'$' && !line.starts_with(b"$-1") {
            let len: usize = std::str::from_utf8(&line[1..line.len() - 2])
                .unwrap()
                .parse()
                .unwrap();
            let mut payload = vec![0; len + 2];
            self.reader.read_exact(&mut payload).unwrap();
            line.extend(payload);
        }
        line
    }
}
