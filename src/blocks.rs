//! Where the blocks of a 0-flist or fl file are read from: the store named with `--store`
//! (or configured), else the hub the file was downloaded from (its `/api/v1/blocks` route),
//! then the stores the file itself names (a 0-flist's `backend` metadata, an fl file's
//! routes); the local store when nothing is named at all.
//!
//! A file's own backend and routes are 0-db namespaces, read as the node readers read them
//! (`GET <raw id>`, with the namespace password the file gives). zflist writes no backend
//! unless asked, which is why the hub the file came from is asked first.

use std::ops::RangeInclusive;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use async_trait::async_trait;
use bytes::Bytes;
use chunkstore::{BlockId, HubOptions, HubStore, NetOptions, ZdbOptions, ZdbStore};
use converter::{BlockSource, LegacyFlist, StoreBlocks};
use legacy::fl::Route;
use legacy::zero::Backend;

use crate::client::LocalFlist;
use crate::config::Config;

/// The sources of the blocks of `flist`, in the order they are asked (see the module
/// documentation).
pub async fn for_reading(
    named: Option<&str>,
    config: &Config,
    local: &LocalFlist,
    flist: &LegacyFlist,
) -> Result<Arc<dyn BlockSource>> {
    if named.is_some() || config.store.is_some() {
        let store = crate::stores::for_writing(named, config).await?;
        return Ok(Arc::new(StoreBlocks(store)));
    }
    let mut sources = Sources::default();
    if let Some(hub) = &local.hub {
        // The hub's block route, beside its chunk API (`chunkstore`'s hub store).
        let api = format!("{}/api/v1/chunks", hub.trim_end_matches('/'));
        let store = HubStore::new(HubOptions::new(api)).context("the hub's block route")?;
        let shown = format!("{}/api/v1/blocks", hub.trim_end_matches('/'));
        sources.push(ALL, shown, Ok(Arc::new(StoreBlocks(Arc::new(store)))));
    }
    // When the hub is asked first, a backend or route that cannot be used only means one
    // place less to look; without it, it is the file's only word on where its blocks are.
    match own_sources(flist) {
        Ok(own) => sources.extend(own),
        Err(e) if local.hub.is_some() => tracing::debug!("the file's own stores: {e:#}"),
        Err(e) => return Err(e),
    }
    if sources.ranged.is_empty() {
        let store = crate::stores::for_writing(None, config).await?;
        return Ok(Arc::new(StoreBlocks(store)));
    }
    Ok(Arc::new(sources))
}

/// The stores a legacy file names.
fn own_sources(flist: &LegacyFlist) -> Result<Sources> {
    let mut sources = Sources::default();
    if let Some(backend) = flist.backend()? {
        let namespace = backend.namespace.as_deref().unwrap_or("default");
        let shown = format!("zdb://{}:{}/{namespace}", backend.host, backend.port);
        sources.push(ALL, shown, zdb_backend(&backend));
    }
    let routes = flist
        .routes()
        .map_err(|e| anyhow!("the file's routes: {e}"))?;
    for route in routes {
        sources.push(
            route.start..=route.end,
            without_password(&route.url),
            zdb_route(route),
        );
    }
    Ok(sources)
}

const ALL: RangeInclusive<u8> = 0..=255;

/// The 0-db a 0-flist's `backend` metadata names.
fn zdb_backend(backend: &Backend) -> Result<Arc<dyn BlockSource>, String> {
    zdb(ZdbOptions {
        host: backend.host.clone(),
        port: backend.port,
        namespace: backend
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        password: backend.password.clone(),
        admin_password: None,
        net: NetOptions::default(),
    })
}

/// The 0-db an fl route names: `zdb://[user[:password]@]host[:port][/namespace]`, as rfs
/// reads it (the user name is not sent; the password is the namespace's). Other stores rfs
/// knows (S3) are not read here.
fn zdb_route(route: &Route) -> Result<Arc<dyn BlockSource>, String> {
    let url = reqwest::Url::parse(&route.url).map_err(|e| format!("route: {e}"))?;
    if url.scheme() != "zdb" {
        return Err(format!(
            "a {}:// route: only zdb:// routes are read",
            url.scheme()
        ));
    }
    if url.query().is_some() {
        return Err("a zdb:// route with parameters, which rfs never writes".into());
    }
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| "a route whose namespace or password is not UTF-8".to_owned())
    };
    let host = url.host_str().ok_or("a zdb:// route without a host")?;
    let namespace = decode(url.path().trim_matches('/'))?;
    zdb(ZdbOptions {
        // IPv6 addresses come bracketed in URLs.
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port: url.port().unwrap_or(9900),
        namespace: if namespace.is_empty() {
            "default".into()
        } else {
            namespace
        },
        password: url.password().map(decode).transpose()?,
        admin_password: None,
        net: NetOptions::default(),
    })
}

fn zdb(options: ZdbOptions) -> Result<Arc<dyn BlockSource>, String> {
    // The file's own 0-db holds its blocks as zflist and rfs wrote them.
    let store = ZdbStore::new(options)
        .map_err(|e| e.to_string())?
        .with_bare_block_ids();
    Ok(Arc::new(StoreBlocks(Arc::new(store))))
}

/// Sources asked in order, each for the blocks whose id starts with a byte of its range and
/// that no source before it had (an fl file's overlapping routes are replicas).
#[derive(Default)]
struct Sources {
    ranged: Vec<Ranged>,
    /// Where they all are, for messages.
    location: String,
}

