//! The hub: its services, opened once at start from the configuration, and what they
//! share. The HTTP layer (and the web pages) reach the hub only through these services.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chunkstore::{ChunkStore, StoreUrl};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accounts::Accounts;
use crate::auth::{Authenticator, Caller};
use crate::blobs::Blobs;
use crate::catalogue::{Backend, Catalogue, ChunkLocation};
use crate::chunks::ChunkService;
use crate::config::Config;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::facts::Facts;
use crate::gc::{Collector, Fence, Tracked};
use crate::images::Images;
use crate::import::Importer;
use crate::jobs::Jobs;
use crate::limits::Limits;
use crate::names::Names;
use crate::namespace::Namespace;
use crate::publish::{Published, Publisher};
use crate::quota::Quotas;
use crate::renditions::Renditions;
use crate::retention::Retention;
use crate::scrub::Scrubber;
use crate::status::Status;
use crate::tokens::{self, Tokens};
use crate::usage::Usage;

/// What background work shares: a signal that the hub is stopping, the tracker of tasks
/// that shutdown waits for, and the garbage collector's fence.
#[derive(Clone)]
pub struct Lifecycle {
    /// Cancelled when the hub stops: background jobs give up.
    pub shutdown: CancellationToken,
    /// Background jobs, awaited at shutdown.
    pub tasks: TaskTracker,
    /// What operations in progress and publishes hold against the collector (`gc`).
    pub fence: Arc<Fence>,
}

pub struct Hub {
    config: Config,
    names: Names,
    catalogue: Catalogue,
    publisher: Arc<Publisher>,
    chunks: Arc<ChunkService>,
    renditions: Arc<Renditions>,
    images: Arc<Images>,
    jobs: Jobs,
    auth: Arc<Authenticator>,
    tokens: Tokens,
    accounts: Accounts,
    limits: Arc<Limits>,
    status: Status,
    collector: Arc<Collector>,
    retention: Arc<Retention>,
    scrubber: Arc<Scrubber>,
    usage: Arc<Usage>,
    lifecycle: Lifecycle,
    /// Held while the hub runs: see [`lock_file`].
    _lock: std::fs::File,
}

