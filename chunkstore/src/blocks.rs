//! A second key space beside the chunks: opaque blocks under ids of their own. The formats
//! Zero-OS nodes read (0-flist, rfs `fl`) name their blocks by ids the blocks' own codecs
//! check; a store keeps such blocks as they are given, apart from the chunks, and never
//! decodes them. Whoever stores a block has checked its id against its content.

use std::fmt;

/// The longest block a store keeps: 0-db's largest value.
pub const MAX_BLOCK_SIZE: usize = 8 << 20;

/// The id of a block: 16 bytes (0-flist's BLAKE2b-128) or 32 bytes (rfs `fl`'s
/// BLAKE2b-256), as the formats write them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockId {
    len: u8,
    bytes: [u8; 32],
}

impl BlockId {
    /// The lengths an id may have.
    pub const LENGTHS: [usize; 2] = [16, 32];

    /// An id from its bytes, if it has one of [`BlockId::LENGTHS`].
    pub fn from_slice(id: &[u8]) -> Option<BlockId> {
        if !Self::LENGTHS.contains(&id.len()) {
            return None;
        }
        let mut bytes = [0; 32];
        bytes[..id.len()].copy_from_slice(id);
        Some(BlockId {
            len: id.len() as u8,
            bytes,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.as_bytes())
    }
}

/// A 0-flist block id.
impl From<[u8; 16]> for BlockId {
    fn from(id: [u8; 16]) -> BlockId {
        let mut bytes = [0; 32];
        bytes[..16].copy_from_slice(&id);
        BlockId { len: 16, bytes }
    }
}

/// An rfs `fl` block id.
impl From<[u8; 32]> for BlockId {
    fn from(bytes: [u8; 32]) -> BlockId {
        BlockId { len: 32, bytes }
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockId({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_the_two_lengths_only() {
        assert!(BlockId::from_slice(&[1; 16]).is_some());
        assert!(BlockId::from_slice(&[1; 32]).is_some());
        for bad in [0, 1, 15, 17, 31, 33, 64] {
            assert!(BlockId::from_slice(&vec![1; bad]).is_none(), "{bad}");
        }
        // A 16-byte id is not the 32-byte id it is a prefix of.
        let short = BlockId::from_slice(&[0; 16]).unwrap();
        let long = BlockId::from_slice(&[0; 32]).unwrap();
        assert_ne!(short, long);
        assert_eq!(short.as_bytes().len(), 16);
    }
}
