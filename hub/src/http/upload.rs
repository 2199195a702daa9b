//! Multipart uploads: `POST /api/flist/me/upload` streams the archive straight into the
//! converter while it arrives; `upload-flist` and the web route `POST /upload` spool the
//! file to a private staging file first (the flist must be whole to be checked; the web
//! route answers with a job id before converting).

use std::io;
use std::sync::{Arc, Mutex, mpsc as sync_mpsc};

use axum::body::Bytes;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use converter::LateMetadata;
use flist::Metadata;
use serde::Serialize;
use tempfile::TempPath;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::Me;
use super::json::{compact, success_with};
use super::pace::Pace;
use crate::error::{Error, Result};
use crate::hub::Hub;
use crate::names::{self, FlistName, basename, quote, secure_filename, strip_archive_extension};
use crate::publish::{ArchiveUpload, Published, metadata_key_allowed};

/// Chunks of the archive in flight between the request and the converter.
const PIPE_DEPTH: usize = 16;
/// The largest `metadata-<key>` value, and how many a form may have.
const METADATA_VALUE_LIMIT: usize = 64 << 10;
const METADATA_FIELDS_LIMIT: usize = 64;

/// `POST /api/flist/me/upload`: an archive (`.tar.gz`, `.tar.zst`, `.tar`, ...) in the
/// multipart field `file`; `metadata-<key>` fields; `X-Original-Name` renames it.
pub async fn me_upload(
    State(hub): State<Arc<Hub>>,
    Me(caller): Me,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response> {
    let mut multipart = multipart.map_err(|_| no_file())?;
    let original = original_name(&headers)?;
    let size = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    hub.publisher()
        .check_room(&caller.user, "archive upload")
        .await?;
    let mut pace = Pace::new(&hub.config().limits);
    let mut slot = Some(hub.limits().upload_slot(&caller.user).await?);
    let mut form = Form::default();
    let mut running: Option<Running> = None;
    let read: Result<()> = async {
        while let Some(mut field) = next_field(&mut multipart, &mut pace).await? {
            match field.name() {
                Some("file") => {
                    if running.is_some() {
                        return Err(Error::BadRequest("more than one file in the form".into()));
                    }
                    let file_name = field.file_name().unwrap_or_default().to_owned();
                    let name = archive_flist_name(&hub, &file_name, original.as_deref())?;
                    let (chunks, reader) = converter::pipe(PIPE_DEPTH);
                    let (fields, late) = late_metadata();
                    let upload = ArchiveUpload {
                        name,
                        source: file_name,
                        size,
                        late_metadata: Some(late),
                    };
                    let publisher = Arc::clone(hub.publisher());
                    let (caller, slot) = (caller.clone(), slot.take());
                    let task = tokio::spawn(async move {
                        let slot = slot.ok_or_else(|| Error::Internal("no upload slot".into()))?;
                        publisher
                            .upload_archive(&caller, &slot, upload, reader, None)
                            .await
                    });
                    let task = &running.insert(Running { task, fields }).task;
                    match pump(&mut field, &chunks, task, &mut pace).await {
                        Ok(true) => {}
                        // The converter failed and the rest is not worth reading: its
                        // error is the answer.
                        Ok(false) => return Ok(()),
                        Err(e) => {
                            // The converter sees the error as the end of its input.
                            let _ = chunks.send(Err(io::Error::other(e.to_string()))).await;
                            return Err(e);
                        }
                    }
                }
                Some(other) if other.starts_with("metadata-") => form.add(field, &mut pace).await?,
                _ => {}
            }
        }
        Ok(())
    }
    .await;
    let Some(running) = running else {
        return read.and(Err(no_file()));
    };
    if let Err(e) = read {
        // Without its metadata the converter gives up; waiting for it means nothing it
        // staged outlives the answer.
        drop(running.fields);
        let _ = running.task.await;
        return Err(e);
    }
    let ignored = form.ignored.clone();
    // The converter waits for these before it writes the flist.
    let _ = running.fields.send(form.fields);
    let published = running.task.await??;
    Ok(success_with(published_json(
        &hub,
        &published,
        Some(&published.stats),
        &ignored,
    )))
}

/// `POST /api/flist/me/upload-flist`: an flist built elsewhere, in the field `file`.
pub async fn me_upload_flist(
    State(hub): State<Arc<Hub>>,
    Me(caller): Me,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response> {
    let mut multipart = multipart.map_err(|_| no_file())?;
    let original = original_name(&headers)?;
    hub.publisher()
        .check_room(&caller.user, "flist upload")
        .await?;
    let mut pace = Pace::new(&hub.config().limits);
    let slot = hub.limits().upload_slot(&caller.user).await?;
    while let Some(mut field) = next_field(&mut multipart, &mut pace).await? {
        if field.name() != Some("file") {
            continue;
        }
        let file_name = field.file_name().unwrap_or_default().to_owned();
        if file_name.is_empty() {
            return Err(Error::BadRequest("no file selected".into()));
        }
        if !(file_name.ends_with(names::FLIST_SUFFIX) || file_name.ends_with(names::FL_SUFFIX)) {
            return Err(Error::BadRequest(
                "this file is not allowed: send a .flist (flisthub's, or a 0-flist) or an rfs .fl"
                    .into(),
            ));
        }
        let name = hub
            .names()
            .flist(&original.unwrap_or_else(|| secure_filename(&file_name)))?;
        let publisher = hub.publisher();
        let file = publisher.staging_file("upload-flist-")?;
        let limit = hub.config().limits.flist_size;
        spool(&mut field, &file, limit, "flist", &mut pace).await?;
        let published = publisher
            .upload_flist(&caller, &slot, name, (file, file_name))
            .await?;
        return Ok(success_with(published_json(
            &hub,
            &published,
            Some(&published.stats),
            &[],
        )));
    }
    Err(no_file())
}

/// `POST /upload` (the web form's route): the archive is received whole, then converted by
/// a background job; the answer is `{"jobid", "status"}` and progress is at
/// `/listen/<jobid>`.
pub async fn web_upload(
    State(hub): State<Arc<Hub>>,
    Me(caller): Me,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response> {
    let mut multipart = multipart.map_err(|_| no_file())?;
    hub.publisher()
        .check_room(&caller.user, "archive upload")
        .await?;
    let mut pace = Pace::new(&hub.config().limits);
    // Taken before the archive is received: the slots also bound what waits on disk.
    let slot = hub.limits().upload_slot(&caller.user).await?;
    while let Some(mut field) = next_field(&mut multipart, &mut pace).await? {
        if field.name() != Some("file") {
            continue;
        }
        let file_name = field.file_name().unwrap_or_default().to_owned();
        let name = archive_flist_name(&hub, &file_name, None)?;
        let publisher = hub.publisher();
        let file = publisher.staging_file("upload-")?;
        let limit = hub.config().limits.upload_size;
        let size = spool(&mut field, &file, limit, "upload", &mut pace).await?;
        let upload = ArchiveUpload {
            name,
            source: file_name,
            size: Some(size),
            late_metadata: None,
        };
        let jobid = publisher
            .upload_in_background(&caller, slot, upload, file)
            .await?;
        #[derive(Serialize)]
        struct Started {
            jobid: String,
            status: &'static str,
        }
        let mut body = compact(&Started {
            jobid,
            status: "success",
        });
        body.push(b'\n');
        return Ok(Response::builder()
            .status(StatusCode::OK)
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .body(body.into())
            .unwrap_or_default());
    }
    Err(no_file())
}

/// The `payload` of a publishing answer: 0-hub's `name` and `files` (zflist's result
/// object), then the file's checksums and URL.
pub fn published_json(
    hub: &Hub,
    published: &Published,
    stats: Option<&crate::inspect::Stats>,
    ignored_metadata: &[String],
) -> serde_json::Value {
    let name = published.shown_name();
    let mut payload = serde_json::json!({ "name": name });
    if let Some(stats) = stats {
        payload["files"] = serde_json::json!({
            "success": true,
            "error": null,
            "response": stats,
            "status": 0,
        });
    }
    payload["url"] = hub.catalogue().url_of(&published.repository, &name).into();
    payload["md5"] = published.digest.md5.clone().into();
    payload["sha256"] = published.digest.sha256.clone().into();
    payload["size"] = published.digest.size.into();
    if !ignored_metadata.is_empty() {
        payload["ignored-metadata"] = ignored_metadata.into();
    }
    payload
}

fn no_file() -> Error {
    Error::BadRequest("no file found".into())
}

fn multipart_error(e: MultipartError) -> Error {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::TooLarge("the request is larger than the hub accepts (limits)".into())
    } else {
        Error::BadRequest(format!("malformed multipart form: {}", e.body_text()))
    }
}

/// The next field of a form, within the pace an upload must keep (a stalled upload would
/// otherwise hold its upload slot for ever).
async fn next_field<'a>(
    multipart: &'a mut Multipart,
    pace: &mut Pace,
) -> Result<Option<Field<'a>>> {
    pace.wait(multipart.next_field())
        .await?
        .map_err(multipart_error)
}

