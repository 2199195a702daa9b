//! Whole-pipeline throughput of the real `flisthub` binary on a generated corpus of more than
//! 1 GiB (tens of thousands of small files, multi-megabyte binaries, compressible text, a few
//! duplicated files), beside the floor for the same bytes on the same machine: reading them,
//! and reading and hashing them with BLAKE3 (one thread, as `pack` reads on one thread).
//!
//! A third floor, reading and writing a plain copy of the tree, is the one `extract` is up
//! against. Measures `pack` into a cold store, `pack` into a warm store (everything already
//! stored), and `extract`; each run is repeated and the median reported, with the ratio to the floor
//! and the binary's peak resident memory. A last run packs a 4 GiB single-file tar stream from
//! stdin to show that memory does not grow with the size of a file.
//!
//! ```sh
//! cargo bench --bench pipeline
//! FLISTHUB_BENCH_DIR=/big/disk FLISTHUB_BENCH_RUNS=5 cargo bench --bench pipeline
//! ```
//!
//! The corpus is kept between runs (in `target/flisthub-bench` by default); stores and
//! extracted trees are removed at the end. All figures are with a warm page cache.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{Rng, ensure_corpus, median, settle, tree_bytes, wait_with_rusage};

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters nothing here.
    let work = common::work_dir();
    let runs = common::runs();
    let corpus = work.join("corpus");
    let bytes = ensure_corpus(&corpus);
    let files = walkdir::WalkDir::new(&corpus)
        .into_iter()
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_type().is_file()))
        .count();
    println!(
        "corpus: {files} files, {:.2} GiB ({bytes} bytes) in {}",
        bytes as f64 / (1u64 << 30) as f64,
        corpus.display()
    );
    println!("runs per figure: {runs} (median shown)\n");

    let read_t = median((0..runs).map(|_| time(|| floor(&corpus, false))).collect());
    let hash_t = median((0..runs).map(|_| time(|| floor(&corpus, true))).collect());

    let scratch = work.join("scratch");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch).expect("remove old scratch");
    }
    settle();
    let copy_t = median(
        (0..runs)
            .map(|run| time(|| copy_tree(&corpus, &scratch.join(format!("copy{run}")))))
            .collect(),
    );
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut extract = Vec::new();
    for run in 0..runs {
        let dir = scratch.join(format!("run{run}"));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let store = format!("dir://{}", dir.join("store").display());
        let flist = dir.join("corpus.flist");
        cold.push(flisthub(
            &["pack", path(&corpus), "-o", path(&flist), "--store", &store],
            None,
        ));
        let warm_flist = dir.join("warm.flist");
        warm.push(flisthub(
            &[
                "pack",
                path(&corpus),
                "-o",
                path(&warm_flist),
                "--store",
                &store,
            ],
            None,
        ));
        assert_eq!(
            std::fs::read(&flist).unwrap(),
            std::fs::read(&warm_flist).unwrap(),
            "cold and warm packs must give the same flist"
        );
        let out = dir.join("out");
        extract.push(flisthub(
            &["extract", path(&flist), path(&out), "--store", &store],
            None,
        ));
        let extracted = tree_bytes(&out);
        assert_eq!(extracted, bytes, "extract must recreate every byte");
    }
    let stream = stream_memory(&scratch);
    let _ = std::fs::remove_dir_all(&scratch);

    let mbs = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    println!(
        "| measurement | median time | throughput | vs read floor | vs read+BLAKE3 floor | peak RSS |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| floor: read | {:.2} s | {:.0} MB/s | 1.00 | | |",
        read_t.as_secs_f64(),
        mbs(read_t)
    );
    println!(
        "| floor: read + BLAKE3 | {:.2} s | {:.0} MB/s | {:.2} | 1.00 | |",
        hash_t.as_secs_f64(),
        mbs(hash_t),
        mbs(hash_t) / mbs(read_t)
    );
    println!(
        "| floor: read + write a copy | {:.2} s | {:.0} MB/s | {:.2} | | |",
        copy_t.as_secs_f64(),
        mbs(copy_t),
        mbs(copy_t) / mbs(read_t)
    );
    for (name, samples) in [
        ("pack, cold store", &cold),
        ("pack, warm store", &warm),
        ("extract", &extract),
    ] {
        let t = median(samples.iter().map(|s| s.elapsed).collect());
        let rss = samples.iter().map(|s| s.peak_rss).max().unwrap_or(0);
        println!(
            "| {name} | {:.2} s | {:.0} MB/s | {:.2} | {:.2} | {} MiB |",
            t.as_secs_f64(),
            mbs(t),
            mbs(t) / mbs(read_t),
            mbs(t) / mbs(hash_t),
            rss >> 20
        );
    }
    println!(
        "| pack of a 4 GiB single-file tar on stdin | {:.2} s | {:.0} MB/s | | | {} MiB |",
        stream.elapsed.as_secs_f64(),
        (4u64 << 30) as f64 / 1e6 / stream.elapsed.as_secs_f64(),
        stream.peak_rss >> 20
    );
}

