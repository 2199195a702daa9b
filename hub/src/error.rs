//! The hub's one error type. Each variant says what kind of failure it is; the HTTP layer
//! (`http::response`) turns kinds into status codes and decides what a client may read.

/// Everything the hub can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or names something invalid (400).
    #[error("{0}")]
    BadRequest(String),

    /// The thing asked for does not exist (404). The message is 0-hub's where it had one
    /// (`user not found`, `source not found`, ...).
    #[error("{0}")]
    NotFound(String),

    /// A link would replace a regular flist: 0-hub answers these with 401, and clients
    /// know it.
    #[error("{0}")]
    LinkConflict(String),

    /// The change would overwrite something the caller did not ask to replace (409).
    #[error("{0}")]
    Conflict(String),

    /// Credentials missing or not valid (401), or malformed (400 for a malformed header,
    /// as 0-hub).
    #[error("{message}")]
    Unauthenticated { message: String, malformed: bool },

    /// Valid credentials that do not allow this (403).
    #[error("{0}")]
    Forbidden(String),

    /// The hub runs read-only (0-hub's 400 `readonly mode`).
    #[error("readonly mode")]
    Readonly,

    /// A size or count limit (413).
    #[error("{0}")]
    TooLarge(String),

    /// The client stopped sending in the middle of a request (408).
    #[error("{0}")]
    Timeout(String),

    /// An identity's storage quota would be passed (507).
    #[error("{0}")]
    Quota(String),

    /// A rate or concurrency limit (429); retry after the given seconds.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },

    /// Some chunks an uploaded flist names are not in the store (400).
    #[error(
        "unauthorized upload, contents is not fully present on backend: {missing} of {checked} chunks are missing (first: {})",
        first.join(", ")
    )]
    MissingChunks {
        missing: u64,
        checked: u64,
        first: Vec<String>,
    },

    /// Converting the input failed: a bad archive, a limit, a store problem.
    #[error(transparent)]
    Convert(#[from] converter::Error),

    #[error(transparent)]
    Store(#[from] chunkstore::Error),

    /// An flist the hub holds or was given cannot be read.
    #[error(transparent)]
    Flist(#[from] flist::Error),

    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),

    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("configuration: {0}")]
    Config(String),

    /// A job its owner cancelled (409).
    #[error("{0}")]
    Cancelled(String),

    /// The hub is shutting down or a worker went away.
    #[error("{0}")]
    Unavailable(String),

    #[error("internal error: {0}")]
    Internal(String),

    /// One failure that several requests share (an image conversion two jobs waited for).
    #[error(transparent)]
    Shared(std::sync::Arc<Error>),
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
        Error::Unauthenticated {
            message: message.into(),
            malformed: false,
        }
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Internal(format!("a worker failed: {e}"))
    }
}
