//! The pages anyone may read: the repositories, a repository, a tag, an flist's preview,
//! search. Bodies depend only on the namespace and are kept in the page cache until it
//! changes.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use hub::{Kind, Listed, RepositorySummary, Result, Target, Totals};
use maud::{Markup, html};
use serde::Deserialize;

use crate::render::{Shell, page, path, size, time};
use crate::session::{LoggedIn, logged_in};
use crate::{State, Web};

/// Rows a page lists.
pub const PAGE_ROWS: usize = 50;
/// Repositories the home page lists per page.
const HOME_ROWS: usize = 100;

/// Paging and order of a listing, as links write them; anything else is ignored.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    page: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    q: Option<String>,
}

impl ListQuery {
    fn page(&self) -> usize {
        self.page
            .as_deref()
            .and_then(|p| p.parse::<usize>().ok())
            .filter(|&p| p >= 1)
            .unwrap_or(1)
    }

    fn sort(&self) -> Sort {
        match self.sort.as_deref() {
            Some("size") => Sort::Size,
            Some("updated") => Sort::Updated,
            _ => Sort::Name,
        }
    }

    fn descending(&self) -> bool {
        self.order.as_deref() == Some("desc")
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    Name,
    Size,
    Updated,
}

impl Sort {
    fn as_str(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::Size => "size",
            Sort::Updated => "updated",
        }
    }
}

impl Web {
    pub(crate) fn shell<'a>(&self, title: &'a str, user: Option<&'a LoggedIn>) -> Shell<'a> {
        Shell {
            title,
            readonly: self.hub.config().server.readonly,
            user,
        }
    }

    /// The body kept under `key`, or rendered by `render` and kept.
    pub(crate) async fn cached<Fut>(
        &self,
        key: String,
        render: impl FnOnce() -> Fut,
    ) -> Result<Arc<str>>
    where
        Fut: Future<Output = Result<Markup>>,
    {
        let generation = self.hub.catalogue().generation();
        self.cache
            .get_or_render(generation, key, async {
                Ok(render().await?.into_string().into())
            })
            .await
    }
}

/// `GET /`: official repositories, then the others (paginated), and the hub's figures.
pub async fn home(
    web: State,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response> {
    let user = logged_in(&web, &headers).await?;
    let page_number = query.page();
    let body = web
        .cached(format!("/?{page_number}"), || async {
            let catalogue = web.hub.catalogue();
            let (summaries, totals) =
                tokio::try_join!(catalogue.repository_summaries(), catalogue.totals())?;
            Ok(home_body(&summaries, &totals, page_number))
        })
        .await?;
    Ok(page(
        &web.shell("Repositories", user.as_ref()),
        StatusCode::OK,
        &body,
    ))
}

fn home_body(summaries: &[RepositorySummary], totals: &Totals, page_number: usize) -> Markup {
    let (official, others): (Vec<_>, Vec<_>) = summaries.iter().partition(|s| s.official);
    let start = (page_number - 1) * HOME_ROWS;
    let shown: Vec<_> = others.iter().skip(start).take(HOME_ROWS).collect();
    let ratio =
        (totals.chunk_bytes > 0).then(|| totals.expanded as f64 / totals.chunk_bytes as f64);
    html! {
        h1 { "Repositories" }
        ul.figures aria-label="Hub totals" {
            li { b { (totals.repositories) } "repositories" }
            li { b { (totals.flists) } "flists" }
            li { b { (size(totals.file_bytes)) } "in flist files" }
            li { b { (size(totals.expanded)) } "of content described" }
            @if let Some(ratio) = ratio {
                li title="content described ÷ chunk bytes stored through the chunk API" {
                    b { (format!("{ratio:.1}×")) } "deduplication"
                }
            }
        }
        @if !official.is_empty() {
            h2 { "Official repositories" }
            (repository_table(official.iter().copied()))
        }
        h2 { "Contributors" }
        @if others.is_empty() {
            p.muted { "No repositories yet." }
        } @else {
            (repository_table(shown.iter().map(|s| **s)))
            (pager("/", &[], page_number, start + HOME_ROWS < others.len()))
        }
    }
}

fn repository_table<'a>(rows: impl Iterator<Item = &'a RepositorySummary>) -> Markup {
    html! {
        div.table-wrap { table {
            thead { tr {
                th scope="col" { "Repository" }
                th.num scope="col" { "Flists" }
                th.num.optional scope="col" { "Size" }
                th scope="col" { "Last update" }
            } }
            tbody {
                @for row in rows {
                    tr {
                        td.name { a href=(path(&[&row.figures.name])) { (row.figures.name) } }
                        td.num { (row.figures.flists) }
                        td.num.optional { (size(row.figures.size)) }
                        td { (time(row.figures.updated)) }
                    }
                }
            }
        } }
    }
}

