use std::path::PathBuf;

/// Everything that can go wrong reading or writing an flist.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file is not an flist at all (empty, not SQLite, or another application's database).
    #[error("{path}: not an flist: {reason}")]
    NotAnFlist { path: PathBuf, reason: String },

    /// The file starts like an flist but is shorter than its header says.
    #[error("{path}: truncated flist: {actual} bytes of {expected}")]
    Truncated {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },

    /// Written by a newer flisthub: refusing to guess at its meaning.
    #[error("{path}: flist format version {found} is newer than this build supports ({supported})")]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// An SQLite file from outside whose schema is not exactly its format's (an extra table,
    /// index, view or trigger, a generated column, other columns): refused before any query.
    #[error("{path}: unexpected SQLite schema: {reason}")]
    UnexpectedSchema { path: PathBuf, reason: String },

    /// The file is an flist whose content breaks the format's rules.
    #[error("corrupt flist: {0}")]
    Corrupt(String),

    /// A path given to the writer or reader that the format cannot hold.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },

    /// An entry that would make the tree inconsistent (for example a file below a symlink).
    #[error("{path:?}: {reason}")]
    Conflict { path: String, reason: String },

    #[error("no such entry: {0:?}")]
    NotFound(String),

    #[error("metadata {key:?}: {reason}")]
    Metadata { key: String, reason: String },

    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Lossy display of a raw path for error messages.
pub(crate) fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}
