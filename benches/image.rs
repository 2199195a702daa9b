//! `flisthub convert` of a single-layer image of about 500 MB (uncompressed; every other
//! file of the pipeline bench's corpus: small files, multi-megabyte binaries and text, so
//! partly compressible) from the reference registry (Debian's `docker-registry`) on
//! loopback into a new `dir` store each run, beside the floor for the same layer on the
//! same machine: `gzip -dc` of the layer's blob, as the registry stores it, into
//! /dev/null. Each figure is the median of several runs; the convert's peak resident
//! memory is its own (`wait4`). The target: convert at no less than 70% of the floor's
//! speed, in less than 300 MiB.
//!
//! ```sh
//! cargo bench --bench image
//! FLISTHUB_BENCH_DIR=/big/disk FLISTHUB_BENCH_RUNS=5 cargo bench --bench image
//! ```
//!
//! The corpus and the image (an OCI layout made by umoci) are kept between runs (in
//! `target/flisthub-bench` by default); the registry and the stores are removed at the
//! end. All figures are with a warm page cache. Needs docker-registry, skopeo and umoci
//! (as the image tests do).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{OciLayout, RegistryServer};

mod common;
use common::{ensure_corpus, median, settle, wait_with_rusage};

/// Bump when the layer's selection or layout changes.
const IMAGE_VERSION: &str = "image v1";
const TAG: &str = "bench";

