//! `/merge` (0-hub's URL): flists layered into a new one, as `POST
//! /api/flist/me/merge/<target>` does (through [`hub::Hub::merge`]). Sources are found by
//! searching as you type (`/merge/sources?q=`, a few names at a time, never the whole
//! hub), chosen in order of precedence: the first wins on every path it holds, a later
//! one only adds what the ones above it lack, and the metadata is the first's. Without
//! the script, the sources are typed one a line.

use axum::Form;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Redirect, Response};
use hub::{Error, Kind, Result};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use crate::errors::described;
use crate::render::{page, path};
use crate::session::{LoggedIn, check_form, logged_in, writer};
use crate::{State, Web};

/// Sources a search answers at most.
pub const SOURCE_HITS: usize = 20;
/// Hits read to find them (repositories and tags are among the hits, and are skipped).
const SEARCHED: u64 = 200;
/// The longest text searched.
const TEXT_LIMIT: usize = 512;

/// `GET /merge`: the form (logged-in users only).
pub async fn form_page(web: State, headers: HeaderMap) -> Result<Response> {
    let Some(user) = logged_in(&web, &headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    Ok(form(&web, &user, StatusCode::OK, &[], "", None))
}

fn form(
    web: &Web,
    user: &LoggedIn,
    status: StatusCode,
    sources: &[String],
    target: &str,
    error: Option<&str>,
) -> Response {
    let max = web.hub.config().limits.merge_sources;
    let body = html! {
        h1 { "Merge flists" }
        p {
            "Layers flists into a new one in " b { (user.caller.repository) } ". "
            "Where sources hold the same path, the one higher in the list wins: a later source only adds "
            "the paths the ones above it lack (a directory in several is merged, with the first one's owner and mode). "
            "The entrypoint, environment and other metadata are the first source's."
        }
        @if let Some(error) = error { p.error role="alert" { (error) } }
        form.stack action="/merge" method="post" {
            input type="hidden" name="csrf" value=(user.session.csrf);
            div.picker data-merge-picker hidden {
                label for="merge-search" { "Find a source (repository or flist name)" }
                input #merge-search type="search" autocomplete="off" maxlength=(TEXT_LIMIT)
                    placeholder="alpine, alice/app";
                p.muted data-merge-status aria-live="polite" {}
                ul.hits #merge-results {}
            }
            h2 { "Sources, in order of precedence" }
            p.muted { "At most " (max) "." }
            ol.chosen #merge-chosen {
                @for (i, source) in sources.iter().enumerate() { (chosen(source, i, sources.len())) }
            }
            noscript {
                label for="merge-sources" { "Sources (" code { "repository/name" } ", one a line, the first wins)" }
                textarea #merge-sources name="sources" rows="5" {}
            }
            label for="merge-target" { "Name of the merged flist" }
            input #merge-target name="target" value=(target) required maxlength="255" placeholder="app-with-tools.flist";
            button type="submit" { "Merge" }
        }
    };
    page(
        &web.shell("Merge flists", Some(user)),
        status,
        &body.into_string(),
    )
}

/// One chosen source: its rank is its place in the list; the buttons are the script's
/// (hidden until it runs), the value goes with the form.
fn chosen(source: &str, place: usize, count: usize) -> Markup {
    let rank = match place {
        0 if count > 1 => "wins on every path it holds",
        0 => "",
        _ => "adds only the paths the ones above lack",
    };
    html! {
        li data-source=(source) {
            span.source { (source) }
            " "
            span.rank.muted { (rank) }
            input type="hidden" name="source" value=(source);
            span.moves {
                button.secondary type="button" data-move="up" hidden aria-label={ "Move " (source) " up" } { "↑" }
                button.secondary type="button" data-move="down" hidden aria-label={ "Move " (source) " down" } { "↓" }
                button.secondary type="button" data-move="remove" hidden aria-label={ "Remove " (source) } { "Remove" }
            }
        }
    }
}

/// `POST /merge`: `source` fields in order (the picker's), or `sources` lines (the form
/// without script); then the merged flist's page. A refusal shows the form again with the
/// hub's message and the choices kept.
pub async fn merge(
    web: State,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let user = writer(&web, &headers).await?;
    let value = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    check_form(&web, &headers, Some(&user), value("csrf"))?;
    let target = value("target").unwrap_or("").trim().to_owned();
    let mut sources: Vec<String> = Vec::new();
    for (key, text) in &fields {
        let lines: Vec<&str> = match key.as_str() {
            "source" => vec![text.as_str()],
            "sources" => text.lines().collect(),
            _ => continue,
        };
        // As many as were sent (the body is bounded by `limits.request-body`): the hub
        // refuses more than it merges, saying how many came.
        sources.extend(
            lines
                .into_iter()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
    }
    let names: Vec<&str> = sources.iter().map(String::as_str).collect();
    match web.hub.merge(&user.caller, &target, &names).await {
        Ok(published) => {
            let to = format!(
                "{}.md",
                path(&[&published.repository, &published.shown_name()])
            );
            Ok(Redirect::to(&to).into_response())
        }
        Err(e) => {
            let (status, message) = described(e);
            Ok(form(&web, &user, status, &sources, &target, Some(&message)))
        }
    }
}

#[derive(Deserialize)]
pub struct SourcesQuery {
    q: Option<String>,
}

/// A source the picker offers.
#[derive(Serialize)]
struct Found {
    /// `repo/name`, as the merge takes it.
    source: String,
    kind: &'static str,
}

/// `GET /merge/sources?q=`: the first flists (and links to flists) whose name contains
/// the text, as JSON; `repo/text` looks in repositories whose name contains `repo`,
/// `repo/` lists that repository. Public, as search is.
pub async fn sources(web: State, Query(query): Query<SourcesQuery>) -> Result<Response> {
    let text = query.q.unwrap_or_default();
    let text = text.trim();
    if text.len() > TEXT_LIMIT {
        return Err(Error::BadRequest(format!(
            "search text has at most {TEXT_LIMIT} bytes"
        )));
    }
    let (repository, name) = match text.split_once('/') {
        Some((repository, name)) => (Some(repository.trim()), name.trim()),
        None => (None, text),
    };
    let catalogue = web.hub.catalogue();
    let mut found = Vec::new();
    if name.is_empty() {
        // `repo/`: that repository's flists (one repository's listing, as its page reads).
        if let Some(repository) = repository.filter(|r| !r.is_empty()) {
            let listed = match catalogue.repository(repository).await {
                Ok(listed) => listed,
                Err(Error::NotFound(_) | Error::BadRequest(_)) => Vec::new(),
                Err(e) => return Err(e),
            };
            found.extend(
                listed
                    .into_iter()
                    .filter_map(|item| offered(item.kind).map(|kind| (item.name, kind)))
                    .map(|(name, kind)| Found {
                        source: format!("{repository}/{name}"),
                        kind,
                    })
                    .take(SOURCE_HITS),
            );
        }
    } else {
        for hit in catalogue.search(name, 0, SEARCHED).await? {
            let (Some(name), Some(kind)) = (hit.name, hit.kind.and_then(offered)) else {
                continue;
            };
            if repository.is_some_and(|r| !hit.repository.contains(r)) {
                continue;
            }
            found.push(Found {
                source: format!("{}/{name}", hit.repository),
                kind,
            });
            if found.len() == SOURCE_HITS {
                break;
            }
        }
    }
    Ok(Json(found).into_response())
}

/// The kinds a merge takes: flists, and links that resolve to one.
fn offered(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Regular | Kind::Symlink => Some(kind.as_str()),
        Kind::Taglink | Kind::Tag => None,
    }
}
