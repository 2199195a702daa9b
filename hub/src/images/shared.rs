//! Conversions shared by the jobs that ask for the same image: one conversion runs, every
//! job that wants it follows it, and the last one to stop wanting it stops it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use converter::Progress;
use tempfile::TempPath;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::Error;

/// The conversions running, by image digest, platform and options.
#[derive(Default)]
pub(super) struct Conversions {
    running: Map,
}

impl Conversions {
    /// The conversion of `key` to follow, and whether it is new (this job leads it): one
    /// queued or running that nobody cancelled, else a new one.
    pub(super) fn join(&self, key: &str) -> (Interest, bool) {
        let mut map = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let (running, leader) = match map.get(key) {
            Some(running) if !running.stop.is_cancelled() => (Arc::clone(running), false),
            _ => {
                let running = Arc::new(Running {
                    progress: Arc::new(Progress::default()),
                    stop: CancellationToken::new(),
                    queued: true.into(),
                    wanted: AtomicUsize::new(0),
                    outcome: watch::channel(None).0,
                });
                map.insert(key.to_owned(), Arc::clone(&running));
                (running, true)
            }
        };
        running.wanted.fetch_add(1, Ordering::AcqRel);
        let interest = Interest {
            running,
            map: Arc::clone(&self.running),
            key: key.to_owned(),
        };
        (interest, leader)
    }
}

/// A conversion, and the jobs waiting for it.
pub(super) struct Running {
    pub(super) progress: Arc<Progress>,
    /// Cancelled when no job wants the outcome any more.
    pub(super) stop: CancellationToken,
    /// Until it has a turn.
    pub(super) queued: AtomicBool,
    /// Jobs that still want the outcome; the last one to stop wanting it cancels it.
    wanted: AtomicUsize,
    pub(super) outcome: watch::Sender<Option<Outcome>>,
}

pub(super) type Outcome = Result<Arc<Built>, Arc<Error>>;

/// An flist built from an image, waiting in a staging file to be copied and published.
pub(super) struct Built {
    pub(super) file: TempPath,
    pub(super) reference: String,
    pub(super) digest: String,
    pub(super) platform: Option<String>,
    pub(super) warnings: Vec<String>,
    /// Its files' window keys, hashed during the conversion (for the renditions).
    pub(super) windows: Arc<converter::FileWindows>,
}

pub(super) type Map = Arc<Mutex<HashMap<String, Arc<Running>>>>;

/// Removes `running` from the map, if it is still the one under `key`.
pub(super) fn forget(map: &mut HashMap<String, Arc<Running>>, key: &str, running: &Arc<Running>) {
    if map.get(key).is_some_and(|r| Arc::ptr_eq(r, running)) {
        map.remove(key);
    }
}

/// A job's interest in a conversion; dropped by the last job, it cancels the conversion
/// and takes it out of the map, so that no later job joins a conversion that is stopping.
/// Counted under the map's lock.
pub(super) struct Interest {
    pub(super) running: Arc<Running>,
    pub(super) map: Map,
    pub(super) key: String,
}

impl Drop for Interest {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if self.running.wanted.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.running.stop.cancel();
            forget(&mut map, &self.key, &self.running);
        }
    }
}

/// Held by a conversion's task: however it ends (even by a panic), it leaves the map, and
/// the jobs that follow it hear an outcome.
pub(super) struct Finish {
    pub(super) running: Arc<Running>,
    pub(super) map: Map,
    pub(super) key: String,
}

impl Drop for Finish {
    fn drop(&mut self) {
        forget(
            &mut self.map.lock().unwrap_or_else(|p| p.into_inner()),
            &self.key,
            &self.running,
        );
        self.running.outcome.send_if_modified(|outcome| {
            if outcome.is_some() {
                return false;
            }
            *outcome = Some(Err(Arc::new(Error::Internal(
                "the conversion stopped without an outcome".into(),
            ))));
            true
        });
    }
}
