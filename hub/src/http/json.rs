//! JSON as 0-hub wrote it, byte for byte where clients can see it.
//!
//! 0-hub answered in two styles (reference section 5.1): `json.dumps` for its API
//! (separators `", "` and `": "`), and Flask's `jsonify` for authentication and read-only
//! errors (compact). Both escape every non-ASCII character as `\uXXXX` and end with a
//! newline; here `<`, `>` and `&` are escaped the same way too (JSON readers see the same
//! text). Raw replies (listings, info) are the bare value; the others are an envelope with
//! `status`, and `message` or `payload`.

use std::io;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
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

fn respond(status: StatusCode, mut body: Vec<u8>) -> Response {
    body.push(b'\n');
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A raw reply: the bare value (listings, info, contents, metadata).
pub fn raw(value: &impl Serialize) -> Response {
    respond(StatusCode::OK, python(value))
}

/// A raw reply with another status (the `/api/v1` routes use the same style).
pub fn raw_with_status(status: StatusCode, value: &impl Serialize) -> Response {
    respond(status, python(value))
}

/// A raw reply already encoded, newline included (a cached contents dump).
pub fn raw_bytes(body: bytes::Bytes) -> Response {
    raw_stream(axum::body::Body::from(body))
}

/// A raw reply written as it is sent (a contents dump being made).
pub fn raw_stream(body: axum::body::Body) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

#[derive(Serialize)]
struct Success<'a, P: Serialize> {
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<P>,
}

/// `{"status": "success"}`.
pub fn success() -> Response {
    respond(
        StatusCode::OK,
        python(&Success::<()> {
            status: "success",
            payload: None,
        }),
    )
}

/// `{"status": "success", "payload": ...}`.
pub fn success_with(payload: impl Serialize) -> Response {
    respond(
        StatusCode::OK,
        python(&Success {
            status: "success",
            payload: Some(payload),
        }),
    )
}

#[derive(Serialize)]
struct Failure<'a> {
    status: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<serde_json::Value>,
}

/// `{"status": "error", "message": ...}`, the API's error envelope.
pub fn failure(status: StatusCode, message: &str, payload: Option<serde_json::Value>) -> Response {
    respond(
        status,
        python(&Failure {
            status: "error",
            message,
            payload,
        }),
    )
}

#[derive(Serialize)]
struct CompactFailure<'a> {
    message: &'a str,
    status: &'a str,
}

/// `{"message":...,"status":"error"}`, as `jsonify` wrote authentication errors.
pub fn compact_failure(status: StatusCode, message: &str) -> Response {
    respond(
        status,
        compact(&CompactFailure {
            message,
            status: "error",
        }),
    )
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
