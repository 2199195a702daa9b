//! Names of repositories, flists, links and tags: what is allowed, how 0-hub normalises
//! them, and how they are quoted in messages.
//!
//! 0-hub accepted anything without a `/`, which let `..` walk out of the users directory and
//! HTML land in the web UI. Here a name is refused (400) when it is empty, `.` or `..`,
//! longer than the configured limit, or holds a `/`, a `\`, a control character, or one of
//! `< > " ' &` and backtick, which have a meaning in HTML. Everything else that 0-hub's
//! clients use is kept: `:` (`zos:v3.4.0.flist`), leading dots, spaces, unicode.

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

use crate::error::{Error, Result};

pub const FLIST_SUFFIX: &str = ".flist";
/// The suffix of rfs fl files' names.
pub const FL_SUFFIX: &str = ".fl";

/// The archive extensions an upload may have, longest first. The content is recognised from
/// its first bytes; the extension only names the flist.
pub const ARCHIVE_EXTENSIONS: &[&str] = &[".tar.gz", ".tar.zst", ".tgz", ".tzst", ".tar"];

/// Top-level path segments the hub's own routes use or will use: pages, the API, static
/// files. A repository with one of these names could not be reached at `/<repo>` or
/// `/<repo>/...`, so none is allowed (a 400 that says why). Features that add a top-level
/// route add its name here.
pub const RESERVED_REPOSITORIES: &[&str] = &[
    "_iyo_callback",
    "account",
    "api",
    "callback_threebot",
    "callback_token",
    "diff",
    "docker-convert",
    "favicon.ico",
    "jobs",
    "listen",
    "login",
    "login-iyo",
    "login-method",
    "logout",
    "me",
    "merge",
    "metrics",
    "readonly",
    "robots.txt",
    "search",
    "static",
    "token",
    "tokens",
    "upload",
    "upload-flist",
    "v2",
];

/// Declares a name type: a string that has passed [`Names`]' checks, which are the only way
/// to get one.
macro_rules! checked_name {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }
    };
}

checked_name!(
    /// A repository name (an identity), not one of [`RESERVED_REPOSITORIES`].
    RepoName
);
checked_name!(
    /// An flist, symlink or tag member name, always with its `.flist` suffix (0-hub's
    /// normalisation).
    FlistName
);
checked_name!(
    /// A tag name (0-hub's `.tag-<name>` directory, without the prefix).
    TagName
);
checked_name!(
    /// The name of a taglink, which 0-hub never suffixes.
    TaglinkName
);

impl RepoName {
    /// A name the hub itself gives (the identity of every caller when authentication is
    /// off), valid by construction.
    pub(crate) fn stored(name: &str) -> Self {
        Self(name.to_owned())
    }
}

impl FlistName {
    /// A name read back from the namespace, which was checked when it was made (a limit
    /// lowered since must not make it unreachable to the hub's own changes).
    pub(crate) fn stored(name: &str) -> Self {
        Self(name.to_owned())
    }

    /// The name without `.flist`.
    pub fn stem(&self) -> &str {
        self.0.strip_suffix(FLIST_SUFFIX).unwrap_or(&self.0)
    }
}

/// The limits names are checked against.
#[derive(Debug, Clone, Copy)]
pub struct Names {
    /// Longest name in bytes, `.flist` included.
    pub max_len: usize,
}

impl Names {
    /// A repository name (an identity): a valid name that is not one of the hub's routes.
    pub fn repository(&self, raw: &str) -> Result<RepoName> {
        self.check("repository", raw)?;
        if reserved(raw) {
            return Err(Error::BadRequest(format!(
                "invalid repository name {}: reserved for the hub's own routes",
                quote(raw)
            )));
        }
        Ok(RepoName(raw.to_owned()))
    }

    /// An flist (or symlink) name as 0-hub normalises it: `.flist` appended unless present.
    /// An entry has one name whatever its format: `x.fl` (an rfs fl file's) is `x.flist`
    /// here, and lists as `x.fl`.
    pub fn flist(&self, raw: &str) -> Result<FlistName> {
        // The name as given is checked too: `..` must not become `...flist`.
        let stem = raw
            .strip_suffix(FLIST_SUFFIX)
            .or_else(|| raw.strip_suffix(FL_SUFFIX))
            .unwrap_or(raw);
        self.check("flist", stem)?;
        let name = format!("{stem}{FLIST_SUFFIX}");
        self.check("flist", &name)?;
        Ok(FlistName(name))
    }

