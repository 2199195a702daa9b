//! The wire of a flisthub hub, defined once: what its `/api/v1` routes take and answer.
//! The server (`hub`) answers with these types, and every client (the `flisthub` command,
//! `chunkstore`'s hub store, another hub following this one) reads them, so a change here
//! is a change of the API, checked against `openapi.json` by the hub's tests.
//!
//! This crate knows nothing of HTTP servers or of storage: serde types and, behind them,
//! the client.

#![forbid(unsafe_code)]

pub mod changes;
