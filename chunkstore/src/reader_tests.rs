use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use futures_util::StreamExt;

use super::*;
use crate::store::BackendStats;
use crate::{Chunk, DirOptions, DirStore, EncodedChunk};

/// A file of `sizes.len()` chunks of pseudo-random content stored in a fresh dir store.
struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<DirStore>,
    spans: Vec<ChunkSpan>,
    content: Vec<u8>,
}

async fn fixture(sizes: &[usize]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(DirStore::open(dir.path(), DirOptions::default()).unwrap());
    let mut codec = Codec::new(DEFAULT_LEVEL).unwrap();
    let mut spans = Vec::new();
    let mut content = Vec::new();
    let mut seed = 7u64;
    for (i, &size) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..size)
            .map(|j| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // Half compressible, half not, so both stored forms are read.
                if i % 2 == 0 {
                    ((j + 7 * i) % 251) as u8
                } else {
                    (seed >> 56) as u8
                }
            })
            .collect();
        let chunk = Chunk::new(data.clone());
        spans.push(ChunkSpan {
            key: chunk.key(),
            length: size as u32,
        });
        content.extend_from_slice(&data);
        store.put(codec.encode(&chunk).unwrap()).await.unwrap();
    }
    Fixture {
        _dir: dir,
        store,
        spans,
        content,
    }
}

impl Fixture {
    fn reader(&self) -> ChunkReader {
        ChunkReader::new(Arc::clone(&self.store) as Arc<dyn ChunkStore>)
    }
}

async fn collect(reader: &ChunkReader, file: Vec<ChunkSpan>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut stream = std::pin::pin!(reader.stream(file));
    while let Some(data) = stream.next().await {
        out.extend_from_slice(&data?);
    }
    Ok(out)
}

#[tokio::test]
async fn ranges_across_chunk_boundaries() {
    let f = fixture(&[1000, 3000, 17, 5000, 1]).await;
    let reader = f.reader().with_read_ahead(2);
    let total = f.content.len() as u64;
    for (offset, len) in [
        (0, 10),
        (995, 10),       // across the first boundary
        (990, 3030),     // three chunks
        (4000, 17),      // exactly the third chunk
        (0, 9018),       // everything
        (9000, 100),     // past the end: shortened
        (total, 10),     // at the end: nothing
        (total + 5, 10), // beyond: nothing
        (1234, 0),       // empty range
    ] {
        let got = reader.read_range(&f.spans, offset, len).await.unwrap();
        let from = (offset.min(total)) as usize;
        let to = (offset + len as u64).min(total) as usize;
        assert_eq!(got, f.content[from..to.max(from)], "range {offset}+{len}");
    }
    assert_eq!(collect(&reader, f.spans.clone()).await.unwrap(), f.content);
}

#[tokio::test]
async fn empty_file() {
    let f = fixture(&[]).await;
    let reader = f.reader();
    assert!(collect(&reader, Vec::new()).await.unwrap().is_empty());
    assert!(reader.read_range(&[], 0, 100).await.unwrap().is_empty());
}

#[tokio::test]
async fn missing_and_corrupt_chunks_are_told_apart() {
    let f = fixture(&[100, 200, 300]).await;
    let reader = f.reader();
    // Missing: a key nothing was stored under.
    let absent = ChunkSpan {
        key: ChunkKey::of(b"never stored"),
        length: 12,
    };
    let mut file = f.spans.clone();
    file.insert(1, absent);
    let err = collect(&reader, file).await.unwrap_err();
    assert!(
        matches!(err, Error::Missing { key } if key == absent.key),
        "{err}"
    );
    assert!(!err.is_corrupt_chunk());

    // Wrong length: the file says 201 bytes for a chunk of 200.
    let mut file = f.spans.clone();
    file[1].length += 1;
    let err = reader.read_range(&file, 150, 100).await.unwrap_err();
    assert!(
        matches!(err, Error::WrongLength { key, length: 200, expected: 201 } if key == file[1].key),
        "{err}"
    );
    assert!(err.is_corrupt_chunk());

    // Damaged bytes on disk: the third chunk's file is overwritten by the first chunk's.
    let first = std::fs::read(f.store.chunk_path(&f.spans[0].key)).unwrap();
    std::fs::write(f.store.chunk_path(&f.spans[2].key), first).unwrap();
    let err = collect(&reader, f.spans.clone()).await.unwrap_err();
    assert!(
        matches!(err, Error::KeyMismatch { key, .. } if key == f.spans[2].key),
        "{err}"
    );
    assert!(err.is_corrupt_chunk());
    // Per chunk, the good ones are still read.
    let batch = reader.read_chunks(&f.spans).await.unwrap();
    assert!(batch[0].is_ok() && batch[1].is_ok() && batch[2].is_err());
}

