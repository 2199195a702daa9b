//! The 0-flist block codec, as libflist writes blocks and zflist and g8ufs read them.
//!
//! A plaintext block `P` (512 KiB, a file's last block shorter) is stored as
//! `E = XXTEA(snappy_raw(P), key)` with `key = BLAKE2b-128(P)` (a 16-byte digest, not a
//! truncated 64-byte one), under `id = BLAKE2b-128(E)`. Equal blocks give equal bytes, so a
//! store keeps each once whoever wrote it.

use blake2::digest::consts::{U8, U16};
use blake2::{Blake2b, Digest};

use crate::error::{Error, Result};
use crate::snappy;
use crate::zero::xxtea;

/// Largest plaintext block [`encode`] and [`decode`] take (libflist writes 512 KiB blocks;
/// other writers exist and 0-db stores values up to 8 MiB).
pub const MAX_PLAINTEXT: usize = snappy::MAX_PLAINTEXT;

/// A block of a 0-flist file: its id in the store and the key that decrypts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Block {
    /// BLAKE2b-128 of the encrypted block: the key it is stored under.
    pub id: [u8; 16],
    /// BLAKE2b-128 of the plaintext: the XXTEA key, checked by zflist on every read.
    pub key: [u8; 16],
}

/// BLAKE2b with a 16-byte digest: a block's key, and a 0-flist directory's row key.
pub fn blake2b_128(data: &[u8]) -> [u8; 16] {
    Blake2b::<U16>::digest(data).into()
}

/// BLAKE2b with an 8-byte digest: a 0-flist ACL's row key.
pub(crate) fn blake2b_64(data: &[u8]) -> [u8; 8] {
    Blake2b::<U8>::digest(data).into()
}

/// Encodes a plaintext block (at most [`MAX_PLAINTEXT`] bytes).
pub fn encode(plain: &[u8]) -> Result<(Block, Vec<u8>)> {
    encode_with_key(plain, blake2b_128(plain))
}

/// [`encode`] for a caller that already has the block's key (it must be
/// [`blake2b_128`] of `plain`, or zflist will refuse the block).
pub fn encode_with_key(plain: &[u8], key: [u8; 16]) -> Result<(Block, Vec<u8>)> {
    let sealed = xxtea::encrypt(&snappy::compress(plain)?, &key);
    let id = blake2b_128(&sealed);
    Ok((Block { id, key }, sealed))
}

/// Decodes a stored block with its key, checking that the plaintext hashes to the key, with
/// every length bounded before anything of that length is allocated.
pub fn decode(sealed: &[u8], key: &[u8; 16]) -> Result<Vec<u8>> {
    let max_sealed = 4 * (snappy::max_compressed().div_ceil(4) + 1);
    if sealed.len() > max_sealed {
        return Err(Error::TooLarge {
            what: "an encoded block",
            limit: max_sealed as u64,
        });
    }
    let compressed = xxtea::decrypt(sealed, key)
        .ok_or(Error::Block("not XXTEA data of the length it declares"))?;
    let plain = snappy::decompress(&compressed)?;
    if blake2b_128(&plain) != *key {
        return Err(Error::Block("its plaintext does not hash to its key"));
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_blake2b_with_their_own_length() {
        // The root directory's row key in every 0-flist: BLAKE2b-128 of the empty path.
        assert_eq!(
            hex::encode(blake2b_128(b"")),
            "cae66941d9efbd404e4d88758ea67670"
        );
    }

    #[test]
    fn round_trips_and_refuses_the_wrong_key() {
        let plain: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
        let (block, sealed) = encode(&plain).unwrap();
        assert_eq!(block.id, blake2b_128(&sealed));
        assert_eq!(decode(&sealed, &block.key).unwrap(), plain);
        assert!(decode(&sealed, &[0; 16]).is_err());
        assert!(decode(&sealed[..sealed.len() - 4], &block.key).is_err());
        assert!(decode(b"", &block.key).is_err());
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_before_allocating() {
        // A snappy header declaring 1 GiB, sealed with its "key": decode must refuse it from
        // the header alone.
        let mut bomb = Vec::new();
        let mut n: u64 = 1 << 30;
        while n >= 0x80 {
            bomb.push((n as u8) | 0x80);
            n >>= 7;
        }
        bomb.push(n as u8);
        let key = [3u8; 16];
        let sealed = xxtea::encrypt(&bomb, &key);
        assert!(matches!(decode(&sealed, &key), Err(Error::TooLarge { .. })));
        assert!(matches!(
            decode(&vec![0; 16 << 20], &key),
            Err(Error::TooLarge { .. })
        ));
    }
}
