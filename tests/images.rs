//! Container images into flists, against the real reference registry (Debian's
//! `docker-registry`) on loopback and the real Docker daemon. The images are made here:
//! layers written as tar archives byte for byte (whiteouts, opaque directories, a file
//! replaced by a symlink, hardlinks across layers), assembled by umoci, pushed by skopeo.
//! What `flisthub convert` makes must equal what `umoci unpack` makes of the same image.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;
use testkit::{OciLayout, RegistryServer};

/// A layer archive: entries added in order, with the modes and times given.
struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    fn new() -> Layer {
        Layer(tar::Builder::new(Vec::new()))
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn dir(mut self, path: &str, mode: u32) -> Layer {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0);
        self.0.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    fn file(mut self, path: &str, content: &[u8]) -> Layer {
        let mut h = Self::header(tar::EntryType::Regular, 0o644, content.len() as u64);
        self.0.append_data(&mut h, path, content).unwrap();
        self
    }

    fn link(mut self, kind: tar::EntryType, path: &str, target: &str) -> Layer {
        let mut h = Self::header(kind, 0o777, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }

    fn symlink(self, path: &str, target: &str) -> Layer {
        self.link(tar::EntryType::Symlink, path, target)
    }

    fn hardlink(self, path: &str, target: &str) -> Layer {
        self.link(tar::EntryType::Link, path, target)
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// Three layers that exercise every rule of the OCI spec's "applying changesets".
fn layered_image(dir: &Path) -> OciLayout {
    let image = OciLayout::new(&dir.join("oci"), "v1");
    image.add_layer(
        &Layer::new()
            .dir("etc", 0o755)
            .file("etc/conf", b"setting=1\n")
            .dir("bin", 0o755)
            .file("bin/tool", &noise(1 << 20, 1))
            .file("bin/perl", b"perl\n")
            // Outlives its target, deleted above.
            .hardlink("bin/perl5", "bin/perl")
            .file("old", b"deleted above\n")
            .file("to-link", b"replaced by a symlink above\n")
            .dir("opq", 0o755)
            .file("opq/a", b"a\n")
            .dir("opq/sub", 0o700)
            .file("opq/sub/c", b"c\n")
            .dir("data", 0o755)
            .dir("data/sub", 0o755)
            .file("data/sub/x", b"x\n")
            .dir("lib", 0o755)
            .file("lib/a", b"shared by hardlinks\n")
            .bytes(),
    );
    image.add_layer(
        &Layer::new()
            .file(".wh.old", b"")
            .file("bin/.wh.perl", b"")
            .symlink("to-link", "etc/conf")
            .dir("opq", 0o750)
            .file("opq/.wh..wh..opq", b"")
            .file("opq/new", b"new\n")
            .file("data/.wh.sub", b"")
            .hardlink("lib/b", "lib/a")
            .file("bin/tool", &noise(1 << 20, 2))
            .bytes(),
    );
    image.add_layer(
        &Layer::new()
            .dir("data/sub", 0o711)
            .file("data/sub/y", b"y\n")
            .hardlink("lib/c", "lib/b")
            // Its target comes after the opaque marker of the layer below.
            .hardlink("lib/n", "opq/new")
            // A directory only implied here: the entry below creates it.
            .file("srv/www/index.html", b"<html></html>\n")
            .bytes(),
    );
    image.configure(&[
        "--config.entrypoint",
        "/bin/tool",
        "--config.cmd",
        "--serve",
        "--config.env",
        "PATH=/bin",
        "--config.env",
        "MODE=test",
        "--config.workingdir",
        "/srv",
        "--config.user",
        "1000:1000",
        "--config.exposedports",
        "8080/tcp",
        "--config.label",
        "org.example=yes",
    ]);
    image
}

fn convert(work: &Path, args: &[&std::ffi::OsStr]) -> Value {
    let mut all: Vec<&std::ffi::OsStr> = vec!["convert".as_ref()];
    all.extend_from_slice(args);
    all.push("--json".as_ref());
    json(&ok(flisthub(work, &all)))
}

fn extract(work: &Path, flist: &Path, store: &str, to: &Path) {
    ok(flisthub(
        work,
        args!["extract", flist, to, "--store", store],
    ));
}

/// The image's tree as umoci unpacks it beside the flist's as flisthub extracts it.
fn assert_same_as_umoci(image: &OciLayout, work: &Path, flist: &Path, store: &str) {
    let expected = image.unpack(&work.join("bundle"));
    // Directories no layer has an entry for get the time of the unpacking from umoci, and
    // the epoch from flisthub (the flist holds no wall-clock time).
    for implied in ["srv", "srv/www"]
        .map(|d| expected.join(d))
        .iter()
        .filter(|d| d.exists())
    {
        run(Command::new("touch").args(["-h", "-d", "@0"]).arg(implied));
    }
    let actual = work.join("extracted");
    extract(work, flist, store, &actual);
    assert_same_tree(&expected, &actual, &|p| p == Path::new(".startup.toml"));
    let _ = std::fs::remove_dir_all(work.join("bundle"));
    let _ = std::fs::remove_dir_all(actual);
}

#[test]
fn a_layered_image_equals_its_unpacked_filesystem() {
    let Some(registry) = RegistryServer::start() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let image = layered_image(w);
    registry.push(&image.source(), "test/app:v1", &[]);
    let store = format!("dir://{}", w.join("store").display());
    let flist = w.join("app.flist");
    let reference = format!("{}/test/app:v1", registry.host());
    let report = convert(w, args![reference, "-o", flist, "--store", store]);
    assert_same_as_umoci(&image, w, &flist, &store);

    // The 1 MiB of noise the second layer replaced was never chunked: one tool's worth
    // reached the store.
    let stored = report["stored_bytes"].as_u64().unwrap();
    assert!(
        stored > 1 << 20 && stored < 1_500_000,
        "stored {stored} bytes"
    );
    assert_eq!(report["platform"], "linux/amd64");

    // The configuration as metadata, the manifest digest as the source.
    let inspect = json(&ok(flisthub(w, args!["inspect", flist, "--json"])));
    let meta = &inspect["metadata"];
    let manifest = registry.manifest("test/app:v1");
    let digest = format!("sha256:{}", hex_sha256(&manifest));
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(meta["source"]["digest"], digest.as_str());
    assert_eq!(meta["source"]["name"], reference.as_str());
    assert_eq!(
        meta["entrypoint"],
        serde_json::json!(["/bin/tool", "--serve"])
    );
    assert_eq!(meta["environ"]["MODE"], "test");
    assert_eq!(meta["workdir"], "/srv");
    assert_eq!(meta["user"], "1000:1000");
    assert!(meta["ports"].to_string().contains("8080/tcp"), "{meta}");
    assert_eq!(meta["labels"]["org.example"], "yes");

    // 0-hub's /.startup.toml for Zero-OS.
    let startup = ok(flisthub(
        w,
        args!["cat", flist, ".startup.toml", "--store", store],
    ));
    let startup: toml::Value = toml::from_str(&String::from_utf8(startup.stdout).unwrap()).unwrap();
    let entry = &startup["startup"]["entry"];
    assert_eq!(entry["name"].as_str(), Some("core.system"));
    assert_eq!(entry["args"]["name"].as_str(), Some("/bin/tool"));
    assert_eq!(entry["args"]["dir"].as_str(), Some("/srv"));
    assert_eq!(entry["args"]["env"]["MODE"].as_str(), Some("test"));

    // Converting again gives the same bytes; without the startup file, there is none.
    let again = w.join("again.flist");
    convert(w, args![reference, "-o", again, "--store", store]);
    assert_eq!(
        std::fs::read(&flist).unwrap(),
        std::fs::read(&again).unwrap()
    );
    let bare = w.join("bare.flist");
    convert(
        w,
        args![reference, "-o", bare, "--store", store, "--no-startup-toml"],
    );
    let listing = ok(flisthub(w, args!["ls", bare]));
    assert!(!String::from_utf8_lossy(&listing.stdout).contains(".startup.toml"));
}

fn hex_sha256(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(bytes)?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

#[test]
fn zstd_layers_and_docker_schema_2_manifests() {
    let Some(registry) = RegistryServer::start() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let image = layered_image(w);
    registry.push(
        &image.source(),
        "test/zstd:v1",
        &["--dest-compress-format", "zstd", "--dest-compress"],
    );
    let manifest = String::from_utf8(registry.manifest("test/zstd:v1")).unwrap();
    assert!(manifest.contains("tar+zstd"), "{manifest}");
    registry.push(&image.source(), "test/docker:v1", &["--format", "v2s2"]);
    let manifest = String::from_utf8(registry.manifest("test/docker:v1")).unwrap();
    assert!(
        manifest.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{manifest}"
    );
    let store = format!("dir://{}", w.join("store").display());
    for name in ["test/zstd:v1", "test/docker:v1"] {
        let flist = w.join("image.flist");
        convert(
            w,
            args![
                format!("{}/{name}", registry.host()),
                "-o",
                flist,
                "--store",
                store
            ],
        );
        assert_same_as_umoci(&image, w, &flist, &store);
    }
}

#[test]
fn an_index_gives_the_platform_asked_for_or_lists_the_ones_it_has() {
    let Some(registry) = RegistryServer::start() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mut digests = Vec::new();
    for (arch, content) in [("amd64", "x86\n"), ("arm64", "arm\n")] {
        let image = OciLayout::new(&w.join(arch), "v1");
        image.add_layer(&Layer::new().file("arch", content.as_bytes()).bytes());
        image.configure(&["--architecture", arch, "--os", "linux"]);
        let tag = format!("test/multi:{arch}");
        registry.push(&image.source(), &tag, &[]);
        let manifest = registry.manifest(&tag);
        digests.push((
            arch,
            format!("sha256:{}", hex_sha256(&manifest)),
            manifest.len(),
        ));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": digests.iter().map(|(arch, digest, size)| serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": size,
            "platform": {"os": "linux", "architecture": arch},
        })).collect::<Vec<_>>(),
    });
    let put = hub::client()
        .put(format!(
            "http://{}/v2/test/multi/manifests/v1",
            registry.host()
        ))
        .header("content-type", "application/vnd.oci.image.index.v1+json")
        .body(index.to_string())
        .send()
        .unwrap();
    assert_eq!(put.status().as_u16(), 201, "{}", put.text().unwrap());

    let store = format!("dir://{}", w.join("store").display());
    let reference = format!("{}/test/multi:v1", registry.host());
    let flist = w.join("multi.flist");
    let cat = |w: &Path| {
        String::from_utf8(ok(flisthub(w, args!["cat", flist, "arch", "--store", store])).stdout)
            .unwrap()
    };
    let report = convert(w, args![reference, "-o", flist, "--store", store]);
    assert_eq!(
        (report["platform"].as_str(), cat(w).as_str()),
        (Some("linux/amd64"), "x86\n")
    );
    assert_eq!(report["digest"], digests[0].1.as_str());
    let report = convert(
        w,
        args![
            reference,
            "-o",
            flist,
            "--store",
            store,
            "--platform",
            "linux/arm64"
        ],
    );
    assert_eq!(
        (report["platform"].as_str(), cat(w).as_str()),
        (Some("linux/arm64"), "arm\n")
    );

    let missing = w.join("missing.flist");
    let error = fails(flisthub(
        w,
        args![
            "convert",
            reference,
            "-o",
            missing,
            "--store",
            store,
            "--platform",
            "linux/s390x"
        ],
    ));
    assert!(
        error.contains("no linux/s390x image") && error.contains("linux/amd64, linux/arm64"),
        "{error}"
    );
    assert!(!missing.exists());
    // A single-platform image asked for another platform says what it is.
    let error = fails(flisthub(
        w,
        args![
            "convert",
            format!("{}/test/multi:arm64", registry.host()),
            "-o",
            missing,
            "--store",
            store
        ],
    ));
    assert!(
        error.contains("linux/arm64 image, not linux/amd64"),
        "{error}"
    );
    assert!(!missing.exists());
}

