//! A registry's HTTP API (the OCI distribution protocol), as much of it as a pull takes:
//! manifests by tag or digest, blobs, and the registry's authentication (a bearer token
//! from the service its challenge names, or basic credentials).
//!
//! Every connection follows the pull's egress rule (`egress`, which says why this client is
//! ours and not `oci-client`'s); every body is bounded before it is read; and an answer
//! that is not a success becomes its status and a fixed phrase: what a registry, or whatever
//! answers in its place, sends is never shown to whoever asked for the image (the hub's log
//! has the start of it at debug level).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use oci_spec::distribution::Reference;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode, Url};
use serde::Deserialize;
use sha2::Digest as _;

use super::digest::Verifier;

use super::egress::{Egress, Guard, Refused, refusal};
use super::{Credentials, ImageFailure};
use crate::error::{Error, Result};

/// The manifest kinds asked for: OCI and Docker schema 2, images and indexes.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";
/// The largest manifest read (containerd's limit too).
const MANIFEST_LIMIT: u64 = 4 << 20;
/// The largest token service answer read (tokens are a few KiB).
const TOKEN_LIMIT: u64 = 256 << 10;
/// How much of a refusal's body the log gets.
const LOGGED_BODY: u64 = 1 << 10;

/// The HTTP API of one repository of one registry.
pub(crate) struct RegistryClient {
    http: reqwest::Client,
    guard: Guard,
    /// `http[s]://host[:port]/v2/<repository>/`
    base: Url,
    /// The image as named, completed: what messages start with.
    image: String,
    /// The registry as named: what refusals name.
    registry: String,
    repository: String,
    credentials: Option<Credentials>,
    /// What the registry's last challenge asked for, sent with every request after it.
    authorization: Mutex<Option<Authorization>>,
}

#[derive(Clone)]
enum Authorization {
    /// The credentials, as they are.
    Basic,
    /// A token from the registry's token service.
    Bearer(HeaderValue),
}

