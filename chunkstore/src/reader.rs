//! Reading file content back out of a store: the one place that fetches chunks in batches,
//! decodes them, checks them against the key and the length the file records, reads ahead
//! and, when asked, keeps recently decoded chunks.
//!
//! A file is a slice of [`ChunkSpan`]s in file order; a chunk's offset is the sum of the
//! lengths before it. Everything handed out is verified plaintext: a chunk the store lacks is
//! [`Error::Missing`], one that does not decode to its key's content is one of the decode
//! errors ([`Error::KeyMismatch`], [`Error::Corrupt`], ...), one of another length than the
//! file says is [`Error::WrongLength`]; each names the key.
//!
//! Decoding happens on the thread that polls: callers that read a lot (extraction) do so from
//! several threads, each blocking on its own batch, so that decoding and hashing use every
//! core.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::Stream;

use crate::codec::{Codec, DEFAULT_LEVEL, EncodedChunk};
use crate::error::{Error, Result};
use crate::key::ChunkKey;
use crate::store::ChunkStore;

/// Chunks asked of the store in one `get_many` unless configured otherwise.
pub const DEFAULT_READ_AHEAD: usize = 16;
/// A batch also stops at this many plaintext bytes, so that the bytes in flight (the batch
/// being consumed and the one read ahead) stay bounded whatever the chunk sizes.
const BATCH_BYTES: u64 = 8 << 20;

/// One chunk of a file: its key and its plaintext length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkSpan {
    pub key: ChunkKey,
    pub length: u32,
}

/// Buffers a thread reuses for [`ChunkReader::read_here`]: the stored bytes of the chunk
/// last read and its decompressed plaintext. Each grows to the largest chunk read.
#[derive(Debug, Default)]
pub struct Scratch {
    stored: Vec<u8>,
    plain: Vec<u8>,
}

/// Reads verified chunk content from a store. Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct ChunkReader {
    store: Arc<dyn ChunkStore>,
    read_ahead: usize,
    cache: Option<Arc<Mutex<Lru>>>,
}

impl ChunkReader {
    /// A reader without cache, reading ahead [`DEFAULT_READ_AHEAD`] chunks.
    pub fn new(store: Arc<dyn ChunkStore>) -> Self {
        ChunkReader {
            store,
            read_ahead: DEFAULT_READ_AHEAD,
            cache: None,
        }
    }

    /// Keeps up to `bytes` of recently decoded chunks (least recently used out first), for
    /// readers that come back to the same chunks (a mount, a gateway serving windows). 0
    /// turns the cache off.
    pub fn with_cache(mut self, bytes: u64) -> Self {
        self.cache = (bytes > 0).then(|| Arc::new(Mutex::new(Lru::new(bytes))));
        self
    }

    /// Chunks per batch asked of the store (at least 1); [`stream`](Self::stream) asks for
    /// the next batch while the current one is consumed.
    pub fn with_read_ahead(mut self, chunks: usize) -> Self {
        self.read_ahead = chunks.max(1);
        self
    }

    pub fn store(&self) -> &Arc<dyn ChunkStore> {
        &self.store
    }