#[test]
fn credentials_unknown_images_dead_registries_and_damaged_layers() {
    let Some(mut registry) = RegistryServer::start_with_credentials("ci", "s3cret-pass") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let image = OciLayout::new(&w.join("oci"), "v1");
    image.add_layer(&Layer::new().file("hello", &noise(300_000, 7)).bytes());
    registry.push(&image.source(), "private/app:v1", &[]);
    let store_dir = w.join("store");
    let store = format!("dir://{}", store_dir.display());
    let out = w.join("out.flist");
    let reference = format!("{}/private/app:v1", registry.host());
    let attempt = |reference: &str, extra: &[&str], stdin: Option<&[u8]>| {
        let mut all: Vec<&std::ffi::OsStr> = vec![
            "convert".as_ref(),
            reference.as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
            "--store".as_ref(),
            store.as_ref(),
        ];
        all.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
        flisthub_with_stdin(w, &all, stdin)
    };

    let error = fails(attempt(&reference, &[], None));
    assert!(error.contains("credentials"), "{error}");
    let error = fails(attempt(
        &reference,
        &["--username", "ci", "--password-stdin"],
        Some(b"wrong\n"),
    ));
    assert!(
        error.contains("credentials") && !error.contains("wrong"),
        "{error}"
    );
    assert!(!out.exists());
    assert!(!store_dir.join("chunks").exists() || listing(&store_dir).len() <= 2);

    ok(attempt(
        &reference,
        &["--username", "ci", "--password-stdin"],
        Some(b"s3cret-pass\n"),
    ));
    assert!(out.exists());
    std::fs::remove_file(&out).unwrap();

    let creds: &[&str] = &["--username", "ci", "--password-stdin"];
    let error = fails(attempt(
        &format!("{}/private/app:nope", registry.host()),
        creds,
        Some(b"s3cret-pass\n"),
    ));
    assert!(
        error.contains("no such image or tag") || error.contains("unknown"),
        "{error}"
    );
    let error = fails(attempt(
        &format!("{}/private/none:v1", registry.host()),
        creds,
        Some(b"s3cret-pass\n"),
    ));
    assert!(
        error.contains("not found") || error.contains("unknown") || error.contains("no such"),
        "{error}"
    );
    let error = fails(attempt("app::bad", &[], None));
    assert!(error.contains("not an image reference"), "{error}");
    assert!(!out.exists());

    // A layer whose bytes no longer match its digest: refused, nothing written.
    let manifest: Value = serde_json::from_slice(&registry.manifest("private/app:v1")).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let blob = registry.blob_path(&layer);
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    let error = fails(attempt(&reference, creds, Some(b"s3cret-pass\n")));
    assert!(
        error.contains("layer 1 of 1") && error.contains("corrupt"),
        "{error}"
    );
    assert!(!out.exists());
    // Another layer, valid in itself, under the first one's digest: only the digest tells.
    std::fs::write(&blob, gzip(&Layer::new().file("other", b"x").bytes())).unwrap();
    let error = fails(attempt(&reference, creds, Some(b"s3cret-pass\n")));
    assert!(
        error.contains(&layer) && error.contains("digest"),
        "{error}"
    );
    assert!(!out.exists());

    // A registry that is gone.
    registry.kill();
    let error = fails(attempt(&reference, creds, Some(b"s3cret-pass\n")));
    assert!(error.contains("does not answer"), "{error}");
    assert!(!out.exists());
}

