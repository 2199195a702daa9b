//! Images pulled straight from a registry over the OCI distribution API (`oci-client`):
//! the reference resolved as Docker resolves it, an index narrowed to the platform asked
//! for, the config read, and each layer streamed (and checked against its digest) when the
//! layer merge asks for it. Nothing is written to disk but the flist.

use std::io::{self, Read};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciDescriptor, OciImageManifest, OciManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use tokio::runtime::Handle;

use super::config::CONFIG_LIMIT;
use super::layers::Layers;
use super::{Credentials, ImageFailure, Platform};
use crate::error::{Error, Result};

/// An image resolved in its registry: what to read, not read yet.
pub(crate) struct RegistryImage {
    client: Client,
    reference: Reference,
    /// The manifest's digest (of the platform's manifest, for an index).
    pub digest: String,
    pub platform: Option<Platform>,
    pub config: Vec<u8>,
    layers: Vec<OciDescriptor>,
    runtime: Handle,
}

/// Where a registry may be reached over plain HTTP: on this machine, as Docker allows, and
/// the ones the configuration calls insecure.
fn protocol(registry: &str, insecure: &[String]) -> ClientProtocol {
    let host = registry
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(registry, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback || insecure.iter().any(|r| r == registry) {
        ClientProtocol::HttpsExcept(vec![registry.to_owned()])
    } else {
        ClientProtocol::Https
    }
}

/// Parses an image reference as Docker does: `alpine` is `docker.io/library/alpine:latest`,
/// `host:5000/app` is `app` on `host:5000`, a digest (`@sha256:...`) pins the content.
pub(crate) fn parse_reference(image: &str) -> Result<Reference> {
    image.parse().map_err(|e| {
        Error::image(
            ImageFailure::Reference,
            format!("{image:?} is not an image reference: {e}"),
        )
    })
}

impl RegistryImage {
    pub(crate) async fn resolve(
        image: &str,
        platform: &Platform,
        credentials: Option<&Credentials>,
        insecure: &[String],
        timeout: Duration,
    ) -> Result<RegistryImage> {
        let reference = parse_reference(image)?;
        let registry = reference.resolve_registry().to_owned();
        let client = Client::new(ClientConfig {
            protocol: protocol(&registry, insecure),
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(timeout),
            ..ClientConfig::default()
        });
        let auth = match credentials {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
            None => RegistryAuth::Anonymous,
        };
        let (manifest, digest) = client
            .pull_manifest(&reference, &auth)
            .await
            .map_err(|e| failure(&reference, e))?;
        let (manifest, digest, chosen) = match manifest {
            OciManifest::Image(manifest) => (manifest, digest, None),
            OciManifest::ImageIndex(index) => {
                let available: Vec<(Platform, String)> = index
                    .manifests
                    .iter()
                    .filter_map(|m| {
                        let p = m.platform.as_ref()?;
                        Some((
                            Platform {
                                os: p.os.to_string(),
                                architecture: p.architecture.to_string(),
                                variant: p.variant.clone(),
                            },
                            m.digest.clone(),
                        ))
                    })
                    .collect();
                let Some((found, digest)) =
                    available.iter().find(|(p, _)| platform.matches(p)).cloned()
                else {
                    let listed: Vec<String> =
                        available.iter().map(|(p, _)| p.to_string()).collect();
                    return Err(Error::image(
                        ImageFailure::Platform,
                        format!(
                            "{} has no {platform} image; it has: {}",
                            reference.whole(),
                            if listed.is_empty() {
                                "none".into()
                            } else {
                                listed.join(", ")
                            }
                        ),
                    ));
                };
                let pinned = Reference::with_digest(
                    reference.registry().to_owned(),
                    reference.repository().to_owned(),
                    digest,
                );
                let (manifest, digest) = client
                    .pull_image_manifest(&pinned, &auth)
                    .await
                    .map_err(|e| failure(&pinned, e))?;
                (manifest, digest, Some(found))
            }
        };
        let config = read_config(&client, &reference, &manifest).await?;
        Ok(RegistryImage {
            client,
            reference,
            digest,
            platform: chosen,
            config,
            layers: manifest.layers,
            runtime: Handle::current(),
        })
    }

    /// The image's reference, completed as Docker completes it.
    pub(crate) fn name(&self) -> String {
        self.reference.whole()
    }

    /// Bytes of all layers as the registry sends them.
    pub(crate) fn layers_size(&self) -> u64 {
        self.layers.iter().map(|l| l.size.max(0) as u64).sum()
    }
}

async fn read_config(
    client: &Client,
    reference: &Reference,
    manifest: &OciImageManifest,
) -> Result<Vec<u8>> {
    if manifest.config.size < 0 || manifest.config.size as u64 > CONFIG_LIMIT {
        return Err(Error::image(
            ImageFailure::Invalid,
            format!(
                "the image configuration declares {} bytes; at most {CONFIG_LIMIT} are read",
                manifest.config.size
            ),
        ));
    }
    // Streamed and capped: a registry may send more than it declared (the digest check
    // comes only at the end).
    let mut stream = client
        .pull_blob_stream(reference, &manifest.config)
        .await
        .map_err(|e| failure(reference, e))?
        .stream;
    let mut config = Vec::with_capacity(manifest.config.size as usize);
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| {
            Error::image(
                ImageFailure::Invalid,
                format!("{}: the image configuration: {e}", reference.whole()),
            )
        })?;
        if (config.len() + piece.len()) as u64 > CONFIG_LIMIT {
            return Err(Error::image(
                ImageFailure::Invalid,
                format!("the image configuration is larger than {CONFIG_LIMIT} bytes"),
            ));
        }
        config.extend_from_slice(&piece);
    }
    Ok(config)
}