    /// The chunks of `spans`, fetched in one `get_many` (less what the cache holds), each
    /// verified. The outer error is the store's (the whole batch failed); the inner ones are
    /// per chunk, so that a caller reading many files can tell which ones are damaged.
    pub async fn read_chunks(&self, spans: &[ChunkSpan]) -> Result<Vec<Result<Bytes>>> {
        let (mut out, wanted) = self.cached_part(spans);
        if !wanted.is_empty() {
            let keys: Vec<ChunkKey> = wanted.iter().map(|&i| spans[i].key).collect();
            let stored = self.store.get_many(&keys).await?;
            self.fill(spans, &mut out, &wanted, stored)?;
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// One chunk, verified, read on the caller's thread where the store reads locally (see
    /// [`ChunkStore::get_here`]), into `scratch`'s buffers (so that a thread reading many
    /// chunks reuses the same memory for all of them); `None` where the store does not.
    /// The error is the chunk's or the store's.
    pub fn read_here<'s>(
        &self,
        span: &ChunkSpan,
        scratch: &'s mut Scratch,
    ) -> Option<Result<&'s [u8]>> {
        if let Some(data) = self.cached(&span.key) {
            scratch.plain.clear();
            scratch.plain.extend_from_slice(&data);
            return Some(check_length(span, &scratch.plain));
        }
        let Scratch { stored, plain } = scratch;
        let found = match self.store.get_here(&span.key, stored)? {
            Ok(found) => found,
            Err(e) => return Some(Err(e)),
        };
        if !found {
            return Some(Err(Error::Missing { key: span.key }));
        }
        let data = with_codec(|codec| codec.decode_into(&span.key, stored, plain))
            .and_then(|data| check_length(span, data));
        if let (Ok(data), Some(cache)) = (&data, &self.cache) {
            let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.insert(span.key, Bytes::copy_from_slice(data));
        }
        Some(data)
    }

    /// What the cache holds of `spans`, and the indexes of the others.
    fn cached_part(&self, spans: &[ChunkSpan]) -> (Vec<Option<Result<Bytes>>>, Vec<usize>) {
        let out: Vec<Option<Result<Bytes>>> = spans
            .iter()
            .map(|s| self.cached(&s.key).map(|data| check_length(s, data)))
            .collect();
        let wanted = (0..spans.len()).filter(|&i| out[i].is_none()).collect();
        (out, wanted)
    }

    /// Decodes what the store answered for the `wanted` spans into their places in `out`.
    fn fill(
        &self,
        spans: &[ChunkSpan],
        out: &mut [Option<Result<Bytes>>],
        wanted: &[usize],
        stored: Vec<Option<Bytes>>,
    ) -> Result<()> {
        if stored.len() != wanted.len() {
            return Err(Error::Protocol {
                location: self.store.location().to_owned(),
                message: format!("{} answers for {} keys", stored.len(), wanted.len()),
            });
        }
        for (&i, stored) in wanted.iter().zip(stored) {
            out[i] = Some(self.decode(&spans[i], stored));
        }
        Ok(())
    }

    /// `len` bytes of `file` from `offset`, fewer at the end of the file (none past it).
    /// Only the chunks covering the range are read.
    pub async fn read_range(&self, file: &[ChunkSpan], offset: u64, len: usize) -> Result<Vec<u8>> {
        let end = offset.saturating_add(len as u64);
        let mut first = None;
        let mut covering = Vec::new();
        let mut start = 0u64;
        for span in file {
            let stop = start + u64::from(span.length);
            if stop > offset && start < end {
                first.get_or_insert(start);
                covering.push(*span);
            }
            if stop >= end {
                break;
            }
            start = stop;
        }
        let Some(first) = first else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(len.min(covering.iter().map(|s| s.length as usize).sum()));
        let mut at = first;
        for batch in batches(&covering, self.read_ahead) {
            for data in self.read_chunks(batch).await? {
                let data = data?;
                let from = offset.saturating_sub(at) as usize;
                let to = (end - at).min(data.len() as u64) as usize;
                out.extend_from_slice(&data[from..to]);
                at += data.len() as u64;
            }
        }
        Ok(out)
    }

