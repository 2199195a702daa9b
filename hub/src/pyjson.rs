//! JSON as 0-hub wrote it, byte for byte where clients can see it: the encoding, used by
//! the HTTP answers, the contents dump and the job events alike.
//!
//! 0-hub answered in two styles (reference section 5.1): `json.dumps` for its API
//! (separators `", "` and `": "`), and Flask's `jsonify` for authentication and read-only
//! errors (compact). Both escape every non-ASCII character as `\uXXXX` and end with a
//! newline; here `<`, `>` and `&` are escaped the same way too (JSON readers see the same
//! text). Raw replies (listings, info) are the bare value; the others are an envelope with
//! `status`, and `message` or `payload`.

use std::io;

use serde::Serialize;

/// Like Python's `json.dumps(value)`.
pub fn python(value: &impl Serialize) -> Vec<u8> {
    encode(value, true)
}

/// Like Flask's `jsonify(value)` (without the sorting of keys: callers give them in order).
pub fn compact(value: &impl Serialize) -> Vec<u8> {
    encode(value, false)
}

fn encode(value: &impl Serialize, python: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, Ascii { python });
    // Serialising our own plain data structures into a Vec cannot fail.
    let _ = value.serialize(&mut serializer);
    out
}

struct Ascii {
    python: bool,
}

impl serde_json::ser::Formatter for Ascii {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.separator(w, first)
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.separator(w, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(if self.python { b": " } else { b":" })
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            // `<`, `>` and `&` too, as Go's encoding/json does: whatever text a value holds
            // (a readme, a message quoting input), the JSON never carries markup.
            if c.is_ascii() && !matches!(c, '<' | '>' | '&') {
                continue;
            }
            w.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
}

impl Ascii {
    fn separator<W: ?Sized + io::Write>(&self, w: &mut W, first: bool) -> io::Result<()> {
        match (first, self.python) {
            (true, _) => Ok(()),
            (false, true) => w.write_all(b", "),
            (false, false) => w.write_all(b","),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_separators_and_ascii_escapes() {
        let value = serde_json::json!({"a": [1, 2], "b": "é😀<"});
        assert_eq!(
            String::from_utf8(python(&value)).unwrap(),
            r#"{"a": [1, 2], "b": "\u00e9\ud83d\ude00\u003c"}"#
        );
        assert_eq!(
            String::from_utf8(compact(&value)).unwrap(),
            r#"{"a":[1,2],"b":"\u00e9\ud83d\ude00\u003c"}"#
        );
    }
}
