//! An flist's page (0-hub's preview URL, `/<repo>/<name>.flist.md`): what it is, where it
//! came from, every URL a client needs, its metadata and readme, what points at it, and
//! how much of its content other flists on the hub hold.

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use hub::{Format, Preview, Result, Share, Source};
use maud::{Markup, PreEscaped, html};

use crate::browse::target_link;
use crate::render::{copyable, page, path, size, time};
use crate::session::logged_in;
use crate::{State, Web, errors, markdown};

/// `GET /<repo>/<file>`: `<name>.md` is the preview page of `<name>`.
pub async fn file(
    web: State,
    Path((repo, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let Some(name) = file.strip_suffix(".md") else {
        return Ok(errors::not_found(headers).await);
    };
    let user = logged_in(&web, &headers).await?;
    let body = web
        .cached(format!("/{repo}/{file}"), || async {
            let preview = web.hub.catalogue().preview(&repo, name).await?;
            Ok(body(&web, &repo, &preview))
        })
        .await?;
    Ok(page(&web.shell(name, user.as_ref()), StatusCode::OK, &body))
}

fn body(web: &Web, repo: &str, p: &Preview) -> Markup {
    let catalogue = web.hub.catalogue();
    let resolved = &p.resolved;
    let shown = hub::shown_name(&p.info.name, Some(resolved.digest.format));
    let url = catalogue.url_of(repo, &shown);
    let file_url = catalogue.url_of(
        &resolved.repository,
        &hub::shown_name(&resolved.name, Some(resolved.digest.format)),
    );
    let stats = &p.stats;
    // What `.flist` serves by default: the 0-flist rendition once made.
    let served = p
        .renditions
        .iter()
        .find(|r| r.format.as_str() == "0-flist")
        .unwrap_or(&resolved.digest);
    html! {
        h1 { a href=(path(&[repo])) { (repo) } " / " (shown) }
        p.actions {
            a href=(crate::tree::tree_url(repo, &p.info.name, b"")) { "Browse the files" }
            " · "
            a href={ "/diff?a=" (hub::encode_segment(&format!("{repo}/{}", p.info.name))) } { "Compare with another flist" }
        }
        dl.facts {
            dt { "Uploaded by" } dd { (p.author.as_deref().unwrap_or(repo)) }
            dt { "Source" } dd { (source(p)) }
            @if let Some(target) = &p.info.target {
                dt { "Link to" } dd { (target_link(repo, target)) }
            }
            dt { "Format" } dd { (resolved.digest.format.as_str()) }
            dt { "Published" } dd { (time(resolved.mtime)) }
            dt { "Updated" } dd { (time(p.info.updated())) }
            dt { "Size" } dd { (size(served.size)) }
            dt { "Contents" } dd {
                (stats.regular) " files, " (stats.directory) " directories, "
                (stats.symlink) " links, " (stats.special) " special; "
                (size(stats.fullsize)) " in all"
            }
            dt { "Shared content" } dd { (share(p.share.as_ref(), resolved.digest.format)) }
            dt { "md5" } dd { (copyable("md5", &served.md5)) }
            dt { "sha256" } dd { (copyable("sha256", &served.sha256)) }
        }
        h2 { "URLs" }
        dl.facts {
            dt { "Download" } dd { (copyable("download URL", &url)) }
            dt { "Zero-OS" } dd { (copyable("Zero-OS URL", &file_url)) }
            dt { "Checksum" } dd { (copyable("checksum URL", &format!("{url}.md5"))) }
            dt { "Extract" } dd { (copyable("extract command", &format!("flisthub extract {url} ./{}", shown.trim_end_matches(".flist").trim_end_matches(".fl")))) }
            dt { "curl" } dd { (copyable("curl command", &format!("curl -fLO {url}"))) }
            @if p.renditions.iter().any(|r| r.format.as_str() == "fl") {
                dt { "Zero-OS (rfs)" } dd { (copyable("fl URL", &format!("{}.fl", url.trim_end_matches(".flist")))) }
            }
        }
        @if !p.renditions.is_empty() {
            h2 { "Files" }
            p { "What " code { ".flist" } " serves by default is the 0-flist, which Zero-OS nodes read; flisthub's own clients get the native file." }
            table {
                thead { tr { th { "format" } th { "size" } th { "md5" } th { "sha256" } } }
                tbody {
                    @for file in std::iter::once(&resolved.digest).chain(&p.renditions) {
                        tr {
                            td { (file.format.as_str()) }
                            td { (size(file.size)) }
                            td { code { (file.md5) } }
                            td { code { (file.sha256) } }
                        }
                    }
                }
            }
        }
        (metadata(&p.metadata))
        @if !p.referrers.is_empty() {
            h2 { "Links and tags pointing here" }
            ul { @for r in &p.referrers {
                li { @match &r.tag {
                    Some(tag) => { a href=(path(&[&r.repository, "tags", tag])) { (r.repository) "/tags/" (tag) } " / " (r.name) },
                    None => { a href={ (path(&[&r.repository, &r.name])) ".md" } { (r.repository) "/" (r.name) } },
                } }
            } }
        }
    }
}

/// The metadata: the keys nodes use shown for people, the others as JSON, the readme
/// rendered.
fn metadata(metadata: &std::collections::BTreeMap<String, serde_json::Value>) -> Markup {
    let readme = metadata.get("readme").and_then(|v| match v {
        serde_json::Value::String(text) => Some(text.as_str()),
        other => other.get("readme").and_then(|r| r.as_str()),
    });
    let others: Vec<_> = metadata
        .iter()
        .filter(|(k, _)| k.as_str() != "readme")
        .collect();
    html! {
        @if !others.is_empty() {
            h2 { "Metadata" }
            dl.facts {
                @for (key, value) in &others {
                    dt { (key) }
                    dd { @match (key.as_str(), value) {
                        ("entrypoint", serde_json::Value::Array(argv)) => {
                            code { (argv.iter().map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_owned)).collect::<Vec<_>>().join(" ")) }
                        },
                        ("backend" | "backend-forced", v) => {
                            code { (backend_url(v)) }
                        },
                        (_, serde_json::Value::String(text)) => { code { (text) } },
                        (_, v) => { pre { (serde_json::to_string_pretty(v).unwrap_or_default()) } },
                    } }
                }
            }
        }
        @if let Some(readme) = readme {
            h2 { "Readme" }
            div.readme { (PreEscaped(markdown::render(readme))) }
        }
    }
}

