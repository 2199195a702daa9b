//! The file browser, `/<repo>/<name>/tree/<path>`: a directory of an flist read from the
//! flist's own index (entries with size, mode, owner, link target; a filter searching the
//! paths below it), or one file (shown as text when it is small and UTF-8, and a download
//! that fetches only its chunks).
//!
//! Names inside flists are bytes, chosen by whoever built the flist: the path is read
//! from the URI itself (`Path` would refuse a name that is not UTF-8), links carry every
//! byte percent-encoded, and names are shown as text with control characters spelled out.

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use futures_util::TryStreamExt;
use hub::{BrowseQuery, Browsed, Error, NodeKind, Result, TreeEntry};
use maud::{Markup, html};
use serde::Deserialize;

use crate::State;
use crate::render::{page, path, size, time};
use crate::session::logged_in;

/// Rows a directory page lists.
pub const TREE_ROWS: usize = 1_000;
/// Files shown in the page at most; larger ones are offered as downloads.
const TEXT_LIMIT: u64 = 256 << 10;
/// The longest filter taken (longer than any path is useless).
const FILTER_LIMIT: usize = 4096;

#[derive(Deserialize, Default)]
pub struct TreeQuery {
    filter: Option<String>,
    page: Option<String>,
}

/// What the browser's URL names: the repository, the flist's name, the path inside.
struct Place {
    repo: String,
    name: String,
    path: Vec<u8>,
}

fn place(uri: &Uri) -> Option<Place> {
    let mut parts = uri.path().strip_prefix('/')?.splitn(4, '/');
    let (repo, name) = (parts.next()?, parts.next()?);
    if parts.next()? != "tree" {
        return None;
    }
    Some(Place {
        repo: hub::decode_text(repo)?,
        name: hub::decode_text(name)?,
        path: hub::decode_bytes(parts.next().unwrap_or_default()),
    })
}

/// `GET /<repo>/<name>/tree/<path>`.
pub async fn tree(
    web: State,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<TreeQuery>,
) -> Result<Response> {
    let Some(place) = place(&uri) else {
        return Ok(crate::errors::not_found(headers).await);
    };
    let user = logged_in(&web, &headers).await?;
    let filter = query.filter.unwrap_or_default();
    if filter.len() > FILTER_LIMIT {
        return Err(Error::BadRequest(format!(
            "a filter is {FILTER_LIMIT} bytes at most"
        )));
    }
    let page_number = query
        .page
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|&p| p >= 1)
        .unwrap_or(1);
    let catalogue = web.hub.catalogue();
    let browse_query = BrowseQuery {
        filter: (!filter.is_empty()).then(|| filter.clone().into_bytes()),
        offset: (page_number - 1) * TREE_ROWS,
        limit: TREE_ROWS,
    };
    let browsed = catalogue
        .browse(&place.repo, &place.name, &place.path, browse_query)
        .await?;
    let body = match browsed.entry.node.kind {
        NodeKind::Directory => directory(&place, &browsed, &filter, page_number),
        NodeKind::Regular { size } => {
            let text = if size <= TEXT_LIMIT {
                let file = catalogue
                    .inner_file(&place.repo, &place.name, &browsed.entry.path)
                    .await?;
                let pieces: Vec<_> = catalogue.read_inner(&file, 0, size).try_collect().await?;
                String::from_utf8(pieces.concat()).ok()
            } else {
                None
            };
            file(&place, &browsed, text.as_deref())
        }
        _ => file(&place, &browsed, None),
    };
    let title = format!("{} · {}", place.name, shown(&browsed.entry.path));
    Ok(page(
        &web.shell(&title, user.as_ref()),
        StatusCode::OK,
        &body.into_string(),
    ))
}

/// The URL of `path` in the browser of `repo/name`.
pub fn tree_url(repo: &str, name: &str, inner: &[u8]) -> String {
    let mut url = format!("{}/tree/", path(&[repo, name]));
    url.push_str(&encoded_path(inner));
    url
}

/// Each component of `inner` percent-encoded, `/` between them.
fn encoded_path(inner: &[u8]) -> String {
    inner
        .split(|&b| b == b'/')
        .map(hub::encode_bytes)
        .collect::<Vec<_>>()
        .join("/")
}

