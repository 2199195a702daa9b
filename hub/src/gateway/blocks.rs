//! Where the gateway's blocks come from and go: the renditions the hub makes of its own
//! flists (encoded from its chunks when read), and the hub's chunk store, in its block key
//! space, for the blocks clients send; writes counted against the writer's quota as chunk
//! uploads are.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use chunkstore::BlockId;

use crate::auth::Caller;
use crate::chunks::ChunkService;
use crate::error::Result;
use crate::limits::Limits;
use crate::renditions::Renditions;

pub struct Blocks {
    chunks: Arc<ChunkService>,
    renditions: Arc<Renditions>,
    limits: Arc<Limits>,
}

impl Blocks {
    pub(super) fn new(
        chunks: Arc<ChunkService>,
        renditions: Arc<Renditions>,
        limits: Arc<Limits>,
    ) -> Blocks {
        Blocks {
            chunks,
            renditions,
            limits,
        }
    }

    pub(super) async fn has(&self, id: BlockId) -> Result<bool> {
        if self.renditions.has(id).await? {
            return Ok(true);
        }
        Ok(self
            .chunks
            .blocks_present(&[id])
            .await?
            .pop()
            .unwrap_or(false))
    }

    /// Rendition blocks first (what nodes read), then what clients stored. A batch of
    /// reads from `peer` counts as one request against `limits.read-rate`, and waits for
    /// one of the hub's `chunks.concurrent-reads`, which bound the memory reads hold.
    pub(super) async fn get(&self, peer: IpAddr, ids: &[BlockId]) -> Result<Vec<Option<Bytes>>> {
        self.limits.check_read(peer)?;
        let _slot = self.limits.chunk_read_slot().await?;
        self.renditions.served_blocks(ids).await
    }

    /// Stores checked blocks for `caller`; for each, whether it was new.
    pub(super) async fn put(
        &self,
        caller: &Caller,
        blocks: Vec<(BlockId, Bytes)>,
    ) -> Result<Vec<bool>> {
        self.chunks.store_blocks(caller, blocks).await
    }
}