impl RegistryClient {
    pub(crate) fn new(
        reference: &Reference,
        credentials: Option<&Credentials>,
        plain_http: bool,
        timeout: Duration,
        egress: Egress,
    ) -> Result<RegistryClient> {
        let scheme = if plain_http { "http" } else { "https" };
        let base = Url::parse(&format!(
            "{scheme}://{}/v2/{}/",
            reference.resolve_registry(),
            reference.repository()
        ))
        .map_err(|e| {
            Error::image(
                ImageFailure::Reference,
                format!("{}: not a registry address: {e}", reference.registry()),
            )
        })?;
        let guard = Guard::new(egress, &base);
        let builder = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config()?)
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(timeout)
            .referer(false)
            .user_agent(concat!("flisthub/", env!("CARGO_PKG_VERSION")));
        let http = guard
            .apply(builder)
            .build()
            .map_err(|e| Error::io("the registry client", std::io::Error::other(e)))?;
        Ok(RegistryClient {
            http,
            guard,
            base,
            image: reference.whole(),
            registry: reference.registry().to_owned(),
            repository: reference.repository().to_owned(),
            credentials: credentials.cloned(),
            authorization: Mutex::default(),
        })
    }

    /// The manifest `tag_or_digest` (bounded) and its digest, checked when it is the one
    /// asked for.
    pub(crate) async fn manifest(&self, tag_or_digest: &str) -> Result<(Vec<u8>, String)> {
        let url = self.url(&format!("manifests/{tag_or_digest}"))?;
        let response = self.get(url, Some(MANIFEST_TYPES)).await?;
        let body = self.read(response, MANIFEST_LIMIT, "the manifest").await?;
        let digest = if tag_or_digest.contains(':') {
            let mut check = self.verifier(tag_or_digest)?;
            check.update(&body);
            if !check.matches() {
                return Err(self.invalid("the manifest does not match its digest"));
            }
            tag_or_digest.to_owned()
        } else {
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(&body)))
        };
        Ok((body, digest))
    }

    /// The blob `digest`, its body not read yet (a registry may send it from elsewhere).
    pub(crate) async fn blob(&self, digest: &str) -> Result<Response> {
        self.get(self.url(&format!("blobs/{digest}"))?, None).await
    }

    /// A whole blob of at most `limit` bytes, checked against its digest.
    pub(crate) async fn small_blob(&self, digest: &str, limit: u64, what: &str) -> Result<Vec<u8>> {
        let mut check = self.verifier(digest)?;
        let body = self.read(self.blob(digest).await?, limit, what).await?;
        check.update(&body);
        if !check.matches() {
            return Err(self.invalid(&format!("{what} does not match its digest {digest}")));
        }
        Ok(body)
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.base.join(path).map_err(|e| {
            Error::image(
                ImageFailure::Reference,
                format!("{}: {path}: {e}", self.image),
            )
        })
    }

    /// GETs `url`, answering one authentication challenge: the success, or the error its
    /// status means.
    async fn get(&self, url: Url, accept: Option<&str>) -> Result<Response> {
        self.guard.check(&url).map_err(|r| self.refused(&r))?;
        let mut challenged = false;
        loop {
            let mut request = self.http.get(url.clone());
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            request = match (self.authorization(), &self.credentials) {
                (Some(Authorization::Bearer(token)), _) => request.header(AUTHORIZATION, token),
                (Some(Authorization::Basic), Some(c)) => {
                    request.basic_auth(&c.username, Some(&c.password))
                }
                _ => request,
            };
            let response = request.send().await.map_err(|e| self.transport(&e))?;
            if response.status() == StatusCode::UNAUTHORIZED && !challenged {
                challenged = true;
                if let Some(authorization) = self.answer(&response).await? {
                    *self.authorization.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(authorization);
                    continue;
                }
            }
            return self.success(response).await;
        }
    }

    fn authorization(&self) -> Option<Authorization> {
        self.authorization
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// What answers the challenge of a 401: a token from the service it names (with the
    /// credentials, if any), or the credentials themselves; `None` when nothing can.
    async fn answer(&self, response: &Response) -> Result<Option<Authorization>> {
        let challenges: Vec<Challenge> = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .filter_map(Challenge::parse)
            .collect();
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            return Ok(Some(Authorization::Bearer(self.token(bearer).await?)));
        }
        let basic = challenges.iter().any(|c| c.scheme == "basic");
        Ok((basic && self.credentials.is_some()).then_some(Authorization::Basic))
    }

    /// A bearer token for pulling from this repository, from the service `challenge` names.
    async fn token(&self, challenge: &Challenge) -> Result<HeaderValue> {
        let mut realm = challenge
            .param("realm")
            .and_then(|r| Url::parse(r).ok())
            // Credentials go to the token service: never in the clear from an HTTPS registry.
            .filter(|r| {
                r.scheme() == "https" || (r.scheme() == "http" && self.base.scheme() == "http")
            })
            .ok_or_else(|| self.invalid("the registry's authentication challenge is not usable"))?;
        realm
            .query_pairs_mut()
            .append_pair("scope", &format!("repository:{}:pull", self.repository));
        if let Some(service) = challenge.param("service") {
            realm.query_pairs_mut().append_pair("service", service);
        }
        self.guard.check(&realm).map_err(|r| self.refused(&r))?;
        let mut request = self.http.get(realm);
        if let Some(credentials) = &self.credentials {
            request = request.basic_auth(&credentials.username, Some(&credentials.password));
        }
        let response = request.send().await.map_err(|e| self.transport(&e))?;
        let response = self.success(response).await?;
        let body = self.read(response, TOKEN_LIMIT, "the token").await?;
        #[derive(Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let token = serde_json::from_slice::<Token>(&body)
            .ok()
            .and_then(|t| t.token.or(t.access_token))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| self.invalid("the token service's answer holds no token"))?;
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| self.invalid("the token service's answer holds no token"))?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// `response` if it is a success; else the error its status means (its body, the
    /// start of it, to the log).
    async fn success(&self, response: Response) -> Result<Response> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let url = response.url().clone();
        let start = read_start(response).await;
        tracing::debug!(%url, %status, body = %String::from_utf8_lossy(&start), "registry refusal");
        let (failure, why) = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => (
                ImageFailure::Denied,
                "the registry refused the credentials (or wants some)".to_owned(),
            ),
            StatusCode::NOT_FOUND => (ImageFailure::NotFound, "no such image or tag".to_owned()),
            _ if status.is_redirection() => (
                ImageFailure::Unreachable,
                format!("the registry answered {status} without a usable location"),
            ),
            _ => (
                ImageFailure::Unreachable,
                format!("the registry answered {status}"),
            ),
        };
        Err(Error::image(failure, format!("{}: {why}", self.image)))
    }

    /// Reads a whole body of at most `limit` bytes.
    async fn read(&self, mut response: Response, limit: u64, what: &str) -> Result<Vec<u8>> {
        let too_large = || self.invalid(&format!("{what} is larger than {limit} bytes"));
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(piece) = response.chunk().await.map_err(|e| self.transport(&e))? {
            if (body.len() + piece.len()) as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&piece);
        }
        Ok(body)
    }

    /// A check of `digest`, which a manifest (or the image's reference) names.
    pub(crate) fn verifier(&self, digest: &str) -> Result<Verifier> {
        Verifier::new(digest).ok_or_else(|| {
            self.invalid("the manifest names a digest this hub does not check (sha256, sha512)")
        })
    }

    pub(crate) fn invalid(&self, why: &str) -> Error {
        Error::image(ImageFailure::Invalid, format!("{}: {why}", self.image))
    }

    fn refused(&self, refused: &Refused) -> Error {
        tracing::debug!(registry = %self.registry, %refused, "egress refused");
        let why = match refused {
            Refused::Address { host } if self.base.host_str() == Some(host.as_str()) => {
                "it is not on a public address, and this hub reaches only those \
                 (images.allowed-registries, images.allow-private-networks)"
            }
            Refused::Address { .. } => {
                "it sends the hub to an address that is not public, and this hub reaches \
                 only those (images.allow-private-networks)"
            }
            Refused::Redirect { .. } => {
                "it redirects a request that is not for a blob to another host, which \
                 this hub does not follow"
            }
        };
        Error::image(
            ImageFailure::Denied,
            format!(
                "{}: refused: the registry {}: {why}",
                self.image, self.registry
            ),
        )
    }

    /// A failed request as the caller sees it: a refusal of the egress rule, or a fixed
    /// phrase for what went wrong (the details go to the log).
    pub(crate) fn transport(&self, e: &reqwest::Error) -> Error {
        if let Some(refused) = refusal(e) {
            return self.refused(refused);
        }
        tracing::debug!(registry = %self.registry, error = %describe(e), "registry request failed");
        Error::image(
            ImageFailure::Unreachable,
            format!("{}: {}", self.image, transport_phrase(e)),
        )
    }
}

