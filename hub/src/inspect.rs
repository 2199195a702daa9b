//! What the hub reads out of the flists it holds: the contents dump and the metadata of
//! 0-hub's API, read natively from the file (0-hub forked `zflist` and unpacked the flist
//! on every call).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::sync::Mutex;

use bytes::Bytes;
use flist::Totals;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::catalogue::Backend;
use crate::error::Result;
use crate::formats::{AnyFlist, EntryKind};
use crate::pyjson::python;

/// 0-hub's flist statistics (zflist's `putdir`/`check` response).
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
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
            // The contents dump lists what is below the root: the root is not counted.
            directory: t.directories.saturating_sub(1),
            special: t.specials,
            failure: 0,
            fullsize: t.bytes,
        }
    }
}

#[derive(Serialize)]
struct ContentEntry<'a> {
    size: u64,
    path: &'a str,
}

/// Writes the contents dump of `GET /api/flist/<repo>/<flist>` (every entry below the root
/// with its size, then the counts, as 0-hub's JSON and a newline) to `out` as the walk goes,
/// so that memory does not grow with the flist. Blocking.
pub fn write_contents(flist: &AnyFlist, out: &mut impl Write) -> Result<()> {
    let mut counts = Stats::default();
    let io = |e: std::io::Error| crate::error::Error::io("writing a contents dump", e);
    out.write_all(b"{\"content\": [").map_err(io)?;
    let mut first = true;
    flist.walk(|path, kind, size| {
        match kind {
            EntryKind::Regular => {
                counts.regular += 1;
                counts.fullsize += size;
            }
            EntryKind::Directory => counts.directory += 1,
            EntryKind::Symlink => counts.symlink += 1,
            EntryKind::Special => counts.special += 1,
        }
        let path = format!("/{}", String::from_utf8_lossy(path));
        let mut row = if first { Vec::new() } else { b", ".to_vec() };
        first = false;
        row.extend(python(&ContentEntry { size, path: &path }));
        // An error (the reader went away) ends the walk.
        out.write_all(&row).map_err(io)
    })?;
    let Stats {
        regular,
        symlink,
        directory,
        special,
        failure,
        fullsize,
    } = counts;
    writeln!(
        out,
        "], \"regular\": {regular}, \"symlink\": {symlink}, \"directory\": {directory}, \"special\": {special}, \"failure\": {failure}, \"fullsize\": {fullsize}}}"
    )
    .map_err(io)
}

/// The metadata of `GET /api/flist/<repo>/<flist>/metadata`: each key's value parsed as
/// JSON when it is JSON, as text otherwise; `backend-forced` added from the hub's routes
/// when the flist has no `backend`, as 0-hub did.
pub fn metadata_json(
    metadata: &BTreeMap<String, String>,
    backend: Option<&Backend>,
) -> BTreeMap<String, serde_json::Value> {
    let mut out: BTreeMap<String, serde_json::Value> = metadata
        .iter()
        .map(|(key, value)| {
            let parsed = serde_json::from_str(value)
                .unwrap_or_else(|_| serde_json::Value::String(value.clone()));
            (key.clone(), parsed)
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
    out
}

/// A blocking writer whose output goes to a channel in pieces (a response body), and is
/// also kept whole while it is small (for [`ContentsCache`]).
pub struct PieceWriter {
    tx: mpsc::Sender<Bytes>,
    buffer: Vec<u8>,
    kept: Option<Vec<u8>>,
    keep_limit: usize,
}

impl PieceWriter {
    /// Bytes sent at a time.
    const PIECE: usize = 64 << 10;

    pub fn new(tx: mpsc::Sender<Bytes>, keep_limit: usize) -> PieceWriter {
        PieceWriter {
            tx,
            buffer: Vec::with_capacity(Self::PIECE),
            kept: Some(Vec::new()),
            keep_limit,
        }
    }

    /// Sends what is left; the whole output if it was small enough to keep.
    pub fn finish(mut self) -> Result<Option<Vec<u8>>> {
        self.flush()
            .map_err(|e| crate::error::Error::io("a contents dump", e))?;
        Ok(self.kept)
    }
}

impl Write for PieceWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= Self::PIECE {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buffer, Vec::with_capacity(Self::PIECE));
        if let Some(kept) = &mut self.kept {
            if kept.len() + piece.len() <= self.keep_limit {
                kept.extend_from_slice(&piece);
            } else {
                self.kept = None;
            }
        }
        self.tx
            .blocking_send(piece.into())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
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

    /// The largest dump kept.
    pub fn entry_limit(&self) -> usize {
        self.budget / 16
    }

    pub fn put(&self, sha256: &str, value: Bytes) {
        if value.len() > self.entry_limit() {
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
