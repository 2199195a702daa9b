//! Renditions, measured where they matter:
//!
//! 1. A node reading a whole tree through `rfs-2.0.6 mount`: from the hub's `.fl` rendition,
//!    blocks through the 0-db gateway (encoded from the hub's chunks when read), against the
//!    same tree packed by `rfs-2.0.6 pack` into a real `zdb-2.0.7` and mounted from there.
//!    Every run mounts with an empty cache, so every block crosses the wire once.
//! 2. Publishing a tar upload of the benchmark corpus with renditions (gateway on: the pack
//!    also hashes every 512 KiB window) against without (gateway off), each run on fresh
//!    hubs; the time renditions take to be made afterwards, in the background, is shown
//!    apart.
//!
//! ```sh
//! cargo bench --bench renditions                  # FLISTHUB_BENCH_RUNS=5 for more runs
//! ```

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{Hub, Rng, cpu_seconds, median, work_dir};
use testkit::peers::{FuseMount, rfs_pack};

/// The tree a node reads: 48 files of 4 MiB (half random, half text-like) and 2,000 small
/// ones, about 200 MB.
fn node_tree(root: &Path) {
    let mut rng = Rng(0x00de_0f1a_5eed);
    for i in 0..48 {
        let data = if i % 2 == 0 {
            rng.bytes(4 << 20)
        } else {
            let line = rng.bytes(60);
            line.iter().cycle().take(4 << 20).copied().collect()
        };
        let path = root.join(format!("big/f{i:02}"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    for i in 0..2000 {
        let path = root.join(format!("small/d{:02}/f{i:04}", i % 40));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, rng.bytes(1000 + (i * 37) % 9000)).unwrap();
    }
}

/// Reads every file under `root`; the bytes read.
fn read_all(root: &Path) -> u64 {
    let mut total = 0;
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            total += std::fs::read(entry.path()).unwrap().len() as u64;
        }
    }
    total
}

/// Mounts `fl` with rfs on a fresh cache and reads the whole tree: (seconds, bytes).
fn mount_and_read(fl: &Path, scratch: &Path) -> (Duration, u64) {
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).unwrap();
    let mount =
        FuseMount::rfs(fl, &scratch.join("cache"), &scratch.join("root")).expect("rfs mounts");
    let started = Instant::now();
    let bytes = read_all(mount.path());
    (started.elapsed(), bytes)
}

fn tar(dir: &Path, out: &Path) {
    let status = Command::new("tar")
        .arg("-cf")
        .arg(out)
        .arg("-C")
        .arg(dir)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
}

/// Uploads `archive` as `name` with `curl`: the request's wall time.
fn upload(hub: &Hub, token: &str, archive: &Path, name: &str) -> Duration {
    let started = Instant::now();
    let out = Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg("-F")
        .arg(format!("file=@{};filename={name}.tar", archive.display()))
        .arg(format!("{}/api/flist/me/upload", hub.url))
        .status()
        .unwrap();
    assert!(out.success(), "upload to {}", hub.url);
    started.elapsed()
}