    /// The whole content of `file`, chunk by chunk, verified, in order. The next batch is
    /// fetched (on the runtime, in a task of its own) while the current one is consumed;
    /// the stream ends after the first error.
    pub fn stream(
        &self,
        file: Vec<ChunkSpan>,
    ) -> impl Stream<Item = Result<Bytes>> + Send + 'static {
        let ranges: Vec<(usize, usize)> = {
            let mut at = 0;
            batches(&file, self.read_ahead)
                .map(|b| {
                    at += b.len();
                    (at - b.len(), at)
                })
                .collect()
        };
        let state = Streaming {
            reader: self.clone(),
            file: Arc::from(file),
            ranges: ranges.into_iter(),
            ahead: None,
            current: Vec::new().into_iter(),
            failed: false,
        };
        futures_util::stream::unfold(state, Streaming::next)
    }

    /// The stored form of `keys` (what a chunk API serves to a client that decodes for
    /// itself), fetched in one `get_many` and each checked against its key before it is
    /// handed out, on blocking threads. A chunk the store lacks is [`Error::Missing`].
    pub async fn read_stored(&self, keys: &[ChunkKey]) -> Result<Vec<Result<EncodedChunk>>> {
        let stored = self.store.get_many(keys).await?;
        if stored.len() != keys.len() {
            return Err(Error::Protocol {
                location: self.store.location().to_owned(),
                message: format!("{} answers for {} keys", stored.len(), keys.len()),
            });
        }
        // Every key starts as missing; those the store holds are replaced by their check.
        let mut out: Vec<Result<EncodedChunk>> = Vec::with_capacity(keys.len());
        let mut present = Vec::with_capacity(keys.len());
        let mut at = Vec::with_capacity(keys.len());
        for (i, (key, bytes)) in keys.iter().zip(stored).enumerate() {
            out.push(Err(Error::Missing { key: *key }));
            if let Some(bytes) = bytes {
                at.push(i);
                present.push((*key, bytes));
            }
        }
        for (i, checked) in at.into_iter().zip(verify_stored(present).await?) {
            out[i] = checked;
        }
        Ok(out)
    }

    fn cached(&self, key: &ChunkKey) -> Option<Bytes> {
        let cache = self.cache.as_ref()?;
        cache.lock().unwrap_or_else(|e| e.into_inner()).get(key)
    }

    fn decode(&self, span: &ChunkSpan, stored: Option<Bytes>) -> Result<Bytes> {
        let stored = stored.ok_or(Error::Missing { key: span.key })?;
        let data = with_codec(|codec| codec.decode_shared(&span.key, &stored))?;
        let data = check_length(span, data)?;
        if let Some(cache) = &self.cache {
            let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.insert(span.key, data.clone());
        }
        Ok(data)
    }
}

fn check_length<T: AsRef<[u8]>>(span: &ChunkSpan, data: T) -> Result<T> {
    if data.as_ref().len() != span.length as usize {
        return Err(Error::WrongLength {
            key: span.key,
            length: data.as_ref().len(),
            expected: span.length,
        });
    }
    Ok(data)
}

/// Splits `file` into batches of at most `chunks` chunks and about [`BATCH_BYTES`] bytes
/// (a batch always holds at least one chunk).
fn batches(file: &[ChunkSpan], chunks: usize) -> impl Iterator<Item = &[ChunkSpan]> {
    let mut rest = file;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0u64;
        let mut n = 0;
        while n < rest.len()
            && n < chunks
            && (n == 0 || bytes + u64::from(rest[n].length) <= BATCH_BYTES)
        {
            bytes += u64::from(rest[n].length);
            n += 1;
        }
        let (batch, tail) = rest.split_at(n);
        rest = tail;
        Some(batch)
    })
}

/// Checks chunks in their stored form against their keys (an upload, or what a store holds
/// before it is served), in order, on blocking threads, one share of the batch per CPU.
pub async fn verify_stored(batch: Vec<(ChunkKey, Bytes)>) -> Result<Vec<Result<EncodedChunk>>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let threads = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let share = batch.len().div_ceil(threads);
    let mut batch = batch;
    let mut tasks = Vec::with_capacity(threads);
    while !batch.is_empty() {
        let part: Vec<_> = batch.drain(..share.min(batch.len())).collect();
        tasks.push(tokio::task::spawn_blocking(move || {
            part.into_iter()
                .map(|(key, bytes)| with_codec(|codec| codec.verify(key, bytes)))
                .collect::<Vec<_>>()
        }));
    }
    let mut out = Vec::new();
    for task in tasks {
        out.extend(task.await.map_err(|e| Error::Store {
            location: "chunk verification".to_owned(),
            reason: e.to_string(),
        })?);
    }
    Ok(out)
}

