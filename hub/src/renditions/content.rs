//! File contents as the legacy formats see them: a content is a file's bytes, named by its
//! chunk list (so two flists holding the same file share it without reading it), and cut
//! into 512 KiB windows whose keys name the blocks of both formats.

use bytes::Bytes;
use chunkstore::{BlockId, ChunkKey, ChunkReader, ChunkSpan};
use flist::ChunkRef;
use futures_util::StreamExt;
use legacy::BLOCK_SIZE;
use legacy::window::{WindowHasher, WindowKeys};

use crate::error::{Error, Result};

/// The id of a content: BLAKE3 of its size and its chunks' keys and lengths, which name
/// its bytes as surely as the bytes do.
pub type ContentId = [u8; 32];

/// Bytes a [`ChunkSpan`] takes in the `content_windows.chunks` column.
const SPAN_LEN: usize = 36;

/// A content and the chunks that hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub id: ContentId,
    pub size: u64,
    pub spans: Vec<ChunkSpan>,
}

impl Content {
    /// The content of a file of `size` bytes held by `chunks` (in file order).
    pub fn of(size: u64, chunks: &[ChunkRef]) -> Content {
        let spans: Vec<ChunkSpan> = chunks
            .iter()
            .map(|c| ChunkSpan {
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
                ChunkSpan {
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
    pub async fn windows(&self, reader: &ChunkReader) -> Result<Vec<WindowKeys>> {
        let mut hasher = WindowHasher::new();
        let mut chunks = std::pin::pin!(reader.stream(self.spans.clone()));
        while let Some(plain) = chunks.next().await {
            hasher.update(&plain.map_err(|e| unreadable(&self.id, &e))?);
        }
        Ok(hasher.finish())
    }

    /// The plaintext of window `index`.
    pub async fn window(&self, reader: &ChunkReader, index: u64) -> Result<Vec<u8>> {
        let start = index.saturating_mul(BLOCK_SIZE);
        if start >= self.size {
            return Err(damaged(&self.id, "a window past its end"));
        }
        let len = (self.size - start).min(BLOCK_SIZE) as usize;
        let plain = reader
            .read_range(&self.spans, start, len)
            .await
            .map_err(|e| unreadable(&self.id, &e))?;
        if plain.len() != len {
            return Err(damaged(&self.id, "its chunks are shorter than listed"));
        }
        Ok(plain)
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

/// A chunk of a content cannot be read: the store lost it, holds it damaged, or is down.
fn unreadable(id: &ContentId, e: &chunkstore::Error) -> Error {
    Error::Unavailable(format!("content {}: {e}", hex::encode(id)))
}

fn damaged(id: &ContentId, what: &str) -> Error {
    Error::Internal(format!("content {}: {what}", hex::encode(id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chunkstore::Chunk;

    /// A content of `sizes` chunks stored in a dir store; its bytes.
    async fn stored(sizes: &[usize]) -> (tempfile::TempDir, ChunkReader, Content, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let store = chunkstore::open(&format!("dir://{}", dir.path().display()))
            .await
            .unwrap();
        let mut codec = chunkstore::Codec::new(chunkstore::DEFAULT_LEVEL).unwrap();
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
        (dir, ChunkReader::new(store), content, bytes)
    }

    #[tokio::test]
    async fn windows_across_chunk_boundaries() {
        let window = BLOCK_SIZE as usize;
        let (_dir, store, content, bytes) = stored(&[300_000, 700_000, 100, 600_000]).await;
        let keys = content.windows(&store).await.unwrap();
        let expected: Vec<WindowKeys> = bytes.chunks(window).map(WindowKeys::of).collect();
        assert_eq!(keys, expected);
        for (index, piece) in bytes.chunks(window).enumerate() {
            let plain = content.window(&store, index as u64).await.unwrap();
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
        assert!(content.window(&store, 4).await.is_err(), "past the end");
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
        let error = lost.window(&store, 0).await.unwrap_err().to_string();
        assert!(error.contains("missing"), "{error}");
    }
}