/// Waits until `name` has renditions.
fn wait_for_renditions(hub: &Hub, name: &str) {
    loop {
        let out = Command::new("curl")
            .arg("-s")
            .arg(format!("{}/api/flist/bench/{name}.flist/light", hub.url))
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("renditions") {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn gateway_config(port: u16) -> String {
    format!("[gateway]\nlisten = \"127.0.0.1:{port}\"\npublic-url = \"zdb://127.0.0.1:{port}\"\n")
}

fn main() {
    let (Some(zdb_program), Some(_)) = (
        testkit::peers::peer("zdb-2.0.7"),
        testkit::peers::peer("rfs-2.0.6"),
    ) else {
        eprintln!("skipped: zdb-2.0.7 or rfs-2.0.6 is missing");
        return;
    };
    let root = work_dir().join("renditions");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let runs = common::runs();

    // 1. A node reading through rfs: zdb against the gateway.
    let tree = root.join("tree");
    node_tree(&tree);
    let (mut zdb, zdb_port) = common::start_zdb(&zdb_program, &root);
    let packed = root.join("zdb.fl");
    let out = rfs_pack(&packed, &format!("zdb://127.0.0.1:{zdb_port}"), &tree).unwrap();
    assert!(out.status.success(), "rfs pack");

    let gateway_port = testkit::free_port(false);
    let hub = Hub::start_with(&root.join("hub"), &gateway_config(gateway_port));
    let token = hub.tokens(&["bench".into()]).remove(0);
    let archive = root.join("tree.tar");
    tar(&tree, &archive);
    upload(&hub, &token, &archive, "tree");
    wait_for_renditions(&hub, "tree");
    let rendition = root.join("hub.fl");
    let status = Command::new("curl")
        .args(["-sfo"])
        .arg(&rendition)
        .arg(format!("{}/bench/tree.fl", hub.url))
        .status()
        .unwrap();
    assert!(status.success());

    let (mut from_zdb, mut from_hub, mut zdb_cpu, mut hub_cpu) = (vec![], vec![], vec![], vec![]);
    let mut bytes = 0;
    for _ in 0..runs {
        let before = cpu_seconds(zdb.id());
        let (took, read) = mount_and_read(&packed, &root.join("node"));
        zdb_cpu.push(cpu_seconds(zdb.id()) - before);
        from_zdb.push(took);
        let before = cpu_seconds(hub.pid());
        let (took, read_hub) = mount_and_read(&rendition, &root.join("node"));
        hub_cpu.push(cpu_seconds(hub.pid()) - before);
        from_hub.push(took);
        assert_eq!(read, read_hub, "both mounts show the same bytes");
        bytes = read;
    }
    let _ = zdb.kill();
    let _ = zdb.wait();
    drop(hub);
    let mb = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    let mid = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (z, h) = (mb(median(from_zdb)), mb(median(from_hub)));
    println!(
        "rfs-2.0.6 mount, whole tree read ({:.0} MB, {runs} runs, fresh cache each, medians; server CPU seconds per read: zdb {:.2}, hub {:.2})\n",
        bytes as f64 / 1e6,
        mid(zdb_cpu),
        mid(hub_cpu)
    );
    println!("| blocks from | zdb-2.0.7 (rfs pack) | flisthub gateway (rendition) | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| read throughput | {z:.0} MB/s | {h:.0} MB/s | {:.2} |\n",
        h / z
    );

    // 2. Publish time of the corpus, with and without renditions.
    let corpus = work_dir().join("corpus");
    let corpus_bytes = common::ensure_corpus(&corpus);
    let corpus_tar = root.join("corpus.tar");
    tar(&corpus, &corpus_tar);
    let (mut plain, mut with, mut after) = (vec![], vec![], vec![]);
    for run in 0..runs {
        common::settle();
        let without = Hub::start(&root.join(format!("plain-{run}")));
        let token = without.tokens(&["bench".into()]).remove(0);
        plain.push(upload(&without, &token, &corpus_tar, "corpus"));
        drop(without);
        let _ = std::fs::remove_dir_all(root.join(format!("plain-{run}")));

        common::settle();
        let port = testkit::free_port(false);
        let hub = Hub::start_with(&root.join(format!("with-{run}")), &gateway_config(port));
        let token = hub.tokens(&["bench".into()]).remove(0);
        with.push(upload(&hub, &token, &corpus_tar, "corpus"));
        let started = Instant::now();
        wait_for_renditions(&hub, "corpus");
        after.push(started.elapsed());
        drop(hub);
        let _ = std::fs::remove_dir_all(root.join(format!("with-{run}")));
    }
    let (p, w, a) = (median(plain), median(with), median(after));
    println!(
        "tar upload of the corpus ({:.2} GB, {runs} runs on fresh hubs, medians)\n",
        corpus_bytes as f64 / 1e9
    );
    println!("| | without renditions | with renditions | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| upload answered | {:.1} s | {:.1} s | {:.2} |",
        p.as_secs_f64(),
        w.as_secs_f64(),
        w.as_secs_f64() / p.as_secs_f64()
    );
    println!(
        "| renditions made after the answer | | {:.1} s | |",
        a.as_secs_f64()
    );
}
