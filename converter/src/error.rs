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

    /// Extraction finished but some entries could not be recreated (files whose content
    /// could not be written completely were removed): how many, and the first few.
    #[error("{total} problem(s) while extracting{}", list_problems(.listed, *.total))]
    Extract { total: usize, listed: Vec<String> },

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

/// The problems listed, one per line, and how many more there were.
fn list_problems(listed: &[String], total: usize) -> String {
    let mut text = String::from(" (files not written completely were removed):");
    for problem in listed {
        text.push_str("\n  ");
        text.push_str(problem);
    }
    if total > listed.len() {
        text.push_str(&format!("\n  ... and {} more", total - listed.len()));
    }
    text
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
