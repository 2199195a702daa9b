//! The one error type of tokens.

/// Why a token is refused, or a verifier cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `Authorization` header is not `bearer <token>` (0-hub answered 400).
    #[error("{0}")]
    Malformed(String),

    /// The token is not valid: not a token, a bad signature, expired, an unknown issuer
    /// (401).
    #[error("{0}")]
    Unauthenticated(String),

    /// A JWT names an issuer this hub does not know (401). The name is the token's, so
    /// the hub quotes it before it reaches a client.
    #[error("invalid token: unknown issuer {0:?}")]
    UnknownIssuer(String),

    /// A JWT is signed with another algorithm than its issuer's (401).
    #[error("invalid token: signed with {used}, but {issuer:?} signs with {expected}")]
    WrongAlgorithm {
        issuer: String,
        used: String,
        expected: String,
    },

    /// A valid token asked to act as an identity it does not hold (403).
    #[error("active-user {wanted:?} is not an identity of this token (it may act as {held:?})")]
    NotAnIdentity { wanted: String, held: Vec<String> },

    /// The `[auth]` configuration cannot give a verifier (a key that is not one).
    #[error("configuration: {0}")]
    Config(String),

    /// A key file the configuration names cannot be read.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// A token could not be signed.
    #[error("signing a token: {0}")]
    Signing(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }

    pub(crate) fn unauthenticated(message: impl Into<String>) -> Error {
        Error::Unauthenticated(message.into())
    }
}
