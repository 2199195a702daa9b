//! Talking to a hub as a client: which hub and token (flags, environment, or what
//! `flisthub login` saved), who the token is, the hub's chunk API, publishing an flist,
//! and downloading one (checked against the hub's `.md5`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chunkstore::{HubOptions, HubStore};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tempfile::TempPath;

/// Where and as whom to reach a hub.
#[derive(clap::Args, Clone, Default)]
pub struct HubArgs {
    /// The hub's URL (default: $FLISTHUB_HUB, else what `flisthub login` saved).
    #[arg(long, env = "FLISTHUB_HUB")]
    pub hub: Option<String>,
    /// The API token; `-` reads it from stdin (default: $FLISTHUB_TOKEN, else what
    /// `flisthub login` saved).
    #[arg(long, env = "FLISTHUB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Act as this repository, one the token may act as besides its own (0-hub's
    /// `active-user`).
    #[arg(long)]
    pub repo: Option<String>,
}

/// The most a hub's JSON answer may be.
const ANSWER_LIMIT: usize = 4 << 20;

/// What `flisthub login` keeps, readable by its owner only.
#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub hub: String,
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
}

impl Credentials {
    /// `$XDG_CONFIG_HOME/flisthub/credentials.toml` (`~/.config/flisthub/credentials.toml`).
    pub fn path() -> Result<PathBuf> {
        let dirs = directories::ProjectDirs::from("", "", "flisthub")
            .context("no home directory for the credentials; pass --hub and --token")?;
        Ok(dirs.config_dir().join("credentials.toml"))
    }

    fn load() -> Result<Option<Credentials>> {
        let path = Credentials::path()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(
                toml::from_str(&text).with_context(|| format!("{}", path.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("{}", path.display())),
        }
    }

    /// Writes the file (mode 0600, replaced atomically). Returns its path.
    pub fn save(&self) -> Result<PathBuf> {
        let path = Credentials::path()?;
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        // tempfile creates files readable by the owner only.
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        file.write_all(toml::to_string(self)?.as_bytes())?;
        file.as_file().sync_all()?;
        file.persist(&path)
            .with_context(|| format!("{}", path.display()))?;
        Ok(path)
    }
}

/// A hub, reached with a token.
pub struct HubClient {
    pub url: String,
    token: String,
    repo: Option<String>,
    http: reqwest::Client,
}

/// The hub's `GET /api/v1/chunks`.
#[derive(Deserialize)]
pub struct ChunkApi {
    pub routes: Vec<String>,
}

/// What `upload-flist` answers.
#[derive(Deserialize)]
pub struct Published {
    pub name: String,
    pub url: String,
    pub md5: String,
}

#[derive(Deserialize)]
struct Envelope<T> {
    payload: T,
}

#[derive(Deserialize)]
struct Me {
    username: String,
}

impl HubClient {
    /// The hub and token of the flags and environment, completed by the saved credentials.
    pub fn new(args: &HubArgs) -> Result<HubClient> {
        let saved = Credentials::load()?;
        let saved_for = |hub: &str| saved.as_ref().filter(|c| c.hub == hub);
        let url = match (&args.hub, &saved) {
            (Some(hub), _) => hub.clone(),
            (None, Some(saved)) => saved.hub.clone(),
            (None, None) => {
                bail!("which hub? pass --hub URL, set FLISTHUB_HUB, or run flisthub login")
            }
        };
        let url = url.trim_end_matches('/').to_owned();
        if !url.starts_with("http://") && !url.starts_with("https://") {
            bail!("--hub {url:?}: must start with http:// or https://");
        }
        let token = match (&args.token, saved_for(&url)) {
            (Some(token), _) if token == "-" => {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("reading the token from stdin")?;
                line.trim().to_owned()
            }
            (Some(token), _) => token.clone(),
            (None, Some(saved)) => saved.token.clone(),
            (None, None) => {
                bail!("no token for {url}: pass --token, set FLISTHUB_TOKEN, or run flisthub login")
            }
        };
        let repo = args
            .repo
            .clone()
            .or_else(|| saved_for(&url).and_then(|c| c.repo.clone()));
        let http =
            // A hub's API does not redirect; a redirect would carry the token elsewhere.
            chunkstore::http_client(None, Duration::from_secs(10), false)
                .map_err(anyhow::Error::msg)?;
        Ok(HubClient {
            url,
            token,
            repo,
            http,
        })
    }

    /// A request with the token and, when acting as another repository, the cookie.
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(repo) = &self.repo {
            request = request.header(reqwest::header::COOKIE, format!("active-user={repo}"));
        }
        request
    }

    /// The repository the token acts on (0-hub's `GET /api/flist/me`): checks the token.
    pub async fn whoami(&self) -> Result<String> {
        let response = self
            .request(reqwest::Method::GET, "/api/flist/me")
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .with_context(|| format!("reaching {}", self.url))?;
        let me: Envelope<Me> = answer(response).await?;
        Ok(me.payload.username)
    }

