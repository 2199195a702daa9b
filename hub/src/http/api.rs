//! 0-hub's API (reference sections 5.2 and 5.3): the public reads and the authenticated
//! `/api/flist/me...` changes, route for route and shape for shape.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::Me;
use super::json::{raw, raw_bytes, raw_stream, success, success_with};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::hub::Hub;
use crate::inspect;
use crate::namespace::{Info, Kind, Listed};

type HubState = State<Arc<Hub>>;

#[derive(Serialize)]
struct RepositoryJson {
    name: String,
    official: bool,
    updated: i64,
}

/// `GET /api/repositories`
pub async fn repositories(State(hub): HubState) -> Result<Response> {
    let list: Vec<RepositoryJson> = hub
        .namespace
        .repositories()
        .await?
        .into_iter()
        .map(|(name, updated)| RepositoryJson {
            official: hub.official(&name),
            name,
            updated,
        })
        .collect();
    Ok(raw(&list))
}

/// `GET /api/flist`: every entry of every repository (ZOS's health check).
pub async fn all_entries(State(hub): HubState) -> Result<Response> {
    Ok(raw(&hub.namespace.all_entries().await?))
}

/// `GET /api/fileslist`
pub async fn fileslist(State(hub): HubState) -> Result<Response> {
    let all: BTreeMap<String, Vec<ListedJson>> = hub
        .namespace
        .list_all()
        .await?
        .into_iter()
        .map(|(repository, listed)| (repository, listed.iter().map(ListedJson::from).collect()))
        .collect();
    Ok(raw(&all))
}

/// One row of a listing, with 0-hub's field order and types.
#[derive(Serialize)]
struct ListedJson {
    name: String,
    size: String,
    updated: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    linktime: Option<i64>,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
}

impl From<&Listed> for ListedJson {
    fn from(l: &Listed) -> ListedJson {
        ListedJson {
            name: l.name.clone(),
            size: match l.kind {
                // A tag (a directory in 0-hub) and a link to one have no flist size.
                Kind::Tag | Kind::Taglink => "0 KB".into(),
                Kind::Regular | Kind::Symlink => kilobytes(l.size.unwrap_or(0)),
            },
            updated: l.updated,
            linktime: l.linktime,
            kind: l.kind.as_str(),
            target: l.target.as_ref().map(|t| t.cleaned()),
        }
    }
}

/// 0-hub's `"%.2f KB"`.
fn kilobytes(bytes: u64) -> String {
    format!("{:.2} KB", bytes as f64 / 1024.0)
}

/// `GET /api/flist/<repo>`
pub async fn repository(State(hub): HubState, Path(repository): Path<String>) -> Result<Response> {
    let repository = hub.names.repository(&repository)?;
    let listed = hub
        .namespace
        .list(&repository)
        .await?
        .ok_or_else(|| Error::NotFound("user not found".into()))?;
    Ok(raw(&listed
        .iter()
        .map(ListedJson::from)
        .collect::<Vec<_>>()))
}

/// `GET /api/flist/<repo>/tags/<tag>`
pub async fn tag(
    State(hub): HubState,
    Path((repository, tag)): Path<(String, String)>,
) -> Result<Response> {
    let repository = hub.names.repository(&repository)?;
    let tag = hub.names.tag(&tag)?;
    let members = hub.namespace.list_tag(&repository, &tag).await?;
    Ok(raw(&members
        .iter()
        .map(ListedJson::from)
        .collect::<Vec<_>>()))
}

/// `/api/flist/<repo>/<flist>`: `GET` dumps the contents, `INFO` is `light`.
pub async fn flist(
    State(hub): HubState,
    method: Method,
    Path((repository, name)): Path<(String, String)>,
) -> Result<Response> {
    match method.as_str() {
        "GET" | "HEAD" => contents(&hub, &repository, &name).await,
        "INFO" => light_of(&hub, &repository, &name).await,
        _ => Ok(super::method_not_allowed().await),
    }
}

