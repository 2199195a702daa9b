//! What the hub learns of an flist file when it publishes it, kept beside the file's row:
//! its metadata and its counts. Reads (`/metadata`, limits of promote and merge) use these
//! instead of opening the file each time, and the limits on metadata are checked once, at
//! publish, whatever way the file came in.

use std::collections::BTreeMap;
use std::path::Path;

use flist::Flist;
use serde::{Deserialize, Serialize};

use crate::config::LimitsConfig;
use crate::error::{Error, Result};
use crate::formats::{AnyFlist, Format};
use crate::inspect::Stats;

/// The facts of one published flist file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// Every metadata key with its value as stored.
    pub metadata: BTreeMap<String, String>,
    /// 0-hub's counts.
    pub stats: Stats,
    /// Entries of every kind (names, directories included).
    pub entries: u64,
}

impl Facts {
    /// Reads the facts of the flist at `path`, of `format`, refusing one beyond `limits`
    /// (entries, expanded size, metadata) before reading what would be too large. Blocking.
    pub fn read(path: &Path, format: Format, limits: &LimitsConfig) -> Result<Facts> {
        if format == Format::Native {
            check_metadata(&Flist::open(path)?, limits)?;
        }
        let flist = AnyFlist::open(path, format, limits)?;
        let (stats, entries) = flist.stats()?;
        check_size(entries, stats.fullsize, limits)?;
        let metadata = flist.metadata()?;
        // The legacy readers bound each object they read; the whole is checked here.
        let total: u64 = metadata
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum();
        let largest = metadata.values().map(|v| v.len() as u64).max().unwrap_or(0);
        check_metadata_sizes(largest, total, limits)?;
        Ok(Facts {
            metadata,
            stats,
            entries,
        })
    }

    pub(crate) fn to_json(&self) -> String {
        // Plain maps and numbers: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub(crate) fn from_json(json: &str) -> Result<Facts> {
        serde_json::from_str(json)
            .map_err(|e| Error::Internal(format!("the facts of an flist cannot be read: {e}")))
    }
}

/// Refuses an flist whose metadata is beyond `limits.metadata-value` or
/// `limits.metadata-size`, before reading any of it.
pub fn check_metadata(flist: &Flist, limits: &LimitsConfig) -> Result<()> {
    let (largest, total) = flist.metadata_size()?;
    check_metadata_sizes(largest, total, limits)
}

fn check_metadata_sizes(largest: u64, total: u64, limits: &LimitsConfig) -> Result<()> {
    if largest > limits.metadata_value {
        return Err(Error::TooLarge(format!(
            "a metadata value of the flist is {largest} bytes; at most {} (limits.metadata-value)",
            limits.metadata_value
        )));
    }
    if total > limits.metadata_size {
        return Err(Error::TooLarge(format!(
            "the flist's metadata is {total} bytes; at most {} (limits.metadata-size)",
            limits.metadata_size
        )));
    }
    Ok(())
}

/// Refuses an flist of more than `limits.entries` entries or `limits.expanded-size` bytes.
pub fn check_size(entries: u64, bytes: u64, limits: &LimitsConfig) -> Result<()> {
    if entries > limits.entries {
        return Err(Error::TooLarge(format!(
            "the flist has {entries} entries; at most {} (limits.entries)",
            limits.entries
        )));
    }
    if bytes > limits.expanded_size {
        return Err(Error::TooLarge(format!(
            "the flist's files hold {bytes} bytes; at most {} (limits.expanded-size)",
            limits.expanded_size
        )));
    }
    Ok(())
}
