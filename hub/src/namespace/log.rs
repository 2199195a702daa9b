//! The change log: every applied change, serialised, in an append-only table numbered by a
//! sequence that never goes back or repeats (`AUTOINCREMENT`). It is what `GET
//! /api/v1/changes` pages through and what a follower replays.

use hubapi::changes::{ChangeEvent, ChangeRecord};
use rusqlite::{Connection, Transaction, params};

use crate::error::{Error, Result};

/// Records `event`; its sequence number.
pub(super) fn append(
    tx: &Transaction<'_>,
    time: i64,
    actor: &str,
    event: &ChangeEvent,
) -> Result<u64> {
    let body = serde_json::to_string(event)
        .map_err(|e| Error::Internal(format!("serialising a change: {e}")))?;
    tx.prepare_cached(
        "INSERT INTO change_log (time, actor, repository, body) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![time, actor, event.repository(), body])?;
    Ok(tx.last_insert_rowid() as u64)
}

/// Up to `limit` records after sequence number `after`, oldest first.
pub(super) fn read(c: &Connection, after: u64, limit: usize) -> Result<Vec<ChangeRecord>> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = c.prepare_cached(
        "SELECT seq, time, actor, body FROM change_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after, limit], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    rows.map(|row| {
        let (seq, time, actor, body) = row?;
        let change = serde_json::from_str(&body)
            .map_err(|e| Error::Internal(format!("change {seq} of the log cannot be read: {e}")))?;
        Ok(ChangeRecord {
            seq: seq as u64,
            time,
            actor: Some(actor),
            change,
        })
    })
    .collect()
}
