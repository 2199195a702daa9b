//! Container images converted into flists, as jobs.
//!
//! A conversion request becomes a job at once (the caller gets its id, or waits for it on
//! 0-hub's route). The job finds the image (its manifest digest) and then either starts a
//! conversion of it or, when one of the same repository, digest and platform is already
//! queued or running, follows that one: one conversion, as many published flists as jobs
//! asked. Conversions wait for a turn (`images.concurrent` run at once; a daemon export
//! waits for its turn before it is made). A conversion stops when every job that wanted it
//! was cancelled, and when the hub stops.
//!
//! The flist is built in a private staging file and each job publishes its own copy, so a
//! failure anywhere publishes nothing.
//!
//! Users name the registries, so pulls run under the hub's egress rule
//! ([`converter::Egress::Guarded`]): public addresses only, unless the registry is one of
//! `images.allowed-registries` or `images.allow-private-networks` is set; redirects to
//! another host for blobs only.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use converter::{Cancel, Credentials, Egress, ImageRequest, ImageSource, Platform, Progress};
use serde::Serialize;
use tempfile::TempPath;
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use crate::auth::Caller;
use crate::config::{ImageSourceConfig, ImagesConfig};
use crate::error::{Error, Result};
use crate::hub::Lifecycle;
use crate::jobs::{Job, Jobs};
use crate::limits::Limits;
use crate::names::{FlistName, quote};
use crate::namespace::Source;
use crate::publish::{Published, Publisher};

mod shared;

use shared::{Built, Conversions, Finish, Interest, Running, forget};

/// How often a job's progress is refreshed.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Longest image reference taken (Docker's own limit on a whole reference is lower).
const IMAGE_LIMIT: usize = 512;

/// What a caller asks for.
#[derive(Debug, Clone)]
pub struct ConvertRequest {
    /// As Docker takes it: `alpine:3.20`, `host:5000/app@sha256:...`.
    pub image: String,
    pub platform: Option<Platform>,
    /// For this request only; else the configured ones for the image's registry.
    pub credentials: Option<Credentials>,
    pub name: FlistName,
}

/// What a job records of its request: never the credentials.
#[derive(Serialize)]
struct Recorded<'a> {
    image: &'a str,
    platform: Option<String>,
    credentials: bool,
}

impl ConvertRequest {
    pub fn recorded(&self) -> serde_json::Value {
        serde_json::to_value(Recorded {
            image: &self.image,
            platform: self.platform.as_ref().map(ToString::to_string),
            credentials: self.credentials.is_some(),
        })
        .unwrap_or_default()
    }
}

/// A published conversion.
pub struct Converted {
    pub published: Published,
    pub reference: String,
    pub digest: String,
    pub platform: Option<String>,
    pub warnings: Vec<String>,
    pub seconds: f64,
    /// Whether this job followed another one's conversion of the same image.
    pub shared: bool,
}

/// Image conversions as jobs: the requests, the conversions shared between them, and the
/// publishing of each job's flist.
pub struct Images {
    config: ImagesConfig,
    publisher: Arc<Publisher>,
    limits: Arc<Limits>,
    jobs: Jobs,
    lifecycle: Lifecycle,
    conversions: Conversions,
}

impl Images {
    pub(crate) fn new(
        config: ImagesConfig,
        publisher: Arc<Publisher>,
        limits: Arc<Limits>,
        jobs: Jobs,
        lifecycle: Lifecycle,
    ) -> Images {
        Images {
            config,
            publisher,
            limits,
            jobs,
            lifecycle,
            conversions: Conversions::default(),
        }
    }

    /// The registry of `image`, refused when the reference cannot be parsed or the
    /// registry is not one of `images.allowed-registries`.
    pub fn image_registry(&self, image: &str) -> Result<String> {
        let registry = converter::registry_of(image)?;
        let allowed = &self.config.allowed_registries;
        if !allowed.is_empty() && !allowed.contains(&registry) {
            return Err(Error::Forbidden(format!(
                "images from {} are not converted here (images.allowed-registries)",
                quote(&registry)
            )));
        }
        Ok(registry)
    }

