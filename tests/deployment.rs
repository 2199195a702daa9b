//! The files of `deployment/` used as an operator would, on this machine only (no
//! registry, no second release build):
//! * the Dockerfile's `runtime` stage built around the binary these tests already have, on
//!   a Debian 12 base made here (debootstrap, then `docker import` under the name the
//!   Dockerfile expects); Redis from Debian's package in an image built on that base; both
//!   started by Debian's `docker-compose` from `compose.yaml`'s Redis profile; the hub inside
//!   answers health, takes an upload with a token minted inside its container, stores the
//!   chunks in that Redis, serves the flist, and Docker reports the image's health check
//!   healthy;
//! * `systemd-analyze verify` accepts the unit.
//!
//! The base's root file system is made once and kept under target/tmp/deployment (a minute);
//! a run then takes about half a minute. Everything the test starts or tags carries a unique
//! suffix and is removed however the test ends.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{flisthub, noise, tar_of};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// What the Dockerfile's `BASE_IMAGE` names by default.
const BASE_IMAGE: &str = "debian:bookworm-slim";

#[test]
fn systemd_unit_verifies() {
    if !testkit::need("systemd-analyze") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The unit names the installed binary; here it is the one these tests run.
    let unit = std::fs::read_to_string(format!("{REPO}/deployment/flisthub.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/flisthub serve"));
    let unit = unit.replace("/usr/local/bin/flisthub", env!("CARGO_BIN_EXE_flisthub"));
    let path = dir.path().join("flisthub.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    // Unknown or misspelt settings are only warnings: they count as failures here.
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn compose_redis_variant_serves_an_upload() {
    if !docker_available() {
        eprintln!("SKIP: no Docker daemon answers `docker info`");
        return;
    }
    let started = Instant::now();
    let docker = buildkit_client();
    let suffix = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let hub_image = format!("flisthub-deploy-test-{suffix}:hub");
    let redis_image = format!("flisthub-deploy-test-{suffix}:redis");
    let port = testkit::free_port(false);
    let mut made = Made {
        compose: Compose {
            project: format!("flisthub-deploy-test-{suffix}"),
            env: vec![
                ("FLISTHUB_IMAGE", hub_image.clone()),
                ("REDIS_IMAGE", redis_image.clone()),
                ("FLISTHUB_BIND", "127.0.0.1".into()),
                ("FLISTHUB_PORT", port.to_string()),
                ("FLISTHUB_PUBLIC_URL", format!("http://127.0.0.1:{port}")),
            ],
        },
        images: Vec::new(),
        started: false,
    };

    if !image_exists(BASE_IMAGE) {
        let tarball = base_rootfs();
        check(
            docker_cmd("docker")
                .args(["import"])
                .arg(&tarball)
                .arg(BASE_IMAGE),
        );
        made.images.push(BASE_IMAGE.to_owned());
    }
    eprintln!("deployment: base image ready after {:?}", started.elapsed());

    // The two images are built at once: both mostly wait for Debian's mirror.
    let hub_context = tempfile::tempdir().unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_flisthub"),
        hub_context.path().join("flisthub"),
    )
    .unwrap();
    made.images.push(hub_image.clone());
    let hub_build = docker_cmd(&docker)
        .env("DOCKER_BUILDKIT", "1")
        .args([
            "build",
            "--target",
            "runtime",
            "--build-arg",
            "BIN=flisthub",
            "-f",
        ])
        .arg(format!("{REPO}/deployment/Dockerfile"))
        .args(["-t", &hub_image])
        .arg(hub_context.path())
        .spawn()
        .unwrap();
    let redis_context = tempfile::tempdir().unwrap();
    std::fs::write(
        redis_context.path().join("Dockerfile"),
        format!(
            "FROM {BASE_IMAGE}\n\
             RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
             --no-install-recommends redis-server && rm -rf /var/lib/apt/lists/*\n\
             RUN install -d -o redis -g redis /data\n\
             WORKDIR /data\nUSER redis\n"
        ),
    )
    .unwrap();
    made.images.push(redis_image.clone());
    let redis_build = docker_cmd(&docker)
        .env("DOCKER_BUILDKIT", "1")
        .args(["build", "-t", &redis_image])
        .arg(redis_context.path())
        .spawn()
        .unwrap();
    for (what, build) in [("hub", hub_build), ("redis", redis_build)] {
        let out = build.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "building the {what} image failed: {}",
            text(&out)
        );
    }
    eprintln!("deployment: images built after {:?}", started.elapsed());

    made.started = true;
    check(
        &mut made
            .compose
            .command(&["--profile", "redis", "up", "-d", "--no-build"]),
    );
    let hub = format!("http://127.0.0.1:{port}");
    let client = common::hub::client();
    wait_for(
        Duration::from_secs(60),
        "the hub's health route to answer 200",
        || {
            client
                .get(format!("{hub}/api/v1/health"))
                .send()
                .is_ok_and(|r| r.status() == 200)
        },
    );
    eprintln!("deployment: hub healthy after {:?}", started.elapsed());

    // The hub runs as its own user, and a token is minted inside its container as the
    // README says.
    let id = check(
        &mut made
            .compose
            .command(&["exec", "-T", "hub-redis", "id", "-u"]),
    );
    assert_eq!(String::from_utf8_lossy(&id.stdout).trim(), "10001");
    let token = check(&mut made.compose.command(&[
        "exec",
        "-T",
        "hub-redis",
        "flisthub",
        "token",
        "create",
        "--user",
        "deploy",
    ]));
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();

    let tree = tempfile::tempdir().unwrap();
    let content = noise(3 << 20, 17);
    std::fs::create_dir(tree.path().join("bin")).unwrap();
    std::fs::write(tree.path().join("bin/app"), &content).unwrap();
    std::fs::write(tree.path().join("README"), b"deployed\n").unwrap();
    let archive = tar_of(tree.path(), &["-z"]);
    let form = reqwest::blocking::multipart::Form::new().part(
        "file",
        reqwest::blocking::multipart::Part::bytes(archive).file_name("app.tar.gz"),
    );
    let answer = client
        .post(format!("{hub}/api/flist/me/upload"))
        .header("Authorization", format!("Bearer {token}"))
        .multipart(form)
        .send()
        .unwrap();
    let status = answer.status();
    let body = answer.text().unwrap();
    assert_eq!(status, 200, "upload: {body}");

    // The chunks are in the compose project's Redis, under the namespace compose.yaml gives.
    let keys = check(
        &mut made
            .compose
            .command(&["exec", "-T", "redis", "redis-cli", "dbsize"]),
    );
    let keys: u64 = String::from_utf8_lossy(&keys.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(keys > 0, "no chunk reached Redis");

    // Anyone can read it back: the flist names the hub's chunk API (compose.yaml's routes).
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("out");
    let extracted = flisthub(
        home.path(),
        args!["extract", format!("{hub}/deploy/app.flist"), &out],
    );
    assert!(extracted.status.success(), "extract: {}", text(&extracted));
    assert!(std::fs::read(out.join("bin/app")).unwrap() == content);

    // Docker's own view of the image's HEALTHCHECK.
    let container = check(&mut made.compose.command(&["ps", "-q", "hub-redis"]));
    let container = String::from_utf8(container.stdout)
        .unwrap()
        .trim()
        .to_owned();
    wait_for(
        Duration::from_secs(90),
        "Docker to report the hub healthy",
        || {
            let out = docker_cmd("docker")
                .args(["inspect", "-f", "{{.State.Health.Status}}", &container])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim() == "healthy"
        },
    );
    eprintln!("deployment: done after {:?}", started.elapsed());
}

/// What the test made, removed when it ends, passed or not.
struct Made {
    compose: Compose,
    images: Vec<String>,
    started: bool,
}

impl Drop for Made {
    fn drop(&mut self) {
        if self.started {
            if std::thread::panicking() {
                let logs = self.compose.command(&["logs", "--no-color"]).output();
                if let Ok(logs) = logs {
                    eprintln!("compose logs:\n{}", text(&logs));
                }
            }
            let _ = self
                .compose
                .command(&[
                    "--profile",
                    "redis",
                    "down",
                    "-v",
                    "-t",
                    "5",
                    "--remove-orphans",
                ])
                .output();
        }
        for image in self.images.iter().rev() {
            let _ = docker_cmd("docker").args(["rmi", "-f", image]).output();
        }
    }
}

struct Compose {
    project: String,
    env: Vec<(&'static str, String)>,
}

impl Compose {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.args([
            "300",
            "docker-compose",
            "--ansi",
            "never",
            "-p",
            &self.project,
            "-f",
        ])
        .arg(format!("{REPO}/deployment/compose.yaml"))
        .args(args);
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd
    }
}

/// `docker` (or another client) with a deadline, so a stuck daemon fails the test instead
/// of hanging it.
fn docker_cmd(program: &str) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.args(["600", program]);
    cmd.stdout(std::process::Stdio::piped());
    cmd.stderr(std::process::Stdio::piped());
    cmd
}

fn docker_available() -> bool {
    Command::new("timeout")
        .args(["30", "docker", "info"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A client that builds with BuildKit, which the Dockerfile needs to skip the `builder`
/// stage: one with the buildx plugin, or a client older than 23 (BuildKit built in, as
/// Debian 12's docker.io); newer ones without buildx only have the classic builder.
fn buildkit_client() -> String {
    for client in ["docker", "/usr/bin/docker"] {
        let buildx = Command::new(client).args(["buildx", "version"]).output();
        if buildx.is_ok_and(|o| o.status.success()) {
            return client.to_owned();
        }
        let version = Command::new(client)
            .args(["version", "--format", "{{.Client.Version}}"])
            .output();
        let major = version.ok().and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.split('.').next()?.trim().parse::<u32>().ok()
        });
        if major.is_some_and(|m| m < 23) {
            return client.to_owned();
        }
    }
    panic!(
        "no Docker client here builds with BuildKit: install the buildx plugin \
         (or Debian's docker.io, whose client has it built in)"
    );
}

fn image_exists(name: &str) -> bool {
    docker_cmd("docker")
        .args(["image", "inspect", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The tarball of a minimal Debian 12 root file system, made by debootstrap the first time
/// and kept in the target directory for the next runs.
fn base_rootfs() -> PathBuf {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deployment");
    let tarball = cache.join("bookworm-minbase.tar");
    if tarball.exists() {
        return tarball;
    }
    assert!(
        testkit::need("debootstrap"),
        "debootstrap makes the base image (scripts/install-deps installs it)"
    );
    let rootfs = cache.join("rootfs.partial");
    let _ = std::fs::remove_dir_all(&rootfs);
    std::fs::create_dir_all(&cache).unwrap();
    eprintln!(
        "deployment: debootstrap of Debian 12 (once; kept in {})",
        cache.display()
    );
    check(
        Command::new("timeout")
            .args(["900", "debootstrap", "--variant=minbase", "bookworm"])
            .arg(&rootfs)
            .arg("http://deb.debian.org/debian"),
    );
    // What debian:bookworm-slim leaves out too; the images run apt-get update themselves.
    for dir in [
        "var/cache/apt/archives",
        "var/lib/apt/lists",
        "usr/share/doc",
        "usr/share/man",
        "usr/share/locale",
        "usr/share/info",
    ] {
        let _ = std::fs::remove_dir_all(rootfs.join(dir));
    }
    std::fs::create_dir_all(rootfs.join("var/lib/apt/lists/partial")).unwrap();
    std::fs::create_dir_all(rootfs.join("var/cache/apt/archives/partial")).unwrap();
    let partial = cache.join("bookworm-minbase.tar.partial");
    check(
        Command::new("tar")
            .args(["--numeric-owner", "-C"])
            .arg(&rootfs)
            .arg("-cf")
            .arg(&partial)
            .arg("."),
    );
    std::fs::rename(&partial, &tarball).unwrap();
    let _ = std::fs::remove_dir_all(&rootfs);
    tarball
}

/// Runs `cmd`, asserting success; its output.
fn check(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", text(&out));
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn wait_for(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}