async fn next_chunk(field: &mut Field<'_>, pace: &mut Pace) -> Result<Option<Bytes>> {
    let chunk = pace.wait(field.chunk()).await?.map_err(multipart_error)?;
    pace.received(chunk.as_ref().map_or(0, Bytes::len))?;
    Ok(chunk)
}

/// The basename of `X-Original-Name`, if given.
fn original_name(headers: &HeaderMap) -> Result<Option<String>> {
    headers
        .get("x-original-name")
        .map(|v| {
            v.to_str()
                .map(|s| basename(s).to_owned())
                .map_err(|_| Error::BadRequest("X-Original-Name is not text".into()))
        })
        .transpose()
}

/// The flist name of an uploaded archive: from `X-Original-Name` if given, else from the
/// file name as Werkzeug would clean it; the archive extension replaced by `.flist`.
fn archive_flist_name(hub: &Hub, file_name: &str, original: Option<&str>) -> Result<FlistName> {
    if file_name.is_empty() {
        return Err(Error::BadRequest("no file selected".into()));
    }
    if strip_archive_extension(file_name).is_none() {
        return Err(Error::BadRequest(format!(
            "this file is not allowed: {} (send a .tar.gz, .tgz, .tar.zst, .tzst or .tar)",
            quote(file_name)
        )));
    }
    let chosen = match original {
        Some(name) => name.to_owned(),
        None => secure_filename(file_name),
    };
    let stem = strip_archive_extension(&chosen).unwrap_or(&chosen);
    hub.names().flist(stem)
}

