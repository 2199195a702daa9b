//! `/diff?a=<repo>/<name>&b=<repo>/<name>`: what differs between two flists, read from
//! their indexes (see `hub::Catalogue::diff`), the first rows listed and the rest counted.

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use hub::{Diff, DiffRow, Difference, Error, NodeKind, Result, TreeEntry};
use maud::{Markup, html};
use serde::Deserialize;

use crate::State;
use crate::render::page;
use crate::session::logged_in;
use crate::tree::{entry_size, shown, tree_url};

/// Rows a diff lists; the others are counted.
pub const DIFF_ROWS: usize = 1_000;
/// The longest reference taken: `<repo>/tags/<tag>/<name>` of names at their longest.
const REFERENCE_LIMIT: usize = 1024;

#[derive(Deserialize, Default)]
pub struct DiffQuery {
    a: Option<String>,
    b: Option<String>,
}

/// `GET /diff`: the form, and the differences once both flists are named.
pub async fn diff(
    web: State,
    headers: HeaderMap,
    Query(query): Query<DiffQuery>,
) -> Result<Response> {
    let user = logged_in(&web, &headers).await?;
    let a = query.a.unwrap_or_default().trim().to_owned();
    let b = query.b.unwrap_or_default().trim().to_owned();
    if a.len() > REFERENCE_LIMIT || b.len() > REFERENCE_LIMIT {
        return Err(Error::BadRequest(format!(
            "an flist is named in {REFERENCE_LIMIT} bytes at most"
        )));
    }
    let result = if a.is_empty() || b.is_empty() {
        None
    } else {
        let key = format!("/diff?{a}\0{b}");
        let body = web
            .cached(key, || async {
                let diff = web.hub.catalogue().diff(&a, &b, DIFF_ROWS).await?;
                Ok(differences(&diff))
            })
            .await?;
        Some(body)
    };
    let form = html! {
        h1 { "Compare two flists" }
        form.stack action="/diff" method="get" {
            label for="diff-a" { "From (" code { "repository/name" } " or " code { "repository/tags/tag/name" } ")" }
            input #diff-a type="text" name="a" value=(a) required;
            label for="diff-b" { "To" }
            input #diff-b type="text" name="b" value=(b) required;
            button type="submit" { "Compare" }
        }
    };
    let mut body = form.into_string();
    if let Some(result) = result {
        body.push_str(&result);
    }
    Ok(page(
        &web.shell("Compare", user.as_ref()),
        StatusCode::OK,
        &body,
    ))
}

fn differences(diff: &Diff) -> Markup {
    let listed = diff.rows.len() as u64;
    let all = diff.added + diff.removed + diff.changed;
    html! {
        p.summary {
            (diff.a.repository) "/" (diff.a.name) " → " (diff.b.repository) "/" (diff.b.name) ": "
            b.added { (diff.added) " added" } ", "
            b.removed { (diff.removed) " removed" } ", "
            b.changed { (diff.changed) " changed" } ", "
            (diff.unchanged) " unchanged."
        }
        @if !diff.contents_compared {
            p.notice { "The two are of different formats (" (diff.a.digest.format.as_str()) ", "
                (diff.b.digest.format.as_str()) "): their chunks are cut and named differently, so files are compared by size and attributes only." }
        }
        @if all > listed {
            p.notice { "The first " (listed) " differences are listed; " (all - listed) " more are not." }
        }
        @if !diff.rows.is_empty() {
            div.table-wrap { table.diff {
                thead { tr {
                    th scope="col" { "" }
                    th scope="col" { "Path" }
                    th scope="col" { "Before" }
                    th scope="col" { "After" }
                    th scope="col" { "What changed" }
                } }
                tbody { @for row in &diff.rows { (diff_row(diff, row)) } }
            } }
        }
    }
}

fn diff_row(diff: &Diff, row: &DiffRow) -> Markup {
    let (sign, class) = match row.change {
        Difference::Added => ("+", "added"),
        Difference::Removed => ("−", "removed"),
        Difference::Changed => ("~", "changed"),
    };
    // A path links to the flist that holds it (the second, unless it was removed).
    let holder = if row.change == Difference::Removed {
        &diff.a
    } else {
        &diff.b
    };
    html! {
        tr class=(class) {
            td aria-label=(class) { (sign) }
            td.name { a href=(tree_url(&holder.repository, &holder.name, row.path())) { (shown(row.path())) } }
            td { (side(row.before.as_ref())) }
            td { (side(row.after.as_ref())) }
            td { (what_changed(row)) }
        }
    }
}

fn side(entry: Option<&TreeEntry>) -> Markup {
    html! {
        @if let Some(entry) = entry {
            span.mono { (entry.node.ls_mode()) } " " (entry_size(entry))
            " " span.muted { (entry.node.uid) ":" (entry.node.gid) }
            @if let NodeKind::Symlink { target } = &entry.node.kind { " ➔ " code { (shown(target)) } }
        }
    }
}

fn what_changed(row: &DiffRow) -> String {
    let (Some(x), Some(y)) = (&row.before, &row.after) else {
        return String::new();
    };
    let mut what = Vec::new();
    if std::mem::discriminant(&x.node.kind) != std::mem::discriminant(&y.node.kind) {
        what.push("kind");
    } else if x.node.kind != y.node.kind {
        what.push(match x.node.kind {
            NodeKind::Regular { .. } => "size",
            NodeKind::Symlink { .. } => "target",
            _ => "device",
        });
    }
    if row.content_differs {
        what.push("content");
    }
    if x.node.mode != y.node.mode {
        what.push("mode");
    }
    if (x.node.uid, x.node.gid) != (y.node.uid, y.node.gid) {
        what.push("owner");
    }
    what.join(", ")
}
