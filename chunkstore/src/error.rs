use crate::blocks::{BlockId, MAX_BLOCK_SIZE};
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

    /// A block over [`MAX_BLOCK_SIZE`]: given to be stored, or found in a store (which
    /// then holds something no block codec wrote).
    #[error("{location}: block {id} is larger than {MAX_BLOCK_SIZE} bytes")]
    BlockTooLarge { location: String, id: BlockId },

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

    /// A store that exists but cannot be used as asked (wrong layout, bad configuration).
    #[error("{location}: {reason}")]
    Store { location: String, reason: String },

    /// The store cannot list or delete keys (a 0-db namespace in sequential mode, a hub
    /// reached over HTTP): garbage collection cannot run on it.
    #[error("{location}: cannot delete: {reason}")]
    CannotDelete { location: String, reason: String },

    /// The backend cannot be reached, or did not answer in time. Worth retrying later; the
    /// hub answers 503.
    #[error("{location}: unavailable: {reason}")]
    Unavailable { location: String, reason: String },

    /// The backend answered, and refused the request.
    #[error("{location}: {kind}: {message}")]
    Refused {
        location: String,
        kind: Refusal,
        message: String,
    },

    /// The backend answered something the protocol does not allow there.
    #[error("{location}: unexpected reply: {message}")]
    Protocol { location: String, message: String },

    /// A chunk a file needs is not in the store.
    #[error("missing chunk {key}")]
    Missing { key: ChunkKey },

    /// The chunk decodes to its key's content, but not to the length the file records for
    /// it (the flist describing the file is wrong).
    #[error("chunk {key} holds {length} bytes, the flist says {expected}")]
    WrongLength {
        key: ChunkKey,
        length: usize,
        expected: u32,
    },
}

/// Why a backend refused a request, from its error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The namespace or server takes no writes (0-db read-only or worm namespace, a Redis
    /// replica).
    ReadOnly,
    /// No room: 0-db's namespace size limit, Redis's `maxmemory`.
    Full,
    /// Temporarily locked or frozen by an operator (0-db).
    Locked,
    /// The credentials do not allow it.
    PermissionDenied,
    /// Anything else.
    Other,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::ReadOnly => "read-only",
            Refusal::Full => "no space left",
            Refusal::Locked => "locked",
            Refusal::PermissionDenied => "permission denied",
            Refusal::Other => "refused",
        })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the error says the backend could not be reached (rather than that it refused
    /// or that the data is bad), so that a replica may be tried instead.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    /// Whether the error says a chunk's stored bytes are not its key's content (damaged,
    /// not a chunk, or another chunk's), as opposed to missing or unreachable.
    pub fn is_corrupt_chunk(&self) -> bool {
        matches!(
            self,
            Error::Truncated { .. }
                | Error::BadMagic { .. }
                | Error::UnsupportedVersion { .. }
                | Error::UnknownCodec { .. }
                | Error::Corrupt { .. }
                | Error::KeyMismatch { .. }
                | Error::WrongLength { .. }
        )
    }

    pub(crate) fn io(location: impl std::fmt::Display, source: std::io::Error) -> Self {
        Error::Io {
            location: location.to_string(),
            source,
        }
    }
}