struct Ranged {
    range: RangeInclusive<u8>,
    /// Where it is, without secrets.
    shown: String,
    /// Why the source cannot be used, kept to explain a block no other source had.
    source: Result<Arc<dyn BlockSource>, String>,
}

impl Sources {
    fn push(
        &mut self,
        range: RangeInclusive<u8>,
        shown: String,
        source: Result<Arc<dyn BlockSource>, String>,
    ) {
        if !self.location.is_empty() {
            self.location.push_str(", ");
        }
        self.location.push_str(&shown);
        self.ranged.push(Ranged {
            range,
            shown,
            source,
        });
    }

    fn extend(&mut self, other: Sources) {
        for ranged in other.ranged {
            self.push(ranged.range, ranged.shown, ranged.source);
        }
    }
}

/// `url` with its password, if any, replaced by `***`.
pub fn without_password(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[async_trait]
impl BlockSource for Sources {
    fn location(&self) -> &str {
        &self.location
    }

    async fn get_blocks(&self, ids: &[BlockId]) -> chunkstore::Result<Vec<Option<Bytes>>> {
        let mut found: Vec<Option<Bytes>> = vec![None; ids.len()];
        let mut failure: Option<chunkstore::Error> = None;
        for ranged in &self.ranged {
            let wanted: Vec<usize> = (0..ids.len())
                .filter(|&i| found[i].is_none() && ranged.range.contains(&ids[i].as_bytes()[0]))
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let source = match &ranged.source {
                Ok(source) => source,
                Err(reason) => {
                    failure.get_or_insert_with(|| chunkstore::Error::Store {
                        location: ranged.shown.clone(),
                        reason: reason.clone(),
                    });
                    continue;
                }
            };
            let asked: Vec<BlockId> = wanted.iter().map(|&i| ids[i]).collect();
            match source.get_blocks(&asked).await {
                Ok(answers) if answers.len() == asked.len() => {
                    for (&i, answer) in wanted.iter().zip(answers) {
                        found[i] = answer;
                    }
                }
                Ok(answers) => {
                    failure.get_or_insert_with(|| chunkstore::Error::Protocol {
                        location: source.location().to_owned(),
                        message: format!("{} answers for {} blocks", answers.len(), asked.len()),
                    });
                }
                Err(e) => {
                    tracing::debug!("{e}");
                    failure.get_or_insert(e);
                }
            }
        }
        // A block no source had is missing only if every source that should hold it said
        // so; one that could not be asked makes it an error.
        match failure {
            Some(e) if found.iter().any(Option::is_none) => Err(e),
            _ => Ok(found),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(url: &str) -> Route {
        Route {
            start: 0,
            end: 255,
            url: url.into(),
        }
    }

    #[test]
    fn zdb_routes_as_rfs_reads_them() {
        let source = zdb_route(&route("zdb://alice:p%40ss@127.0.0.1:9910/flists")).unwrap();
        assert_eq!(source.location(), "zdb://127.0.0.1:9910/flists");
        let source = zdb_route(&route("zdb://[::1]")).unwrap();
        assert_eq!(source.location(), "zdb://[::1]:9900/default");
        for refused in [
            "s3://key:secret@s3.example/bucket",
            "zdb://h/ns?password-file=/etc/shadow",
            "not a url",
        ] {
            assert!(zdb_route(&route(refused)).is_err(), "{refused}");
        }
    }

    /// A dir store holding `blocks`, as a source.
    async fn dir_with(dir: &std::path::Path, blocks: &[(BlockId, &[u8])]) -> Arc<dyn BlockSource> {
        let store = chunkstore::open(&format!("dir://{}", dir.display()))
            .await
            .unwrap();
        let blocks: Vec<(BlockId, Bytes)> = blocks
            .iter()
            .map(|(id, b)| (*id, Bytes::copy_from_slice(b)))
            .collect();
        store.put_blocks(&blocks).await.unwrap();
        Arc::new(StoreBlocks(store))
    }

    #[tokio::test]
    async fn routes_by_first_byte_then_the_next_replica() {
        let id = |first: u8| {
            let mut bytes = [7u8; 32];
            bytes[0] = first;
            BlockId::from_slice(&bytes).unwrap()
        };
        let (low, high, gone) = (id(0x10), id(0xf0), id(0x20));
        let dirs = tempfile::tempdir().unwrap();
        let a = dir_with(&dirs.path().join("a"), &[(low, b"low in a")]).await;
        let b = dir_with(
            &dirs.path().join("b"),
            &[(low, b"low in b"), (high, b"high")],
        )
        .await;
        let mut sources = Sources::default();
        sources.push(0..=0x7f, "a".into(), Ok(a));
        sources.push(ALL, "b".into(), Ok(b));
        let got = sources.get_blocks(&[high, low, gone]).await.unwrap();
        assert_eq!(
            got[0].as_deref(),
            Some(&b"high"[..]),
            "only b's range holds it"
        );
        assert_eq!(
            got[1].as_deref(),
            Some(&b"low in a"[..]),
            "the first route first"
        );
        assert_eq!(got[2], None, "missing where it should be");
        assert_eq!(sources.location(), "a, b");

        // A route that cannot be used explains a block nobody else had.
        sources.push(0x20..=0x2f, "s3://bucket".into(), Err("not read".into()));
        let err = sources.get_blocks(&[gone]).await.unwrap_err();
        assert!(err.to_string().contains("s3://bucket"), "{err}");
        assert!(sources.get_blocks(&[low]).await.unwrap()[0].is_some());
    }
}
