use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::free_port;

/// Debian's `docker-registry` (the reference OCI registry, "distribution") on a loopback
/// port with its storage in a private directory, optionally asking for credentials
/// (htpasswd); killed when dropped.
pub struct RegistryServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    credentials: Option<(String, String)>,
}

impl RegistryServer {
    /// An open registry; `None` (and a message) if docker-registry or skopeo is missing.
    pub fn start() -> Option<RegistryServer> {
        Self::launch(None)
    }

    /// A registry that wants `user`/`password` for everything (basic auth over plain
    /// HTTP, as loopback registries are reached); also needs htpasswd.
    pub fn start_with_credentials(user: &str, password: &str) -> Option<RegistryServer> {
        if !crate::need("htpasswd") {
            return None;
        }
        Self::launch(Some((user.to_owned(), password.to_owned())))
    }

    fn launch(credentials: Option<(String, String)>) -> Option<RegistryServer> {
        if !crate::need("docker-registry") || !crate::need("skopeo") || !crate::need("umoci") {
            return None;
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        let auth = match &credentials {
            None => String::new(),
            Some((user, password)) => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, password])
                    .output()
                    .expect("run htpasswd");
                assert!(out.status.success(), "htpasswd failed");
                std::fs::write(dir.path().join("htpasswd"), out.stdout).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: flisthub-tests\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                )
            }
        };
        let port = free_port(false);
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).expect("write config.yml");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("registry log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let server = RegistryServer {
            child: Some(child),
            port,
            dir,
            credentials,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start: {}",
                std::fs::read_to_string(server.dir.path().join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    /// `127.0.0.1:PORT`, the registry part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Copies an image with skopeo from `source` (`oci:DIR:TAG`, `docker-archive:...`) to
    /// `NAME:TAG` here, passing `extra` to `skopeo copy` (`--format v2s2`,
    /// `--dest-compress-format zstd`).
    pub fn push(&self, source: &str, name: &str, extra: &[&str]) {
        let destination = format!("docker://{}/{name}", self.host());
        let mut command = Command::new("skopeo");
        command.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if let Some((user, password)) = &self.credentials {
            command.arg(format!("--dest-creds={user}:{password}"));
        }
        let out = command
            .args(extra)
            .args([source, &destination])
            .output()
            .expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo copy {source} {destination}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `skopeo inspect --raw` of `NAME:TAG` here: the manifest as stored.
    pub fn manifest(&self, name: &str) -> Vec<u8> {
        let mut command = Command::new("skopeo");
        command.args(["inspect", "--raw", "--tls-verify=false"]);
        if let Some((user, password)) = &self.credentials {
            command.arg(format!("--creds={user}:{password}"));
        }
        let out: Output = command
            .arg(format!("docker://{}/{name}", self.host()))
            .output()
            .expect("run skopeo");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Where the registry keeps the blob `sha256:<hex>` (to damage it).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Freezes the registry (SIGSTOP): connections are accepted by the kernel, nothing is
    /// answered.
    pub fn pause(&self) {
        crate::signal(self.child.as_ref(), Signal::STOP);
    }

    /// Lets a paused registry go on (SIGCONT).
    pub fn resume(&self) {
        crate::signal(self.child.as_ref(), Signal::CONT);
    }

    /// Kills the registry: the port refuses connections.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        self.resume();
        self.kill();
    }
}

/// An OCI image layout built with umoci, one tag, layers appended from tar archives the
/// caller makes (so that whiteouts, opaque directories and hardlinks are exactly as
/// written).
pub struct OciLayout {
    dir: PathBuf,
    tag: String,
}

impl OciLayout {
    /// A new layout at `dir` holding an empty image tagged `tag`.
    pub fn new(dir: &Path, tag: &str) -> OciLayout {
        let layout = OciLayout {
            dir: dir.to_owned(),
            tag: tag.to_owned(),
        };
        umoci(&["init", "--layout", &layout.dir.display().to_string()]);
        umoci(&["new", "--image", &layout.image()]);
        layout
    }

    /// `DIR:TAG`, as umoci names it.
    fn image(&self) -> String {
        format!("{}:{}", self.dir.display(), self.tag)
    }

    /// `oci:DIR:TAG`, as skopeo names it.
    pub fn source(&self) -> String {
        format!("oci:{}", self.image())
    }

    /// Appends an uncompressed tar archive as the next layer (umoci compresses it).
    pub fn add_layer(&self, tar: &[u8]) {
        let file = self.dir.with_extension("layer.tar");
        std::fs::write(&file, tar).expect("write a layer");
        umoci(&[
            "raw",
            "add-layer",
            "--no-history",
            "--image",
            &self.image(),
            &file.display().to_string(),
        ]);
        let _ = std::fs::remove_file(file);
    }

    /// `umoci config` with these options (`--config.entrypoint`, `--architecture`, ...).
    pub fn configure(&self, options: &[&str]) {
        let image = self.image();
        let mut args = vec!["config", "--no-history", "--image", &image];
        args.extend_from_slice(options);
        umoci(&args);
    }

    /// The image's filesystem as `umoci unpack` makes it: `bundle/rootfs`.
    pub fn unpack(&self, bundle: &Path) -> PathBuf {
        umoci(&[
            "unpack",
            "--keep-dirlinks",
            "--image",
            &self.image(),
            &bundle.display().to_string(),
        ]);
        bundle.join("rootfs")
    }
}

fn umoci(args: &[&str]) {
    let out = Command::new("umoci")
        .args(args)
        .output()
        .expect("run umoci");
    assert!(
        out.status.success(),
        "umoci {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}
