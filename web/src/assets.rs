//! The stylesheet and the script, embedded in the binary and served under names that carry
//! a hash of their bytes: a new build changes the name, so they are cached for a year.
//! The script is its source files in `static/` joined: each page loads one script, and
//! each file keeps one job (`jobs.js`: the job follower the upload and conversion pages
//! share; `upload.js`: the upload forms; `convert.js` and `merge.js`: the conversion's
//! job page and the merge page's source picker).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const CSS: &str = include_str!("../static/app.css");
const JS: &str = concat!(
    include_str!("../static/app.js"),
    include_str!("../static/jobs.js"),
    include_str!("../static/upload.js"),
    include_str!("../static/convert.js"),
    include_str!("../static/merge.js")
);

/// FNV-1a of the bytes: names that change when the bytes do (not a security property).
const fn fnv(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

const CSS_HASH: u64 = fnv(CSS.as_bytes());
const JS_HASH: u64 = fnv(JS.as_bytes());

/// The URL of the stylesheet.
pub fn css_url() -> String {
    format!("/static/app-{CSS_HASH:016x}.css")
}

/// The URL of the script.
pub fn js_url() -> String {
    format!("/static/app-{JS_HASH:016x}.js")
}

/// `GET /static/<file>`: only the current names are served.
pub async fn serve(Path(file): Path<String>) -> Response {
    let (body, kind) = if file == format!("app-{CSS_HASH:016x}.css") {
        (CSS, "text/css; charset=utf-8")
    } else if file == format!("app-{JS_HASH:016x}.js") {
        (JS, "text/javascript; charset=utf-8")
    } else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        body,
    )
        .into_response()
}
