//! The configuration: `config/default.toml` (compiled in), then the configuration file, then
//! `FLISTHUB__SECTION__KEY` environment variables. Every key is documented in the default
//! file; unknown keys are refused, so a typo is an error rather than an ignored setting.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chunkstore::StoreConfig;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};

/// The embedded defaults, also the documentation of every key.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");

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

/// The 0-db-protocol gateway (`hub::gateway`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GatewayConfig {
    /// Where it listens; off when not set.
    pub listen: Option<SocketAddr>,
    /// The address clients and nodes are told, `zdb://host:port`.
    pub public_url: Option<String>,
    pub connections: usize,
    pub connections_per_address: usize,
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// How long a released block stays readable (see `hub::renditions`).
    #[serde(deserialize_with = "duration")]
    pub release_grace: Duration,
    /// Bytes of encoded rendition blocks kept in memory.
    #[serde(deserialize_with = "size")]
    pub block_cache: u64,
}

impl GatewayConfig {
    /// The address nodes are told: the configured one, else one made from where it listens
    /// (with the machine's name for a wildcard address).
    pub fn public_url(&self, listening: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("zdb://{}", public_host(listening)),
        }
    }
}

/// `host:port` for a listening address, the machine's name for a wildcard one.
pub fn public_host(address: SocketAddr) -> String {
    if address.ip().is_unspecified() {
        let uname = rustix::system::uname();
        format!("{}:{}", uname.nodename().to_string_lossy(), address.port())
    } else {
        address.to_string()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub public_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub log_format: LogFormat,
    pub readonly: bool,
    pub authentication: bool,
    pub official_repositories: Vec<String>,
    pub trust_forwarded: bool,
    pub metrics: bool,
    #[serde(deserialize_with = "duration")]
    pub shutdown_grace: Duration,
    /// How long a client may take to send a request's head (from connecting, or from the
    /// end of its previous request on a kept-alive connection).
    #[serde(deserialize_with = "duration")]
    pub header_read_timeout: Duration,
    /// Connections open at once; capped below the open-file limit.
    pub max_connections: usize,
    /// Connections open at once from one client address (an IPv6 /64); 0: no limit.
    pub connections_per_address: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PublishConfig {
    pub routes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(deserialize_with = "size")]
    pub upload_size: u64,
    #[serde(deserialize_with = "size")]
    pub flist_size: u64,
    #[serde(deserialize_with = "size")]
    pub expanded_size: u64,
    pub entries: u64,
    /// Largest PAX record or GNU long name or link of an archive (refused from its header).
    #[serde(deserialize_with = "size")]
    pub header_record: u64,
    /// Largest ratio of a compressed archive's expanded bytes to its bytes as sent, once
    /// `expansion-floor` bytes have come out; 0: no bound.
    pub expansion_ratio: u64,
    #[serde(deserialize_with = "size")]
    pub expansion_floor: u64,
    /// Largest value of one metadata key of a published flist.
    #[serde(deserialize_with = "size")]
    pub metadata_value: u64,
    /// Largest metadata of a published flist, all keys and values together.
    #[serde(deserialize_with = "size")]
    pub metadata_size: u64,
    pub name_length: usize,
    #[serde(deserialize_with = "size")]
    pub request_body: u64,
    pub merge_sources: usize,
    /// Entries a merge may read from all its sources together.
    pub merge_entries: u64,
    pub concurrent_uploads: usize,
    pub uploads_per_identity: usize,
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// Bytes per second an upload must average over each `upload-rate-window`; 0: no floor.
    #[serde(deserialize_with = "size")]
    pub upload_min_rate: u64,
    #[serde(deserialize_with = "duration")]
    pub upload_rate_window: Duration,
    pub write_rate: u32,
    pub write_burst: u32,
    pub read_rate: u32,
    pub read_burst: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(deserialize_with = "duration")]
    pub token_ttl: Duration,
    #[serde(deserialize_with = "duration")]
    pub max_token_ttl: Duration,
    pub secret_file: Option<PathBuf>,
    /// Identities with administrator rights (the whole change feed, admin routes).
    #[serde(default)]
    pub administrators: Vec<String>,
    #[serde(default)]
    pub issuers: Vec<IssuerConfig>,
    pub zero_hub: Option<ZeroHubConfig>,
}

/// A public-key token issuer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct IssuerConfig {
    pub issuer: String,
    pub algorithm: IssuerAlgorithm,
    pub public_key_file: PathBuf,
    pub audience: Option<String>,
}

/// The algorithms a public-key issuer may be pinned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum IssuerAlgorithm {
    EdDSA,
    ES256,
    ES384,
    RS256,
}

/// Acceptance of 0-hub's ThreeFold Connect API tokens.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ZeroHubConfig {
    pub seed: Option<String>,
    pub seed_file: Option<PathBuf>,
    #[serde(default = "default_zero_hub_max_age", deserialize_with = "duration")]
    pub max_age: Duration,
    #[serde(default)]
    pub users_map: BTreeMap<String, String>,
}

