//! Flist files no row names: what a crash between a file's move into the store and its
//! commit (or between a commit and a file's removal) leaves. The hub removes them all when
//! it starts; the garbage collector removes those older than its grace period while the
//! hub runs.
//!
//! A file being published is moved into place inside the transaction that names it,
//! under the database writer (see [`super::Namespace`]); uploads in progress write in the
//! staging directory, which is never looked at here. So judging the files under the
//! writer, in an IMMEDIATE transaction (which also waits for a change another process,
//! the import, is making), no file that is about to be named is ever taken for unused.

use std::sync::Arc;
use std::time::SystemTime;

use super::sql::blob_known;
use crate::blobs::Blobs;
use crate::db::Db;
use crate::error::Result;

/// What to do with unused files.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sweep {
    /// Files last written at or after it are kept (`None`: none is).
    pub kept_since: Option<SystemTime>,
    /// Remove nothing: only tell.
    pub dry_run: bool,
}

/// What a sweep found.
#[derive(Debug, Default)]
pub(crate) struct Unused {
    /// Removed (a dry run: would be): sha256 and size.
    pub gone: Vec<(String, u64)>,
    /// Unused but written since `kept_since`: their sizes.
    pub young: Vec<u64>,
}

/// Finds, and unless a dry run removes, the files of `blobs` that no row of `db` names.
pub(crate) async fn sweep(db: &Db, blobs: &Arc<Blobs>, how: Sweep) -> Result<Unused> {
    let blobs = Arc::clone(blobs);
    db.write(move |conn| {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut found = Unused::default();
        for sha in blobs.list()? {
            if blob_known(&tx, &sha)? {
                continue;
            }
            let meta = std::fs::metadata(blobs.path(&sha)).ok();
            let size = meta.as_ref().map_or(0, |m| m.len());
            let written = meta.and_then(|m| m.modified().ok());
            // A file whose time cannot be read is kept, as a young one.
            let young = match (how.kept_since, written) {
                (None, _) => false,
                (Some(since), Some(written)) => written >= since,
                (Some(_), None) => true,
            };
            if young {
                found.young.push(size);
                continue;
            }
            if !how.dry_run {
                blobs.remove(&sha);
            }
            found.gone.push((sha, size));
        }
        tx.commit()?;
        Ok(found)
    })
    .await
}
