//! Downloads: `/<repo>/<name>.flist` and through a tag, `.flist.md5` for both (0-hub had
//! none for tags), `/<repo>/<name>.txt` and a `.json` that works (0-hub's always failed).
//!
//! Flist files never change once published, so a download is the file of the name at the
//! moment of the request, whole, even if the name is re-published meanwhile. Answers carry
//! the sha256 of the body sent as a strong `ETag` and as `Repr-Digest` (RFC 9530),
//! `Last-Modified`, and `Cache-Control: no-cache` (caches keep the file but ask each time
//! whether the name still means it); conditional requests and single byte ranges are
//! answered as RFC 9110 says.
//!
//! With renditions, `.flist` of a native flist serves its 0-flist rendition (what Zero-OS
//! reads there) unless the request accepts `application/vnd.flisthub.flist`, flisthub's own
//! format: answers say `Vary: Accept`.

use std::io::SeekFrom;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Extension;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use tower::ServiceExt;

use super::Pages;
use super::json::python;
use crate::catalogue::Wanted;
use crate::error::{Error, Result};
use crate::hub::Hub;
use crate::names;
use crate::namespace::Resolved;

/// Read size of a download stream: large reads keep a fast link busy.
const STREAM_BUFFER: usize = 256 << 10;

/// `GET /<repo>/<file>`: `<name>.flist`, `<name>.flist.md5`, `<name>.txt`, `<name>.json`.
pub async fn repository_file(
    State(hub): State<Arc<Hub>>,
    Path((repository, file)): Path<(String, String)>,
    Extension(pages): Extension<Option<Pages>>,
    request: Request,
) -> Result<Response> {
    if names::reserved(&repository) {
        // `/api/...`, `/static/...` and the like: a route of its own, not a bad repository
        // name.
        return to_pages(pages, request).await;
    }
    let headers = request.headers().clone();
    let catalogue = hub.catalogue();
    let wanted = wanted(&headers);
    if let Some(name) = file.strip_suffix(".md5").filter(|n| is_download(n)) {
        return Ok(md5_text(
            &catalogue
                .resolve_download(&repository, name, wanted)
                .await?,
        ));
    }
    if is_download(&file) {
        let (resolved, file) = catalogue.open(&repository, &file, wanted).await?;
        return send(tokio::fs::File::from_std(file), &resolved, &headers).await;
    }
    if let Some(name) = file.strip_suffix(".txt") {
        let summary = catalogue.summary(&repository, name).await?;
        let text = format!(
            "File:     {}\nUploader: {}\nSource:   {}\nStorage:  {}\nChecksum: {}\n",
            summary.flist, summary.uploader, summary.source, summary.storage, summary.checksum
        );
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response());
    }
    if let Some(name) = file.strip_suffix(".json") {
        let mut body = python(&catalogue.summary(&repository, name).await?);
        body.push(b'\n');
        return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
    }
    // Not a download: the web's (an flist's page).
    to_pages(pages, request).await
}

/// `GET /upload`: 0-hub's upload page, where the API takes the form's POST: the web
/// pages' answer when they are mounted, 404 otherwise.
pub async fn page(
    Extension(pages): Extension<Option<Pages>>,
    request: Request,
) -> Result<Response> {
    to_pages(pages, request).await
}

/// The answer of the web pages, when mounted.
async fn to_pages(pages: Option<Pages>, request: Request) -> Result<Response> {
    let Some(Pages(pages)) = pages else {
        return Err(not_found());
    };
    // A new request: the pages route it afresh, without this route's path parameters
    // (which axum keeps in the extensions); the client's address goes along.
    let (parts, body) = request.into_parts();
    let mut fresh = Request::new(body);
    *fresh.method_mut() = parts.method;
    *fresh.uri_mut() = parts.uri;
    *fresh.version_mut() = parts.version;
    *fresh.headers_mut() = parts.headers;
    if let Some(address) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        fresh.extensions_mut().insert(*address);
    }
    Ok(pages.oneshot(fresh).await.into_response())
}

/// `GET /<repo>/tags/<tag>/<file>`: `<name>.flist` and `<name>.flist.md5` through a tag.
pub async fn tag_file(
    State(hub): State<Arc<Hub>>,
    Path((repository, tag, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    if names::reserved(&repository) {
        return Err(not_found());
    }
    let catalogue = hub.catalogue();
    let wanted = wanted(&headers);
    if let Some(name) = file.strip_suffix(".md5").filter(|n| is_download(n)) {
        return Ok(md5_text(
            &catalogue
                .resolve_download_in_tag(&repository, &tag, name, wanted)
                .await?,
        ));
    }
    if is_download(&file) {
        let (resolved, file) = catalogue
            .open_in_tag(&repository, &tag, &file, wanted)
            .await?;
        return send(tokio::fs::File::from_std(file), &resolved, &headers).await;
    }
    Err(not_found())
}

/// The media type of flisthub's own flist format, asked for in `Accept`.
pub const NATIVE_FLIST_TYPE: &str = "application/vnd.flisthub.flist";

/// Which file a `.flist` download asks for: the native one when `Accept` names its type
/// (with any non-zero quality).
fn wanted(headers: &HeaderMap) -> Wanted {
    let native = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            parts
                .next()
                .is_some_and(|t| t.eq_ignore_ascii_case(NATIVE_FLIST_TYPE))
                && parts.all(|p| {
                    p.strip_prefix("q=")
                        .is_none_or(|q| q.parse::<f32>().is_ok_and(|q| q > 0.0))
                })
        });
    if native {
        Wanted::Native
    } else {
        Wanted::Default
    }
}

