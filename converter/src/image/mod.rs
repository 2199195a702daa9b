//! Container images into flists.
//!
//! Two sources: a registry, read over the OCI distribution API (`client`) with the layers
//! streamed straight into the pack pipeline (`registry`), every connection under the
//! request's egress rule (`egress`); and the local Docker daemon's image export (`daemon`).
//! Either way the layers are applied as a container runtime stacks them, top layer first
//! so that nothing replaced or deleted above is chunked (`layers`), and the image's
//! configuration becomes flist metadata and, unless switched off, the `/.startup.toml`
//! Zero-OS reads (`config`).

mod client;
mod config;
mod daemon;
mod digest;
mod egress;
mod layers;
mod registry;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chunkstore::ChunkStore;
use flist::Source;

pub use config::ImageConfig;
pub use egress::Egress;

pub use crate::naming::{Credentials, ImageFailure, Platform};

use crate::error::{Error, Result};
use crate::pack::{PackOptions, PackSummary};
use crate::progress::Progress;
use daemon::DaemonImage;
use layers::{ExtraFile, Layers};
use registry::RegistryImage;

/// Where an image comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSource {
    /// Its registry (the default).
    Registry,
    /// The local Docker daemon; with `pull`, the daemon pulls it first.
    Daemon { pull: bool },
}

/// An image to convert, and how.
#[derive(Debug, Clone)]
pub struct ImageRequest {
    /// As Docker takes it: `alpine`, `alpine:3.20`, `host:5000/app@sha256:...`.
    pub image: String,
    /// Default: `linux/amd64` from a registry, the image's own from the daemon.
    pub platform: Option<Platform>,
    pub credentials: Option<Credentials>,
    pub source: ImageSource,
    /// Registries (`host[:port]`) reached over plain HTTP (loopback ones always are).
    pub insecure_registries: Vec<String>,
    /// Where a registry pull may connect (the daemon source pulls by itself).
    pub egress: Egress,
    /// Add 0-hub's `/.startup.toml` (unless the image has its own).
    pub startup_toml: bool,
    /// How long a registry may take to answer one request.
    pub timeout: Duration,
    /// Where a daemon export is spooled.
    pub spool: PathBuf,
}

/// What a conversion did.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub pack: PackSummary,
    /// The image's reference, completed (`docker.io/library/alpine:3.20`).
    pub reference: String,
    /// The manifest digest (registry) or image id (daemon).
    pub digest: String,
    pub platform: Option<Platform>,
    pub config: ImageConfig,
    /// About the image itself: hardlinks to nothing, left out.
    pub warnings: Vec<String>,
}

/// The registry (`host[:port]`) of an image reference, as Docker names it (`docker.io`
/// for Docker Hub): for picking credentials configured per registry.
pub fn registry_of(image: &str) -> Result<String> {
    Ok(registry::parse_reference(image)?.registry().to_owned())
}

/// The registry and repository of an image reference (`docker.io/library/alpine`), without
/// its tag or digest.
pub fn repository_of(image: &str) -> Result<String> {
    let reference = registry::parse_reference(image)?;
    Ok(format!(
        "{}/{}",
        reference.registry(),
        reference.repository()
    ))
}

/// The image as written, with `:latest` when it names no tag and no digest (a registry's
/// port is not a tag).
fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || last.contains('@') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

/// The name 0-hub gives the flist of an image (reference section 6.2, step 6): the image
/// with `:latest` added when it names no tag and no digest, `:` and `/` made `-`, then
/// `.flist`. Two differences, on purpose: 0-hub took a registry's port for a tag (and added
/// no `:latest` to `host:5000/app`), and left `@` of a digest in the name.
pub fn flist_name(image: &str) -> String {
    format!(
        "{}.flist",
        with_default_tag(image).replace([':', '/', '@'], "-")
    )
}

/// An image found and checked, its layers not read yet: what [`open_image`] gives.
pub struct OpenedImage {
    layers: Box<dyn Layers + Send>,
    /// The image's reference, completed (`docker.io/library/alpine:3.20`).
    pub reference: String,
    /// The manifest digest (registry) or image id (daemon): the same digest is the same
    /// flist.
    pub digest: String,
    pub platform: Option<Platform>,
    pub config: ImageConfig,
    /// Bytes of all layers as stored (compressed or not).
    pub size: u64,
    startup_toml: bool,
}

