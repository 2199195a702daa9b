//! Metadata values as zflist writes them: JSON texts in jansson's default layout
//! (`{"host": "hub.example", "port": 9900}`: a space after every `:` and `,`, keys in the
//! order they were set).

use serde_json::Value;

use crate::error::{Error, Result};

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

    /// The `backend` metadata as g8ufs reads it: `host` a string, `port` a number (a port
    /// given as a string is refused, as g8ufs refuses it), `namespace` and `password`
    /// optional strings. A backend reached through a local socket (`zflist metadata backend
    /// --socket`, written as port 0) is [`Error::LocalRoute`]: no other machine reads it.
    pub fn from_json(text: &str) -> Result<Backend> {
        let bad = |reason: &str| Error::Corrupt {
            format: "0-flist",
            reason: format!("the backend metadata {reason}"),
        };
        let value: Value = serde_json::from_str(text).map_err(|_| bad("is not JSON"))?;
        let object = value
            .as_object()
            .ok_or_else(|| bad("is not a JSON object"))?;
        let text_field = |name: &str| match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(&format!("has a {name} that is not a string"))),
        };
        let host = text_field("host")?.filter(|h| !h.is_empty());
        let port = match object.get("port") {
            Some(Value::Number(n)) => n.as_u64(),
            None => None,
            Some(_) => return Err(bad("has a port that is not a number")),
        };
        if object.contains_key("socket") || port == Some(0) {
            return Err(Error::LocalRoute {
                url: format!("unix socket {}", text_field("socket")?.unwrap_or_default()),
            });
        }
        let host = host.ok_or_else(|| bad("names no host"))?;
        let port = port
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| bad("names no port from 1 to 65535"))?;
        Ok(Backend {
            host,
            port,
            namespace: text_field("namespace")?.filter(|n| !n.is_empty()),
            password: text_field("password")?.filter(|p| !p.is_empty()),
        })
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
        assert_eq!(Backend::from_json(&backend.to_json()).unwrap(), backend);
        let plain = Backend::from_json(r#"{"host": "h", "port": 9900}"#).unwrap();
        assert_eq!((plain.namespace, plain.password), (None, None));
        for bad in [
            r#"{"host": "h", "port": "9900"}"#,
            r#"{"host": "h"}"#,
            r#"{"port": 9900}"#,
            r#"{"host": "h", "port": 70000}"#,
            r#"["h", 9900]"#,
            "not json",
        ] {
            assert!(
                matches!(Backend::from_json(bad), Err(Error::Corrupt { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            Backend::from_json(r#"{"host": "h", "port": 0, "socket": "/run/zdb.sock"}"#),
            Err(Error::LocalRoute { .. })
        ));
        let entrypoint = serde_json::json!(["/bin/sh", "-c", "x y"]);
        assert_eq!(zflist_json(&entrypoint), r#"["/bin/sh", "-c", "x y"]"#);
        let ports = serde_json::json!({"tcp/80": 80, "udp/53": 5353});
        assert_eq!(zflist_json(&ports), r#"{"tcp/80": 80, "udp/53": 5353}"#);
    }
}
