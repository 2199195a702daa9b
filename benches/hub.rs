//! The hub under load, measured with independent clients beside the floor for the same
//! work on the same machine:
//!
//! * `wrk` on loopback against a hub holding 1,000 repositories of 20 entries each (one
//!   uploaded flist, eleven promoted copies, eight symlinks), every request a different
//!   name: `/api/flist/<repo>/<name>/light` and `/<repo>/<name>.flist.md5`, beside the
//!   same server answering a route that touches no database (its HTTP floor);
//! * a 50 MB flist downloaded with `curl`, beside `cat` of the same file;
//! * the pipeline bench's corpus as a `.tar.gz` uploaded with `curl` through
//!   `/api/flist/me/upload`, beside `flisthub pack` of the same tarball (both into a cold
//!   store) and `gzip -dc` of it.
//!
//! ```sh
//! cargo bench --bench hub
//! FLISTHUB_BENCH_RUNS=5 FLISTHUB_BENCH_SECONDS=20 cargo bench --bench hub
//! ```
//!
//! The populated hub, the big flist and the tarball are kept between runs (in
//! `target/flisthub-bench` by default). wrk, curl and gzip must be installed
//! (`scripts/test-all` installs them).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::multipart;

mod common;
use common::load::{
    CONNECTIONS, client, have, name_scripts, populated_hub, print_wrk, wrk, wrk_median,
};
use common::{Hub, ensure_corpus, median, settle};

fn main() {
    for program in ["wrk", "curl", "gzip"] {
        if !have(program) {
            eprintln!("{program} is needed (scripts/test-all installs it)");
            return;
        }
    }
    let work = common::work_dir();
    let runs = common::runs();
    let seconds: u64 = std::env::var("FLISTHUB_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    println!(
        "{runs} runs per figure, median shown; wrk: 2 threads, {CONNECTIONS} connections, {seconds} s\n"
    );

    let data = work.join("hub-populated");
    let hub = populated_hub(&data);
    let (light, md5) = name_scripts(&work);
    println!("| requests | req/s | p50 | p99 | vs the HTTP floor |");
    println!("|---|---|---|---|---|");
    let floor = wrk_median(
        runs,
        seconds,
        &format!("{}/api/v1/no-such-route", hub.url),
        None,
        false,
    );
    print_wrk(
        "floor: an unknown route (a 404, no database)",
        &floor,
        &floor,
    );
    // A new hub process knows none of the names yet: its first pass reads each from the
    // database. The figures after it are the steady state, every name asked before.
    let mut hub = hub;
    for (label, script) in [
        ("`/light`, first 5 s of a new process", &light),
        ("`.flist.md5`, first 5 s of a new process", &md5),
    ] {
        drop(hub);
        hub = Hub::start(&data);
        let first = wrk(5, &hub.url, Some(script), true);
        print_wrk(label, &first, &floor);
    }
    for (label, script) in [
        ("`/light` of 20,000 names, steady", &light),
        ("`.flist.md5` of 20,000 names, steady", &md5),
    ] {
        let figures = wrk_median(runs, seconds, &hub.url, Some(script), true);
        print_wrk(label, &figures, &floor);
    }

    let big = big_flist(&work, &hub);
    let size = std::fs::metadata(&big).unwrap().len();
    let cat = median(
        (0..runs)
            .map(|_| timed(|| run_quiet(Command::new("cat").arg(&big))))
            .collect(),
    );
    let url = format!("{}/bench/big.flist", hub.url);
    let download = median(
        (0..runs)
            .map(|_| {
                timed(|| {
                    run_quiet(Command::new("curl").args(["-sS", "--fail", "-o", "/dev/null", &url]))
                })
            })
            .collect(),
    );
    let mbs = |bytes: u64, d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    println!(
        "\n| {:.0} MB flist | throughput | ratio |",
        size as f64 / 1e6
    );
    println!("|---|---|---|");
    println!(
        "| floor: `cat` to /dev/null | {:.0} MB/s | 1.00 |",
        mbs(size, cat)
    );
    println!(
        "| download with curl | {:.0} MB/s | {:.2} |",
        mbs(size, download),
        cat.as_secs_f64() / download.as_secs_f64()
    );
    drop(hub);

    upload_beside_pack(&work, runs);
}

