//! Pipelines between filesystem trees, tar streams and flists.
//!
//! * [`pack_dir`] and [`pack_tar`] turn a directory or a tar stream (plain, gzip or zstd)
//!   into an flist, storing the chunks a store lacks; both stream with bounded memory and
//!   use every core (see the `pack` module for the pipeline).
//! * [`pack_image`] does the same for a container image, from its registry or the local
//!   Docker daemon (see the `image` module).
//! * [`extract`] recreates a tree from an flist, verifying every chunk.
//! * [`cat`] streams one file of an flist.
//! * [`extract_legacy`] and [`cat_legacy`] do the same for 0-flist and fl files (see
//!   [`LegacyFlist`]), reading their blocks from a [`BlockSource`].
//!
//! All are async functions that do their work on blocking threads; [`Progress`] exposes
//! live counters for progress bars and job events.

#![forbid(unsafe_code)]

mod cat;
mod error;
mod extract;
mod guard;
#[cfg(feature = "images")]
mod image;
mod legacy;
mod naming;
mod pack;
mod pipe;
mod progress;
mod tarball;
mod tree;
mod windows;

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chunkstore::ChunkStore;
use flist::Source;
use tokio::runtime::Handle;

pub use cat::{cat, cat_legacy};
pub use error::{Error, Result, escape};
pub use extract::{ExtractOptions, ExtractSummary};
#[cfg(feature = "images")]
pub use image::{
    Egress, ImageConfig, ImageRequest, ImageSource, ImageSummary, OpenedImage, flist_name,
    open_image, pack_image, registry_of, repository_of,
};
pub use legacy::{BlockSource, BlockSpan, LegacyBlock, LegacyFlist, StoreBlocks, read_blocks};
pub use naming::{Credentials, ImageFailure, Platform};
pub use pack::{LateMetadata, Limits, PackOptions, PackSummary, README_LIMIT};
pub use pipe::{PipeReader, pipe};
pub use progress::Progress;
pub use windows::FileWindows;

/// Packs the directory tree at `root` into the flist `out`, storing new chunks in `store`.
pub async fn pack_dir(
    root: PathBuf,
    out: PathBuf,
    store: Arc<dyn ChunkStore>,
    options: PackOptions,
    progress: Arc<Progress>,
) -> Result<PackSummary> {
    let name = root.file_name().unwrap_or(root.as_os_str());
    let source = source("directory", &name.to_string_lossy());
    // An earlier version of the output inside the tree is not packed into the new one.
    let skip = std::fs::metadata(&out).ok().map(|m| {
        use std::os::unix::fs::MetadataExt;
        (m.dev(), m.ino())
    });
    pack(out, store, options, progress, source, move |packer| {
        tree::read_tree(&root, packer, skip)
    })
    .await
}

/// Packs the tar stream `input` (plain, gzip or zstd) into the flist `out`. `name` is
/// recorded as the source (the archive's file name, or `-` for standard input).
pub async fn pack_tar(
    input: impl Read + Send + 'static,
    name: String,
    out: PathBuf,
    store: Arc<dyn ChunkStore>,
    options: PackOptions,
    progress: Arc<Progress>,
) -> Result<PackSummary> {
    let source = source("tar", &name);
    pack(out, store, options, progress, source, move |packer| {
        tarball::read_tar(input, packer)
    })
    .await
}

/// Runs a source's `read` into a packer on a blocking thread, then writes the flist.
async fn pack(
    out: PathBuf,
    store: Arc<dyn ChunkStore>,
    options: PackOptions,
    progress: Arc<Progress>,
    source: Source,
    read: impl FnOnce(&mut pack::Packer) -> Result<()> + Send + 'static,
) -> Result<PackSummary> {
    let runtime = Handle::current();
    let routes = store.routes();
    let cancel = options.cancel.clone();
    blocking(move || {
        let mut packer = pack::Packer::new(&out, store, runtime, options, progress)?;
        read(&mut packer)?;
        packer.finish(source, routes)
    })
    .await
    // A source cut short because of the cancellation fails with whatever it met; the
    // cancellation is the reason.
    .map_err(|e| {
        if cancel.is_cancelled() {
            Error::Cancelled
        } else {
            e
        }
    })
}

/// Recreates the tree of `flist` under `dest`, reading chunks from `store`.
pub async fn extract(
    flist: PathBuf,
    dest: PathBuf,
    store: Arc<dyn ChunkStore>,
    options: ExtractOptions,
    progress: Arc<Progress>,
) -> Result<ExtractSummary> {
    let runtime = Handle::current();
    blocking(move || extract::extract_native(&flist, &dest, store, runtime, options, progress))
        .await
}

/// Recreates the tree of a 0-flist or fl file under `dest`, reading its blocks from
/// `blocks`, with the safety and the problem reports of [`extract`].
pub async fn extract_legacy(
    flist: Arc<LegacyFlist>,
    dest: PathBuf,
    blocks: Arc<dyn BlockSource>,
    options: ExtractOptions,
    progress: Arc<Progress>,
) -> Result<ExtractSummary> {
    let runtime = Handle::current();
    blocking(move || extract::extract_legacy(&flist, &dest, blocks, runtime, options, progress))
        .await
}

/// Asks a running pipeline to stop. Pipelines check it between entries and chunks, then
/// fail with [`Error::Cancelled`] and leave nothing behind (no flist is written). Clones
/// share the flag.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            return Err(Error::Cancelled);
        }
        Ok(())
    }
}

fn source(kind: &str, name: &str) -> Source {
    Source {
        kind: kind.into(),
        name: name.into(),
        digest: None,
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Worker(e.to_string()))?
}
