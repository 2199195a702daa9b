//! A flisthub hub's chunk API as a store: `https://hub.example.com/api/v1/chunks` (or
//! `http://` on a trusted network).
//!
//! It is how `flisthub push` uploads the chunks a hub lacks, and how readers fetch chunks
//! when an flist's route is a hub rather than the 0-db or Redis behind it. Reads (`missing`,
//! batched `get`) are anonymous; uploads carry a token. Chunks travel in the stored form,
//! framed as `frames` describes; the hub checks every uploaded chunk against its key before
//! it keeps it, and readers check what they get the same way (`Codec::decode`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use reqwest::StatusCode;
use serde::Deserialize;

use crate::codec::EncodedChunk;
use crate::error::{Error, Refusal, Result};
use crate::frames::{FrameReader, put_frame};
use crate::key::ChunkKey;
use crate::store::{BackendStats, ChunkStore};

/// Keys per `missing` request (the hub takes up to 10,000).
const MISSING_BATCH: usize = 4096;
/// Keys per batched read: chunks are up to 4 MiB, and the answer is held whole.
const GET_BATCH: usize = 64;

/// Where a hub's chunk API is, and how to talk to it.
#[derive(Clone, PartialEq, Eq)]
pub struct HubOptions {
    /// The chunk API's URL, without a query: `https://hub.example.com/api/v1/chunks`.
    pub url: String,
    /// The bearer token for uploads.
    pub token: Option<String>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

impl HubOptions {
    pub fn new(url: impl Into<String>) -> HubOptions {
        HubOptions {
            url: url.into().trim_end_matches('/').to_owned(),
            token: None,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// The token is a secret: never shown.
impl std::fmt::Debug for HubOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubOptions")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

pub struct HubStore {
    client: reqwest::Client,
    options: HubOptions,
    routes: Vec<String>,
}

/// The hub's answer to an upload.
#[derive(Debug, Deserialize)]
struct Uploaded {
    #[serde(default)]
    rejected: Vec<Rejected>,
}

#[derive(Debug, Deserialize)]
struct Rejected {
    key: String,
    reason: String,
}

#[derive(Deserialize)]
struct Missing {
    missing: Vec<String>,
}

/// The hub's error answers: `{"status": "error", "message": ...}`.
#[derive(Deserialize)]
struct Failure {
    message: String,
}

impl HubStore {
    pub fn new(options: HubOptions) -> Result<HubStore> {
        let client =
            http_client(Some(options.timeout), options.connect_timeout).map_err(|reason| {
                Error::Store {
                    location: options.url.clone(),
                    reason,
                }
            })?;
        Ok(HubStore {
            routes: vec![options.url.clone()],
            client,
            options,
        })
    }

    /// Records `routes` in the flists packed into this store instead of the chunk API
    /// itself: the public stores the hub names (`flisthub push` asks the hub for them).
    pub fn with_routes(mut self, routes: Vec<String>) -> HubStore {
        self.routes = routes;
        self
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.options.url)
    }

    fn unavailable(&self, reason: impl std::fmt::Display) -> Error {
        Error::Unavailable {
            location: self.options.url.clone(),
            reason: reason.to_string(),
        }
    }

    /// Sends a request; an answer other than success becomes the matching error.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let response = request
            .send()
            .await
            .map_err(|e| self.unavailable(describe(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Failure>(&text)
            .map(|f| f.message)
            .unwrap_or_else(|_| text.trim().chars().take(300).collect());
        let message = format!("{status}: {message}");
        let refused = |kind| Error::Refused {
            location: self.options.url.clone(),
            kind,
            message: message.clone(),
        };
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => refused(Refusal::PermissionDenied),
            StatusCode::INSUFFICIENT_STORAGE => refused(Refusal::Full),
            // The hub is read-only (a mirror).
            StatusCode::BAD_REQUEST if message.contains("readonly mode") => {
                refused(Refusal::ReadOnly)
            }
            s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => {
                self.unavailable(message)
            }
            _ => refused(Refusal::Other),
        })
    }

    fn protocol(&self, message: impl std::fmt::Display) -> Error {
        Error::Protocol {
            location: self.options.url.clone(),
            message: message.to_string(),
        }
    }

    async fn missing(&self, keys: &[ChunkKey]) -> Result<Vec<ChunkKey>> {
        let body =
            serde_json::json!({ "keys": keys.iter().map(ChunkKey::to_hex).collect::<Vec<_>>() });
        let response = self
            .send(self.client.post(self.url("/missing")).json(&body))
            .await?;
        let missing: Missing = response
            .json()
            .await
            .map_err(|e| self.protocol(format!("a `missing` answer: {e}")))?;
        missing
            .missing
            .iter()
            .map(|hex| {
                hex.parse()
                    .map_err(|_| self.protocol(format!("{hex:?} is not a chunk key")))
            })
            .collect()
    }

    async fn get_batch(&self, keys: &[ChunkKey]) -> Result<Vec<Option<Bytes>>> {
        let body =
            serde_json::json!({ "keys": keys.iter().map(ChunkKey::to_hex).collect::<Vec<_>>() });
        let mut response = self
            .send(self.client.post(self.url("/get")).json(&body))
            .await?;
        let mut reader = FrameReader::new();
        let mut found = Vec::with_capacity(keys.len());
        while let Some(piece) = response
            .chunk()
            .await
            .map_err(|e| self.unavailable(describe(&e)))?
        {
            reader.push(&piece);
            while let Some((key, bytes)) = reader.next_frame().map_err(|e| self.protocol(e))? {
                let expected = keys.get(found.len());
                if expected != Some(&key) {
                    return Err(self.protocol(format!(
                        "chunk {key} where {} was expected",
                        expected.map_or("nothing".into(), ChunkKey::to_hex)
                    )));
                }
                found.push((!bytes.is_empty()).then_some(bytes));
            }
        }
        reader.finish().map_err(|e| self.protocol(e))?;
        if found.len() != keys.len() {
            return Err(self.protocol(format!(
                "{} chunks in an answer for {}",
                found.len(),
                keys.len()
            )));
        }
        Ok(found)
    }
}

#[async_trait]
impl ChunkStore for HubStore {
    fn location(&self) -> &str {
        &self.options.url
    }

    fn routes(&self) -> Vec<String> {
        self.routes.clone()
    }

    async fn has_many(&self, keys: &[ChunkKey]) -> Result<Vec<bool>> {
        let mut present = Vec::with_capacity(keys.len());
        for batch in keys.chunks(MISSING_BATCH) {
            let missing: std::collections::HashSet<ChunkKey> =
                self.missing(batch).await?.into_iter().collect();
            present.extend(batch.iter().map(|k| !missing.contains(k)));
        }
        Ok(present)
    }

    async fn put_many(&self, chunks: &[EncodedChunk]) -> Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let Some(token) = &self.options.token else {
            return Err(Error::Refused {
                location: self.options.url.clone(),
                kind: Refusal::PermissionDenied,
                message: "uploading chunks needs a token".into(),
            });
        };
        let mut body = BytesMut::new();
        for chunk in chunks {
            put_frame(&mut body, &chunk.key(), chunk.bytes());
        }
        let request = self
            .client
            .post(self.options.url.clone())
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, crate::frames::MEDIA_TYPE)
            .body(body.freeze());
        let answer: Uploaded = self
            .send(request)
            .await?
            .json()
            .await
            .map_err(|e| self.protocol(format!("an upload answer: {e}")))?;
        match answer.rejected.first() {
            None => Ok(()),
            Some(first) => Err(Error::Refused {
                location: self.options.url.clone(),
                kind: Refusal::Other,
                message: format!(
                    "{} chunks refused, chunk {} first: {}",
                    answer.rejected.len(),
                    first.key,
                    first.reason
                ),
            }),
        }
    }

