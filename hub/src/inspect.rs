//! What the hub reads out of the flists it holds: the contents dump and the metadata of
//! 0-hub's API, read natively from the file (0-hub forked `zflist` and unpacked the flist
//! on every call).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;

use bytes::Bytes;
use flist::{Flist, NodeKind, Totals, Walk};
use serde::Serialize;

use crate::error::Result;
use crate::hub::Backend;

/// 0-hub's flist statistics (zflist's `putdir`/`check` response).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub regular: u64,
    pub symlink: u64,
    pub directory: u64,
    pub special: u64,
    pub failure: u64,
    pub fullsize: u64,
}

impl From<Totals> for Stats {
    fn from(t: Totals) -> Stats {
        Stats {
            regular: t.files + t.hardlinks,
            symlink: t.symlinks,
            directory: t.directories,
            special: t.specials,
            failure: 0,
            fullsize: t.bytes,
        }
    }
}

#[derive(Serialize)]
struct ContentEntry {
    size: u64,
    path: String,
}

#[derive(Serialize)]
struct Contents {
    content: Vec<ContentEntry>,
    regular: u64,
    symlink: u64,
    directory: u64,
    special: u64,
    failure: u64,
    fullsize: u64,
}

/// The contents dump of `GET /api/flist/<repo>/<flist>`: every entry below the root with
/// its size, and the counts. Blocking.
pub fn contents(path: &Path) -> Result<Bytes> {
    let flist = Flist::open(path)?;
    let mut content = Vec::new();
    let mut counts = Contents {
        content: Vec::new(),
        regular: 0,
        symlink: 0,
        directory: 0,
        special: 0,
        failure: 0,
        fullsize: 0,
    };
    flist.walk(|path, entry| {
        if path.is_empty() {
            return Ok(Walk::Continue);
        }
        let size = match entry.node.kind {
            NodeKind::Regular { size } => {
                counts.regular += 1;
                counts.fullsize += size;
                size
            }
            NodeKind::Directory => {
                counts.directory += 1;
                0
            }
            NodeKind::Symlink { .. } => {
                counts.symlink += 1;
                0
            }
            _ => {
                counts.special += 1;
                0
            }
        };
        content.push(ContentEntry {
            size,
            path: format!("/{}", String::from_utf8_lossy(path)),
        });
        Ok(Walk::Continue)
    })?;
    counts.content = content;
    Ok(Bytes::from(crate::http::json::python(&counts)))
}

/// The metadata of `GET /api/flist/<repo>/<flist>/metadata`: each key's value parsed as
/// JSON when it is JSON, as text otherwise; `backend-forced` added from the hub's routes
/// when the flist has no `backend`, as 0-hub did. Blocking.
pub fn metadata(
    path: &Path,
    backend: Option<&Backend>,
) -> Result<BTreeMap<String, serde_json::Value>> {
    let metadata = Flist::open(path)?.metadata()?;
    let mut out: BTreeMap<String, serde_json::Value> = metadata
        .iter()
        .map(|(key, value)| {
            let parsed = serde_json::from_str(value)
                .unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
            (key.to_owned(), parsed)
        })
        .collect();
    if !out.contains_key("backend")
        && let Some(backend) = backend
    {
        out.insert(
            "backend-forced".into(),
            serde_json::to_value(backend).unwrap_or_default(),
        );
    }
    Ok(out)
}

/// Contents dumps by flist sha256: flists never change, and ZOS asks for the same ones
/// again and again. Bounded by total bytes, least recently used out first.
pub struct ContentsCache {
    inner: Mutex<CacheInner>,
    budget: usize,
}

#[derive(Default)]
struct CacheInner {
    entries: HashMap<String, Bytes>,
    order: VecDeque<String>,
    bytes: usize,
}

impl Default for ContentsCache {
    fn default() -> Self {
        ContentsCache {
            inner: Mutex::default(),
            budget: 64 << 20,
        }
    }
}

impl ContentsCache {
    pub fn get(&self, sha256: &str) -> Option<Bytes> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let found = inner.entries.get(sha256).cloned()?;
        inner.order.retain(|k| k != sha256);
        inner.order.push_back(sha256.to_owned());
        Some(found)
    }

    pub fn put(&self, sha256: &str, value: Bytes) {
        if value.len() > self.budget / 4 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = inner.entries.insert(sha256.to_owned(), value.clone()) {
            inner.bytes -= old.len();
            inner.order.retain(|k| k != sha256);
        }
        inner.bytes += value.len();
        inner.order.push_back(sha256.to_owned());
        while inner.bytes > self.budget {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(old) = inner.entries.remove(&oldest) {
                inner.bytes -= old.len();
            }
        }
    }
}
