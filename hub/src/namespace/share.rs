//! How much of a published native file's content other published files also hold, kept
//! up to date as files come and go rather than counted when a page asks.
//!
//! A file's contents are its regular files' contents, each distinct content once (a
//! content is named by its size and chunk list, `renditions::ContentId`). Its *shared
//! bytes* are the bytes of those contents that at least one other published file also
//! holds; a file published under several names (promote) is one file. When a content
//! gains its second holder, both gain its bytes; when it loses its second-to-last holder,
//! the last one loses them.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::error::Result;

/// A content of a file: its id (32 bytes) and size.
pub type ContentSize = ([u8; 32], u64);

/// The share figures of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// Bytes of the file's distinct contents.
    pub content_bytes: u64,
    /// Bytes of those another published file also holds.
    pub shared_bytes: u64,
}

/// Records the distinct `contents` of the native file `sha256`, once per file.
pub(crate) fn record(tx: &Transaction<'_>, sha256: &str, contents: &[ContentSize]) -> Result<()> {
    if share(tx, sha256)?.is_some() {
        return Ok(());
    }
    let mut holders = tx.prepare_cached(
        "SELECT sha256 FROM blob_content WHERE content = ?1 AND sha256 <> ?2 LIMIT 2",
    )?;
    let mut gain = tx.prepare_cached(
        "UPDATE blob_share SET shared_bytes = shared_bytes + ?2 WHERE sha256 = ?1",
    )?;
    let mut hold = tx.prepare_cached(
        "INSERT INTO blob_content (sha256, content, size) VALUES (?1, ?2, ?3)
         ON CONFLICT (sha256, content) DO UPDATE SET size = excluded.size",
    )?;
    // A content released earlier is held again: its windows (if any) must not be swept.
    let mut unrelease =
        tx.prepare_cached("UPDATE content_windows SET released = NULL WHERE content = ?1")?;
    let (mut total, mut shared) = (0u64, 0u64);
    for (content, size) in contents {
        let others: Vec<String> = holders
            .query_map(params![&content[..], sha256], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if let [only] = others.as_slice() {
            gain.execute(params![only, *size as i64])?;
        }
        if !others.is_empty() {
            shared += size;
        }
        total += size;
        hold.execute(params![sha256, &content[..], *size as i64])?;
        unrelease.execute([&content[..]])?;
    }
    tx.prepare_cached(
        "INSERT INTO blob_share (sha256, content_bytes, shared_bytes) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![sha256, total as i64, shared as i64])?;
    Ok(())
}

/// Forgets the contents of the file `sha256`, which is going; the contents it held, for the
/// release of their windows.
pub(crate) fn release(tx: &Transaction<'_>, sha256: &str) -> Result<Vec<Vec<u8>>> {
    let released: Vec<(Vec<u8>, Option<i64>)> = tx
        .prepare_cached("DELETE FROM blob_content WHERE sha256 = ?1 RETURNING content, size")?
        .query_map([sha256], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut holders =
        tx.prepare_cached("SELECT sha256 FROM blob_content WHERE content = ?1 LIMIT 2")?;
    let mut lose = tx.prepare_cached(
        "UPDATE blob_share SET shared_bytes = shared_bytes - ?2 WHERE sha256 = ?1",
    )?;
    for (content, size) in &released {
        let left: Vec<String> = holders
            .query_map([content], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if let ([last], Some(size)) = (left.as_slice(), size) {
            lose.execute(params![last, size])?;
        }
    }
    tx.execute("DELETE FROM blob_share WHERE sha256 = ?1", [sha256])?;
    Ok(released.into_iter().map(|(content, _)| content).collect())
}

/// The share figures of the file `sha256`, if recorded (native files only).
pub(crate) fn share(c: &Connection, sha256: &str) -> Result<Option<Share>> {
    Ok(
        c.prepare_cached("SELECT content_bytes, shared_bytes FROM blob_share WHERE sha256 = ?1")?
            .query_row([sha256], |r| {
                Ok(Share {
                    content_bytes: r.get::<_, i64>(0)?.max(0) as u64,
                    shared_bytes: r.get::<_, i64>(1)?.max(0) as u64,
                })
            })
            .optional()?,
    )
}

/// Native files named by an entry whose contents are not recorded (published before they
/// were).
pub(crate) fn files_without(c: &Connection) -> Result<Vec<String>> {
    let mut stmt = c.prepare(
        "SELECT b.sha256 FROM blob b WHERE b.format = 'native'
           AND NOT EXISTS (SELECT 1 FROM blob_share s WHERE s.sha256 = b.sha256)
           AND EXISTS (SELECT 1 FROM entry e WHERE e.blob = b.sha256)",
    )?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
