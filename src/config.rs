//! The configuration file.
//!
//! Looked for at `--config FILE`, `$FLISTHUB_CONFIG`, or
//! `$XDG_CONFIG_HOME/flisthub/config.toml` (`~/.config/flisthub/config.toml`); without one,
//! everything runs on the defaults. Unknown keys are refused, so a typo is an error rather
//! than a silently ignored setting.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chunkstore::StoreConfig;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The chunk store: `url = "..."`, or `backends`, `replicas`, `write-quorum` for a router.
    pub store: Option<StoreConfig>,
}

impl Config {
    /// Loads the file named, or the default one if it exists, or nothing.
    pub fn load(named: Option<&Path>) -> Result<Config> {
        let path = match named {
            Some(path) => path.to_owned(),
            None => match default_path() {
                Some(path) if path.exists() => path,
                _ => return Ok(Config::default()),
            },
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the configuration {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("in the configuration {}", path.display()))
    }
}

fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "flisthub").map(|d| d.config_dir().join("config.toml"))
}
