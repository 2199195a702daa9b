//! The reports of maintenance runs kept in the database: a table `(id, started, report)`
//! per kind of run (`gc_run`, `scrub_run`), each report as JSON, the last 100 of each.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::db::Db;
use crate::error::{Error, Result};

/// Reports kept per kind of run.
const KEPT: i64 = 100;

/// Keeps `report` of a run started at `started` in `table`, forgetting the oldest past
/// [`KEPT`].
pub(crate) async fn keep(
    db: &Db,
    table: &'static str,
    started: i64,
    report: &impl Serialize,
) -> Result<()> {
    let text = serde_json::to_string(report).map_err(|e| Error::Internal(e.to_string()))?;
    db.write_relaxed(move |c| {
        c.execute(
            &format!("INSERT INTO {table} (started, report) VALUES (?1, ?2)"),
            rusqlite::params![started, text],
        )?;
        c.execute(
            &format!("DELETE FROM {table} WHERE id <= (SELECT max(id) FROM {table}) - ?1"),
            [KEPT],
        )?;
        Ok(())
    })
    .await
}

/// The last `limit` reports kept in `table`, newest first.
pub(crate) async fn last<T: DeserializeOwned>(
    db: &Db,
    table: &'static str,
    limit: usize,
) -> Result<Vec<T>> {
    let limit = limit.min(KEPT as usize) as i64;
    let texts: Vec<String> = db
        .read(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT report FROM {table} ORDER BY id DESC LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
        .await?;
    texts
        .iter()
        .map(|t| {
            serde_json::from_str(t).map_err(|e| Error::Internal(format!("a kept report: {e}")))
        })
        .collect()
}