/// A name or path from an flist as text: invalid UTF-8 as U+FFFD, control characters
/// spelled out (`\n`), so that every name shows as one visible line.
pub fn shown(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for c in String::from_utf8_lossy(bytes).chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The breadcrumbs: the repository, the flist, then each directory down to the path.
fn heading(place: &Place, browsed: &Browsed) -> Markup {
    let inner = &browsed.entry.path;
    let components: Vec<&[u8]> = if inner.is_empty() {
        Vec::new()
    } else {
        inner.split(|&b| b == b'/').collect()
    };
    html! {
        nav.crumbs aria-label="Path" {
            a href=(path(&[&place.repo])) { (place.repo) } " / "
            a href={ (path(&[&place.repo, &place.name])) ".md" } { (place.name) } " / "
            a href=(tree_url(&place.repo, &place.name, b"")) { "(root)" }
            @for (i, component) in components.iter().enumerate() {
                " / "
                @if i + 1 == components.len() {
                    b { (shown(component)) }
                } @else {
                    a href=(tree_url(&place.repo, &place.name, &components[..=i].join(&b'/'))) { (shown(component)) }
                }
            }
        }
        @if browsed.flist.name != place.name || browsed.flist.repository != place.repo {
            p.muted { "A link to " (browsed.flist.repository) "/" (browsed.flist.name) "." }
        }
    }
}

fn directory(place: &Place, browsed: &Browsed, filter: &str, page_number: usize) -> Markup {
    let here = tree_url(&place.repo, &place.name, &browsed.entry.path);
    let skip = if browsed.entry.path.is_empty() {
        0
    } else {
        browsed.entry.path.len() + 1
    };
    let first = (page_number - 1) * TREE_ROWS;
    let more = first + browsed.rows.len() < browsed.total;
    let pager_link = |n: usize| {
        let mut url = format!("{here}?page={n}");
        if !filter.is_empty() {
            url.push_str(&format!("&filter={}", hub::encode_segment(filter)));
        }
        url
    };
    html! {
        (heading(place, browsed))
        form.stack action=(here) method="get" role="search" {
            label for="filter" { "Paths below this directory containing" }
            input #filter type="search" name="filter" value=(filter);
            button type="submit" { "Filter" }
        }
        p.muted {
            @match (filter.is_empty(), browsed.total) {
                (true, 1) => { "1 entry" },
                (true, n) => { (n) " entries" },
                (false, 1) => { "1 path matches" },
                (false, n) => { (n) " paths match" },
            }
            @if browsed.total > TREE_ROWS { ", " (first + 1) "–" (first + browsed.rows.len()) " shown" }
        }
        @if !browsed.rows.is_empty() {
            div.table-wrap { table.tree {
                thead { tr {
                    th scope="col" { "Name" }
                    th.num scope="col" { "Size" }
                    th scope="col" { "Mode" }
                    th scope="col" { "Owner" }
                    th.optional scope="col" { "Modified" }
                } }
                tbody { @for row in &browsed.rows {
                    tr {
                        td.name {
                            a href=(tree_url(&place.repo, &place.name, &row.path)) { (shown(row.path.get(skip..).unwrap_or_default())) }
                            @if row.node.kind == NodeKind::Directory { "/" }
                            (target(row))
                        }
                        td.num { (entry_size(row)) }
                        td.mono { (row.node.ls_mode()) }
                        td { (row.node.uid) ":" (row.node.gid) }
                        td.optional { (time(row.node.mtime.secs)) }
                    }
                } }
            } }
        }
        nav.pages aria-label="Pages" {
            @if page_number > 1 { a rel="prev" href=(pager_link(page_number - 1)) { "← Previous" } }
            @if more { a rel="next" href=(pager_link(page_number + 1)) { "Next →" } }
        }
    }
}

fn file(place: &Place, browsed: &Browsed, text: Option<&str>) -> Markup {
    let entry = &browsed.entry;
    let download = format!(
        "/api/v1/flists/{}/{}/files/{}",
        hub::encode_segment(&browsed.flist.repository),
        hub::encode_segment(&browsed.flist.name),
        encoded_path(&entry.path)
    );
    html! {
        (heading(place, browsed))
        dl.facts {
            dt { "Kind" } dd { (kind_words(&entry.node.kind)) (target(entry)) }
            dt { "Size" } dd { (entry_size(entry)) }
            dt { "Mode" } dd.mono { (entry.node.ls_mode()) }
            dt { "Owner" } dd { (entry.node.uid) ":" (entry.node.gid) }
            dt { "Modified" } dd { (time(entry.node.mtime.secs)) }
            @if entry.nlink > 1 { dt { "Links" } dd { (entry.nlink) " names" } }
        }
        @if let NodeKind::Regular { size: bytes } = entry.node.kind {
            p { a.button href=(download) download { "Download" } }
            @match text {
                Some(text) => { pre.file { (text) } },
                None if bytes > TEXT_LIMIT => { p.muted { "Larger than " (size(TEXT_LIMIT)) ": download it to read it." } },
                None => { p.muted { "Not UTF-8 text: download it to read it." } },
            }
        }
    }
}

/// ` ➔ target` for a symlink, the device numbers of a device.
fn target(entry: &TreeEntry) -> Markup {
    html! {
        @match &entry.node.kind {
            NodeKind::Symlink { target } => { " ➔ " code { (shown(target)) } },
            NodeKind::CharDevice { major, minor } | NodeKind::BlockDevice { major, minor } => {
                " " span.muted { "(" (major) ", " (minor) ")" }
            },
            _ => {},
        }
    }
}

pub fn entry_size(entry: &TreeEntry) -> String {
    match entry.node.kind {
        NodeKind::Regular { size: bytes } => size(bytes),
        NodeKind::Symlink { ref target } => size(target.len() as u64),
        _ => "—".into(),
    }
}

fn kind_words(kind: &NodeKind) -> &'static str {
    match kind {
        NodeKind::Directory => "directory",
        NodeKind::Regular { .. } => "regular file",
        NodeKind::Symlink { .. } => "symbolic link",
        NodeKind::CharDevice { .. } => "character device",
        NodeKind::BlockDevice { .. } => "block device",
        NodeKind::Fifo => "FIFO",
        NodeKind::Socket => "socket",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_show_as_one_line_of_text() {
        assert_eq!(shown(b"a\nb\x1b\xff"), "a\\nb\\u{1b}\u{fffd}");
    }

    #[test]
    fn every_byte_of_a_path_is_encoded_but_the_slashes() {
        assert_eq!(encoded_path(b"a b/<c>/\xff/.."), "a%20b/%3Cc%3E/%FF/..");
    }
}
