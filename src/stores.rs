//! Which chunk store a command uses.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use chunkstore::ChunkStore;

/// The local store used when none is named: `$XDG_DATA_HOME/flisthub/store`
/// (`~/.local/share/flisthub/store`).
pub fn default_store_url() -> Result<String> {
    let dirs = directories::ProjectDirs::from("", "", "flisthub")
        .context("no home directory to keep the default store in; pass --store")?;
    let path: PathBuf = dirs.data_dir().join("store");
    Ok(format!("dir://{}", path.display()))
}

/// The store to write to: the one named, or the default local store.
pub async fn for_writing(named: Option<&str>) -> Result<Arc<dyn ChunkStore>> {
    let url = match named {
        Some(url) => url.to_owned(),
        None => default_store_url()?,
    };
    chunkstore::open(&url).await.map_err(Into::into)
}

/// The store to read an flist's chunks from: the one named; else the first route recorded
/// in the flist that can be opened; else the default local store.
pub async fn for_reading(
    named: Option<&str>,
    flist: &std::path::Path,
) -> Result<Arc<dyn ChunkStore>> {
    if let Some(url) = named {
        return Ok(chunkstore::open(url).await?);
    }
    let routes = flist::Flist::open(flist)?.metadata()?.routes()?;
    for route in routes {
        match chunkstore::open(&route).await {
            Ok(store) => return Ok(store),
            Err(e) => tracing::debug!(%route, error = %e, "route not usable"),
        }
    }
    for_writing(None).await
}
