//! The blocks of imported 0-flist and fl files, copied from the 0-db 0-hub's producers wrote
//! them to (bare ids) into the hub's store (its block key space): only those the store
//! lacks, asked in batches, fetched several groups at a time, each block checked against
//! its id before it is stored (BLAKE2b-128 of the stored bytes for a 0-flist's, BLAKE2b-256
//! for an fl's: both formats name a block by the hash of what is stored).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use chunkstore::{BlockId, ChunkStore};
use futures_util::TryStreamExt;

use crate::error::{Error, Result};

/// Ids asked of the hub's store per existence query.
const CHECK_BATCH: usize = 1024;
/// Blocks fetched from the old 0-db (and stored) per request.
const FETCH_GROUP: usize = 64;
/// Fetch groups in flight at once.
const IN_FLIGHT: usize = 4;

/// What the copy did, counted as it goes (read by a progress bar).
#[derive(Debug, Default)]
pub struct BlockCounts {
    /// Blocks already in the hub's store.
    pub present: AtomicU64,
    /// Blocks copied, and their bytes.
    pub copied: AtomicU64,
    pub bytes: AtomicU64,
}

/// Copies the blocks `ids` the hub's `store` lacks from `from`; an error names the first
/// block that is missing or does not match its id.
pub async fn copy(
    from: &Arc<dyn ChunkStore>,
    store: &Arc<dyn ChunkStore>,
    ids: &[BlockId],
    counts: &BlockCounts,
) -> Result<()> {
    for batch in ids.chunks(CHECK_BATCH) {
        let present = store.has_blocks(batch).await?;
        let missing: Vec<BlockId> = batch
            .iter()
            .zip(&present)
            .filter(|(_, here)| !**here)
            .map(|(id, _)| *id)
            .collect();
        counts
            .present
            .fetch_add((batch.len() - missing.len()) as u64, Ordering::Relaxed);
        futures_util::stream::iter(missing.chunks(FETCH_GROUP).map(Ok))
            .try_for_each_concurrent(IN_FLIGHT, |group| async move {
                let found = from.get_blocks(group).await?;
                let mut verified = Vec::with_capacity(group.len());
                for (id, block) in group.iter().zip(found) {
                    let block = block.ok_or_else(|| {
                        Error::NotFound(format!(
                            "block {id} is in neither the old 0-db ({}) nor the hub's store",
                            from.location()
                        ))
                    })?;
                    check(id, &block)?;
                    verified.push((*id, block));
                }
                store.put_blocks(&verified).await?;
                let bytes: usize = verified.iter().map(|(_, b)| b.len()).sum();
                counts
                    .copied
                    .fetch_add(verified.len() as u64, Ordering::Relaxed);
                counts.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                Ok::<_, Error>(())
            })
            .await?;
    }
    Ok(())
}

/// Whether `block` hashes to `id` as its format names blocks (0-flist: BLAKE2b-128 of the
/// stored block, fl: BLAKE2b-256).
pub fn hashes_to(id: &BlockId, block: &[u8]) -> bool {
    match id.as_bytes().len() {
        16 => legacy::zero::blake2b_128(block)[..] == *id.as_bytes(),
        _ => legacy::fl::blake2b_256(block)[..] == *id.as_bytes(),
    }
}

/// Whether `block` is what `id` names: the hash of the stored bytes, of the id's length.
pub fn check(id: &BlockId, block: &Bytes) -> Result<()> {
    if hashes_to(id, block) {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "block {id} from the old 0-db does not hash to its id: refused"
        )))
    }
}

/// The old 0-db at `url` (`zdb://host:port[/namespace]`, namespace `default` when none),
/// read at the bare ids zflist and rfs write blocks under.
pub fn source(url: &str) -> Result<Arc<dyn ChunkStore>> {
    match chunkstore::parse_route(url)? {
        chunkstore::StoreUrl::Zdb(options) => Ok(Arc::new(
            chunkstore::ZdbStore::new(options)?.with_bare_block_ids(),
        )),
        // The URL is not repeated: it may hold a password.
        _ => Err(Error::BadRequest(
            "--blocks-from takes the old 0-db as zdb://host:port[/namespace]".into(),
        )),
    }
}
