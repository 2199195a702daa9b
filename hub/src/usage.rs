//! What each repository's flists take in the chunk store (`GET /api/v1/usage`, and the
//! `flisthub_usage_*` metrics).
//!
//! The figures come from one walk of every file the hub holds, the very walk the garbage
//! collector marks with (`gc::mark::walk`): each chunk is recorded once with its length and
//! the set of repositories whose flists name it (content windows the 0-db gateway still
//! serves, and files no entry names, count as a holder outside every repository). A chunk
//! whose only holder is one repository is *unique* to it: what the collector would free,
//! after its grace period, if that repository's flists were deleted.
//!
//! A walk reads every flist file, so it is not made per request: the figures are kept, and
//! made anew only when the namespace changed since *and* they are older than
//! `[usage] refresh` (one walk at a time; requests meanwhile wait for it and share it).
//! A metrics scrape never waits: it starts a walk in the background when one is due.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::LimitsConfig;
use crate::db::{Db, now};
use crate::error::Result;
use crate::gc::{Holder, Item, walk};
use crate::namespace::Namespace;

/// One repository's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepositoryUsage {
    pub name: String,
    /// Flists it holds itself (links and tags name others' and count nothing).
    pub flists: u64,
    /// Bytes of the files of its flists, each flist counted whole: what they hold before
    /// deduplication.
    pub content_bytes: u64,
    /// Distinct chunks its flists name, and their bytes (plaintext, each chunk once).
    pub chunks: u64,
    pub chunk_bytes: u64,
    /// Those no other repository's flist (nor anything else the hub keeps) names: what the
    /// collector would free if the repository's flists were deleted.
    pub unique_chunks: u64,
    pub unique_bytes: u64,
    /// Blocks of the hosted 0-flist and fl files it holds (their sizes are not recorded
    /// in the files), and those unique to it.
    pub blocks: u64,
    pub unique_blocks: u64,
}

/// The whole hub's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UsageTotals {
    pub repositories: u64,
    pub flists: u64,
    /// Distinct flist files read.
    pub files: u64,
    /// Bytes of the files of every flist, each counted whole.
    pub content_bytes: u64,
    /// Distinct chunks named, and their plaintext bytes: what the store holds once.
    pub chunks: u64,
    pub chunk_bytes: u64,
    pub blocks: u64,
    /// `content_bytes / chunk_bytes`: how many times over deduplication saves (1 with no
    /// sharing; compression comes on top and is not in it).
    pub dedup_ratio: f64,
}

/// The figures of one walk.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// When the walk ended, seconds since the epoch.
    pub computed: i64,
    pub duration_ms: u64,
    /// By name.
    pub repositories: Vec<RepositoryUsage>,
    pub totals: UsageTotals,
    #[serde(skip)]
    generation: u64,
    #[serde(skip)]
    at: Instant,
}

/// The usage figures of the hub, kept between walks.
pub struct Usage {
    db: Db,
    namespace: Arc<Namespace>,
    limits: LimitsConfig,
    refresh: Duration,
    /// Repositories whose figures are exported as metric labels: the configured official
    /// ones, a set the operator bounds.
    labelled: Vec<String>,
    current: RwLock<Option<Arc<Snapshot>>>,
    /// Held by the walk going on.
    walking: Arc<tokio::sync::Mutex<()>>,
}