/// The seed signs tokens: never shown.
impl std::fmt::Debug for ZeroHubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZeroHubConfig")
            .field("seed", &self.seed.as_ref().map(|_| "<redacted>"))
            .field("seed_file", &self.seed_file)
            .field("max_age", &self.max_age)
            .field("users_map", &self.users_map)
            .finish()
    }
}

/// 0-hub's tokens never expired, and the CI secrets that hold them are years old: accepted
/// without an age limit unless the operator sets one (the hub warns at start).
fn default_zero_hub_max_age() -> Duration {
    Duration::ZERO
}

/// The chunk API (`/api/v1/chunks`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ChunksConfig {
    /// Stored bytes of new chunks and blocks one identity may make the hub store, by any
    /// way (`hub::quota`); 0 for no limit.
    #[serde(deserialize_with = "size")]
    pub quota: u64,
    /// Per-identity quotas, over `quota`.
    #[serde(default)]
    pub quotas: BTreeMap<String, ByteSize>,
    /// Largest body of one upload request.
    #[serde(deserialize_with = "size")]
    pub upload_body: u64,
    /// Upload requests one identity may have in flight.
    pub uploads_per_identity: usize,
    /// Batches of chunk reads (each up to 16 chunks) in flight in the whole hub.
    pub concurrent_reads: usize,
}

impl ChunksConfig {
    /// The quota of `identity`, if it has one.
    pub fn quota_of(&self, identity: &str) -> Option<u64> {
        let quota = self.quotas.get(identity).map_or(self.quota, |q| q.0);
        (quota > 0).then_some(quota)
    }
}

/// A size in bytes, written as a number or with a unit (`512K`, `64MiB`, `10GiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        size(d).map(ByteSize)
    }
}

/// Garbage collection (`hub::gc`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GcConfig {
    /// How often `serve` collects; zero: never by itself.
    #[serde(deserialize_with = "duration")]
    pub interval: Duration,
    /// How long a chunk seen (stored, or found present) is kept unreferenced.
    #[serde(deserialize_with = "duration")]
    pub grace: Duration,
}

/// Retention policies (`hub::retention`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RetentionConfig {
    /// How often `serve` applies the policies; zero: only when asked.
    #[serde(deserialize_with = "duration")]
    pub interval: Duration,
    /// The policy of every repository without one of its own.
    #[serde(default)]
    pub default: Option<crate::retention::Policy>,
    /// Policies by repository.
    #[serde(default)]
    pub repositories: BTreeMap<String, crate::retention::Policy>,
}

/// The integrity scrub (`hub::scrub`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ScrubConfig {
    /// How often `serve` checks every published flist's chunks; zero (or "off"): only when
    /// asked.
    #[serde(deserialize_with = "duration_or_off")]
    pub interval: Duration,
    /// Whether the scheduled runs read and verify every chunk rather than only ask
    /// whether it is there.
    pub deep: bool,
}

/// The usage figures (`hub::usage`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct UsageConfig {
    /// How old the figures may grow, once the namespace changed, before a walk makes them
    /// anew.
    #[serde(deserialize_with = "duration")]
    pub refresh: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct JobsConfig {
    #[serde(deserialize_with = "duration")]
    pub retention: Duration,
}

/// Container images converted by the hub (`POST /api/flist/me/docker`, `/api/v1/convert`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ImagesConfig {
    pub enabled: bool,
    pub source: ImageSourceConfig,
    /// With the daemon source: let the daemon pull images it does not have.
    pub daemon_pull: bool,
    /// Conversions running at once in the whole hub; more wait their turn.
    pub concurrent: usize,
    /// Conversions one identity may have queued or running; more get 429.
    pub per_identity: usize,
    pub default_platform: String,
    pub startup_toml: bool,
    /// Registries (`host[:port]`) reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// The only registries images are converted from; empty: any. A registry listed here
    /// is also reached on a private address.
    pub allowed_registries: Vec<String>,
    /// Reach registries (and where they send the hub) on private, loopback and link-local
    /// addresses too; by default only a listed registry is.
    pub allow_private_networks: bool,
    /// How long a registry may take to answer one request.
    #[serde(deserialize_with = "duration")]
    pub registry_timeout: Duration,
    /// Credentials by registry (`host[:port]`, `docker.io` for Docker Hub).
    #[serde(default)]
    pub credentials: BTreeMap<String, RegistryCredentials>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageSourceConfig {
    Registry,
    Daemon,
}

/// A registry account; the password inline or, better, in a file only the hub reads.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RegistryCredentials {
    pub username: String,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
}

impl std::fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCredentials")
            .field("username", &self.username)
            .field("password_file", &self.password_file)
            .finish_non_exhaustive()
    }
}

