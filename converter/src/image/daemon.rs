//! Images of the local Docker daemon (`bollard`): read through the daemon's image export
//! (what `docker save` writes). The export is one tar stream with the layers in whatever
//! order the daemon writes them, while the merge reads the top layer first, so its files are
//! spooled to a private temporary directory (removed when the conversion ends) and the layers
//! read from there.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

use bollard::Docker;
use bollard::query_parameters::CreateImageOptions;
use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;

use super::config::CONFIG_LIMIT;
use super::layers::Layers;
use super::{Credentials, ImageFailure};
use crate::error::{Error, Result};
use crate::tarball::normalize;

/// An image exported from the daemon, its files on disk.
pub(crate) struct DaemonImage {
    /// The spooled files, removed when the image is dropped.
    _spool: tempfile::TempDir,
    /// The image id (the digest of its config).
    pub digest: String,
    pub config: Vec<u8>,
    /// Layer files, bottom first.
    layers: Vec<PathBuf>,
    pub size: u64,
}

/// An entry of the export's `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Exported {
    config: String,
    layers: Vec<String>,
}

fn daemon_error(image: &str, e: bollard::errors::Error) -> Error {
    use bollard::errors::Error as E;
    let (kind, why) = match &e {
        E::DockerResponseServerError {
            status_code: 404, ..
        } => (
            ImageFailure::NotFound,
            "the daemon has no such image".to_owned(),
        ),
        E::DockerResponseServerError {
            status_code,
            message,
        } => (
            ImageFailure::Unreachable,
            format!("the daemon answered {status_code}: {message}"),
        ),
        E::DockerStreamError { error } => (ImageFailure::Unreachable, error.clone()),
        other => (
            ImageFailure::Unreachable,
            format!("the Docker daemon does not answer: {other}"),
        ),
    };
    Error::image(kind, format!("{image}: {why}"))
}

impl DaemonImage {
    /// Exports `image` from the daemon (after pulling it, with `pull`) into `spool`.
    pub(crate) async fn export(
        image: &str,
        pull: bool,
        credentials: Option<&Credentials>,
        spool: &std::path::Path,
    ) -> Result<DaemonImage> {
        let docker = Docker::connect_with_local_defaults().map_err(|e| daemon_error(image, e))?;
        if pull {
            let options = CreateImageOptions {
                from_image: Some(image.to_owned()),
                ..CreateImageOptions::default()
            };
            let auth = credentials.map(|c| bollard::auth::DockerCredentials {
                username: Some(c.username.clone()),
                password: Some(c.password.clone()),
                ..Default::default()
            });
            docker
                .create_image(Some(options), None, auth)
                .try_for_each(|_| async { Ok(()) })
                .await
                .map_err(|e| daemon_error(image, e))?;
        }
        let dir = tempfile::Builder::new()
            .prefix("flisthub-export-")
            .tempdir_in(spool)
            .map_err(|e| Error::io(spool.display(), e))?;
        let mut stream = docker.export_image(image);
        // The export is written to disk as it comes, on a blocking thread; the channel
        // waits asynchronously when the disk is slower than the daemon.
        let (tx, reader) = crate::pipe(16);
        // The writer owns the directory until it is done: if this conversion is dropped
        // midway, the directory goes only once nothing writes into it any more.
        let writer = tokio::task::spawn_blocking(move || {
            let files = unpack(reader, dir.path());
            (dir, files)
        });
        let mut failed = None;
        while let Some(piece) = stream.next().await {
            match piece {
                Ok(piece) => {
                    if tx.send(Ok(piece)).await.is_err() {
                        break; // the writer stopped: its error says why
                    }
                }
                Err(e) => {
                    failed = Some(daemon_error(image, e));
                    let _ = tx
                        .send(Err(std::io::Error::other("the export stopped")))
                        .await;
                    break;
                }
            }
        }
        drop(tx);
        let (dir, unpacked) = writer.await.map_err(|e| Error::Worker(e.to_string()))?;
        if let Some(e) = failed {
            return Err(e);
        }
        let files = unpacked?;
        let manifest = files.get("manifest.json").ok_or_else(|| {
            Error::image(
                ImageFailure::Invalid,
                format!("{image}: the export has no manifest.json"),
            )
        })?;
        let manifest = std::fs::read(manifest).map_err(|e| Error::io("manifest.json", e))?;
        let exported: Vec<Exported> = serde_json::from_slice(&manifest).map_err(|e| {
            Error::image(
                ImageFailure::Invalid,
                format!("{image}: manifest.json: {e}"),
            )
        })?;
        let [exported] = <[Exported; 1]>::try_from(exported).map_err(|all| {
            Error::image(
                ImageFailure::Invalid,
                format!("{image}: the export holds {} images", all.len()),
            )
        })?;
        let file = |name: &str| {
            files.get(name).cloned().ok_or_else(|| {
                Error::image(
                    ImageFailure::Invalid,
                    format!("{image}: the export lacks {name}"),
                )
            })
        };
        let config_path = file(&exported.config)?;
        let size = std::fs::metadata(&config_path)
            .map_err(|e| Error::io(config_path.display(), e))?
            .len();
        if size > CONFIG_LIMIT {
            return Err(Error::image(
                ImageFailure::Invalid,
                format!("{image}: an image configuration of {size} bytes"),
            ));
        }
        let config =
            std::fs::read(&config_path).map_err(|e| Error::io(config_path.display(), e))?;
        // `blobs/sha256/<hex>` (OCI layout) or `<hex>.json` (older daemons): the id either way.
        let id = exported
            .config
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".json");
        let layers = exported
            .layers
            .iter()
            .map(|l| file(l))
            .collect::<Result<Vec<_>>>()?;
        let size = layers
            .iter()
            .map(|l| std::fs::metadata(l).map(|m| m.len()).unwrap_or(0))
            .sum();
        Ok(DaemonImage {
            _spool: dir,
            digest: format!("sha256:{id}"),
            config,
            layers,
            size,
        })
    }
}

/// Writes the regular files of the export into `root`; returns them by archive name.
fn unpack(input: impl Read, root: &std::path::Path) -> Result<HashMap<String, PathBuf>> {
    let mut files = HashMap::new();
    let mut archive = tar::Archive::new(input);
    let entries = archive
        .entries()
        .map_err(|e| Error::Input(format!("reading the daemon's export: {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| Error::Input(format!("reading the daemon's export: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let name = normalize(&raw).map_err(|bad| Error::name(&raw, bad))?;
        let name = String::from_utf8(name).map_err(|_| Error::entry(&raw, "not UTF-8"))?;
        // Flat names on disk: the export's directories do not matter here.
        let path = root.join(format!("{}", files.len()));
        let mut out = std::fs::File::create(&path).map_err(|e| Error::io(path.display(), e))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| Error::io(path.display(), e))?;
        files.insert(name, path);
    }
    Ok(files)
}

impl Layers for DaemonImage {
    fn count(&self) -> usize {
        self.layers.len()
    }

    fn open(&mut self, index: usize) -> Result<Box<dyn Read + Send>> {
        let path = &self.layers[index];
        let file = std::fs::File::open(path).map_err(|e| Error::io(path.display(), e))?;
        Ok(Box::new(file))
    }
}