impl Usage {
    pub(crate) fn new(
        db: Db,
        namespace: Arc<Namespace>,
        limits: LimitsConfig,
        refresh: Duration,
        labelled: Vec<String>,
    ) -> Usage {
        Usage {
            db,
            namespace,
            limits,
            refresh,
            labelled,
            current: RwLock::new(None),
            walking: Arc::default(),
        }
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether `snapshot` may still be answered: nothing changed since, or it is younger
    /// than `[usage] refresh`.
    fn fresh(&self, snapshot: &Snapshot) -> bool {
        snapshot.generation == self.namespace.generation() || snapshot.at.elapsed() < self.refresh
    }

    /// The figures, walked anew if they are due (see the module documentation).
    pub async fn figures(&self) -> Result<Arc<Snapshot>> {
        if let Some(snapshot) = self.current().filter(|s| self.fresh(s)) {
            return Ok(snapshot);
        }
        let _walking = self.walking.lock().await;
        // Made by the walk this request waited for.
        if let Some(snapshot) = self.current().filter(|s| self.fresh(s)) {
            return Ok(snapshot);
        }
        self.walk().await
    }

    /// Starts a walk in the background if one is due and none is going on.
    pub fn refresh_in_background(self: &Arc<Self>) {
        if self.current().is_some_and(|s| self.fresh(&s)) {
            return;
        }
        let Ok(walking) = Arc::clone(&self.walking).try_lock_owned() else {
            return;
        };
        let usage = Arc::clone(self);
        tokio::spawn(async move {
            let _walking = walking;
            if let Err(e) = usage.walk().await {
                tracing::warn!(error = %e, "computing the usage figures");
            }
        });
    }

    /// Walks every file now; call with `walking` held.
    async fn walk(&self) -> Result<Arc<Snapshot>> {
        let started = Instant::now();
        // Read before the walk: a change during it makes the figures due again.
        let generation = self.namespace.generation();
        let (db, blobs, limits) = (
            self.db.clone(),
            Arc::clone(self.namespace.blobs()),
            self.limits.clone(),
        );
        let (repositories, totals) =
            tokio::task::spawn_blocking(move || compute(&db, &blobs, &limits)).await??;
        let snapshot = Arc::new(Snapshot {
            computed: now(),
            duration_ms: started.elapsed().as_millis() as u64,
            repositories,
            totals,
            generation,
            at: Instant::now(),
        });
        self.export(&snapshot);
        tracing::info!(
            repositories = snapshot.totals.repositories,
            chunks = snapshot.totals.chunks,
            duration_ms = snapshot.duration_ms,
            "usage figures computed"
        );
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&snapshot));
        Ok(snapshot)
    }

    /// The figures as gauges: the hub's totals without labels, and per repository only for
    /// the official ones (a label per repository of a hub where anyone may publish would
    /// grow every scrape, and the recorder, without bound).
    fn export(&self, snapshot: &Snapshot) {
        let t = &snapshot.totals;
        for (name, value) in [
            ("flisthub_usage_repositories", t.repositories as f64),
            ("flisthub_usage_flists", t.flists as f64),
            ("flisthub_usage_content_bytes", t.content_bytes as f64),
            ("flisthub_usage_chunks", t.chunks as f64),
            ("flisthub_usage_chunk_bytes", t.chunk_bytes as f64),
            ("flisthub_usage_blocks", t.blocks as f64),
            ("flisthub_usage_dedup_ratio", t.dedup_ratio),
            (
                "flisthub_usage_computed_timestamp_seconds",
                snapshot.computed as f64,
            ),
            (
                "flisthub_usage_walk_seconds",
                snapshot.duration_ms as f64 / 1000.0,
            ),
        ] {
            metrics::gauge!(name).set(value);
        }
        for name in &self.labelled {
            let found = snapshot.repositories.iter().find(|r| &r.name == name);
            let figure = |f: fn(&RepositoryUsage) -> u64| found.map_or(0.0, |r| f(r) as f64);
            let labels = [("repository", name.clone())];
            metrics::gauge!("flisthub_usage_repository_content_bytes", &labels)
                .set(figure(|r| r.content_bytes));
            metrics::gauge!("flisthub_usage_repository_unique_bytes", &labels)
                .set(figure(|r| r.unique_bytes));
        }
    }
}

/// A holder outside every repository: a content window, a file no entry names.
const ELSEWHERE: u32 = u32::MAX;

/// Sets of repository indices, each kept once and numbered, so that a chunk records its
/// holders in four bytes (most chunks have one holder, and the sets that occur are few).
#[derive(Default)]
struct Sets {
    sets: Vec<Vec<u32>>,
    ids: HashMap<Vec<u32>, u32>,
    unions: HashMap<(u32, u32), u32>,
}

impl Sets {
    fn id(&mut self, mut set: Vec<u32>) -> u32 {
        set.sort_unstable();
        set.dedup();
        if let Some(id) = self.ids.get(&set) {
            return *id;
        }
        let id = self.sets.len() as u32;
        self.sets.push(set.clone());
        self.ids.insert(set, id);
        id
    }

    fn union(&mut self, a: u32, b: u32) -> u32 {
        if a == b {
            return a;
        }
        let pair = (a.min(b), a.max(b));
        if let Some(id) = self.unions.get(&pair) {
            return *id;
        }
        let joined = [self.sets[a as usize].as_slice(), &self.sets[b as usize]].concat();
        let id = self.id(joined);
        self.unions.insert(pair, id);
        id
    }
}

