//! Each identity's storage quota (`chunks.quota`, `chunks.quotas`): one count per identity
//! (`chunk_usage`) of the bytes it made the hub store, whatever way they came in:
//!
//! chunks and blocks new to the store, at their stored size, sent through the chunk API
//! (`flisthub push`, other clients), the 0-db gateway, or packed by the hub from a tarball
//! upload or an image conversion (the pack asks which chunks the store lacks and writes
//! only those, so only new bytes count). An uploaded flist (`upload-flist`, the end of a
//! push) adds no chunks (they were counted when pushed), and is refused, like every upload
//! and conversion, when its identity has no room left.
//!
//! A write that would take the count past the quota is refused whole, before it is made,
//! with 507 Insufficient Storage: the request is acceptable in itself (413 would say the
//! request is too large, and sending it again smaller would not help), what is lacking is
//! room the identity may still take. An identity already at its quota is refused before
//! the body of an upload or a conversion is read.
//!
//! The count never goes down by itself: deleting flists frees chunks only once the
//! collector removes them, and it cannot tell who sent a chunk shared with others.

use std::sync::Mutex;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::config::ChunksConfig;
use crate::db::{Db, now};
use crate::error::{Error, Result};

/// What an identity made the hub store.
#[derive(Debug, Default, Serialize)]
pub struct Usage {
    pub identity: String,
    /// Chunks and blocks it stored that the store did not have.
    pub chunks: u64,
    /// Their stored bytes: what the quota is checked against.
    pub bytes: u64,
    /// Bytes of chunks it sent through the chunk API, stored or not.
    pub received: u64,
    /// Its quota in bytes, if it has one.
    pub quota: Option<u64>,
}

/// The quotas and the counts they are checked against.
pub struct Quotas {
    db: Db,
    config: ChunksConfig,
}

impl Quotas {
    pub(crate) fn new(db: Db, config: ChunksConfig) -> Quotas {
        Quotas { db, config }
    }

    /// Adds to an identity's count, refusing (and changing nothing) when new bytes would
    /// take it past its quota. Negative amounts give back what was not stored after all.
    pub async fn charge(
        &self,
        identity: &str,
        chunks: i64,
        bytes: i64,
        received: i64,
    ) -> Result<()> {
        let quota = self.config.quota_of(identity);
        let identity = identity.to_owned();
        let refused = self
            .db
            .write_relaxed(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let used = used(&tx, &identity)?;
                if let Some(quota) = quota
                    && bytes > 0
                    && used + bytes > quota as i64
                {
                    return Err(Error::Quota(format!(
                        "{identity} has stored {used} bytes; {bytes} more would pass its quota of {quota} bytes (chunks.quota)"
                    )));
                }
                tx.execute(
                    "INSERT INTO chunk_usage (identity, chunks, bytes, received, updated)
                     VALUES (?1, max(?2, 0), max(?3, 0), ?4, ?5)
                     ON CONFLICT (identity) DO UPDATE SET
                        chunks = max(chunks + ?2, 0), bytes = max(bytes + ?3, 0),
                        received = received + ?4, updated = ?5",
                    params![identity, chunks, bytes, received, now()],
                )?;
                tx.commit()?;
                Ok(())
            })
            .await;
        if matches!(refused, Err(Error::Quota(_))) {
            metrics::counter!("flisthub_quota_refusals_total").increment(1);
        }
        refused
    }

    /// Refuses (507) an identity that has no room left, before an upload or a conversion
    /// takes anything in: `what` names it in the message.
    pub async fn check_room(&self, identity: &str, what: &str) -> Result<()> {
        let Some(quota) = self.config.quota_of(identity) else {
            return Ok(());
        };
        let usage = self.usage(identity).await?;
        if usage.bytes >= quota {
            metrics::counter!("flisthub_quota_refusals_total").increment(1);
            return Err(Error::Quota(format!(
                "{identity} has stored {} bytes, its whole quota of {quota} bytes (chunks.quota): no {what} is taken",
                usage.bytes
            )));
        }
        Ok(())
    }

    /// What `identity` made the hub store.
    pub async fn usage(&self, identity: &str) -> Result<Usage> {
        let quota = self.config.quota_of(identity);
        let who = identity.to_owned();
        let (chunks, bytes, received) = self
            .db
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT chunks, bytes, received FROM chunk_usage WHERE identity = ?1",
                    [&who],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    },
                )
                .optional()?
                .unwrap_or((0, 0, 0)))
            })
            .await?;
        Ok(Usage {
            identity: identity.to_owned(),
            chunks: chunks as u64,
            bytes: bytes as u64,
            received: received as u64,
            quota,
        })
    }

    /// A charge of the writes of one upload or conversion to `identity`, for the store
    /// that makes them (`gc::Tracked::charging`).
    pub(crate) fn charge_to(self: &std::sync::Arc<Self>, identity: &str) -> Charge {
        Charge {
            quotas: std::sync::Arc::clone(self),
            identity: identity.to_owned(),
            refused: Mutex::new(None),
        }
    }
}

fn used(tx: &rusqlite::Transaction<'_>, identity: &str) -> Result<i64> {
    Ok(tx
        .query_row(
            "SELECT bytes FROM chunk_usage WHERE identity = ?1",
            [identity],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// The writes of one operation, charged to one identity. A refusal is kept here, so that
/// the operation answers it in the quota's own words rather than as the store error the
/// packer saw.
pub struct Charge {
    quotas: std::sync::Arc<Quotas>,
    identity: String,
    refused: Mutex<Option<String>>,
}

impl Charge {
    /// Charges a write of `count` new items of `bytes` in all; refused past the quota.
    pub(crate) async fn take(
        &self,
        location: &str,
        count: usize,
        bytes: u64,
    ) -> chunkstore::Result<()> {
        match self
            .quotas
            .charge(&self.identity, count as i64, bytes as i64, 0)
            .await
        {
            Ok(()) => Ok(()),
            Err(Error::Quota(message)) => {
                *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.clone());
                Err(chunkstore::Error::Refused {
                    location: location.to_owned(),
                    kind: chunkstore::Refusal::Full,
                    message,
                })
            }
            Err(e) => Err(chunkstore::Error::Store {
                location: location.to_owned(),
                reason: format!("counting the write against the quota: {e}"),
            }),
        }
    }

    /// Gives back a charge whose write failed.
    pub(crate) async fn give_back(&self, count: usize, bytes: u64) {
        if let Err(e) = self
            .quotas
            .charge(&self.identity, -(count as i64), -(bytes as i64), 0)
            .await
        {
            tracing::error!(error = %e, "giving back the quota of a failed write");
        }
    }

    /// `failed`, or the quota's refusal if that is what made it fail.
    pub fn explain(&self, failed: Error) -> Error {
        match self
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            Some(message) => Error::Quota(message),
            None => failed,
        }
    }
}
