//! How long the hub waits for an upload's bytes. Silence is cut after `limits.idle-timeout`;
//! a trickle is cut too: over every `limits.upload-rate-window` of waiting, the client must
//! have sent `limits.upload-min-rate` bytes a second on average. Without the floor, a client
//! sending a byte a minute would hold an upload slot for as long as it liked.
//!
//! Only the time spent waiting for the client counts: while the hub converts or stores what
//! it received, the client is held back by the hub, not slow.

use std::time::{Duration, Instant};

use crate::config::LimitsConfig;
use crate::error::{Error, Result};

pub struct Pace {
    idle: Duration,
    /// Bytes a second; 0: no floor.
    floor: u64,
    window: Duration,
    /// Time spent waiting for the client in the current window, and the bytes it sent.
    waited: Duration,
    received: u64,
    /// Time spent waiting since the client last sent something.
    silent: Duration,
}

impl Pace {
    pub fn new(limits: &LimitsConfig) -> Pace {
        Pace {
            idle: limits.idle_timeout,
            floor: limits.upload_min_rate,
            window: limits.upload_rate_window,
            waited: Duration::ZERO,
            received: 0,
            silent: Duration::ZERO,
        }
    }

    /// Waits for the client's next piece of the body (`read`), within the idle timeout and
    /// the floor. Pass what arrived to [`Pace::received`].
    pub async fn wait<T>(&mut self, read: impl Future<Output = T>) -> Result<T> {
        let mut read = std::pin::pin!(read);
        loop {
            let idle_left = self.idle.saturating_sub(self.silent);
            let window_left = if self.floor > 0 {
                self.window.saturating_sub(self.waited)
            } else {
                Duration::MAX
            };
            let started = Instant::now();
            let outcome = tokio::time::timeout(idle_left.min(window_left), read.as_mut()).await;
            let waited = started.elapsed();
            self.waited += waited;
            self.silent += waited;
            match outcome {
                Ok(value) => return Ok(value),
                Err(_) if idle_left <= window_left => return Err(self.stalled()),
                // The window ended while waiting: judged on what came in it, and if that
                // was enough the wait goes on in a new one.
                Err(_) => self.end_of_window()?,
            }
        }
    }

    /// Counts `bytes` the client sent.
    pub fn received(&mut self, bytes: usize) -> Result<()> {
        if bytes > 0 {
            self.silent = Duration::ZERO;
        }
        self.received = self.received.saturating_add(bytes as u64);
        self.end_of_window()
    }

    /// At the end of a window: too slow, or a new window.
    fn end_of_window(&mut self) -> Result<()> {
        if self.floor == 0 || self.waited < self.window {
            return Ok(());
        }
        let needed = u128::from(self.floor) * self.window.as_millis() / 1000;
        if u128::from(self.received) < needed {
            return Err(Error::Timeout(format!(
                "the upload is too slow: {} bytes in {} of waiting, below the floor of {} bytes/s (limits.upload-min-rate); cut off so that it does not hold an upload slot",
                self.received,
                humantime::format_duration(self.window),
                self.floor
            )));
        }
        self.waited = Duration::ZERO;
        self.received = 0;
        Ok(())
    }

    fn stalled(&self) -> Error {
        Error::Timeout(format!(
            "nothing received for {} (limits.idle-timeout)",
            humantime::format_duration(self.idle)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace(floor: u64, window_ms: u64, idle_ms: u64) -> Pace {
        let mut limits = crate::config::Config::from_toml("").unwrap().limits;
        limits.upload_min_rate = floor;
        limits.upload_rate_window = Duration::from_millis(window_ms);
        limits.idle_timeout = Duration::from_millis(idle_ms);
        Pace::new(&limits)
    }

    #[tokio::test]
    async fn a_trickle_is_cut_at_the_end_of_its_window_and_a_steady_sender_is_not() {
        // 1,000 bytes/s over a 1 s window: 100 bytes every 200 ms is too slow.
        let mut slow = pace(1000, 1000, 60_000);
        let started = Instant::now();
        let error = loop {
            let piece = slow.wait(async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                100
            });
            match piece.await.and_then(|n| slow.received(n)) {
                Ok(()) => assert!(started.elapsed() < Duration::from_secs(3)),
                Err(e) => break e,
            }
        };
        assert!(
            error.to_string().contains("limits.upload-min-rate"),
            "{error}"
        );
        assert!(started.elapsed() >= Duration::from_millis(950));

        // 400 bytes every 200 ms is fast enough, window after window.
        let mut steady = pace(1000, 1000, 60_000);
        for _ in 0..12 {
            let n = steady
                .wait(async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    400
                })
                .await
                .unwrap();
            steady.received(n).unwrap();
        }
    }

    #[tokio::test]
    async fn silence_is_cut_by_the_window_or_the_idle_timeout() {
        let mut pace_with_floor = pace(1000, 300, 60_000);
        let error = pace_with_floor
            .wait(std::future::pending::<()>())
            .await
            .unwrap_err();
        assert!(error.to_string().contains("too slow"), "{error}");

        let mut no_floor = pace(0, 300, 400);
        let error = no_floor
            .wait(std::future::pending::<()>())
            .await
            .unwrap_err();
        assert!(error.to_string().contains("limits.idle-timeout"), "{error}");
    }
}
