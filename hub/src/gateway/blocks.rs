//! Where the gateway's blocks come from and go: the hub's chunk store, in its block key
//! space; writes counted against the writer's quota as chunk uploads are.

use std::sync::Arc;

use bytes::Bytes;
use chunkstore::BlockId;

use crate::auth::Caller;
use crate::chunks::ChunkService;
use crate::error::Result;

pub struct Blocks {
    chunks: Arc<ChunkService>,
}

impl Blocks {
    pub(super) fn new(chunks: Arc<ChunkService>) -> Blocks {
        Blocks { chunks }
    }

    pub(super) async fn has(&self, id: BlockId) -> Result<bool> {
        Ok(self
            .chunks
            .blocks_present(&[id])
            .await?
            .pop()
            .unwrap_or(false))
    }

    pub(super) async fn get(&self, ids: &[BlockId]) -> Result<Vec<Option<Bytes>>> {
        self.chunks.read_blocks(ids).await
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
