//! The chunk decoder (`Codec::decode`, what every store read and every upload goes
//! through). The input is stored bytes, decoded against a key that cannot match; the
//! refusal must be one of the decoder's typed errors, and a key mismatch means the bytes
//! decoded: then they must decode under the actual key, to at most the largest chunk,
//! and that content must survive encoding and decoding again.

#![no_main]

use chunkstore::{Chunk, ChunkKey, Codec, DEFAULT_LEVEL, Error, MAX_CHUNK_SIZE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut codec = Codec::new(DEFAULT_LEVEL).expect("codec");
    let wrong = ChunkKey::from([0u8; 32]);
    let actual = match codec.decode(&wrong, data) {
        Ok(_) => panic!("content whose BLAKE3 is all zeroes"),
        Err(Error::KeyMismatch { key, actual }) => {
            assert_eq!(key, wrong);
            actual
        }
        Err(
            Error::Truncated { .. }
            | Error::BadMagic { .. }
            | Error::UnsupportedVersion { .. }
            | Error::UnknownCodec { .. }
            | Error::Corrupt { .. },
        ) => return,
        Err(other) => panic!("not a decoding error: {other:?}"),
    };
    let content = codec
        .decode(&actual, data)
        .expect("decodes under its own key");
    assert!(content.len() <= MAX_CHUNK_SIZE);
    assert_eq!(ChunkKey::of(&content), actual);
    let encoded = codec.encode(&Chunk::new(content.clone())).expect("encodes");
    assert_eq!(encoded.key(), actual);
    assert_eq!(
        codec.decode(&actual, encoded.bytes()).expect("round trip"),
        content
    );
});
