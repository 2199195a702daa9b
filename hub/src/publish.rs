//! Turning what clients send into published flists: archives (converted while they
//! arrive), flists built elsewhere (checked against the store), and merges.
//!
//! Each writes its flist to a private staging file, hashes it, and publishes it in one
//! namespace change; a failure anywhere before that leaves nothing behind.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chunkstore::ChunkStore;
use converter::{Cancel, FileWindows, LateMetadata, PackOptions, Progress};
use tempfile::TempPath;
use tokio::runtime::Handle;

use crate::auth::Caller;
use crate::blobs::Digest256;
use crate::catalogue::ChunkLocation;
use crate::check;
use crate::config::LimitsConfig;
use crate::db::now;
use crate::error::{Error, Result};
use crate::facts::{self, Facts};
use crate::formats::{AnyFlist, Format};
use crate::gc::{Publishing, Tracked};
use crate::hub::Lifecycle;
use crate::inspect::Stats;
use crate::jobs::{Job, Jobs};
use crate::limits::UploadSlot;
use crate::names::{FlistName, Names, RepoName, quote, quote_path};
use crate::namespace::{Applied, Change, Namespace, Source, shown};
use crate::quota::{Charge, Quotas};
use crate::renditions::Renditions;

/// Metadata keys a `metadata-<key>` field cannot set: 0-hub's protected keys, and those the
/// pipeline itself records. 0-hub ignored them silently; here the answer lists them.
const PROTECTED_METADATA: &[&str] = &[
    "readme",
    "backend",
    "entrypoint",
    "environ",
    "port",
    "volume",
    "format-version",
    "chunker",
    "hash",
    "codec",
    "source",
    "routes",
    "workdir",
    "ports",
];

/// How often a job's progress is refreshed.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// A flist just published.
#[derive(Debug, Clone)]
pub struct Published {
    pub repository: RepoName,
    pub name: FlistName,
    pub digest: Digest256,
    pub stats: Stats,
}

impl Published {
    /// Its name with the suffix of its format (`x.fl` for an rfs fl file).
    pub fn shown_name(&self) -> String {
        shown(&self.name, Some(self.digest.format))
    }
}

/// Whether a `metadata-<key>` field may set `key`: `Ok(false)` for a protected key
/// (ignored, as 0-hub did), an error for a key that is not a key.
pub fn metadata_key_allowed(key: &str) -> Result<bool> {
    let valid = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid {
        return Err(Error::BadRequest(format!(
            "invalid metadata key {}: up to 64 ASCII letters, digits, '-', '_' or '.'",
            quote(key)
        )));
    }
    Ok(!PROTECTED_METADATA.contains(&key))
}

/// An archive to convert and publish.
pub struct ArchiveUpload {
    pub name: FlistName,
    /// The archive's file name, recorded as the flist's source.
    pub source: String,
    /// The archive's size, when known, for progress.
    pub size: Option<u64>,
    /// Form fields that arrive after the archive.
    pub late_metadata: Option<LateMetadata>,
}

/// Cancels a pipeline when its request or job goes away before it finished.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The publisher: everything that changes the namespace goes through it (uploads, flists
/// built elsewhere, merges, and 0-hub's link, tag, rename, promote and delete), as a
/// [`Change`] applied at the time it is made.
pub struct Publisher {
    names: Names,
    namespace: Arc<Namespace>,
    renditions: Arc<Renditions>,
    store: Arc<Tracked>,
    quotas: Arc<Quotas>,
    location: ChunkLocation,
    limits: LimitsConfig,
    jobs: Jobs,
    lifecycle: Lifecycle,
}

