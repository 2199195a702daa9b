//! Streaming one file of an flist.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use chunkstore::{ChunkReader, ChunkStore};
use flist::{ChunkRef, Flist, NodeKind};
use futures_util::StreamExt;

use crate::error::{Error, Result};
use crate::legacy::{BlockSource, BlockSpan, LegacyFlist, read_blocks};

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

    let spans = chunks.iter().map(span).collect();
    let reader = ChunkReader::new(store);
    let mut content = std::pin::pin!(reader.stream(spans));
    let mut written = 0u64;
    while let Some(data) = content.next().await {
        let data = data?;
        out.write_all(&data).map_err(|e| Error::io("output", e))?;
        written += data.len() as u64;
    }
    out.flush().map_err(|e| Error::io("output", e))?;
    Ok(written)
}

/// Blocks of a legacy file asked of the source together (8 MiB of plaintext); the next
/// batch is asked while the current one is written.
const BLOCKS_PER_READ: usize = 16;

/// [`cat`] for a 0-flist or fl file, its blocks read from `blocks`, each decoded and checked
/// before it is written.
pub async fn cat_legacy(
    flist: &LegacyFlist,
    path: &[u8],
    blocks: Arc<dyn BlockSource>,
    out: &mut (dyn Write + Send),
) -> Result<u64> {
    let entry = flist
        .resolve(path)
        .ok_or_else(|| Error::entry(path, "no such file in the flist"))?;
    match entry.node.kind {
        NodeKind::Regular { .. } => {}
        NodeKind::Directory => return Err(Error::entry(path, "is a directory")),
        _ => return Err(Error::entry(path, "is not a regular file")),
    }
    let batches: Vec<Vec<BlockSpan>> = flist
        .spans(entry)?
        .chunks(BLOCKS_PER_READ)
        .map(<[BlockSpan]>::to_vec)
        .collect();
    let mut reads = futures_util::stream::iter(batches)
        .map(|batch| {
            let source = Arc::clone(&blocks);
            async move { read_blocks(source.as_ref(), &batch).await }
        })
        .buffered(2);
    let mut written = 0u64;
    while let Some(read) = reads.next().await {
        for data in read? {
            let data = data?;
            out.write_all(&data).map_err(|e| Error::io("output", e))?;
            written += data.len() as u64;
        }
    }
    out.flush().map_err(|e| Error::io("output", e))?;
    Ok(written)
}

/// The reader's view of a chunk of an flist's file.
pub(crate) fn span(chunk: &ChunkRef) -> chunkstore::ChunkSpan {
    chunkstore::ChunkSpan {
        key: chunkstore::ChunkKey::from(chunk.key),
        length: chunk.length,
    }
}
