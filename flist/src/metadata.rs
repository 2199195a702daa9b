//! The `metadata` table: string keys with text values, some of them JSON, with typed
//! accessors for the keys `FORMAT.md` defines. Unknown keys are kept and copied verbatim.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::{Error, Result};

/// Metadata keys defined by the format.
pub(crate) mod keys {
    pub const FORMAT_VERSION: &str = "format-version";
    pub const CHUNKER: &str = "chunker";
    pub const HASH: &str = "hash";
    pub const CODEC: &str = "codec";
    pub const SOURCE: &str = "source";
    pub const ENTRYPOINT: &str = "entrypoint";
    pub const ENVIRON: &str = "environ";
    pub const WORKDIR: &str = "workdir";
    pub const PORTS: &str = "ports";
    pub const README: &str = "readme";
    pub const ROUTES: &str = "routes";
}

/// The content-defined chunking used to cut files, recorded so that a later pack of similar
/// content can cut it the same way (and so deduplicate against this one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerInfo {
    /// `fastcdc-2020` for the FastCDC of Xia et al. (2020) with the gear table of the
    /// `fastcdc` crate, seed 0.
    pub algorithm: String,
    pub min: u32,
    pub avg: u32,
    pub max: u32,
    /// FastCDC normalisation level.
    pub normalization: u8,
}

/// Where the tree came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// `directory`, `tar` or `image`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The directory or archive name, or the image reference.
    pub name: String,
    /// Digest of the input when known (for images, the manifest digest).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub digest: Option<String>,
}

/// The readme value has 0-hub's shape, `{"readme": text}`, so 0-hub clients show it.
#[derive(Serialize, Deserialize)]
struct Readme {
    readme: String,
}

/// The metadata of an flist: an ordered map from key to text value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: BTreeMap<String, String>,
}

impl Metadata {
    pub fn new() -> Metadata {
        Metadata::default()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.entries.insert(key.into(), value.into());
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.entries.remove(key)
    }

    /// All entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.get(key)
            .map(|text| {
                serde_json::from_str(text).map_err(|e| Error::Metadata {
                    key: key.to_owned(),
                    reason: format!("not valid JSON of the expected shape: {e}"),
                })
            })
            .transpose()
    }

    fn set_json<T: Serialize>(&mut self, key: &str, value: &T) {
        // Serialising plain data structures to a String cannot fail.
        let text = serde_json::to_string(value).unwrap_or_default();
        self.set(key, text);
    }

    /// The `format-version` key (also kept in `PRAGMA user_version`).
    pub fn format_version(&self) -> Option<&str> {
        self.get(keys::FORMAT_VERSION)
    }

    pub fn chunker(&self) -> Result<Option<ChunkerInfo>> {
        self.get_json(keys::CHUNKER)
    }

    pub fn set_chunker(&mut self, chunker: &ChunkerInfo) {
        self.set_json(keys::CHUNKER, chunker);
    }

    /// Name of the chunk key hash, `blake3-256`.
    pub fn hash(&self) -> Option<&str> {
        self.get(keys::HASH)
    }

    pub fn set_hash(&mut self, hash: &str) {
        self.set(keys::HASH, hash);
    }

    /// Name of the stored chunk encoding, e.g. `flisthub-chunk-v1/zstd`.
    pub fn codec(&self) -> Option<&str> {
        self.get(keys::CODEC)
    }

    pub fn set_codec(&mut self, codec: &str) {
        self.set(keys::CODEC, codec);
    }

    pub fn source(&self) -> Result<Option<Source>> {
        self.get_json(keys::SOURCE)
    }

    pub fn set_source(&mut self, source: &Source) {
        self.set_json(keys::SOURCE, source);
    }

    pub fn entrypoint(&self) -> Result<Option<Vec<String>>> {
        self.get_json(keys::ENTRYPOINT)
    }

    pub fn set_entrypoint(&mut self, argv: &[String]) {
        self.set_json(keys::ENTRYPOINT, &argv);
    }

    pub fn environ(&self) -> Result<Option<BTreeMap<String, String>>> {
        self.get_json(keys::ENVIRON)
    }

    pub fn set_environ(&mut self, env: &BTreeMap<String, String>) {
        self.set_json(keys::ENVIRON, env);
    }

    pub fn workdir(&self) -> Option<&str> {
        self.get(keys::WORKDIR)
    }

    pub fn set_workdir(&mut self, dir: &str) {
        self.set(keys::WORKDIR, dir);
    }

    /// Exposed ports as `<port>/<protocol>` strings.
    pub fn ports(&self) -> Result<Option<Vec<String>>> {
        self.get_json(keys::PORTS)
    }

    pub fn set_ports(&mut self, ports: &[String]) {
        self.set_json(keys::PORTS, &ports);
    }

    pub fn readme(&self) -> Result<Option<String>> {
        Ok(self.get_json::<Readme>(keys::README)?.map(|r| r.readme))
    }

    pub fn set_readme(&mut self, text: &str) {
        self.set_json(
            keys::README,
            &Readme {
                readme: text.to_owned(),
            },
        );
    }

    /// Chunk store URLs, in order of preference, that hold this flist's chunks.
    pub fn routes(&self) -> Result<Vec<String>> {
        Ok(self.get_json(keys::ROUTES)?.unwrap_or_default())
    }

    pub fn set_routes(&mut self, routes: &[String]) {
        self.set_json(keys::ROUTES, &routes);
    }
}

impl FromIterator<(String, String)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Metadata {
            entries: iter.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_round_trip() {
        let mut m = Metadata::new();
        let chunker = ChunkerInfo {
            algorithm: "fastcdc-2020".into(),
            min: 1,
            avg: 2,
            max: 3,
            normalization: 1,
        };
        m.set_chunker(&chunker);
        m.set_entrypoint(&["/bin/sh".into(), "-c".into()]);
        m.set_environ(&BTreeMap::from([("PATH".into(), "/bin".into())]));
        m.set_readme("hello");
        m.set_routes(&["dir:///x".into()]);
        assert_eq!(m.chunker().unwrap(), Some(chunker));
        assert_eq!(m.entrypoint().unwrap().unwrap(), ["/bin/sh", "-c"]);
        assert_eq!(m.environ().unwrap().unwrap()["PATH"], "/bin");
        assert_eq!(m.get("readme"), Some(r#"{"readme":"hello"}"#));
        assert_eq!(m.readme().unwrap().as_deref(), Some("hello"));
        assert_eq!(m.routes().unwrap(), ["dir:///x"]);
        assert_eq!(m.source().unwrap(), None);
    }

    #[test]
    fn malformed_json_names_the_key() {
        let mut m = Metadata::new();
        m.set("entrypoint", "not json");
        let err = m.entrypoint().unwrap_err().to_string();
        assert!(err.contains("entrypoint"), "{err}");
    }
}