    /// A tag name, which cannot look like an flist's (`/<repo>/tags/<tag>/<name>.flist`
    /// and 0-hub's listings would show the two alike).
    pub fn tag(&self, raw: &str) -> Result<TagName> {
        self.check("tag", raw)?;
        if raw.ends_with(FLIST_SUFFIX) || raw.ends_with(FL_SUFFIX) {
            return Err(Error::BadRequest(format!(
                "invalid tag name {}: a tag cannot be named like an flist",
                quote(raw)
            )));
        }
        Ok(TagName(raw.to_owned()))
    }

    /// A taglink name, which 0-hub never suffixes. Whether it may end in `.flist` is the
    /// namespace's rule (crosstag refuses it with 0-hub's message).
    pub fn taglink(&self, raw: &str) -> Result<TaglinkName> {
        self.check("taglink", raw)?;
        Ok(TaglinkName(raw.to_owned()))
    }

    fn check(&self, what: &str, name: &str) -> Result<()> {
        let bad = |reason: &str| {
            Err(Error::BadRequest(format!(
                "invalid {what} name {}: {reason}",
                quote(name)
            )))
        };
        if name.is_empty() {
            return bad("empty");
        }
        if name == "." || name == ".." {
            return bad("not a name");
        }
        if name.len() > self.max_len {
            return bad(&format!("longer than {} bytes", self.max_len));
        }
        if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
            return bad("starts or ends with a space");
        }
        // One spelling per name: `é` as one character, not `e` and a combining accent, so
        // that two names that look the same are the same bytes.
        if is_nfc_quick(name.chars()) != IsNormalized::Yes && name.nfc().ne(name.chars()) {
            return bad("not in Unicode normal form C (compose its accents)");
        }
        if let Some(c) = name.chars().find(|&c| forbidden(c)) {
            return bad(&match c {
                '/' | '\\' => format!("contains {c:?}"),
                c if c.is_control() => "contains a control character".to_owned(),
                c if invisible(c) => format!("contains U+{:04X}, an invisible character", c as u32),
                // Named by code point: the character itself is what must not be reflected.
                c => format!("contains U+{:04X}, which has a meaning in HTML", c as u32),
            });
        }
        Ok(())
    }
}

/// The form under which repository names must differ: compatibility-decomposed,
/// case-folded, composed again. `Alice`, `alice` and `ａｌｉｃｅ` (full-width) fold alike, so
/// one of them cannot pose as another's repository.
pub fn fold(name: &str) -> String {
    name.nfkc()
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .nfc()
        .collect()
}

/// Whether `name` is one of the hub's own top-level routes, which no repository may be
/// named.
pub fn reserved(name: &str) -> bool {
    RESERVED_REPOSITORIES.contains(&name)
}

fn forbidden(c: char) -> bool {
    c.is_control() || invisible(c) || matches!(c, '/' | '\\' | '<' | '>' | '"' | '\'' | '&' | '`')
}

/// Characters that change how a name looks without showing (zero-width, direction
/// overrides, soft hyphen): they would let a name pose as another.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}')
}

/// `name` as shown in a message: in double quotes, with anything a browser or terminal
/// would interpret written as an escape, so that no name is ever reflected as markup.
pub fn quote(name: &str) -> String {
    quote_parts(&[name])
}

/// `repository/name` as shown in a message: the parts quoted together, each escaped as
/// [`quote`] does.
pub fn quote_path(repository: &str, name: &str) -> String {
    quote_parts(&[repository, name])
}

fn quote_parts(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum::<usize>() + 2);
    out.push('"');
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        for c in part.chars().take(300) {
            if forbidden(c) || c == '%' {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            } else {
                out.push(c);
            }
        }
        if part.chars().count() > 300 {
            out.push('…');
        }
    }
    out.push('"');
    out
}

/// The last `/`-separated part of a path a client sent (`X-Original-Name`, a file name).
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// What Werkzeug's `secure_filename` makes of an uploaded file's name, which is what 0-hub
/// names the flist after when no `X-Original-Name` is given: path separators and runs of
/// whitespace become `_`, anything but ASCII letters, digits, `_`, `.` and `-` is dropped,
/// and leading or trailing `.` and `_` are removed. (Werkzeug first folds accented letters
/// to ASCII; here they are dropped.)
pub fn secure_filename(name: &str) -> String {
    let spaced = name.replace(['/', '\\'], " ");
    let joined = spaced.split_whitespace().collect::<Vec<_>>().join("_");
    let kept: String = joined
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .collect();
    kept.trim_matches(['.', '_']).to_owned()
}