    /// Checks a request before a job exists: conversions on, a sane reference whose
    /// registry is allowed, a platform, a valid name (by default the one 0-hub gives the
    /// image).
    pub fn request(
        &self,
        image: &str,
        platform: Option<&str>,
        credentials: Option<Credentials>,
        name: Option<&str>,
    ) -> Result<ConvertRequest> {
        if !self.config.enabled {
            return Err(Error::Forbidden(
                "image conversion is switched off on this hub (images.enabled)".into(),
            ));
        }
        let image = image.trim();
        if image.is_empty() {
            return Err(Error::BadRequest("missing docker image name".into()));
        }
        if image.len() > IMAGE_LIMIT || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::BadRequest(format!(
                "{} is not an image reference",
                quote(image)
            )));
        }
        self.image_registry(image)?;
        let platform = platform
            .filter(|p| !p.is_empty())
            .map(str::parse::<Platform>)
            .transpose()?;
        let names = self.publisher.names();
        let name = match name {
            Some(name) => names.flist(name)?,
            None => names.flist(&converter::flist_name(image))?,
        };
        Ok(ConvertRequest {
            image: image.to_owned(),
            platform,
            credentials,
            name,
        })
    }

    /// Starts the conversion job of `request`: its id, and its outcome on the receiver
    /// (dropping it does not stop the job).
    pub async fn start(
        self: &Arc<Self>,
        caller: Caller,
        request: ConvertRequest,
    ) -> Result<(String, oneshot::Receiver<Result<Converted>>)> {
        self.publisher
            .check_room(&caller.user, "image conversion")
            .await?;
        let slot = self.limits.conversion_slot(&caller.user)?;
        let job = self
            .jobs
            .create(
                "docker",
                &caller.user,
                &caller.repository,
                &request.name,
                Some(request.recorded()),
            )
            .await?;
        let id = job.id();
        let (tx, rx) = oneshot::channel();
        let images = Arc::clone(self);
        self.lifecycle.tasks.spawn(async move {
            let _slot = slot;
            if let Err(e) = job.start_with("Initializing docker converter").await {
                tracing::error!(error = %e, "recording a job start");
            }
            let outcome = images.convert_image(&caller, request, &job).await;
            let recorded = match &outcome {
                Ok(converted) => {
                    tracing::info!(
                        image = %converted.reference,
                        digest = %converted.digest,
                        name = %converted.published.name,
                        shared = converted.shared,
                        "image converted"
                    );
                    job.succeed(serde_json::json!({
                        "status": "success",
                        "file": converted.published.name,
                        "flist": converted.published.stats,
                        "image": converted.reference,
                        "digest": converted.digest,
                        "platform": converted.platform,
                        "warnings": converted.warnings,
                        "shared": converted.shared,
                        "timing": {"seconds": converted.seconds},
                    }))
                    .await
                }
                Err(Error::Cancelled(why)) => job.cancel(why.clone()).await,
                Err(e) => {
                    tracing::info!(error = %e, "image conversion failed");
                    job.fail(e.client_message()).await
                }
            };
            if let Err(e) = recorded {
                tracing::error!(error = %e, "recording a job outcome");
            }
            let _ = tx.send(outcome);
        });
        Ok((id, rx))
    }

    /// The converter's request for `request`: the hub's source, platform default,
    /// registries and credentials.
    fn image_request(&self, request: &ConvertRequest) -> Result<ImageRequest> {
        let images = &self.config;
        let registry = self.image_registry(&request.image)?;
        let credentials = match &request.credentials {
            Some(c) => Some(c.clone()),
            None => images
                .credentials
                .get(&registry)
                .map(|c| c.load())
                .transpose()?,
        };
        let platform = match &request.platform {
            Some(p) => p.clone(),
            None => images
                .default_platform
                .parse()
                .map_err(|e| Error::Config(format!("images.default-platform: {e}")))?,
        };
        Ok(ImageRequest {
            image: request.image.clone(),
            platform: Some(platform),
            credentials,
            source: match images.source {
                ImageSourceConfig::Registry => ImageSource::Registry,
                ImageSourceConfig::Daemon => ImageSource::Daemon {
                    pull: images.daemon_pull,
                },
            },
            insecure_registries: images.insecure_registries.clone(),
            // Users name the registries: the hub reaches public addresses only, but for a
            // registry the operator listed, or on a hub told to reach private networks.
            egress: Egress::Guarded {
                private_networks: images.allow_private_networks,
                trusted_registry: images.allowed_registries.contains(&registry),
            },
            startup_toml: images.startup_toml,
            timeout: images.registry_timeout,
            spool: self.publisher.staging_dir().to_owned(),
        })
    }

    /// Runs conversion job `job` for `caller`: finds the image, converts it (or follows the
    /// conversion of it already under way) and publishes the flist.
    async fn convert_image(
        &self,
        caller: &Caller,
        request: ConvertRequest,
        job: &Job,
    ) -> Result<Converted> {
        let started = Instant::now();
        let _operation = self.lifecycle.fence.operation();
        let image_request = self.image_request(&request)?;
        job.phase(10, format!("Pulling docker image: {}", request.image))
            .await;
        // A daemon export is the heavy part: it waits for its turn.
        let permit = match image_request.source {
            ImageSource::Daemon { .. } => Some(self.turn(job).await?),
            ImageSource::Registry => None,
        };
        let opened = self
            .until_cancelled(job, converter::open_image(&image_request))
            .await??;
        // The same content from the same repository (a registry serving another's digest
        // must not stall or fail conversions from the real one), for the same platform.
        let key = format!(
            "{} {} {} {}",
            converter::repository_of(&request.image)?,
            opened.digest,
            opened
                .platform
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            image_request.startup_toml
        );
        // Made before joining: nothing can fail between becoming the leader and starting.
        let staging = self.publisher.staging_file("image-")?;
        let (interest, leader) = self.conversions.join(&key);
        if leader {
            self.spawn_conversion(&interest, opened, permit, (staging, caller.user.as_str()));
        } else {
            // A follower neither converts nor holds a turn.
            drop((opened, permit, staging));
        }
        let built = self.follow(job, &interest).await?;
        // Cancelled while the flist was being built for others: not published.
        if job.cancelled().is_cancelled() {
            return Err(cancelled());
        }
        let published = self.publish_copy(caller, request.name, &built).await?;
        Ok(Converted {
            published,
            reference: built.reference.clone(),
            digest: built.digest.clone(),
            platform: built.platform.clone(),
            warnings: built.warnings.clone(),
            seconds: started.elapsed().as_secs_f64(),
            shared: !leader,
        })
    }

    /// Waits for a turn to convert, unless the job is cancelled first.
    async fn turn(&self, job: &Job) -> Result<OwnedSemaphorePermit> {
        if let Some(permit) = self.limits.try_conversion_permit() {
            return Ok(permit);
        }
        job.phase(10, "Waiting for a free converter".into()).await;
        self.until_cancelled(job, self.limits.conversion_permit())
            .await?
    }

    /// Converts `opened` in the background (after waiting for a turn, unless it has one)
    /// and tells the outcome to the jobs that follow `running`. What it stores new is
    /// charged to the quota of `identity`, whose request started it.
    fn spawn_conversion(
        &self,
        interest: &Interest,
        opened: converter::OpenedImage,
        permit: Option<OwnedSemaphorePermit>,
        (staging, identity): (TempPath, &str),
    ) {
        let cancel = Cancel::default();
        let options = converter::PackOptions {
            import_readme: true,
            ..self.publisher.pack_options(cancel.clone())
        };
        let (store, charge) = self.publisher.store_for(identity);
        let shutdown = self.lifecycle.shutdown.clone();
        let limits = Arc::clone(&self.limits);
        let running = Arc::clone(&interest.running);
        let finish = Finish {
            running: Arc::clone(&running),
            map: Arc::clone(&interest.map),
            key: interest.key.clone(),
        };
        self.lifecycle.tasks.spawn(async move {
            let stop = running.stop.clone();
            let result = async {
                let _permit = match permit {
                    Some(permit) => permit,
                    None => tokio::select! {
                        permit = limits.conversion_permit() => permit?,
                        _ = stop.cancelled() => return Err(cancelled()),
                        _ = shutdown.cancelled() => return Err(Error::Unavailable("the hub is stopping".into())),
                    },
                };
                running.queued.store(false, Ordering::Release);
                let pack = opened.pack(
                    staging.to_path_buf(),
                    store,
                    options,
                    Arc::clone(&running.progress),
                );
                tokio::pin!(pack);
                let summary = tokio::select! {
                    result = &mut pack => result,
                    _ = async { tokio::select! { _ = stop.cancelled() => {}, _ = shutdown.cancelled() => {} } } => {
                        cancel.cancel();
                        (&mut pack).await
                    }
                }
                .map_err(|e| charge.explain(Error::from(e)))?;
                Ok(Arc::new(Built {
                    file: staging,
                    reference: summary.reference,
                    digest: summary.digest,
                    platform: summary.platform.map(|p| p.to_string()),
                    warnings: summary.warnings,
                    windows: Arc::new(summary.pack.windows),
                }))
            }
            .await;
            // Forgotten before the outcome is told: a request from now on converts anew.
            forget(
                &mut finish.map.lock().unwrap_or_else(|p| p.into_inner()),
                &finish.key,
                &running,
            );
            running.outcome.send_replace(Some(result.map_err(Arc::new)));
            drop(finish);
        });
    }

    /// Waits for the outcome of the conversion `interest` names, reporting its progress
    /// on `job`; gives up when the job is cancelled (and, with the last interest, the
    /// conversion stops).
    async fn follow(&self, job: &Job, interest: &Interest) -> Result<Arc<Built>> {
        let running = &interest.running;
        let mut outcome = running.outcome.subscribe();
        let mut ticker = tokio::time::interval(PROGRESS_EVERY);
        loop {
            if let Some(outcome) = outcome.borrow_and_update().clone() {
                return outcome.map_err(Error::Shared);
            }
            tokio::select! {
                // Never closed: the follower holds the sender (`Running`), and the
                // conversion's `Finish` guard always sends an outcome.
                _ = outcome.changed() => {}
                _ = ticker.tick() => report(job, running),
                _ = job.cancelled().cancelled() => return Err(cancelled()),
            }
        }
    }

    /// Publishes a copy of a built flist as `name` in the caller's repository.
    async fn publish_copy(
        &self,
        caller: &Caller,
        name: FlistName,
        built: &Built,
    ) -> Result<Published> {
        let staging = self.publisher.staging_file("image-")?;
        let (from, to) = (built.file.to_path_buf(), staging.to_path_buf());
        tokio::task::spawn_blocking(move || std::fs::copy(&from, &to))
            .await?
            .map_err(|e| Error::io(staging.display(), e))?;
        let windows = Some(Arc::clone(&built.windows));
        let source = Source::Image {
            reference: built.reference.clone(),
            digest: built.digest.clone(),
        };
        self.publisher
            .publish_file(caller, name, staging, source, windows)
            .await
    }

    /// Runs `work` unless job `job` is cancelled first.
    async fn until_cancelled<T>(&self, job: &Job, work: impl Future<Output = T>) -> Result<T> {
        tokio::select! {
            done = work => Ok(done),
            _ = job.cancelled().cancelled() => Err(cancelled()),
        }
    }
}

fn cancelled() -> Error {
    Error::Cancelled("cancelled by its owner".into())
}

/// Sets a job's progress from the conversion's counters, in 0-hub's words: the layers
/// read take it from 10 to 95 (100 is for "Image ready !").
fn report(job: &Job, running: &Running) {
    if running.queued.load(Ordering::Acquire) {
        job.progress(10, "Waiting for a free converter".into());
        return;
    }
    let progress = &running.progress;
    let read = Progress::get(&progress.input_bytes);
    let total = Progress::get(&progress.input_total);
    let layers = Progress::get(&progress.layers);
    if layers == 0 {
        return;
    }
    let mb = |bytes: u64| bytes as f64 / 1e6;
    let percent = 10 + (read.saturating_mul(85) / total.max(1)).min(85) as u8;
    job.progress(
        percent,
        format!(
            "Extracting layer {} / {layers} [{:.1} MB / {:.1} MB]",
            Progress::get(&progress.layer),
            mb(read),
            mb(total)
        ),
    );
}
