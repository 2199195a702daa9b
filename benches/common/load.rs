//! The populated hub of the load benches (1,000 repositories of 20 entries: one uploaded
//! flist, eleven promoted copies, eight symlinks, kept between runs) and wrk, whose figures
//! they print.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, multipart};

use super::Hub;

pub const REPOSITORIES: usize = 1000;
pub const UPLOADED: usize = 1;
pub const PROMOTED: usize = 11;
pub const LINKED: usize = 8;
pub const POPULATED_VERSION: &str = "hub bench v1";
/// wrk connections: enough to keep the hub's runtime busy on a 2-core machine.
pub const CONNECTIONS: usize = 32;

pub fn repository(i: usize) -> String {
    format!("user{i:04}.3bot")
}

/// The hub with 1,000 repositories of 20 entries, made once and kept.
pub fn populated_hub(data: &Path) -> Hub {
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

pub fn populate(c: &Client, url: &str, i: usize, token: &str) {
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
pub fn small_tarball(i: usize) -> Vec<u8> {
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
pub fn name_scripts(work: &Path) -> (PathBuf, PathBuf) {
    let names = names();
    let light: Vec<String> = names
        .iter()
        .map(|(repo, name)| format!("/api/flist/{repo}/{name}/light"))
        .collect();
    let md5: Vec<String> = names
        .iter()
        .map(|(repo, name)| format!("/{repo}/{name}.md5"))
        .collect();
    (
        paths_script(work, "light.lua", &light),
        paths_script(work, "md5.lua", &md5),
    )
}

pub struct WrkFigures {
    pub rps: f64,
    pub p50: f64,
    pub p99: f64,
}

pub fn wrk_median(
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
pub fn wrk(seconds: u64, url: &str, script: Option<&Path>, success: bool) -> WrkFigures {
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
pub fn millis(text: &str) -> f64 {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic()).unwrap());
    let n: f64 = number.parse().unwrap();
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        other => panic!("unit {other}"),
    }
}

pub fn print_wrk(label: &str, f: &WrkFigures, floor: &WrkFigures) {
    println!(
        "| {label} | {:.0} | {:.2} ms | {:.2} ms | {:.2} |",
        f.rps,
        f.p50,
        f.p99,
        f.rps / floor.rps
    );
}

/// An HTTP client for the benches, with ring as the TLS provider.
pub fn client() -> Client {
    // reqwest's TLS is built without a crypto provider (the project uses ring's).
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()
        .unwrap()
}

pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A wrk script that asks for `paths` in a scattered order, written as `work/file`.
pub fn paths_script(work: &Path, file: &str, paths: &[String]) -> PathBuf {
    let mut lua = String::from("local paths = {\n");
    for path in paths {
        lua.push_str(&format!("  \"{path}\",\n"));
    }
    lua.push_str("}\nlocal i = math.random(#paths)\nrequest = function()\n  i = (i + 7919) % #paths\n  return wrk.format(\"GET\", paths[i + 1])\nend\n");
    let out = work.join(file);
    std::fs::write(&out, lua).unwrap();
    out
}

/// Every name of the populated hub, as (repository, name).
pub fn names() -> Vec<(String, String)> {
    let mut names = Vec::new();
    for i in 0..REPOSITORIES {
        let me = repository(i);
        names.push((me.clone(), "app.flist".to_owned()));
        names.extend((0..PROMOTED).map(|p| (me.clone(), format!("copy{p:02}.flist"))));
        names.extend((0..LINKED).map(|l| (me.clone(), format!("link{l:02}.flist"))));
    }
    names
}
