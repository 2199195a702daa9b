//! The change feed, `GET /api/v1/changes?after=SEQ&limit=N`: every change of a hub's
//! namespace, in the order it was made, each numbered and self-contained, so that a
//! follower can replay them without asking for state.

use serde::{Deserialize, Serialize};

/// One page of the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeFeed {
    /// Changes after the asked sequence number, oldest first.
    pub changes: Vec<ChangeRecord>,
    /// The sequence number to ask for next (`after=next`): the last one in `changes`, or
    /// the one asked for when there is nothing newer.
    pub next: u64,
}

/// A change as the log recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// Increases by one with every change; never reused.
    pub seq: u64,
    /// Seconds since the epoch.
    pub time: i64,
    /// The identity that made it: shown to administrators only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(flatten)]
    pub change: ChangeEvent,
}

/// A published flist file: enough to fetch it (`/api/v1/...`) and check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub sha256: String,
    pub md5: String,
    pub size: u64,
}

/// What changed. Names are as the hub lists them: flists and symlinks with `.flist`,
/// taglinks and tags without.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ChangeEvent {
    /// `name` in `repository` is now the flist `file`, whatever it was before.
    Publish {
        repository: String,
        name: String,
        file: FileRef,
    },
    /// `name` is now a symlink to `target` of the same repository.
    Link {
        repository: String,
        name: String,
        target: String,
    },
    /// `name` is now a symlink to `target_name` of `target_repository`.
    Crosslink {
        repository: String,
        name: String,
        target_repository: String,
        target_name: String,
    },
    /// The taglink `name` now points at `tag` of `tag_repository`.
    Crosstag {
        repository: String,
        name: String,
        tag_repository: String,
        tag: String,
    },
    /// The taglink `name` to `tag` of `tag_repository` was removed.
    Uncrosstag {
        repository: String,
        name: String,
        tag_repository: String,
        tag: String,
    },
    /// `name` in tag `tag` of `repository` now points at `target_name` of
    /// `target_repository` (the tag is created with its first member).
    Tag {
        repository: String,
        tag: String,
        name: String,
        target_repository: String,
        target_name: String,
    },
    /// `name` left tag `tag` (the tag is gone with its last member).
    Untag {
        repository: String,
        tag: String,
        name: String,
    },
    /// `from` is now called `to`; whatever `to` named before is gone.
    Rename {
        repository: String,
        from: String,
        to: String,
    },
    /// `name` is now a copy of the flist `source_name` of `source_repository` resolved
    /// to: the file `file`.
    Promote {
        repository: String,
        name: String,
        source_repository: String,
        source_name: String,
        file: FileRef,
    },
    /// `name` (an flist, a symlink or a taglink) was removed; what it pointed at stays.
    Delete {
        repository: String,
        name: String,
        /// Why, when the hub removed it by itself: the retention policy that did
        /// (`retention: keep 10, max-age 30d`). Absent for deletes asked by a client.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A change recorded before the feed existed, in the words of the old audit log: not
    /// enough to replay.
    Audit {
        action: String,
        repository: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
}

impl ChangeEvent {
    /// The repository the change is made in.
    pub fn repository(&self) -> &str {
        match self {
            ChangeEvent::Publish { repository, .. }
            | ChangeEvent::Link { repository, .. }
            | ChangeEvent::Crosslink { repository, .. }
            | ChangeEvent::Crosstag { repository, .. }
            | ChangeEvent::Uncrosstag { repository, .. }
            | ChangeEvent::Tag { repository, .. }
            | ChangeEvent::Untag { repository, .. }
            | ChangeEvent::Rename { repository, .. }
            | ChangeEvent::Promote { repository, .. }
            | ChangeEvent::Delete { repository, .. }
            | ChangeEvent::Audit { repository, .. } => repository,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_flat_objects_with_their_kind() {
        let record = ChangeRecord {
            seq: 7,
            time: 1_700_000_000,
            actor: None,
            change: ChangeEvent::Crosslink {
                repository: "alice".into(),
                name: "latest.flist".into(),
                target_repository: "bob".into(),
                target_name: "app.flist".into(),
            },
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "seq": 7, "time": 1_700_000_000, "kind": "crosslink", "repository": "alice",
                "name": "latest.flist", "target_repository": "bob", "target_name": "app.flist"
            })
        );
        let back: ChangeRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
    }
}
