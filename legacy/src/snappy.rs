//! What both block codecs share: snappy's raw format (not the framed one), with the
//! plaintext size bounded both ways.

use crate::error::{Error, Result};

/// Largest plaintext block the codecs encode or decode. zflist and rfs write 512 KiB
/// blocks, but other writers exist and 0-db stores values up to 8 MiB.
pub(crate) const MAX_PLAINTEXT: usize = 8 * 1024 * 1024;

fn too_large() -> Error {
    Error::TooLarge {
        what: "a block's plaintext",
        limit: MAX_PLAINTEXT as u64,
    }
}

pub(crate) fn compress(plain: &[u8]) -> Result<Vec<u8>> {
    if plain.len() > MAX_PLAINTEXT {
        return Err(too_large());
    }
    snap::raw::Encoder::new()
        .compress_vec(plain)
        .map_err(|_| Error::Block("snappy cannot compress it"))
}

/// Decompresses, refusing from the header alone a block that would exceed the limit.
pub(crate) fn decompress(compressed: &[u8]) -> Result<Vec<u8>> {
    let not_snappy = |_| Error::Block("its content is not snappy data");
    if snap::raw::decompress_len(compressed).map_err(not_snappy)? > MAX_PLAINTEXT {
        return Err(too_large());
    }
    snap::raw::Decoder::new()
        .decompress_vec(compressed)
        .map_err(not_snappy)
}

/// The longest compressed form of a block of [`MAX_PLAINTEXT`].
pub(crate) fn max_compressed() -> usize {
    snap::raw::max_compress_len(MAX_PLAINTEXT)
}
