//! The sections of the configuration file, as the hub reads them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};
use crate::retention::Policy;
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
    pub default: Option<Policy>,
    /// Policies by repository.
    #[serde(default)]
    pub repositories: BTreeMap<String, Policy>,
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
