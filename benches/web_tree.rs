//! The file browser and the diff on large flists, against the real `flisthub serve`: how
//! long one request takes, one at a time over loopback (the figure a person waits for),
//! as the median, the 99th percentile and the slowest of every directory of the flist:
//!
//! * an flist of 100,000 files in 100 directories of 1,000, and its root (each directory
//!   one page of the browser);
//! * an flist of one directory of 100,000 files (the first page: 1,000 rows);
//! * the filter over the 100,000 paths of the first flist (a walk of the whole tree);
//! * the diff of the first flist against itself with one directory renamed (100,000
//!   entries each side, 2,000 rows counted, 1,000 listed).
//!
//! Nothing is cached between requests (the browser's pages are not kept). The files are
//! empty (an flist's index is what is read; no content is), so `upload-flist` needs no
//! chunks.
//!
//! ```sh
//! cargo bench --bench web_tree
//! ```

mod common;

use std::time::{Duration, Instant};

use common::Hub;
use common::load::client;

const DIRECTORIES: usize = 100;
const PER_DIRECTORY: usize = 1_000;

/// A native flist of `dirs` directories of `per` empty files (the directory names given
/// by `dir_name`); its bytes.
fn flist(dirs: usize, per: usize, dir_name: impl Fn(usize) -> String) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.flist");
    let mut writer = flist::FlistWriter::create(&path).unwrap();
    let node = |kind, mode| flist::Node {
        kind,
        mode,
        uid: 0,
        gid: 0,
        mtime: flist::Timestamp::default(),
    };
    for d in 0..dirs {
        let name = dir_name(d);
        writer
            .add(
                name.as_bytes(),
                &node(flist::NodeKind::Directory, 0o755),
                &[],
            )
            .unwrap();
        for f in 0..per {
            let file = format!("{name}/file-{f:06}.txt");
            writer
                .add(
                    file.as_bytes(),
                    &node(flist::NodeKind::Regular { size: 0 }, 0o644),
                    &[],
                )
                .unwrap();
        }
    }
    writer.finish().unwrap();
    std::fs::read(&path).unwrap()
}

fn upload(hub: &Hub, token: &str, name: &str, bytes: Vec<u8>) {
    let form = reqwest::blocking::multipart::Form::new().part(
        "file",
        reqwest::blocking::multipart::Part::bytes(bytes).file_name(name.to_owned()),
    );
    let answer = client()
        .post(format!("{}/api/flist/me/upload-flist", hub.url))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.text().unwrap());
}

/// Times GET of each path, `runs` times over; median, p99, slowest.
fn time(hub: &Hub, paths: &[String], runs: usize) -> (Duration, Duration, Duration) {
    let client = client();
    let mut samples = Vec::new();
    for _ in 0..runs {
        for path in paths {
            let start = Instant::now();
            let answer = client
                .get(format!("{}{path}", hub.url))
                .header("Accept", "text/html")
                .send()
                .unwrap();
            assert!(answer.status().is_success(), "{path}: {}", answer.status());
            answer.bytes().unwrap();
            samples.push(start.elapsed());
        }
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), at(1.0))
}

fn row(label: &str, (p50, p99, max): (Duration, Duration, Duration)) {
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    println!("| {label} | {} | {} | {} |", ms(p50), ms(p99), ms(max));
}

fn main() {
    let work = common::work_dir();
    let data = work.join("hub-tree");
    let _ = std::fs::remove_dir_all(&data);
    let hub = Hub::start(&data);
    let token = hub.tokens(&["bench".to_owned()]).remove(0);
    let runs = common::runs();
    let start = Instant::now();
    upload(
        &hub,
        &token,
        "wide.flist",
        flist(DIRECTORIES, PER_DIRECTORY, |d| format!("dir-{d:03}")),
    );
    upload(
        &hub,
        &token,
        "flat.flist",
        flist(1, DIRECTORIES * PER_DIRECTORY, |_| "all".into()),
    );
    // The same tree with one directory renamed: 1,000 paths removed, 1,000 added.
    upload(
        &hub,
        &token,
        "moved.flist",
        flist(DIRECTORIES, PER_DIRECTORY, |d| {
            if d == 0 {
                "renamed".into()
            } else {
                format!("dir-{d:03}")
            }
        }),
    );
    println!(
        "3 flists of 100,000 files published in {:.1} s\n",
        start.elapsed().as_secs_f64()
    );
    println!("{runs} runs; one request at a time over loopback\n");
    println!("| request | p50 | p99 | slowest |");
    println!("|---|---|---|---|");
    let mut directories: Vec<String> = (0..DIRECTORIES)
        .map(|d| format!("/bench/wide.flist/tree/dir-{d:03}"))
        .collect();
    directories.push("/bench/wide.flist/tree/".into());
    row(
        "a directory of the 100,000-file flist (each of its 101)",
        time(&hub, &directories, runs),
    );
    row(
        "the first page of a directory of 100,000 files",
        time(&hub, &["/bench/flat.flist/tree/all".to_owned()], runs * 10),
    );
    row(
        "the filter over 100,000 paths (`file-0000`: 1,000 match)",
        time(
            &hub,
            &["/bench/wide.flist/tree/?filter=file-0000".to_owned()],
            runs * 3,
        ),
    );
    // The diff's page is cached until the namespace changes: only its first request counts.
    let mut diffs = Vec::new();
    for _ in 0..runs {
        let (first, ..) = time(
            &hub,
            &["/diff?a=bench/wide.flist&b=bench/moved.flist".to_owned()],
            1,
        );
        diffs.push(first);
        // Any change of the namespace empties the page cache.
        upload(&hub, &token, "touch.flist", flist(0, 0, |_| String::new()));
    }
    diffs.sort();
    let median = diffs[diffs.len() / 2];
    row(
        "the diff of two 100,000-file flists (2,000 differences)",
        (median, diffs[diffs.len() - 1], diffs[diffs.len() - 1]),
    );
}
