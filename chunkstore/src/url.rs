//! Store URLs.
//!
//! | form | store |
//! |---|---|
//! | `dir:///var/lib/flisthub/store` | [`DirStore`] at an absolute path |
//! | `dir:relative/path`, or a bare path starting with `/` or `.` | [`DirStore`] at that path |
//! | `dir:///path?fsync=false` | without the per-batch `syncfs` (scratch stores, benchmarks) |
//!
//! Paths may percent-encode bytes (`%20`), so that any path can be written as a URL.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::dir::{DirOptions, DirStore};
use crate::error::{Error, Result};
use crate::store::ChunkStore;

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Dir { path: PathBuf, options: DirOptions },
}

impl FromStr for StoreUrl {
    type Err = Error;

    fn from_str(url: &str) -> Result<StoreUrl> {
        let invalid = |reason: String| Error::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let rest = if url.starts_with('/') || url.starts_with('.') {
            url
        } else if let Some(rest) = url.strip_prefix("dir:") {
            rest.strip_prefix("//").unwrap_or(rest)
        } else {
            let scheme = url.split_once(':').map_or(url, |(s, _)| s);
            return Err(invalid(format!(
                "unknown scheme {scheme:?} (supported: dir:// or a path)"
            )));
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            return Err(invalid("the directory path is empty".into()));
        }
        let mut options = DirOptions::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("fsync", value)) => {
                    options.fsync = parse_bool(value)
                        .ok_or_else(|| invalid(format!("fsync={value:?} is not true or false")))?
                }
                _ => return Err(invalid(format!("unknown option {pair:?} (known: fsync)"))),
            }
        }
        let path = percent_decode(path).map_err(invalid)?;
        Ok(StoreUrl::Dir {
            path: PathBuf::from(OsString::from_vec(path)),
            options,
        })
    }
}

/// Opens the store a URL names.
pub async fn open(url: &str) -> Result<Arc<dyn ChunkStore>> {
    match url.parse()? {
        StoreUrl::Dir { path, options } => Ok(Arc::new(DirStore::open(path, options)?)),
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn percent_decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape at byte {i}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    if out.contains(&0) {
        return Err("NUL byte in path".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(url: &str) -> (PathBuf, bool) {
        match url.parse::<StoreUrl>().unwrap() {
            StoreUrl::Dir { path, options } => (path, options.fsync),
        }
    }

    #[test]
    fn parses_dir_forms() {
        assert_eq!(dir("dir:///var/lib/x"), ("/var/lib/x".into(), true));
        assert_eq!(dir("dir:rel/x?fsync=false"), ("rel/x".into(), false));
        assert_eq!(dir("/abs"), ("/abs".into(), true));
        assert_eq!(dir("./here"), ("./here".into(), true));
        assert_eq!(dir("dir:///a%20b"), ("/a b".into(), true));
    }

    #[test]
    fn malformed_urls_name_the_bad_part() {
        for (url, part) in [
            ("s3://bucket", "\"s3\""),
            ("dir://", "empty"),
            ("dir:///x?fsync=maybe", "maybe"),
            ("dir:///x?compress=1", "compress=1"),
            ("dir:///x%zz", "percent"),
            ("dir:///x%00", "NUL"),
        ] {
            let err = url.parse::<StoreUrl>().unwrap_err().to_string();
            assert!(err.contains(part), "{url}: {err}");
        }
    }
}