fn backend_url(v: &serde_json::Value) -> String {
    let field = |k: &str| {
        v.get(k)
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
    };
    match (field("host"), field("port")) {
        (Some(host), Some(port)) => match field("namespace") {
            Some(ns) if !ns.is_empty() => format!("zdb://{host}:{port}/{ns}"),
            _ => format!("zdb://{host}:{port}"),
        },
        _ => v.to_string(),
    }
}

/// Where the flist came from: what the hub recorded when it was published or, for one
/// published before it kept that, what the flist's own metadata says.
fn source(p: &Preview) -> Markup {
    match &p.source {
        Some(source) => recorded(source),
        None => match flist_source(p) {
            Some((kind, name)) => html! {
                (kind) " " code { (name) } " "
                span.muted { "(as the flist says; the hub did not record it then)" }
            },
            None => html! { span.muted { "not recorded" } },
        },
    }
}

fn recorded(source: &Source) -> Markup {
    html! {
        @match source {
            Source::Archive { file } => { "uploaded archive " code { (file) } },
            Source::Image { reference, digest } => {
                "image " code { (reference) } " at " code { (digest) }
            },
            Source::FlistFile { file, pushed_from: Some(directory) } => {
                "pushed: built by the client from " code { (directory) }
                " and uploaded as " code { (file) }
            },
            Source::FlistFile { file, pushed_from: None } => {
                "uploaded flist file " code { (file) }
            },
            Source::Import { path } => { "imported from 0-hub's " code { (path) } },
            Source::Merge { sources } => {
                "merged from "
                @for (i, source) in sources.iter().enumerate() {
                    @if i > 0 { ", " }
                    (flist_link(source))
                }
            },
            Source::Promote { from, origin } => {
                "promoted from " (flist_link(from))
                @if let Some(origin) = origin {
                    " (" (recorded(origin)) ")"
                }
            },
        }
    }
}

/// A link to the page of `repository/name`.
fn flist_link(full: &str) -> Markup {
    match full.split_once('/') {
        Some((repository, name)) => html! {
            a href={ (path(&[repository, name])) ".md" } { (full) }
        },
        None => html! { (full) },
    }
}

/// The `source` metadata of a native flist (`{"type": "tar", "name": ...}`), as words.
fn flist_source(p: &Preview) -> Option<(&'static str, String)> {
    let value = p.metadata.get("source")?;
    let value: serde_json::Value = match value {
        serde_json::Value::String(text) => serde_json::from_str(text).ok()?,
        other => other.clone(),
    };
    let name = value.get("name")?.as_str()?.to_owned();
    let kind = match value.get("type")?.as_str()? {
        "tar" => "archive",
        "image" => "image",
        "directory" => "directory",
        _ => "source",
    };
    Some((kind, name))
}

/// How much of the flist's content other published flist files hold.
fn share(share: Option<&Share>, format: Format) -> Markup {
    match (share, format) {
        (Some(s), _) if s.content_bytes == 0 => html! { span.muted { "no file content" } },
        (Some(s), _) => html! {
            (percent(s.shared_bytes, s.content_bytes)) " of its content ("
            (size(s.shared_bytes)) " of " (size(s.content_bytes))
            ") is also held by other flists on the hub"
        },
        (None, Format::Native) => html! { span.muted { "not measured yet" } },
        (None, _) => html! {
            span.muted { "not measured for hosted 0-flist and fl files (their blocks are not the hub's chunks)" }
        },
    }
}

/// `part` of `whole` as a percentage: 100% and 0% only when it is all or nothing.
fn percent(part: u64, whole: u64) -> String {
    let exact = part as f64 * 100.0 / whole as f64;
    match exact {
        _ if part >= whole => "100%".into(),
        _ if part == 0 => "0%".into(),
        e if e > 99.0 => "over 99%".into(),
        e if e < 1.0 => "under 1%".into(),
        e => format!("{e:.0}%"),
    }
}
