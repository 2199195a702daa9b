//! `flisthub import-0hub` of a 0-hub tree of many 0-flists (default 1,000 in 10 repositories,
//! each with a `latest` link, each flist one file of 128 KiB of random bytes: one block)
//! whose blocks sit in a real 0-db (`zdb-2.0.7`), into a fresh data directory with the
//! `dir` store, beside a plain pipelined copy of the same blocks (`get_blocks` from the 0-db,
//! `put_blocks` into a fresh `dir` store, 64 a request, 4 requests in flight: what the import
//! does for blocks, without reading, checking and publishing the flists). Interleaved, run
//! by run; wall time, CPU seconds, files/s and MB/s of blocks.
//!
//! ```sh
//! cargo bench --bench import                          # 1,000 flists
//! FLISTHUB_BENCH_IMPORT_FLISTS=100 cargo bench --bench import
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chunkstore::{BlockId, ChunkStore};
use futures_util::TryStreamExt;
use legacy::{Entry, Kind, Tree};

mod common;
use common::{Rng, cpu_seconds, median, wait_with_usage, work_dir};

const FILE: usize = 128 << 10;
const REPOSITORIES: usize = 10;

fn main() {
    let Some(zdb_program) = testkit::peers::peer("zdb-2.0.7") else {
        return;
    };
    let flists: usize = std::env::var("FLISTHUB_BENCH_IMPORT_FLISTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let root = work_dir().join("import");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let (mut zdb, port) = common::start_zdb(&zdb_program, &root);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let old = hub::import_blocks_source(&format!("zdb://127.0.0.1:{port}")).unwrap();
    let ids = runtime.block_on(make_tree(&root.join("public/users"), flists, &old));
    let bytes = (ids.len() * FILE) as f64;

    let runs = common::runs();
    let (mut import_wall, mut import_cpu, mut copy_wall, mut copy_cpu) =
        (vec![], vec![], vec![], vec![]);
    for run in 0..runs {
        let data = root.join(format!("hub-{run}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_flisthub"))
            .args(["--quiet", "import-0hub"])
            .arg(root.join("public"))
            .args([
                "--blocks-from",
                &format!("zdb://127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(&data)
            .env_remove("FLISTHUB_CONFIG")
            .env("HOME", &root)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let (code, usage) = wait_with_usage(&mut child);
        import_wall.push(started.elapsed());
        assert_eq!(code, 0, "import-0hub failed");
        import_cpu.push(cpu(&usage));

        let store = runtime
            .block_on(chunkstore::open(&format!(
                "dir://{}",
                root.join(format!("copy-{run}")).display()
            )))
            .unwrap();
        let before = cpu_seconds(std::process::id());
        let started = Instant::now();
        runtime.block_on(plain_copy(&old, &store, &ids));
        copy_wall.push(started.elapsed());
        copy_cpu.push(cpu_seconds(std::process::id()) - before);
    }
    let _ = zdb.kill();
    let _ = zdb.wait();
    let show = |what: &str, wall: Vec<Duration>, cpu: Vec<f64>| {
        let wall = median(wall).as_secs_f64();
        let mut cpu = cpu;
        cpu.sort_by(f64::total_cmp);
        println!(
            "{what:<34} {wall:>7.2} s {:>8.0} files/s {:>7.1} MB/s  cpu {:>5.2} s",
            flists as f64 / wall,
            bytes / 1e6 / wall,
            cpu[cpu.len() / 2]
        );
        wall
    };
    println!(
        "{flists} flists, {} blocks of {} KiB, median of {runs} runs",
        ids.len(),
        FILE >> 10
    );
    let import = show(
        "flisthub import-0hub --blocks-from",
        import_wall,
        import_cpu,
    );
    let copy = show("plain pipelined block copy", copy_wall, copy_cpu);
    println!("import / copy wall time: {:.2}", import / copy);
}

fn cpu(usage: &libc::rusage) -> f64 {
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// 0-flists written by the legacy writer, their blocks stored in the 0-db under bare ids
/// (as zflist stores them); the ids.
async fn make_tree(users: &Path, flists: usize, zdb: &Arc<dyn ChunkStore>) -> Vec<BlockId> {
    let mut rng = Rng(11);
    let mut ids = Vec::with_capacity(flists);
    let mut blocks = Vec::new();
    for i in 0..flists {
        let repository = users.join(format!("repo{}", i % REPOSITORIES));
        std::fs::create_dir_all(&repository).unwrap();
        let plain = rng.bytes(FILE);
        let (block, sealed) = legacy::zero::encode(&plain).unwrap();
        let mut tree = Tree::new(Entry::directory(0o755)).unwrap();
        let mut file = Entry::directory(0o644);
        file.kind = Kind::File {
            size: FILE as u64,
            blocks: vec![block],
        };
        tree.insert(b"data.bin", file).unwrap();
        let metadata = BTreeMap::from([(
            "backend".to_owned(),
            r#"{"host":"hub.tld","port":9900}"#.to_owned(),
        )]);
        let out = std::fs::File::create(repository.join(format!("f{i}.flist"))).unwrap();
        legacy::zero::write(&tree, &metadata, out).unwrap();
        ids.push(BlockId::from(block.id));
        blocks.push((BlockId::from(block.id), Bytes::from(sealed)));
        if blocks.len() == 64 {
            zdb.put_blocks(&std::mem::take(&mut blocks)).await.unwrap();
        }
    }
    zdb.put_blocks(&blocks).await.unwrap();
    for r in 0..REPOSITORIES.min(flists) {
        std::os::unix::fs::symlink(
            format!("f{r}.flist"),
            users.join(format!("repo{r}/latest.flist")),
        )
        .unwrap();
    }
    ids
}

async fn plain_copy(from: &Arc<dyn ChunkStore>, to: &Arc<dyn ChunkStore>, ids: &[BlockId]) {
    futures_util::stream::iter(ids.chunks(64).map(Ok::<_, chunkstore::Error>))
        .try_for_each_concurrent(4, |group| async move {
            let found = from.get_blocks(group).await?;
            let blocks: Vec<(BlockId, Bytes)> = group
                .iter()
                .zip(found)
                .map(|(id, b)| (*id, b.expect("the 0-db holds every block")))
                .collect();
            to.put_blocks(&blocks).await
        })
        .await
        .unwrap();
}