    async fn get_many(&self, keys: &[ChunkKey]) -> Result<Vec<Option<Bytes>>> {
        let mut found = Vec::with_capacity(keys.len());
        for batch in keys.chunks(GET_BATCH) {
            found.extend(self.get_batch(batch).await?);
        }
        Ok(found)
    }

    async fn stats(&self) -> Result<Vec<BackendStats>> {
        Ok(vec![BackendStats {
            location: self.options.url.clone(),
            keys: None,
            bytes: None,
        }])
    }
}

/// A reqwest error with its causes (its own message alone is "error sending request").
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// An HTTP client for talking to hubs: TLS with the machine's trusted roots, `timeout` per
/// request (none for transfers of unknown length). Also for the requests of a hub client
/// that are not chunks (publishing an flist, downloading one).
pub fn http_client(
    timeout: Option<Duration>,
    connect_timeout: Duration,
) -> std::result::Result<reqwest::Client, String> {
    let tls = tls_config().map_err(|e| format!("TLS: {e}"))?;
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(connect_timeout)
        .user_agent(concat!("flisthub/", env!("CARGO_PKG_VERSION")));
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    builder
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))
}

/// TLS with the machine's trusted roots, on the same crypto provider (ring) as `rediss://`.
fn tls_config() -> std::result::Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A certificate the system store holds but rustls cannot use is simply not a root.
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
