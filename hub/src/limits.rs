//! Rate limits and upload slots: what keeps one client from taking the whole hub.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{ChunksConfig, ImagesConfig, LimitsConfig};
use crate::error::{Error, Result};

pub struct Limits {
    writes: DefaultKeyedRateLimiter<String>,
    reads: Option<DefaultKeyedRateLimiter<IpAddr>>,
    uploads: Arc<Semaphore>,
    per_identity: Counts<String>,
    max_per_identity: usize,
    chunk_uploads: Counts<String>,
    max_chunk_uploads: usize,
    /// Batched chunk reads in flight: each holds up to a batch of chunks in memory.
    chunk_reads: Arc<Semaphore>,
    /// Image conversions running, and queued or running per identity.
    conversions: Arc<Semaphore>,
    conversions_per_identity: Counts<String>,
    max_conversions_per_identity: usize,
}

impl Limits {
    pub fn new(config: &LimitsConfig, chunks: &ChunksConfig, images: &ImagesConfig) -> Limits {
        let quota = |rate: u32, burst: u32| {
            let rate = NonZeroU32::new(rate)?;
            Some(Quota::per_second(rate).allow_burst(NonZeroU32::new(burst).unwrap_or(rate)))
        };
        Limits {
            // The configuration check guarantees a write rate of at least 1.
            writes: RateLimiter::keyed(
                quota(config.write_rate, config.write_burst)
                    .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)),
            ),
            reads: quota(config.read_rate, config.read_burst).map(RateLimiter::keyed),
            uploads: Arc::new(Semaphore::new(config.concurrent_uploads)),
            per_identity: Arc::default(),
            max_per_identity: config.uploads_per_identity,
            chunk_uploads: Arc::default(),
            max_chunk_uploads: chunks.uploads_per_identity,
            chunk_reads: Arc::new(Semaphore::new(chunks.concurrent_reads)),
            conversions: Arc::new(Semaphore::new(images.concurrent)),
            conversions_per_identity: Arc::default(),
            max_conversions_per_identity: images.per_identity,
        }
    }

    /// Counts a write request of `user`.
    pub fn check_write(&self, user: &str) -> Result<()> {
        self.writes
            .check_key(&user.to_owned())
            .map_err(|not_until| {
                too_many(
                    "write requests",
                    not_until.wait_time_from(DefaultClock::default().now()),
                )
            })
    }

    /// Counts a request from `address`.
    pub fn check_read(&self, address: IpAddr) -> Result<()> {
        match &self.reads {
            Some(reads) => reads.check_key(&address).map_err(|not_until| {
                too_many(
                    "requests",
                    not_until.wait_time_from(DefaultClock::default().now()),
                )
            }),
            None => Ok(()),
        }
    }

    /// Takes an upload slot for `user`: refused (429) beyond the per-identity limit, and
    /// waits for a free hub-wide slot.
    pub async fn upload_slot(&self, user: &str) -> Result<UploadSlot> {
        let held = identity_slot(
            &self.per_identity,
            user,
            self.max_per_identity,
            "uploads (limits.uploads-per-identity)",
        )?;
        let permit = Arc::clone(&self.uploads)
            .acquire_owned()
            .await
            .map_err(|_| Error::Unavailable("the hub is shutting down".into()))?;
        Ok(UploadSlot {
            _permit: permit,
            _counted: held,
        })
    }

    /// A place for one chunk upload request of `user`: refused (429) beyond
    /// `chunks.uploads-per-identity` at once, and when the hub is stopping.
    pub fn chunk_upload_slot(&self, user: &str) -> Result<ChunkUploadSlot> {
        if self.uploads.is_closed() {
            return Err(Error::Unavailable("the hub is shutting down".into()));
        }
        identity_slot(
            &self.chunk_uploads,
            user,
            self.max_chunk_uploads,
            "chunk uploads (chunks.uploads-per-identity)",
        )
        .map(|counted| ChunkUploadSlot { _counted: counted })
    }

    /// A place for one batch of a chunk read: waits while `chunks.concurrent-reads` are
    /// in flight, which bounds the memory reads hold.
    pub async fn chunk_read_slot(&self) -> Result<OwnedSemaphorePermit> {
        Arc::clone(&self.chunk_reads)
            .acquire_owned()
            .await
            .map_err(|_| Error::Unavailable("the hub is shutting down".into()))
    }

    /// A place for one image conversion of `user`, queued or running: refused (429)
    /// beyond `images.per-identity`. The conversion itself waits for [`Self::conversion_permit`].
    pub fn conversion_slot(&self, user: &str) -> Result<ConversionSlot> {
        if self.conversions.is_closed() {
            return Err(Error::Unavailable("the hub is shutting down".into()));
        }
        identity_slot(
            &self.conversions_per_identity,
            user,
            self.max_conversions_per_identity,
            "image conversions (images.per-identity)",
        )
        .map(|counted| ConversionSlot { _counted: counted })
    }

    /// A turn to run a conversion: waits while `images.concurrent` run; `None` at once if
    /// the wait would be a wait (so the job can say it is queued), then wait with
    /// [`Self::conversion_permit`].
    pub fn try_conversion_permit(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.conversions).try_acquire_owned().ok()
    }

    pub async fn conversion_permit(&self) -> Result<OwnedSemaphorePermit> {
        Arc::clone(&self.conversions)
            .acquire_owned()
            .await
            .map_err(|_| Error::Unavailable("the hub is shutting down".into()))
    }

    /// No new upload slots or conversions: the hub is stopping.
    pub fn close(&self) {
        self.uploads.close();
        self.conversions.close();
    }

    /// Forgets rate-limit state of clients that have been quiet, to bound memory.
    pub fn forget_idle(&self) {
        self.writes.retain_recent();
        self.writes.shrink_to_fit();
        if let Some(reads) = &self.reads {
            reads.retain_recent();
            reads.shrink_to_fit();
        }
    }
}

