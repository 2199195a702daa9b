//! Which chunk store a command uses.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use chunkstore::ChunkStore;

use crate::client::LocalFlist;
use crate::config::Config;

/// The local store used when none is named: `$XDG_DATA_HOME/flisthub/store`
/// (`~/.local/share/flisthub/store`).
fn default_store_url() -> Result<String> {
    let dirs = directories::ProjectDirs::from("", "", "flisthub")
        .context("no home directory to keep the default store in; pass --store")?;
    let path: PathBuf = dirs.data_dir().join("store");
    Ok(format!("dir://{}", path.display()))
}

/// The store to write to (or to manage): the one named with `--store`, else the
/// configuration's `[store]`, else the default local store.
pub async fn for_writing(named: Option<&str>, config: &Config) -> Result<Arc<dyn ChunkStore>> {
    if let Some(url) = named {
        return Ok(chunkstore::open(url).await?);
    }
    if let Some(store) = &config.store {
        return Ok(store.open().await?);
    }
    Ok(chunkstore::open(&default_store_url()?).await?)
}

/// The store to read an flist's chunks from: `--store`, else the configuration's store,
/// else the routes recorded in the flist, else the chunk API of the hub it was downloaded
/// from, else the default local store.
pub async fn for_reading(
    named: Option<&str>,
    config: &Config,
    flist: &LocalFlist,
) -> Result<Arc<dyn ChunkStore>> {
    if named.is_some() || config.store.is_some() {
        return for_writing(named, config).await;
    }
    let routes = flist::Flist::open(&flist.path)?.metadata()?.routes()?;
    if routes.is_empty() {
        return match &flist.hub {
            Some(hub) => Ok(chunkstore::open(&format!("{hub}/api/v1/chunks")).await?),
            None => for_writing(None, config).await,
        };
    }
    chunkstore::open_routes(&routes)
        .await
        .with_context(|| format!("opening the stores {} names", flist.path.display()))
}
