//! The rows of renditions (schema 6): contents and their windows, the block ids naming
//! them, which contents each published file holds, and the rendition files themselves.

use std::collections::HashMap;

use legacy::window::{WINDOW_KEYS_LEN, WindowKeys};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::content::{Content, ContentId, block_ids};
use crate::blobs::Digest256;
use crate::error::{Error, Result};
use crate::formats::Format;

/// Native files published under a name that have no renditions for `url` yet.
pub fn without_renditions(c: &Connection, url: &str) -> Result<Vec<String>> {
    let mut statement = c.prepare(
        "SELECT b.sha256 FROM blob b
         WHERE b.format = 'native'
           AND EXISTS (SELECT 1 FROM entry e WHERE e.blob = b.sha256)
           AND NOT EXISTS (SELECT 1 FROM rendition r
                           WHERE r.native = b.sha256 AND r.public_url = ?1)
         ORDER BY b.created",
    )?;
    let rows = statement
        .query_map([url], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// The renditions made for another gateway address: native file, format, address.
pub fn stale(c: &Connection, url: &str) -> Result<Vec<(String, String, String)>> {
    let mut statement =
        c.prepare("SELECT native, format, public_url FROM rendition WHERE public_url != ?1")?;
    let rows = statement
        .query_map([url], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// The windows already known of `contents`.
pub fn known_windows(
    c: &Connection,
    contents: &[ContentId],
) -> Result<HashMap<ContentId, Vec<WindowKeys>>> {
    let mut statement =
        c.prepare_cached("SELECT windows FROM content_windows WHERE content = ?1")?;
    let mut known = HashMap::new();
    for id in contents {
        let windows: Option<Vec<u8>> = statement.query_row([&id[..]], |r| r.get(0)).optional()?;
        if let Some(bytes) = windows {
            known.insert(*id, parse_windows(id, &bytes)?);
        }
    }
    Ok(known)
}

/// Records the windows of `content`, held by the published file `native`.
pub fn put_windows(
    tx: &Transaction<'_>,
    native: &str,
    content: &Content,
    windows: &[WindowKeys],
) -> Result<()> {
    let packed: Vec<u8> = windows.iter().flat_map(WindowKeys::to_bytes).collect();
    tx.prepare_cached(
        "INSERT INTO content_windows (content, size, chunks, windows) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (content) DO UPDATE SET released = NULL",
    )?
    .execute(params![
        &content.id[..],
        content.size as i64,
        content.spans_to_bytes(),
        packed
    ])?;
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO window_block (id, content, window) VALUES (?1, ?2, ?3)",
    )?;
    for (index, keys) in windows.iter().enumerate() {
        for id in block_ids(keys) {
            insert.execute(params![id.as_bytes(), &content.id[..], index as i64])?;
        }
    }
    hold(tx, native, &content.id)
}

/// Notes that `native` holds `content` (known already), which is then no longer released.
pub fn hold(tx: &Transaction<'_>, native: &str, content: &ContentId) -> Result<()> {
    tx.prepare_cached("INSERT OR IGNORE INTO blob_content (sha256, content) VALUES (?1, ?2)")?
        .execute(params![native, &content[..]])?;
    tx.prepare_cached("UPDATE content_windows SET released = NULL WHERE content = ?1")?
        .execute([&content[..]])?;
    Ok(())
}

/// How many of `contents` have their windows recorded.
pub fn recorded(c: &Connection, contents: &[ContentId]) -> Result<usize> {
    let mut statement = c.prepare_cached("SELECT 1 FROM content_windows WHERE content = ?1")?;
    let mut count = 0;
    for id in contents {
        if statement.exists([&id[..]])? {
            count += 1;
        }
    }
    Ok(count)
}

/// Records a rendition file (its blob row, if new) of `native` for `url`.
pub fn put_rendition(
    tx: &Transaction<'_>,
    native: &str,
    url: &str,
    file: &Digest256,
    t: i64,
) -> Result<()> {
    crate::namespace::insert_file(tx, file, t)?;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO rendition (native, format, public_url, sha256) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![native, file.format.as_str(), url, file.sha256])?;
    Ok(())
}

/// The renditions of `native` for `url`.
pub fn renditions(c: &Connection, native: &str, url: &str) -> Result<Vec<Digest256>> {
    let mut statement = c.prepare_cached(
        "SELECT b.sha256, b.md5, b.size, b.format FROM rendition r
         JOIN blob b ON b.sha256 = r.sha256
         WHERE r.native = ?1 AND r.public_url = ?2 ORDER BY r.format",
    )?;
    let rows = statement
        .query_map([native, url], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<(String, String, i64, String)>>>()?;
    rows.into_iter()
        .map(|(sha256, md5, size, format)| {
            Ok(Digest256 {
                sha256,
                md5,
                size: size as u64,
                format: Format::from_name(&format)
                    .ok_or_else(|| Error::Internal(format!("a rendition of format {format:?}")))?,
            })
        })
        .collect()
}

/// Where the window named by block `id` lives, among contents held or released after
/// `cutoff`: the content's id and the window's index and keys.
pub fn locate(
    c: &Connection,
    id: &[u8],
    cutoff: i64,
) -> Result<Option<(ContentId, u64, WindowKeys)>> {
    let row: Option<(Vec<u8>, i64, Vec<u8>)> = c
        .prepare_cached(
            "SELECT w.content, w.window, substr(c.windows, w.window * ?3 + 1, ?3)
             FROM window_block w JOIN content_windows c ON c.content = w.content
             WHERE w.id = ?1 AND (c.released IS NULL OR c.released > ?2)
             LIMIT 1",
        )?
        .query_row(params![id, cutoff, WINDOW_KEYS_LEN as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((content, window, keys)) = row else {
        return Ok(None);
    };
    let content: ContentId = content
        .try_into()
        .map_err(|_| Error::Internal("a content id of the wrong length".into()))?;
    let keys = WindowKeys::from_bytes(&keys)
        .ok_or_else(|| Error::Internal("a window's keys cut short".into()))?;
    Ok(Some((content, window as u64, keys)))
}

/// A content's size and chunk list.
pub fn content(c: &Connection, id: &ContentId) -> Result<Option<Content>> {
    let row: Option<(i64, Vec<u8>)> = c
        .prepare_cached("SELECT size, chunks FROM content_windows WHERE content = ?1")?
        .query_row([&id[..]], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(size, chunks)| Content::from_row(*id, size as u64, &chunks))
        .transpose()
}

/// The published files that hold `content`, for a message naming what a lost chunk damages.
pub fn holders(c: &Connection, content: &ContentId) -> Result<Vec<String>> {
    let mut statement = c.prepare_cached(
        "SELECT r.name || '/' || e.name FROM blob_content h
         JOIN entry e ON e.blob = h.sha256 JOIN repository r ON r.id = e.repository
         WHERE h.content = ?1 LIMIT 10",
    )?;
    let rows = statement
        .query_map([&content[..]], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Forgets the contents released at or before `cutoff`: their block ids become unknown.
pub fn sweep(tx: &Transaction<'_>, cutoff: i64) -> Result<usize> {
    tx.execute(
        "DELETE FROM window_block WHERE content IN
           (SELECT content FROM content_windows WHERE released <= ?1)",
        [cutoff],
    )?;
    Ok(tx.execute("DELETE FROM content_windows WHERE released <= ?1", [cutoff])?)
}

fn parse_windows(id: &ContentId, bytes: &[u8]) -> Result<Vec<WindowKeys>> {
    if bytes.len() % WINDOW_KEYS_LEN != 0 {
        return Err(Error::Internal(format!(
            "content {}: its window list is cut short",
            hex::encode(id)
        )));
    }
    Ok(bytes
        .chunks_exact(WINDOW_KEYS_LEN)
        .filter_map(WindowKeys::from_bytes)
        .collect())
}