/// One walk: every repository's figures, by name, and the totals. Blocking.
fn compute(
    db: &Db,
    blobs: &Arc<crate::blobs::Blobs>,
    limits: &LimitsConfig,
) -> Result<(Vec<RepositoryUsage>, UsageTotals)> {
    let (names, entries) = db.read_now(|c| {
        let mut stmt = c.prepare("SELECT name FROM repository ORDER BY name")?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut stmt = c.prepare(
            "SELECT r.name, e.blob FROM entry e JOIN repository r ON r.id = e.repository
             WHERE e.kind = 'regular'",
        )?;
        let entries = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((names, entries))
    })?;
    let index: HashMap<&str, u32> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u32))
        .collect();
    let mut repositories: Vec<RepositoryUsage> = names
        .iter()
        .map(|name| RepositoryUsage {
            name: name.clone(),
            ..RepositoryUsage::default()
        })
        .collect();
    let mut holders: HashMap<&str, Vec<u32>> = HashMap::new();
    for (repository, sha256) in &entries {
        if let Some(&i) = index.get(repository.as_str()) {
            holders.entry(sha256.as_str()).or_default().push(i);
        }
    }
    let mut sets = Sets::default();
    let elsewhere = sets.id(vec![ELSEWHERE]);
    let file_sets: HashMap<&str, u32> = holders
        .into_iter()
        .map(|(sha256, set)| (sha256, sets.id(set)))
        .collect();
    // Per key: its length (0 for a block) and the id of its holders' set.
    let mut keys: HashMap<Item, (u32, u32)> = HashMap::new();
    // Content bytes per file; the file being read, its holders' set and bytes so far.
    let mut content: HashMap<String, u64> = HashMap::new();
    let mut reading: Option<(String, u32, u64)> = None;
    let files = walk(db, blobs, limits, &mut |holder, item, length| {
        let set = match holder {
            Holder::Window => elsewhere,
            Holder::File(sha256) => {
                if reading.as_ref().is_none_or(|(s, ..)| s != sha256) {
                    let set = file_sets.get(sha256).copied().unwrap_or(elsewhere);
                    if let Some((done, _, bytes)) = reading.replace((sha256.to_owned(), set, 0)) {
                        content.insert(done, bytes);
                    }
                }
                match reading.as_mut() {
                    Some((_, set, bytes)) => {
                        *bytes += u64::from(length.unwrap_or(0));
                        *set
                    }
                    None => elsewhere,
                }
            }
        };
        let slot = keys.entry(item).or_insert((length.unwrap_or(0), set));
        if slot.1 != set {
            slot.1 = sets.union(slot.1, set);
        }
    })?;
    if let Some((done, _, bytes)) = reading {
        content.insert(done, bytes);
    }
    let mut totals = UsageTotals {
        repositories: names.len() as u64,
        flists: entries.len() as u64,
        files,
        ..UsageTotals::default()
    };
    for (repository, sha256) in &entries {
        let bytes = content.get(sha256).copied().unwrap_or(0);
        totals.content_bytes += bytes;
        if let Some(&i) = index.get(repository.as_str()) {
            let r = &mut repositories[i as usize];
            r.flists += 1;
            r.content_bytes += bytes;
        }
    }
    for (item, (length, set)) in keys {
        let set = &sets.sets[set as usize];
        let unique = set.len() == 1 && set[0] != ELSEWHERE;
        let length = u64::from(length);
        match item {
            Item::Chunk(_) => {
                totals.chunks += 1;
                totals.chunk_bytes += length;
            }
            Item::Block(_) => totals.blocks += 1,
        }
        for &i in set.iter().filter(|i| **i != ELSEWHERE) {
            let r = &mut repositories[i as usize];
            match item {
                Item::Chunk(_) => {
                    r.chunks += 1;
                    r.chunk_bytes += length;
                    if unique {
                        r.unique_chunks += 1;
                        r.unique_bytes += length;
                    }
                }
                Item::Block(_) => {
                    r.blocks += 1;
                    r.unique_blocks += u64::from(unique);
                }
            }
        }
    }
    totals.dedup_ratio = match totals.chunk_bytes {
        0 => 1.0,
        stored => totals.content_bytes as f64 / stored as f64,
    };
    Ok((repositories, totals))
}