fn path(p: &Path) -> &str {
    p.to_str().expect("bench paths are UTF-8")
}

struct Sample {
    elapsed: Duration,
    peak_rss: u64,
}

/// Runs `flisthub -q ARGS`, returning its wall time and peak RSS.
/// Writes a command's standard input.
type Feed<'a> = &'a mut dyn FnMut(&mut dyn Write);

fn flisthub(args: &[&str], stdin: Option<Feed>) -> Sample {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flisthub"));
    cmd.arg("-q").args(args).stdout(Stdio::null());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start flisthub");
    if let Some(feed) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        feed(&mut pipe);
    }
    let (status, peak_rss) = wait_with_rusage(&mut child);
    let elapsed = started.elapsed();
    assert!(status == 0, "flisthub {args:?} failed with status {status}");
    Sample { elapsed, peak_rss }
}

fn time(f: impl FnOnce() -> u64) -> Duration {
    let started = Instant::now();
    std::hint::black_box(f());
    started.elapsed()
}

/// Reads every file of the tree (in the order `pack` does), optionally hashing it.
fn floor(root: &Path, hash: bool) -> u64 {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    let mut hasher = blake3::Hasher::new();
    let walk = walkdir::WalkDir::new(root).sort_by_file_name();
    for entry in walk {
        let entry = entry.expect("walk corpus");
        if !entry.file_type().is_file() {
            continue;
        }
        let mut file = std::fs::File::open(entry.path()).expect("open");
        loop {
            let n = file.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            if hash {
                hasher.update(&buf[..n]);
            }
            total += n as u64;
        }
    }
    std::hint::black_box(hasher.finalize());
    total
}

/// Copies every file of the tree with plain reads and writes, one thread: the floor for
/// writing a tree back out, which `extract` does.
fn copy_tree(root: &Path, dest: &Path) -> u64 {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.expect("walk corpus");
        let target = dest.join(entry.path().strip_prefix(root).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            continue;
        }
        let mut from = std::fs::File::open(entry.path()).expect("open");
        let mut to = std::fs::File::create(&target).expect("create");
        loop {
            let n = from.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            to.write_all(&buf[..n]).expect("write");
            total += n as u64;
        }
    }
    total
}

/// Packs a tar stream holding one 4 GiB file of random bytes from stdin: incompressible and
/// never repeating, so that every chunk is compressed in vain, hashed and stored (a repeated
/// block would be stored once and flatter the figure).
fn stream_memory(scratch: &Path) -> Sample {
    const SIZE: u64 = 4 << 30;
    let store = format!("dir://{}", scratch.join("stream-store").display());
    let out = scratch.join("stream.flist");
    let mut rng = Rng(7);
    let mut feed = |pipe: &mut dyn Write| {
        let mut header = tar::Header::new_gnu();
        header.set_path("big").unwrap();
        header.set_size(SIZE);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_cksum();
        pipe.write_all(header.as_bytes()).unwrap();
        for _ in 0..SIZE >> 20 {
            pipe.write_all(&rng.bytes(1 << 20)).unwrap();
        }
        pipe.write_all(&[0u8; 1024]).unwrap();
    };
    flisthub(
        &["pack", "-", "-o", path(&out), "--store", &store],
        Some(&mut feed),
    )
}