/// Runs `f` with this thread's codec (decoding needs zstd contexts, which are not `Sync`).
fn with_codec<T>(f: impl FnOnce(&mut Codec) -> Result<T>) -> Result<T> {
    thread_local! {
        static CODEC: RefCell<Option<Codec>> = const { RefCell::new(None) };
    }
    CODEC.with(|cell| {
        let mut cell = cell.borrow_mut();
        let codec = match &mut *cell {
            Some(codec) => codec,
            none => none.insert(Codec::new(DEFAULT_LEVEL)?),
        };
        f(codec)
    })
}

type Fetched = tokio::task::JoinHandle<Result<Vec<Result<Bytes>>>>;

/// The state of [`ChunkReader::stream`].
struct Streaming {
    reader: ChunkReader,
    file: Arc<[ChunkSpan]>,
    /// Batches not yet asked for, as index ranges of `file`.
    ranges: std::vec::IntoIter<(usize, usize)>,
    /// The batch asked for ahead of the one being consumed.
    ahead: Option<Fetched>,
    current: std::vec::IntoIter<Result<Bytes>>,
    failed: bool,
}

impl Streaming {
    fn fetch(&mut self) -> Option<Fetched> {
        let (from, to) = self.ranges.next()?;
        let reader = self.reader.clone();
        let file = Arc::clone(&self.file);
        Some(tokio::spawn(async move {
            reader.read_chunks(&file[from..to]).await
        }))
    }

    async fn next(mut self) -> Option<(Result<Bytes>, Self)> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(item) = self.current.next() {
                self.failed = item.is_err();
                return Some((item, self));
            }
            let fetched = match self.ahead.take() {
                Some(fetched) => fetched,
                None => self.fetch()?,
            };
            // Read ahead: the next batch is on its way while this one is consumed.
            self.ahead = self.fetch();
            match fetched.await {
                Ok(Ok(batch)) => self.current = batch.into_iter(),
                Ok(Err(e)) => {
                    self.failed = true;
                    return Some((Err(e), self));
                }
                Err(e) => {
                    self.failed = true;
                    let e = Error::Store {
                        location: self.reader.store.location().to_owned(),
                        reason: format!("a read task failed: {e}"),
                    };
                    return Some((Err(e), self));
                }
            }
        }
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        if let Some(ahead) = self.ahead.take() {
            ahead.abort();
        }
    }
}

/// A least-recently-used map of decoded chunks, bounded in bytes.
struct Lru {
    capacity: u64,
    bytes: u64,
    tick: u64,
    entries: HashMap<ChunkKey, (Bytes, u64)>,
    by_use: BTreeMap<u64, ChunkKey>,
}

impl Lru {
    fn new(capacity: u64) -> Lru {
        Lru {
            capacity,
            bytes: 0,
            tick: 0,
            entries: HashMap::new(),
            by_use: BTreeMap::new(),
        }
    }

    fn get(&mut self, key: &ChunkKey) -> Option<Bytes> {
        self.tick += 1;
        let (data, used) = self.entries.get_mut(key)?;
        self.by_use.remove(used);
        *used = self.tick;
        self.by_use.insert(self.tick, *key);
        Some(data.clone())
    }

    fn insert(&mut self, key: ChunkKey, data: Bytes) {
        let size = data.len() as u64;
        if size > self.capacity || self.entries.contains_key(&key) {
            return;
        }
        while self.bytes + size > self.capacity {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            if let Some((gone, _)) = self.entries.remove(&oldest) {
                self.bytes -= gone.len() as u64;
            }
        }
        self.tick += 1;
        self.bytes += size;
        self.entries.insert(key, (data, self.tick));
        self.by_use.insert(self.tick, key);
    }
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
