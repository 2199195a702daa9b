//! The `[store]` section of a configuration file: one store URL, or a router over several.
//!
//! ```toml
//! [store]
//! url = "zdb://:secret@10.0.0.5:9900/flists"
//! ```
//!
//! ```toml
//! [store]
//! backends = ["zdb://10.0.0.5/flists", "zdb://10.0.0.6/flists", "redis://10.0.0.7/0"]
//! replicas = 2        # copies of every chunk
//! write-quorum = 1    # copies a write needs acknowledged (default: replicas)
//! ```

use std::sync::Arc;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::router::Router;
use crate::store::ChunkStore;
use crate::url::{open_url, redact};

#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct StoreConfig {
    /// A single store.
    pub url: Option<String>,
    /// Or several, spread by rendezvous hashing.
    #[serde(default)]
    pub backends: Vec<String>,
    /// Copies of each chunk (router only; default 1).
    pub replicas: Option<usize>,
    /// Acknowledged copies a write needs (router only; default: all replicas).
    pub write_quorum: Option<usize>,
}

/// URLs may carry passwords: shown redacted.
impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.url.as_deref().map(redact))
            .field(
                "backends",
                &self.backends.iter().map(|u| redact(u)).collect::<Vec<_>>(),
            )
            .field("replicas", &self.replicas)
            .field("write_quorum", &self.write_quorum)
            .finish()
    }
}

impl StoreConfig {
    /// Opens the store the section describes.
    pub async fn open(&self) -> Result<Arc<dyn ChunkStore>> {
        let bad = |reason: &str| Error::Store {
            location: "[store]".into(),
            reason: reason.into(),
        };
        match (&self.url, self.backends.is_empty()) {
            (Some(url), true) => {
                if self.replicas.is_some() || self.write_quorum.is_some() {
                    return Err(bad("replicas and write-quorum go with backends, not url"));
                }
                crate::open(url).await
            }
            (None, false) => {
                let mut backends = Vec::with_capacity(self.backends.len());
                for url in &self.backends {
                    backends.push(crate::open(url).await?);
                }
                let replicas = self.replicas.unwrap_or(1);
                let quorum = self.write_quorum.unwrap_or(replicas);
                Ok(Arc::new(Router::new(backends, replicas, quorum)?))
            }
            (Some(_), false) => Err(bad("give either url or backends, not both")),
            (None, true) => Err(bad("give url (one store) or backends (a router)")),
        }
    }
}

/// Opens the stores an flist's `routes` name, for reading: the one store, or, for several
/// (the backends of a router), all of them behind a router that looks in each.
pub async fn open_routes(routes: &[String]) -> Result<Arc<dyn ChunkStore>> {
    let mut backends = Vec::with_capacity(routes.len());
    for route in routes {
        backends.push(open_url(crate::url::parse_route(route)?)?);
    }
    match backends.len() {
        0 => Err(Error::Store {
            location: "routes".into(),
            reason: "the flist names no store".into(),
        }),
        1 => Ok(backends.remove(0)),
        n => Ok(Arc::new(Router::new(backends, n, 1)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> StoreConfig {
        toml::from_str(text).unwrap()
    }

    #[tokio::test]
    async fn single_and_router_configs() {
        let dir = tempfile::tempdir().unwrap();
        let a = format!("dir://{}", dir.path().join("a").display());
        let b = format!("dir://{}", dir.path().join("b").display());
        let store = config(&format!("url = '{a}'")).open().await.unwrap();
        assert_eq!(store.location(), a);
        let router = format!("backends = ['{a}', '{b}']\nreplicas = 2\nwrite-quorum = 1");
        let store = config(&router).open().await.unwrap();
        assert!(
            store
                .location()
                .starts_with("router(replicas=2, write-quorum=1")
        );
        for (text, part) in [
            (format!("url = '{a}'\nbackends = ['{b}']"), "not both"),
            (String::new(), "give url"),
            (format!("url = '{a}'\nreplicas = 2"), "go with backends"),
            (
                format!("backends = ['{a}', '{b}']\nreplicas = 3"),
                "replicas must be 1 to 2",
            ),
            (
                format!("backends = ['{a}', '{b}']\nreplicas = 2\nwrite-quorum = 3"),
                "write-quorum must be 1 to 2",
            ),
            (format!("backends = ['{a}', '{a}']"), "listed twice"),
        ] {
            let err = config(&text).open().await.err().unwrap().to_string();
            assert!(err.contains(part), "{text}: {err}");
        }
        let typo = toml::from_str::<StoreConfig>("replica = 2")
            .unwrap_err()
            .to_string();
        assert!(typo.contains("unknown field `replica`"), "{typo}");
    }
}
