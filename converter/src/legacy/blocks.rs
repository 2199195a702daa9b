//! The blocks of legacy files: where they are read from, and how each is decoded and
//! checked.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chunkstore::{BlockId, ChunkStore};
use legacy::{fl, zero};

use crate::error::{Error, Result};

/// Where the blocks of legacy files are read from: a chunk store's block space, a hub's
/// block route, the stores a file's routes name.
#[async_trait]
pub trait BlockSource: Send + Sync {
    /// Where the blocks come from, without secrets, for messages.
    fn location(&self) -> &str;

    /// For each id, the block as stored, or `None` when the source does not hold it.
    async fn get_blocks(&self, ids: &[BlockId]) -> chunkstore::Result<Vec<Option<Bytes>>>;
}

/// The block space of a chunk store ([`ChunkStore::get_blocks`]).
pub struct StoreBlocks(pub Arc<dyn ChunkStore>);

#[async_trait]
impl BlockSource for StoreBlocks {
    fn location(&self) -> &str {
        self.0.location()
    }

    async fn get_blocks(&self, ids: &[BlockId]) -> chunkstore::Result<Vec<Option<Bytes>>> {
        self.0.get_blocks(ids).await
    }
}

/// One block of a legacy file: its id in the store and the key that decodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyBlock {
    Zero(zero::Block),
    Fl(fl::Block),
}

impl LegacyBlock {
    pub fn id(&self) -> BlockId {
        match self {
            LegacyBlock::Zero(b) => BlockId::from(b.id),
            LegacyBlock::Fl(b) => BlockId::from(b.id),
        }
    }

    /// The plaintext of `sealed`, checked by the format's codec and against the `length`
    /// the file gives this block.
    pub fn decode(&self, sealed: &[u8], length: u32) -> Result<Vec<u8>> {
        let plain = match self {
            LegacyBlock::Zero(b) => zero::decode(sealed, &b.key),
            LegacyBlock::Fl(b) => fl::decode(sealed, &b.key),
        }
        .map_err(|e| Error::BadBlock {
            id: self.id().to_hex(),
            reason: e.to_string(),
        })?;
        if plain.len() != length as usize {
            return Err(Error::BadBlock {
                id: self.id().to_hex(),
                reason: format!("{} bytes, the file says {length}", plain.len()),
            });
        }
        Ok(plain)
    }
}

/// A block of a file: which, and the plaintext length its place in the file gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSpan {
    pub block: LegacyBlock,
    pub offset: u64,
    pub length: u32,
}

/// Reads `spans` from `source` (each distinct block asked once) and decodes each: the
/// outer error is the source's (the whole batch failed), the inner ones are per block.
pub async fn read_blocks(
    source: &dyn BlockSource,
    spans: &[BlockSpan],
) -> Result<Vec<Result<Bytes>>> {
    let mut slots: HashMap<BlockId, usize> = HashMap::new();
    let mut ids = Vec::new();
    let at: Vec<usize> = spans
        .iter()
        .map(|s| {
            let id = s.block.id();
            *slots.entry(id).or_insert_with(|| {
                ids.push(id);
                ids.len() - 1
            })
        })
        .collect();
    let stored = source.get_blocks(&ids).await?;
    if stored.len() != ids.len() {
        return Err(Error::Store(chunkstore::Error::Protocol {
            location: source.location().to_owned(),
            message: format!("{} answers for {} blocks", stored.len(), ids.len()),
        }));
    }
    Ok(spans
        .iter()
        .zip(at)
        .map(|(span, i)| match &stored[i] {
            None => Err(Error::MissingBlock {
                id: ids[i].to_hex(),
                location: source.location().to_owned(),
            }),
            Some(sealed) => span.block.decode(sealed, span.length).map(Bytes::from),
        })
        .collect())
}