/// The contents dump, streamed as the flist is walked (memory does not grow with the
/// flist); dumps small enough are kept, by the flist's sha256, for the next requests.
async fn contents(hub: &Arc<Hub>, repository: &str, name: &str) -> Result<Response> {
    let resolved = hub.resolve(repository, name).await?;
    if let Some(cached) = hub.contents.get(&resolved.digest.sha256) {
        return Ok(raw_bytes(cached));
    }
    let open = |path: &std::path::Path| Ok(flist::Flist::open(path)?);
    let (resolved, flist) = hub
        .namespace
        .open_file(|| hub.resolve(repository, name), open)
        .await?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let hub = Arc::clone(hub);
    tokio::task::spawn_blocking(move || {
        let mut out = StreamWriter::new(tx, hub.contents.entry_limit());
        let written = inspect::write_contents(&flist, &mut out).and_then(|()| {
            std::io::Write::flush(&mut out).map_err(|e| Error::io("a contents dump", e))
        });
        match written {
            Ok(()) => {
                if let Some(whole) = out.kept {
                    hub.contents.put(&resolved.digest.sha256, whole.into());
                }
            }
            Err(e) => tracing::debug!(error = %e, "contents dump not finished"),
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
    });
    Ok(raw_stream(axum::body::Body::from_stream(stream)))
}

/// A blocking writer whose output goes to a response body in pieces, and is also kept
/// whole while it is small.
struct StreamWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    buffer: Vec<u8>,
    kept: Option<Vec<u8>>,
    keep_limit: usize,
}

impl StreamWriter {
    /// Bytes sent to the body at a time.
    const PIECE: usize = 64 << 10;

    fn new(tx: tokio::sync::mpsc::Sender<Bytes>, keep_limit: usize) -> StreamWriter {
        StreamWriter {
            tx,
            buffer: Vec::with_capacity(Self::PIECE),
            kept: Some(Vec::new()),
            keep_limit,
        }
    }
}

impl std::io::Write for StreamWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= Self::PIECE {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buffer, Vec::with_capacity(Self::PIECE));
        if let Some(kept) = &mut self.kept {
            if kept.len() + piece.len() <= self.keep_limit {
                kept.extend_from_slice(&piece);
            } else {
                self.kept = None;
            }
        }
        self.tx
            .blocking_send(piece.into())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

/// `GET /api/flist/<repo>/<flist>/light`
pub async fn light(
    State(hub): HubState,
    Path((repository, name)): Path<(String, String)>,
) -> Result<Response> {
    light_of(&hub, &repository, &name).await
}

#[derive(Serialize)]
struct LightJson<'a> {
    name: &'a str,
    size: u64,
    updated: i64,
    #[serde(rename = "type")]
    kind: &'static str,
    md5: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    linktime: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    sha256: Option<&'a str>,
}

async fn light_of(hub: &Hub, repository: &str, name: &str) -> Result<Response> {
    let repository = hub.names.repository(repository)?;
    let name = hub.names.flist(name)?;
    let info: Info = hub.namespace.info(&repository, &name).await?;
    let digest = info.resolved.as_ref().map(|r| &r.digest);
    Ok(raw(&LightJson {
        name: &info.name,
        size: digest.map_or(0, |d| d.size),
        updated: info.updated(),
        kind: info.kind.as_str(),
        md5: digest.map(|d| d.md5.as_str()),
        linktime: info.linktime,
        target: info.target.as_ref().map(|t| t.raw()),
        sha256: digest.map(|d| d.sha256.as_str()),
    }))
}

/// `GET /api/flist/<repo>/<name>/taglink`
pub async fn taglink(
    State(hub): HubState,
    Path((repository, name)): Path<(String, String)>,
) -> Result<Response> {
    let repository = hub.names.repository(&repository)?;
    let name = hub.names.taglink(&name)?;
    let target = hub.namespace.taglink(&repository, &name).await?;
    Ok(raw(&serde_json::json!({"target": target.cleaned()})))
}

