//! The flist files of the tree: each checked (a 0-flist or fl file, read through by its
//! reader within the hub's limits), its blocks copied when an old 0-db is given, then
//! published byte for byte at its file time, unless the namespace already has that file
//! under that name at that time.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chunkstore::{BlockId, ChunkStore};
use futures_util::StreamExt;

use super::scan::{FileEntry, Repository, Skipped};
use super::{ACTOR, Importer, Progress, State, Summary, blocks};
use crate::blobs::{Staged, digest_file};
use crate::error::{Error, Result};
use crate::facts::Facts;
use crate::formats::{AnyFlist, Format};
use crate::names::RepoName;
use crate::namespace::{Kind, Source};

/// Files read, checked and copied at once (their publishing stays in the tree's order).
const FILES_IN_FLIGHT: usize = 4;

/// A file made ready to publish, or why not.
enum Prepared {
    Publish { staged: Staged, facts: Facts },
    Unchanged,
    Skip(String),
}

/// What the hub already holds under a file's name: its sha256 and time.
type Held = (String, i64);

impl Importer {
    pub(super) async fn import_files(
        &self,
        repositories: &[Repository],
        blocks_from: Option<Arc<dyn ChunkStore>>,
        progress: &Progress,
        state: &mut State,
        summary: &mut Summary,
    ) -> Result<()> {
        let files: Vec<(&RepoName, &FileEntry, Option<Held>)> = repositories
            .iter()
            .flat_map(|r| r.files.iter().map(move |f| (&r.name, f)))
            .map(|(repository, file)| {
                let stored = state
                    .entry(repository.as_str(), file.name.as_str())
                    .filter(|e| e.kind == Kind::Regular)
                    .and_then(|e| Some((e.sha256.clone()?, e.mtime)));
                (repository, file, stored)
            })
            .collect();
        progress
            .files_total
            .store(files.len() as u64, Ordering::Relaxed);
        let from = blocks_from.as_ref();
        let mut prepared = std::pin::pin!(
            futures_util::stream::iter(files)
                .map(|(repository, file, stored)| async move {
                    let outcome = self.prepare(file, stored, from, progress).await;
                    (repository, file, outcome)
                })
                .buffered(FILES_IN_FLIGHT)
        );
        while let Some((repository, file, outcome)) = prepared.next().await {
            let key = (repository.to_string(), file.name.to_string());
            match outcome? {
                Prepared::Unchanged => {
                    summary.flists.unchanged += 1;
                    state.flists.insert(key);
                }
                Prepared::Publish { staged, facts } => {
                    let published = self
                        .namespace
                        .publish(
                            repository.clone(),
                            file.name.clone(),
                            staged,
                            (facts, Vec::new()),
                            Source::Import {
                                path: format!("{repository}/{}", file.name),
                            },
                            (ACTOR, file.mtime),
                        )
                        .await;
                    match published {
                        Ok(_) => {
                            summary.flists.added += 1;
                            state.flists.insert(key);
                        }
                        Err(e) => summary
                            .skipped
                            .push(Skipped::new(&file.path, e.to_string())),
                    }
                }
                Prepared::Skip(reason) => summary.skipped.push(Skipped::new(&file.path, reason)),
            }
            progress.files_done.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Reads and checks one file, copies its blocks, and stages it when the namespace does
    /// not have it yet. Problems of the file are a `Skip`; an error is the hub's or its
    /// store's, and stops the run.
    async fn prepare(
        &self,
        file: &FileEntry,
        stored: Option<Held>,
        from: Option<&Arc<dyn ChunkStore>>,
        progress: &Progress,
    ) -> Result<Prepared> {
        let path = file.path.clone();
        let digest = match tokio::task::spawn_blocking(move || digest_file(&path)).await? {
            Ok(digest) => digest,
            Err(e) => return Ok(Prepared::Skip(e.to_string())),
        };
        match (digest.format, file.fl_name) {
            (Format::ZeroFlist, false) | (Format::Fl, true) => {}
            (Format::Native, _) => {
                return Ok(Prepared::Skip(
                    "a flisthub flist, not a file 0-hub's producers make".into(),
                ));
            }
            (format, _) => {
                return Ok(Prepared::Skip(format!(
                    "a {} file under a {} name: flisthub would serve it at another URL",
                    format.as_str(),
                    if file.fl_name { ".fl" } else { ".flist" }
                )));
            }
        }
        if let Some(from) = from {
            let (path, limits) = (file.path.clone(), self.limits.clone());
            let format = digest.format;
            let ids =
                tokio::task::spawn_blocking(move || block_ids(&path, format, &limits)).await?;
            let ids = match ids {
                Ok(ids) => ids,
                Err(e) => return Ok(Prepared::Skip(format!("not a valid flist: {e}"))),
            };
            match blocks::copy(from, &self.store, &ids, &progress.blocks).await {
                Ok(()) => {}
                Err(e @ Error::Store(_)) => return Err(e),
                Err(e) => return Ok(Prepared::Skip(e.to_string())),
            }
        }
        if stored == Some((digest.sha256.clone(), file.mtime)) {
            return Ok(Prepared::Unchanged);
        }
        let staging = self.namespace.blobs().new_staging_file("import-")?;
        let (source, blobs, limits) = (
            file.path.clone(),
            Arc::clone(self.namespace.blobs()),
            self.limits.clone(),
        );
        tokio::task::spawn_blocking(move || -> Result<Prepared> {
            std::fs::copy(&source, &staging).map_err(|e| Error::io(source.display(), e))?;
            let staged = match blobs.stage(staging) {
                Ok(staged) => staged,
                Err(e) => return Ok(Prepared::Skip(e.to_string())),
            };
            Ok(
                match Facts::read(staged.path(), staged.digest.format, &limits) {
                    Ok(facts) => Prepared::Publish { staged, facts },
                    Err(e) => Prepared::Skip(format!("not a valid flist: {e}")),
                },
            )
        })
        .await?
    }
}

/// Every block id a 0-flist or fl file names, read through by its reader.
fn block_ids(
    path: &Path,
    format: Format,
    limits: &crate::config::LimitsConfig,
) -> Result<Vec<BlockId>> {
    Ok(match AnyFlist::open(path, format, limits)? {
        AnyFlist::ZeroFlist(zero) => zero.block_ids()?.into_iter().map(BlockId::from).collect(),
        AnyFlist::Fl(fl) => fl.block_ids()?.into_iter().map(BlockId::from).collect(),
        AnyFlist::Native(_) => Vec::new(),
    })
}
