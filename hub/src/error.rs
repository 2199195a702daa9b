//! The hub's one error type. Each variant says what kind of failure it is: [`Error::class`]
//! sorts them for answers (the HTTP layer turns a class into a status code, in
//! `http::response`), and [`Error::client_message`] decides what a client may read (jobs
//! record the same text).

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

    /// Some chunks (or blocks) an uploaded flist names are not in the store (400).
    #[error(
        "unauthorized upload, contents is not fully present on backend: {missing} of {checked} {what} are missing (first: {}); {}",
        first.join(", "),
        remedy(what)
    )]
    MissingChunks {
        /// `chunks` or `blocks`.
        what: &'static str,
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

    /// A 0-flist or fl file the hub holds cannot be read.
    #[error(transparent)]
    Legacy(#[from] legacy::Error),

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

impl From<hubconfig::Error> for Error {
    fn from(e: hubconfig::Error) -> Self {
        match e {
            hubconfig::Error::Config(message) => Error::Config(message),
            hubconfig::Error::Io { path, source } => Error::Io { path, source },
        }
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Internal(format!("a worker failed: {e}"))
    }
}

/// What kind of failure an error is, as a client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The request is wrong.
    BadRequest,
    NotFound,
    /// A link would replace a regular flist (0-hub's clients know it as 401).
    LinkConflict,
    Conflict,
    TooLarge,
    /// An identity's quota, or a full store.
    Quota,
    Timeout,
    TooManyRequests,
    /// Credentials missing or invalid; `malformed` for a header that is not one.
    Unauthenticated {
        malformed: bool,
    },
    Forbidden,
    Readonly,
    /// The hub cannot do it now (stopping, a store down): try again later.
    Unavailable,
    /// Something upstream (a registry) failed or answered wrong.
    BadGateway,
    /// The hub's own failure.
    Internal,
}

impl Error {
    /// The class of this error.
    pub fn class(&self) -> Class {
        match self {
            Error::BadRequest(_) | Error::MissingChunks { .. } => Class::BadRequest,
            Error::NotFound(_) => Class::NotFound,
            Error::LinkConflict(_) => Class::LinkConflict,
            Error::Conflict(_) | Error::Cancelled(_) => Class::Conflict,
            Error::TooLarge(_) => Class::TooLarge,
            Error::Quota(_) => Class::Quota,
            Error::Timeout(_) => Class::Timeout,
            Error::TooManyRequests { .. } => Class::TooManyRequests,
            Error::Unauthenticated { malformed, .. } => Class::Unauthenticated {
                malformed: *malformed,
            },
            Error::Forbidden(_) => Class::Forbidden,
            Error::Readonly => Class::Readonly,
            Error::Unavailable(_) => Class::Unavailable,
            Error::Shared(e) => e.class(),
            Error::Convert(e) => convert_class(e),
            Error::Store(e) => store_class(e),
            Error::Flist(_)
            | Error::Legacy(_)
            | Error::Database(_)
            | Error::Io { .. }
            | Error::Config(_)
            | Error::Internal(_) => Class::Internal,
        }
    }

    /// What a client may read of this error: the message of its own mistakes; a summary
    /// of the hub's failures, which are logged here in full (paths and internal addresses
    /// stay in the log).
    pub fn client_message(&self) -> String {
        match self {
            Error::Shared(e) => e.client_message(),
            Error::Store(e) | Error::Convert(converter::Error::Store(e)) => store_message(e),
            Error::Convert(converter::Error::Cancelled) => {
                "cancelled: the hub is stopping, or the upload was abandoned".into()
            }
            _ if self.class() == Class::Internal => {
                tracing::error!(error = %self, "request failed");
                "internal error; the hub's log has the details".into()
            }
            _ => self.to_string(),
        }
    }
}

fn convert_class(e: &converter::Error) -> Class {
    use converter::Error as C;
    match e {
        // A writer error about an entry is the archive's; one of the file is the hub's.
        C::Flist(flist::Error::Io { .. } | flist::Error::Sqlite(_)) => Class::Internal,
        C::Input(_) | C::Entry { .. } | C::Escape { .. } | C::BadLink { .. } | C::Flist(_) => {
            Class::BadRequest
        }
        C::HeaderRecordTooLarge { .. }
        | C::TooManyEntries { .. }
        | C::PathTooLong { .. }
        | C::ContentTooLarge { .. }
        | C::ExpansionTooLarge { .. } => Class::TooLarge,
        C::Store(e) => store_class(e),
        C::Cancelled => Class::Unavailable,
        C::Image { failure, .. } => image_class(*failure),
        // The hub converts into flists; it reads no legacy file through the converter.
        C::Io { .. }
        | C::Extract { .. }
        | C::Worker(_)
        | C::Legacy(_)
        | C::MissingBlock { .. }
        | C::BadBlock { .. } => Class::Internal,
    }
}

/// A registry's or daemon's refusal, as the caller of the hub sees it: a registry that
/// refuses credentials is not the hub refusing the caller's token, hence forbidden and not
/// unauthenticated; what the upstream fails at or sends wrong is a bad gateway.
fn image_class(failure: converter::ImageFailure) -> Class {
    use converter::ImageFailure as F;
    match failure {
        F::NotFound => Class::NotFound,
        F::Denied => Class::Forbidden,
        F::Reference | F::Platform => Class::BadRequest,
        F::Unreachable | F::Invalid => Class::BadGateway,
    }
}

fn store_class(e: &chunkstore::Error) -> Class {
    use chunkstore::{Error as E, Refusal};
    match e {
        E::Refused {
            kind: Refusal::Full,
            ..
        } => Class::Quota,
        E::Unavailable { .. } | E::Refused { .. } | E::Io { .. } | E::Protocol { .. } => {
            Class::Unavailable
        }
        _ => Class::Internal,
    }
}

fn store_message(e: &chunkstore::Error) -> String {
    tracing::error!(error = %e, "chunk store");
    metrics::counter!("flisthub_store_errors_total").increment(1);
    match store_class(e) {
        // A key names content, not a place: the client may know which one is lost.
        _ if matches!(e, chunkstore::Error::Missing { .. }) || e.is_corrupt_chunk() => {
            format!("the hub's chunk store is damaged: {e}")
        }
        Class::Quota => "the chunk store is full; nothing was published".into(),
        Class::Unavailable => {
            "the chunk store is unavailable; nothing was published, try again later".into()
        }
        _ => "internal error; the hub's log has the details".into(),
    }
}

/// What to do about an flist whose chunks (or blocks) the store lacks.
fn remedy(what: &str) -> &'static str {
    if what == "blocks" {
        "send the blocks to the hub's 0-db gateway first"
    } else {
        "publish with `flisthub push`, which sends the chunks the hub lacks and then the flist, or send them to POST /api/v1/chunks first"
    }
}
