//! The converter's one error type. Refusals of the input are variants a caller can match
//! (the hub turns them into statuses); names and header fields taken from the input are
//! stored escaped (see [`escape`]), so printing an error never sends an archive's bytes to
//! a terminal or a log as they are.

use std::fmt::Write as _;

/// Everything that can go wrong turning inputs into flists and flists back into trees.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Flist(#[from] flist::Error),

    #[error(transparent)]
    Store(#[from] chunkstore::Error),

    /// A 0-flist or fl file that cannot be read (its messages name no local path).
    #[error(transparent)]
    Legacy(#[from] legacy::Error),

    /// A block a legacy file names that its source does not hold.
    #[error("block {id} is not in {location}")]
    MissingBlock { id: String, location: String },

    /// A block that does not decode with its key, or not to the length the file says.
    #[error("block {id}: {reason}")]
    BadBlock { id: String, reason: String },

    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// The input as a whole is unusable: not an archive, truncated, an unsupported format.
    #[error("{0}")]
    Input(String),

    /// One entry of the input is refused for a reason without a variant of its own (a bad
    /// header field, an unsupported type, ...). `path` is escaped.
    #[error("entry \"{path}\": {reason}")]
    Entry { path: String, reason: String },

    /// An entry's name leaves the tree (a `..` component). `path` is escaped.
    #[error("entry \"{path}\": a '..' component, which would escape the tree")]
    Escape { path: String },

    /// A hardlink or symlink that cannot be recorded: no target, a target that escapes,
    /// is not an earlier entry, or is the link itself. Both names are escaped.
    #[error("entry \"{path}\": link to \"{target}\": {reason}")]
    BadLink {
        path: String,
        target: String,
        reason: String,
    },

    /// A PAX (`x`, `g`) or GNU long-name (`L`, `K`) record larger than the limit, refused
    /// from its header, before its data is read. `entry` is the name in that header.
    #[error("entry \"{entry}\": a {kind} record of {size} bytes, the limit is {limit}")]
    HeaderRecordTooLarge {
        entry: String,
        kind: &'static str,
        size: u64,
        limit: u64,
    },

    /// More entries than the limit.
    #[error("limit exceeded: more than {limit} entries")]
    TooManyEntries { limit: u64 },

    /// A path longer than the limit; `path` is its escaped beginning.
    #[error("limit exceeded: path of {len} bytes, the limit is {limit}: \"{path}...\"")]
    PathTooLong {
        path: String,
        len: usize,
        limit: usize,
    },

    /// The files add up to more than the limit (at the escaped `path`).
    #[error("limit exceeded: content larger than {limit} bytes (at \"{path}\")")]
    ContentTooLarge { path: String, limit: u64 },

    /// A compressed input that expands far more than data does: `expanded` bytes out of
    /// `compressed`, past the ratio allowed beyond the floor.
    #[error(
        "limit exceeded: {compressed} compressed bytes expanded to more than {expanded}, a ratio above {ratio} (a compression bomb?)"
    )]
    ExpansionTooLarge {
        compressed: u64,
        expanded: u64,
        ratio: u64,
    },

    /// Extraction finished but some entries could not be recreated (files whose content
    /// could not be written completely were removed): how many, and the first few.
    #[error("{total} problem(s) while extracting{}", list_problems(.listed, *.total))]
    Extract { total: usize, listed: Vec<String> },

    #[error("a worker thread failed: {0}")]
    Worker(String),

    #[error("cancelled")]
    Cancelled,

    /// A container image could not be had (see [`crate::ImageFailure`]).
    #[error("{message}")]
    Image {
        failure: crate::ImageFailure,
        message: String,
    },
}

/// The problems listed, one per line, and how many more there were.
fn list_problems(listed: &[String], total: usize) -> String {
    let mut text = String::from(" (files not written completely were removed):");
    for problem in listed {
        text.push_str("\n  ");
        text.push_str(problem);
    }
    if total > listed.len() {
        text.push_str(&format!("\n  ... and {} more", total - listed.len()));
    }
    text
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }

    pub(crate) fn image(failure: crate::ImageFailure, message: impl Into<String>) -> Error {
        Error::Image {
            failure,
            message: message.into(),
        }
    }

    /// An entry refused; `reason` may quote what the tar reader said about the header, so
    /// it is escaped as well.
    pub(crate) fn entry(path: &[u8], reason: impl Into<String>) -> Error {
        Error::Entry {
            path: escape(path),
            reason: escape_text(&reason.into()),
        }
    }

    /// A name refused by [`crate::tarball::normalize`].
    pub(crate) fn name(raw: &[u8], bad: crate::tarball::BadName) -> Error {
        match bad {
            crate::tarball::BadName::Escape => Error::Escape { path: escape(raw) },
            other => Error::entry(raw, other.reason()),
        }
    }

    pub(crate) fn bad_link(path: &[u8], target: &[u8], reason: impl Into<String>) -> Error {
        Error::BadLink {
            path: escape(path),
            target: escape(target),
            reason: escape_text(&reason.into()),
        }
    }
}

/// Bytes from the input as printable text: valid UTF-8 stays as it is except control
/// characters (terminal escapes included), which become `\xNN` or `\u{NNNN}` like the
/// bytes that are not UTF-8; `\` and `"` are escaped so that a quoted name cannot be
/// confused with the text around it.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c, true);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Text that may quote the input (a reader's message): control characters escaped, quotes
/// left as they are.
pub(crate) fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_char(&mut out, c, false);
    }
    out
}

fn push_char(out: &mut String, c: char, quotes: bool) {
    match c {
        '\\' if quotes => out.push_str("\\\\"),
        '"' if quotes => out.push_str("\\\""),
        c if (c as u32) < 0x80 && c.is_control() => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        // C1 controls, bidirectional overrides and other invisible formatting characters.
        c if c.is_control() || is_format(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// Unicode characters that change how the text around them is shown.
fn is_format(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_act_on() {
        assert_eq!(escape(b"\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(escape(b"a\"b\\c\n"), "a\\\"b\\\\c\\x0a");
        assert_eq!(escape(b"\xff\xfe ok"), "\\xff\\xfe ok");
        assert_eq!(escape("caf\u{e9}".as_bytes()), "caf\u{e9}");
        assert_eq!(escape("\u{202e}x\u{9b}".as_bytes()), "\\u{202e}x\\u{9b}");
        assert_eq!(
            escape_text("said \"\x1b]0;x\x07\""),
            "said \"\\x1b]0;x\\x07\""
        );
    }
}
