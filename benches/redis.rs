//! The network chunk stores against a local redis-server: put and get throughput of 64 KiB
//! and 512 KiB chunks beside `redis-benchmark -P 16` with the same value size on the same
//! server in the same run (distinct keys on both sides, see `redis_benchmark`), `has_many` over 100,000 keys, and packing the pipeline bench's
//! corpus into redis-server beside packing it into a `dir` store.
//!
//! ```sh
//! cargo bench --bench redis
//! ```

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chunkstore::{Chunk, ChunkKey, ChunkStore, Codec, EncodedChunk};
use futures_util::{StreamExt, TryStreamExt, stream};

mod common;
use common::{Rng, ensure_corpus, median, settle};

/// Bytes of chunk values per throughput run.
const VOLUME: usize = 256 << 20;
/// Chunks per call, and calls in flight: what the pack pipeline's workers do.
const BATCH: usize = 64;
const CALLERS: usize = 4;
/// Extra URL parameters for the store, to try pool sizes and such (`?pool=8`).
fn params() -> String {
    std::env::var("FLISTHUB_BENCH_PARAMS").unwrap_or_default()
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let Some(server) = testkit::RedisServer::start() else {
        eprintln!("redis-server is needed");
        return;
    };
    let runs = common::runs();
    println!(
        "redis-server on port {}; {runs} runs per figure, median shown\n",
        server.port()
    );
    println!("| measurement | flisthub | redis-benchmark -P 16 | ratio |");
    println!("|---|---|---|---|");
    for size in [64 << 10, 512 << 10] {
        let chunks = random_chunks(VOLUME / size, size);
        let mb = |d: Duration| (VOLUME as f64) / 1e6 / d.as_secs_f64();
        let store = runtime
            .block_on(chunkstore::open(&format!("{}{}", server.url(), params())))
            .expect("open");
        // Interleaved, so that both sides meet the same machine noise.
        let (mut puts, mut gets, mut sets_rps, mut gets_rps) = (vec![], vec![], vec![], vec![]);
        for _ in 0..runs {
            server.flushall();
            puts.push(runtime.block_on(timed(|| put_all(&store, &chunks))));
            gets.push(runtime.block_on(timed(|| get_all(&store, &chunks))));
            server.flushall();
            let (set_rps, get_rps) = redis_benchmark(server.port(), size, VOLUME / size);
            sets_rps.push(set_rps);
            gets_rps.push(get_rps);
        }
        let (put, get) = (median(puts), median(gets));
        let middle = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (set_rps, get_rps) = (middle(sets_rps), middle(gets_rps));
        let bench_mb = |rps: f64| rps * size as f64 / 1e6;
        let kib = size >> 10;
        println!(
            "| put, {kib} KiB chunks | {:.0} MB/s | {:.0} MB/s (SET) | {:.2} |",
            mb(put),
            bench_mb(set_rps),
            mb(put) / bench_mb(set_rps)
        );
        println!(
            "| get, {kib} KiB chunks | {:.0} MB/s | {:.0} MB/s (GET) | {:.2} |",
            mb(get),
            bench_mb(get_rps),
            mb(get) / bench_mb(get_rps)
        );
    }

    // has_many over 100,000 keys, a tenth of them present.
    server.flushall();
    let store = runtime
        .block_on(chunkstore::open(&server.url()))
        .expect("open");
    let present = random_chunks(10_000, 1024);
    runtime.block_on(store.put_many(&present)).expect("put");
    let mut rng = Rng(99);
    let mut keys: Vec<ChunkKey> = present.iter().map(EncodedChunk::key).collect();
    keys.extend((0..90_000).map(|_| ChunkKey::of(&rng.bytes(16))));
    let mut samples = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let found = runtime.block_on(store.has_many(&keys)).expect("has_many");
        samples.push(started.elapsed());
        assert_eq!(found.iter().filter(|&&f| f).count(), 10_000);
    }
    println!(
        "| has_many over 100,000 keys | {:.3} s | | |",
        median(samples).as_secs_f64()
    );

    // The pipeline bench's corpus, packed into redis-server and into a dir store.
    let work = common::work_dir();
    let corpus = work.join("corpus");
    let bytes = ensure_corpus(&corpus) as f64;
    let scratch = work.join("scratch-redis");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("scratch directory");
    settle();
    let mut to_redis = Vec::new();
    let mut to_dir = Vec::new();
    for run in 0..runs {
        server.flushall();
        let out = scratch.join(format!("r{run}.flist"));
        to_redis.push(pack(&corpus, &out, &server.url()));
        let store = format!("dir://{}", scratch.join(format!("store{run}")).display());
        to_dir.push(pack(
            &corpus,
            &scratch.join(format!("d{run}.flist")),
            &store,
        ));
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let (redis, dir) = (median(to_redis), median(to_dir));
    let mb = |d: Duration| bytes / 1e6 / d.as_secs_f64();
    println!(
        "| pack of the {:.2} GiB corpus, cold | {:.0} MB/s into redis-server | {:.0} MB/s into a dir store | {:.2} |",
        bytes / (1u64 << 30) as f64,
        mb(redis),
        mb(dir),
        mb(redis) / mb(dir)
    );
}

