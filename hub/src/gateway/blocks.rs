//! Where the gateway's blocks come from and go: the renditions the hub makes of its own
//! flists (encoded from its chunks when read), and the hub's chunk store, in its block key
//! space, for the blocks clients send; writes counted against the writer's quota as chunk
//! uploads are.

use std::sync::Arc;

use bytes::Bytes;
use chunkstore::BlockId;

use crate::auth::Caller;
use crate::chunks::ChunkService;
use crate::error::Result;
use crate::renditions::Renditions;

pub struct Blocks {
    chunks: Arc<ChunkService>,
    renditions: Arc<Renditions>,
}

impl Blocks {
    pub(super) fn new(chunks: Arc<ChunkService>, renditions: Arc<Renditions>) -> Blocks {
        Blocks { chunks, renditions }
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

    /// Rendition blocks first (what nodes read), then what clients stored.
    pub(super) async fn get(&self, ids: &[BlockId]) -> Result<Vec<Option<Bytes>>> {
        let mut found = self.renditions.blocks(ids).await?;
        let missing: Vec<BlockId> = ids
            .iter()
            .zip(&found)
            .filter(|(_, block)| block.is_none())
            .map(|(id, _)| *id)
            .collect();
        if missing.is_empty() {
            return Ok(found);
        }
        let mut stored = self.chunks.read_blocks(&missing).await?.into_iter();
        for block in found.iter_mut().filter(|b| b.is_none()) {
            *block = stored.next().flatten();
        }
        Ok(found)
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