/// `name` without its archive extension, or `None` if it has none of
/// [`ARCHIVE_EXTENSIONS`].
pub fn strip_archive_extension(name: &str) -> Option<&str> {
    ARCHIVE_EXTENSIONS
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: Names = Names { max_len: 255 };

    #[test]
    fn flist_names_get_the_suffix_once() {
        assert_eq!(N.flist("app").unwrap().as_str(), "app.flist");
        assert_eq!(N.flist("app.flist").unwrap().as_str(), "app.flist");
        assert_eq!(N.flist("zos:v3.4.0").unwrap().as_str(), "zos:v3.4.0.flist");
        assert_eq!(N.flist("with space").unwrap().as_str(), "with space.flist");
        assert_eq!(N.flist(".hidden").unwrap().as_str(), ".hidden.flist");
        assert_eq!(N.flist("ünï").unwrap().as_str(), "ünï.flist");
        assert_eq!(N.flist("app.fl").unwrap().as_str(), "app.flist");
        assert_eq!(N.flist("app.fl").unwrap().stem(), "app");
    }

    #[test]
    fn hostile_names_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a\\b",
            "a\0b",
            "a\nb",
            "a<img src=x>",
            "x\"y",
            "it's",
            "a&b",
            "`id`",
        ] {
            assert!(N.flist(bad).is_err(), "{bad:?}");
            assert!(N.flist(&format!("{bad}.flist")).is_err(), "{bad:?}.flist");
            assert!(N.repository(bad).is_err(), "{bad:?}");
            assert!(N.tag(bad).is_err(), "{bad:?}");
        }
        assert!(
            N.flist(&"x".repeat(250)).is_err(),
            "over the limit with .flist"
        );
        assert!(N.flist(&"x".repeat(249)).is_ok());
        for lookalike in [
            "tf-official\u{200B}apps",
            "\u{202E}spp",
            " padded",
            "padded ",
            "a\u{FEFF}",
        ] {
            assert!(N.repository(lookalike).is_err(), "{lookalike:?}");
            assert!(N.flist(lookalike).is_err(), "{lookalike:?}");
        }
        assert!(N.flist("with inner space").is_ok());
        for name in RESERVED_REPOSITORIES {
            let err = N.repository(name).unwrap_err().to_string();
            assert!(err.contains("reserved"), "{name}: {err}");
        }
        assert!(
            RESERVED_REPOSITORIES.is_sorted(),
            "kept sorted, so that additions are easy to review"
        );
        assert!(N.repository("maxux.3bot").is_ok());
    }

    #[test]
    fn names_are_composed_and_fold_alike_across_case_and_width() {
        assert!(N.repository("caf\u{e9}").is_ok());
        let err = N.repository("cafe\u{301}").unwrap_err().to_string();
        assert!(err.contains("normal form C"), "{err}");
        assert_eq!(fold("Alice"), fold("alice"));
        assert_eq!(fold("\u{ff41}lice"), fold("alice"));
        assert_ne!(fold("alice"), fold("alicia"));
    }

    #[test]
    fn messages_never_carry_markup() {
        let q = quote("a b<img src=x onerror=alert(1)>");
        assert!(!q.contains('<') && !q.contains('>'), "{q}");
        let err = N.flist("<script>").unwrap_err().to_string();
        assert!(!err.contains('<'), "{err}");
    }

    #[test]
    fn werkzeug_like_file_names() {
        assert_eq!(secure_filename("hello.tar.gz"), "hello.tar.gz");
        assert_eq!(secure_filename("my cool app.tar.gz"), "my_cool_app.tar.gz");
        assert_eq!(secure_filename("../../etc/passwd"), "etc_passwd");
        assert_eq!(secure_filename("a<b>.tar.gz"), "ab.tar.gz");
        assert_eq!(secure_filename("..."), "");
        assert_eq!(basename("/some/path/x.flist"), "x.flist");
        assert_eq!(strip_archive_extension("x.tar.gz"), Some("x"));
        assert_eq!(strip_archive_extension("x.tar.zst"), Some("x"));
        assert_eq!(strip_archive_extension("x.zip"), None);
    }
}
