//! Writing the 0-flist and fl renditions of one native flist, from its tree and the window
//! keys of its contents. Deterministic: the same flist and the same gateway address give the
//! same bytes (the legacy writers fix every header and row order).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use flist::{Flist, NodeKind, Walk};
use legacy::window::WindowKeys;
use legacy::zero::{Backend, zflist_json};
use legacy::{Tree, fl, zero};
use serde_json::Value;

use super::content::{Content, ContentId};
use crate::error::{Error, Result};

/// Where nodes read the blocks: the gateway's public address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// `zdb://host:port`, as configured or derived.
    pub url: String,
    pub host: String,
    pub port: u16,
}

impl Gateway {
    /// The gateway at `url` (`zdb://host:port`, checked when the configuration was read).
    pub fn parse(url: &str) -> Result<Gateway> {
        let bad = || Error::Config(format!("gateway.public-url {url:?}: not zdb://host:port"));
        let address = url.strip_prefix("zdb://").ok_or_else(bad)?;
        let address = address.split('/').next().unwrap_or_default();
        let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Gateway {
            url: format!("zdb://{address}"),
            host: host.to_owned(),
            port: port.parse().map_err(|_| bad())?,
        })
    }
}

/// The contents of a native flist's regular files: each distinct content once, and which
/// content each file path holds.
pub struct Contents {
    pub distinct: Vec<Content>,
    pub by_path: HashMap<Vec<u8>, ContentId>,
}

impl Contents {
    pub fn of(flist: &Flist) -> Result<Contents> {
        let mut files = Vec::new();
        flist.walk(|path, entry| {
            if let NodeKind::Regular { size } = entry.node.kind {
                files.push((path.to_vec(), size, entry.clone()));
            }
            Ok(Walk::Continue)
        })?;
        let mut distinct: HashMap<ContentId, Content> = HashMap::new();
        let mut order = Vec::new();
        let mut by_path = HashMap::with_capacity(files.len());
        for (path, size, entry) in files {
            let content = Content::of(size, &flist.chunks(&entry)?);
            by_path.insert(path, content.id);
            if let std::collections::hash_map::Entry::Vacant(slot) = distinct.entry(content.id) {
                order.push(content.id);
                slot.insert(content);
            }
        }
        let distinct = order
            .into_iter()
            .filter_map(|id| distinct.remove(&id))
            .collect();
        Ok(Contents { distinct, by_path })
    }
}

/// Writes the 0-flist rendition of `flist` to `zero_out` and the fl one to `fl_out`.
pub fn write(
    flist: &Flist,
    contents: &Contents,
    windows: &HashMap<ContentId, Vec<WindowKeys>>,
    gateway: &Gateway,
    zero_out: &Path,
    fl_out: &Path,
) -> Result<()> {
    let keys_of = |path: &[u8]| -> Result<&Vec<WindowKeys>> {
        contents
            .by_path
            .get(path)
            .and_then(|id| windows.get(id))
            .ok_or_else(|| Error::Internal("a file's windows were not computed".into()))
    };
    let facts = node_facts(flist)?;

    let tree: Tree<zero::Block> = Tree::from_native(flist, |path, _| {
        Ok::<_, Error>(keys_of(path)?.iter().map(WindowKeys::zero_block).collect())
    })?;
    let mut metadata = facts.clone();
    let backend = Backend {
        host: gateway.host.clone(),
        port: gateway.port,
        namespace: None,
        password: None,
    };
    metadata.insert("backend".into(), backend.to_json());
    zero::write(&tree, &metadata, BufWriter::new(create(zero_out)?))?;
    drop(tree);

    let tree: Tree<fl::Block> = Tree::from_native(flist, |path, _| {
        Ok::<_, Error>(keys_of(path)?.iter().map(WindowKeys::fl_block).collect())
    })?;
    let routes = [fl::Route::all(gateway.url.clone())];
    fl::write(&tree, &facts, &routes, BufWriter::new(create(fl_out)?))?;
    Ok(())
}

/// What a node reads of an flist's metadata, in the texts zflist writes: `entrypoint`,
/// `environ`, `port` (`{"tcp/80": 80}` from the native `["80/tcp"]`) and `readme`.
fn node_facts(flist: &Flist) -> Result<BTreeMap<String, String>> {
    let metadata = flist.metadata()?;
    let mut facts = BTreeMap::new();
    if let Some(argv) = metadata.entrypoint()? {
        facts.insert("entrypoint".into(), zflist_json(&Value::from(argv)));
    }
    if let Some(environ) = metadata.environ()? {
        let object: serde_json::Map<String, Value> = environ
            .into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect();
        facts.insert("environ".into(), zflist_json(&Value::Object(object)));
    }
    if let Some(ports) = metadata.ports()? {
        let object: serde_json::Map<String, Value> = ports
            .iter()
            .filter_map(|p| zero_port(p))
            .map(|(k, n)| (k, Value::from(n)))
            .collect();
        if !object.is_empty() {
            facts.insert("port".into(), zflist_json(&Value::Object(object)));
        }
    }
    if let Some(readme) = metadata.readme()? {
        facts.insert(
            "readme".into(),
            zflist_json(&serde_json::json!({ "readme": readme })),
        );
    }
    Ok(facts)
}

/// `80/tcp` (an image's exposed port) as zflist's `tcp/80` and the port number; a port
/// without a protocol is TCP.
fn zero_port(port: &str) -> Option<(String, u16)> {
    let (number, protocol) = port.split_once('/').unwrap_or((port, "tcp"));
    let number: u16 = number.trim().parse().ok()?;
    let protocol = protocol.trim().to_ascii_lowercase();
    matches!(protocol.as_str(), "tcp" | "udp").then(|| (format!("{protocol}/{number}"), number))
}

fn create(path: &Path) -> Result<File> {
    File::create(path).map_err(|e| Error::io(path.display(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_addresses() {
        let g = Gateway::parse("zdb://hub.example:9900").unwrap();
        assert_eq!((g.host.as_str(), g.port), ("hub.example", 9900));
        let g = Gateway::parse("zdb://[::1]:9900/").unwrap();
        assert_eq!(
            (g.host.as_str(), g.url.as_str()),
            ("::1", "zdb://[::1]:9900")
        );
        assert!(Gateway::parse("redis://h:1").is_err());
        assert!(Gateway::parse("zdb://h").is_err());
        assert!(Gateway::parse("zdb://:1").is_err());
    }

    #[test]
    fn ports_as_zflist_writes_them() {
        assert_eq!(zero_port("80/tcp"), Some(("tcp/80".into(), 80)));
        assert_eq!(zero_port("53/UDP"), Some(("udp/53".into(), 53)));
        assert_eq!(zero_port("8080"), Some(("tcp/8080".into(), 8080)));
        assert_eq!(zero_port("x/tcp"), None);
        assert_eq!(zero_port("80/sctp"), None);
    }
}
