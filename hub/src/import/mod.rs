//! `flisthub import-0hub`: a 0-hub's public directory brought into the namespace as 0-hub
//! showed it, through the namespace's own changes (so a running hub sees them at once and
//! the change log records them), each at the time 0-hub showed for it.
//!
//! The tree is read first (`scan`); then every flist file, checked and, with an old 0-db
//! given, its blocks copied (`blocks`), several files at a time, each published in the
//! tree's order; then links (a link once what it names is there, so chains resolve and
//! dangling links are found), tag members, taglinks, and last the repository and tag
//! times. Each entry is one transaction: an interrupted run leaves whole entries, and the
//! next run changes only what differs from the tree, so running it again changes nothing.

pub(crate) mod blocks;
mod files;
mod links;
pub mod scan;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chunkstore::ChunkStore;

pub use blocks::{BlockCounts, source as blocks_source};
pub use scan::Skipped;

use crate::config::LimitsConfig;
use crate::error::Result;
use crate::names::{Names, RepoName};
use crate::namespace::{Kind, Namespace, Stored, StoredEntry, Target};

/// The author recorded for every imported entry.
pub const ACTOR: &str = "import-0hub";

/// Progress of a run, read by a progress bar while it goes.
#[derive(Debug, Default)]
pub struct Progress {
    /// Flist files in the tree, once read.
    pub files_total: AtomicU64,
    /// Flist files dealt with (published, unchanged or skipped).
    pub files_done: AtomicU64,
    pub blocks: BlockCounts,
}

/// Entries added (or changed) and entries found as the tree has them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub added: u64,
    pub unchanged: u64,
}

/// What a run did.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Repositories of the tree now in the namespace.
    pub repositories: u64,
    /// Of them, those the configuration marks official.
    pub official: Vec<String>,
    pub flists: Counted,
    pub symlinks: Counted,
    pub tag_members: Counted,
    pub taglinks: Counted,
    /// Repositories whose times (or their tags') were set.
    pub times_set: u64,
    /// Blocks copied from the old 0-db, their bytes, and blocks the store already had.
    pub blocks_copied: u64,
    pub block_bytes: u64,
    pub blocks_present: u64,
    pub skipped: Vec<Skipped>,
}

impl Summary {
    /// Whether the run changed anything in the namespace.
    pub fn changed(&self) -> bool {
        [self.flists, self.symlinks, self.tag_members, self.taglinks]
            .iter()
            .any(|c| c.added > 0)
            || self.times_set > 0
    }
}

/// The import's hold on a hub's data directory: its namespace and store.
pub struct Importer {
    pub(crate) names: Names,
    pub(crate) namespace: Arc<Namespace>,
    pub(crate) store: Arc<dyn ChunkStore>,
    pub(crate) limits: LimitsConfig,
    pub(crate) official: Vec<String>,
    /// Held while the import runs: one import at a time per data directory.
    pub(crate) _lock: std::fs::File,
}

/// What the namespace holds of each repository of the tree, and what this run made
/// available to link to.
pub(crate) struct State {
    pub stored: HashMap<String, Stored>,
    /// `(repository, flist name)` of every flist and symlink of the tree now in the
    /// namespace.
    pub flists: HashSet<(String, String)>,
    /// `(repository, tag)` of every tag of the tree now in the namespace.
    pub tags: HashSet<(String, String)>,
}

impl State {
    /// What the namespace held under `name` of `repository` when the run started.
    fn entry(&self, repository: &str, name: &str) -> Option<&StoredEntry> {
        self.stored.get(repository)?.entries.get(name)
    }

    /// Whether `name` of `repository` already is a link of `kind` to `target` made at
    /// `linktime`: then importing it again changes nothing.
    fn holds_link(
        &self,
        (repository, name): (&str, &str),
        kind: Kind,
        target: &Target,
        linktime: i64,
    ) -> bool {
        self.entry(repository, name).is_some_and(|e| {
            e.kind == kind && e.target.as_ref() == Some(target) && e.mtime == linktime
        })
    }
}

impl Importer {
    /// Imports the tree of 0-hub's public directory `public` (holding `users/`, or the
    /// `users/` directory itself), copying blocks from `blocks_from` when given.
    pub async fn run(
        &self,
        public: &Path,
        blocks_from: Option<Arc<dyn ChunkStore>>,
        progress: &Progress,
    ) -> Result<Summary> {
        let users = scan::users_dir(public);
        let names = self.names;
        let tree = tokio::task::spawn_blocking(move || scan::scan(&users, &names)).await??;
        let mut summary = Summary {
            skipped: tree.skipped,
            ..Summary::default()
        };
        let mut state = State {
            stored: HashMap::new(),
            flists: HashSet::new(),
            tags: HashSet::new(),
        };
        for repository in &tree.repositories {
            if let Some(stored) = self.namespace.stored(&repository.name).await? {
                state.stored.insert(repository.name.to_string(), stored);
            }
        }
        self.import_files(
            &tree.repositories,
            blocks_from,
            progress,
            &mut state,
            &mut summary,
        )
        .await?;
        self.import_links(&tree.repositories, &mut state, &mut summary)
            .await?;
        self.import_tags(&tree.repositories, &mut state, &mut summary)
            .await?;
        self.import_taglinks(&tree.repositories, &state, &mut summary)
            .await?;
        for repository in &tree.repositories {
            self.set_times(repository, &state, &mut summary).await?;
        }
        let counts = &progress.blocks;
        summary.blocks_copied = counts.copied.load(Ordering::Relaxed);
        summary.block_bytes = counts.bytes.load(Ordering::Relaxed);
        summary.blocks_present = counts.present.load(Ordering::Relaxed);
        Ok(summary)
    }

    /// The repository's time and its tags' as the tree has them, once it is in the
    /// namespace; a repository nothing of which could be imported is reported.
    async fn set_times(
        &self,
        repository: &scan::Repository,
        state: &State,
        summary: &mut Summary,
    ) -> Result<()> {
        let name: &RepoName = &repository.name;
        if self.namespace.stored(name).await?.is_none() {
            summary.skipped.push(Skipped {
                path: name.to_string(),
                reason: "a repository with nothing flisthub can hold (flisthub has no empty repositories)".into(),
            });
            return Ok(());
        }
        summary.repositories += 1;
        if self.official.iter().any(|o| o == name.as_str()) {
            summary.official.push(name.to_string());
        }
        let tags = repository
            .tags
            .iter()
            .filter(|t| state.tags.contains(&(name.to_string(), t.name.to_string())))
            .map(|t| (t.name.clone(), t.mtime))
            .collect();
        if self
            .namespace
            .set_times(name, repository.updated, tags)
            .await?
        {
            summary.times_set += 1;
        }
        Ok(())
    }
}
