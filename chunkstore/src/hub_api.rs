//! A flisthub hub's chunk API as a store: `https://hub.example.com/api/v1/chunks` (or
//! `http://` on a trusted network).
//!
//! It is how `flisthub push` uploads the chunks a hub lacks, and how readers fetch chunks
//! when an flist's route is a hub rather than the 0-db or Redis behind it. Reads (`missing`,
//! batched `get`) are anonymous; uploads carry a token. Chunks travel in the stored form,
//! framed as `frames` describes; the hub checks every uploaded chunk against its key before
//! it keeps it, and readers check what they get the same way (`Codec::decode`).
//!
//! Blocks (the second key space, see `crate::blocks`) are read one per request from the
//! hub's `/api/v1/blocks/<id in hex>` beside the chunk API (`HEAD` to ask whether the hub
//! has one). A hub takes blocks only through its 0-db gateway, where clients such as
//! `rfs pack` and `zflist` send them, so storing blocks here is refused.

#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt, stream};
use reqwest::StatusCode;
use serde::Deserialize;

use crate::blocks::{BlockId, MAX_BLOCK_SIZE};
use crate::codec::EncodedChunk;
use crate::error::{Error, Refusal, Result};
use crate::frames::{FrameReader, put_frame};
use crate::key::ChunkKey;
use crate::store::{BackendStats, ChunkStore};

/// Keys per `missing` request (the hub takes up to 10,000).
const MISSING_BATCH: usize = 4096;
/// Keys per batched read: chunks are up to 4 MiB, and the answer is held whole.
const GET_BATCH: usize = 64;
/// What one upload request carries at most: every hub takes 16 MiB and 4,096 chunks.
const UPLOAD_BYTES: usize = 16 << 20;
const UPLOAD_CHUNKS: usize = 4096;
/// The most a JSON answer or an error message may be: more is a hub misbehaving.
const ANSWER_LIMIT: usize = 4 << 20;
/// Tries of a request the hub answered "later" (429, 503) or did not answer.
const ATTEMPTS: u32 = 5;
/// Block requests in flight at once (one block per request).
const BLOCK_REQUESTS: usize = 8;

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
    /// `.../api/v1/blocks`, beside the chunk API; none for a chunk API URL that does not
    /// end in `/chunks`.
    blocks_url: Option<String>,
}

/// The hub's answer to an upload.
#[derive(Debug, Deserialize)]
struct Uploaded {
    #[serde(default)]
    stored: Vec<String>,
    #[serde(default)]
    present: Vec<String>,
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
        let client = http_client(Some(options.timeout), options.connect_timeout, false).map_err(
            |reason| Error::Store {
                location: options.url.clone(),
                reason,
            },
        )?;
        let blocks_url = options
            .url
            .strip_suffix("/chunks")
            .map(|base| format!("{base}/blocks"));
        Ok(HubStore {
            routes: vec![options.url.clone()],
            client,
            options,
            blocks_url,
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

    /// Sends a request; an answer other than success becomes the matching error. A hub
    /// that asks to come back later (429, 503, with its `Retry-After`) or does not answer
    /// is tried again, a few times, backing off.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        self.send_answering(request, false).await
    }

    /// As [`HubStore::send`], with 404 an answer too when `missing_ok` (the caller looks at
    /// the status).
    async fn send_answering(
        &self,
        request: reqwest::RequestBuilder,
        missing_ok: bool,
    ) -> Result<reqwest::Response> {
        let mut pause = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            // The last try (or a request that cannot be copied) sends the original.
            let copy = (attempt < ATTEMPTS).then(|| request.try_clone()).flatten();
            let Some(copy) = copy else {
                return self
                    .send_once(request, missing_ok)
                    .await
                    .map_err(Error::from);
            };
            match self.send_once(copy, missing_ok).await {
                Err(Retry {
                    after, retry: true, ..
                }) => {
                    tokio::time::sleep(after.unwrap_or(pause).min(Duration::from_secs(30))).await;
                    pause *= 2;
                    attempt += 1;
                }
                other => return other.map_err(Error::from),
            }
        }
    }

