//! An image's configuration (the OCI image config, as registries serve it and `docker save`
//! writes it): what becomes flist metadata, and the `/.startup.toml` Zero-OS reads.

use std::collections::BTreeMap;

use flist::{Metadata, Node, NodeKind, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The largest image config read: real ones are a few KiB.
pub(crate) const CONFIG_LIMIT: u64 = 4 << 20;

/// The parts of an image config that describe how to run it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub variant: Option<String>,
    /// When the image was made (RFC 3339), as `docker inspect` shows it.
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub config: RunConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

impl ImageConfig {
    pub(crate) fn parse(bytes: &[u8]) -> Result<ImageConfig> {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::image(
                super::ImageFailure::Invalid,
                format!("the image configuration is not valid: {e}"),
            )
        })
    }

    /// The command the image runs: its entrypoint followed by its command, as a container
    /// runtime joins them.
    pub fn argv(&self) -> Vec<String> {
        let c = &self.config;
        c.entrypoint
            .iter()
            .flatten()
            .chain(c.cmd.iter().flatten())
            .cloned()
            .collect()
    }

    /// The environment, each `NAME=value` split at the first `=` (a value may hold more).
    pub fn environment(&self) -> BTreeMap<String, String> {
        self.config
            .env
            .iter()
            .flatten()
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => (pair.clone(), String::new()),
            })
            .collect()
    }

    /// Records what describes how to run the image: `entrypoint` (the whole command),
    /// `cmd` (the part of it a caller may replace), `environ`, `workdir`, `user`, `ports`,
    /// `labels`.
    pub(crate) fn record(&self, metadata: &mut Metadata) {
        let argv = self.argv();
        if !argv.is_empty() {
            metadata.set_entrypoint(&argv);
        }
        let c = &self.config;
        if let Some(cmd) = &c.cmd {
            metadata.set("cmd", serde_json::to_string(cmd).unwrap_or_default());
        }
        let env = self.environment();
        if !env.is_empty() {
            metadata.set_environ(&env);
        }
        if let Some(dir) = c.working_dir.as_deref().filter(|d| !d.is_empty()) {
            metadata.set_workdir(dir);
        }
        if let Some(user) = c.user.as_deref().filter(|u| !u.is_empty()) {
            metadata.set("user", user);
        }
        if let Some(ports) = &c.exposed_ports {
            metadata.set_ports(&ports.keys().cloned().collect::<Vec<_>>());
        }
        if let Some(labels) = c.labels.as_ref().filter(|l| !l.is_empty()) {
            metadata.set("labels", serde_json::to_string(labels).unwrap_or_default());
        }
    }

    /// The `/.startup.toml` 0-hub added to converted images, which Zero-OS reads to start a
    /// container that has no explicit entrypoint (reference section 6.2, step 5): the command
    /// as `name` and `args`, the environment, the working directory. Fixed from 0-hub: the
    /// arguments are the whole rest of the command (0-hub dropped the image's `Cmd` when
    /// its entrypoint had several words, and wrote no `args` at all for a one-word
    /// entrypoint without `Cmd`).
    pub(crate) fn startup_toml(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Startup {
            startup: Entries,
        }
        #[derive(Serialize)]
        struct Entries {
            entry: Entry,
        }
        #[derive(Serialize)]
        struct Entry {
            name: &'static str,
            args: Args,
        }
        #[derive(Serialize)]
        struct Args {
            name: String,
            args: Vec<String>,
            dir: String,
            env: BTreeMap<String, String>,
        }
        let mut argv = self.argv();
        if argv.is_empty() {
            // What 0-hub did for an image with neither: a shell.
            argv.push("/bin/sh".into());
        }
        let name = argv.remove(0);
        let startup = Startup {
            startup: Entries {
                entry: Entry {
                    name: "core.system",
                    args: Args {
                        name,
                        args: argv,
                        dir: self
                            .config
                            .working_dir
                            .clone()
                            .filter(|d| !d.is_empty())
                            .unwrap_or_else(|| "/".into()),
                        env: self.environment(),
                    },
                },
            },
        };
        toml::to_string(&startup).unwrap_or_default().into_bytes()
    }
}

