//! The stored form of a chunk (see `CHUNK-FORMAT.md`):
//!
//! ```text
//! offset 0  4 bytes  magic "FLCK"
//!        4  1 byte   format version (1)
//!        5  1 byte   codec: 0 = raw, 1 = zstd
//!        6  4 bytes  plaintext length, little-endian u32
//!       10  ...      payload: the plaintext (raw) or one zstd frame with a content checksum
//! ```
//!
//! Decoding checks every field, bounds the output by the declared length, and verifies that
//! BLAKE3 of the result equals the key: a chunk is either exactly the content its key names
//! or an error that says what is wrong with it.

use bytes::Bytes;
use zstd::zstd_safe::{CParameter, DParameter};

use crate::error::{Error, Result};
use crate::key::ChunkKey;

const MAGIC: &[u8; 4] = b"FLCK";
const VERSION: u8 = 1;
const CODEC_RAW: u8 = 0;
const CODEC_ZSTD: u8 = 1;

/// Bytes of header in front of every stored chunk.
pub const HEADER_LEN: usize = 10;
/// Largest plaintext chunk accepted: half of 0-db's 8 MiB value limit, so that every stored
/// chunk fits in any backend with room to spare.
pub const MAX_CHUNK_SIZE: usize = 4 * 1024 * 1024;
/// zstd level used unless configured otherwise.
pub const DEFAULT_LEVEL: i32 = 3;

/// A plaintext chunk and its key. The key is computed here, so it always matches the data.
#[derive(Clone, PartialEq, Eq)]
pub struct Chunk {
    key: ChunkKey,
    data: Vec<u8>,
}

impl Chunk {
    pub fn new(data: Vec<u8>) -> Chunk {
        Chunk {
            key: ChunkKey::of(&data),
            data,
        }
    }

    pub fn key(&self) -> ChunkKey {
        self.key
    }

    pub fn data(&self) -> &[u8] {
        &self.data
    }

    pub fn into_data(self) -> Vec<u8> {
        self.data
    }
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chunk({}, {} bytes)", self.key, self.data.len())
    }
}

/// A chunk in its stored form, known to decode to the content its key names: either
/// encoded here from a [`Chunk`], or received and checked with [`Codec::verify`]. Stores
/// accept nothing else, so nothing unverified can be written.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedChunk {
    key: ChunkKey,
    bytes: Bytes,
}

impl EncodedChunk {
    pub fn key(&self) -> ChunkKey {
        self.key
    }

    /// The stored bytes (header and payload).
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl std::fmt::Debug for EncodedChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncodedChunk({}, {} bytes)", self.key, self.bytes.len())
    }
}

/// Whether stored bytes look like a chunk: the header is valid and the size consistent. A
/// cheap first check (no decompression, no hashing), used to fail over to another replica
/// past a copy that is visibly damaged; it does not replace [`Codec::decode`].
pub(crate) fn looks_like_chunk(stored: &[u8]) -> bool {
    if stored.len() < HEADER_LEN || &stored[..4] != MAGIC || stored[4] != VERSION {
        return false;
    }
    let declared = u32::from_le_bytes([stored[6], stored[7], stored[8], stored[9]]) as usize;
    let payload = stored.len() - HEADER_LEN;
    declared <= MAX_CHUNK_SIZE
        && match stored[5] {
            CODEC_RAW => payload == declared,
            // Within zstd's worst-case bound for the declared size.
            CODEC_ZSTD => payload > 0 && payload <= declared + declared / 128 + 64,
            _ => false,
        }
}

/// Encoder and decoder with reusable zstd contexts. Not `Sync`: keep one per thread.
pub struct Codec {
    compressor: zstd::bulk::Compressor<'static>,
    decompressor: zstd::bulk::Decompressor<'static>,
    /// Whether the decompressor is set to skip the frame checksum (see
    /// [`decode_into`](Self::decode_into)).
    checksum_skipped: bool,
}

impl Codec {
    /// A codec compressing at zstd `level` (1..=22; 3 is the default).
    pub fn new(level: i32) -> Result<Codec> {
        let range = zstd::compression_level_range();
        if !range.contains(&level) {
            return Err(Error::InvalidChunker(format!(
                "zstd level {level} is outside {}..={}",
                range.start(),
                range.end()
            )));
        }
        let zstd_err = |e| Error::io("zstd", e);
        let mut compressor = zstd::bulk::Compressor::new(level).map_err(zstd_err)?;
        // The frame checksum lets a damaged payload be reported as corrupt rather than as
        // content under the wrong key.
        compressor
            .set_parameter(CParameter::ChecksumFlag(true))
            .map_err(zstd_err)?;
        let decompressor = zstd::bulk::Decompressor::new().map_err(zstd_err)?;
        Ok(Codec {
            compressor,
            decompressor,
            checksum_skipped: false,
        })
    }