/// `GET /api/flist/<repo>/<flist>/metadata`
pub async fn metadata(
    State(hub): HubState,
    Path((repository, name)): Path<(String, String)>,
) -> Result<Response> {
    let backend = hub.backend.clone();
    let read = move |path: &std::path::Path| inspect::metadata(path, backend.as_ref());
    let (_, metadata) = hub
        .namespace
        .open_file(|| hub.resolve(&repository, &name), read)
        .await?;
    Ok(raw(&metadata))
}

// ----- /api/flist/me -----

/// `GET /api/flist/me`: who the token is (zflist and 0-hub-gw check tokens with it).
pub async fn me(Me(caller): Me) -> Response {
    success_with(serde_json::json!({"username": caller.repository}))
}

/// `GET /api/flist/me/<flist>`: the contents of one of the caller's flists.
pub async fn me_inspect(
    State(hub): HubState,
    Me(caller): Me,
    Path(name): Path<String>,
) -> Result<Response> {
    contents(&hub, &caller.repository, &name).await
}

/// `GET /api/flist/me/upload` (and `upload-flist`): 0-hub fell through to inspecting
/// `upload.flist`; so does this.
pub async fn me_inspect_named(
    State(hub): HubState,
    Me(caller): Me,
    uri: axum::http::Uri,
) -> Result<Response> {
    contents(&hub, &caller.repository, last_segment(&uri)).await
}

/// `DELETE /api/flist/me/<flist>`: an flist, a symlink, or a taglink.
pub async fn me_delete(
    State(hub): HubState,
    Me(caller): Me,
    Path(name): Path<String>,
) -> Result<Response> {
    delete(&hub, &caller, &name).await
}

/// `DELETE /api/flist/me/upload` (and `upload-flist`): the flists of those names.
pub async fn me_delete_named(
    State(hub): HubState,
    Me(caller): Me,
    uri: axum::http::Uri,
) -> Result<Response> {
    delete(&hub, &caller, last_segment(&uri)).await
}

fn last_segment(uri: &axum::http::Uri) -> &str {
    uri.path().rsplit('/').next().unwrap_or_default()
}

async fn delete(hub: &Hub, caller: &Caller, name: &str) -> Result<Response> {
    let flist = hub.names.flist(name)?;
    hub.namespace
        .delete(&caller.repository, &flist, name, &caller.user)
        .await?;
    Ok(success())
}

/// `/api/flist/me/<source>/link/<linkname>`
pub async fn me_link(
    State(hub): HubState,
    Me(caller): Me,
    Path((source, link)): Path<(String, String)>,
) -> Result<Response> {
    let (source, link) = (hub.names.flist(&source)?, hub.names.flist(&link)?);
    hub.namespace
        .link(&caller.repository, &source, &link, &caller.user)
        .await?;
    Ok(success())
}

/// `/api/flist/me/<linkname>/crosslink/<repo>/<source>`
pub async fn me_crosslink(
    State(hub): HubState,
    Me(caller): Me,
    Path((link, repository, source)): Path<(String, String, String)>,
) -> Result<Response> {
    let link = hub.names.flist(&link)?;
    let repository = hub.names.repository(&repository)?;
    let source = hub.names.flist(&source)?;
    hub.namespace
        .crosslink(
            &caller.repository,
            &link,
            &repository,
            &source,
            &caller.user,
        )
        .await?;
    Ok(success())
}

/// `/api/flist/me/<linkname>/crosstag/<repo>/<tag>`: GET (or POST) links, DELETE unlinks.
pub async fn me_crosstag(
    State(hub): HubState,
    method: Method,
    Me(caller): Me,
    Path((link, repository, tag)): Path<(String, String, String)>,
) -> Result<Response> {
    let link = hub.names.taglink(&link)?;
    let repository = hub.names.repository(&repository)?;
    let tag = hub.names.tag(&tag)?;
    if method == Method::DELETE {
        hub.namespace
            .uncrosstag(&caller.repository, &link, &repository, &tag, &caller.user)
            .await?;
    } else {
        hub.namespace
            .crosstag(&caller.repository, &link, &repository, &tag, &caller.user)
            .await?;
    }
    Ok(success())
}

