//! The configuration: `config/default.toml` (compiled in), then the configuration file, then
//! `FLISTHUB__SECTION__KEY` environment variables. Every key is documented in the default
//! file; unknown keys are refused, so a typo is an error rather than an ignored setting.
//!
//! The hub's (`hub` re-exports [`Config`]), in a crate of its own so that it builds, and its
//! fuzz target with it, without the server.

#![forbid(unsafe_code)]

mod check;
mod error;
mod retention;
mod sections;

use std::path::{Path, PathBuf};

use chunkstore::StoreConfig;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

pub use error::{Error, Result};
pub use retention::Policy;
pub use sections::*;

/// The embedded defaults, also the documentation of every key.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");

/// The identity of every caller when authentication is off (0-hub's).
pub const ADMINISTRATOR: &str = "Administrator";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub store: Option<StoreConfig>,
    pub publish: PublishConfig,
    pub limits: LimitsConfig,
    pub auth: AuthConfig,
    pub jobs: JobsConfig,
    pub gc: GcConfig,
    pub retention: RetentionConfig,
    pub scrub: ScrubConfig,
    pub usage: UsageConfig,
    pub chunks: ChunksConfig,
    pub images: ImagesConfig,
    pub gateway: GatewayConfig,
}

impl Config {
    /// The defaults, overlaid with `file` (if given) and then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        let mut figment = Figment::from(Toml::string(DEFAULT_CONFIG));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let figment = figment.merge(
            Env::prefixed("FLISTHUB__")
                .map(|key| key.as_str().replace("__", ".").replace('_', "-").into()),
        );
        let config: Config = figment.extract().map_err(|e| Error::Config(describe(&e)))?;
        config.check()?;
        Ok(config)
    }

    /// The defaults overlaid with the TOML `text` alone (no file, no environment): a hub
    /// embedded in another program, and tests.
    pub fn from_toml(text: &str) -> Result<Config> {
        let config: Config = Figment::from(Toml::string(DEFAULT_CONFIG))
            .merge(Toml::string(text))
            .extract()
            .map_err(|e| Error::Config(describe(&e)))?;
        config.check()?;
        Ok(config)
    }

    /// The data directory: the configured one, or `$XDG_DATA_HOME/flisthub`.
    pub fn data_dir(&self) -> Result<PathBuf> {
        if let Some(dir) = &self.server.data_dir {
            return Ok(dir.clone());
        }
        directories::ProjectDirs::from("", "", "flisthub")
            .map(|d| d.data_dir().to_owned())
            .ok_or_else(|| {
                Error::Config("no home directory for the data; set server.data-dir".into())
            })
    }

    /// The repositories shown as official: those configured, or `Administrator` alone when
    /// authentication is off (every upload then lands there).
    pub fn official_repositories(&self) -> Vec<String> {
        if self.server.authentication {
            self.server.official_repositories.clone()
        } else {
            vec![ADMINISTRATOR.to_owned()]
        }
    }

    /// The URL clients reach the hub at, without a trailing `/`.
    pub fn public_url(&self) -> String {
        match &self.server.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.server.listen),
        }
    }
}

/// What is wrong, the key, and where the value came from (the file, or the variable).
fn describe(e: &figment::Error) -> String {
    e.clone()
        .into_iter()
        .map(|e| {
            let mut text = e.kind.to_string();
            if !e.path.is_empty() {
                text.push_str(&format!(" (key {})", e.path.join(".")));
            }
            match e.metadata.as_ref().map(|m| (&m.name, &m.source)) {
                Some((_, Some(source))) => text.push_str(&format!(" in {source}")),
                Some((name, None)) => text.push_str(&format!(" from {name}")),
                None => {}
            }
            text
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests;
