//! The chunk API's rules: which chunks the store lacks, uploads checked chunk by chunk
//! before anything is stored, counted against each identity's quota (`quota`), and reads that never serve
//! a chunk that does not match its key.

use std::sync::Arc;

use bytes::Bytes;
use chunkstore::{BlockId, ChunkKey, ChunkReader, ChunkStore, EncodedChunk};
use serde::Serialize;

use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::quota::Quotas;
pub use crate::quota::Usage;

/// Keys one `missing` request may ask about.
pub const MISSING_LIMIT: usize = 10_000;
/// Keys one batched read may ask for.
pub const GET_LIMIT: usize = 1_000;
/// Chunks one upload request may carry: what keeps its answer (which names every key)
/// small, whatever the body holds.
pub const UPLOAD_LIMIT: usize = 4_096;

/// What became of the chunks of an upload.
#[derive(Debug, Default, Serialize)]
pub struct UploadReport {
    /// New to the store, and stored.
    pub stored: Vec<String>,
    /// Already in the store (or earlier in the same upload): nothing written.
    pub present: Vec<String>,
    /// Not stored, with why: bytes that do not decode to their key's content.
    pub rejected: Vec<Rejected>,
    /// Stored bytes of the chunks in `stored`.
    pub bytes_stored: u64,
}

#[derive(Debug, Serialize)]
pub struct Rejected {
    pub key: String,
    pub reason: String,
}

/// The chunk API's service: the store, and what each identity stored in it.
pub struct ChunkService {
    store: Arc<dyn ChunkStore>,
    /// Reads what the store holds, each chunk checked before it is served.
    reader: ChunkReader,
    quotas: Arc<Quotas>,
}

impl ChunkService {
    pub(crate) fn new(store: Arc<dyn ChunkStore>, quotas: Arc<Quotas>) -> ChunkService {
        let reader = ChunkReader::new(Arc::clone(&store));
        ChunkService {
            store,
            reader,
            quotas,
        }
    }

    /// The keys of `keys` the store lacks, in their order.
    pub async fn missing_chunks(&self, keys: &[ChunkKey]) -> Result<Vec<ChunkKey>> {
        let present = self.has_many(keys).await?;
        Ok(keys
            .iter()
            .zip(present)
            .filter(|(_, present)| !present)
            .map(|(key, _)| *key)
            .collect())
    }

    /// Checks a batch of uploaded chunks against their keys, and stores the good ones the
    /// store lacks, within the caller's quota. A bad chunk is reported and skipped: it never
    /// reaches the store, and the rest of the batch still counts.
    pub async fn store_chunks(
        self: &Arc<Self>,
        caller: &Caller,
        batch: Vec<(ChunkKey, Bytes)>,
        report: &mut UploadReport,
    ) -> Result<()> {
        let received: u64 = batch.iter().map(|(_, b)| b.len() as u64).sum();
        let mut verified = Vec::with_capacity(batch.len());
        let keys: Vec<ChunkKey> = batch.iter().map(|(key, _)| *key).collect();
        for (key, outcome) in keys.iter().zip(chunkstore::verify_stored(batch).await?) {
            match outcome {
                Ok(chunk) => verified.push(chunk),
                Err(reason) => report.rejected.push(Rejected {
                    key: key.to_hex(),
                    reason: reason.to_string(),
                }),
            }
        }
        // Each key once: a client may send a chunk twice in one upload.
        let mut seen = std::collections::HashSet::with_capacity(verified.len());
        verified.retain(|chunk| {
            let first = seen.insert(chunk.key());
            if !first {
                report.present.push(chunk.key().to_hex());
            }
            first
        });
        let keys: Vec<ChunkKey> = verified.iter().map(EncodedChunk::key).collect();
        let present = self.has_many(&keys).await?;
        let mut new = Vec::with_capacity(verified.len());
        for (chunk, present) in verified.into_iter().zip(present) {
            if present {
                report.present.push(chunk.key().to_hex());
            } else {
                new.push(chunk);
            }
        }
        let bytes: u64 = new.iter().map(|c| c.len() as u64).sum();
        let store = Arc::clone(&self.store);
        let new = self
            .charged(&caller.user, new.len(), bytes, received, async move {
                store.put_many(&new).await.map(|()| new)
            })
            .await?;
        metrics::counter!("flisthub_chunks_stored_total").increment(new.len() as u64);
        metrics::counter!("flisthub_chunk_bytes_stored_total").increment(bytes);
        report.bytes_stored += bytes;
        report
            .stored
            .extend(new.iter().map(|chunk| chunk.key().to_hex()));
        Ok(())
    }