fn random_chunks(count: usize, size: usize) -> Vec<EncodedChunk> {
    let mut rng = Rng(size as u64 + 1);
    let mut codec = Codec::new(1).expect("codec");
    (0..count)
        .map(|_| codec.encode(&Chunk::new(rng.bytes(size))).expect("encode"))
        .collect()
}

async fn timed<F: std::future::Future<Output = ()>>(work: impl FnOnce() -> F) -> Duration {
    let started = Instant::now();
    work().await;
    started.elapsed()
}

async fn put_all(store: &Arc<dyn ChunkStore>, chunks: &[EncodedChunk]) {
    stream::iter(chunks.chunks(BATCH))
        .map(|batch| store.put_many(batch))
        .buffer_unordered(CALLERS)
        .try_collect::<()>()
        .await
        .expect("put_many");
}

async fn get_all(store: &Arc<dyn ChunkStore>, chunks: &[EncodedChunk]) {
    let keys: Vec<ChunkKey> = chunks.iter().map(EncodedChunk::key).collect();
    let found: Vec<Vec<Option<bytes::Bytes>>> = stream::iter(keys.chunks(BATCH))
        .map(|batch| store.get_many(batch))
        .buffer_unordered(CALLERS)
        .try_collect()
        .await
        .expect("get_many");
    assert!(found.iter().flatten().all(Option::is_some));
}

/// Requests per second of SET and of GET with `size`-byte values, with `-P 16`, over
/// `count` distinct keys as a chunk store has: SETs of new random keys (`-r` over a huge
/// keyspace; without `-r` every SET would overwrite the same key, which Redis does much
/// faster than storing new values), then GETs of random keys all present (the keyspace is
/// filled first).
fn redis_benchmark(port: u16, size: usize, count: usize) -> (f64, f64) {
    let run = |test: &str, requests: usize, keyspace: usize| -> f64 {
        let out = Command::new("redis-benchmark")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-q",
                "-P",
                "16",
                "-t",
                test,
            ])
            .args(["-d", &size.to_string(), "-n", &requests.to_string()])
            .args(["-r", &keyspace.to_string()])
            .output()
            .expect("redis-benchmark (from redis-tools)");
        let text = String::from_utf8_lossy(&out.stdout);
        let name = test.to_ascii_uppercase();
        // The progress lines are overwritten with \r; the final figure comes last.
        text.rsplit(['\n', '\r'])
            .filter_map(|line| line.trim().strip_prefix(&format!("{name}: ")))
            .find_map(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} figure in: {text}"))
    };
    let set = run("set", count, 100_000_000);
    run("set", count * 10, count); // fill the keyspace the GETs read
    let get = run("get", count * 4, count);
    (set, get)
}

fn pack(corpus: &std::path::Path, out: &std::path::Path, store: &str) -> Duration {
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_flisthub"))
        .args(["-q", "pack"])
        .arg(corpus)
        .arg("-o")
        .arg(out)
        .arg("--store")
        .arg(store)
        .status()
        .expect("run flisthub");
    assert!(status.success());
    started.elapsed()
}