/// A tag in the local Docker daemon, removed (`docker rmi`) when dropped, so that a failing
/// test leaves no image behind.
struct DaemonTag(String);

impl Drop for DaemonTag {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "--force", &self.0])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn docker_daemon_answers() -> bool {
    have("docker")
        && Command::new("docker")
            .arg("info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

#[test]
fn an_image_imported_into_the_docker_daemon_equals_its_tree() {
    if !docker_daemon_answers() {
        println!("SKIP: no Docker daemon");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = w.join("src");
    make_tree(&src);
    // PAX keeps nanosecond mtimes and xattrs; GNU tar does not archive sockets.
    let archive = w.join("src.tar");
    std::fs::write(
        &archive,
        tar_of(&src, &["--format=posix", "--xattrs", "--xattrs-include=*"]),
    )
    .unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let tag = DaemonTag(format!(
        "flisthub-test/import:{}-{nanos}",
        std::process::id()
    ));
    run(Command::new("docker")
        .arg("import")
        .arg(&archive)
        .arg(&tag.0));
    let id = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &tag.0])
        .output()
        .unwrap();
    assert!(
        id.status.success(),
        "{}",
        String::from_utf8_lossy(&id.stderr)
    );
    let id = String::from_utf8(id.stdout).unwrap().trim().to_owned();

    let store = format!("dir://{}", w.join("store").display());
    let flist = w.join("imported.flist");
    let report = convert(w, args![tag.0, "--daemon", "-o", flist, "--store", store]);
    assert_eq!(report["digest"], id.as_str(), "{report}");
    assert_eq!(report["image"], tag.0.as_str(), "{report}");
    assert!(report["platform"].as_str().is_some(), "{report}");
    let actual = w.join("extracted");
    extract(w, &flist, &store, &actual);
    // The daemon keeps an imported archive byte for byte (its layer is the archive as
    // given: checked with Docker 20.10, whose `docker save` returns the identical tar), so
    // every entry is compared, with its nanosecond mtime, owner, mode and xattrs. The root
    // `./` is also in the archive, but `assert_same_tree` ignores the root's attributes
    // anyway. Left out: the socket (GNU tar does not archive sockets) and the startup
    // file flisthub adds.
    assert_same_tree(&src, &actual, &|p: &Path| {
        p == Path::new("socket") || p == Path::new(".startup.toml")
    });

    // An image the daemon does not have: a clear error, no flist.
    let missing = w.join("missing.flist");
    let absent = format!("{}-absent", tag.0);
    let error = fails(flisthub(
        w,
        args![
            "convert", absent, "--daemon", "-o", missing, "--store", store
        ],
    ));
    assert!(
        error.contains(&absent) && error.contains("no such image"),
        "{error}"
    );
    assert!(!missing.exists());
}
