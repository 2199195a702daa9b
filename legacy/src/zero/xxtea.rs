//! XXTEA (Wheeler and Needham's corrected block TEA) with the byte conventions of the
//! `xxtea-c` library that libflist and g8ufs use: the key's 16 bytes are four little-endian
//! words; the data is zero-padded to whole little-endian words and one more word holding its
//! length in bytes is appended before encryption, so the output is `4 * (ceil(n / 4) + 1)`
//! bytes.
//!
//! Written here because the one crate that implements this variant takes its key as a
//! `&str` and panics on malformed input; this one is 60 lines and checked against blocks
//! zflist stored in a real 0-db (see the `peers` tests).

const DELTA: u32 = 0x9e37_79b9;

fn mix(sum: u32, y: u32, z: u32, p: usize, e: u32, key: &[u32; 4]) -> u32 {
    (((z >> 5) ^ (y << 2)).wrapping_add((y >> 3) ^ (z << 4)))
        ^ ((sum ^ y).wrapping_add(key[(p & 3) ^ e as usize] ^ z))
}

fn words(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(w)
        })
        .collect()
}

fn key_words(key: &[u8; 16]) -> [u32; 4] {
    let w = words(key);
    [w[0], w[1], w[2], w[3]]
}

fn rounds(n: usize) -> u32 {
    6 + 52 / n as u32
}

/// Encrypts `data`: not empty (xxtea-c refuses that, and snappy output never is) and at
/// most `u32::MAX` bytes (its length is part of the output).
pub(crate) fn encrypt(data: &[u8], key: &[u8; 16]) -> Vec<u8> {
    let key = key_words(key);
    let mut v = words(data);
    v.push(data.len() as u32);
    let n = v.len();
    let mut sum = 0u32;
    let mut z = v[n - 1];
    for _ in 0..rounds(n) {
        sum = sum.wrapping_add(DELTA);
        let e = (sum >> 2) & 3;
        for p in 0..n {
            let y = v[(p + 1) % n];
            v[p] = v[p].wrapping_add(mix(sum, y, z, p, e, &key));
            z = v[p];
        }
    }
    v.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Decrypts what [`encrypt`] made; `None` when `data` is not whole words of such output or
/// the length word it decrypts to does not fit.
pub(crate) fn decrypt(data: &[u8], key: &[u8; 16]) -> Option<Vec<u8>> {
    if data.len() % 4 != 0 || data.len() < 8 {
        return None;
    }
    let key = key_words(key);
    let mut v = words(data);
    let n = v.len();
    let mut sum = rounds(n).wrapping_mul(DELTA);
    let mut y = v[0];
    for _ in 0..rounds(n) {
        let e = (sum >> 2) & 3;
        for p in (1..n).rev() {
            let z = v[p - 1];
            v[p] = v[p].wrapping_sub(mix(sum, y, z, p, e, &key));
            y = v[p];
        }
        let z = v[n - 1];
        v[0] = v[0].wrapping_sub(mix(sum, y, z, 0, e, &key));
        y = v[0];
        sum = sum.wrapping_sub(DELTA);
    }
    let padded = (n - 1) * 4;
    let len = usize::try_from(v[n - 1]).ok()?;
    if len > padded || len + 3 < padded {
        return None;
    }
    let mut out: Vec<u8> = v[..n - 1].iter().flat_map(|w| w.to_le_bytes()).collect();
    out.truncate(len);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_padding() {
        let key = *b"0123456789abcdef";
        for len in 1..40 {
            let data: Vec<u8> = (0..len as u8).collect();
            let sealed = encrypt(&data, &key);
            assert_eq!(sealed.len(), 4 * (data.len().div_ceil(4) + 1));
            assert_eq!(decrypt(&sealed, &key).unwrap(), data);
        }
    }

    /// The example the xxtea libraries share (here as the Dart port's test gives it, in
    /// base64 `D4t0rVXU...`): a short key is zero-padded to 16 bytes, as xxtea-c does.
    #[test]
    fn matches_the_published_vector() {
        let mut key = [0u8; 16];
        key[..10].copy_from_slice(b"1234567890");
        let sealed = encrypt("Hello World! 你好，中国🇨🇳！".as_bytes(), &key);
        assert_eq!(
            hex::encode(sealed),
            "0f8b74ad55d40e5ddb9d6744461a8998521a9df9ffeb3031018f630fa9fd3123\
             103680fc4ce4b8ac71dc1ae1"
        );
    }

    #[test]
    fn refuses_what_it_did_not_make() {
        let key = [7u8; 16];
        assert!(decrypt(b"", &key).is_none());
        assert!(decrypt(b"1234", &key).is_none());
        assert!(decrypt(b"123456789", &key).is_none());
        let mut sealed = encrypt(b"some data", &key);
        sealed[0] ^= 1;
        let other = decrypt(&sealed, &[8u8; 16]);
        assert!(other.is_none_or(|d| d != b"some data"));
    }
}
