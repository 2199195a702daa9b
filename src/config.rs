//! The configuration file.
//!
//! Looked for at `--config FILE`, `$FLISTHUB_CONFIG`, or
//! `$XDG_CONFIG_HOME/flisthub/config.toml` (`~/.config/flisthub/config.toml`); without one,
//! everything runs on the defaults compiled in from `config/default.toml`, overridden by
//! `FLISTHUB__SECTION__KEY` variables. The same file configures the hub (`serve`) and the
//! commands (`[store]`).

use std::path::{Path, PathBuf};

use anyhow::Result;

pub use hub::Config;

/// Loads the file named, or the default one if it exists, over the defaults.
pub fn load(named: Option<&Path>) -> Result<Config> {
    let file = match named {
        Some(path) => Some(path.to_owned()),
        None => default_path().filter(|p| p.exists()),
    };
    Ok(Config::load(file.as_deref())?)
}

fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "flisthub").map(|d| d.config_dir().join("config.toml"))
}
