//! The chunk-upload body (`POST /api/v1/chunks`): frames split by `FrameReader` as the
//! body's pieces arrive (the first byte of the input picks the piece size), each frame's
//! payload checked by `Codec::verify` as the hub does. Frames taken out must be exactly
//! the bytes of the body, in order; at most one frame is buffered; a refusal is a
//! `FrameError` or a decoding error.

#![no_main]

use bytes::{Bytes, BytesMut};
use chunkstore::frames::{FRAME_HEADER, FrameError, FrameReader, MAX_FRAME_PAYLOAD, put_frame};
use chunkstore::{Codec, DEFAULT_LEVEL, Error};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&piece, body)) = data.split_first() else {
        return;
    };
    let piece = usize::from(piece).max(1);
    let mut codec = Codec::new(DEFAULT_LEVEL).expect("codec");
    let mut reader = FrameReader::new();
    let mut taken = BytesMut::new();
    let mut pushed = 0;
    let mut refused = false;
    'body: for part in body.chunks(piece) {
        reader.push(part);
        pushed += part.len();
        loop {
            match reader.next_frame() {
                Ok(Some((key, payload))) => {
                    put_frame(&mut taken, &key, &payload);
                    match codec.verify(key, Bytes::clone(&payload)) {
                        Ok(chunk) => assert_eq!(chunk.bytes(), &payload),
                        Err(
                            Error::Truncated { .. }
                            | Error::BadMagic { .. }
                            | Error::UnsupportedVersion { .. }
                            | Error::UnknownCodec { .. }
                            | Error::Corrupt { .. }
                            | Error::KeyMismatch { .. },
                        ) => {}
                        Err(other) => panic!("not a decoding error: {other:?}"),
                    }
                }
                Ok(None) => break,
                Err(FrameError::TooLarge { length, .. }) => {
                    assert!(length > MAX_FRAME_PAYLOAD);
                    refused = true;
                    break 'body;
                }
                Err(other) => panic!("next_frame gave {other:?}"),
            }
        }
        // What is left buffered is less than one frame.
        assert!(pushed - taken.len() < FRAME_HEADER + MAX_FRAME_PAYLOAD);
    }
    assert_eq!(
        &body[..taken.len()],
        &taken[..],
        "frames are the body's bytes"
    );
    if !refused {
        match reader.finish() {
            Ok(()) => assert_eq!(taken.len(), body.len()),
            Err(FrameError::CutShort { buffered }) => {
                assert_eq!(taken.len() + buffered, body.len());
            }
            Err(other) => panic!("finish gave {other:?}"),
        }
    }
});
