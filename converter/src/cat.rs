//! Streaming one file of an flist.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use chunkstore::{ChunkKey, ChunkStore, Codec};
use flist::{ChunkRef, Flist, NodeKind};

use crate::error::{Error, Result};

/// Chunks fetched per request; the next batch is fetched while this one is written.
const BATCH_CHUNKS: usize = 16;

/// Writes the content of the regular file at `path` in `flist` to `out`, following symlinks
/// inside the flist. Every chunk is verified before it is written. Returns the byte count.
pub async fn cat(
    flist: PathBuf,
    path: Vec<u8>,
    store: Arc<dyn ChunkStore>,
    out: &mut (dyn Write + Send),
) -> Result<u64> {
    let chunks = tokio::task::spawn_blocking(move || -> Result<Vec<ChunkRef>> {
        let flist = Flist::open(&flist)?;
        let entry = flist
            .resolve(&path)?
            .ok_or_else(|| Error::entry(&path, "no such file in the flist"))?;
        match entry.node.kind {
            NodeKind::Regular { .. } => Ok(flist.chunks(&entry)?),
            NodeKind::Directory => Err(Error::entry(&path, "is a directory")),
            _ => Err(Error::entry(&path, "is not a regular file")),
        }
    })
    .await
    .map_err(|e| Error::Worker(e.to_string()))??;

    let fetch = |batch: &[ChunkRef]| {
        let store = Arc::clone(&store);
        let keys: Vec<ChunkKey> = batch.iter().map(|c| ChunkKey::from(c.key)).collect();
        tokio::spawn(async move { store.get_many(&keys).await })
    };
    let mut codec = Codec::new(chunkstore::DEFAULT_LEVEL)?;
    let mut batches = chunks.chunks(BATCH_CHUNKS);
    let mut pending = batches.next().map(|b| (b, fetch(b)));
    let mut written = 0u64;
    while let Some((batch, request)) = pending.take() {
        pending = batches.next().map(|b| (b, fetch(b)));
        let stored: Vec<Option<Bytes>> =
            request.await.map_err(|e| Error::Worker(e.to_string()))??;
        if stored.len() != batch.len() {
            return Err(Error::Input(format!(
                "the store answered {} of {} chunks",
                stored.len(),
                batch.len()
            )));
        }
        for (chunk, stored) in batch.iter().zip(stored) {
            let key = ChunkKey::from(chunk.key);
            let bytes = stored.ok_or_else(|| {
                Error::Input(format!("missing chunk {key} at offset {}", chunk.offset))
            })?;
            let data = codec.decode(&key, &bytes)?;
            if data.len() != chunk.length as usize {
                return Err(Error::Input(format!(
                    "chunk {key} holds {} bytes, the flist says {}",
                    data.len(),
                    chunk.length
                )));
            }
            out.write_all(&data).map_err(|e| Error::io("output", e))?;
            written += data.len() as u64;
        }
    }
    out.flush().map_err(|e| Error::io("output", e))?;
    Ok(written)
}