/// Links to the previous and next pages of a listing at `base`, keeping `keep`.
fn pager(base: &str, keep: &[(&str, &str)], page_number: usize, more: bool) -> Markup {
    let link = |n: usize| {
        let mut query: Vec<String> = keep
            .iter()
            .map(|(k, v)| format!("{k}={}", hub::encode_segment(v)))
            .collect();
        query.push(format!("page={n}"));
        format!("{base}?{}", query.join("&"))
    };
    html! {
        nav.pages aria-label="Pages" {
            @if page_number > 1 { a rel="prev" href=(link(page_number - 1)) { "← Previous" } }
            @if page_number > 1 || more { span.muted { "Page " (page_number) } }
            @if more { a rel="next" href=(link(page_number + 1)) { "Next →" } }
        }
    }
}

/// `GET /<repo>`: flists and symlinks (sortable, paginated), taglinks, tags.
pub async fn repository(
    web: State,
    Path(repo): Path<String>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response> {
    let user = logged_in(&web, &headers).await?;
    let (sort, descending, page_number) = (query.sort(), query.descending(), query.page());
    let key = format!("/{repo}?{}:{descending}:{page_number}", sort.as_str());
    let body = web
        .cached(key, || async {
            let listed = web.hub.catalogue().repository(&repo).await?;
            Ok(repository_body(
                &web,
                &repo,
                listed,
                sort,
                descending,
                page_number,
            ))
        })
        .await?;
    Ok(page(
        &web.shell(&repo, user.as_ref()),
        StatusCode::OK,
        &body,
    ))
}

fn repository_body(
    web: &Web,
    repo: &str,
    listed: Vec<Listed>,
    sort: Sort,
    descending: bool,
    page_number: usize,
) -> Markup {
    let mut flists = Vec::new();
    let (mut taglinks, mut tags) = (Vec::new(), Vec::new());
    for item in listed {
        match item.kind {
            Kind::Regular | Kind::Symlink => flists.push(item),
            Kind::Taglink => taglinks.push(item),
            Kind::Tag => tags.push(item),
        }
    }
    match sort {
        Sort::Name => flists.sort_by(|a, b| a.name.cmp(&b.name)),
        Sort::Size => flists.sort_by_key(|f| (f.size, f.name.clone())),
        Sort::Updated => flists.sort_by_key(|f| (f.updated, f.name.clone())),
    }
    if descending {
        flists.reverse();
    }
    let start = (page_number - 1) * PAGE_ROWS;
    let more = start + PAGE_ROWS < flists.len();
    let base = path(&[repo]);
    let header = |column: Sort, label: &str| {
        let order = if sort == column && !descending {
            "desc"
        } else {
            "asc"
        };
        let current = (sort == column).then_some(if descending {
            "descending"
        } else {
            "ascending"
        });
        html! {
            a href={ (base) "?sort=" (column.as_str()) "&order=" (order) } aria-sort=[current] { (label) }
        }
    };
    let catalogue = web.hub.catalogue();
    html! {
        h1 { (repo) }
        h2 { "Flists" }
        @if flists.is_empty() {
            p.muted { "No flists." }
        } @else {
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { (header(Sort::Name, "Name")) }
                    th.num scope="col" { (header(Sort::Size, "Size")) }
                    th.optional scope="col" { (header(Sort::Updated, "Updated")) }
                    th scope="col" { "URLs" }
                } }
                tbody {
                    @for item in flists.iter().skip(start).take(PAGE_ROWS) {
                        tr {
                            td.name {
                                a href={ (path(&[repo, &item.name])) ".md" } { (item.name) }
                                @if let Some(target) = &item.target {
                                    " ➔ " (target_link(repo, target))
                                }
                            }
                            td.num { (item.size.map_or_else(|| "—".into(), size)) }
                            td.optional { (time(item.updated)) }
                            td {
                                (copy_button("download URL", &catalogue.url_of(repo, &item.name)))
                                " "
                                (copy_button("Zero-OS URL", &zos_url(web, repo, item)))
                            }
                        }
                    }
                }
            } }
            (pager(&base, &[("sort", sort.as_str()), ("order", if descending { "desc" } else { "asc" })], page_number, more))
        }
        @if flists.len() >= 2 {
            (compare_form(repo, &flists))
        }
        @if !taglinks.is_empty() {
            h2 { "Taglinks" }
            ul { @for item in &taglinks {
                li { (item.name) " ➔ " @if let Some(target) = &item.target { (target_link(repo, target)) } " " span.muted { (time(item.updated)) } }
            } }
        }
        @if !tags.is_empty() {
            h2 { "Tags" }
            ul { @for item in &tags {
                li { a href=(path(&[repo, "tags", &item.name])) { (item.name) } " " span.muted { (time(item.updated)) } }
            } }
        }
    }
}

