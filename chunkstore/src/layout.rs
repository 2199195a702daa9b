//! How the RESP stores (0-db, Redis, Redis Cluster) lay out their keys.
//!
//! ```text
//! <prefix><32-byte chunk key>          a chunk (stored form, see CHUNK-FORMAT.md)
//! <prefix>block/<16 or 32-byte id>     a block of the second key space (crate::blocks), as given
//! ```
//!
//! The prefix is empty for 0-db (a namespace is the server's own) and for Redis without a
//! namespace, `<namespace>:` for Redis with one.

use bytes::Bytes;

use crate::blocks::{BlockId, MAX_BLOCK_SIZE};
use crate::codec::EncodedChunk;
use crate::error::{Error, Result};
use crate::key::ChunkKey;

/// A key as the server stores it, and its value.
pub(crate) type Entry = (Vec<u8>, Bytes);

/// `<prefix><32-byte key>`: a chunk's key as stored (0-db: no prefix; Redis: `namespace:`).
pub(crate) fn prefixed(prefix: &[u8], key: &ChunkKey) -> Vec<u8> {
    [prefix, &key.as_bytes()[..]].concat()
}

/// The chunks as entries under their stored keys.
pub(crate) fn chunk_entries(prefix: &[u8], chunks: &[EncodedChunk]) -> Vec<Entry> {
    chunks
        .iter()
        .map(|c| (prefixed(prefix, &c.key()), c.bytes().clone()))
        .collect()
}

/// What follows a store's chunk prefix in the key of a block (the second key space, see
/// `crate::blocks`): `<prefix>block/<16 or 32-byte id>`.
///
/// A block key never equals a chunk key, even for a block id with a chunk key's bytes:
/// every chunk prefix is empty (0-db, Redis without a namespace) or ends in `:` (`<ns>:`),
/// and a block's ends in `/`, so the two would need different prefixes before the same
/// 32 bytes; any other equality would need a hash to hit chosen bytes. Within one prefix
/// the lengths differ too (a chunk key is the prefix and 32 bytes, a block key the prefix
/// and 22 or 38), which is how the key counts tell them apart.
pub(crate) const BLOCK_MARKER: &[u8] = b"block/";

/// A block's key as stored, under the store's chunk prefix.
pub(crate) fn block_key(prefix: &[u8], id: &BlockId) -> Vec<u8> {
    [prefix, BLOCK_MARKER, id.as_bytes()].concat()
}

/// Whether `key` (as stored, under `prefix`) is a block's.
pub(crate) fn is_block_key(prefix: &[u8], key: &[u8]) -> bool {
    key.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix(BLOCK_MARKER))
        .is_some_and(|id| BlockId::LENGTHS.contains(&id.len()))
}

/// Whether `key` (as stored, under `prefix`) is a chunk's.
pub(crate) fn is_chunk_key(prefix: &[u8], key: &[u8]) -> bool {
    key.len() == prefix.len() + 32 && key.starts_with(prefix)
}

/// The chunk key of a stored key under `prefix`, if it is one.
pub(crate) fn chunk_of(prefix: &[u8], key: &[u8]) -> Option<ChunkKey> {
    if !is_chunk_key(prefix, key) {
        return None;
    }
    let bytes: [u8; 32] = key[prefix.len()..].try_into().ok()?;
    Some(ChunkKey::from_bytes(bytes))
}

/// The block id of a stored key under `prefix`, if it is one.
pub(crate) fn block_of(prefix: &[u8], key: &[u8]) -> Option<BlockId> {
    if !is_block_key(prefix, key) {
        return None;
    }
    BlockId::from_slice(&key[prefix.len() + BLOCK_MARKER.len()..])
}

/// The blocks as entries under their stored keys, refused whole if one is too large. Only
/// the Redis stores use it: built with them.
#[cfg(feature = "redis")]
pub(crate) fn block_entries(
    location: &str,
    prefix: &[u8],
    blocks: &[(BlockId, Bytes)],
) -> Result<Vec<Entry>> {
    blocks
        .iter()
        .map(|(id, block)| {
            check_block(location, id, block.len())?;
            Ok((block_key(prefix, id), block.clone()))
        })
        .collect()
}

/// Refuses a block longer than [`MAX_BLOCK_SIZE`], about to be stored or just read.
pub(crate) fn check_block(location: &str, id: &BlockId, size: usize) -> Result<()> {
    if size > MAX_BLOCK_SIZE {
        return Err(Error::BlockTooLarge {
            location: location.to_owned(),
            id: *id,
        });
    }
    Ok(())
}

/// The entries without repeated keys (first occurrence kept).
pub(crate) fn distinct(entries: Vec<Entry>) -> Vec<Entry> {
    let mut seen = std::collections::HashSet::with_capacity(entries.len());
    entries
        .into_iter()
        .filter(|(key, _)| seen.insert(key.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_keys_are_told_from_chunk_keys() {
        let key = ChunkKey::of(b"chunk");
        // A block id with the chunk key's bytes, and a short one.
        let long = BlockId::from_slice(key.as_bytes()).unwrap();
        let short = BlockId::from_slice(&key.as_bytes()[..16]).unwrap();
        for prefix in [&b""[..], b"hub:"] {
            let chunk = prefixed(prefix, &key);
            for id in [long, short] {
                let block = block_key(prefix, &id);
                assert_ne!(block, chunk);
                assert!(is_block_key(prefix, &block) && !is_chunk_key(prefix, &block));
            }
            assert!(is_chunk_key(prefix, &chunk) && !is_block_key(prefix, &chunk));
        }
        // Namespace `hub:block` (a chunk prefix `hub:block:`) holds no block of `hub`.
        assert_ne!(prefixed(b"hub:block:", &key), block_key(b"hub:", &long));
    }
}