impl Layers for RegistryImage {
    fn count(&self) -> usize {
        self.layers.len()
    }

    fn open(&mut self, index: usize) -> Result<Box<dyn Read + Send>> {
        let layer = self.layers[index].clone();
        let (client, reference) = (&self.client, &self.reference);
        let sized = self
            .runtime
            .block_on(client.pull_blob_stream(reference, &layer))
            .map_err(|e| failure(reference, e))?;
        Ok(Box::new(StreamReader {
            runtime: self.runtime.clone(),
            stream: sized.stream.fuse(),
            current: Bytes::new(),
            digest: layer.digest,
        }))
    }
}

/// A layer's byte stream as a blocking reader (the merge runs on a blocking thread).
struct StreamReader {
    runtime: Handle,
    /// Fused: oci-client checks the digest when the stream ends, and again (on nothing)
    /// if it is polled past its end.
    stream: futures_util::stream::Fuse<BoxStream<'static, io::Result<Bytes>>>,
    current: Bytes,
    digest: String,
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.runtime.block_on(self.stream.next()) {
                Some(Ok(piece)) => self.current = piece,
                Some(Err(e)) => {
                    return Err(io::Error::other(format!("layer {}: {e}", self.digest)));
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// What a registry's answer means for the one who asked for the image.
fn failure(reference: &Reference, e: OciDistributionError) -> Error {
    use OciDistributionError as E;
    let image = reference.whole();
    let (kind, why) = match &e {
        E::ImageManifestNotFoundError(_) => (ImageFailure::NotFound, "no such image or tag".into()),
        E::RegistryError { envelope, .. } => {
            let code = envelope.errors.first().map(|e| &e.code);
            let kind = match code {
                Some(
                    OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::NotFound
                    | OciErrorCode::BlobUnknown,
                ) => ImageFailure::NotFound,
                Some(OciErrorCode::Unauthorized | OciErrorCode::Denied) => ImageFailure::Denied,
                _ => ImageFailure::Unreachable,
            };
            let messages: Vec<&str> = envelope.errors.iter().map(|e| e.message.as_str()).collect();
            let answer = format!("the registry answered: {}", messages.join("; "));
            match kind {
                ImageFailure::NotFound => (kind, format!("no such image or tag ({answer})")),
                _ => (kind, answer),
            }
        }
        E::AuthenticationFailure(why) => (
            ImageFailure::Denied,
            format!("authentication failed: {why}"),
        ),
        E::UnauthorizedError { .. } => (
            ImageFailure::Denied,
            "the registry refused the credentials (or wants some)".into(),
        ),
        E::ServerError { code, message, .. } => (
            if *code == 404 {
                ImageFailure::NotFound
            } else {
                ImageFailure::Unreachable
            },
            format!("the registry answered {code}: {message}"),
        ),
        E::RequestError(e) => (
            ImageFailure::Unreachable,
            format!("the registry does not answer: {}", describe(e)),
        ),
        E::DigestError(_) => (
            ImageFailure::Invalid,
            format!("content does not match its digest: {e}"),
        ),
        _ => (ImageFailure::Invalid, e.to_string()),
    };
    Error::image(kind, format!("{image}: {why}"))
}

/// A reqwest error with its causes (its own message alone is "error sending request").
fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_as_docker_resolves_them() {
        let r = parse_reference("alpine").unwrap();
        assert_eq!(r.whole(), "docker.io/library/alpine:latest");
        let r = parse_reference("localhost:5000/app/web").unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("localhost:5000", "app/web", Some("latest"))
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = parse_reference(&format!("host:5000/app@{digest}")).unwrap();
        assert_eq!((r.tag(), r.digest()), (None, Some(digest.as_str())));
        assert!(parse_reference("not an image").is_err());
        assert!(parse_reference("app:bad tag").is_err());
    }

    #[test]
    fn plain_http_only_for_loopback_and_listed_registries() {
        let plain = |r: &str, insecure: &[String]| {
            matches!(protocol(r, insecure), ClientProtocol::HttpsExcept(_))
        };
        assert!(plain("localhost:5000", &[]));
        assert!(plain("127.0.0.1:5000", &[]));
        assert!(plain("[::1]:5000", &[]));
        assert!(!plain("registry.example.com", &[]));
        assert!(plain("registry.lan:5000", &["registry.lan:5000".into()]));
        assert!(!plain("index.docker.io", &["registry.lan:5000".into()]));
    }
}
