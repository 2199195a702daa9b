//! The rfs `fl` block codec, as rfs 2.0.6 writes blocks and reads them.
//!
//! A plaintext block `P` (512 KiB, a file's last block shorter) is stored as
//! `E = AES-256-GCM(key, nonce = key[0..12], snappy_raw(P))` (ciphertext then the 16-byte
//! tag, no associated data) with `key = BLAKE2b-256(P)`, under `id = BLAKE2b-256(E)`.
//! The reader never recomputes either: any key works that decrypts the block, and the GCM
//! tag authenticates it.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};

use crate::error::{Error, Result};
use crate::snappy;

/// Largest plaintext block [`encode`] and [`decode`] take (rfs writes 512 KiB blocks; 0-db
/// stores values up to 8 MiB).
pub const MAX_PLAINTEXT: usize = snappy::MAX_PLAINTEXT;

const TAG_LEN: usize = 16;

/// A block of an fl file: its id in the store and the key that decrypts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Block {
    pub id: [u8; 32],
    pub key: [u8; 32],
}

/// BLAKE2b with a 32-byte digest.
pub fn blake2b_256(data: &[u8]) -> [u8; 32] {
    Blake2b::<U32>::digest(data).into()
}

/// Encodes a plaintext block (at most [`MAX_PLAINTEXT`] bytes) as rfs does.
pub fn encode(plain: &[u8]) -> Result<(Block, Vec<u8>)> {
    encode_with_key(plain, blake2b_256(plain))
}

/// [`encode`] with a key the caller chose (any content hash of `plain` keeps equal blocks
/// equal; the id is still BLAKE2b-256 of what is returned).
pub fn encode_with_key(plain: &[u8], key: [u8; 32]) -> Result<(Block, Vec<u8>)> {
    let sealed = seal(&snappy::compress(plain)?, &key)?;
    let id = blake2b_256(&sealed);
    Ok((Block { id, key }, sealed))
}

/// Encrypts a block's compressed form.
pub(crate) fn seal(compressed: &[u8], key: &[u8; 32]) -> Result<Vec<u8>> {
    cipher(key)
        .encrypt(&nonce(key), compressed)
        .map_err(|_| Error::Block("AES-GCM cannot encrypt it"))
}

/// Decodes a stored block with its key (the GCM tag authenticates it), with every length
/// bounded before anything of that length is allocated.
pub fn decode(sealed: &[u8], key: &[u8; 32]) -> Result<Vec<u8>> {
    let max_sealed = snappy::max_compressed() + TAG_LEN;
    if sealed.len() > max_sealed {
        return Err(Error::TooLarge {
            what: "an encoded block",
            limit: max_sealed as u64,
        });
    }
    let compressed = cipher(key)
        .decrypt(&nonce(key), sealed)
        .map_err(|_| Error::Block("it does not decrypt with its key"))?;
    snappy::decompress(&compressed)
}

fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

/// The nonce rfs derives from the key: its first 12 bytes (safe only because a key encrypts
/// one plaintext, whose hash it is).
fn nonce(key: &[u8; 32]) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&key[..12]);
    Nonce::from(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_tampering() {
        let plain: Vec<u8> = (0..524_288u32).map(|i| (i * 7 % 253) as u8).collect();
        let (block, sealed) = encode(&plain).unwrap();
        assert_eq!(block.key, blake2b_256(&plain));
        assert_eq!(block.id, blake2b_256(&sealed));
        assert_eq!(decode(&sealed, &block.key).unwrap(), plain);
        let mut bad = sealed.clone();
        bad[3] ^= 0x40;
        assert!(matches!(decode(&bad, &block.key), Err(Error::Block(_))));
        assert!(decode(&sealed, &[1; 32]).is_err());
        assert!(decode(b"short", &block.key).is_err());
        assert!(matches!(
            decode(&vec![0; 16 << 20], &block.key),
            Err(Error::TooLarge { .. })
        ));
    }
}
