//! Docker, Compose and the base image for `tests/deployment.rs`: each command bounded in
//! time, and everything made removed when the test ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::REPO;

/// What the test made, removed when it ends, passed or not.
#[derive(Default)]
pub struct Made {
    projects: Vec<Compose>,
    pub images: Vec<String>,
}

impl Made {
    /// `docker-compose --profile <profile> up` in a project of its own, with the test's
    /// images and a free loopback port.
    pub fn up(
        &mut self,
        name: &str,
        profile: &'static str,
        image: &dyn Fn(&str) -> String,
    ) -> Compose {
        let port = testkit::free_port(false);
        let compose = Compose {
            project: format!("{name}-{profile}"),
            profile,
            port,
            env: vec![
                ("FLISTHUB_IMAGE", image("hub")),
                ("REDIS_IMAGE", image("redis")),
                ("ZDB_IMAGE", image("zdb")),
                ("FLISTHUB_BIND", "127.0.0.1".into()),
                ("FLISTHUB_PORT", port.to_string()),
                ("FLISTHUB_PUBLIC_URL", format!("http://127.0.0.1:{port}")),
            ],
        };
        self.projects.push(compose.clone());
        check(&mut compose.command(&["up", "-d", "--no-build"]));
        compose
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        for compose in &self.projects {
            if std::thread::panicking()
                && let Ok(logs) = compose.command(&["logs", "--no-color"]).output()
            {
                eprintln!("{} logs:\n{}", compose.project, text(&logs));
            }
            let _ = compose
                .command(&["down", "-v", "-t", "5", "--remove-orphans"])
                .output();
        }
        for image in self.images.iter().rev() {
            let _ = docker_cmd("docker").args(["rmi", "-f", image]).output();
        }
    }
}

#[derive(Clone)]
pub struct Compose {
    pub project: String,
    profile: &'static str,
    pub port: u16,
    env: Vec<(&'static str, String)>,
}

impl Compose {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.args([
            "300",
            "docker-compose",
            "--ansi",
            "never",
            "-p",
            &self.project,
        ])
        .arg("-f")
        .arg(format!("{REPO}/deployment/compose.yaml"))
        .args(["--profile", self.profile])
        .args(args);
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd
    }
}

/// Starts `docker build` of `context` as `tag` (with BuildKit), noting the image for removal.
pub fn build(
    docker: &str,
    made: &mut Made,
    tag: String,
    context: &tempfile::TempDir,
    args: &[&str],
) -> std::process::Child {
    let child = docker_cmd(docker)
        .env("DOCKER_BUILDKIT", "1")
        .arg("build")
        .args(args)
        .args(["-t", &tag])
        .arg(context.path())
        .spawn()
        .unwrap();
    made.images.push(tag);
    child
}

/// A build context holding `dockerfile`.
pub fn context(dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    dir
}

/// `docker` (or another client) with a deadline, so a stuck daemon fails the test instead
/// of hanging it.
pub fn docker_cmd(program: &str) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.args(["600", program]);
    cmd.stdout(std::process::Stdio::piped());
    cmd.stderr(std::process::Stdio::piped());
    cmd
}

pub fn docker_available() -> bool {
    Command::new("timeout")
        .args(["30", "docker", "info"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A client that builds with BuildKit, which the Dockerfile needs to skip the `builder`
/// stage: one with the buildx plugin, or a client older than 23 (BuildKit built in, as
/// Debian 12's docker.io); newer ones without buildx only have the classic builder.
pub fn buildkit_client() -> String {
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

pub fn image_exists(name: &str) -> bool {
    docker_cmd("docker")
        .args(["image", "inspect", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The tarball of a minimal Debian 12 root file system, made by debootstrap the first time
/// and kept in the target directory for the next runs.
pub fn base_rootfs() -> PathBuf {
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
pub fn check(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", text(&out));
    out
}

pub fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn wait_for(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}
