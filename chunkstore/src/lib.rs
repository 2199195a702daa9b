//! Content-addressed chunk storage for flisthub.
//!
//! * [`ChunkKey`]: BLAKE3-256 of a chunk's plaintext, its address everywhere.
//! * [`Codec`]: turns a plaintext [`Chunk`] into the stored form (a small versioned header,
//!   then a zstd frame or the raw bytes when zstd does not help) and back, verifying on every
//!   decode that the content hashes to its key. The stored form is specified in
//!   `CHUNK-FORMAT.md` next to this crate.
//! * [`Chunker`]: content-defined chunking (FastCDC) of a byte stream with a bounded buffer.
//! * [`ChunkStore`]: the batch-first async interface every backend implements, and
//!   [`open`] to get one from a URL. The embedded backend is [`DirStore`] (`dir:///path`);
//!   [`HubStore`] reaches the chunks of a flisthub hub over its HTTP chunk API, whose
//!   framing is in [`frames`].
//! * [`resp`]: the requests of the 0-db protocol as a server reads them (the hub's 0-db
//!   gateway), kept here beside the 0-db client so that it can be fuzzed without the hub.
//!
//! Each network backend is a cargo feature (`zdb`, `redis`, `hub`, and `tls` for
//! `rediss://` and `https://`), so that a reader of local stores links neither Redis nor
//! TLS; a URL of a backend left out is refused as such.
//! * [`ChunkReader`]: file content back out of a store, fetched in batches, verified
//!   against keys and lengths, read ahead, optionally cached.

#![forbid(unsafe_code)]

mod blocks;
mod chunker;
mod codec;
mod config;
mod dir;
mod dir_forget;
mod error;
pub mod frames;
#[cfg(feature = "hub")]
mod hub_api;
mod key;
#[cfg(any(feature = "zdb", feature = "redis"))]
mod layout;
mod listing;
#[cfg(any(feature = "zdb", feature = "redis"))]
mod net;
mod reader;
#[cfg(feature = "redis")]
mod redis;
pub mod resp;
mod router;
mod store;
mod url;
#[cfg(feature = "zdb")]
mod zdb;

pub use blocks::{BlockId, MAX_BLOCK_SIZE};
pub use chunker::{Chunker, ChunkerParams};
pub use codec::{Chunk, Codec, DEFAULT_LEVEL, EncodedChunk, HEADER_LEN, MAX_CHUNK_SIZE};
pub use config::{StoreConfig, open_routes};
pub use dir::{DirOptions, DirStore};
pub use error::{Error, Refusal, Result};
#[cfg(feature = "hub")]
pub use hub_api::{HubOptions, HubStore, http_client};
pub use key::ChunkKey;
pub use listing::{Cursor, Listed, MAX_PAGE, Page, Reclaim};
#[cfg(any(feature = "zdb", feature = "redis"))]
pub use net::NetOptions;
pub use reader::{ChunkReader, ChunkSpan, DEFAULT_READ_AHEAD, Scratch, verify_stored};
#[cfg(feature = "redis")]
pub use redis::{ClusterStore, RedisOptions, RedisStore, Server, TlsOptions};
pub use router::Router;
pub use store::{BackendStats, BlockCheck, ChunkStore, Fault, Health, RepairReport};
pub use url::{StoreUrl, open, parse_route, parse_size};
#[cfg(feature = "zdb")]
pub use zdb::{ZdbOptions, ZdbStore};

/// Name of the key hash, as recorded in flist metadata.
pub const HASH_NAME: &str = "blake3-256";
/// Name of the stored chunk encoding, as recorded in flist metadata.
pub const CODEC_NAME: &str = "flisthub-chunk-v1/zstd";
