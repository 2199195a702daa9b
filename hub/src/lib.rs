//! The flisthub service: a drop-in for 0-hub's HTTP API, with its namespace in SQLite,
//! flist files stored by content, JWT authentication, uploads converted while they stream
//! in, and jobs with live progress.
//!
//! Three floors, each using only the ones below it:
//! * `http`: routes that parse a request, call one service and render its answer; the one
//!   mapping of errors to status codes;
//! * the services [`Hub`] holds, each owning what it needs: the [`Catalogue`] (reads), the
//!   [`Publisher`] (every change of the namespace), the [`ChunkService`], [`Images`]
//!   (conversions), [`Jobs`], the [`Authenticator`], [`Tokens`] and [`Status`];
//! * the SQL and the files: `namespace` (with 0-hub's rules, changes as values and the
//!   change log), `tokens`, `blobs`, `db`.
//!
//! This file and `server.rs` are the composition root, the only places that know both the
//! HTTP layer and the services: [`router`] builds the whole HTTP interface on a [`Hub`],
//! [`serve`] runs it.

#![forbid(unsafe_code)]

mod accounts;
mod auth;
mod blobs;
mod catalogue;
mod check;
mod chunks;
mod db;
mod error;
mod facts;
mod formats;
mod gateway;
mod gc;
mod http;
/// Reading a request's cookies, as the API does.
pub use http::cookies;
mod hub;
mod images;
mod import;
mod inspect;
mod jobs;
mod limits;
mod merge;
mod names;
mod namespace;
mod publish;
mod pyjson;
mod quota;
mod renditions;
mod retention;
mod scrub;
mod server;
mod status;
mod tokens;
mod usage;

// The configuration is its own crate (`hubconfig`), so that its fuzz target builds without
// the server; the hub's modules name it `crate::config` as before.
use hubconfig as config;

use std::sync::Arc;

pub use accounts::{Account, Accounts, Session};
pub use auth::{Authenticator, Caller, Credentials};
pub use catalogue::{
    Backend, BrowseQuery, Browsed, Catalogue, ChunkLocation, Contents, Diff, DiffRow, Difference,
    InnerFile, Preview, RepositorySummary, RepositoryView, Summary, TreeEntry, Wanted,
    decode_bytes, decode_text, encode_bytes, encode_segment,
};
pub use chunks::ChunkService;
pub use config::{Config, DEFAULT_CONFIG, GatewayConfig, LogFormat};
/// Registry credentials for one conversion (never recorded, logged or shown).
pub use converter::Credentials as RegistryCredentials;
pub use error::{Class, Error, Result};
/// The nodes of flists, as the file browser and the diff show them.
pub use flist::{Node, NodeKind};
pub use formats::Format;
pub use gateway::Gateway;
pub use gc::{BackendReport, Collector, Counted as GcCounted, Report as GcReport, Tally};
pub use hub::{Hub, LocalHub, accounts, collect, importer, local_hub, retain, scrub, tokens};
pub use hubtokens::zero_hub_token;
pub use images::{ConvertRequest, Converted, Images};
pub use import::blocks_source as import_blocks_source;
pub use import::{
    ACTOR as IMPORT_ACTOR, BlockCounts, Counted, Importer, Progress as ImportProgress, Skipped,
    Summary as ImportSummary,
};
pub use inspect::Stats;
pub use jobs::{JobStatus, Jobs, State as JobState};
pub use names::{FlistName, Names, RepoName, TagName, TaglinkName};
pub use namespace::shown as shown_name;
pub use namespace::{
    Change, Hit, Info, Kind, Listed, Referrer, RepositoryFigures, Resolved, Share, Source, Target,
    Totals,
};
pub use publish::{ArchiveUpload, Published, Publisher};
pub use renditions::{Renditions, WindowSources};
pub use retention::{
    Policies as RetentionPolicies, Policy as RetentionPolicy, Report as RetentionReport,
    RepositoryReport as RetentionRepositoryReport, Retention,
};
pub use scrub::{
    FileReport as ScrubFileReport, KeyProblem as ScrubKeyProblem, Report as ScrubReport, Scrubber,
    Status as ScrubStatus,
};
pub use server::{serve, serve_with};
pub use status::{Component, ComponentState, Health, Status};
pub use tokens::{TokenRecord, Tokens};

/// The whole HTTP interface of `hub`: 0-hub's API, downloads, `/api/v1`, metrics.
pub fn router(hub: Arc<Hub>) -> axum::Router {
    http::router(hub, None)
}

/// [`router`] with the web pages beside the API: `pages` answers every request the API
/// has no route for, and `/<repo>/<file>` names that are not downloads (the web's
/// `<name>.flist.md` preview, its assets). The API keeps its JSON.
pub fn router_with_pages(hub: Arc<Hub>, pages: axum::Router) -> axum::Router {
    http::router(hub, Some(pages))
}