    /// Runs `store` (a write of `count` new items, `bytes` in all, of `received` bytes
    /// sent) charged to `identity`'s usage: refused beyond its quota, given back if the
    /// write fails. Charge, write and refund run in a task of their own: a client that
    /// goes away drops its request's future, and must not leave the usage counting what
    /// was never stored.
    async fn charged<T: Send + 'static>(
        self: &Arc<Self>,
        identity: &str,
        count: usize,
        bytes: u64,
        received: u64,
        store: impl Future<Output = chunkstore::Result<T>> + Send + 'static,
    ) -> Result<T> {
        let service = Arc::clone(self);
        let user = identity.to_owned();
        let (count, size) = (count as i64, bytes as i64);
        tokio::spawn(async move {
            service.quotas.charge(&user, count, size, received as i64).await?;
            match store.await {
                Ok(stored) => Ok(stored),
                Err(e) => {
                    // Nothing of it counts against the quota if it was not stored.
                    if let Err(refund) = service.quotas.charge(&user, -count, -size, 0).await {
                        tracing::error!(error = %refund, "giving back the quota of a failed upload");
                    }
                    Err(Error::from(e))
                }
            }
        })
        .await?
    }

    /// For each block id, whether the store holds it.
    pub async fn blocks_present(&self, ids: &[BlockId]) -> Result<Vec<bool>> {
        let present = self.store.has_blocks(ids).await?;
        if present.len() != ids.len() {
            return Err(self.short_answer(ids.len(), present.len()));
        }
        Ok(present)
    }

    /// Stores blocks whose ids the caller checked, for `caller`, within its quota; for
    /// each, whether it was new (a block already stored, or given twice, is written once).
    pub async fn store_blocks(
        self: &Arc<Self>,
        caller: &Caller,
        blocks: Vec<(BlockId, Bytes)>,
    ) -> Result<Vec<bool>> {
        if blocks.is_empty() {
            return Ok(Vec::new());
        }
        let received: u64 = blocks.iter().map(|(_, b)| b.len() as u64).sum();
        let ids: Vec<BlockId> = blocks.iter().map(|(id, _)| *id).collect();
        let present = self.blocks_present(&ids).await?;
        let mut seen = std::collections::HashSet::new();
        let mut new = Vec::new();
        let mut outcome = Vec::with_capacity(blocks.len());
        for ((id, block), present) in blocks.into_iter().zip(present) {
            let fresh = !present && seen.insert(id);
            outcome.push(fresh);
            if fresh {
                new.push((id, block));
            }
        }
        let bytes: u64 = new.iter().map(|(_, b)| b.len() as u64).sum();
        let count = new.len();
        let store = Arc::clone(&self.store);
        self.charged(&caller.user, count, bytes, received, async move {
            store.put_blocks(&new).await
        })
        .await?;
        metrics::counter!("flisthub_blocks_stored_total").increment(count as u64);
        Ok(outcome)
    }

    fn short_answer(&self, asked: usize, answered: usize) -> Error {
        Error::Internal(format!(
            "{}: {answered} answers to a request about {asked} keys",
            self.store.location()
        ))
    }

    /// The store's `has_many`, checked to answer for every key: a short answer must not
    /// read as "present".
    async fn has_many(&self, keys: &[ChunkKey]) -> Result<Vec<bool>> {
        let present = self.store.has_many(keys).await?;
        if present.len() != keys.len() {
            return Err(self.short_answer(keys.len(), present.len()));
        }
        Ok(present)
    }

    /// What `identity` made the hub store, and its quota.
    pub async fn chunk_usage(&self, identity: &str) -> Result<Usage> {
        self.quotas.usage(identity).await
    }

    /// Stored chunks, each checked against its key: a chunk the store holds damaged is
    /// reported (and logged) as missing rather than served.
    pub async fn read_chunks(&self, keys: &[ChunkKey]) -> Result<Vec<Option<Bytes>>> {
        let checked = self.reader.read_stored(keys).await?;
        Ok(checked
            .into_iter()
            .map(|outcome| match outcome {
                Ok(chunk) => Some(chunk.bytes().clone()),
                Err(chunkstore::Error::Missing { .. }) => None,
                Err(reason) => {
                    metrics::counter!("flisthub_store_damaged_chunks_total").increment(1);
                    tracing::error!(%reason, "the store holds a damaged chunk");
                    None
                }
            })
            .collect())
    }
}
