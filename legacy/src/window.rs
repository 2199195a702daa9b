//! The 512 KiB windows both legacy formats cut a file into, and the keys and ids of the
//! blocks a writer that starts from content it already holds (flisthub's renditions of its
//! own flists) gives them.
//!
//! Neither node reader recomputes a block's id, and both use its key only to decrypt it, so
//! a writer may choose both, as long as the key decrypts the block and the id names it in
//! the store. Here:
//! * the 0-flist key is BLAKE2b-128 of the window, as zflist computes it (zflist checks it
//!   when it reads a block);
//! * the fl key is BLAKE3 of the window (any content hash will do, and BLAKE3 is the fastest
//!   at hand);
//! * each id is derived from its key alone, with a context of its own (BLAKE3's key
//!   derivation), so equal windows have equal ids in every flist (nodes share their cache),
//!   ids of the two formats never meet, and no encoding pass is needed to name a block:
//!   blocks are encoded only when they are read.

use crate::tree::BLOCK_SIZE;
use crate::{fl, zero};

const ZERO_ID_CONTEXT: &str = "flisthub 2026-12 0-flist block id from its key";
const FL_ID_CONTEXT: &str = "flisthub 2026-12 fl block id from its key";

/// The keys of one window's blocks in both formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowKeys {
    /// BLAKE2b-128 of the window: the 0-flist block's key.
    pub zero: [u8; 16],
    /// BLAKE3 of the window: the fl block's key.
    pub fl: [u8; 32],
}

/// Bytes a [`WindowKeys`] takes in [`WindowKeys::to_bytes`].
pub const WINDOW_KEYS_LEN: usize = 48;

impl WindowKeys {
    /// The keys of `window` (at most [`BLOCK_SIZE`] bytes).
    pub fn of(window: &[u8]) -> WindowKeys {
        WindowKeys {
            zero: zero::blake2b_128(window),
            fl: *blake3::hash(window).as_bytes(),
        }
    }

    /// The 0-flist block of this window.
    pub fn zero_block(&self) -> zero::Block {
        zero::Block {
            id: zero_id(&self.zero),
            key: self.zero,
        }
    }

    /// The fl block of this window.
    pub fn fl_block(&self) -> fl::Block {
        fl::Block {
            id: fl_id(&self.fl),
            key: self.fl,
        }
    }

    pub fn to_bytes(&self) -> [u8; WINDOW_KEYS_LEN] {
        let mut out = [0; WINDOW_KEYS_LEN];
        out[..16].copy_from_slice(&self.zero);
        out[16..].copy_from_slice(&self.fl);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<WindowKeys> {
        let bytes: &[u8; WINDOW_KEYS_LEN] = bytes.try_into().ok()?;
        let (zero, fl) = bytes.split_at(16);
        Some(WindowKeys {
            zero: zero.try_into().ok()?,
            fl: fl.try_into().ok()?,
        })
    }
}

/// The id of the 0-flist block whose key is `key`.
pub fn zero_id(key: &[u8; 16]) -> [u8; 16] {
    let mut id = [0; 16];
    id.copy_from_slice(&blake3::derive_key(ZERO_ID_CONTEXT, key)[..16]);
    id
}

/// The id of the fl block whose key is `key`.
pub fn fl_id(key: &[u8; 32]) -> [u8; 32] {
    blake3::derive_key(FL_ID_CONTEXT, key)
}

/// Cuts content given in pieces of any size into windows and keys each one.
#[derive(Debug, Default)]
pub struct WindowHasher {
    window: Vec<u8>,
    keys: Vec<WindowKeys>,
}

impl WindowHasher {
    pub fn new() -> WindowHasher {
        WindowHasher::default()
    }

    /// Takes the next bytes of the content.
    pub fn update(&mut self, mut data: &[u8]) {
        let block = BLOCK_SIZE as usize;
        while !data.is_empty() {
            if self.window.is_empty() && data.len() >= block {
                // Whole windows straight from the input, without a copy.
                self.keys.push(WindowKeys::of(&data[..block]));
                data = &data[block..];
                continue;
            }
            let take = (block - self.window.len()).min(data.len());
            self.window.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.window.len() == block {
                self.keys.push(WindowKeys::of(&self.window));
                self.window.clear();
            }
        }
    }

    /// The keys of every window, the last one short unless the content fills it; none for
    /// empty content.
    pub fn finish(mut self) -> Vec<WindowKeys> {
        if !self.window.is_empty() {
            self.keys.push(WindowKeys::of(&self.window));
        }
        self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_whatever_the_pieces() {
        let content: Vec<u8> = (0..(3 * BLOCK_SIZE as usize + 1000))
            .map(|i| (i % 251) as u8)
            .collect();
        let expected: Vec<WindowKeys> = content
            .chunks(BLOCK_SIZE as usize)
            .map(WindowKeys::of)
            .collect();
        assert_eq!(expected.len(), 4);
        for piece in [1, 4096, 100_000, 524_288, 524_289, content.len()] {
            let mut hasher = WindowHasher::new();
            for part in content.chunks(piece) {
                hasher.update(part);
            }
            assert_eq!(hasher.finish(), expected, "pieces of {piece}");
        }
        assert!(WindowHasher::new().finish().is_empty());
    }

    #[test]
    fn keys_and_ids() {
        let window = b"window".repeat(1000);
        let keys = WindowKeys::of(&window);
        assert_eq!(keys.zero, zero::blake2b_128(&window), "zflist's key");
        let block = keys.zero_block();
        // A real block of that key decodes to the window: the id is only its name.
        let (_, sealed) = zero::encode_with_key(&window, block.key).unwrap();
        assert_eq!(zero::decode(&sealed, &block.key).unwrap(), window);
        let (_, sealed) = fl::encode_with_key(&window, keys.fl).unwrap();
        assert_eq!(fl::decode(&sealed, &keys.fl).unwrap(), window);
        assert_ne!(
            &block.id[..],
            &keys.fl_block().id[..16],
            "formats never share ids"
        );
        assert_eq!(WindowKeys::from_bytes(&keys.to_bytes()), Some(keys));
        assert_eq!(
            zero_id(&keys.zero),
            WindowKeys::of(&window).zero_block().id,
            "stable"
        );
    }
}
