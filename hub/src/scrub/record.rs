//! What the scrub keeps in the database: each published file's last result
//! (`scrub_result`) and the last runs' reports (`scrub_run`).

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{FileReport, Report};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::names::quote;

/// Flists a report names per file.
const NAMES_SHOWN: i64 = 10;

/// A published file's last result, as `light` shows it (its `scrub` key).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Status {
    /// When it was checked, seconds since the epoch.
    pub checked: i64,
    /// Every chunk read and verified, rather than asked about.
    pub deep: bool,
    /// Every chunk it names was there (deep: and sound): "verified complete".
    pub complete: bool,
    /// Chunks missing, damaged (with no sound copy to repair from).
    #[serde(skip_serializing_if = "is_zero")]
    pub missing: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub damaged: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The published files to check, `(sha256, format)`: every one, or those the flists of
/// `only` are. A rendition's blocks are made from native chunks: it names nothing stored.
pub(super) async fn files(db: &Db, only: Option<String>) -> Result<Vec<(String, String)>> {
    db.read(move |c| {
        let sql = "SELECT sha256, format FROM blob
                   WHERE sha256 NOT IN (SELECT sha256 FROM rendition)
                   AND (?1 IS NULL OR sha256 IN (
                       SELECT e.blob FROM entry e JOIN repository r ON r.id = e.repository
                       WHERE r.name = ?1))
                   ORDER BY sha256";
        if let Some(name) = &only {
            let known: Option<i64> = c
                .query_row("SELECT id FROM repository WHERE name = ?1", [name], |r| {
                    r.get(0)
                })
                .optional()?;
            if known.is_none() {
                return Err(Error::NotFound(format!("no repository {}", quote(name))));
            }
        }
        let mut stmt = c.prepare(sql)?;
        let rows = stmt.query_map(params![only], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    })
    .await
}

/// Keeps each file's result; a run of every file also forgets the results of files no
/// longer published.
pub(super) async fn keep_results(
    db: &Db,
    outcomes: Vec<FileReport>,
    checked: i64,
    deep: bool,
    everything: bool,
) -> Result<()> {
    let problems: Vec<String> = outcomes
        .iter()
        .map(|o| serde_json::to_string(&o.problems).map_err(|e| Error::Internal(e.to_string())))
        .collect::<Result<_>>()?;
    db.write_relaxed(move |c| {
        let tx = c.transaction()?;
        {
            let mut stmt = tx.prepare(
                "INSERT OR REPLACE INTO scrub_result
                 (sha256, checked, deep, missing, damaged, problems)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM blob WHERE sha256 = ?1)",
            )?;
            for (outcome, problems) in outcomes.iter().zip(&problems) {
                stmt.execute(params![
                    outcome.sha256,
                    checked,
                    deep,
                    outcome.missing as i64,
                    outcome.damaged as i64,
                    problems,
                ])?;
            }
        }
        if everything {
            tx.execute(
                "DELETE FROM scrub_result WHERE sha256 NOT IN (SELECT sha256 FROM blob)",
                [],
            )?;
        }
        tx.commit()?;
        Ok(())
    })
    .await
}

/// The flists (`<repo>/<name>`) that are the file `sha256`, the first few.
pub(super) async fn names(db: &Db, sha256: &str) -> Result<Vec<String>> {
    let sha256 = sha256.to_owned();
    db.read(move |c| {
        let mut stmt = c.prepare(
            "SELECT r.name || '/' || e.name FROM entry e JOIN repository r ON r.id = e.repository
             WHERE e.blob = ?1 ORDER BY 1 LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![sha256, NAMES_SHOWN], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    })
    .await
}

pub(super) async fn status(db: &Db, sha256: &str) -> Result<Option<Status>> {
    let sha256 = sha256.to_owned();
    db.read(move |c| {
        Ok(c.query_row(
            "SELECT checked, deep, missing, damaged FROM scrub_result WHERE sha256 = ?1",
            [sha256],
            |r| {
                let (missing, damaged): (i64, i64) = (r.get(2)?, r.get(3)?);
                Ok(Status {
                    checked: r.get(0)?,
                    deep: r.get(1)?,
                    complete: missing + damaged == 0,
                    missing: missing as u64,
                    damaged: damaged as u64,
                })
            },
        )
        .optional()?)
    })
    .await
}

/// Published files whose last result was complete, and those with chunks at fault.
pub(super) async fn file_counts(db: &Db) -> Result<(u64, u64)> {
    db.read(|c| {
        Ok(c.query_row(
            "SELECT count(*) FILTER (WHERE missing + damaged = 0),
                    count(*) FILTER (WHERE missing + damaged > 0)
             FROM scrub_result WHERE sha256 IN (SELECT sha256 FROM blob)",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )?)
    })
    .await
}

pub(super) async fn keep_report(db: &Db, report: &Report) -> Result<()> {
    crate::gc::reports::keep(db, "scrub_run", report.started, report).await
}

/// The last reports, newest first.
pub(super) async fn reports(db: &Db, limit: usize) -> Result<Vec<Report>> {
    crate::gc::reports::last(db, "scrub_run", limit).await
}