/// Two of the repository's flists to compare (`/diff`), the newest two chosen.
fn compare_form(repo: &str, flists: &[Listed]) -> Markup {
    let mut newest: Vec<&Listed> = flists.iter().collect();
    newest.sort_by_key(|f| std::cmp::Reverse(f.updated));
    let (from, to) = (&newest[1].name, &newest[0].name);
    let choices = |id: &str, label: &str, name: &str, chosen: &str| {
        html! {
            label for=(id) { (label) }
            select #(id) name=(name) {
                @for f in flists {
                    option value={ (repo) "/" (f.name) } selected[f.name == chosen] { (f.name) }
                }
            }
        }
    };
    html! {
        h2 { "Compare" }
        form.stack action="/diff" method="get" {
            (choices("compare-a", "From", "a", from))
            (choices("compare-b", "To", "b", to))
            button type="submit" { "Compare the files" }
        }
    }
}

/// A copy button labelled for what it copies, with the value as a link for readers
/// without the script.
fn copy_button(label: &str, url: &str) -> Markup {
    html! {
        a.mono href=(url) title=(url) { (label) }
        button.copy type="button" data-copy=(url) hidden aria-label={ "Copy " (label) } { "Copy" }
    }
}

/// The URL a node is given: the file a link resolves to now (what a deployment pins).
fn zos_url(web: &Web, repo: &str, item: &Listed) -> String {
    let catalogue = web.hub.catalogue();
    match &item.target {
        Some(Target::Local(name)) => catalogue.url_of(repo, name),
        Some(Target::Flist { repository, name }) => catalogue.url_of(repository, name),
        _ => catalogue.url_of(repo, &item.name),
    }
}

pub(crate) fn target_link(repo: &str, target: &Target) -> Markup {
    let href = match target {
        Target::Local(name) => format!("{}.md", path(&[repo, name])),
        Target::Flist { repository, name } => format!("{}.md", path(&[repository, name])),
        Target::Tag { repository, tag } => path(&[repository, "tags", tag]),
    };
    html! { a href=(href) { (target.cleaned()) } }
}

/// `GET /<repo>/tags/<tag>`: the tag's members.
pub async fn tag(
    web: State,
    Path((repo, tag)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let user = logged_in(&web, &headers).await?;
    let body = web
        .cached(format!("/{repo}/tags/{tag}"), || async {
            let members = web.hub.catalogue().tag(&repo, &tag).await?;
            Ok(html! {
                h1 { a href=(path(&[&repo])) { (repo) } " / tags / " (tag) }
                @if members.is_empty() { p.muted { "No members." } }
                ul { @for member in &members {
                    li {
                        (member.name)
                        @if let Some(target) = &member.target { " ➔ " (target_link(&repo, target)) }
                        " " span.muted { (time(member.updated)) }
                    }
                } }
            })
        })
        .await?;
    Ok(page(&web.shell(&tag, user.as_ref()), StatusCode::OK, &body))
}

/// `GET /search?q=`: repositories, names and tags containing the text.
pub async fn search(
    web: State,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response> {
    let user = logged_in(&web, &headers).await?;
    let text = query.q.as_deref().unwrap_or("").trim().to_owned();
    let page_number = query.page();
    let hits = if text.is_empty() {
        Vec::new()
    } else {
        let offset = ((page_number - 1) * PAGE_ROWS) as u64;
        web.hub
            .catalogue()
            .search(&text, offset, PAGE_ROWS as u64 + 1)
            .await?
    };
    let more = hits.len() > PAGE_ROWS;
    let body = html! {
        h1 { "Search" }
        form.stack action="/search" method="get" role="search" {
            label for="search-q" { "Repository, flist or tag name contains" }
            input #search-q type="search" name="q" value=(text) required;
            button type="submit" { "Search" }
        }
        @if !text.is_empty() {
            @if hits.is_empty() { p { "Nothing matches " q { (text) } "." } }
            @else {
                div.table-wrap { table {
                    thead { tr { th scope="col" { "Found" } th scope="col" { "Kind" } th scope="col" { "Updated" } } }
                    tbody { @for hit in hits.iter().take(PAGE_ROWS) {
                        tr {
                            td.name { @match (&hit.name, hit.kind) {
                                (Some(name), Some(Kind::Tag)) => { a href=(path(&[&hit.repository, "tags", name])) { (hit.repository) "/tags/" (name) } },
                                (Some(name), Some(Kind::Taglink)) => { a href=(path(&[&hit.repository])) { (hit.repository) "/" (name) } },
                                (Some(name), _) => { a href={ (path(&[&hit.repository, name])) ".md" } { (hit.repository) "/" (name) } },
                                (None, _) => { a href=(path(&[&hit.repository])) { (hit.repository) } },
                            } }
                            td { (hit.kind.map_or("repository", Kind::as_str)) }
                            td { (time(hit.updated)) }
                        }
                    } }
                } }
                (pager("/search", &[("q", &text)], page_number, more))
            }
        }
    };
    Ok(page(
        &web.shell("Search", user.as_ref()),
        StatusCode::OK,
        &body.into_string(),
    ))
}