impl Publisher {
    /// Made once, by the composition root, from the services a publisher uses.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        names: Names,
        namespace: Arc<Namespace>,
        renditions: Arc<Renditions>,
        (store, quotas): (Arc<Tracked>, Arc<Quotas>),
        location: ChunkLocation,
        limits: LimitsConfig,
        jobs: Jobs,
        lifecycle: Lifecycle,
    ) -> Publisher {
        Publisher {
            names,
            namespace,
            renditions,
            store,
            quotas,
            location,
            limits,
            jobs,
            lifecycle,
        }
    }

    /// The names the publisher checks, for the routes that make changes.
    pub fn names(&self) -> Names {
        self.names
    }

    /// Applies a change of the namespace made by `caller`, now. The change must be in the
    /// caller's repository.
    pub async fn apply(&self, caller: &Caller, change: Change) -> Result<Applied> {
        if *change.repository() != caller.repository {
            return Err(Error::Forbidden(format!(
                "{} cannot change {}",
                quote(&caller.repository),
                quote(change.repository())
            )));
        }
        if let Change::Promote {
            source_repository,
            source,
            ..
        } = &change
        {
            // A copy is a publish: the limits hold for it too (they may have been lowered
            // since the source was published).
            let resolved = self.namespace.resolve(source_repository, source).await?;
            let facts = self.namespace.facts(&resolved.digest.sha256).await?;
            facts::check_size(facts.entries, facts.stats.fullsize, &self.limits)?;
        }
        self.namespace.apply(change, &caller.user, now()).await
    }

    /// The store as an upload or a conversion of `identity` writes to it: what it stores
    /// new is charged to the identity's quota, and refused past it (`quota`).
    pub(crate) fn store_for(&self, identity: &str) -> (Arc<dyn ChunkStore>, Arc<Charge>) {
        let charge = Arc::new(self.quotas.charge_to(identity));
        let store = Arc::new(self.store.charging(Arc::clone(&charge)));
        (store, charge)
    }

    /// Refuses (507) an identity with no room left under its quota, before `what` is
    /// taken in.
    pub async fn check_room(&self, identity: &str, what: &str) -> Result<()> {
        self.quotas.check_room(identity, what).await
    }

    /// A private file for something being received or built; removed when dropped.
    pub fn staging_file(&self, prefix: &str) -> Result<TempPath> {
        self.namespace.blobs().new_staging_file(prefix)
    }

    /// The directory of [`Publisher::staging_file`]s (image exports are spooled there).
    pub fn staging_dir(&self) -> &Path {
        self.namespace.blobs().staging_dir()
    }

    /// Converts an archive (plain, gzip or zstd tar) read from `input` into an flist and
    /// publishes it as `upload.name` in the caller's repository. Like every publishing
    /// method, it runs in an upload slot the caller holds (taken before the request's body
    /// is read, so that the slots also bound what waits on disk).
    pub async fn upload_archive(
        &self,
        caller: &Caller,
        _slot: &UploadSlot,
        upload: ArchiveUpload,
        input: impl Read + Send + 'static,
        job: Option<&Job>,
    ) -> Result<Published> {
        // What the pack stores is kept by the collector until it is published (or fails).
        let _operation = self.lifecycle.fence.operation();
        let staging = self.staging_file("upload-")?;
        let cancel = Cancel::default();
        let _guard = CancelOnDrop(cancel.clone());
        let options = PackOptions {
            late_metadata: upload.late_metadata,
            import_readme: true,
            ..self.pack_options(cancel.clone())
        };
        let progress = Arc::new(Progress::default());
        let archive = upload.source.clone();
        let (store, charge) = self.store_for(&caller.user);
        let pack = converter::pack_tar(
            input,
            upload.source,
            staging.to_path_buf(),
            store,
            options,
            Arc::clone(&progress),
        );
        tokio::pin!(pack);
        let mut ticker = tokio::time::interval(PROGRESS_EVERY);
        let packed = loop {
            tokio::select! {
                result = &mut pack => break result,
                _ = ticker.tick() => {
                    if let Some(job) = job {
                        report(job, &progress, upload.size);
                    }
                }
                _ = self.lifecycle.shutdown.cancelled() => {
                    cancel.cancel();
                    break (&mut pack).await;
                }
            }
        };
        let summary = packed.map_err(|e| charge.explain(Error::from(e)))?;
        let windows = Some(Arc::new(summary.windows));
        let source = Source::Archive { file: archive };
        self.publish_file(caller, upload.name, staging, source, windows)
            .await
    }

    /// Converts a received archive in the background, as a job (`upload`): its id at once,
    /// its progress and outcome in the job. The file is removed when the job is over.
    pub async fn upload_in_background(
        self: &Arc<Self>,
        caller: &Caller,
        slot: UploadSlot,
        upload: ArchiveUpload,
        file: TempPath,
    ) -> Result<String> {
        let input = std::fs::File::open(&file).map_err(|e| Error::io(file.display(), e))?;
        let job = self
            .jobs
            .create(
                "upload",
                &caller.user,
                &caller.repository,
                &upload.name,
                None,
            )
            .await?;
        let id = job.id();
        let (publisher, caller) = (Arc::clone(self), caller.clone());
        self.lifecycle.tasks.spawn(async move {
            let _file = file;
            if let Err(e) = job.start().await {
                tracing::error!(error = %e, "recording a job start");
            }
            let outcome = publisher
                .upload_archive(&caller, &slot, upload, input, Some(&job))
                .await;
            let recorded = match outcome {
                Ok(published) => {
                    let info = serde_json::json!({
                        "filename": published.name,
                        "flist": published.stats,
                    });
                    job.succeed(info).await
                }
                Err(e) => {
                    tracing::info!(error = %e, "upload job failed");
                    job.fail(e.client_message()).await
                }
            };
            if let Err(e) = recorded {
                tracing::error!(error = %e, "recording a job outcome");
            }
        });
        Ok(id)
    }

    /// How the hub packs what it converts: its limits, and the routes (and 0-hub's
    /// `backend`) that tell readers where the chunks are.
    pub(crate) fn pack_options(&self, cancel: Cancel) -> PackOptions {
        let metadata = self.location.metadata();
        let limits = &self.limits;
        PackOptions {
            limits: converter::Limits {
                max_entries: limits.entries,
                max_total_size: limits.expanded_size,
                max_header_record: limits.header_record,
                max_expansion_ratio: limits.expansion_ratio,
                expansion_floor: limits.expansion_floor,
                ..converter::Limits::default()
            },
            metadata,
            // The renditions' window keys, hashed as the content passes.
            window_keys: self.renditions.public_url().is_some(),
            cancel,
            ..PackOptions::default()
        }
    }

    /// Publishes an flist built elsewhere, after checking that it is one and that the store
    /// holds every chunk it names.
    pub async fn upload_flist(
        &self,
        caller: &Caller,
        _slot: &UploadSlot,
        name: FlistName,
        (file, file_name): (TempPath, String),
    ) -> Result<Published> {
        // From the check that the store holds every chunk to the commit, no collection can
        // start: one that started after the check could delete a chunk found there (a
        // pushed chunk is seen when it is stored or found, which may be longer ago than the
        // grace period), and the publish would then name it unnoticed. One already going
        // on is fenced by `Collector::protect`.
        let fence = Arc::clone(&self.lifecycle.fence);
        let publishing = fence.publishing().await;
        let store = Arc::clone(&self.store);
        let runtime = Handle::current();
        let path = file.to_path_buf();
        let limits = self.limits.clone();
        tokio::task::spawn_blocking(move || {
            check::uploaded(&path, &limits, store.as_ref(), &runtime)
        })
        .await??;
        let source = Source::FlistFile {
            file: file_name,
            pushed_from: None,
        };
        self.publish_held(publishing, caller, name, file, source, None)
            .await
    }

    /// Layers `sources` (repository, flist name; the first wins on every path) into
    /// `target` of the caller's repository.
    pub async fn merge(
        &self,
        caller: &Caller,
        _slot: &UploadSlot,
        target: FlistName,
        sources: &[(RepoName, FlistName)],
    ) -> Result<Published> {
        let _operation = self.lifecycle.fence.operation();
        let mut seen = HashSet::new();
        if let Some((repository, name)) = sources.iter().find(|s| !seen.insert(*s)) {
            return Err(Error::BadRequest(format!(
                "{} is given twice; each source once",
                quote_path(repository, name)
            )));
        }
        let mut opened = Vec::with_capacity(sources.len());
        let mut entries = 0u64;
        for (repository, name) in sources {
            let limits = self.limits.clone();
            let (resolved, flist) = self
                .namespace
                .open_file(
                    || self.namespace.resolve(repository, name),
                    move |path| {
                        let format = Format::detect(path)?;
                        AnyFlist::open(path, format, &limits)
                    },
                )
                .await
                .map_err(|e| match e {
                    Error::NotFound(_) => {
                        Error::NotFound(format!("{} does not exist", quote_path(repository, name)))
                    }
                    other => other,
                })?;
            // The work a merge does is bounded by what it reads, known before it starts.
            entries += self.namespace.facts(&resolved.digest.sha256).await?.entries;
            if entries > self.limits.merge_entries {
                return Err(Error::TooLarge(format!(
                    "the sources hold more than {} entries together (limits.merge-entries)",
                    self.limits.merge_entries
                )));
            }
            opened.push((
                quote_path(repository, &shown(name, Some(flist.format()))),
                flist,
            ));
        }
        let staging = self.staging_file("merge-")?;
        let out = staging.to_path_buf();
        tokio::task::spawn_blocking(move || crate::merge::merge(opened, &out)).await??;
        let source = Source::Merge {
            sources: sources
                .iter()
                .map(|(repository, name)| format!("{repository}/{name}"))
                .collect(),
        };
        self.publish_file(caller, target, staging, source, None)
            .await
    }

    /// Publishes a staged flist file as `name` of the caller's repository, now, with the
    /// facts read from it (which refuses one beyond the limits, whatever way it came in).
    /// `windows` are its files' window keys when the pack that made it hashed them (the
    /// renditions then read nothing again). `source` is how it came in.
    pub(crate) async fn publish_file(
        &self,
        caller: &Caller,
        name: FlistName,
        file: TempPath,
        source: Source,
        windows: Option<Arc<FileWindows>>,
    ) -> Result<Published> {
        // A collection going on keeps what this flist names, from here to the commit.
        let fence = Arc::clone(&self.lifecycle.fence);
        let publishing = fence.publishing().await;
        self.publish_held(publishing, caller, name, file, source, windows)
            .await
    }

    /// [`Publisher::publish_file`] for a caller that took the publishing guard already (it
    /// cannot be taken twice: a collection waiting for it between would wait for ever).
    async fn publish_held(
        &self,
        _publishing: Publishing<'_>,
        caller: &Caller,
        name: FlistName,
        file: TempPath,
        mut source: Source,
        windows: Option<Arc<FileWindows>>,
    ) -> Result<Published> {
        let blobs = Arc::clone(self.namespace.blobs());
        let limits = self.limits.clone();
        let (staged, facts, contents) = tokio::task::spawn_blocking(move || -> Result<_> {
            let staged = blobs.stage(file)?;
            let format = staged.digest.format;
            let facts = Facts::read(staged.path(), format, &limits)?;
            let contents = match format {
                Format::Native => crate::renditions::distinct_contents(staged.path())?,
                Format::ZeroFlist | Format::Fl => Vec::new(),
            };
            Ok((staged, facts, contents))
        })
        .await??;
        if let Source::FlistFile { pushed_from, .. } = &mut source {
            *pushed_from = built_from_directory(&facts);
        }
        let (digest, stats) = (staged.digest.clone(), facts.stats);
        crate::gc::Collector::protect(
            &self.lifecycle.fence,
            staged.path().to_owned(),
            digest.format,
            self.limits.clone(),
        )
        .await?;
        self.namespace
            .publish(
                caller.repository.clone(),
                name.clone(),
                staged,
                (facts, contents),
                source,
                (&caller.user, now()),
            )
            .await?;
        metrics::counter!("flisthub_flists_published_total").increment(1);
        if digest.format == Format::Native {
            self.renditions.schedule(&digest.sha256, windows);
        }
        Ok(Published {
            repository: caller.repository.clone(),
            name,
            digest,
            stats,
        })
    }
}

/// The directory an uploaded native flist says `flisthub push` built it from (its `source`
/// metadata), if it says so.
fn built_from_directory(facts: &Facts) -> Option<String> {
    let source: flist::Source = serde_json::from_str(facts.metadata.get("source")?).ok()?;
    (source.kind == "directory").then_some(source.name)
}

/// Sets a job's progress from a pipeline's counters, in 0-hub's words.
fn report(job: &Job, progress: &Progress, size: Option<u64>) {
    let entries = Progress::get(&progress.entries);
    let read = Progress::get(&progress.input_bytes);
    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    let (percent, message) = match size {
        Some(total) if total > 0 => (
            // 100 is for "Image ready !".
            (read.saturating_mul(100) / total).min(99) as u8,
            format!(
                "Building: processing item {entries} ({:.1} of {:.1} MiB read)",
                mib(read),
                mib(total)
            ),
        ),
        _ => (
            0,
            format!(
                "Building: processing item {entries} ({:.1} MiB read)",
                mib(read)
            ),
        ),
    };
    job.progress(percent, message);
}
