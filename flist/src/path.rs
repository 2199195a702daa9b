//! Paths inside an flist: relative, `/`-separated byte strings.

use crate::error::{Error, Result, show};

/// Longest path the format accepts, in bytes (Linux `PATH_MAX`).
pub const MAX_PATH_LEN: usize = 4096;
/// Longest single name, in bytes (Linux `NAME_MAX`).
pub const MAX_NAME_LEN: usize = 255;

/// Checks a path as the writer stores it: relative, components separated by single `/`,
/// no empty, `.` or `..` component, no NUL byte, within the length limits. The empty path
/// is the root.
pub fn validate_path(path: &[u8]) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidPath {
            path: show(path),
            reason,
        })
    };
    if path.len() > MAX_PATH_LEN {
        return bad("longer than 4096 bytes");
    }
    if path.is_empty() {
        return Ok(());
    }
    for name in path.split(|&b| b == b'/') {
        if let Err(reason) = check_name(name) {
            return bad(reason);
        }
    }
    Ok(())
}

/// Checks one directory entry name; the reason is a fixed phrase for error messages.
pub(crate) fn check_name(name: &[u8]) -> std::result::Result<(), &'static str> {
    match name {
        b"" => Err("empty component"),
        b"." | b".." => Err("'.' or '..' component"),
        _ if name.len() > MAX_NAME_LEN => Err("a component longer than 255 bytes"),
        _ if name.contains(&0) => Err("NUL byte"),
        _ if name.contains(&b'/') => Err("'/' inside a name"),
        _ => Ok(()),
    }
}

/// The staging key of a path: components joined by NUL. Because NUL sorts before every
/// byte a name can hold, ordering keys bytewise lists a tree in depth-first pre-order with
/// siblings sorted by name, and a directory's descendants form one contiguous key range.
pub(crate) fn staging_key(path: &[u8]) -> Vec<u8> {
    path.iter()
        .map(|&b| if b == b'/' { 0 } else { b })
        .collect()
}

/// Splits a staging key into (parent key, name).
pub(crate) fn split_key(key: &[u8]) -> (&[u8], &[u8]) {
    match key.iter().rposition(|&b| b == 0) {
        Some(i) => (&key[..i], &key[i + 1..]),
        None => (&[], key),
    }
}

/// Joins a directory path and a name.
pub(crate) fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(dir.len() + 1 + name.len());
    path.extend_from_slice(dir);
    if !dir.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_paths() {
        for p in [
            &b""[..],
            b"a",
            b"a/b c/\xff\xfe",
            "ünï/cödé".as_bytes(),
            b"...",
            b".hidden",
        ] {
            validate_path(p).unwrap();
        }
    }

    #[test]
    fn refuses_escapes_and_malformed_paths() {
        let long_name = vec![b'x'; 256];
        let long_path = [b"a/".repeat(2049)].concat();
        for p in [
            &b"/abs"[..],
            b"a//b",
            b"a/",
            b"./a",
            b"a/../b",
            b"..",
            b"a\0b",
            &long_name,
            &long_path,
        ] {
            assert!(validate_path(p).is_err(), "{:?} accepted", show(p));
        }
    }

    #[test]
    fn staging_keys_sort_in_preorder() {
        let mut paths = vec![&b"a-c"[..], b"a/b", b"a", b"ab", b"a/b/c", b"b"];
        paths.sort_by_key(|p| staging_key(p));
        assert_eq!(
            paths,
            vec![&b"a"[..], b"a/b", b"a/b/c", b"a-c", b"ab", b"b"]
        );
        assert_eq!(split_key(b"a\0b\0c"), (&b"a\0b"[..], &b"c"[..]));
        assert_eq!(split_key(b"a"), (&b""[..], &b"a"[..]));
    }
}