fn main() {
    let work = common::work_dir();
    let runs = common::runs();
    let corpus = work.join("corpus");
    ensure_corpus(&corpus);
    let layout = work.join("image-oci");
    let (files, tar_bytes) = ensure_image(&corpus, &layout);
    let Some(registry) = RegistryServer::start() else {
        println!("SKIP: the image bench needs docker-registry, skopeo and umoci");
        return;
    };
    registry.push(
        &format!("oci:{}:{TAG}", layout.display()),
        "bench/image:v1",
        &[],
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&registry.manifest("bench/image:v1")).expect("manifest");
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "{manifest}");
    let digest = layers[0]["digest"].as_str().expect("digest");
    let blob = registry.blob_path(digest);
    let blob_bytes = std::fs::metadata(&blob).expect("the layer blob").len();
    println!(
        "layer: {files} files, {:.0} MB as a tar, {:.0} MB gzipped ({}, {})",
        tar_bytes as f64 / 1e6,
        blob_bytes as f64 / 1e6,
        layers[0]["mediaType"].as_str().unwrap_or_default(),
        digest
    );
    println!("runs per figure: {runs} (median shown)\n");

    // ext4 without a journal (this machine's root) passes over inodes freed in the last
    // 60 s (RECENTCY_MIN, fs/ext4/ialloc.c; 300 s while their inode table block is dirty)
    // when it allocates, one look-up in the buffer cache each: right after a mass deletion
    // (another bench's store, a previous run's), creating the store's 20,000 chunk files
    // took a quarter of convert's CPU (find_inode_bit/recently_deleted in `perf`), more
    // than `settle`'s 10 s wait avoids. So the runs' stores are all kept until the end and
    // the first run waits out a minute from the last deletion, flushed.
    let scratch = work.join("image-scratch");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let _ = Command::new("sync").status();
    let deleted = Instant::now();

    let floors: Vec<Duration> = (0..runs).map(|_| gunzip(&blob)).collect();
    let floor = median(floors.clone());
    std::thread::sleep(Duration::from_secs(65).saturating_sub(deleted.elapsed()));

    let reference = format!("{}/bench/image:v1", registry.host());
    let mut samples = Vec::new();
    for run in 0..runs {
        let dir = scratch.join(format!("run{run}"));
        std::fs::create_dir_all(&dir).unwrap();
        settle();
        let report = dir.join("report.json");
        let sample = flisthub(
            &[
                "convert",
                &reference,
                "-o",
                path(&dir.join("image.flist")),
                "--store",
                &format!("dir://{}", dir.join("store").display()),
                "--json",
            ],
            &report,
        );
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report).unwrap()).expect("convert's JSON");
        // Every file of the layer, and the /.startup.toml convert adds.
        assert_eq!(
            report["totals"]["files"].as_u64(),
            Some(files + 1),
            "{report}"
        );
        if run == 0 {
            println!(
                "convert: {} chunks, {:.0} MB written to the store\n",
                report["chunks"],
                report["stored_bytes"].as_f64().unwrap_or(0.0) / 1e6
            );
        }
        samples.push(sample);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    drop(registry);

    let convert = median(samples.iter().map(|s| s.elapsed).collect());
    let rss = samples.iter().map(|s| s.peak_rss).max().unwrap_or(0);
    let mbs = |d: Duration| tar_bytes as f64 / 1e6 / d.as_secs_f64();
    println!(
        "| single-layer image ({:.0} MB uncompressed) | median time | MB/s (uncompressed) | speed vs floor | peak RSS |",
        tar_bytes as f64 / 1e6
    );
    println!("|---|---|---|---|---|");
    println!(
        "| floor: `gzip -dc` of the layer blob | {:.2} s | {:.0} | 1.00 | |",
        floor.as_secs_f64(),
        mbs(floor)
    );
    println!(
        "| `convert` from a loopback registry, new `dir` store | {:.2} s | {:.0} | {:.2} | {} MiB |",
        convert.as_secs_f64(),
        mbs(convert),
        mbs(convert) / mbs(floor),
        rss >> 20
    );
    let seconds = |all: &mut dyn Iterator<Item = Duration>| {
        all.map(|d| format!("{:.2}", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "\nruns: floor {} s; convert {} s",
        seconds(&mut floors.into_iter()),
        seconds(&mut samples.iter().map(|s| s.elapsed))
    );
    println!(
        "target: speed vs floor >= 0.70 (convert takes {:.2}x the floor's time), peak RSS < 300 MiB",
        convert.as_secs_f64() / floor.as_secs_f64()
    );
}

/// Makes the image unless an identical one is already there: an OCI layout at `layout`
/// (tag `bench`) with one layer holding every other file of the corpus, in name order.
/// Returns the layer's file count and its size as an uncompressed tar. The layer is
/// written to disk as it is made, never held in memory (see `flisthub` below for why
/// this process stays small).
fn ensure_image(corpus: &Path, layout: &Path) -> (u64, u64) {
    let marker = layout.with_extension("complete");
    if let Ok(text) = std::fs::read_to_string(&marker)
        && let Some(rest) = text.strip_prefix(IMAGE_VERSION)
        && let [files, bytes] = rest.split_whitespace().collect::<Vec<_>>()[..]
        && let (Ok(files), Ok(bytes)) = (files.parse(), bytes.parse())
    {
        return (files, bytes);
    }
    let _ = std::fs::remove_file(&marker);
    let _ = std::fs::remove_dir_all(layout);
    println!("making the image in {} ...", layout.display());
    let layer = layout.with_extension("layer.tar");
    let mut tar = tar::Builder::new(BufWriter::new(File::create(&layer).expect("the layer")));
    tar.mode(tar::HeaderMode::Deterministic);
    let mut files = 0u64;
    let mut index = 0u64;
    for entry in walkdir::WalkDir::new(corpus)
        .min_depth(1)
        .sort_by_file_name()
    {
        let entry = entry.expect("walk the corpus");
        let rel = entry.path().strip_prefix(corpus).unwrap();
        if entry.file_type().is_dir() {
            tar.append_dir(rel, entry.path()).expect("a directory");
        } else if entry.file_type().is_file() && rel != Path::new(".complete") {
            if index % 2 == 0 {
                tar.append_path_with_name(entry.path(), rel)
                    .expect("a file");
                files += 1;
            }
            index += 1;
        }
    }
    tar.into_inner()
        .expect("the layer")
        .flush()
        .expect("the layer");
    let bytes = std::fs::metadata(&layer).expect("the layer").len();
    // `OciLayout::add_layer` takes the layer in memory: umoci is run here on the file.
    OciLayout::new(layout, TAG);
    let out = Command::new("umoci")
        .args(["raw", "add-layer", "--no-history", "--image"])
        .arg(format!("{}:{TAG}", layout.display()))
        .arg(&layer)
        .output()
        .expect("run umoci");
    assert!(
        out.status.success(),
        "umoci raw add-layer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&layer).unwrap();
    std::fs::write(&marker, format!("{IMAGE_VERSION} {files} {bytes}")).unwrap();
    (files, bytes)
}

/// The floor: `gzip -dc BLOB > /dev/null`.
fn gunzip(blob: &Path) -> Duration {
    let started = Instant::now();
    let status = Command::new("gzip")
        .arg("-dc")
        .arg(blob)
        .stdout(File::create("/dev/null").unwrap())
        .status()
        .expect("run gzip");
    let elapsed = started.elapsed();
    assert!(status.success(), "gzip -dc {}: {status}", blob.display());
    elapsed
}

fn path(p: &Path) -> &str {
    p.to_str().expect("bench paths are UTF-8")
}

struct Sample {
    elapsed: Duration,
    peak_rss: u64,
}

/// Runs `flisthub -q ARGS` with its standard output into `stdout`; returns its wall time
/// and peak RSS.
///
/// The child is made with fork, not `posix_spawn` (which `std` uses unless a `pre_exec`
/// hook is set): a `posix_spawn`ed child shares this process's memory until it execs, and
/// Linux then carries that memory's high-water mark into the child's `ru_maxrss`, so
/// the figure would be at least the peak this process ever reached. A forked child
/// starts from this process's current resident set, a few MiB.
fn flisthub(args: &[&str], stdout: &Path) -> Sample {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flisthub"));
    cmd.arg("-q")
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(stdout).unwrap());
    // SAFETY: the hook does nothing; it only makes `std` fork. This process runs no other
    // threads of its own here.
    unsafe {
        cmd.pre_exec(|| Ok(()));
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start flisthub");
    let (status, peak_rss) = wait_with_rusage(&mut child);
    let elapsed = started.elapsed();
    assert!(status == 0, "flisthub {args:?} failed with status {status}");
    Sample { elapsed, peak_rss }
}
