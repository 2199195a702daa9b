//! Rate limits and upload slots: what keeps one client from taking the whole hub.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::LimitsConfig;
use crate::error::{Error, Result};

pub struct Limits {
    writes: DefaultKeyedRateLimiter<String>,
    reads: Option<DefaultKeyedRateLimiter<IpAddr>>,
    uploads: Arc<Semaphore>,
    per_identity: Arc<Mutex<HashMap<String, usize>>>,
    max_per_identity: usize,
}

impl Limits {
    pub fn new(config: &LimitsConfig) -> Limits {
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
        {
            let mut counts = self.per_identity.lock().unwrap_or_else(|p| p.into_inner());
            let count = counts.entry(user.to_owned()).or_default();
            if *count >= self.max_per_identity {
                return Err(Error::TooManyRequests {
                    message: format!(
                        "{user} already has {} uploads in progress (limits.uploads-per-identity)",
                        self.max_per_identity
                    ),
                    retry_after: 5,
                });
            }
            *count += 1;
        }
        let held = Counted {
            user: user.to_owned(),
            counts: Arc::clone(&self.per_identity),
        };
        let permit = Arc::clone(&self.uploads)
            .acquire_owned()
            .await
            .map_err(|_| Error::Unavailable("the hub is shutting down".into()))?;
        Ok(UploadSlot {
            _permit: permit,
            _counted: held,
        })
    }

    /// No new upload slots: the hub is stopping.
    pub fn close(&self) {
        self.uploads.close();
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

struct Counted {
    user: String,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.user);
            }
        }
    }
}
