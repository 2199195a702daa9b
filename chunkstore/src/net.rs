//! Connections to RESP servers (0-db, Redis, Valkey), shared by the network stores.
//!
//! A [`Pool`] holds a bounded number of multiplexed connections to one server (each one
//! pipelines whatever requests are sent on it), opens them lazily, runs a store-specific
//! handshake on every new connection (0-db's `SELECT <namespace>`), and puts a timeout on
//! every request. A connection that fails at the transport level is dropped; the request is
//! retried once on a fresh connection (every store request is idempotent: existence checks,
//! reads, and writes of content-addressed values); when the server cannot be reached, the
//! pool backs off exponentially and, until the next attempt is due, fails requests at once
//! with [`Error::Unavailable`] instead of letting them wait for a timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError, Value};
use tokio::sync::Semaphore;

use crate::error::{Error, Refusal, Result};
use crate::layout::Entry;

/// Connection settings of a network store (URL parameters `timeout`, `connect-timeout`,
/// `pool`, `in-flight`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetOptions {
    /// Longest wait for the reply to one request (a pipeline counts as one).
    pub timeout: Duration,
    /// Longest wait to open a connection and complete its handshake.
    pub connect_timeout: Duration,
    /// Connections per server.
    pub pool: usize,
    /// Bytes being moved to or from one server at once (a read is counted at the average
    /// chunk size per key, its real size being known only once it arrived).
    pub in_flight: usize,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            pool: 4,
            in_flight: 32 << 20,
        }
    }
}

/// Delay before reconnecting after the first failure; doubled on each further failure.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// Commands run on every new connection before it is used.
pub(crate) type Handshake =
    Box<dyn Fn(MultiplexedConnection) -> BoxFuture<Result<(), RedisError>> + Send + Sync>;

pub(crate) struct Pool {
    location: String,
    client: redis::Client,
    config: AsyncConnectionConfig,
    handshake: Option<Handshake>,
    options: NetOptions,
    /// Each slot's connection with the number it was opened under.
    slots: Vec<tokio::sync::Mutex<Option<(u64, MultiplexedConnection)>>>,
    next: AtomicUsize,
    opened: AtomicU64,
    health: Mutex<Health>,
    in_flight: Semaphore,
}

#[derive(Default)]
struct Health {
    failures: u32,
    retry_at: Option<Instant>,
    last_error: String,
}