/// Finds `request`'s image: resolves the reference and the platform, reads the
/// configuration (registry), or exports the image (daemon).
pub async fn open_image(request: &ImageRequest) -> Result<OpenedImage> {
    let (layers, raw_config, reference, digest, platform, size): (
        Box<dyn Layers + Send>,
        Vec<u8>,
        String,
        String,
        Option<Platform>,
        u64,
    ) = match request.source {
        ImageSource::Registry => {
            let wanted = request
                .platform
                .clone()
                .unwrap_or_else(Platform::linux_amd64);
            let image = RegistryImage::resolve(
                &request.image,
                &wanted,
                request.credentials.as_ref(),
                &request.insecure_registries,
                request.timeout,
                request.egress,
            )
            .await?;
            let (name, digest, size) = (image.name(), image.digest.clone(), image.layers_size());
            let (config, platform) = (image.config.clone(), image.platform.clone());
            (Box::new(image), config, name, digest, platform, size)
        }
        ImageSource::Daemon { pull } => {
            // Untagged, the daemon would pull and export every tag of the repository.
            let image = DaemonImage::export(
                &with_default_tag(&request.image),
                pull,
                request.credentials.as_ref(),
                &request.spool,
            )
            .await?;
            let (digest, size, config) = (image.digest.clone(), image.size, image.config.clone());
            (
                Box::new(image),
                config,
                request.image.clone(),
                digest,
                None,
                size,
            )
        }
    };
    let config = ImageConfig::parse(&raw_config)?;
    let platform = platform.or_else(|| {
        Some(Platform {
            os: config.os.clone()?,
            architecture: config.architecture.clone()?,
            variant: config.variant.clone(),
        })
    });
    // A registry image is linux/amd64 unless another platform is asked for; the daemon's
    // is what the daemon has.
    let wanted = match request.source {
        ImageSource::Registry => Some(
            request
                .platform
                .clone()
                .unwrap_or_else(Platform::linux_amd64),
        ),
        ImageSource::Daemon { .. } => request.platform.clone(),
    };
    if let (Some(wanted), Some(actual)) = (&wanted, &platform)
        && !wanted.matches(actual)
    {
        return Err(Error::image(
            ImageFailure::Platform,
            format!("{reference} is a {actual} image, not {wanted}"),
        ));
    }
    Ok(OpenedImage {
        layers,
        reference,
        digest,
        platform,
        config,
        size,
        startup_toml: request.startup_toml,
    })
}

impl OpenedImage {
    /// Reads the layers into the flist `out`, storing new chunks in `store`.
    pub async fn pack(
        self,
        out: PathBuf,
        store: Arc<dyn ChunkStore>,
        mut options: PackOptions,
        progress: Arc<Progress>,
    ) -> Result<ImageSummary> {
        let OpenedImage {
            mut layers,
            reference,
            digest,
            platform,
            config,
            size,
            startup_toml,
        } = self;
        config.record(&mut options.metadata);
        let extra = if startup_toml {
            let content = config.startup_toml();
            vec![ExtraFile {
                path: b".startup.toml".to_vec(),
                node: config.startup_node(content.len() as u64),
                content,
            }]
        } else {
            Vec::new()
        };
        Progress::set(&progress.input_total, size);
        let source = Source {
            kind: "image".into(),
            name: reference.clone(),
            digest: Some(digest.clone()),
        };
        let warnings = Arc::new(Mutex::new(Vec::new()));
        let found = Arc::clone(&warnings);
        let pack = crate::pack(out, store, options, progress, source, move |packer| {
            let warned = layers::merge(packer, layers.as_mut(), extra)?;
            *found.lock().unwrap_or_else(|p| p.into_inner()) = warned;
            Ok(())
        })
        .await?;
        let warnings = std::mem::take(&mut *warnings.lock().unwrap_or_else(|p| p.into_inner()));
        Ok(ImageSummary {
            pack,
            reference,
            digest,
            platform,
            config,
            warnings,
        })
    }
}

/// Converts an image into the flist `out`, storing its new chunks in `store`.
pub async fn pack_image(
    request: ImageRequest,
    out: PathBuf,
    store: Arc<dyn ChunkStore>,
    options: PackOptions,
    progress: Arc<Progress>,
) -> Result<ImageSummary> {
    open_image(&request)
        .await?
        .pack(out, store, options, progress)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flist_names_as_0_hub_makes_them_with_its_port_bug_fixed() {
        assert_eq!(flist_name("ubuntu"), "ubuntu-latest.flist");
        assert_eq!(
            flist_name("threefoldtech/3bot2:corex"),
            "threefoldtech-3bot2-corex.flist"
        );
        assert_eq!(
            flist_name("localhost:5000/app"),
            "localhost-5000-app-latest.flist"
        );
        assert_eq!(flist_name("host:5000/app:1.2"), "host-5000-app-1.2.flist");
        assert_eq!(flist_name("app@sha256:abc"), "app-sha256-abc.flist");
    }

    #[test]
    fn platforms() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(Platform::linux_amd64().matches(&"linux/amd64".parse().unwrap()));
        let any_arm: Platform = "linux/arm64".parse().unwrap();
        assert!(any_arm.matches(&p) && !p.matches(&any_arm));
        assert!("linux".parse::<Platform>().is_err());
        let c = Credentials {
            username: "u".into(),
            password: "secret".into(),
        };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