    /// What the hub says of its chunk API: the routes of the flists it publishes.
    pub async fn chunk_api(&self) -> Result<ChunkApi> {
        let response = self
            .http
            .get(format!("{}/api/v1/chunks", self.url))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .with_context(|| format!("reaching {}", self.url))?;
        answer(response).await
    }

    /// Asks the hub for a garbage collection (an administrator's token) and its report.
    pub async fn collect(&self, dry_run: bool) -> Result<hub::GcReport> {
        // A run walks the whole store.
        let path = format!("/api/v1/admin/gc?dry-run={dry_run}");
        self.admin_run(&path, Duration::from_secs(6 * 3600)).await
    }

    /// Asks the hub to apply its retention policies (of `only`, or all; an
    /// administrator's token) and its report.
    pub async fn retain(&self, only: Option<&str>, dry_run: bool) -> Result<hub::RetentionReport> {
        let path = with_repository(format!("/api/v1/admin/retention?dry-run={dry_run}"), only);
        self.admin_run(&path, Duration::from_secs(3600)).await
    }

    /// Asks the hub for an integrity scrub (of the flists of `only`, or all; an
    /// administrator's token) and its report.
    pub async fn scrub(&self, only: Option<&str>, deep: bool) -> Result<hub::ScrubReport> {
        // A deep run reads the whole store.
        let path = with_repository(format!("/api/v1/admin/scrub?deep={deep}"), only);
        self.admin_run(&path, Duration::from_secs(6 * 3600)).await
    }

    /// `POST path`, a maintenance run that may take up to `timeout`; its report.
    async fn admin_run<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<T> {
        let response = self
            .request(reqwest::Method::POST, path)
            .timeout(timeout)
            .send()
            .await
            .with_context(|| format!("reaching {}", self.url))?;
        answer(response).await
    }

    /// The hub's chunk API as a store that uploads with this client's token.
    pub fn chunk_store(&self) -> Result<HubStore> {
        let mut options = HubOptions::new(format!("{}/api/v1/chunks", self.url));
        options.token = Some(self.token.clone());
        Ok(HubStore::new(options)?)
    }

    /// Publishes a finished flist as `name` with `upload-flist`.
    pub async fn upload_flist(&self, flist: &Path, name: &str) -> Result<Published> {
        let file = tokio::fs::File::open(flist)
            .await
            .with_context(|| format!("{}", flist.display()))?;
        let length = file.metadata().await?.len();
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        let part =
            reqwest::multipart::Part::stream_with_length(body, length).file_name(name.to_owned());
        let form = reqwest::multipart::Form::new().part("file", part);
        let response = self
            .request(reqwest::Method::POST, "/api/flist/me/upload-flist")
            .header("X-Original-Name", name)
            .multipart(form)
            .send()
            .await
            .with_context(|| format!("publishing on {}", self.url))?;
        let published: Envelope<Published> = answer(response).await?;
        Ok(published.payload)
    }
}

/// The JSON of a successful answer, or the hub's message as the error.
async fn answer<T: serde::de::DeserializeOwned>(mut response: reqwest::Response) -> Result<T> {
    let status = response.status();
    let url = response.url().clone();
    let mut body = Vec::new();
    while let Some(piece) = response
        .chunk()
        .await
        .with_context(|| format!("reading the answer of {url}"))?
    {
        if body.len() + piece.len() > ANSWER_LIMIT {
            bail!("{url}: an answer of more than {ANSWER_LIMIT} bytes");
        }
        body.extend_from_slice(&piece);
    }
    let text = String::from_utf8_lossy(&body);
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| text.trim().chars().take(300).collect());
        bail!("{url}: {status}: {message}");
    }
    serde_json::from_str(&text).with_context(|| format!("an unexpected answer from {url}"))
}

/// The media type of flisthub's own flist format.
const NATIVE_FLIST_TYPE: &str = "application/vnd.flisthub.flist";

/// The SHA-256 in a `Repr-Digest` header (`sha-256=:<base64>:`, RFC 9530), if it has one.
fn sha256_of_repr_digest(header: &str) -> Option<[u8; 32]> {
    use base64::Engine as _;
    header.split(',').find_map(|item| {
        let (algorithm, value) = item.trim().split_once('=')?;
        if !algorithm.trim().eq_ignore_ascii_case("sha-256") {
            return None;
        }
        let encoded = value.trim().strip_prefix(':')?.strip_suffix(':')?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?
            .try_into()
            .ok()
    })
}

/// Checks a download against the hub's `.md5` for it, when the hub has one.
async fn check_md5(http: &reqwest::Client, url: &str, md5: &str) -> Result<()> {
    match http.get(format!("{url}.md5")).send().await {
        Ok(response) if response.status().is_success() => {
            let expected = response.text().await.unwrap_or_default();
            let expected = expected.trim();
            if expected.len() != 32 || expected != md5 {
                bail!("{url}: the download's md5 is {md5}, the hub's .md5 says {expected:?}");
            }
        }
        Ok(response) => tracing::warn!(
            "{url}.md5: {}; the download is not checked against it",
            response.status()
        ),
        Err(e) => tracing::warn!("{url}.md5: {e}; the download is not checked against it"),
    }
    Ok(())
}

