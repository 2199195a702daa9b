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

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, multipart};

mod common;
use common::{Hub, ensure_corpus, median, settle};

const REPOSITORIES: usize = 1000;
const UPLOADED: usize = 1;
const PROMOTED: usize = 11;
const LINKED: usize = 8;
const POPULATED_VERSION: &str = "hub bench v1";
/// wrk connections: enough to keep the hub's runtime busy on a 2-core machine.
const CONNECTIONS: usize = 32;

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

fn repository(i: usize) -> String {
    format!("user{i:04}.3bot")
}

/// The hub with 1,000 repositories of 20 entries, made once and kept.
fn populated_hub(data: &Path) -> Hub {
    let marker = data.join("bench-complete");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == POPULATED_VERSION) {
        return Hub::start(data);
    }
    let _ = std::fs::remove_dir_all(data);
    let hub = Hub::start(data);
    println!(
        "populating {REPOSITORIES} repositories of {} entries ...",
        UPLOADED + PROMOTED + LINKED
    );
    let started = Instant::now();
    let users: Vec<String> = (0..REPOSITORIES).map(repository).collect();
    let tokens = hub.tokens(&users);
    let work: Vec<(usize, String)> = tokens.into_iter().enumerate().collect();
    std::thread::scope(|scope| {
        for part in work.chunks(REPOSITORIES.div_ceil(4)) {
            let url = &hub.url;
            scope.spawn(move || {
                let c = client();
                for (i, token) in part {
                    populate(&c, url, *i, token);
                }
            });
        }
    });
    std::fs::write(&marker, POPULATED_VERSION).unwrap();
    println!("populated in {:.0} s\n", started.elapsed().as_secs_f64());
    hub
}

fn populate(c: &Client, url: &str, i: usize, token: &str) {
    let send = |request: reqwest::blocking::RequestBuilder| {
        let response = request
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .unwrap();
        assert!(
            response.status().is_success(),
            "{}",
            response.text().unwrap_or_default()
        );
    };
    let form = multipart::Form::new().part(
        "file",
        multipart::Part::bytes(small_tarball(i)).file_name("app.tar.gz"),
    );
    send(c.post(format!("{url}/api/flist/me/upload")).multipart(form));
    let me = repository(i);
    for p in 0..PROMOTED {
        send(c.post(format!("{url}/api/flist/me/promote/{me}/app/copy{p:02}")));
    }
    for l in 0..LINKED {
        send(c.post(format!("{url}/api/flist/me/copy{l:02}/link/link{l:02}")));
    }
}

/// A small gzip tarball, different for each repository.
fn small_tarball(i: usize) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in [
        ("etc/hostname".to_owned(), format!("host{i}\n")),
        (
            "srv/app/README".to_owned(),
            "a small application\n".repeat(20),
        ),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        builder
            .append_data(&mut header, name, content.as_bytes())
            .unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

/// wrk Lua scripts that request every name of the populated hub in turn, spread out.
fn name_scripts(work: &Path) -> (PathBuf, PathBuf) {
    let mut names = Vec::new();
    for i in 0..REPOSITORIES {
        let me = repository(i);
        names.push((me.clone(), "app.flist".to_owned()));
        names.extend((0..PROMOTED).map(|p| (me.clone(), format!("copy{p:02}.flist"))));
        names.extend((0..LINKED).map(|l| (me.clone(), format!("link{l:02}.flist"))));
    }
    let script = |file: &str, path: &dyn Fn(&str, &str) -> String| {
        let mut lua = String::from("local paths = {\n");
        for (repo, name) in &names {
            lua.push_str(&format!("  \"{}\",\n", path(repo, name)));
        }
        // A stride coprime with the count visits every name, in no useful order for caches.
        lua.push_str("}\nlocal i = math.random(#paths)\nrequest = function()\n  i = (i + 7919) % #paths\n  return wrk.format(\"GET\", paths[i + 1])\nend\n");
        let out = work.join(file);
        std::fs::write(&out, lua).unwrap();
        out
    };
    (
        script("light.lua", &|repo, name| {
            format!("/api/flist/{repo}/{name}/light")
        }),
        script("md5.lua", &|repo, name| format!("/{repo}/{name}.md5")),
    )
}

struct WrkFigures {
    rps: f64,
    p50: f64,
    p99: f64,
}

fn wrk_median(
    runs: usize,
    seconds: u64,
    url: &str,
    script: Option<&Path>,
    success: bool,
) -> WrkFigures {
    let mut samples: Vec<WrkFigures> = (0..runs)
        .map(|_| wrk(seconds, url, script, success))
        .collect();
    samples.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    samples.swap_remove(samples.len() / 2)
}

/// One wrk run; with `success`, every answer must be a 2xx.
fn wrk(seconds: u64, url: &str, script: Option<&Path>, success: bool) -> WrkFigures {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t2",
        &format!("-c{CONNECTIONS}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(script) = script {
        cmd.arg("-s").arg(script);
    }
    let out = cmd.arg(url).output().expect("wrk");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wrk: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !success || !text.contains("Non-2xx"),
        "wrk saw errors: {text}"
    );
    let field = |prefix: &str| -> &str {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in wrk's output: {text}"))
            .trim()
    };
    WrkFigures {
        rps: field("Requests/sec:").parse().unwrap(),
        p50: millis(field("50%")),
        p99: millis(field("99%")),
    }
}

/// wrk's `1.23ms`, `456.78us`, `1.02s` in milliseconds.
fn millis(text: &str) -> f64 {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic()).unwrap());
    let n: f64 = number.parse().unwrap();
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        other => panic!("unit {other}"),
    }
}

fn print_wrk(label: &str, f: &WrkFigures, floor: &WrkFigures) {
    println!(
        "| {label} | {:.0} | {:.2} ms | {:.2} ms | {:.2} |",
        f.rps,
        f.p50,
        f.p99,
        f.rps / floor.rps
    );
}

/// An flist of about 50 MB (300,000 empty files with long names, so no chunks), published
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

fn client() -> Client {
    // reqwest's TLS is built without a crypto provider (the project uses ring's).
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()
        .unwrap()
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
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
