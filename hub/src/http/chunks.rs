//! `/api/v1/chunks`: the chunk API. Clients that build flists themselves ask which chunks
//! the hub lacks, upload only those, then publish the flist with `upload-flist`; readers
//! without access to the store fetch chunks here. Chunks travel in their stored form,
//! framed as `chunkstore::frames` describes.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use chunkstore::ChunkKey;
use chunkstore::frames::{FrameReader, MAX_FRAME_PAYLOAD, MEDIA_TYPE, frame_header};
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::Authenticated;
use super::json::{failure, raw};
use super::pace::Pace;
use crate::chunks::{GET_LIMIT, MISSING_LIMIT, UPLOAD_LIMIT, UploadReport};
use crate::error::{Error, Result};
use crate::hub::Hub;

/// Chunks checked and stored together: what one store round trip carries.
const STORE_BATCH_BYTES: usize = 8 << 20;
const STORE_BATCH_CHUNKS: usize = 256;
/// Chunks read from the store together when answering a batched read.
const READ_BATCH: usize = 16;

#[derive(Serialize)]
struct Info<'a> {
    /// Where nodes read the chunks of the flists this hub publishes.
    routes: &'a [String],
    missing_limit: usize,
    get_limit: usize,
    upload_limit: usize,
    max_chunk: usize,
    upload_body: u64,
    media_type: &'static str,
}

/// `GET /api/v1/chunks`: the routes to record in flists for this hub, and the limits of
/// the chunk API.
pub async fn info(State(hub): State<Arc<Hub>>) -> Response {
    raw(&Info {
        routes: &hub.catalogue().chunk_location().routes,
        missing_limit: MISSING_LIMIT,
        get_limit: GET_LIMIT,
        upload_limit: UPLOAD_LIMIT,
        max_chunk: MAX_FRAME_PAYLOAD,
        upload_body: hub.config().chunks.upload_body,
        media_type: MEDIA_TYPE,
    })
}

#[derive(Deserialize)]
pub struct Keys {
    keys: Vec<String>,
}

fn parse_keys(keys: &[String], limit: usize) -> Result<Vec<ChunkKey>> {
    if keys.len() > limit {
        return Err(Error::TooLarge(format!(
            "{} keys; one request takes at most {limit}",
            keys.len()
        )));
    }
    keys.iter().map(|hex| parse_key(hex)).collect()
}

fn parse_key(hex: &str) -> Result<ChunkKey> {
    hex.parse().map_err(|_| {
        Error::BadRequest(format!(
            "{} is not a chunk key (64 hex digits)",
            crate::names::quote(hex)
        ))
    })
}

/// `POST /api/v1/chunks/missing` `{"keys": [...]}`: `{"missing": [...]}`, the keys the store
/// lacks, in the order asked.
pub async fn missing(State(hub): State<Arc<Hub>>, body: axum::Json<Keys>) -> Result<Response> {
    let keys = parse_keys(&body.keys, MISSING_LIMIT)?;
    let missing = hub.chunks().missing_chunks(&keys).await?;
    Ok(raw(&serde_json::json!({
        "missing": missing.iter().map(ChunkKey::to_hex).collect::<Vec<_>>()
    })))
}

/// `POST /api/v1/chunks`: a framed body of chunks. Each is checked against its key before
/// it is stored; the answer says which were stored, already present, or rejected.
pub async fn upload(
    State(hub): State<Arc<Hub>>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    if hub.config().server.readonly {
        return Err(Error::Readonly);
    }
    let _slot = hub.limits().chunk_upload_slot(&caller.user)?;
    let framed = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(MEDIA_TYPE) || v.starts_with("application/octet-stream"));
    if !framed {
        return Err(Error::BadRequest(format!(
            "send the chunks as {MEDIA_TYPE} (key, length, stored chunk; see the OpenAPI description)"
        )));
    }
    let pace = Pace::new(&hub.config().limits);
    let limit = hub.config().chunks.upload_body;
    let mut report = UploadReport::default();
    let outcome = receive(&hub, &caller, body, pace, limit, &mut report).await;
    metrics::counter!("flisthub_chunk_uploads_total").increment(1);
    Ok(match outcome {
        Ok(()) => raw(&report),
        // What was stored before the problem stays stored (it was checked), and the
        // answer says so.
        Err(e) => {
            let (status, message) = super::response::public(&e);
            failure(status, &message, Some(serde_json::json!(report)))
        }
    })
}

