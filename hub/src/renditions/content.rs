//! File contents as the legacy formats see them: a content is a file's bytes, named by its
//! chunk list (so two flists holding the same file share it without reading it), and cut
//! into 512 KiB windows whose keys name the blocks of both formats.

use bytes::Bytes;
use chunkstore::{BlockId, ChunkKey, ChunkStore, Codec};
use flist::ChunkRef;
use legacy::BLOCK_SIZE;
use legacy::window::{WindowHasher, WindowKeys};

use crate::error::{Error, Result};

/// Chunks read per store request when a content is hashed or a window read.
const READ_BATCH: usize = 32;

/// The id of a content: BLAKE3 of its size and its chunks' keys and lengths, which name
/// its bytes as surely as the bytes do.
pub type ContentId = [u8; 32];

/// One chunk of a content: its key and plaintext length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub key: ChunkKey,
    pub length: u32,
}

/// Bytes a [`Span`] takes in the `content_windows.chunks` column.
const SPAN_LEN: usize = 36;

/// A content and the chunks that hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub id: ContentId,
    pub size: u64,
    pub spans: Vec<Span>,
}

impl Content {
    /// The content of a file of `size` bytes held by `chunks` (in file order).
    pub fn of(size: u64, chunks: &[ChunkRef]) -> Content {
        let spans: Vec<Span> = chunks
            .iter()
            .map(|c| Span {
                key: ChunkKey::from(c.key),
                length: c.length,
            })
            .collect();
        let mut hasher = blake3::Hasher::new();
        hasher.update(&size.to_le_bytes());
        for span in &spans {
            hasher.update(span.key.as_bytes());
            hasher.update(&span.length.to_le_bytes());
        }
        Content {
            id: *hasher.finalize().as_bytes(),
            size,
            spans,
        }
    }

    /// The chunk list as stored: per chunk its key and big-endian length.
    pub fn spans_to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.spans.len() * SPAN_LEN);
        for span in &self.spans {
            out.extend_from_slice(span.key.as_bytes());
            out.extend_from_slice(&span.length.to_be_bytes());
        }
        out
    }

    /// A content read back from its stored row.
    pub fn from_row(id: ContentId, size: u64, chunks: &[u8]) -> Result<Content> {
        if chunks.len() % SPAN_LEN != 0 {
            return Err(damaged(&id, "its chunk list is cut short"));
        }
        let spans = chunks
            .chunks_exact(SPAN_LEN)
            .map(|s| {
                let mut key = [0u8; 32];
                key.copy_from_slice(&s[..32]);
                Span {
                    key: ChunkKey::from_bytes(key),
                    length: u32::from_be_bytes([s[32], s[33], s[34], s[35]]),
                }
            })
            .collect::<Vec<_>>();
        let total: u64 = spans.iter().map(|s| u64::from(s.length)).sum();
        if total != size {
            return Err(damaged(&id, "its chunks do not add up to its size"));
        }
        Ok(Content { id, size, spans })
    }

    /// The keys of every window, read from the store once (the plaintext is never kept
    /// whole: a window at most is buffered).
    pub async fn windows(&self, store: &dyn ChunkStore) -> Result<Vec<WindowKeys>> {
        let mut hasher = WindowHasher::new();
        let mut codec = codec()?;
        for batch in self.spans.chunks(READ_BATCH) {
            for plain in read_plain(store, &mut codec, batch).await? {
                hasher.update(&plain);
            }
        }
        Ok(hasher.finish())
    }

    /// The plaintext of window `index`.
    pub async fn window(&self, store: &dyn ChunkStore, index: u64) -> Result<Vec<u8>> {
        let start = index.saturating_mul(BLOCK_SIZE);
        if start >= self.size {
            return Err(damaged(&self.id, "a window past its end"));
        }
        let end = (start + BLOCK_SIZE).min(self.size);
        // The chunks that overlap [start, end), and where the first one starts.
        let mut offset = 0u64;
        let mut first = None;
        let mut covering = Vec::new();
        for span in &self.spans {
            let next = offset + u64::from(span.length);
            if next > start && offset < end {
                first.get_or_insert(offset);
                covering.push(*span);
            }
            if next >= end {
                break;
            }
            offset = next;
        }
        let first = first.unwrap_or(start);
        let mut codec = codec()?;
        let mut plain = Vec::with_capacity((end - first) as usize + READ_BATCH);
        for batch in covering.chunks(READ_BATCH) {
            for piece in read_plain(store, &mut codec, batch).await? {
                plain.extend_from_slice(&piece);
            }
        }
        let from = (start - first) as usize;
        let to = (end - first) as usize;
        plain
            .get(from..to)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| damaged(&self.id, "its chunks are shorter than listed"))
    }
}

/// The block a node asked for, encoded as its format's reader expects: `id` is the 0-flist
/// id (16 bytes) or the fl id (32 bytes) of the window with `keys`, whose plaintext is
/// `plain`. `None` if `id` is neither (a row that does not match its window).
pub fn encode_block(id: BlockId, keys: &WindowKeys, plain: &[u8]) -> Result<Option<Bytes>> {
    let [zero_id, fl_id] = block_ids(keys);
    let sealed = if id == zero_id {
        legacy::zero::encode_with_key(plain, keys.zero)?.1
    } else if id == fl_id {
        legacy::fl::encode_with_key(plain, keys.fl)?.1
    } else {
        return Ok(None);
    };
    Ok(Some(Bytes::from(sealed)))
}

