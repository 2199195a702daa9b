//! The sweep of flist files in the data directory that no catalogue entry names (left by
//! a crash between a file's move and its commit): removed once older than the grace
//! period, the rule chunks follow. Uploads in progress write in the staging directory,
//! which is not looked at, and a file is moved into the store in the transaction that
//! names it, under the database writer the sweep also holds (see
//! `namespace::unused`).

use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Collector, Counted, LISTED_AT_MOST};
use crate::error::Result;
use crate::namespace::unused::{self, Sweep};

/// What a run did to unreferenced flist files.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FilesTally {
    /// Deleted (a dry run: would be).
    pub swept: Counted,
    /// Unreferenced, but written within the grace period.
    pub kept_by_grace: Counted,
}

impl Collector {
    /// Sweeps the unreferenced flist files last written before the run's cutoff (the
    /// earlier of its start and now − grace); a dry run names them in `would_go`.
    pub(super) async fn sweep_files(
        &self,
        dry_run: bool,
        started_ms: i64,
        would_go: &mut Vec<String>,
    ) -> Result<FilesTally> {
        let grace = super::now_ms().saturating_sub(self.config.grace.as_millis() as i64);
        let cutoff = grace.min(started_ms).max(0) as u64;
        let how = Sweep {
            kept_since: Some(UNIX_EPOCH + Duration::from_millis(cutoff)),
            dry_run,
        };
        let found = unused::sweep(&self.db, &self.blobs, how).await?;
        let mut tally = FilesTally::default();
        for (sha256, size) in found.gone {
            tally.swept.add(Some(size));
            if dry_run && would_go.len() < LISTED_AT_MOST {
                would_go.push(format!("flist {sha256}"));
            }
        }
        for size in found.young {
            tally.kept_by_grace.add(Some(size));
        }
        if !dry_run && tally.swept.count > 0 {
            tracing::info!(
                files = tally.swept.count,
                "removed flist files no entry names"
            );
        }
        Ok(tally)
    }
}
