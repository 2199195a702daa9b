use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters of a running pipeline, for progress displays and job events. Updated with
/// relaxed atomics: readers see recent values, never torn ones.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes of input consumed (archive bytes as read from the source, compressed or not).
    pub input_bytes: AtomicU64,
    /// File content bytes read (pack) or written (extract).
    pub content_bytes: AtomicU64,
    /// Entries processed.
    pub entries: AtomicU64,
    /// Chunks processed, and those of them the store did not have yet (pack).
    pub chunks: AtomicU64,
    pub new_chunks: AtomicU64,
    /// Bytes written to the store (encoded).
    pub stored_bytes: AtomicU64,
    /// Images: the layers, the one being read (from 1, the top layer first), and the bytes
    /// of all layers as the registry sends them (what `input_bytes` counts up to).
    pub layers: AtomicU64,
    pub layer: AtomicU64,
    pub input_total: AtomicU64,
}

impl Progress {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    #[cfg(feature = "images")]
    pub(crate) fn set(counter: &AtomicU64, n: u64) {
        counter.store(n, Relaxed);
    }
}

/// A reader that counts what it reads into `Progress::input_bytes`.
pub(crate) struct CountingReader<R> {
    inner: R,
    progress: Arc<Progress>,
}

impl<R> CountingReader<R> {
    pub(crate) fn new(inner: R, progress: Arc<Progress>) -> Self {
        CountingReader { inner, progress }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        Progress::add(&self.progress.input_bytes, n as u64);
        Ok(n)
    }
}
