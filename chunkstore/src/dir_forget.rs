//! Listing and deleting the files of a [`crate::DirStore`]: `<root>/<space>/<2 hex>/<hex>`.
//!
//! A walk goes through the 256 prefix directories in order, and through each one's names
//! sorted; the cursor is the last name listed, so a walk resumes after it whatever was
//! written or deleted meanwhile. Temporary files (`.tmp-*`) and names of another shape are
//! never listed, so never deleted.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::listing::{Cursor, Listed, Page, page_size};

/// The next page of `<root>/<space>`, whose file names `parse` turns into keys (a name it
/// refuses is not a key of this space).
pub(crate) fn list<K>(
    root: &Path,
    space: &str,
    cursor: Option<Cursor>,
    limit: usize,
    parse: impl Fn(&str) -> Option<K>,
) -> io::Result<Page<K>> {
    let limit = page_size(limit);
    let after = match &cursor {
        Some(cursor) => match std::str::from_utf8(cursor.as_bytes()) {
            Ok(name) if name.len() >= 2 && name.is_ascii() => Some(name.to_owned()),
            _ => return Err(io::Error::other("not a cursor of this store")),
        },
        None => None,
    };
    let first = match &after {
        Some(name) => u8::from_str_radix(&name[..2], 16)
            .map_err(|_| io::Error::other("not a cursor of this store"))?,
        None => 0,
    };
    let mut items = Vec::new();
    for prefix in first..=255u8 {
        let dir = root.join(space).join(hex::encode([prefix]));
        let mut names: Vec<String> = match fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|name| parse(name).is_some())
                .filter(|name| after.as_ref().is_none_or(|after| name > after))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        names.sort_unstable();
        for name in names.into_iter().take(limit - items.len()) {
            // Gone since the directory was read: deleted, not listed.
            let Ok(meta) = fs::symlink_metadata(dir.join(&name)) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            if let Some(key) = parse(&name) {
                items.push((
                    name,
                    Listed {
                        key,
                        size: Some(meta.len()),
                        written: Some(meta.mtime()),
                    },
                ));
            }
        }
        if items.len() >= limit {
            let next = items
                .last()
                .map(|(name, _)| Cursor::from_bytes(name.clone().into_bytes()));
            return Ok(Page {
                items: items.into_iter().map(|(_, item)| item).collect(),
                next,
            });
        }
    }
    Ok(Page {
        items: items.into_iter().map(|(_, item)| item).collect(),
        next: None,
    })
}

/// Removes the files; those already gone are not counted.
pub(crate) fn remove(paths: impl Iterator<Item = std::path::PathBuf>) -> io::Result<u64> {
    let mut removed = 0;
    for path in paths {
        match fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}
