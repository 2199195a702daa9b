//! The framing of chunks in the hub's chunk API (`/api/v1/chunks`), in both directions:
//!
//! ```text
//! frame = key (32 bytes, the chunk's BLAKE3) || length (u32, big-endian) || length bytes
//! ```
//!
//! The bytes are a stored chunk (`CHUNK-FORMAT.md`): header, then the zstd frame or the raw
//! content, so the receiver can check them against the key before it keeps them. In
//! answers to a batched read, a length of 0 says the store lacks the chunk (a stored chunk
//! is never empty: its header alone is 10 bytes). Frames follow each other with nothing in
//! between; the body ends after the last one.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::codec::{HEADER_LEN, MAX_CHUNK_SIZE};
use crate::key::ChunkKey;

/// The media type of a framed body.
pub const MEDIA_TYPE: &str = "application/vnd.flisthub.chunks";

/// Bytes before a frame's payload: the key and the length.
pub const FRAME_HEADER: usize = 32 + 4;

/// The longest payload a frame may carry: the largest stored chunk (a raw chunk of the
/// maximum size).
pub const MAX_FRAME_PAYLOAD: usize = HEADER_LEN + MAX_CHUNK_SIZE;

/// The header of a frame carrying `length` bytes.
pub fn frame_header(key: &ChunkKey, length: usize) -> [u8; FRAME_HEADER] {
    let mut header = [0u8; FRAME_HEADER];
    header[..32].copy_from_slice(key.as_bytes());
    // Payloads are at most MAX_FRAME_PAYLOAD, well within a u32.
    header[32..].copy_from_slice(&(length as u32).to_be_bytes());
    header
}

/// Appends a frame.
pub fn put_frame(out: &mut BytesMut, key: &ChunkKey, payload: &[u8]) {
    out.reserve(FRAME_HEADER + payload.len());
    out.put_slice(&frame_header(key, payload.len()));
    out.put_slice(payload);
}

/// What is wrong with a framed body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("chunk {key}: a frame of {length} bytes, more than the {max} a chunk can take")]
    TooLarge {
        key: ChunkKey,
        length: usize,
        max: usize,
    },
    #[error("the body ends inside a frame ({buffered} bytes of an unfinished frame)")]
    CutShort { buffered: usize },
}

/// Splits a framed body into frames as its pieces arrive, holding at most one frame.
#[derive(Debug, Default)]
pub struct FrameReader {
    buffer: BytesMut,
}

impl FrameReader {
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// Adds the next piece of the body.
    pub fn push(&mut self, piece: &[u8]) {
        self.buffer.extend_from_slice(piece);
    }

    /// The next whole frame, if one is buffered. A length past [`MAX_FRAME_PAYLOAD`] is an
    /// error as soon as its header is seen, before its bytes are read.
    pub fn next_frame(&mut self) -> Result<Option<(ChunkKey, Bytes)>, FrameError> {
        if self.buffer.len() < FRAME_HEADER {
            return Ok(None);
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&self.buffer[..32]);
        let key = ChunkKey::from_bytes(key);
        let length = u32::from_be_bytes([
            self.buffer[32],
            self.buffer[33],
            self.buffer[34],
            self.buffer[35],
        ]) as usize;
        if length > MAX_FRAME_PAYLOAD {
            return Err(FrameError::TooLarge {
                key,
                length,
                max: MAX_FRAME_PAYLOAD,
            });
        }
        if self.buffer.len() < FRAME_HEADER + length {
            return Ok(None);
        }
        self.buffer.advance(FRAME_HEADER);
        Ok(Some((key, self.buffer.split_to(length).freeze())))
    }

    /// Checks that the body ended between frames.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.buffer.len() {
            0 => Ok(()),
            buffered => Err(FrameError::CutShort { buffered }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_wherever_the_pieces_end() {
        let (a, b) = (ChunkKey::of(b"a"), ChunkKey::of(b"b"));
        let mut body = BytesMut::new();
        put_frame(&mut body, &a, b"first payload");
        put_frame(&mut body, &b, b"");
        put_frame(&mut body, &b, &[7; 1000]);
        for piece in [1, 3, 36, 37, 500, body.len()] {
            let mut reader = FrameReader::new();
            let mut frames = Vec::new();
            for chunk in body.chunks(piece) {
                reader.push(chunk);
                while let Some(frame) = reader.next_frame().unwrap() {
                    frames.push(frame);
                }
            }
            reader.finish().unwrap();
            assert_eq!(frames.len(), 3, "pieces of {piece}");
            assert_eq!(frames[0], (a, Bytes::from_static(b"first payload")));
            assert_eq!(frames[1], (b, Bytes::new()));
            assert_eq!(frames[2].1.len(), 1000);
        }
    }

    #[test]
    fn oversize_and_cut_short_frames_are_errors() {
        let key = ChunkKey::of(b"k");
        let mut reader = FrameReader::new();
        reader.push(key.as_bytes());
        reader.push(&((MAX_FRAME_PAYLOAD + 1) as u32).to_be_bytes());
        assert!(matches!(
            reader.next_frame(),
            Err(FrameError::TooLarge { length, .. }) if length == MAX_FRAME_PAYLOAD + 1
        ));

        let mut body = BytesMut::new();
        put_frame(&mut body, &key, b"whole");
        let mut reader = FrameReader::new();
        reader.push(&body[..body.len() - 1]);
        assert_eq!(reader.next_frame(), Ok(None));
        assert_eq!(
            reader.finish(),
            Err(FrameError::CutShort {
                buffered: body.len() - 1
            })
        );
    }
}
