//! Streaming one file of an flist.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use chunkstore::{ChunkReader, ChunkStore};
use flist::{ChunkRef, Flist, NodeKind};
use futures_util::StreamExt;

use crate::error::{Error, Result};

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

/// The reader's view of a chunk of an flist's file.
pub(crate) fn span(chunk: &ChunkRef) -> chunkstore::ChunkSpan {
    chunkstore::ChunkSpan {
        key: chunkstore::ChunkKey::from(chunk.key),
        length: chunk.length,
    }
}
