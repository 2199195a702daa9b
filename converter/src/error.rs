/// Everything that can go wrong turning inputs into flists and flists back into trees.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Flist(#[from] flist::Error),

    #[error(transparent)]
    Store(#[from] chunkstore::Error),

    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// The input as a whole is unusable: not an archive, truncated, an unsupported format.
    #[error("{0}")]
    Input(String),

    /// One entry of the input is refused (a hostile path, an impossible link, ...).
    #[error("entry {path:?}: {reason}")]
    Entry { path: String, reason: String },

    /// The input exceeds a configured limit.
    #[error("limit exceeded: {0}")]
    Limit(String),

    /// Extraction finished but some entries could not be recreated.
    #[error("{} problem(s) while extracting; the first: {}", .0.len(), .0.first().map(String::as_str).unwrap_or(""))]
    Extract(Vec<String>),

    #[error("a worker thread failed: {0}")]
    Worker(String),

    #[error("cancelled")]
    Cancelled,

    /// A container image could not be had (see [`crate::ImageFailure`]).
    #[error("{message}")]
    Image {
        failure: crate::ImageFailure,
        message: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }

    pub(crate) fn image(failure: crate::ImageFailure, message: impl Into<String>) -> Error {
        Error::Image {
            failure,
            message: message.into(),
        }
    }

    pub(crate) fn entry(path: &[u8], reason: impl Into<String>) -> Error {
        Error::Entry {
            path: String::from_utf8_lossy(path).into_owned(),
            reason: reason.into(),
        }
    }
}