/// What went wrong with a request, in words that hold nothing the remote end chose.
pub(crate) fn transport_phrase(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "the registry does not answer (timed out)"
    } else if e.is_connect() {
        "the registry does not answer (no connection)"
    } else if e.is_redirect() {
        "the registry redirects too many times"
    } else {
        "the registry does not answer (the connection failed)"
    }
}

/// A reqwest error with its causes, for the log.
fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The start of a body, for the log; nothing if it does not come.
async fn read_start(mut response: Response) -> Vec<u8> {
    let mut start = Vec::new();
    while (start.len() as u64) < LOGGED_BODY {
        match response.chunk().await {
            Ok(Some(piece)) => start.extend_from_slice(&piece),
            _ => break,
        }
    }
    start.truncate(LOGGED_BODY as usize);
    start
}

/// One challenge of a `WWW-Authenticate` header: `Bearer realm="...",service="..."`.
struct Challenge {
    /// Lowercase.
    scheme: String,
    params: Vec<(String, String)>,
}

impl Challenge {
    /// The first challenge of `header` (registries send one per header).
    fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, mut rest) = header.split_once(' ').unwrap_or((header, ""));
        let mut params = Vec::new();
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            let Some((key, after)) = rest.split_once('=') else {
                break;
            };
            let (value, after) = match after.strip_prefix('"') {
                Some(quoted) => {
                    let mut value = String::new();
                    let mut chars = quoted.char_indices();
                    let mut end = None;
                    while let Some((i, c)) = chars.next() {
                        match c {
                            '\\' => value.extend(chars.next().map(|(_, c)| c)),
                            '"' => {
                                end = Some(i + 1);
                                break;
                            }
                            c => value.push(c),
                        }
                    }
                    let Some(end) = end else {
                        break;
                    };
                    (value, &quoted[end..])
                }
                None => {
                    let end = after.find(',').unwrap_or(after.len());
                    (after[..end].trim().to_owned(), &after[end..])
                }
            };
            params.push((key.trim().to_ascii_lowercase(), value));
            rest = after;
        }
        Some(Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        })
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// TLS with the machine's trusted roots, on ring (the crypto provider of the whole
/// process), whether or not the process installed it as its default.
fn tls_config() -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A certificate the system store holds but rustls cannot use is simply not a root.
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::io("the registry client's TLS", std::io::Error::other(e)))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("service"), Some("registry.docker.io"));
        assert_eq!(c.param("scope"), Some("repository:library/alpine:pull"));
        let c = Challenge::parse(r#"Basic realm="a \"quoted\" realm", charset=UTF-8"#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.param("realm"), Some(r#"a "quoted" realm"#));
        assert_eq!(c.param("charset"), Some("UTF-8"));
        let c = Challenge::parse(r#"Bearer realm="unterminated"#).unwrap();
        assert_eq!(c.param("realm"), None);
    }
}
