//! The upload pages: `/upload` (0-hub's URL) for an archive, converted by a background job
//! whose progress the page follows, and `/upload-flist` for an flist built elsewhere.
//!
//! The forms are sent by the page's script (`static/upload.js`) to the API's own routes,
//! `POST /upload` and `POST /api/flist/me/upload-flist`, with the session's CSRF token in a
//! header ([`crate::bridge`]): the API's handlers, limits and errors, and byte progress
//! in the browser. Without the script the page says so and gives the curl command.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use hub::Result;
use maud::{Markup, html};

use crate::render::{page, path, size};
use crate::session::{LoggedIn, logged_in};
use crate::{State, Web};

/// What a page's form sends, and where.
struct Upload {
    /// The API route the script posts to.
    action: &'static str,
    /// `data-upload`: what the script does with the answer (a job, or a published flist).
    kind: &'static str,
    label: &'static str,
    /// The file chooser's filter.
    accept: &'static str,
}

const ARCHIVE: Upload = Upload {
    action: "/upload",
    kind: "archive",
    label: "Archive",
    // The extensions the hub converts (`names::strip_archive_extension`).
    accept: ".tar.gz,.tgz,.tar.zst,.tzst,.tar",
};

const FLIST: Upload = Upload {
    action: "/api/flist/me/upload-flist",
    kind: "flist",
    label: "Flist file",
    accept: ".flist,.fl",
};

/// `GET /upload`: an archive, its upload's progress, then its conversion's.
pub async fn upload_page(web: State, headers: HeaderMap) -> Result<Response> {
    let Some(user) = logged_in(&web, &headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let repo = user.caller.repository.to_string();
    let limit = web.hub.config().limits.upload_size;
    let body = html! {
        h1 { "Upload an archive" }
        p {
            "A tarball of a root filesystem (" code { ".tar.gz" } ", " code { ".tgz" } ", "
            code { ".tar.zst" } ", " code { ".tzst" } " or " code { ".tar" } ", at most "
            (size(limit)) ") becomes the flist " b { (repo) "/" i { "name" } ".flist" }
            ", named after the file. The hub converts it after it has arrived; this page "
            "follows the conversion and opens the flist's page when it is published."
        }
        (form(&web, &user, &ARCHIVE, limit, &repo))
        section.job hidden data-job-panel data-job-result={ (path(&[&repo])) "/{name}.md" } {
            h2 { "Converting" }
            progress data-job-progress max="100" value="0" { }
            p data-job-message role="status" {}
            ol.log data-job-log {}
            p.error role="alert" hidden data-job-error {}
        }
        (without_script(&web, "api/flist/me/upload", "file=@app.tar.gz"))
        p.muted {
            "Your uploads and conversions are listed on " a href="/jobs" { "your jobs page" } ". "
            "An flist built elsewhere: " a href="/upload-flist" { "upload an flist" } "."
        }
    };
    Ok(page(
        &web.shell("Upload an archive", Some(&user)),
        StatusCode::OK,
        &body.into_string(),
    ))
}

/// `GET /upload-flist`: an flist built elsewhere: flisthub's own, a 0-flist or an rfs fl.
pub async fn upload_flist_page(web: State, headers: HeaderMap) -> Result<Response> {
    let Some(user) = logged_in(&web, &headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let repo = user.caller.repository.to_string();
    let limit = web.hub.config().limits.flist_size;
    let body = html! {
        h1 { "Upload an flist" }
        p {
            "An flist built elsewhere, published unchanged as " b { (repo) "/" i { "name" } }
            ": flisthub's own " code { ".flist" } " (from " code { "flisthub pack" } "), a 0-flist "
            code { ".flist" } " or an rfs " code { ".fl" } ", at most " (size(limit)) ". "
            "The hub publishes it once the content it names is in the hub's store: it "
            "checks that every chunk (or block) is there."
        }
        (form(&web, &user, &FLIST, limit, &repo))
        div.missing hidden data-missing role="alert" {
            h2 { "The content is not on the hub yet" }
            p {
                "An flist only describes files: their bytes are chunks (or, in 0-flist and fl "
                "files, blocks) that readers fetch from the hub's store. The hub refused this "
                "one because " b data-missing-count {} " of the " span data-missing-checked {}
                " it names are not in its store, so it could not be read from the hub."
            }
            p { "The first missing ones:" }
            ul.mono data-missing-first {}
            p {
                "Publish it with " code { "flisthub push" } " instead: it sends the chunks the hub "
                "lacks first, then this flist (" code { "flisthub push ./rootfs --name app" }
                ", or from a tarball). A 0-flist or fl file needs its blocks in the hub's "
                "0-db gateway before it is uploaded."
            }
        }
        (without_script(&web, "api/flist/me/upload-flist", "file=@app.flist"))
        p.muted { "A tarball instead: " a href="/upload" { "upload an archive" } "." }
    };
    Ok(page(
        &web.shell("Upload an flist", Some(&user)),
        StatusCode::OK,
        &body.into_string(),
    ))
}

/// The file form both pages share: sent by `upload.js` with its byte progress.
fn form(web: &Web, user: &LoggedIn, upload: &Upload, limit: u64, repo: &str) -> Markup {
    let readonly = web.hub.config().server.readonly;
    html! {
        form.stack.upload action=(upload.action) method="post" enctype="multipart/form-data"
            data-upload=(upload.kind) data-csrf=(user.session.csrf) data-max=(limit)
            data-result={ (path(&[repo])) "/{name}.md" } {
            fieldset disabled[readonly] {
                label for="file" { (upload.label) }
                input #file type="file" name="file" accept=(upload.accept) required;
                button type="submit" { "Upload" }
            }
            div.transfer hidden data-transfer {
                progress data-transfer-progress max="100" value="0" {}
                span data-transfer-message role="status" {}
            }
            p.error role="alert" hidden data-upload-error {}
        }
    }
}

/// What to do without the page's script: the same upload with curl and a token.
fn without_script(web: &Web, route: &str, field: &str) -> Markup {
    let public = web.hub.config().public_url();
    html! {
        noscript {
            p.notice {
                "This page sends the file with its script (to show the progress); with "
                "scripts off, upload with curl and an " a href="/tokens" { "API token" } ":"
            }
            pre { (format!("curl -H \"Authorization: bearer $TOKEN\" -F {field} {public}/{route}")) }
        }
    }
}
