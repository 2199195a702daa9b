//! Garbage collection of a store of 1,000,000 chunks: 2,000 published flists name 900,000
//! of them, and the other 100,000 (10%) are swept; with a `dir` store and with a real
//! redis-server. The collection runs as `flisthub gc` (the real binary, built by the bench
//! profile) on the data directory, and its wall time, CPU time (user + system) and peak
//! RSS are those of that process (`wait4`'s resource usage). The bar: 5 minutes and
//! 300 MiB.
//!
//! ```sh
//! cargo bench --bench gc
//! ```
//!
//! The store is filled directly through the store API, in parallel batches of small chunks;
//! the flists are synthetic native flists naming those chunks, published through the hub
//! in-process (so the hub has seen their chunks, as it would have when they were pushed).
//! The 100,000 unnamed chunks are asked about once through the chunk API (`missing`), as a
//! push that was never finished would have, so that both backends sweep them in one run
//! (Redis keeps no write time: a chunk the hub never saw gets a full grace period from the
//! first run that meets it). `FLISTHUB_BENCH_GC_CHUNKS` sets another store size (the
//! flists scale with it).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chunkstore::{Chunk, ChunkKey, ChunkStore, Codec, EncodedChunk};
use futures_util::{StreamExt, stream};

mod common;

/// Chunks in the store.
fn total_chunks() -> usize {
    std::env::var("FLISTHUB_BENCH_GC_CHUNKS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000)
}
/// Flists per million chunks.
const FLISTS_PER_MILLION: usize = 2_000;
/// Plaintext bytes of each chunk: small, so that filling the store is quick.
const CHUNK_BYTES: usize = 64;
/// Chunks per file of a flist.
const CHUNKS_PER_FILE: usize = 10;
/// Chunks per store call, and calls in flight while filling.
const BATCH: usize = 1_000;
const IN_FLIGHT: usize = 8;

fn main() {
    if let Some(config) = std::env::var_os(MEASURE) {
        return measure(Path::new(&config));
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let total = total_chunks();
    println!(
        "{total} chunks, {} flists naming {}, {} to sweep; `flisthub gc` measured\n",
        flists_for(total),
        total - total / 10,
        total / 10
    );
    println!(
        "| store | fill | publish | gc wall | gc CPU | gc peak RSS | marked | swept | chunk_seen rows before → after |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let root = common::work_dir().join("gc");
    run(&runtime, &root.join("dir"), None, total);
    match testkit::RedisServer::start() {
        Some(server) => run(&runtime, &root.join("redis"), Some(server.url()), total),
        None => println!("| redis | skipped: redis-server is not installed |"),
    }
}

fn flists_for(total: usize) -> usize {
    (total * FLISTS_PER_MILLION / 1_000_000).max(1)
}

fn run(runtime: &tokio::runtime::Runtime, dir: &Path, redis: Option<String>, total: usize) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("bench dir");
    let data = dir.join("data");
    let mut toml = format!(
        "[server]\ndata-dir = {:?}\nauthentication = false\n[gc]\ngrace = \"0s\"\n",
        data.display().to_string()
    );
    let name = match &redis {
        Some(url) => {
            toml.push_str(&format!("[store]\nurl = \"{url}/0\"\n"));
            "redis"
        }
        None => "dir",
    };
    let config_file = dir.join("config.toml");
    std::fs::write(&config_file, &toml).expect("config");
    let config = hub::Config::from_toml(&toml).expect("config");

    // The chunks, written straight to the store.
    let started = Instant::now();
    let store_url = match &redis {
        Some(url) => format!("{url}/0"),
        None => format!("dir://{}", data.join("store").display()),
    };
    let store = runtime
        .block_on(chunkstore::open(&store_url))
        .expect("open the store");
    let keys = fill(runtime, &store, total);
    let fill_time = started.elapsed();
    drop(store);

    // The flists, published through the hub; the unnamed chunks asked about once.
    let started = Instant::now();
    let named = total - total / 10;
    let flists = flists_for(total);
    runtime.block_on(publish(config, dir, &keys[..named], &keys[named..], flists));
    let publish_time = started.elapsed();
    let rows_before = seen_rows(&data);

    common::settle();
    let measured = collect(&config_file);
    let rows_after = seen_rows(&data);
    let report: serde_json::Value = serde_json::from_slice(&measured.stdout).expect("report");
    let sum = |what: &str| -> u64 {
        report["backends"]
            .as_array()
            .expect("backends")
            .iter()
            .map(|b| b["chunks"][what]["count"].as_u64().unwrap_or(0))
            .sum()
    };
    let (marked, swept) = (sum("marked"), sum("swept"));
    assert_eq!(swept, (total / 10) as u64, "swept: {report}");
    assert_eq!(marked, named as u64, "marked: {report}");
    println!(
        "| {name} | {:.0} s | {:.0} s | {:.1} s | {:.1} s | {} MiB | {marked} | {swept} | {rows_before} → {rows_after} |",
        fill_time.as_secs_f64(),
        publish_time.as_secs_f64(),
        measured.wall.as_secs_f64(),
        measured.cpu.as_secs_f64(),
        measured.max_rss_kib / 1024,
    );
}

/// Writes `total` distinct small chunks, `BATCH` per call with `IN_FLIGHT` calls going on;
/// answers their keys.
fn fill(
    runtime: &tokio::runtime::Runtime,
    store: &Arc<dyn ChunkStore>,
    total: usize,
) -> Vec<ChunkKey> {
    let starts: Vec<usize> = (0..total).step_by(BATCH).collect();
    let batches = runtime.block_on(
        stream::iter(starts)
            .map(|start| {
                let store = Arc::clone(store);
                async move {
                    let end = (start + BATCH).min(total);
                    let chunks: Vec<EncodedChunk> = tokio::task::spawn_blocking(move || {
                        let mut codec = Codec::new(1).expect("codec");
                        (start..end)
                            .map(|i| codec.encode(&Chunk::new(content(i))).expect("encode"))
                            .collect()
                    })
                    .await
                    .expect("encode task");
                    store.put_many(&chunks).await.expect("put_many");
                    (
                        start,
                        chunks.iter().map(EncodedChunk::key).collect::<Vec<_>>(),
                    )
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect::<Vec<_>>(),
    );
    let mut keys = vec![ChunkKey::from_bytes([0; 32]); total];
    for (start, batch) in batches {
        keys[start..start + batch.len()].copy_from_slice(&batch);
    }
    keys
}

/// Chunk `i`'s content: its number, then filler that differs per chunk.
fn content(i: usize) -> Vec<u8> {
    let mut rng = common::Rng(i as u64 * 2 + 1);
    let mut bytes = (i as u64).to_le_bytes().to_vec();
    bytes.extend(rng.bytes(CHUNK_BYTES - 8));
    bytes
}

/// Publishes the flists naming `named` (each chunk in one flist, one flist in ten also
/// naming a neighbour's first file: some sharing), then asks the chunk API about
/// `unnamed`, and runs a dry collection in-process, which writes the seen times to the
/// database (and checks what would go).
async fn publish(
    config: hub::Config,
    dir: &Path,
    named: &[ChunkKey],
    unnamed: &[ChunkKey],
    flists: usize,
) {
    let hub = hub::Hub::open(config).await.expect("open the hub");
    let caller = hub::Caller {
        user: "bench".into(),
        repository: hub.names().repository("bench").expect("name"),
        accounts: Vec::new(),
        admin: true,
    };
    let per_flist = named.len().div_ceil(flists);
    let staging = dir.join("flists");
    std::fs::create_dir_all(&staging).expect("staging");
    for (i, own) in named.chunks(per_flist).enumerate() {
        let path = staging.join(format!("f{i}.flist"));
        let shared =
            (i % 10 == 0 && i > 0).then(|| &named[(i - 1) * per_flist..][..CHUNKS_PER_FILE]);
        write_flist(&path, own, shared);
        let slot = hub.limits().upload_slot("bench").await.expect("slot");
        let file = hub
            .publisher()
            .staging_file("bench-")
            .expect("staging file");
        std::fs::copy(&path, &file).expect("copy");
        let name = hub.names().flist(&format!("f{i}.flist")).expect("name");
        hub.publisher()
            .upload_flist(&caller, &slot, name, (file, format!("f{i}.flist")))
            .await
            .expect("publish");
        std::fs::remove_file(&path).expect("remove");
    }
    for batch in unnamed.chunks(10_000) {
        let missing = hub.chunks().missing_chunks(batch).await.expect("missing");
        assert!(missing.is_empty(), "the unnamed chunks are stored");
    }
    // Seen times are milliseconds: a run starting in the same one would keep them.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let dry = hub.collector().run(true).await.expect("dry run");
    let would_go: u64 = dry.backends.iter().map(|b| b.chunks.swept.count).sum();
    assert_eq!(would_go, unnamed.len() as u64, "the dry run");
}

/// A native flist of files of `CHUNKS_PER_FILE` chunks each, naming `own` and, if given,
/// `shared` as one more file.
fn write_flist(path: &Path, own: &[ChunkKey], shared: Option<&[ChunkKey]>) {
    let mut writer = flist::FlistWriter::create(path).expect("writer");
    let files = own.chunks(CHUNKS_PER_FILE).chain(shared).enumerate();
    for (n, chunks) in files {
        let size = (chunks.len() * CHUNK_BYTES) as u64;
        let node = flist::Node {
            kind: flist::NodeKind::Regular { size },
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: Default::default(),
        };
        let inode = writer
            .add(format!("d{}/file{n}", n / 100).as_bytes(), &node, &[])
            .expect("add");
        for (seq, key) in chunks.iter().enumerate() {
            let chunk = flist::ChunkRef {
                key: *key.as_bytes(),
                offset: (seq * CHUNK_BYTES) as u64,
                length: CHUNK_BYTES as u32,
            };
            writer.add_chunk(inode, seq as u32, &chunk).expect("chunk");
        }
    }
    writer.finish().expect("finish");
}

/// Rows of the seen-times table.
fn seen_rows(data: &Path) -> i64 {
    let db = rusqlite::Connection::open(data.join("hub.sqlite3")).expect("database");
    db.query_row("SELECT count(*) FROM chunk_seen", [], |r| r.get(0))
        .expect("count")
}

struct Measured {
    stdout: Vec<u8>,
    wall: Duration,
    cpu: Duration,
    max_rss_kib: i64,
}

/// Set, the bench only runs `flisthub gc` on the configuration it names and prints the
/// measure (see [`collect`]).
const MEASURE: &str = "FLISTHUB_BENCH_GC_MEASURE";

/// Runs `flisthub gc --json` on the configuration's data directory, measured. Through a
/// fresh copy of this program: Linux counts in a child's peak RSS the peak of the memory
/// it was spawned from (the old address space at `exec`), and this process holds a million
/// keys and a hub; the copy starts small, and spawns the collection from there.
fn collect(config: &Path) -> Measured {
    let out = tempfile::NamedTempFile::new().expect("output file");
    let measured = Command::new(std::env::current_exe().expect("this program"))
        .env(MEASURE, config)
        .stdout(out.reopen().expect("output"))
        .stderr(Stdio::inherit())
        .status()
        .expect("measure");
    assert!(measured.success(), "the measured collection failed");
    let text = std::fs::read_to_string(out.path()).expect("measure");
    let (figures, report) = text.split_once('\n').expect("figures, then the report");
    let figures: Vec<u64> = figures
        .split(' ')
        .map(|n| n.parse().expect("a figure"))
        .collect();
    Measured {
        stdout: report.as_bytes().to_vec(),
        wall: Duration::from_nanos(figures[0]),
        cpu: Duration::from_nanos(figures[1]),
        max_rss_kib: figures[2] as i64,
    }
}

/// In the fresh copy: runs the collection, then prints wall and CPU nanoseconds and peak
/// RSS (KiB) on a line, and the report after it.
fn measure(config: &Path) {
    let out = tempfile::NamedTempFile::new().expect("output file");
    let started = Instant::now();
    // Waited for below with wait4, which `Child::wait` cannot do: it gives the rusage.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_flisthub"))
        .arg("--config")
        .arg(config)
        .args(["--quiet", "gc", "--json"])
        .stdout(out.reopen().expect("output"))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("flisthub gc");
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the child is ours and not waited for elsewhere; both pointers are valid.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(pid, child.id() as i32, "wait4");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "flisthub gc failed"
    );
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let cpu = time(usage.ru_utime) + time(usage.ru_stime);
    println!("{} {} {}", wall.as_nanos(), cpu.as_nanos(), usage.ru_maxrss);
    print!("{}", std::fs::read_to_string(out.path()).expect("report"));
}
