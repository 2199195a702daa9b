use crate::key::ChunkKey;

/// Everything that can go wrong encoding, decoding, chunking or storing chunks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The stored bytes end before the header or the payload says they should.
    #[error("chunk {key}: truncated: {detail}")]
    Truncated { key: ChunkKey, detail: String },

    #[error("chunk {key}: not a flisthub chunk (bad magic)")]
    BadMagic { key: ChunkKey },

    #[error("chunk {key}: stored with chunk format version {version}, this build reads version 1")]
    UnsupportedVersion { key: ChunkKey, version: u8 },

    #[error("chunk {key}: unknown codec {codec}")]
    UnknownCodec { key: ChunkKey, codec: u8 },

    /// The stored bytes are damaged (the payload does not decode, or not to the declared size).
    #[error("chunk {key}: corrupt: {detail}")]
    Corrupt { key: ChunkKey, detail: String },

    /// The bytes decode, but to content that is not the one the key names.
    #[error("chunk {key}: content does not match its key (it hashes to {actual})")]
    KeyMismatch { key: ChunkKey, actual: ChunkKey },

    #[error("chunk of {size} bytes exceeds the maximum chunk size of {max} bytes")]
    TooLarge { size: usize, max: usize },

    #[error("invalid chunker parameters: {0}")]
    InvalidChunker(String),

    #[error("invalid store URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error("{location}: {source}")]
    Io {
        location: String,
        #[source]
        source: std::io::Error,
    },

    /// A store that exists but cannot be used as asked (wrong layout, read-only, ...).
    #[error("{location}: {reason}")]
    Store { location: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(location: impl std::fmt::Display, source: std::io::Error) -> Self {
        Error::Io {
            location: location.to_string(),
            source,
        }
    }
}
