/// Everything that can go wrong reading, writing or decoding a legacy flist or block.
///
/// Every variant but [`Error::Io`] and [`Error::Sqlite`] describes the input (a hostile or
/// broken file, a block that does not decode, a tree a format cannot hold), and its message
/// names no local path, so it may be shown to whoever sent the input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),

    /// The gzip or tar container of a 0-flist is broken or holds what a 0-flist never does.
    #[error("invalid 0-flist archive: {0}")]
    Archive(String),

    /// A 0-flist archive without `flistdb.sqlite3`.
    #[error("invalid 0-flist archive: no flistdb.sqlite3 member")]
    MissingDatabase,

    /// Something larger than the reader's limit (checked before it is read).
    #[error("{what} exceeds the limit of {limit} bytes")]
    TooLarge { what: &'static str, limit: u64 },

    /// The SQLite file is not one of the format's (not SQLite, truncated, or a schema with
    /// anything but the format's tables and indexes).
    #[error("not a valid {format} database: {reason}")]
    Database {
        format: &'static str,
        reason: String,
    },

    /// The file's content breaks the format's rules (keys, names, links between rows,
    /// block lists, Cap'n Proto objects).
    #[error("corrupt {format}: {reason}")]
    Corrupt {
        format: &'static str,
        reason: String,
    },

    /// An fl route that points at a local path (`dir://`): nothing another machine can read.
    #[error("route {url:?} is a local path, not a store another machine can reach")]
    LocalRoute { url: String },

    /// An fl route that is not a store URL rfs knows.
    #[error("route {url:?}: {reason}")]
    Route { url: String, reason: String },

    /// A block that does not decode with its key (wrong key, corrupt or foreign data).
    #[error("invalid block: {0}")]
    Block(&'static str),

    /// Reading the native flist a tree is built from.
    #[error(transparent)]
    Native(#[from] flist::Error),

    /// A tree the caller built that breaks the model's rules, or that a format cannot hold.
    #[error("{path:?}: {reason}")]
    Tree { path: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> Error {
        move |source| Error::Io { context, source }
    }

    pub(crate) fn tree(path: &[u8], reason: impl Into<String>) -> Error {
        Error::Tree {
            path: String::from_utf8_lossy(path).into_owned(),
            reason: reason.into(),
        }
    }

    /// Maps an error of [`flist::untrusted::open`] for a file of `format`.
    pub(crate) fn opening(format: &'static str) -> impl FnOnce(flist::Error) -> Error {
        move |e| match e {
            flist::Error::Io { source, .. } => Error::Io {
                context: "opening the database",
                source,
            },
            flist::Error::Sqlite(e) => Error::Sqlite(e),
            flist::Error::NotAnFlist { reason, .. }
            | flist::Error::UnexpectedSchema { reason, .. } => Error::Database { format, reason },
            flist::Error::Truncated {
                expected, actual, ..
            } => Error::Database {
                format,
                reason: format!("truncated: {actual} bytes of {expected}"),
            },
            other => Error::Database {
                format,
                reason: other.to_string(),
            },
        }
    }
}

impl From<capnp::Error> for Error {
    fn from(e: capnp::Error) -> Self {
        Error::Corrupt {
            format: "0-flist",
            reason: format!("Cap'n Proto object: {e}"),
        }
    }
}