    /// Encodes a chunk: zstd when that makes it smaller, raw otherwise.
    pub fn encode(&mut self, chunk: &Chunk) -> Result<EncodedChunk> {
        let data = chunk.data();
        if data.len() > MAX_CHUNK_SIZE {
            return Err(Error::TooLarge {
                size: data.len(),
                max: MAX_CHUNK_SIZE,
            });
        }
        // Room for a payload strictly smaller than the plaintext: zstd fails when the frame
        // would not fit, which is exactly when storing raw is better.
        let mut out = vec![0u8; HEADER_LEN + data.len().saturating_sub(1)];
        let codec = match self
            .compressor
            .compress_to_buffer(data, &mut out[HEADER_LEN..])
        {
            Ok(n) if !data.is_empty() => {
                out.truncate(HEADER_LEN + n);
                CODEC_ZSTD
            }
            _ => {
                out.truncate(HEADER_LEN);
                out.extend_from_slice(data);
                CODEC_RAW
            }
        };
        out[..4].copy_from_slice(MAGIC);
        out[4] = VERSION;
        out[5] = codec;
        // MAX_CHUNK_SIZE fits in a u32.
        out[6..10].copy_from_slice(&(data.len() as u32).to_le_bytes());
        Ok(EncodedChunk {
            key: chunk.key(),
            bytes: Bytes::from(out),
        })
    }

    /// Decodes stored bytes and checks that they hold the content `key` names.
    pub fn decode(&mut self, key: &ChunkKey, stored: &[u8]) -> Result<Vec<u8>> {
        Ok(match self.plain(key, stored)? {
            Plain::Raw => stored[HEADER_LEN..].to_vec(),
            Plain::Decompressed(data) => data,
        })
    }

    /// As [`decode`](Self::decode), for stored bytes already shared: a raw payload is handed
    /// out as a slice of them rather than copied (readers of many chunks copy less).
    pub fn decode_shared(&mut self, key: &ChunkKey, stored: &Bytes) -> Result<Bytes> {
        Ok(match self.plain(key, stored)? {
            Plain::Raw => stored.slice(HEADER_LEN..),
            Plain::Decompressed(data) => Bytes::from(data),
        })
    }

    /// As [`decode`](Self::decode), into `buf` (a scratch buffer reused from chunk to chunk,
    /// so that a reader of many chunks allocates and faults in no new memory for each): the
    /// plaintext is the payload of `stored` itself when it is stored raw, the start of `buf`
    /// when it is compressed.
    pub fn decode_into<'a>(
        &mut self,
        key: &ChunkKey,
        stored: &'a [u8],
        buf: &'a mut Vec<u8>,
    ) -> Result<&'a [u8]> {
        match frame(key, stored)? {
            Frame::Raw(payload) => {
                check_key(*key, payload)?;
                Ok(payload)
            }
            Frame::Zstd { payload, declared } => {
                // The hot path of readers of many chunks: zstd's checksum of the frame is
                // skipped, since BLAKE3 of the plaintext is checked anyway. A chunk that fails
                // is decoded again with it, so that the error says what `decode` would
                // (damaged payload or content of another key).
                self.skip_checksum(true)?;
                // zstd writes from the start of the buffer and no further than its capacity:
                // a frame holding more than declared fails or is caught below.
                buf.clear();
                buf.reserve(declared);
                let decoded = self
                    .decompressor
                    .decompress_to_buffer(payload, buf)
                    .map_err(|e| corrupt(*key, format!("zstd: {e}")))
                    .and_then(|_| check_declared(*key, buf.len(), declared))
                    .and_then(|()| check_key(*key, buf));
                match decoded {
                    Ok(()) => Ok(buf),
                    Err(unchecked) => Err(self.plain(key, stored).err().unwrap_or(unchecked)),
                }
            }
        }
    }

    /// Sets whether the decompressor checks zstd's frame checksum, if that changes.
    fn skip_checksum(&mut self, skip: bool) -> Result<()> {
        if self.checksum_skipped != skip {
            self.decompressor
                .set_parameter(DParameter::ForceIgnoreChecksum(skip))
                .map_err(|e| Error::io("zstd", e))?;
            self.checksum_skipped = skip;
        }
        Ok(())
    }

    /// Checks stored bytes against `key`, decompressing them if they are compressed.
    fn plain(&mut self, key: &ChunkKey, stored: &[u8]) -> Result<Plain> {
        match frame(key, stored)? {
            Frame::Raw(payload) => {
                check_key(*key, payload)?;
                Ok(Plain::Raw)
            }
            Frame::Zstd { payload, declared } => {
                self.skip_checksum(false)?;
                // Into a buffer of the declared size, not zeroed first: a frame that holds
                // more is an error, one that holds less is caught below.
                let data = self
                    .decompressor
                    .decompress(payload, declared)
                    .map_err(|e| corrupt(*key, format!("zstd: {e}")))?;
                check_declared(*key, data.len(), declared)?;
                check_key(*key, &data)?;
                Ok(Plain::Decompressed(data))
            }
        }
    }

    /// Checks bytes received from outside (an upload, another store) and, if they decode to
    /// the content `key` names, makes them storable.
    pub fn verify(&mut self, key: ChunkKey, stored: Bytes) -> Result<EncodedChunk> {
        self.plain(&key, &stored)?;
        Ok(EncodedChunk { key, bytes: stored })
    }
}

