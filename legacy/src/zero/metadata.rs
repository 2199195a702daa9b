//! Metadata values as zflist writes them: JSON texts in jansson's default layout
//! (`{"host": "hub.example", "port": 9900}`: a space after every `:` and `,`, keys in the
//! order they were set).

use serde_json::Value;

/// Where the blocks of a 0-flist can be read: the `backend` metadata that zflist, g8ufs and
/// Zero-OS read. Anyone holding the flist can read it, so it should carry no write secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub host: String,
    /// A number in the JSON: g8ufs refuses a port given as a string.
    pub port: u16,
    pub namespace: Option<String>,
    pub password: Option<String>,
}

impl Backend {
    /// The `backend` value, with its keys in the order `zflist metadata backend` writes them.
    pub fn to_json(&self) -> String {
        let mut object = serde_json::Map::new();
        if let Some(ns) = &self.namespace {
            object.insert("namespace".into(), ns.as_str().into());
        }
        if let Some(pw) = &self.password {
            object.insert("password".into(), pw.as_str().into());
        }
        object.insert("host".into(), self.host.as_str().into());
        object.insert("port".into(), self.port.into());
        zflist_json(&Value::Object(object))
    }
}

/// `value` as jansson's `json_dumps(value, 0)` prints it, which is how zflist writes every
/// JSON metadata value (`entrypoint`, `environ`, `port`, `volume`, `readme`, `backend`).
/// Object keys keep their order.
pub fn zflist_json(value: &Value) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, SpacedFormatter);
    // Serializing a Value into memory cannot fail.
    let _ = serde::Serialize::serialize(value, &mut ser);
    String::from_utf8(out).unwrap_or_default()
}

/// serde_json's compact output with `", "` and `": "` separators.
struct SpacedFormatter;

impl serde_json::ser::Formatter for SpacedFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        separate(writer, first)
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        separate(writer, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

fn separate<W: ?Sized + std::io::Write>(writer: &mut W, first: bool) -> std::io::Result<()> {
    if first {
        Ok(())
    } else {
        writer.write_all(b", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts `zflist metadata` printed after setting these values.
    #[test]
    fn matches_what_zflist_writes() {
        let backend = Backend {
            host: "h.example".into(),
            port: 9900,
            namespace: Some("ns".into()),
            password: Some("pw".into()),
        };
        assert_eq!(
            backend.to_json(),
            r#"{"namespace": "ns", "password": "pw", "host": "h.example", "port": 9900}"#
        );
        let entrypoint = serde_json::json!(["/bin/sh", "-c", "x y"]);
        assert_eq!(zflist_json(&entrypoint), r#"["/bin/sh", "-c", "x y"]"#);
        let ports = serde_json::json!({"tcp/80": 80, "udp/53": 5353});
        assert_eq!(zflist_json(&ports), r#"{"tcp/80": 80, "udp/53": 5353}"#);
    }
}
