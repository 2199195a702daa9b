//! `GET /api/v1/flists/<repo>/<name>/files/<path>`: one file inside a published flist,
//! read from the store without extracting the rest (the catalogue's file reader). Single
//! byte ranges and conditional requests are answered as for flist downloads.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use futures_util::{StreamExt, stream};

use super::download::{Range, byte_range, precondition};
use crate::catalogue::{decode_bytes, decode_text};
use crate::error::{Error, Result};
use crate::hub::Hub;

pub async fn inner_file(
    State(hub): State<Arc<Hub>>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response> {
    // The path is read from the URI itself rather than by `Path`, which refuses a name
    // that is not UTF-8 once decoded: names inside flists are bytes.
    let (repository, flist, path) = uri
        .path()
        .strip_prefix("/api/v1/flists/")
        .and_then(|rest| {
            let mut parts = rest.splitn(4, '/');
            let (repository, flist) = (parts.next()?, parts.next()?);
            (parts.next()? == "files").then_some((repository, flist, parts.next()?))
        })
        .and_then(|(repository, flist, path)| {
            Some((
                decode_text(repository)?,
                decode_text(flist)?,
                decode_bytes(path),
            ))
        })
        .ok_or_else(|| Error::NotFound("not found".into()))?;
    let catalogue = hub.catalogue();
    let file = catalogue.inner_file(&repository, &flist, &path).await?;
    // The flist is immutable, so the file within it is too: its sha256 and the path name
    // this content.
    let path_hash = blake3::hash(&file.path).to_hex();
    let etag = format!("\"{}-{}\"", file.flist.digest.sha256, &path_hash[..16]);
    let modified = UNIX_EPOCH + Duration::from_secs(file.flist.mtime.max(0) as u64);
    let basename = file.path.rsplit(|&b| b == b'/').next().unwrap_or_default();
    let mut response = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::LAST_MODIFIED, httpdate::fmt_http_date(modified))
        .header(header::CACHE_CONTROL, "public, no-cache")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename*=UTF-8''{}",
                crate::catalogue::encode_bytes(basename)
            ),
        );
    if let Some(status) = precondition(&headers, &etag, modified) {
        return Ok(response
            .status(status)
            .body(Body::empty())
            .unwrap_or_default());
    }
    let size = file.size;
    let (status, start, length) = match byte_range(&headers, &etag, modified, size) {
        Range::Whole => (StatusCode::OK, 0, size),
        Range::Part { start, end } => {
            response =
                response.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        Range::Unsatisfiable => {
            return Ok(response
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .body(Body::empty())
                .unwrap_or_default());
        }
    };
    let mut pieces = Box::pin(catalogue.read_inner(&file, start, length));
    // The first piece is read before answering, so that a missing chunk or a store that is
    // down is an error status rather than a body cut short.
    let first = pieces.next().await.transpose()?;
    let body = Body::from_stream(stream::iter(first.map(Ok)).chain(pieces));
    Ok(response
        .status(status)
        .header(header::CONTENT_LENGTH, length)
        .body(body)
        .unwrap_or_default())
}
