//! The files of `deployment/` used as an operator would, on this machine only (no
//! registry, no second release build):
//! * the Dockerfile's `runtime` stage built around the binary these tests already have, on
//!   a Debian 12 base made here (debootstrap, then `docker import` under the name the
//!   Dockerfile expects); Redis from Debian's package, and 0-db from the peer binary, in
//!   images built on that base; each of `compose.yaml`'s profiles started by Debian's
//!   `docker-compose`; the hub inside answers health, refuses an upload without a token,
//!   takes one with a token minted inside its container, stores the chunks in that store and
//!   serves the flist; Docker reports the image's health check healthy;
//! * `systemd-analyze verify` accepts the unit.
//!
//! The base's root file system is made once and kept under target/tmp/deployment (a minute);
//! a run then takes under a minute. Everything the test starts or tags carries a unique
//! suffix and is removed however the test ends.

mod common;
#[path = "deployment/docker.rs"]
mod docker;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{flisthub, noise, tar_of};
use docker::{
    Compose, Made, base_rootfs, build, buildkit_client, check, context, docker_available,
    docker_cmd, image_exists, text, wait_for,
};

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
    let verify = |unit: &str| {
        let path = dir.path().join("flisthub.service");
        std::fs::write(&path, unit).unwrap();
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&path)
            .output()
            .unwrap();
        // Unknown or misspelt settings are only warnings: they count as failures here.
        (out.status.success() && out.stderr.is_empty())
            .then_some(())
            .ok_or(text(&out))
    };
    if let Err(e) = verify(&unit) {
        panic!("systemd-analyze verify: {e}");
    }
    // The check catches a misspelt sandboxing setting, which systemd would ignore.
    let misspelt = unit.replace("ProtectSystem=strict", "ProtectSytem=strict");
    let refused = verify(&misspelt).expect_err("a misspelt setting passed");
    assert!(refused.contains("ProtectSytem"), "{refused}");
}