impl ImageConfig {
    /// The node of `/.startup.toml`: a plain file dated when the image was made (the
    /// configuration it is written from was fixed then), so that the same image gives the
    /// same flist; the epoch for an image that does not say.
    pub(crate) fn startup_node(&self, size: u64) -> Node {
        let secs = self
            .created
            .as_deref()
            .and_then(|text| humantime::parse_rfc3339_weak(text.trim_end_matches('Z')).ok())
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |since| i64::try_from(since.as_secs()).unwrap_or(0));
        Node {
            kind: NodeKind::Regular { size },
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: Timestamp { secs, nanos: 0 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> ImageConfig {
        ImageConfig::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn run_config_becomes_metadata() {
        let c = config(
            r#"{"architecture":"amd64","os":"linux","config":{
                "Entrypoint":["/entry.sh","--flag"],"Cmd":["serve"],
                "Env":["PATH=/usr/bin","OPTS=a=b"],"WorkingDir":"/srv","User":"app",
                "ExposedPorts":{"80/tcp":{},"53/udp":{}},"Labels":{"org.example":"x"}}}"#,
        );
        let mut m = Metadata::new();
        c.record(&mut m);
        assert_eq!(
            m.entrypoint().unwrap().unwrap(),
            ["/entry.sh", "--flag", "serve"]
        );
        assert_eq!(m.get("cmd"), Some(r#"["serve"]"#));
        assert_eq!(m.environ().unwrap().unwrap()["OPTS"], "a=b");
        assert_eq!(m.workdir(), Some("/srv"));
        assert_eq!(m.get("user"), Some("app"));
        assert_eq!(m.ports().unwrap().unwrap(), ["53/udp", "80/tcp"]);
        assert_eq!(m.get("labels"), Some(r#"{"org.example":"x"}"#));
    }

    #[test]
    fn the_startup_file_is_dated_when_the_image_was_made() {
        let made = config(r#"{"created":"2024-05-01T12:00:00.123456789Z","config":{}}"#);
        assert_eq!(made.startup_node(3).mtime.secs, 1_714_564_800);
        let undated = config(r#"{"config":{}}"#);
        assert_eq!(undated.startup_node(3).mtime.secs, 0);
        let garbled = config(r#"{"created":"yesterday","config":{}}"#);
        assert_eq!(garbled.startup_node(3).mtime.secs, 0);
    }

    #[test]
    fn startup_toml_as_zero_os_reads_it() {
        let c = config(
            r#"{"config":{"Entrypoint":["/entry.sh","--flag"],"Cmd":["serve"],"Env":["A=1=2"]}}"#,
        );
        let text = String::from_utf8(c.startup_toml()).unwrap();
        let value: toml::Value = toml::from_str(&text).unwrap();
        let entry = &value["startup"]["entry"];
        assert_eq!(entry["name"].as_str(), Some("core.system"));
        assert_eq!(entry["args"]["name"].as_str(), Some("/entry.sh"));
        let args: Vec<&str> = entry["args"]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(args, ["--flag", "serve"]);
        assert_eq!(entry["args"]["dir"].as_str(), Some("/"));
        assert_eq!(entry["args"]["env"]["A"].as_str(), Some("1=2"));
        // Neither entrypoint nor command: a shell, with empty arguments (not none).
        let bare = String::from_utf8(config("{}").startup_toml()).unwrap();
        let value: toml::Value = toml::from_str(&bare).unwrap();
        assert_eq!(
            value["startup"]["entry"]["args"]["name"].as_str(),
            Some("/bin/sh")
        );
        assert_eq!(
            value["startup"]["entry"]["args"]["args"]
                .as_array()
                .unwrap()
                .len(),
            0
        );
    }
}