/// Stored bytes whose header is checked: the payload, and for a compressed one the
/// plaintext length the header declares (not yet decompressed nor hashed).
enum Frame<'a> {
    Raw(&'a [u8]),
    Zstd { payload: &'a [u8], declared: usize },
}

/// Checks every field of the header, the payload's length against it and that a compressed
/// payload is exactly one complete zstd frame.
fn frame<'a>(key: &ChunkKey, stored: &'a [u8]) -> Result<Frame<'a>> {
    let key = *key;
    let truncated = |detail: String| Error::Truncated { key, detail };
    if stored.len() < HEADER_LEN {
        if !MAGIC.starts_with(&stored[..stored.len().min(4)]) {
            return Err(Error::BadMagic { key });
        }
        return Err(truncated(format!(
            "{} bytes, shorter than the {HEADER_LEN}-byte header",
            stored.len()
        )));
    }
    if &stored[..4] != MAGIC {
        return Err(Error::BadMagic { key });
    }
    if stored[4] != VERSION {
        return Err(Error::UnsupportedVersion {
            key,
            version: stored[4],
        });
    }
    let compressed = match stored[5] {
        CODEC_RAW => false,
        CODEC_ZSTD => true,
        codec => return Err(Error::UnknownCodec { key, codec }),
    };
    let declared = u32::from_le_bytes([stored[6], stored[7], stored[8], stored[9]]) as usize;
    if declared > MAX_CHUNK_SIZE {
        return Err(corrupt(
            key,
            format!("declares {declared} bytes, more than the maximum chunk size"),
        ));
    }
    let payload = &stored[HEADER_LEN..];
    if !compressed {
        if payload.len() < declared {
            return Err(truncated(format!(
                "{} of {declared} payload bytes",
                payload.len()
            )));
        }
        if payload.len() > declared {
            return Err(corrupt(
                key,
                format!(
                    "{} trailing bytes after the payload",
                    payload.len() - declared
                ),
            ));
        }
        return Ok(Frame::Raw(payload));
    }
    match zstd::zstd_safe::find_frame_compressed_size(payload) {
        Err(_) => Err(truncated("the zstd frame is incomplete".into())),
        Ok(n) if n != payload.len() => Err(corrupt(
            key,
            format!("{} bytes after the zstd frame", payload.len() - n),
        )),
        Ok(_) => Ok(Frame::Zstd { payload, declared }),
    }
}

fn corrupt(key: ChunkKey, detail: String) -> Error {
    Error::Corrupt { key, detail }
}

fn check_declared(key: ChunkKey, length: usize, declared: usize) -> Result<()> {
    if length != declared {
        return Err(corrupt(
            key,
            format!("decompressed to {length} bytes, the header says {declared}"),
        ));
    }
    Ok(())
}

/// What checked stored bytes hold.
enum Plain {
    /// The payload after the header, as stored.
    Raw,
    Decompressed(Vec<u8>),
}

