//! The flisthub service: a drop-in for 0-hub's HTTP API (reference
//! `shared/spec/0-hub-reference.md`), with its namespace in SQLite, flist files stored by
//! content, JWT authentication, uploads converted while they stream in, and jobs with live
//! progress.
//!
//! Layers, each using only the ones below it:
//! * `http`: routes that speak HTTP, and the one mapping of errors to answers;
//! * `publish`, `chunks`, `auth`, `jobs`, `inspect`: the rules of uploads, the chunk API,
//!   tokens, jobs and reads;
//! * `namespace`, `tokens`, `blobs`, `db`: the SQL and the files.
//!
//! The binary uses [`serve`], [`Config`] and [`tokens`].

mod auth;
mod blobs;
mod chunks;
mod config;
mod db;
mod error;
mod http;
mod hub;
mod images;
mod inspect;
mod jobs;
mod limits;
mod names;
mod namespace;
mod publish;
mod server;
mod tokens;

pub use auth::zero_hub_token;
pub use config::{Config, DEFAULT_CONFIG, LogFormat};
pub use error::{Error, Result};
pub use hub::tokens;
pub use server::serve;
pub use tokens::{TokenRecord, Tokens};
