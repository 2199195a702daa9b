use std::fmt;
use std::str::FromStr;

/// The address of a chunk: BLAKE3-256 of its plaintext.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkKey([u8; 32]);

impl ChunkKey {
    /// The key of `data`.
    pub fn of(data: &[u8]) -> ChunkKey {
        ChunkKey(*blake3::hash(data).as_bytes())
    }

    pub const fn from_bytes(bytes: [u8; 32]) -> ChunkKey {
        ChunkKey(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl From<[u8; 32]> for ChunkKey {
    fn from(bytes: [u8; 32]) -> Self {
        ChunkKey(bytes)
    }
}

impl fmt::Display for ChunkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ChunkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkKey({})", self.to_hex())
    }
}

/// Parses 64 hex digits.
impl FromStr for ChunkKey {
    type Err = hex::FromHexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes)?;
        Ok(ChunkKey(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_blake3_and_round_trips_through_hex() {
        let key = ChunkKey::of(b"abc");
        assert_eq!(
            key.to_string(),
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
        assert_eq!(key.to_string().parse::<ChunkKey>().unwrap(), key);
        assert!("xyz".parse::<ChunkKey>().is_err());
    }
}