/// The largest flist a download may be: the readers' own bound on a database
/// ([`legacy::Limits`]), far above the hub's default upload limit of 1 GiB.
const DOWNLOAD_LIMIT: u64 = 2 << 30;

/// An flist named on the command line.
pub struct LocalFlist {
    pub path: PathBuf,
    /// The argument as given (the URL of a download), for messages.
    pub shown: String,
    /// The hub it was downloaded from (`scheme://host[:port]`), for reading its chunks
    /// through the hub's chunk API when the flist names no store.
    pub hub: Option<String>,
    /// The downloaded copy, removed when this is dropped.
    _download: Option<TempPath>,
}

/// A local file as it is, or a hub URL downloaded to a temporary file and checked against
/// the `Repr-Digest` of the answer, else the hub's `.md5` when the hub has one. flisthub's
/// own format is asked for (`Accept`); a hub answers a 0-flist or fl file it hosts as it is.
pub async fn local_flist(flist: &Path) -> Result<LocalFlist> {
    let Some(url) = flist
        .to_str()
        .filter(|s| s.starts_with("http://") || s.starts_with("https://"))
    else {
        return Ok(LocalFlist {
            path: flist.to_owned(),
            shown: flist.display().to_string(),
            hub: None,
            _download: None,
        });
    };
    let parsed = reqwest::Url::parse(url).with_context(|| format!("{url}: not a URL"))?;
    let hub = parsed.origin().ascii_serialization();
    let http =
        chunkstore::http_client(None, Duration::from_secs(10), true).map_err(anyhow::Error::msg)?;
    // flisthub's own format where the hub has it in another (a 0-flist rendition is what
    // nodes get at `.flist`); 0-hub ignores the header.
    let mut response = http
        .get(url)
        .header(reqwest::header::ACCEPT, NATIVE_FLIST_TYPE)
        .send()
        .await
        .with_context(|| format!("downloading {url}"))?;
    if !response.status().is_success() {
        bail!("downloading {url}: {}", response.status());
    }
    if response
        .content_length()
        .is_some_and(|n| n > DOWNLOAD_LIMIT)
    {
        bail!("{url}: larger than {DOWNLOAD_LIMIT} bytes, more than an flist can be");
    }
    // The digest of the body actually sent (a negotiated download is not what `.md5`
    // describes); older hubs send none, and `.md5` is checked instead.
    let announced = response
        .headers()
        .get("repr-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(sha256_of_repr_digest);
    let mut file = tempfile::Builder::new()
        .prefix("flisthub-")
        .suffix(".flist")
        .tempfile()?;
    let (mut md5, mut sha256) = (Md5::new(), Sha256::new());
    let mut received = 0u64;
    while let Some(piece) = response
        .chunk()
        .await
        .with_context(|| format!("downloading {url}"))?
    {
        received += piece.len() as u64;
        if received > DOWNLOAD_LIMIT {
            bail!("{url}: larger than {DOWNLOAD_LIMIT} bytes, more than an flist can be");
        }
        md5.update(&piece);
        sha256.update(&piece);
        file.write_all(&piece)?;
    }
    file.as_file().sync_all()?;
    if let Some(expected) = announced {
        let got: [u8; 32] = sha256.finalize().into();
        if got != expected {
            bail!(
                "{url}: the download's sha256 is {}, the hub's Repr-Digest says {}",
                hex::encode(got),
                hex::encode(expected)
            );
        }
    } else {
        check_md5(&http, url, &hex::encode(md5.finalize())).await?;
    }
    let path = file.into_temp_path();
    Ok(LocalFlist {
        path: path.to_path_buf(),
        shown: url.to_owned(),
        hub: Some(hub),
        _download: Some(path),
    })
}

/// `path` (which has a query already) limited to the repository `only`, if given.
fn with_repository(mut path: String, only: Option<&str>) -> String {
    if let Some(repository) = only {
        let repository =
            percent_encoding::utf8_percent_encode(repository, percent_encoding::NON_ALPHANUMERIC);
        path.push_str(&format!("&repository={repository}"));
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_digest_headers() {
        let sha = [7u8; 32];
        let header = format!(
            "sha-512=:AAAA:, sha-256=:{}:",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sha)
        );
        assert_eq!(sha256_of_repr_digest(&header), Some(sha));
        assert_eq!(sha256_of_repr_digest("sha-256=:AAAA:"), None, "too short");
        assert_eq!(
            sha256_of_repr_digest("sha-256=abc"),
            None,
            "not a byte sequence"
        );
        assert_eq!(sha256_of_repr_digest("md5=:AAAA:"), None);
    }
}