async fn receive(
    hub: &Arc<Hub>,
    caller: &crate::auth::Caller,
    body: Body,
    mut pace: Pace,
    limit: u64,
    report: &mut UploadReport,
) -> Result<()> {
    let mut stream = body.into_data_stream();
    let mut reader = FrameReader::new();
    let mut batch = Vec::new();
    let mut batch_bytes = 0;
    let mut received = 0u64;
    let mut frames = 0usize;
    loop {
        let piece = match pace.wait(stream.next()).await? {
            None => break,
            Some(Err(e)) => return Err(Error::BadRequest(format!("reading the body: {e}"))),
            Some(Ok(piece)) => piece,
        };
        pace.received(piece.len())?;
        received += piece.len() as u64;
        if received > limit {
            return Err(Error::TooLarge(format!(
                "the upload is larger than {limit} bytes (chunks.upload-body); send it in several requests"
            )));
        }
        reader.push(&piece);
        loop {
            let frame = match reader.next_frame() {
                Ok(frame) => frame,
                Err(e) => {
                    // The whole frames before it still count.
                    hub.chunks()
                        .store_chunks(caller, std::mem::take(&mut batch), report)
                        .await?;
                    return Err(Error::BadRequest(e.to_string()));
                }
            };
            let Some((key, bytes)) = frame else { break };
            frames += 1;
            if frames > UPLOAD_LIMIT {
                hub.chunks()
                    .store_chunks(caller, std::mem::take(&mut batch), report)
                    .await?;
                return Err(Error::TooLarge(format!(
                    "more than {UPLOAD_LIMIT} chunks in one request; send them in several"
                )));
            }
            batch_bytes += bytes.len();
            batch.push((key, bytes));
            if batch_bytes >= STORE_BATCH_BYTES || batch.len() >= STORE_BATCH_CHUNKS {
                hub.chunks()
                    .store_chunks(caller, std::mem::take(&mut batch), report)
                    .await?;
                batch_bytes = 0;
            }
        }
    }
    hub.chunks().store_chunks(caller, batch, report).await?;
    reader
        .finish()
        .map_err(|e| Error::BadRequest(e.to_string()))
}

/// `GET /api/v1/chunks/<key>`: one stored chunk, checked against its key. Chunks never
/// change, so caches may keep them for ever.
pub async fn get_one(State(hub): State<Arc<Hub>>, Path(key): Path<String>) -> Result<Response> {
    let key = parse_key(&key)?;
    let _slot = hub.limits().chunk_read_slot().await?;
    let Some(bytes) = hub.chunks().read_chunks(&[key]).await?.pop().flatten() else {
        return Err(Error::NotFound(format!("chunk {key} is not in the store")));
    };
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
        .header(header::ETAG, format!("\"{key}\""))
        .body(Body::from(bytes))
        .unwrap_or_default())
}

/// `GET /api/v1/blocks/<id>`: a block of a hosted 0-flist or fl file (its id in hex: 16
/// bytes, or 32), as stored: what the gateway's `GET` answers, for readers that speak HTTP.
/// Blocks never change: caches may keep them for ever.
pub async fn get_block(State(hub): State<Arc<Hub>>, Path(id): Path<String>) -> Result<Response> {
    let id = hex::decode(&id)
        .ok()
        .and_then(|bytes| chunkstore::BlockId::from_slice(&bytes))
        .ok_or_else(|| {
            Error::BadRequest("a block id is 32 or 64 hex digits (16 or 32 bytes)".into())
        })?;
    let _slot = hub.limits().chunk_read_slot().await?;
    let Some(bytes) = hub.renditions().served_blocks(&[id]).await?.pop().flatten() else {
        return Err(Error::NotFound(format!("block {id} is not in the store")));
    };
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
        .header(header::ETAG, format!("\"{id}\""))
        .body(Body::from(bytes))
        .unwrap_or_default())
}

/// `POST /api/v1/chunks/get` `{"keys": [...]}`: the chunks in the order asked, framed; a
/// frame of length 0 for a chunk the store lacks. Streamed as the store answers, a few
/// batches in flight in the whole hub (`chunks.concurrent-reads`).
pub async fn get_many(State(hub): State<Arc<Hub>>, body: axum::Json<Keys>) -> Result<Response> {
    let keys = parse_keys(&body.keys, GET_LIMIT)?;
    // The first batch is read before answering, so that a store that is down is a 503.
    let batches: Vec<Vec<ChunkKey>> = keys.chunks(READ_BATCH).map(<[ChunkKey]>::to_vec).collect();
    let mut batches = batches.into_iter();
    let first = match batches.next() {
        Some(batch) => read_framed(&hub, batch).await?,
        None => Vec::new(),
    };
    let later = futures_util::stream::iter(batches)
        .then(move |batch| {
            let hub = Arc::clone(&hub);
            async move {
                read_framed(&hub, batch).await.map_err(|e| {
                    tracing::warn!(error = %e, "a batched chunk read stopped");
                    std::io::Error::other(e.to_string())
                })
            }
        })
        .map_ok(|pieces| futures_util::stream::iter(pieces.into_iter().map(Ok)))
        .try_flatten();
    let first = first.into_iter().map(Ok::<Bytes, std::io::Error>);
    let stream = futures_util::stream::iter(first).chain(later);
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, MEDIA_TYPE)
        .body(Body::from_stream(stream))
        .unwrap_or_default())
}

/// A batch of chunks read (in a read slot) and framed: each frame's header, then the
/// chunk's bytes as they came from the store (not copied).
async fn read_framed(hub: &Hub, keys: Vec<ChunkKey>) -> Result<Vec<Bytes>> {
    let _slot = hub.limits().chunk_read_slot().await?;
    let found = hub.chunks().read_chunks(&keys).await?;
    let mut pieces = Vec::with_capacity(keys.len() * 2);
    for (key, bytes) in keys.iter().zip(found) {
        let bytes = bytes.unwrap_or_default();
        pieces.push(Bytes::copy_from_slice(&frame_header(key, bytes.len())));
        if !bytes.is_empty() {
            pieces.push(bytes);
        }
    }
    Ok(pieces)
}

/// `GET /api/v1/chunks/usage`: what the caller stored through the chunk API, and its quota.
pub async fn usage(
    State(hub): State<Arc<Hub>>,
    Authenticated(caller): Authenticated,
) -> Result<Response> {
    Ok(raw(&hub.chunks().chunk_usage(&caller.user).await?))
}