fn too_many(what: &str, wait: std::time::Duration) -> Error {
    let retry_after = wait.as_secs() + 1;
    Error::TooManyRequests {
        message: format!("too many {what}; retry in {retry_after} s"),
        retry_after,
    }
}

/// A running upload's place in the limits; released when dropped.
pub struct UploadSlot {
    _permit: OwnedSemaphorePermit,
    _counted: Counted,
}

/// A chunk upload request's place in the limits; released when dropped.
pub struct ChunkUploadSlot {
    _counted: Counted,
}

/// An image conversion's place in its identity's limit; released when dropped.
pub struct ConversionSlot {
    _counted: Counted,
}

/// How many of something each key (an identity, a client address) holds.
pub(crate) type Counts<K> = Arc<Mutex<HashMap<K, usize>>>;

/// One of `key`'s places in `counts`; given back when dropped.
pub(crate) struct Counted<K: Hash + Eq + Clone = String> {
    key: K,
    counts: Counts<K>,
}

impl<K: Hash + Eq + Clone> Counted<K> {
    /// Counts one more for `key`; `None` if it already holds `max`.
    pub(crate) fn take(counts: &Counts<K>, key: &K, max: usize) -> Option<Counted<K>> {
        let mut map = counts.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(key).copied().unwrap_or(0) >= max {
            return None;
        }
        *map.entry(key.clone()).or_default() += 1;
        Some(Counted {
            key: key.clone(),
            counts: Arc::clone(counts),
        })
    }
}

impl<K: Hash + Eq + Clone> Drop for Counted<K> {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// One more of `user`'s requests in `counts`, or 429 past `max`.
fn identity_slot(counts: &Counts<String>, user: &str, max: usize, what: &str) -> Result<Counted> {
    Counted::take(counts, &user.to_owned(), max).ok_or_else(|| Error::TooManyRequests {
        message: format!("{user} already has {max} {what} in progress"),
        retry_after: 5,
    })
}