#[test]
fn compose_runs_the_hub_with_redis_and_with_0db() {
    if !docker_available() {
        eprintln!("SKIP: no Docker daemon answers `docker info`");
        return;
    }
    let started = Instant::now();
    let docker = buildkit_client();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!("flisthub-deploy-test-{}-{nanos}", std::process::id());
    let image = |what: &str| format!("{name}:{what}");
    let mut made = Made::default();

    if !image_exists(BASE_IMAGE) {
        let tarball = base_rootfs();
        check(
            docker_cmd("docker")
                .arg("import")
                .arg(&tarball)
                .arg(BASE_IMAGE),
        );
        made.images.push(BASE_IMAGE.to_owned());
    }
    eprintln!("deployment: base image ready after {:?}", started.elapsed());

    // The images are built at once: they mostly wait for Debian's mirror.
    let hub_context = tempfile::tempdir().unwrap();
    let binary = hub_context.path().join("flisthub");
    std::fs::copy(env!("CARGO_BIN_EXE_flisthub"), binary).unwrap();
    let dockerfile = format!("{REPO}/deployment/Dockerfile");
    let target = [
        "-f",
        &dockerfile,
        "--target",
        "runtime",
        "--build-arg",
        "BIN=flisthub",
    ];
    let mut builds = vec![build(
        &docker,
        &mut made,
        image("hub"),
        &hub_context,
        &target,
    )];
    let redis_context = context(&format!(
        "FROM {BASE_IMAGE}\n\
         RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
         --no-install-recommends redis-server && rm -rf /var/lib/apt/lists/*\n\
         RUN install -d -o redis -g redis /data\n\
         WORKDIR /data\nUSER redis\n"
    ));
    builds.push(build(
        &docker,
        &mut made,
        image("redis"),
        &redis_context,
        &[],
    ));
    // 0-db from the peer binary, started as 0-db's own image does (from DATADIR, INDEXDIR).
    let zdb = testkit::peers::peer("zdb-2.0.7");
    let zdb_context = context(&format!(
        "FROM {BASE_IMAGE}\nCOPY zdb /usr/local/bin/zdb\n\
         CMD [\"sh\", \"-c\", \"exec zdb --data $DATADIR --index $INDEXDIR\"]\n"
    ));
    if let Some(zdb) = &zdb {
        std::fs::copy(zdb, zdb_context.path().join("zdb")).unwrap();
        builds.push(build(&docker, &mut made, image("zdb"), &zdb_context, &[]));
    }
    for child in builds {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "docker build failed: {}", text(&out));
    }
    eprintln!("deployment: images built after {:?}", started.elapsed());

    let redis = made.up(&name, "redis", &image);
    let container = exercise(&redis, "hub-redis");
    // The chunks are in the project's Redis.
    let keys = check(&mut redis.command(&["exec", "-T", "redis", "redis-cli", "dbsize"]));
    let keys: u64 = String::from_utf8_lossy(&keys.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(keys > 0, "no chunk reached Redis");
    // Docker's own view of the image's HEALTHCHECK.
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
    eprintln!(
        "deployment: Redis variant done after {:?}",
        started.elapsed()
    );

    if zdb.is_none() {
        return;
    }
    let zdb = made.up(&name, "zdb", &image);
    exercise(&zdb, "hub-zdb");
    // The chunks are in 0-db's `default` namespace.
    let info = check(
        docker_cmd("docker")
            .args([
                "run",
                "--rm",
                "--network",
                &format!("{}_default", zdb.project),
            ])
            .args([&image("redis"), "redis-cli", "-h", "zdb", "-p", "9900"])
            .args(["NSINFO", "default"]),
    );
    let info = String::from_utf8_lossy(&info.stdout).into_owned();
    let entries = info.lines().find_map(|l| l.strip_prefix("entries: "));
    assert!(
        entries.is_some_and(|n| n.trim().parse::<u64>().unwrap_or(0) > 0),
        "no chunk reached 0-db: {info}"
    );
    eprintln!(
        "deployment: 0-db variant done after {:?}",
        started.elapsed()
    );
}

/// What every variant must do: answer health, run as its own user, refuse an upload
/// without a token, take one with a token minted inside its container, and serve the flist
/// to `flisthub extract` through its URL (the flist names the hub's chunk API, as
/// compose.yaml's routes say). Returns the hub's container.
fn exercise(compose: &Compose, service: &str) -> String {
    let hub = format!("http://127.0.0.1:{}", compose.port);
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
    let id = check(&mut compose.command(&["exec", "-T", service, "id", "-u"]));
    assert_eq!(String::from_utf8_lossy(&id.stdout).trim(), "10001");

    let tree = tempfile::tempdir().unwrap();
    let content = noise(3 << 20, 17);
    std::fs::create_dir(tree.path().join("bin")).unwrap();
    std::fs::write(tree.path().join("bin/app"), &content).unwrap();
    std::fs::write(tree.path().join("README"), b"deployed\n").unwrap();
    let archive = tar_of(tree.path(), &["-z"]);
    let upload = |token: Option<&str>| {
        let form = reqwest::blocking::multipart::Form::new().part(
            "file",
            reqwest::blocking::multipart::Part::bytes(archive.clone()).file_name("app.tar.gz"),
        );
        let mut request = client.post(format!("{hub}/api/flist/me/upload"));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let answer = request.multipart(form).send().unwrap();
        (answer.status(), answer.text().unwrap())
    };
    let (status, body) = upload(None);
    assert_eq!(status, 401, "upload without a token: {body}");
    let flist = format!("{hub}/deploy/app.flist");
    assert_eq!(client.get(&flist).send().unwrap().status(), 404);

    let token = check(&mut compose.command(&[
        "exec", "-T", service, "flisthub", "token", "create", "--user", "deploy",
    ]));
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    let (status, body) = upload(Some(&token));
    assert_eq!(status, 200, "upload: {body}");

    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("out");
    let extracted = flisthub(home.path(), args!["extract", flist, &out]);
    assert!(extracted.status.success(), "extract: {}", text(&extracted));
    assert!(std::fs::read(out.join("bin/app")).unwrap() == content);

    let container = check(&mut compose.command(&["ps", "-q", service]));
    String::from_utf8(container.stdout)
        .unwrap()
        .trim()
        .to_owned()
}
