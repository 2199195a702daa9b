//! The legacy block decoders (`legacy::zero::decode`: XXTEA, then snappy, then the
//! plaintext's hash against its key; `legacy::fl::decode`: AES-256-GCM, then snappy), what
//! every block read from a 0-db or through the gateway goes through. The first byte picks
//! the codec and the layer the rest reaches:
//! - the ciphertext itself, under a fixed key: it must be refused with a typed error (no
//!   input can carry a valid tag or hash without the key);
//! - a payload sealed by the codec's own cipher, so that the bytes reach snappy: the block
//!   must decode exactly when the `snap` crate's own raw decoder takes the payload within
//!   the plaintext bound, to the same plaintext, which must then survive `encode` and
//!   `decode` again.

#![no_main]

use legacy::fuzzing::{seal_fl, seal_zero};
use legacy::{Error, fl, zero};
use libfuzzer_sys::fuzz_target;

const FL_KEY: [u8; 32] = [0x5a; 32];

/// The plaintext a payload must give, by the reference decoder, within the bound.
fn expected(payload: &[u8]) -> Option<Vec<u8>> {
    let len = snap::raw::decompress_len(payload).ok()?;
    if len > zero::MAX_PLAINTEXT {
        return None;
    }
    snap::raw::Decoder::new().decompress_vec(payload).ok()
}

fn refused(outcome: legacy::Result<Vec<u8>>) {
    match outcome {
        Ok(_) => panic!("a block decoded without its key"),
        Err(Error::Block(_) | Error::TooLarge { .. }) => {}
        Err(other) => panic!("not a block error: {other:?}"),
    }
}

fn agrees(outcome: legacy::Result<Vec<u8>>, expected: Option<Vec<u8>>) -> Option<Vec<u8>> {
    match (outcome, expected) {
        (Ok(plain), Some(want)) => {
            assert_eq!(plain, want, "decoded to another plaintext than snappy's");
            Some(plain)
        }
        (Err(Error::Block(_) | Error::TooLarge { .. }), None) => None,
        (outcome, want) => panic!(
            "decode says {:?}, snappy says {:?}",
            outcome.map(|p| p.len()),
            want.map(|p| p.len())
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => refused(zero::decode(rest, &[0x5a; 16])),
        1 => refused(fl::decode(rest, &FL_KEY)),
        2 => {
            // XXTEA takes no empty input, and snappy output never is empty.
            if rest.is_empty() {
                return;
            }
            let want = expected(rest);
            // The key the plaintext hashes to, so that the hash check passes exactly when
            // the decoded plaintext is the reference one.
            let key = want.as_deref().map_or([0; 16], zero::blake2b_128);
            if let Some(plain) = agrees(zero::decode(&seal_zero(rest, &key), &key), want) {
                let (block, sealed) = zero::encode(&plain).expect("a decoded block encodes");
                assert_eq!(zero::decode(&sealed, &block.key).expect("decodes"), plain);
            }
        }
        _ => {
            let sealed = seal_fl(rest, &FL_KEY).expect("a small payload seals");
            if let Some(plain) = agrees(fl::decode(&sealed, &FL_KEY), expected(rest)) {
                let (block, sealed) = fl::encode(&plain).expect("a decoded block encodes");
                assert_eq!(fl::decode(&sealed, &block.key).expect("decodes"), plain);
            }
        }
    }
});
