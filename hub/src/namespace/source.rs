//! Where a published flist came from, as the hub saw it when it published it (kept on the
//! entry, `entry.source`): what people read on the flist's page. The flist's own `source`
//! metadata says what its builder claims; this says what the hub was given.

use serde::{Deserialize, Serialize};

/// How an flist came to be published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    /// An archive (`.tar`, `.tar.gz`, `.tar.zst`) uploaded and converted by the hub.
    Archive { file: String },
    /// A Docker/OCI image converted by the hub: the reference asked for and the manifest
    /// digest it was found at.
    Image { reference: String, digest: String },
    /// An flist file built elsewhere and uploaded (`upload-flist`): the file name sent and,
    /// for a file `flisthub push` built, the directory it says it was built from.
    FlistFile {
        file: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pushed_from: Option<String>,
    },
    /// A merge of other flists (`repository/name` each, the first winning on every path).
    Merge { sources: Vec<String> },
    /// A file of a 0-hub's public directory, brought over by `flisthub import-0hub`: its
    /// path there (`<repository>/<file>`).
    Import { path: String },
    /// A copy of another name (promote): the name copied, and where that one came from.
    Promote {
        from: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<Box<Source>>,
    },
}

impl Source {
    pub(crate) fn to_json(&self) -> String {
        // Strings and lists only: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The source recorded as `json`; `None` for what this build cannot read (a newer
    /// kind), which is then shown as not recorded rather than failing the page.
    pub(crate) fn from_json(json: &str) -> Option<Source> {
        serde_json::from_str(json).ok()
    }
}