/// Read on the caller's thread, outside any runtime: the same verified content and the
/// same per-chunk errors as through the runtime; a store without local reads says so.
#[tokio::test]
async fn a_local_store_is_read_on_the_callers_thread() {
    let f = fixture(&[100, 70_000, 300]).await;
    let reader = f.reader();
    let absent = ChunkSpan {
        key: ChunkKey::of(b"never stored"),
        length: 12,
    };
    let mut spans = f.spans.clone();
    spans.push(absent);
    let first = std::fs::read(f.store.chunk_path(&f.spans[0].key)).unwrap();
    std::fs::write(f.store.chunk_path(&f.spans[2].key), first).unwrap();
    let here = std::thread::spawn({
        let (reader, spans) = (reader.clone(), spans.clone());
        move || {
            // One scratch for every chunk, as a worker uses it.
            let mut scratch = Scratch::default();
            spans
                .iter()
                .map(|span| {
                    let read = reader.read_here(span, &mut scratch);
                    read.expect("a dir store reads here").map(<[u8]>::to_vec)
                })
                .collect::<Vec<_>>()
        }
    })
    .join()
    .unwrap();
    let there = reader.read_chunks(&spans).await.unwrap();
    assert_eq!(here.len(), 4);
    for (a, b) in here.iter().zip(&there) {
        assert_eq!(a.as_deref().ok(), b.as_deref().ok());
        assert_eq!(a.is_err(), b.is_err());
    }
    let whole = [
        &here[0].as_ref().unwrap()[..],
        &here[1].as_ref().unwrap()[..],
    ]
    .concat();
    assert_eq!(whole, f.content[..70_100]);
    assert!(matches!(here[2], Err(Error::KeyMismatch { .. })));
    assert!(matches!(here[3], Err(Error::Missing { key }) if key == absent.key));
    // A chunk of another length than the file says is refused as the batch read refuses it.
    let mut scratch = Scratch::default();
    let short = ChunkSpan {
        length: f.spans[0].length - 1,
        ..f.spans[0]
    };
    let read = reader.read_here(&short, &mut scratch).unwrap();
    assert!(matches!(read, Err(Error::WrongLength { .. })), "{read:?}");

    let counting = Counting {
        inner: Arc::clone(&f.store),
        asked: AtomicUsize::new(0),
        calls: AtomicUsize::new(0),
    };
    let remote = ChunkReader::new(Arc::new(counting));
    assert!(remote.read_here(&f.spans[0], &mut scratch).is_none());
}

/// A store that counts the keys asked of it.
struct Counting {
    inner: Arc<DirStore>,
    asked: AtomicUsize,
    calls: AtomicUsize,
}

#[async_trait]
impl ChunkStore for Counting {
    fn location(&self) -> &str {
        self.inner.location()
    }
    fn routes(&self) -> Vec<String> {
        Vec::new()
    }
    async fn has_many(&self, keys: &[ChunkKey]) -> Result<Vec<bool>> {
        self.inner.has_many(keys).await
    }
    async fn put_many(&self, chunks: &[EncodedChunk]) -> Result<()> {
        self.inner.put_many(chunks).await
    }
    async fn get_many(&self, keys: &[ChunkKey]) -> Result<Vec<Option<Bytes>>> {
        self.asked.fetch_add(keys.len(), Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.get_many(keys).await
    }
    async fn stats(&self) -> Result<Vec<BackendStats>> {
        self.inner.stats().await
    }
}

#[tokio::test]
async fn reads_ahead_one_batch_and_no_more() {
    let f = fixture(&[64; 40]).await;
    let counting = Arc::new(Counting {
        inner: Arc::clone(&f.store),
        asked: AtomicUsize::new(0),
        calls: AtomicUsize::new(0),
    });
    let reader = ChunkReader::new(Arc::clone(&counting) as Arc<dyn ChunkStore>).with_read_ahead(4);
    let mut stream = std::pin::pin!(reader.stream(f.spans.clone()));
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first[..], f.content[..64]);
    // Give the read-ahead task every chance to run further than it should.
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    // The batch being consumed and the one ahead: 8 chunks, not 40.
    assert_eq!(counting.asked.load(Ordering::SeqCst), 8);
    let mut rest = first.to_vec();
    while let Some(data) = stream.next().await {
        rest.extend_from_slice(&data.unwrap());
    }
    assert_eq!(rest, f.content);
    assert_eq!(counting.calls.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn batches_are_bounded_in_bytes() {
    let spans: Vec<ChunkSpan> = (0..10u8)
        .map(|i| ChunkSpan {
            key: ChunkKey::from_bytes([i; 32]),
            length: 3 << 20,
        })
        .collect();
    let sizes: Vec<usize> = batches(&spans, 100).map(<[_]>::len).collect();
    // 8 MiB per batch: two 3 MiB chunks each.
    assert_eq!(sizes, [2, 2, 2, 2, 2]);
}

#[tokio::test]
async fn cache_serves_repeated_reads_within_its_bound() {
    let f = fixture(&[1000, 1000, 1000]).await;
    let counting = Arc::new(Counting {
        inner: Arc::clone(&f.store),
        asked: AtomicUsize::new(0),
        calls: AtomicUsize::new(0),
    });
    let reader = ChunkReader::new(Arc::clone(&counting) as Arc<dyn ChunkStore>).with_cache(2000);
    for _ in 0..3 {
        assert_eq!(
            reader.read_range(&f.spans, 0, 1500).await.unwrap(),
            f.content[..1500]
        );
    }
    // The first two chunks were asked for once, then served from the cache.
    assert_eq!(counting.asked.load(Ordering::SeqCst), 2);
    // The third pushes the first out (2000 bytes hold two chunks).
    reader.read_range(&f.spans, 2500, 10).await.unwrap();
    reader.read_range(&f.spans, 0, 10).await.unwrap();
    assert_eq!(counting.asked.load(Ordering::SeqCst), 4);
}