/// The block ids of a window in both formats.
pub fn block_ids(keys: &WindowKeys) -> [BlockId; 2] {
    let zero = keys.zero_block().id;
    let fl = keys.fl_block().id;
    // Both lengths are ones BlockId takes.
    [
        BlockId::from_slice(&zero).unwrap_or_else(|| unreachable!("16-byte id")),
        BlockId::from_slice(&fl).unwrap_or_else(|| unreachable!("32-byte id")),
    ]
}

fn codec() -> Result<Codec> {
    Codec::new(chunkstore::DEFAULT_LEVEL)
        .map_err(|e| Error::Internal(format!("a chunk codec: {e}")))
}

/// The plaintexts of `spans`, each checked against its key and length.
async fn read_plain(
    store: &dyn ChunkStore,
    codec: &mut Codec,
    spans: &[Span],
) -> Result<Vec<Vec<u8>>> {
    let keys: Vec<ChunkKey> = spans.iter().map(|s| s.key).collect();
    let stored = store.get_many(&keys).await?;
    if stored.len() != spans.len() {
        return Err(Error::Internal(format!(
            "the store answered {} of {} chunks",
            stored.len(),
            spans.len()
        )));
    }
    spans
        .iter()
        .zip(stored)
        .map(|(span, stored)| {
            let stored = stored.ok_or_else(|| {
                Error::Unavailable(format!("chunk {} is missing from the store", span.key))
            })?;
            let plain = codec
                .decode(&span.key, &stored)
                .map_err(|e| Error::Unavailable(format!("chunk {}: {e}", span.key)))?;
            if plain.len() != span.length as usize {
                return Err(Error::Unavailable(format!(
                    "chunk {} has {} bytes, its flist says {}",
                    span.key,
                    plain.len(),
                    span.length
                )));
            }
            Ok(plain)
        })
        .collect()
}

fn damaged(id: &ContentId, what: &str) -> Error {
    Error::Internal(format!("content {}: {what}", hex::encode(id)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use chunkstore::Chunk;

    /// A content of `sizes` chunks stored in a dir store; its bytes.
    async fn stored(sizes: &[usize]) -> (tempfile::TempDir, Arc<dyn ChunkStore>, Content, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let store = chunkstore::open(&format!("dir://{}", dir.path().display()))
            .await
            .unwrap();
        let mut codec = codec().unwrap();
        let (mut bytes, mut chunks, mut offset) = (Vec::new(), Vec::new(), 0u64);
        for (i, size) in sizes.iter().enumerate() {
            let data: Vec<u8> = (0..*size).map(|j| (j * 31 + i * 7) as u8).collect();
            let chunk = Chunk::new(data.clone());
            store.put(codec.encode(&chunk).unwrap()).await.unwrap();
            chunks.push(ChunkRef {
                key: *chunk.key().as_bytes(),
                offset,
                length: *size as u32,
            });
            offset += *size as u64;
            bytes.extend(data);
        }
        let content = Content::of(offset, &chunks);
        (dir, store, content, bytes)
    }

    #[tokio::test]
    async fn windows_across_chunk_boundaries() {
        let window = BLOCK_SIZE as usize;
        let (_dir, store, content, bytes) = stored(&[300_000, 700_000, 100, 600_000]).await;
        let keys = content.windows(store.as_ref()).await.unwrap();
        let expected: Vec<WindowKeys> = bytes.chunks(window).map(WindowKeys::of).collect();
        assert_eq!(keys, expected);
        for (index, piece) in bytes.chunks(window).enumerate() {
            let plain = content.window(store.as_ref(), index as u64).await.unwrap();
            assert!(plain == piece, "window {index}");
            let [zero, fl] = block_ids(&keys[index]);
            let sealed = encode_block(zero, &keys[index], &plain).unwrap().unwrap();
            assert_eq!(
                legacy::zero::decode(&sealed, &keys[index].zero).unwrap(),
                plain
            );
            let sealed = encode_block(fl, &keys[index], &plain).unwrap().unwrap();
            assert_eq!(legacy::fl::decode(&sealed, &keys[index].fl).unwrap(), plain);
        }
        assert!(
            content.window(store.as_ref(), 4).await.is_err(),
            "past the end"
        );
        let other = BlockId::from_slice(&[1; 16]).unwrap();
        assert_eq!(encode_block(other, &keys[0], &[]).unwrap(), None);
    }

    #[tokio::test]
    async fn rows_round_trip_and_damage_is_refused() {
        let (_dir, store, content, _) = stored(&[1000, 2000]).await;
        let row = content.spans_to_bytes();
        assert_eq!(
            Content::from_row(content.id, content.size, &row).unwrap(),
            content
        );
        assert!(Content::from_row(content.id, content.size, &row[1..]).is_err());
        assert!(Content::from_row(content.id, content.size + 1, &row).is_err());
        // A chunk the store lost: an error naming it, not short content.
        let lost = Content::of(
            10,
            &[ChunkRef {
                key: [3; 32],
                offset: 0,
                length: 10,
            }],
        );
        let error = lost
            .window(store.as_ref(), 0)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("missing"), "{error}");
    }
}