/// as `bench/big.flist`.
fn big_flist(work: &Path, hub: &Hub) -> PathBuf {
    let out = work.join("big.flist");
    if !out.exists() {
        println!("\nmaking a 50 MB flist ...");
        let tmp = work.join("big.flist.tmp");
        let mut child = Command::new(env!("CARGO_BIN_EXE_flisthub"))
            .args(["-q", "pack", "-", "-o"])
            .arg(&tmp)
            .arg("--store")
            .arg(format!("dir://{}", work.join("big-store").display()))
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        {
            let mut builder = tar::Builder::new(child.stdin.take().unwrap());
            let padding = "n".repeat(100);
            for i in 0..300_000u32 {
                let mut header = tar::Header::new_gnu();
                header.set_size(0);
                header.set_mode(0o644);
                header.set_uid(0);
                header.set_gid(0);
                header.set_mtime(1_700_000_000);
                let name = format!("d{:03}/{padding}-{i:07}", i % 500);
                builder
                    .append_data(&mut header, name, std::io::empty())
                    .unwrap();
            }
            builder.finish().unwrap();
        }
        assert!(child.wait().unwrap().success());
        std::fs::rename(&tmp, &out).unwrap();
    }
    let token = hub.tokens(&["bench".to_owned()]).remove(0);
    let form = multipart::Form::new().file("file", &out).unwrap();
    let response = client()
        .post(format!("{}/api/flist/me/upload-flist", hub.url))
        .header("Authorization", format!("Bearer {token}"))
        .header("X-Original-Name", "big.flist")
        .multipart(form)
        .send()
        .unwrap();
    assert!(
        response.status().is_success(),
        "{}",
        response.text().unwrap_or_default()
    );
    out
}

/// The corpus as a `.tar.gz`, uploaded through the API with curl into a fresh hub, beside
/// `flisthub pack` of the same tarball into a fresh store.
fn upload_beside_pack(work: &Path, runs: usize) {
    let corpus = work.join("corpus");
    let bytes = ensure_corpus(&corpus);
    let tarball = work.join("corpus.tar.gz");
    if !tarball.exists() {
        println!("\nmaking {} ...", tarball.display());
        let tmp = work.join("corpus.tar.gz.tmp");
        run_quiet(
            Command::new("tar")
                .arg("-czf")
                .arg(&tmp)
                .arg("-C")
                .arg(&corpus)
                .arg("."),
        );
        std::fs::rename(&tmp, &tarball).unwrap();
    }
    let compressed = std::fs::metadata(&tarball).unwrap().len();
    let scratch = work.join("hub-scratch");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let gunzip = median(
        (0..runs)
            .map(|_| {
                timed(|| {
                    run_quiet(
                        Command::new("sh")
                            .arg("-c")
                            .arg(format!("gzip -dc '{}' > /dev/null", tarball.display())),
                    )
                })
            })
            .collect(),
    );
    let (mut packs, mut uploads) = (Vec::new(), Vec::new());
    for run in 0..runs {
        settle();
        let store = format!("dir://{}", scratch.join(format!("pack{run}")).display());
        let flist = scratch.join(format!("pack{run}.flist"));
        packs.push(timed(|| {
            run_quiet(
                Command::new(env!("CARGO_BIN_EXE_flisthub"))
                    .args(["-q", "pack"])
                    .arg(&tarball)
                    .arg("-o")
                    .arg(&flist)
                    .args(["--store", &store]),
            )
        }));
        settle();
        let hub = Hub::start(&scratch.join(format!("hub{run}")));
        let token = hub.tokens(&["bench".to_owned()]).remove(0);
        let url = format!("{}/api/flist/me/upload", hub.url);
        uploads.push(timed(|| {
            run_quiet(Command::new("curl").args([
                "-sS",
                "--fail-with-body",
                "-H",
                &format!("Authorization: Bearer {token}"),
                "-F",
                &format!("file=@{}", tarball.display()),
                &url,
            ]))
        }));
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let (pack, upload) = (median(packs), median(uploads));
    let mbs = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    println!(
        "\n| corpus as .tar.gz ({:.2} GiB of files, {:.0} MB compressed) | median time | MB/s of files | vs pack |",
        bytes as f64 / (1u64 << 30) as f64,
        compressed as f64 / 1e6
    );
    println!("|---|---|---|---|");
    println!(
        "| floor: `gzip -dc` to /dev/null | {:.2} s | {:.0} | |",
        gunzip.as_secs_f64(),
        mbs(gunzip)
    );
    println!(
        "| `flisthub pack` of the tarball, cold store | {:.2} s | {:.0} | 1.00 |",
        pack.as_secs_f64(),
        mbs(pack)
    );
    println!(
        "| upload through `/api/flist/me/upload` with curl, cold store | {:.2} s | {:.0} | {:.2} |",
        upload.as_secs_f64(),
        mbs(upload),
        pack.as_secs_f64() / upload.as_secs_f64()
    );
}

fn run_quiet(cmd: &mut Command) {
    let out = cmd.stdout(Stdio::null()).output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn timed(f: impl FnOnce()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}
