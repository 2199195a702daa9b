//! The hub itself: everything a request may need, opened once at start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chunkstore::{ChunkStore, StoreUrl};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authenticator;
use crate::blobs::Blobs;
use crate::config::Config;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::inspect::ContentsCache;
use crate::jobs::Jobs;
use crate::limits::Limits;
use crate::names::Names;
use crate::namespace::{Namespace, Resolved};
use crate::tokens::{self, Tokens};

/// 0-hub's `backend` metadata: where a node reads the chunks, as host, port, namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Backend {
    pub host: String,
    pub port: u16,
    pub namespace: String,
}

pub struct Hub {
    pub config: Config,
    pub names: Names,
    pub db: Db,
    pub namespace: Namespace,
    pub auth: Authenticator,
    pub jobs: Jobs,
    pub limits: Arc<Limits>,
    pub store: Arc<dyn ChunkStore>,
    /// Recorded in the flists the hub builds.
    pub routes: Vec<String>,
    /// The first route as 0-hub's `backend`, when it is a 0-db.
    pub backend: Option<Backend>,
    pub public_url: String,
    pub contents: ContentsCache,
    /// Image conversions in flight, by what they convert.
    pub conversions: crate::images::Conversions,
    /// Cancelled when the hub stops: background jobs give up.
    pub shutdown: CancellationToken,
    /// Background jobs, awaited at shutdown.
    pub tasks: TaskTracker,
    /// Held while the hub runs: see [`lock_data_dir`].
    _lock: std::fs::File,
}

impl Hub {
    /// Opens the database, the flist files, the store and the keys; cleans what an earlier
    /// run left half-done.
    pub async fn open(config: Config) -> Result<Hub> {
        let data_dir = config.data_dir()?;
        std::fs::create_dir_all(&data_dir).map_err(|e| Error::io(data_dir.display(), e))?;
        let lock = lock_data_dir(&data_dir)?;
        let db = open_db(&data_dir)?;
        let blobs = Arc::new(Blobs::open(data_dir.join("flists"), data_dir.join("tmp"))?);
        let namespace = Namespace::new(db.clone(), blobs);
        let removed = namespace.sweep_unused_files().await?;
        if removed > 0 {
            tracing::info!(
                removed,
                "removed flist files no entry names (left by an interrupted run)"
            );
        }
        let jobs = Jobs::new(db.clone());
        let interrupted = jobs.fail_interrupted().await?;
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "jobs interrupted by the last stop are marked failed"
            );
        }
        let names = names(&config);
        let secret = tokens::load_or_create_secret(&secret_path(&config, &data_dir))?;
        let auth = Authenticator::new(
            &config.auth,
            config.server.authentication,
            &secret,
            db.clone(),
            names,
        )?;
        let store = match &config.store {
            Some(store) => store.open().await?,
            None => {
                chunkstore::open(&format!("dir://{}", data_dir.join("store").display())).await?
            }
        };
        // Where nodes read the chunks of the flists published here: as configured; else the
        // store's own routes; else (a `dir` store, which no other machine can read) the
        // hub's chunk API.
        let routes = if !config.publish.routes.is_empty() {
            config.publish.routes.clone()
        } else if !store.routes().is_empty() {
            store.routes()
        } else {
            vec![format!("{}/api/v1/chunks", config.public_url())]
        };
        let backend = routes
            .first()
            .and_then(|route| match chunkstore::parse_route(route) {
                Ok(StoreUrl::Zdb(zdb)) => Some(Backend {
                    host: zdb.host,
                    port: zdb.port,
                    namespace: zdb.namespace,
                }),
                _ => None,
            });
        Ok(Hub {
            limits: Arc::new(Limits::new(&config.limits, &config.chunks, &config.images)),
            conversions: crate::images::Conversions::default(),
            public_url: config.public_url(),
            names,
            db,
            namespace,
            auth,
            jobs,
            store,
            routes,
            backend,
            contents: ContentsCache::default(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            config,
            _lock: lock,
        })
    }

    /// Whether repository `name` is marked official.
    pub fn official(&self, name: &str) -> bool {
        if !self.config.server.authentication {
            return name == crate::auth::ADMINISTRATOR;
        }
        self.config
            .server
            .official_repositories
            .iter()
            .any(|r| r == name)
    }

    /// The flist `name` of `repository` resolves to, both as a client wrote them (`.flist`
    /// is appended to the name if missing). Errors are 0-hub's: `user not found`, `source
    /// not found`.
    pub async fn resolve(&self, repository: &str, name: &str) -> Result<Resolved> {
        let repository = self.names.repository(repository)?;
        let name = self.names.flist(name)?;
        self.namespace.resolve(&repository, &name).await
    }

    /// The public URL of a download.
    pub fn url_of(&self, repository: &str, name: &str) -> String {
        format!(
            "{}/{}/{}",
            self.public_url,
            encode_segment(repository),
            encode_segment(name)
        )
    }
}

/// The token commands' view of a hub's data directory: its database and signing secret.
pub fn tokens(config: &Config) -> Result<Tokens> {
    let data_dir = config.data_dir()?;
    std::fs::create_dir_all(&data_dir).map_err(|e| Error::io(data_dir.display(), e))?;
    let db = open_db(&data_dir)?;
    let secret = tokens::load_or_create_secret(&secret_path(config, &data_dir))?;
    Ok(Tokens::new(
        db,
        &secret,
        names(config),
        config.auth.max_token_ttl,
    ))
}

/// One hub per data directory: a second one would clear the first one's staging files and
/// sweep flist files it is about to name. (`flisthub token` works beside a running hub:
/// it only touches the database, which has its own locking.)
fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File> {
    use rustix::fs::{FlockOperation, flock};
    let path = data_dir.join("serve.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(path.display(), e))?;
    flock(&file, FlockOperation::NonBlockingLockExclusive).map_err(|_| {
        Error::Config(format!(
            "{}: another flisthub serve uses this data directory",
            data_dir.display()
        ))
    })?;
    Ok(file)
}

fn open_db(data_dir: &Path) -> Result<Db> {
    Db::open(&data_dir.join("hub.sqlite3"))
}

fn secret_path(config: &Config, data_dir: &Path) -> PathBuf {
    config
        .auth
        .secret_file
        .clone()
        .unwrap_or_else(|| data_dir.join("token-secret"))
}

fn names(config: &Config) -> Names {
    Names {
        max_len: config.limits.name_length,
    }
}

/// Percent-encodes a path segment (names may hold spaces, `#`, `?`, `%`, unicode).
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:@!$()*+,;=".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