impl Pool {
    /// `client` must be configured without a database number or password that the server
    /// would not understand (0-db); the handshake does the rest.
    pub(crate) fn new(
        location: String,
        client: redis::Client,
        handshake: Option<Handshake>,
        options: NetOptions,
    ) -> Pool {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.timeout));
        Pool {
            location,
            client,
            config,
            handshake,
            options,
            slots: (0..options.pool.max(1))
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
            next: AtomicUsize::new(0),
            opened: AtomicU64::new(0),
            health: Mutex::new(Health::default()),
            in_flight: Semaphore::new(options.in_flight),
        }
    }

    pub(crate) fn location(&self) -> &str {
        &self.location
    }

    #[cfg(feature = "redis")]
    pub(crate) fn options(&self) -> &NetOptions {
        &self.options
    }

    /// Runs `request` on a pooled connection, holding `bytes` of the in-flight budget.
    /// Everything, including a reconnection, happens within one connect timeout plus one
    /// request timeout.
    pub(crate) async fn run<T, F, Fut>(&self, bytes: usize, request: F) -> Result<T>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let budget = bytes.clamp(1, self.options.in_flight) as u32;
        let _permit = self
            .in_flight
            .acquire_many(budget)
            .await
            .map_err(|_| self.unavailable("the connection pool is closed"))?;
        let deadline = self.options.connect_timeout + self.options.timeout;
        match tokio::time::timeout(deadline, self.attempt(request)).await {
            Ok(result) => result,
            Err(_) => Err(self.failed(&format!("no reply within {deadline:?}"))),
        }
    }

    /// Writes entries in pipelines of at most `SET_PIPELINE_BYTES` of values, `pool` of
    /// them at once; `write` sends one group.
    pub(crate) async fn write_groups<F, Fut>(&self, entries: &[Entry], write: F) -> Result<()>
    where
        F: Fn(Vec<Entry>) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        // Owned groups: a stream of borrowed ones trips the compiler's Send inference.
        let groups: Vec<Vec<Entry>> = by_bytes(entries, SET_PIPELINE_BYTES)
            .into_iter()
            .map(<[Entry]>::to_vec)
            .collect();
        stream::iter(groups)
            .map(write)
            .buffer_unordered(self.options.pool)
            .try_collect::<()>()
            .await
    }

    /// Which of `keys` (as stored) the server holds: `EXISTS` one key per command, as 0-db
    /// requires, pipelined.
    pub(crate) async fn exists_many(&self, keys: &[Vec<u8>]) -> Result<Vec<bool>> {
        let mut found = Vec::with_capacity(keys.len());
        for group in keys.chunks(EXISTS_PIPELINE) {
            let counts: Vec<i64> = self
                .run(group.len() * 64, |mut conn| {
                    let mut pipe = redis::pipe();
                    for key in group {
                        pipe.cmd("EXISTS").arg(key);
                    }
                    async move { pipe.query_async(&mut conn).await }
                })
                .await?;
            if counts.len() != group.len() {
                return Err(self.protocol(format!(
                    "{} replies to {} EXISTS",
                    counts.len(),
                    group.len()
                )));
            }
            found.extend(counts.into_iter().map(|n| n > 0));
        }
        Ok(found)
    }

    /// The values of `keys` (as stored): `MGET`s of `READ_GROUP` keys, `pool` of them at
    /// once, in order.
    pub(crate) async fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Bytes>>> {
        // Owned groups: a stream of borrowed ones trips the compiler's Send inference.
        let groups: Vec<Vec<Vec<u8>>> = keys.chunks(READ_GROUP).map(<[_]>::to_vec).collect();
        let found: Vec<Vec<Option<Bytes>>> = stream::iter(groups)
            .map(|group| async move { self.mget(&group).await })
            .buffered(self.options.pool)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn mget(&self, group: &[Vec<u8>]) -> Result<Vec<Option<Bytes>>> {
        let values: Vec<Value> = self
            .run(read_budget(group.len()), |mut conn| {
                let mut mget = redis::cmd("MGET");
                for key in group {
                    mget.arg(key);
                }
                async move { mget.query_async(&mut conn).await }
            })
            .await?;
        if values.len() != group.len() {
            return Err(self.protocol(format!(
                "MGET of {} keys answered {} values",
                group.len(),
                values.len()
            )));
        }
        values
            .into_iter()
            .map(|value| match value {
                Value::Nil => Ok(None),
                Value::BulkString(bytes) => Ok(Some(Bytes::from(bytes))),
                other => Err(self.protocol(format!("MGET answered {other:?}"))),
            })
            .collect()
    }

    async fn attempt<T, F, Fut>(&self, request: F) -> Result<T>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut retried = false;
        loop {
            let (conn, generation, fresh) = self.connection(slot).await?;
            match tokio::time::timeout(self.options.timeout, request(conn)).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) if !is_transport(&e) => return Err(self.refused(&e)),
                Ok(Err(e)) => {
                    self.drop_connection(slot, generation).await;
                    // A connection that broke since it was last used (the server restarted,
                    // an idle timeout) deserves one fresh attempt.
                    if !fresh && !retried {
                        retried = true;
                        continue;
                    }
                    return Err(self.failed(&e.to_string()));
                }
                Err(_) => {
                    // Replies may still come for what was sent: the connection cannot be
                    // trusted to stay in step, so it goes.
                    self.drop_connection(slot, generation).await;
                    return Err(self.failed(&format!("no reply within {:?}", self.options.timeout)));
                }
            }
        }
    }

    /// The connection in `slot` with its generation, opened (and handshaken) if needed;
    /// `true` if just opened.
    async fn connection(&self, slot: usize) -> Result<(MultiplexedConnection, u64, bool)> {
        let mut guard = self.slots[slot].lock().await;
        if let Some((generation, conn)) = guard.as_ref() {
            return Ok((conn.clone(), *generation, false));
        }
        self.check_backoff()?;
        let opened = tokio::time::timeout(self.options.connect_timeout, async {
            let conn = self
                .client
                .get_multiplexed_async_connection_with_config(&self.config)
                .await?;
            if let Some(handshake) = &self.handshake {
                handshake(conn.clone()).await?;
            }
            Ok::<_, RedisError>(conn)
        })
        .await;
        match opened {
            Ok(Ok(conn)) => {
                self.succeeded();
                let generation = self.opened.fetch_add(1, Ordering::Relaxed);
                *guard = Some((generation, conn.clone()));
                Ok((conn, generation, true))
            }
            Ok(Err(e)) if !is_transport(&e) => Err(self.handshake_refused(&e)),
            Ok(Err(e)) => Err(self.failed(&format!("connecting: {e}"))),
            Err(_) => Err(self.failed(&format!(
                "connecting took longer than {:?}",
                self.options.connect_timeout
            ))),
        }
    }

    /// Forgets the connection in `slot` if it is still the one of `generation` (another
    /// request may have replaced it with a healthy one meanwhile).
    async fn drop_connection(&self, slot: usize, generation: u64) {
        let mut guard = self.slots[slot].lock().await;
        if guard.as_ref().is_some_and(|(g, _)| *g == generation) {
            *guard = None;
        }
    }

    fn check_backoff(&self) -> Result<()> {
        let health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        match health.retry_at {
            Some(at) if at > Instant::now() => Err(self.unavailable(&format!(
                "{} (next attempt in {:?})",
                health.last_error,
                at - Instant::now()
            ))),
            _ => Ok(()),
        }
    }

    fn succeeded(&self) {
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        *health = Health::default();
    }

    /// Records a failure, schedules the next connection attempt, and returns the error.
    fn failed(&self, reason: &str) -> Error {
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        let delay = BACKOFF_MIN
            .saturating_mul(1 << health.failures.min(16))
            .min(BACKOFF_MAX);
        health.failures += 1;
        health.retry_at = Some(Instant::now() + delay);
        health.last_error = reason.to_owned();
        tracing::warn!(backend = %self.location, %reason, retry_in = ?delay, "backend failed");
        self.unavailable(reason)
    }

    fn unavailable(&self, reason: &str) -> Error {
        Error::Unavailable {
            location: self.location.clone(),
            reason: reason.to_owned(),
        }
    }

    /// The server answered the connection's set-up (`AUTH`, `SELECT`) with a refusal. A
    /// namespace that is not there is an outage (retried after a pause); refused
    /// credentials are final: the request fails at once, with no pause scheduled for the
    /// others, and the error and the log say what was refused.
    fn handshake_refused(&self, e: &RedisError) -> Error {
        let text = server_text(e);
        match classify(&text) {
            Classified::Unavailable => self.failed(&text),
            Classified::Refused(kind) => {
                tracing::warn!(backend = %self.location, refusal = %text, "the backend refused the connection's credentials; not retried");
                Error::Refused {
                    location: self.location.clone(),
                    kind,
                    message: format!(
                        "{text} (at connection set-up: the credentials or namespace were refused; not retried)"
                    ),
                }
            }
        }
    }

    /// Maps an error reply of the server to a typed error.
    pub(crate) fn refused(&self, e: &RedisError) -> Error {
        let text = server_text(e);
        match classify(&text) {
            Classified::Unavailable => self.unavailable(&text),
            Classified::Refused(kind) => Error::Refused {
                location: self.location.clone(),
                kind,
                message: text,
            },
        }
    }

    pub(crate) fn protocol(&self, message: impl Into<String>) -> Error {
        Error::Protocol {
            location: self.location.clone(),
            message: message.into(),
        }
    }
}