/// `/api/flist/me/<tag>/<linkname>/tag/<repo>/<source>`: GET (or POST) tags, DELETE
/// untags.
pub async fn me_tag(
    State(hub): HubState,
    method: Method,
    Me(caller): Me,
    Path((tag, link, repository, source)): Path<(String, String, String, String)>,
) -> Result<Response> {
    let tag = hub.names.tag(&tag)?;
    let link = hub.names.flist(&link)?;
    let repository = hub.names.repository(&repository)?;
    let source = hub.names.flist(&source)?;
    if method == Method::DELETE {
        hub.namespace
            .untag(&caller.repository, &tag, &link, &caller.user)
            .await?;
    } else {
        hub.namespace
            .tag(
                &caller.repository,
                &tag,
                &link,
                &repository,
                &source,
                &caller.user,
            )
            .await?;
    }
    Ok(success())
}

#[derive(Deserialize)]
pub struct RenameQuery {
    force: Option<String>,
}

/// `/api/flist/me/<source>/rename/<dest>[?force=true]`
pub async fn me_rename(
    State(hub): HubState,
    Me(caller): Me,
    Path((source, destination)): Path<(String, String)>,
    Query(query): Query<RenameQuery>,
) -> Result<Response> {
    let (source, destination) = (hub.names.flist(&source)?, hub.names.flist(&destination)?);
    let force = matches!(query.force.as_deref(), Some("true" | "1" | "yes" | ""));
    hub.namespace
        .rename(
            &caller.repository,
            &source,
            &destination,
            force,
            &caller.user,
        )
        .await?;
    Ok(success())
}

/// `/api/flist/me/promote/<repo>/<source>/<localname>`
pub async fn me_promote(
    State(hub): HubState,
    Me(caller): Me,
    Path((repository, source, local)): Path<(String, String, String)>,
) -> Result<Response> {
    let repository = hub.names.repository(&repository)?;
    let (source, local) = (hub.names.flist(&source)?, hub.names.flist(&local)?);
    hub.namespace
        .promote(
            &caller.repository,
            &repository,
            &source,
            &local,
            &caller.user,
        )
        .await?;
    Ok(success_with(serde_json::json!({
        "source": {"username": repository, "filename": source},
        "destination": {"username": caller.repository, "filename": local},
    })))
}

/// `POST /api/flist/me/merge/<target>` with a JSON array of `"repo/name"`, first wins.
pub async fn me_merge(
    State(hub): HubState,
    Me(caller): Me,
    Path(target): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let target = hub.names.flist(&target)?;
    let list = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Array(list)) => list,
        _ => return Err(Error::BadRequest("malformed json request".into())),
    };
    if list.is_empty() {
        return Err(Error::BadRequest("no source found".into()));
    }
    let max = hub.config.limits.merge_sources;
    if list.len() > max {
        return Err(Error::TooLarge(format!(
            "{} sources; a merge takes at most {max} (limits.merge-sources)",
            list.len()
        )));
    }
    let sources = list
        .iter()
        .map(|item| {
            let malformed = || Error::BadRequest("malformed source filename".into());
            let text = item.as_str().ok_or_else(malformed)?;
            let (repository, name) = text.split_once('/').ok_or_else(malformed)?;
            if name.contains('/') {
                return Err(malformed());
            }
            Ok((hub.names.repository(repository)?, hub.names.flist(name)?))
        })
        .collect::<Result<Vec<_>>>()?;
    let slot = hub.limits.upload_slot(&caller.user).await?;
    let published = hub.merge(&caller, &slot, &target, &sources).await?;
    Ok(success_with(super::upload::published_json(
        &hub,
        &published,
        None,
        &[],
    )))
}

/// The answer to HEAD on a route that changes something: 0-hub ran the change; here HEAD
/// never changes anything.
pub async fn head_refused() -> Response {
    let mut response = super::json::failure(
        StatusCode::METHOD_NOT_ALLOWED,
        "HEAD does not change anything; use GET or POST",
        None,
    );
    response.headers_mut().insert(
        axum::http::header::ALLOW,
        axum::http::HeaderValue::from_static("GET, POST"),
    );
    response
}
