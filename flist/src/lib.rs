//! The flisthub flist format.
//!
//! An flist is one SQLite file describing a whole filesystem tree: every directory, regular
//! file, symlink, hardlink, device node, FIFO and socket with its mode, owner, mtime and
//! extended attributes, and for each regular file the ordered list of content chunks
//! (BLAKE3 key, offset, length) that live in a chunk store. The on-disk layout is specified
//! in `FORMAT.md` next to this crate; this crate is its reference implementation.
//!
//! * [`FlistWriter`] builds a file from entries given in any order (as a tar stream delivers
//!   them), with memory bounded by SQLite's cache, and writes a canonical, byte-reproducible
//!   file atomically on [`FlistWriter::finish`].
//! * [`Flist`] opens a file, checks that it is one (and which version), and answers lookups,
//!   directory listings, walks, chunk lists, metadata and totals from indexes.
//! * [`merge`] layers several flists with 0-hub's "first one wins" rule.
//! * [`untrusted::open`] opens any SQLite file that comes from outside (flists here, the
//!   legacy formats in the `legacy` crate) with SQLite's hardening on and its schema checked
//!   against the exact list its format defines, before any query.
//!
//! The crate is synchronous and knows nothing of networks or stores: a chunk key is just the
//! 32 bytes of a BLAKE3-256 digest here.

#![forbid(unsafe_code)]

mod chunks;
mod error;
mod merge;
mod metadata;
mod node;
mod path;
mod reader;
mod schema;
pub mod untrusted;
mod writer;

pub use chunks::ChunkScan;
pub use error::{Error, Result};
pub use merge::merge;
pub use metadata::{ChunkerInfo, Metadata, Source};
pub use node::{ChunkRef, Entry, Kind, Node, NodeKind, Timestamp, Totals, Xattr};
pub use path::{MAX_NAME_LEN, MAX_PATH_LEN, validate_path};
pub use reader::{Flist, Walk};
pub use schema::{APPLICATION_ID, FORMAT_VERSION};
pub use writer::{FlistWriter, InodeId};