/// Whether `file` names a download: `<name>.flist` or `<name>.fl`.
fn is_download(file: &str) -> bool {
    file.ends_with(names::FLIST_SUFFIX) || file.ends_with(names::FL_SUFFIX)
}

fn not_found() -> Error {
    Error::NotFound("not found".into())
}

fn md5_text(resolved: &Resolved) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::VARY, HeaderValue::from_static("Accept")),
        ],
        format!("{}\n", resolved.digest.md5),
    )
        .into_response()
}

async fn send(
    mut file: tokio::fs::File,
    resolved: &Resolved,
    headers: &HeaderMap,
) -> Result<Response> {
    let size = resolved.digest.size;
    let etag = format!("\"{}\"", resolved.digest.sha256);
    let modified = UNIX_EPOCH + Duration::from_secs(resolved.mtime.max(0) as u64);
    let mut response = Response::builder()
        .header(header::ETAG, &etag)
        .header("repr-digest", repr_digest(&resolved.digest.sha256))
        .header(header::VARY, "Accept")
        .header(header::LAST_MODIFIED, httpdate::fmt_http_date(modified))
        .header(header::CACHE_CONTROL, "public, no-cache")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, "application/octet-stream");
    if let Some(status) = precondition(headers, &etag, modified) {
        return Ok(response
            .status(status)
            .body(Body::empty())
            .unwrap_or_default());
    }
    let (status, start, length) = match byte_range(headers, &etag, modified, size) {
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
    if start > 0 {
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(|e| Error::io("seeking in an flist", e))?;
    }
    let body = Body::from_stream(ReaderStream::with_capacity(
        file.take(length),
        STREAM_BUFFER,
    ));
    Ok(response
        .status(status)
        .header(header::CONTENT_LENGTH, length)
        .body(body)
        .unwrap_or_default())
}

/// `sha-256=:<base64>:`, the structured-field form RFC 9530 gives a digest.
fn repr_digest(sha256: &str) -> String {
    use base64::Engine as _;
    let bytes = hex::decode(sha256).unwrap_or_default();
    format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// 304 or 412 when the request's conditions say so (RFC 9110 section 13.2.2 order).
pub(super) fn precondition(
    headers: &HeaderMap,
    etag: &str,
    modified: SystemTime,
) -> Option<StatusCode> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let date = |name| text(name).and_then(|t| httpdate::parse_http_date(t).ok());
    if let Some(list) = text(header::IF_MATCH) {
        if !etag_matches(list, etag) {
            return Some(StatusCode::PRECONDITION_FAILED);
        }
    } else if let Some(since) = date(header::IF_UNMODIFIED_SINCE)
        && modified > since
    {
        return Some(StatusCode::PRECONDITION_FAILED);
    }
    if let Some(list) = text(header::IF_NONE_MATCH) {
        if etag_matches(list, etag) {
            return Some(StatusCode::NOT_MODIFIED);
        }
    } else if let Some(since) = date(header::IF_MODIFIED_SINCE)
        && modified <= since
    {
        return Some(StatusCode::NOT_MODIFIED);
    }
    None
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

pub(super) enum Range {
    Whole,
    Part { start: u64, end: u64 },
    Unsatisfiable,
}

/// A single `bytes=` range; several ranges, or a stale `If-Range`, get the whole file.
pub(super) fn byte_range(
    headers: &HeaderMap,
    etag: &str,
    modified: SystemTime,
    size: u64,
) -> Range {
    let Some(spec) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Range::Whole;
    };
    if let Some(condition) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        let fresh = match httpdate::parse_http_date(condition) {
            Ok(date) => date == modified,
            Err(_) => condition.trim() == etag,
        };
        if !fresh {
            return Range::Whole;
        }
    }
    let Some(spec) = spec.trim().strip_prefix("bytes=") else {
        return Range::Whole;
    };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Range::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let parsed = match (first.is_empty(), last.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => last.parse::<u64>().ok().map(|n| {
            if n == 0 {
                None
            } else {
                Some((size.saturating_sub(n), size.saturating_sub(1)))
            }
        }),
        (false, _) => first.parse::<u64>().ok().and_then(|start| {
            let end = if last.is_empty() {
                Some(size.saturating_sub(1))
            } else {
                last.parse::<u64>()
                    .ok()
                    .map(|e| e.min(size.saturating_sub(1)))
            }?;
            Some((start < size && start <= end).then_some((start, end)))
        }),
        (true, true) => None,
    };
    match parsed {
        None => Range::Whole,
        Some(None) => Range::Unsatisfiable,
        Some(Some(_)) if size == 0 => Range::Unsatisfiable,
        Some(Some((start, end))) => Range::Part { start, end },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(spec: &str, size: u64) -> Option<(u64, u64)> {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, spec.parse().unwrap());
        match byte_range(&headers, "\"x\"", UNIX_EPOCH, size) {
            Range::Part { start, end } => Some((start, end)),
            Range::Whole => None,
            Range::Unsatisfiable => Some((u64::MAX, u64::MAX)),
        }
    }

    #[test]
    fn byte_ranges() {
        assert_eq!(range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(range("bytes=50-1000", 100), Some((50, 99)));
        assert_eq!(range("bytes=100-", 100), Some((u64::MAX, u64::MAX)));
        assert_eq!(range("bytes=0-1,5-6", 100), None);
        assert_eq!(range("items=0-1", 100), None);
        assert_eq!(range("bytes=-0", 100), Some((u64::MAX, u64::MAX)));
    }
}
