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
use crate::blobs::Digest256;
use crate::catalogue::Contents;
use crate::error::{Error, Result};
use crate::formats::Format;
use crate::hub::Hub;
use crate::namespace::{Change, Info, Kind, Listed};

type HubState = State<Arc<Hub>>;

/// `GET /api/repositories`
pub async fn repositories(State(hub): HubState) -> Result<Response> {
    Ok(raw(&hub.catalogue().repositories().await?))
}

/// `GET /api/flist`: every entry of every repository (ZOS's health check).
pub async fn all_entries(State(hub): HubState) -> Result<Response> {
    Ok(raw(&hub.catalogue().all_entries().await?))
}

/// `GET /api/fileslist`
pub async fn fileslist(State(hub): HubState) -> Result<Response> {
    let all: BTreeMap<String, Vec<ListedJson>> = hub
        .catalogue()
        .files_list()
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
                // 0-hub listed a tag (a directory) as "0 KB", and a taglink (a link it
                // followed to that directory) with the directory's size.
                Kind::Tag => "0 KB".into(),
                Kind::Taglink => kilobytes(4096),
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
    let listed = hub.catalogue().repository(&repository).await?;
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
    let members = hub.catalogue().tag(&repository, &tag).await?;
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
/// flist).
async fn contents(hub: &Hub, repository: &str, name: &str) -> Result<Response> {
    Ok(match hub.catalogue().contents(repository, name).await? {
        Contents::Whole(bytes) => raw_bytes(bytes),
        Contents::Pieces(rx) => {
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv()
                    .await
                    .map(|piece| (Ok::<_, std::io::Error>(piece), rx))
            });
            raw_stream(axum::body::Body::from_stream(stream))
        }
    })
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
    /// Every file a download of this flist can serve, by format (the native file and its
    /// renditions); absent when there is only the one file.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    renditions: BTreeMap<&'static str, FileJson<'a>>,
    /// What the last integrity scrub found of its chunks: a key of flisthub's own, which
    /// 0-hub's clients ignore.
    #[serde(skip_serializing_if = "Option::is_none")]
    scrub: Option<crate::scrub::Status>,
}

#[derive(Serialize)]
struct FileJson<'a> {
    size: u64,
    md5: &'a str,
    sha256: &'a str,
}

impl<'a> From<&'a Digest256> for FileJson<'a> {
    fn from(d: &'a Digest256) -> Self {
        FileJson {
            size: d.size,
            md5: &d.md5,
            sha256: &d.sha256,
        }
    }
}

/// `light` (and `INFO`): what a name is, and the file its `.flist` download serves by
/// default (the 0-flist rendition of a native flist, once made).
async fn light_of(hub: &Hub, repository: &str, name: &str) -> Result<Response> {
    let catalogue = hub.catalogue();
    let info: Info = catalogue.info(repository, name).await?;
    let renditions = match &info.resolved {
        Some(resolved) => catalogue.renditions(resolved).await?,
        None => Vec::new(),
    };
    let native = info.resolved.as_ref().map(|r| &r.digest);
    let digest = renditions
        .iter()
        .find(|d| d.format == Format::ZeroFlist)
        .or(native);
    let scrub = match native {
        Some(native) => hub.scrubber().status(&native.sha256).await?,
        None => None,
    };
    let mut files = BTreeMap::new();
    if let Some(native) = native.filter(|_| !renditions.is_empty()) {
        files.insert(native.format.as_str(), FileJson::from(native));
        for rendition in &renditions {
            files.insert(rendition.format.as_str(), FileJson::from(rendition));
        }
    }
    Ok(raw(&LightJson {
        name: &info.name,
        size: digest.map_or(0, |d| d.size),
        updated: info.updated(),
        kind: info.kind.as_str(),
        md5: digest.map(|d| d.md5.as_str()),
        linktime: info.linktime,
        target: info.target.as_ref().map(|t| t.raw()),
        sha256: digest.map(|d| d.sha256.as_str()),
        renditions: files,
        scrub,
    }))
}

/// `GET /api/flist/<repo>/<name>/taglink`
pub async fn taglink(
    State(hub): HubState,
    Path((repository, name)): Path<(String, String)>,
) -> Result<Response> {
    let target = hub.catalogue().taglink(&repository, &name).await?;
    Ok(raw(&serde_json::json!({"target": target.cleaned()})))
}

/// `GET /api/flist/<repo>/<flist>/metadata`
pub async fn metadata(
    State(hub): HubState,
    Path((repository, name)): Path<(String, String)>,
) -> Result<Response> {
    Ok(raw(&hub.catalogue().metadata(&repository, &name).await?))
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
    let names = hub.names();
    let change = Change::Delete {
        repository: caller.repository.clone(),
        name: names.flist(name)?,
        or_taglink: names.taglink(name)?,
    };
    change_made(hub, caller, change).await
}