/// Writes a field to a staging file, refusing more than `limit` bytes. Returns the size.
async fn spool(
    field: &mut Field<'_>,
    path: &TempPath,
    limit: u64,
    what: &str,
    pace: &mut Pace,
) -> Result<u64> {
    let mut file = tokio::fs::File::create(&**path)
        .await
        .map_err(|e| Error::io(path.display(), e))?;
    let mut size = 0u64;
    while let Some(chunk) = next_chunk(field, pace).await? {
        size += chunk.len() as u64;
        if size > limit {
            return Err(Error::TooLarge(format!(
                "the {what} is larger than {limit} bytes"
            )));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| Error::io(path.display(), e))?;
    }
    file.flush()
        .await
        .map_err(|e| Error::io(path.display(), e))?;
    Ok(size)
}

/// Feeds a field to the converter. Once the converter stops reading because the archive
/// ended, the rest of the field (padding, trailing bytes) is read and dropped so that the
/// fields after it arrive; `false` when the converter failed instead (it cannot finish
/// before the form's metadata is sent), and the rest is not worth reading.
async fn pump(
    field: &mut Field<'_>,
    chunks: &mpsc::Sender<io::Result<Bytes>>,
    task: &tokio::task::JoinHandle<Result<Published>>,
    pace: &mut Pace,
) -> Result<bool> {
    while let Some(chunk) = next_chunk(field, pace).await? {
        if !chunks.is_closed() && chunks.send(Ok(chunk)).await.is_ok() {
            continue;
        }
        if task.is_finished() {
            return Ok(false);
        }
    }
    Ok(true)
}

struct Running {
    task: tokio::task::JoinHandle<Result<Published>>,
    fields: sync_mpsc::SyncSender<Vec<(String, String)>>,
}

/// The `metadata-<key>` fields of a form.
#[derive(Default)]
struct Form {
    fields: Vec<(String, String)>,
    ignored: Vec<String>,
}

impl Form {
    async fn add(&mut self, mut field: Field<'_>, pace: &mut Pace) -> Result<()> {
        let key = field
            .name()
            .and_then(|n| n.strip_prefix("metadata-"))
            .unwrap_or_default()
            .to_owned();
        let allowed = metadata_key_allowed(&key)?;
        if self.fields.len() + self.ignored.len() >= METADATA_FIELDS_LIMIT {
            return Err(Error::TooLarge(format!(
                "more than {METADATA_FIELDS_LIMIT} metadata fields"
            )));
        }
        let mut value = Vec::new();
        while let Some(chunk) = next_chunk(&mut field, pace).await? {
            if value.len() + chunk.len() > METADATA_VALUE_LIMIT {
                return Err(Error::TooLarge(format!(
                    "metadata-{key} is longer than {METADATA_VALUE_LIMIT} bytes"
                )));
            }
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(value)
            .map_err(|_| Error::BadRequest(format!("metadata-{key} is not UTF-8 text")))?;
        if allowed {
            self.fields.push((key, value));
        } else {
            tracing::info!(key, "ignored a protected metadata key");
            self.ignored.push(key);
        }
        Ok(())
    }
}

/// Metadata fields that reach the converter after the archive: it waits for them once the
/// archive has ended.
fn late_metadata() -> (sync_mpsc::SyncSender<Vec<(String, String)>>, LateMetadata) {
    let (tx, rx) = sync_mpsc::sync_channel::<Vec<(String, String)>>(1);
    let rx = Mutex::new(rx);
    let late = LateMetadata::new(move |metadata: &mut Metadata| {
        let fields = rx
            .lock()
            .map_err(|_| "the form reader failed".to_owned())?
            .recv()
            .map_err(|_| "the upload ended before the whole form was received".to_owned())?;
        for (key, value) in fields {
            metadata.set(key, value);
        }
        Ok(())
    });
    (tx, late)
}