impl RegistryCredentials {
    /// The account, its password read from its file if it has one.
    pub fn load(&self) -> Result<converter::Credentials> {
        let password = match (&self.password, &self.password_file) {
            (Some(password), None) => password.clone(),
            (None, Some(file)) => std::fs::read_to_string(file)
                .map_err(|e| Error::io(file.display(), e))?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
            _ => {
                return Err(Error::Config(format!(
                    "images.credentials for {}: give one of password and password-file",
                    self.username
                )));
            }
        };
        Ok(converter::Credentials {
            username: self.username.clone(),
            password,
        })
    }
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

    fn check(&self) -> Result<()> {
        let bad = |what: String| Err(Error::Config(what));
        let l = &self.limits;
        if l.name_length < 8 || l.name_length > 255 {
            return bad(format!(
                "limits.name-length = {}: must be between 8 and 255",
                l.name_length
            ));
        }
        for (key, value) in [
            ("limits.concurrent-uploads", l.concurrent_uploads),
            ("limits.uploads-per-identity", l.uploads_per_identity),
            ("limits.merge-sources", l.merge_sources),
            (
                "chunks.uploads-per-identity",
                self.chunks.uploads_per_identity,
            ),
            ("chunks.concurrent-reads", self.chunks.concurrent_reads),
            ("images.concurrent", self.images.concurrent),
            ("images.per-identity", self.images.per_identity),
            ("server.max-connections", self.server.max_connections),
        ] {
            if value == 0 {
                return bad(format!("{key} must be at least 1"));
            }
        }
        // Two identities must not be able to take every upload slot between them.
        if l.uploads_per_identity.saturating_mul(2) >= l.concurrent_uploads {
            return bad(format!(
                "limits.uploads-per-identity = {} must be less than half of limits.concurrent-uploads = {}, so that two identities cannot hold every upload slot",
                l.uploads_per_identity, l.concurrent_uploads
            ));
        }
        // Below the longest path an archive may hold, long names could not be read at all.
        if l.header_record < 8 << 10 {
            return bad("limits.header-record must be at least 8KiB".into());
        }
        if l.upload_min_rate > 0 && l.upload_rate_window < Duration::from_secs(1) {
            return bad("limits.upload-rate-window must be at least 1s".into());
        }
        if self.server.header_read_timeout.is_zero() {
            return bad("server.header-read-timeout must be longer than 0s".into());
        }
        // A push sends the pack pipeline's batches (a few MiB each) whole.
        if self.chunks.upload_body < 16 << 20 {
            return bad("chunks.upload-body must be at least 16MiB".into());
        }
        if l.write_rate == 0 {
            return bad("limits.write-rate must be at least 1".into());
        }
        if let Some(url) = &self.gateway.public_url {
            match chunkstore::parse_route(url) {
                Ok(chunkstore::StoreUrl::Zdb(_)) => {}
                _ => {
                    return bad(format!(
                        "gateway.public-url = {url:?}: must be a zdb://host:port URL"
                    ));
                }
            }
        }
        if self.gateway.connections == 0 || self.gateway.connections_per_address == 0 {
            return bad(
                "gateway.connections and connections-per-address must be at least 1".into(),
            );
        }
        if let Some(url) = &self.server.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return bad(format!(
                "server.public-url = {url:?}: must start with http:// or https://"
            ));
        }
        for route in &self.publish.routes {
            chunkstore::parse_route(route)
                .map_err(|e| Error::Config(format!("publish.routes: {e}")))?;
        }
        if let Err(e) = self.images.default_platform.parse::<converter::Platform>() {
            return bad(format!("images.default-platform: {e}"));
        }
        for (registry, credentials) in &self.images.credentials {
            credentials
                .load()
                .map_err(|e| Error::Config(format!("images.credentials.{registry:?}: {e}")))?;
        }
        if self.auth.token_ttl > self.auth.max_token_ttl {
            return bad("auth.token-ttl is longer than auth.max-token-ttl".into());
        }
        if let Some(z) = &self.auth.zero_hub
            && z.seed.is_some() == z.seed_file.is_some()
        {
            return bad("auth.zero-hub needs one of seed and seed-file".into());
        }
        Ok(())
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
            vec![crate::auth::ADMINISTRATOR.to_owned()]
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

fn duration<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!("{text:?} is not a duration such as 90s or 7d: {e}"))
    })
}

/// A duration, or "off" (zero: the thing it times never runs by itself).
fn duration_or_off<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    if text == "off" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "{text:?} is not a duration such as 90s or 7d, nor \"off\": {e}"
        ))
    })
}

fn size<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Bytes(n) => Ok(n),
        Size::Text(text) => chunkstore::parse_size(&text)
            .map(|n| n as u64)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{text:?} is not a size such as 512K, 64MiB or 10GiB"
                ))
            }),
    }
}

#[cfg(test)]
mod tests;