impl Hub {
    /// Opens the database, the flist files, the store and the keys; cleans what an earlier
    /// run left half-done.
    pub async fn open(config: Config) -> Result<Hub> {
        let data_dir = config.data_dir()?;
        std::fs::create_dir_all(&data_dir).map_err(|e| Error::io(data_dir.display(), e))?;
        let lock = lock_file(&data_dir, SERVE_LOCK, "another flisthub serve uses")?;
        let db = open_db(&data_dir)?;
        let blobs = Arc::new(Blobs::open(data_dir.join("flists"), data_dir.join("tmp"))?);
        let namespace = Arc::new(Namespace::new(db.clone(), Arc::clone(&blobs)));
        let removed = namespace.sweep_unused_files().await?;
        if removed > 0 {
            tracing::info!(
                removed,
                "removed flist files no entry names (left by an interrupted run)"
            );
        }
        for twin in namespace.fill_missing_folds().await? {
            tracing::warn!(
                repository = %twin,
                "this repository differs from an older one only by case or Unicode form (allowed when it was made, refused now)"
            );
        }
        let limits_config = config.limits.clone();
        let filled = namespace
            .fill_missing_facts(move |path, format| Facts::read(path, format, &limits_config))
            .await?;
        if filled > 0 {
            tracing::info!(
                filled,
                "recorded the facts of flists published by an older version"
            );
        }
        let shared = namespace
            .fill_missing_shares(crate::renditions::distinct_contents)
            .await?;
        if shared > 0 {
            tracing::info!(
                shared,
                "recorded the contents of flists published by an older version"
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
        let auth = Arc::new(Authenticator::new(
            &config.auth,
            config.server.authentication,
            &secret,
            db.clone(),
            names,
        )?);
        let tokens = Tokens::new(db.clone(), &secret, names, config.auth.max_token_ttl);
        let accounts = Accounts::new(db.clone(), names);
        auth.set_local_administrators(accounts.administrators()?);
        let raw_store = open_store(&config, &data_dir).await?;
        let fence = Fence::new(db.clone());
        let tracked = Arc::new(Tracked::new(Arc::clone(&raw_store), Arc::clone(&fence)));
        let store: Arc<dyn ChunkStore> = Arc::clone(&tracked) as Arc<dyn ChunkStore>;
        let quotas = Arc::new(Quotas::new(db.clone(), config.chunks.clone()));
        let scrubber = Arc::new(Scrubber::new(
            db.clone(),
            Arc::clone(&blobs),
            Arc::clone(&raw_store),
            config.limits.clone(),
            config.scrub.clone(),
        ));
        let collector = Arc::new(Collector::new(
            db.clone(),
            Arc::clone(&blobs),
            raw_store,
            Arc::clone(&fence),
            config.limits.clone(),
            config.gc.clone(),
            data_dir.clone(),
        ));
        let retention = Arc::new(Retention::new(
            db.clone(),
            Arc::clone(&namespace),
            config.retention.clone(),
            config.server.readonly,
        ));
        let location = chunk_location(&config, store.as_ref());
        let limits = Arc::new(Limits::new(&config.limits, &config.chunks, &config.images));
        let lifecycle = Lifecycle {
            shutdown: CancellationToken::default(),
            tasks: TaskTracker::default(),
            fence,
        };
        let renditions = Arc::new(Renditions::new(
            db.clone(),
            Arc::clone(&namespace),
            blobs,
            Arc::clone(&store),
            &config.gateway,
            lifecycle.clone(),
        ));
        let publisher = Arc::new(Publisher::new(
            names,
            Arc::clone(&namespace),
            Arc::clone(&renditions),
            (tracked, Arc::clone(&quotas)),
            location.clone(),
            config.limits.clone(),
            jobs.clone(),
            lifecycle.clone(),
        ));
        let usage = Arc::new(Usage::new(
            db.clone(),
            Arc::clone(&namespace),
            config.limits.clone(),
            config.usage.refresh,
            config.official_repositories(),
        ));
        let images = Arc::new(Images::new(
            config.images.clone(),
            Arc::clone(&publisher),
            Arc::clone(&limits),
            jobs.clone(),
            lifecycle.clone(),
        ));
        Ok(Hub {
            catalogue: Catalogue::new(
                &config,
                names,
                namespace,
                Arc::clone(&renditions),
                location,
                Arc::clone(&store),
            ),
            renditions,
            status: Status::new(db.clone(), Arc::clone(&store), jobs.clone()),
            chunks: Arc::new(ChunkService::new(store, quotas)),
            usage,
            publisher,
            images,
            jobs,
            auth,
            tokens,
            accounts,
            limits,
            collector,
            retention,
            scrubber,
            lifecycle,
            names,
            config,
            _lock: lock,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The checks every name from outside goes through.
    pub fn names(&self) -> Names {
        self.names
    }

    /// Reads of the namespace and of the flists it names.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// Everything that changes the namespace.
    pub fn publisher(&self) -> &Arc<Publisher> {
        &self.publisher
    }

    /// The chunk API.
    pub fn chunks(&self) -> &Arc<ChunkService> {
        &self.chunks
    }

    /// Image conversions.
    /// The files nodes read, made when the 0-db gateway runs.
    pub fn renditions(&self) -> &Arc<Renditions> {
        &self.renditions
    }

    pub fn images(&self) -> &Arc<Images> {
        &self.images
    }

    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    pub fn auth(&self) -> &Arc<Authenticator> {
        &self.auth
    }

    /// The tokens this hub minted.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// Local accounts and the web's sessions.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Rates, slots and sizes.
    pub fn limits(&self) -> &Arc<Limits> {
        &self.limits
    }

    /// Health of the database and the store.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The garbage collector of the data directory.
    pub fn collector(&self) -> &Arc<Collector> {
        &self.collector
    }

    /// The retention policies and their runs.
    pub fn retention(&self) -> &Arc<Retention> {
        &self.retention
    }

    /// The integrity scrub of the data directory.
    pub fn scrubber(&self) -> &Arc<Scrubber> {
        &self.scrubber
    }

    /// What each repository's flists take in the store.
    pub fn usage(&self) -> &Arc<Usage> {
        &self.usage
    }

    pub(crate) fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// Merges `sources` (each `repo/name`, the first winning on every path) into `target`
    /// in the caller's repository: the checks the API's merge and the web's merge page
    /// share (how many sources, their names), then the merge under an upload slot.
    pub async fn merge(
        &self,
        caller: &Caller,
        target: &str,
        sources: &[&str],
    ) -> Result<Published> {
        let names = self.names();
        let target = names.flist(target)?;
        if sources.is_empty() {
            return Err(Error::BadRequest("no source found".into()));
        }
        let max = self.config.limits.merge_sources;
        if sources.len() > max {
            return Err(Error::TooLarge(format!(
                "{} sources; a merge takes at most {max} (limits.merge-sources)",
                sources.len()
            )));
        }
        let sources = sources
            .iter()
            .map(|text| {
                let malformed = || Error::BadRequest("malformed source filename".into());
                let (repository, name) = text.split_once('/').ok_or_else(malformed)?;
                if name.contains('/') {
                    return Err(malformed());
                }
                Ok((names.repository(repository)?, names.flist(name)?))
            })
            .collect::<Result<Vec<_>>>()?;
        let slot = self.limits.upload_slot(&caller.user).await?;
        self.publisher.merge(caller, &slot, target, &sources).await
    }
}

/// Where nodes read the chunks of the flists published here: as configured; else the
/// store's own routes; else (a `dir` store, which no other machine can read) the hub's
/// chunk API. The first route is also 0-hub's `backend` when it is a 0-db.
fn chunk_location(config: &Config, store: &dyn ChunkStore) -> ChunkLocation {
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
    ChunkLocation { routes, backend }
}

/// The hub of a data directory, as a command writing into its store sees it.
#[derive(Debug)]
pub struct LocalHub {
    pub data_dir: PathBuf,
    /// What that hub records in the flists it publishes: where their chunks can be read.
    pub location: ChunkLocation,
    /// Whether a hub serves the data directory now.
    pub serving: bool,
}

/// The hub of `config`'s data directory, when a hub has served it and `store` is the store
/// it keeps its chunks in: the store of `[store]` when the command opened that one
/// (`from_config`), else a `dir` store at `<data dir>/store` (the store of a hub without
/// `[store]`).
pub fn local_hub(config: &Config, store: &dyn ChunkStore, from_config: bool) -> Option<LocalHub> {
    let data_dir = config.data_dir().ok()?;
    // `serve.lock` is made by the first `serve`: commands used without a hub stay as they are.
    if !data_dir.join(SERVE_LOCK).exists() {
        return None;
    }
    let is_the_hubs = if config.store.is_some() {
        from_config
    } else {
        let written = store
            .location()
            .strip_prefix("dir://")
            .and_then(|path| resolved(Path::new(path)));
        written.is_some() && written == resolved(&default_store(&data_dir))
    };
    is_the_hubs.then(|| LocalHub {
        location: chunk_location(config, store),
        serving: serving(&data_dir),
        data_dir,
    })
}

/// `path` with its links resolved, when it or its parent exists (a `dir` store makes its
/// directory at the first write).
fn resolved(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok().or_else(|| {
        let parent = std::fs::canonicalize(path.parent()?).ok()?;
        Some(parent.join(path.file_name()?))
    })
}

/// Whether a hub holds `serve.lock` of `data_dir`. Asked with a shared lock, which a
/// serving hub's exclusive one refuses; the file is not created.
fn serving(data_dir: &Path) -> bool {
    use rustix::fs::{FlockOperation, flock};
    std::fs::File::open(data_dir.join(SERVE_LOCK))
        .is_ok_and(|file| flock(&file, FlockOperation::NonBlockingLockShared).is_err())
}

/// Held by the hub serving a data directory.
const SERVE_LOCK: &str = "serve.lock";

fn default_store(data_dir: &Path) -> PathBuf {
    data_dir.join("store")
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

/// The configured store, or the `dir` store in the data directory.
async fn open_store(config: &Config, data_dir: &Path) -> Result<Arc<dyn ChunkStore>> {
    Ok(match &config.store {
        Some(store) => store.open().await?,
        None => chunkstore::open(&format!("dir://{}", default_store(data_dir).display())).await?,
    })
}

/// The import's view of a hub's data directory: its namespace and store, beside a hub
/// serving it or not. The import stages files in a directory of its own (`import-tmp`),
/// since a hub clears its own staging directory when it starts, and one import runs at a
/// time (`import.lock`).
pub async fn importer(config: &Config) -> Result<Importer> {
    let data_dir = config.data_dir()?;
    std::fs::create_dir_all(&data_dir).map_err(|e| Error::io(data_dir.display(), e))?;
    let lock = lock_file(
        &data_dir,
        "import.lock",
        "another import-0hub (or a garbage collection) runs on",
    )?;
    let db = open_db(&data_dir)?;
    let blobs = Arc::new(Blobs::open(
        data_dir.join("flists"),
        data_dir.join("import-tmp"),
    )?);
    Ok(Importer {
        names: names(config),
        namespace: Arc::new(Namespace::new(db, blobs)),
        store: open_store(config, &data_dir).await?,
        limits: config.limits.clone(),
        official: config.official_repositories(),
        _lock: lock,
    })
}

/// A garbage collection of a data directory: asked of the hub serving it, if one does
/// (through its `gc.sock`); else run here, with `serve.lock` held so that no hub starts
/// meanwhile. Also says whether a serving hub ran it.
pub async fn collect(config: &Config, dry_run: bool) -> Result<(crate::gc::Report, bool)> {
    let (data_dir, lock) = maintained(config)?;
    let Some(lock) = lock else {
        return Ok((crate::gc::control::ask(&data_dir, dry_run).await?, true));
    };
    let (db, blobs) = files_of(&data_dir)?;
    let store = open_store(config, &data_dir).await?;
    let collector = Collector::new(
        db.clone(),
        blobs,
        store,
        Fence::new(db),
        config.limits.clone(),
        config.gc.clone(),
        data_dir,
    );
    let report = collector.run(dry_run).await?;
    collector.flush().await;
    drop(lock);
    Ok((report, false))
}

/// A run of the retention policies on a data directory: asked of the hub serving it, if one
/// does (through its `gc.sock`); else run here, with `serve.lock` held. Also says whether a
/// serving hub ran it.
pub async fn retain(
    config: &Config,
    only: Option<&str>,
    dry_run: bool,
) -> Result<(crate::retention::Report, bool)> {
    let only = only
        .map(|name| names(config).repository(name))
        .transpose()?;
    let (data_dir, lock) = maintained(config)?;
    let Some(lock) = lock else {
        let report = crate::gc::control::ask_retention(&data_dir, only.as_deref(), dry_run);
        return Ok((report.await?, true));
    };
    let (db, blobs) = files_of(&data_dir)?;
    let namespace = Arc::new(Namespace::new(db.clone(), blobs));
    let retention = Retention::new(
        db,
        namespace,
        config.retention.clone(),
        config.server.readonly,
    );
    let report = retention
        .run(only.as_ref(), dry_run, crate::retention::ACTOR)
        .await?;
    drop(lock);
    Ok((report, false))
}

/// An integrity scrub of a data directory (of the flists of `only`, or all; `deep`: every
/// chunk read and verified): asked of the hub serving it, if one does (through its
/// `gc.sock`); else run here, with `serve.lock` held. Also says whether a serving hub ran
/// it.
pub async fn scrub(
    config: &Config,
    only: Option<&str>,
    deep: bool,
) -> Result<(crate::scrub::Report, bool)> {
    let only = only
        .map(|name| names(config).repository(name))
        .transpose()?;
    let (data_dir, lock) = maintained(config)?;
    let Some(lock) = lock else {
        let report = crate::gc::control::ask_scrub(&data_dir, only.as_deref(), deep);
        return Ok((report.await?, true));
    };
    let (db, blobs) = files_of(&data_dir)?;
    let store = open_store(config, &data_dir).await?;
    let scrubber = Scrubber::new(
        db,
        blobs,
        store,
        config.limits.clone(),
        config.scrub.clone(),
    );
    let report = scrubber.run(only.as_ref(), deep).await?;
    drop(lock);
    Ok((report, false))
}

/// The data directory of a maintenance run (`gc`, `retention`, `check`), made if missing,
/// and its `serve.lock`, held for a run here; `None` when a hub serves it (ask that hub
/// instead).
fn maintained(config: &Config) -> Result<(PathBuf, Option<std::fs::File>)> {
    let data_dir = config.data_dir()?;
    std::fs::create_dir_all(&data_dir).map_err(|e| Error::io(data_dir.display(), e))?;
    let lock = match lock_file(&data_dir, SERVE_LOCK, "a flisthub serve uses") {
        Ok(lock) => Some(lock),
        Err(Error::Config(_)) => None,
        Err(e) => return Err(e),
    };
    Ok((data_dir, lock))
}

/// The database and the flist files of a data directory no hub serves.
fn files_of(data_dir: &Path) -> Result<(Db, Arc<Blobs>)> {
    let db = open_db(data_dir)?;
    let blobs = Arc::new(Blobs::open(data_dir.join("flists"), data_dir.join("tmp"))?);
    Ok((db, blobs))
}

/// The account commands' view of a hub's data directory.
pub fn accounts(config: &Config) -> Result<Accounts> {
    let data_dir = config.data_dir()?;
    std::fs::create_dir_all(&data_dir).map_err(|e| Error::io(data_dir.display(), e))?;
    Ok(Accounts::new(open_db(&data_dir)?, names(config)))
}

/// Takes the lock file `name` of `data_dir` for as long as the file returned is open; when
/// it is taken, refuses with "<data dir>: <holder> this data directory".
///
/// One hub per data directory (`serve.lock`): a second one would clear the first one's
/// staging files and sweep flist files it is about to name. One import per data directory
/// (`import.lock`). (`flisthub token` works beside both: it only touches the database, which
/// has its own locking.)
pub(crate) fn lock_file(data_dir: &Path, name: &str, holder: &str) -> Result<std::fs::File> {
    use rustix::fs::{FlockOperation, flock};
    let path = data_dir.join(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(path.display(), e))?;
    flock(&file, FlockOperation::NonBlockingLockExclusive).map_err(|_| {
        Error::Config(format!(
            "{}: {holder} this data directory",
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