fn check_key(key: ChunkKey, data: &[u8]) -> Result<()> {
    let actual = ChunkKey::of(data);
    if actual != key {
        return Err(Error::KeyMismatch { key, actual });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> Vec<u8> {
        b"the quick brown fox jumps over the lazy dog\n"
            .iter()
            .copied()
            .cycle()
            .take(n)
            .collect()
    }

    fn noise(n: usize) -> Vec<u8> {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn round_trips_and_picks_the_smaller_form() {
        let mut codec = Codec::new(DEFAULT_LEVEL).unwrap();
        for (data, compressed) in [
            (text(100_000), true),
            (noise(100_000), false),
            (Vec::new(), false),
            (vec![7], false),
        ] {
            let chunk = Chunk::new(data.clone());
            let encoded = codec.encode(&chunk).unwrap();
            assert_eq!(encoded.bytes()[5] == CODEC_ZSTD, compressed);
            assert!(encoded.len() <= data.len() + HEADER_LEN);
            assert_eq!(codec.decode(&chunk.key(), encoded.bytes()).unwrap(), data);
            let shared = codec.decode_shared(&chunk.key(), encoded.bytes()).unwrap();
            assert_eq!(shared, data);
            // A raw payload is the stored bytes themselves, not a copy.
            let stored = encoded.bytes().as_ptr_range();
            assert_eq!(
                stored.contains(&shared.as_ptr()),
                !compressed && !data.is_empty()
            );
        }
    }

    #[test]
    fn damage_is_reported_distinctly() {
        let mut codec = Codec::new(DEFAULT_LEVEL).unwrap();
        let chunk = Chunk::new(text(50_000));
        let good = codec.encode(&chunk).unwrap().bytes().to_vec();
        let key = chunk.key();

        // A byte flipped inside the zstd payload: caught by zstd's frame checksum.
        let mut flipped = good.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        assert!(matches!(
            codec.decode(&key, &flipped),
            Err(Error::Corrupt { .. })
        ));

        // The right bytes asked for under another key.
        let other = ChunkKey::of(b"other");
        assert!(
            matches!(codec.decode(&other, &good), Err(Error::KeyMismatch { key, actual }) if key == other && actual == chunk.key())
        );

        // The same through `decode_into`, which skips zstd's checksum and decodes a failing
        // chunk again with it: in turns, so that the setting is switched both ways.
        let mut buf = Vec::new();
        for _ in 0..2 {
            assert_eq!(
                codec.decode_into(&key, &good, &mut buf).unwrap(),
                chunk.data()
            );
            assert!(matches!(
                codec.decode_into(&key, &flipped, &mut buf),
                Err(Error::Corrupt { .. })
            ));
            assert!(matches!(
                codec.decode_into(&other, &good, &mut buf),
                Err(Error::KeyMismatch { key, actual }) if key == other && actual == chunk.key()
            ));
            assert!(matches!(
                codec.decode(&key, &flipped),
                Err(Error::Corrupt { .. })
            ));
        }

        // Cut short, in the payload and in the header.
        assert!(matches!(
            codec.decode(&key, &good[..good.len() - 3]),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            codec.decode(&key, &good[..6]),
            Err(Error::Truncated { .. })
        ));

        let mut version = good.clone();
        version[4] = 9;
        assert!(matches!(
            codec.decode(&key, &version),
            Err(Error::UnsupportedVersion { version: 9, .. })
        ));
        let mut codec_byte = good.clone();
        codec_byte[5] = 7;
        assert!(matches!(
            codec.decode(&key, &codec_byte),
            Err(Error::UnknownCodec { codec: 7, .. })
        ));
        assert!(matches!(
            codec.decode(&key, b"PK\x03\x04 not a chunk"),
            Err(Error::BadMagic { .. })
        ));

        // Raw chunks: truncation from the length field, damage as a key mismatch.
        let raw_chunk = Chunk::new(noise(1000));
        let raw = codec.encode(&raw_chunk).unwrap().bytes().to_vec();
        assert!(matches!(
            codec.decode(&raw_chunk.key(), &raw[..500]),
            Err(Error::Truncated { .. })
        ));
        let mut raw_flipped = raw.clone();
        raw_flipped[HEADER_LEN] ^= 1;
        assert!(matches!(
            codec.decode(&raw_chunk.key(), &raw_flipped),
            Err(Error::KeyMismatch { .. })
        ));

        // A header declaring an absurd size never makes the decoder allocate it.
        let mut huge = good.clone();
        huge[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            codec.decode(&key, &huge),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn oversized_chunks_are_refused() {
        let mut codec = Codec::new(DEFAULT_LEVEL).unwrap();
        let chunk = Chunk::new(vec![0; MAX_CHUNK_SIZE + 1]);
        assert!(matches!(codec.encode(&chunk), Err(Error::TooLarge { .. })));
        assert!(Codec::new(99).is_err());
    }

    #[test]
    fn verify_accepts_only_matching_bytes() {
        let mut codec = Codec::new(1).unwrap();
        let chunk = Chunk::new(text(1000));
        let encoded = codec.encode(&chunk).unwrap();
        let ok = codec.verify(chunk.key(), encoded.bytes().clone()).unwrap();
        assert_eq!(ok, encoded);
        assert!(
            codec
                .verify(ChunkKey::of(b"x"), encoded.bytes().clone())
                .is_err()
        );
    }
}