/// Applies a change for `caller`: 0-hub's `{"status": "success"}`.
async fn change_made(hub: &Hub, caller: &Caller, change: Change) -> Result<Response> {
    hub.publisher().apply(caller, change).await?;
    Ok(success())
}

/// `/api/flist/me/<source>/link/<linkname>`
pub async fn me_link(
    State(hub): HubState,
    Me(caller): Me,
    Path((source, link)): Path<(String, String)>,
) -> Result<Response> {
    let names = hub.names();
    let change = Change::Link {
        repository: caller.repository.clone(),
        source: names.flist(&source)?,
        link: names.flist(&link)?,
    };
    change_made(&hub, &caller, change).await
}

/// `/api/flist/me/<linkname>/crosslink/<repo>/<source>`
pub async fn me_crosslink(
    State(hub): HubState,
    Me(caller): Me,
    Path((link, repository, source)): Path<(String, String, String)>,
) -> Result<Response> {
    let names = hub.names();
    let change = Change::Crosslink {
        repository: caller.repository.clone(),
        link: names.flist(&link)?,
        source_repository: names.repository(&repository)?,
        source: names.flist(&source)?,
    };
    change_made(&hub, &caller, change).await
}

/// `/api/flist/me/<linkname>/crosstag/<repo>/<tag>`: GET (or POST) links, DELETE unlinks.
pub async fn me_crosstag(
    State(hub): HubState,
    method: Method,
    Me(caller): Me,
    Path((link, repository, tag)): Path<(String, String, String)>,
) -> Result<Response> {
    let names = hub.names();
    let (repository_here, link) = (caller.repository.clone(), names.taglink(&link)?);
    let (tag_repository, tag) = (names.repository(&repository)?, names.tag(&tag)?);
    let change = if method == Method::DELETE {
        Change::Uncrosstag {
            repository: repository_here,
            link,
            tag_repository,
            tag,
        }
    } else {
        Change::Crosstag {
            repository: repository_here,
            link,
            tag_repository,
            tag,
        }
    };
    change_made(&hub, &caller, change).await
}

/// `/api/flist/me/<tag>/<linkname>/tag/<repo>/<source>`: GET (or POST) tags, DELETE
/// untags.
pub async fn me_tag(
    State(hub): HubState,
    method: Method,
    Me(caller): Me,
    Path((tag, link, repository, source)): Path<(String, String, String, String)>,
) -> Result<Response> {
    let names = hub.names();
    let (tag, link) = (names.tag(&tag)?, names.flist(&link)?);
    let (source_repository, source) = (names.repository(&repository)?, names.flist(&source)?);
    let change = if method == Method::DELETE {
        Change::Untag {
            repository: caller.repository.clone(),
            tag,
            link,
        }
    } else {
        Change::Tag {
            repository: caller.repository.clone(),
            tag,
            link,
            source_repository,
            source,
        }
    };
    change_made(&hub, &caller, change).await
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
    let names = hub.names();
    let change = Change::Rename {
        repository: caller.repository.clone(),
        source: names.flist(&source)?,
        destination: names.flist(&destination)?,
        force: matches!(query.force.as_deref(), Some("true" | "1" | "yes" | "")),
    };
    change_made(&hub, &caller, change).await
}

/// `/api/flist/me/promote/<repo>/<source>/<localname>`
pub async fn me_promote(
    State(hub): HubState,
    Me(caller): Me,
    Path((repository, source, local)): Path<(String, String, String)>,
) -> Result<Response> {
    let names = hub.names();
    let (source_repository, source) = (names.repository(&repository)?, names.flist(&source)?);
    let local = names.flist(&local)?;
    let change = Change::Promote {
        repository: caller.repository.clone(),
        source_repository: source_repository.clone(),
        source: source.clone(),
        local: local.clone(),
    };
    hub.publisher().apply(&caller, change).await?;
    Ok(success_with(serde_json::json!({
        "source": {"username": source_repository, "filename": source},
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
    // The target is checked first, as 0-hub's clients see it.
    hub.names().flist(&target)?;
    let Ok(serde_json::Value::Array(list)) = serde_json::from_slice(&body) else {
        return Err(Error::BadRequest("malformed json request".into()));
    };
    // A source that is not a string is malformed, as one without a `/` is (after the
    // count is checked, as before).
    let sources: Vec<&str> = list
        .iter()
        .map(|item| item.as_str().unwrap_or(""))
        .collect();
    let published = hub.merge(&caller, &target, &sources).await?;
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