/// Value bytes per pipeline of writes.
const SET_PIPELINE_BYTES: usize = 8 << 20;

/// Keys per read request (`MGET`): well under 0-db's limit of 1023, and few enough that a
/// reply stays a few tens of MiB with large chunks.
pub(crate) const READ_GROUP: usize = 64;

/// Commands per pipeline of existence checks.
const EXISTS_PIPELINE: usize = 10_000;

/// What a read of `keys` keys is charged against the in-flight budget: the sizes are not
/// known before the reply, so the average chunk size stands in for them.
pub(crate) fn read_budget(keys: usize) -> usize {
    keys * (512 << 10)
}

/// Groups entries so that each group's values add up to at most `limit` bytes.
pub(crate) fn by_bytes(entries: &[Entry], limit: usize) -> Vec<&[Entry]> {
    let mut groups = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, (_, value)) in entries.iter().enumerate() {
        if i > start && bytes + value.len() > limit {
            groups.push(&entries[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += value.len();
    }
    if start < entries.len() {
        groups.push(&entries[start..]);
    }
    groups
}

/// Whether the error is about the connection (as opposed to an answer from the server).
fn is_transport(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

/// The error reply as the server wrote it. redis-rs splits it into a code (the first word)
/// and a detail; 0-db's replies have no code word ("-Key not found"), so join them again.
pub(crate) fn server_text(e: &RedisError) -> String {
    let join = |code: &str, detail: Option<&str>| match detail {
        Some(detail) => format!("{code} {detail}"),
        None => code.to_owned(),
    };
    // In a pipeline, the first command that failed speaks for the pipeline.
    if let Some(items) = e.clone().into_server_errors()
        && let Some((_, first)) = items.first()
    {
        return join(first.code(), first.details());
    }
    match e.code() {
        Some(code) => join(code, e.detail()),
        None => e.to_string(),
    }
}

pub(crate) enum Classified {
    Unavailable,
    Refused(Refusal),
}

/// Sorts an error reply of 0-db or Redis by its text (0-db has no error codes).
pub(crate) fn classify(text: &str) -> Classified {
    let has = |needle: &str| text.contains(needle);
    // A namespace that is gone (deleted under us, or not there at all) is an outage of
    // this backend, not a refusal of one request.
    if has("active namespace is not available")
        || has("Namespace not found")
        || text.starts_with("LOADING")
        || text.starts_with("CLUSTERDOWN")
        || text.starts_with("MASTERDOWN")
        || text.starts_with("TRYAGAIN")
    {
        return Classified::Unavailable;
    }
    Classified::Refused(if has("temporarily locked") || has("temporarily frozen") {
        Refusal::Locked
    } else if has("read-only") || has("worm mode") || text.starts_with("READONLY") {
        Refusal::ReadOnly
    } else if has("No space left") || text.starts_with("OOM") {
        Refusal::Full
    } else if has("Permission denied")
        || has("Access denied")
        || has("protected and private")
        || text.starts_with("NOAUTH")
        || text.starts_with("WRONGPASS")
        || text.starts_with("NOPERM")
    {
        Refusal::PermissionDenied
    } else {
        Refusal::Other
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::EncodedChunk;
    use crate::layout::chunk_entries;

    fn kind(text: &str) -> Option<Refusal> {
        match classify(text) {
            Classified::Refused(kind) => Some(kind),
            Classified::Unavailable => None,
        }
    }

    #[test]
    fn error_replies_of_both_dialects() {
        for (text, expected) in [
            ("Namespace is in read-only mode", Some(Refusal::ReadOnly)),
            (
                "Namespace is protected by worm mode",
                Some(Refusal::ReadOnly),
            ),
            (
                "READONLY You can't write against a read only replica.",
                Some(Refusal::ReadOnly),
            ),
            ("No space left on this namespace", Some(Refusal::Full)),
            (
                "OOM command not allowed when used memory > 'maxmemory'.",
                Some(Refusal::Full),
            ),
            (
                "Namespace is temporarily locked (read-only)",
                Some(Refusal::Locked),
            ),
            (
                "Namespace is temporarily frozen (read-write disabled)",
                Some(Refusal::Locked),
            ),
            ("Permission denied", Some(Refusal::PermissionDenied)),
            ("Access denied", Some(Refusal::PermissionDenied)),
            (
                "Namespace protected and private",
                Some(Refusal::PermissionDenied),
            ),
            (
                "NOAUTH Authentication required.",
                Some(Refusal::PermissionDenied),
            ),
            (
                "WRONGPASS invalid username-password pair",
                Some(Refusal::PermissionDenied),
            ),
            (
                "Your active namespace is not available anymore (probably removed).",
                None,
            ),
            ("LOADING Redis is loading the dataset in memory", None),
            ("Namespace not found", None),
            ("Unexpected arguments", Some(Refusal::Other)),
        ] {
            assert_eq!(kind(text), expected, "{text}");
        }
    }

    #[test]
    fn groups_by_bytes_keep_order_and_bounds() {
        let mut codec = crate::Codec::new(1).unwrap();
        // Incompressible, so each stored chunk is a bit over 1000 bytes.
        let mut state = 1u64;
        let mut noise = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    (state >> 56) as u8
                })
                .collect()
        };
        let chunks: Vec<EncodedChunk> = (0..10)
            .map(|i| codec.encode(&crate::Chunk::new(noise(1000 + i))).unwrap())
            .collect();
        let entries = chunk_entries(b"", &chunks);
        let groups = by_bytes(&entries, 100);
        assert_eq!(
            groups.len(),
            10,
            "each chunk alone when one exceeds the limit"
        );
        let groups = by_bytes(&entries, 10_000);
        assert!(
            groups
                .iter()
                .all(|g| g.iter().map(|(_, v)| v.len()).sum::<usize>() <= 10_000)
        );
        assert_eq!(groups.concat(), entries);
        assert!(by_bytes(&[], 10).is_empty());
    }
}