    async fn send_once(
        &self,
        request: reqwest::RequestBuilder,
        missing_ok: bool,
    ) -> std::result::Result<reqwest::Response, Retry> {
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Err(Retry::now(self.unavailable(describe(&e)))),
        };
        let status = response.status();
        if status.is_success() || (missing_ok && status == StatusCode::NOT_FOUND) {
            return Ok(response);
        }
        let after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .map(Duration::from_secs);
        let text = read_capped(response, ANSWER_LIMIT)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
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
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Retry::never(refused(Refusal::PermissionDenied))
            }
            StatusCode::INSUFFICIENT_STORAGE => Retry::never(refused(Refusal::Full)),
            // The hub is read-only (a mirror).
            StatusCode::BAD_REQUEST if message.contains("readonly mode") => {
                Retry::never(refused(Refusal::ReadOnly))
            }
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => Retry {
                error: self.unavailable(message),
                after,
                retry: true,
            },
            s if s == StatusCode::REQUEST_TIMEOUT || s.is_server_error() => {
                Retry::never(self.unavailable(message))
            }
            _ => Retry::never(refused(Refusal::Other)),
        })
    }

    /// A JSON answer, read whole up to [`ANSWER_LIMIT`].
    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        response: reqwest::Response,
        what: &str,
    ) -> Result<T> {
        let body = read_capped(response, ANSWER_LIMIT)
            .await
            .map_err(|e| self.protocol(format!("{what}: {e}")))?;
        serde_json::from_slice(&body).map_err(|e| self.protocol(format!("{what}: {e}")))
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
        let missing: Missing = self.json(response, "a `missing` answer").await?;
        missing
            .missing
            .iter()
            .map(|hex| {
                hex.parse()
                    .map_err(|_| self.protocol(format!("{hex:?} is not a chunk key")))
            })
            .collect()
    }

    /// One upload request; every chunk sent must come back stored or present.
    async fn upload(&self, chunks: &[EncodedChunk]) -> Result<()> {
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
            .json(self.send(request).await?, "an upload answer")
            .await?;
        if let Some(first) = answer.rejected.first() {
            return Err(Error::Refused {
                location: self.options.url.clone(),
                kind: Refusal::Other,
                message: format!(
                    "{} chunks refused, chunk {} first: {}",
                    answer.rejected.len(),
                    first.key,
                    first.reason
                ),
            });
        }
        let kept: std::collections::HashSet<&str> = answer
            .stored
            .iter()
            .chain(&answer.present)
            .map(String::as_str)
            .collect();
        match chunks
            .iter()
            .find(|c| !kept.contains(c.key().to_hex().as_str()))
        {
            None => Ok(()),
            Some(lost) => Err(self.protocol(format!(
                "chunk {} was sent, and is neither stored nor present",
                lost.key()
            ))),
        }
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

impl HubStore {
    fn block_url(&self, id: &BlockId) -> Result<String> {
        match &self.blocks_url {
            Some(base) => Ok(format!("{base}/{id}")),
            None => Err(Error::Store {
                location: self.options.url.clone(),
                reason: "no block API known: a hub's chunk API URL ends in /api/v1/chunks, \
                         its blocks are beside it at /api/v1/blocks"
                    .into(),
            }),
        }
    }

    /// Whether the hub has a block (`HEAD`).
    async fn has_block(&self, id: BlockId) -> Result<bool> {
        let request = self.client.head(self.block_url(&id)?);
        let response = self.send_answering(request, true).await?;
        Ok(response.status() != StatusCode::NOT_FOUND)
    }

    /// A block, read up to [`MAX_BLOCK_SIZE`]: a longer answer is refused as soon as its
    /// length is announced or its bytes pass the limit.
    async fn get_block(&self, id: BlockId) -> Result<Option<Bytes>> {
        let request = self.client.get(self.block_url(&id)?);
        let mut response = self.send_answering(request, true).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let too_large = || Error::BlockTooLarge {
            location: self.options.url.clone(),
            id,
        };
        let announced = response.content_length().unwrap_or(0);
        if announced > MAX_BLOCK_SIZE as u64 {
            return Err(too_large());
        }
        let mut block = BytesMut::with_capacity(announced as usize);
        while let Some(piece) = response
            .chunk()
            .await
            .map_err(|e| self.unavailable(describe(&e)))?
        {
            if block.len() + piece.len() > MAX_BLOCK_SIZE {
                return Err(too_large());
            }
            block.extend_from_slice(&piece);
        }
        Ok(Some(block.freeze()))
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
        let mut start = 0;
        while start < chunks.len() {
            // As many as fit in one request, and at least one.
            let mut end = start + 1;
            let mut bytes = chunks[start].len();
            while end < chunks.len()
                && end - start < UPLOAD_CHUNKS
                && bytes + chunks[end].len() <= UPLOAD_BYTES
            {
                bytes += chunks[end].len();
                end += 1;
            }
            self.upload(&chunks[start..end]).await?;
            start = end;
        }
        Ok(())
    }

    async fn get_many(&self, keys: &[ChunkKey]) -> Result<Vec<Option<Bytes>>> {
        let mut found = Vec::with_capacity(keys.len());
        for batch in keys.chunks(GET_BATCH) {
            found.extend(self.get_batch(batch).await?);
        }
        Ok(found)
    }

    async fn has_blocks(&self, ids: &[BlockId]) -> Result<Vec<bool>> {
        // Owned ids: a stream over borrowed ones trips the compiler's Send inference.
        stream::iter(ids.to_vec())
            .map(|id| self.has_block(id))
            .buffered(BLOCK_REQUESTS)
            .try_collect()
            .await
    }

    /// Refused: a hub takes blocks through its 0-db gateway only (see the module
    /// documentation).
    async fn put_blocks(&self, blocks: &[(BlockId, Bytes)]) -> Result<()> {
        if blocks.is_empty() {
            return Ok(());
        }
        Err(Error::Store {
            location: self.options.url.clone(),
            reason: "a hub takes blocks through its 0-db gateway ([gateway] listen), not over \
                     HTTP"
                .into(),
        })
    }

    async fn get_blocks(&self, ids: &[BlockId]) -> Result<Vec<Option<Bytes>>> {
        stream::iter(ids.to_vec())
            .map(|id| self.get_block(id))
            .buffered(BLOCK_REQUESTS)
            .try_collect()
            .await
    }

    async fn stats(&self) -> Result<Vec<BackendStats>> {
        Ok(vec![BackendStats {
            location: self.options.url.clone(),
            keys: None,
            blocks: None,
            bytes: None,
        }])
    }
}

/// An error, and whether the request is worth trying again (and when).
struct Retry {
    error: Error,
    after: Option<Duration>,
    retry: bool,
}

impl Retry {
    /// Worth trying again: the hub did not answer.
    fn now(error: Error) -> Retry {
        Retry {
            error,
            after: None,
            retry: true,
        }
    }

    fn never(error: Error) -> Retry {
        Retry {
            error,
            after: None,
            retry: false,
        }
    }
}

impl From<Retry> for Error {
    fn from(r: Retry) -> Error {
        r.error
    }
}

/// A body read whole, refused past `limit` bytes.
async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> std::result::Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(piece) = response.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + piece.len() > limit {
            return Err(format!("an answer of more than {limit} bytes"));
        }
        body.extend_from_slice(&piece);
    }
    Ok(body)
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
    follow_redirects: bool,
) -> std::result::Result<reqwest::Client, String> {
    // A chunk store never redirects: a route that does is sending its readers (and an
    // uploader's token) somewhere else.
    let redirects = if follow_redirects {
        reqwest::redirect::Policy::limited(5)
    } else {
        reqwest::redirect::Policy::none()
    };
    let builder = reqwest::Client::builder();
    // Without TLS, a client for http:// hubs only (https:// URLs are refused when parsed).
    #[cfg(feature = "tls")]
    let builder = builder.use_preconfigured_tls(tls_config().map_err(|e| format!("TLS: {e}"))?);
    let mut builder = builder
        .redirect(redirects)
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
#[cfg(feature = "tls")]
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
