//! Images pulled straight from a registry over the OCI distribution API (`client`): the
//! reference resolved as Docker resolves it, an index narrowed to the platform asked for,
//! the config read, and each layer streamed (and checked against its size and digest) when
//! the layer merge asks for it. Nothing is written to disk but the flist.

use std::io::{self, Read};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use oci_spec::distribution::Reference;
use serde::Deserialize;
use tokio::runtime::Handle;

use super::client::{RegistryClient, transport_phrase};
use super::config::CONFIG_LIMIT;
use super::digest::Verifier;
use super::egress::Egress;
use super::layers::Layers;
use super::{Credentials, ImageFailure, Platform};
use crate::error::{Error, Result};

/// An image resolved in its registry: what to read, not read yet.
pub(crate) struct RegistryImage {
    client: RegistryClient,
    reference: Reference,
    /// The manifest's digest (of the platform's manifest, for an index).
    pub digest: String,
    pub platform: Option<Platform>,
    pub config: Vec<u8>,
    layers: Vec<Descriptor>,
    runtime: Handle,
}

/// What a pull reads of a manifest or an index, OCI and Docker schema 2 alike.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u32,
    manifests: Option<Vec<IndexEntry>>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
}

#[derive(Debug, Clone, Deserialize)]
struct Descriptor {
    digest: String,
    size: u64,
}

#[derive(Deserialize)]
struct IndexEntry {
    digest: String,
    platform: Option<EntryPlatform>,
}

#[derive(Deserialize)]
struct EntryPlatform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

enum Parsed {
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    Index(Vec<IndexEntry>),
}

/// Whether a registry is reached over plain HTTP: on this machine, as Docker allows, and
/// the ones the configuration calls insecure.
fn plain_http(registry: &str, insecure: &[String]) -> bool {
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
    loopback || insecure.iter().any(|r| r == registry)
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
        egress: Egress,
    ) -> Result<RegistryImage> {
        let reference = parse_reference(image)?;
        let plain = plain_http(reference.resolve_registry(), insecure);
        let client = RegistryClient::new(&reference, credentials, plain, timeout, egress)?;
        let wanted = reference.digest().or(reference.tag()).unwrap_or("latest");
        let (body, digest) = client.manifest(wanted).await?;
        let (config, layers, digest, chosen) = match parse(&client, &body)? {
            Parsed::Image { config, layers } => (config, layers, digest, None),
            Parsed::Index(entries) => {
                let (found, digest) = choose(&reference, &entries, platform)?;
                let (body, digest) = client.manifest(&digest).await?;
                match parse(&client, &body)? {
                    Parsed::Image { config, layers } => (config, layers, digest, Some(found)),
                    Parsed::Index(_) => {
                        return Err(client.invalid("an index names another index"));
                    }
                }
            }
        };
        if config.size > CONFIG_LIMIT {
            return Err(client.invalid(&format!(
                "the image configuration declares {} bytes; at most {CONFIG_LIMIT} are read",
                config.size
            )));
        }
        let config = client
            .small_blob(&config.digest, CONFIG_LIMIT, "the image configuration")
            .await?;
        Ok(RegistryImage {
            client,
            reference,
            digest,
            platform: chosen,
            config,
            layers,
            runtime: Handle::current(),
        })
    }

    /// The image's reference, completed as Docker completes it.
    pub(crate) fn name(&self) -> String {
        self.reference.whole()
    }

    /// Bytes of all layers as the registry sends them.
    pub(crate) fn layers_size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

/// A manifest or an index; every digest it names one this hub checks (they go into URLs
/// and messages).
fn parse(client: &RegistryClient, body: &[u8]) -> Result<Parsed> {
    let manifest: Manifest = serde_json::from_slice(body).map_err(|e| {
        tracing::debug!(error = %e, "a manifest that does not parse");
        client.invalid("the manifest is not an image manifest or index this hub reads")
    })?;
    let checked = |digest: &str| client.verifier(digest).map(drop);
    match manifest {
        Manifest {
            schema_version: 2,
            manifests: Some(entries),
            ..
        } => {
            for entry in &entries {
                checked(&entry.digest)?;
            }
            Ok(Parsed::Index(entries))
        }
        Manifest {
            schema_version: 2,
            config: Some(config),
            layers: Some(layers),
            ..
        } => {
            for descriptor in std::iter::once(&config).chain(&layers) {
                checked(&descriptor.digest)?;
            }
            Ok(Parsed::Image { config, layers })
        }
        _ => Err(client.invalid(
            "the manifest is not an image manifest or index this hub reads (OCI, Docker schema 2)",
        )),
    }
}

/// The entry of an index for `wanted`, or the list of platforms it has.
fn choose(
    reference: &Reference,
    entries: &[IndexEntry],
    wanted: &Platform,
) -> Result<(Platform, String)> {
    // Names as registries write them; an entry with others (attestations say "unknown")
    // is never chosen, nor listed.
    let plain = |s: &str| {
        !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    let available: Vec<(Platform, &str)> = entries
        .iter()
        .filter_map(|e| {
            let p = e.platform.as_ref()?;
            let fields = [Some(&p.os), Some(&p.architecture), p.variant.as_ref()];
            fields.iter().flatten().all(|f| plain(f.as_str())).then(|| {
                (
                    Platform {
                        os: p.os.clone(),
                        architecture: p.architecture.clone(),
                        variant: p.variant.clone(),
                    },
                    e.digest.as_str(),
                )
            })
        })
        .collect();
    if let Some((found, digest)) = available.iter().find(|(p, _)| wanted.matches(p)) {
        return Ok((found.clone(), (*digest).to_owned()));
    }
    let listed: Vec<String> = available.iter().map(|(p, _)| p.to_string()).collect();
    Err(Error::image(
        ImageFailure::Platform,
        format!(
            "{} has no {wanted} image; it has: {}",
            reference.whole(),
            if listed.is_empty() {
                "none".into()
            } else {
                listed.join(", ")
            }
        ),
    ))
}

impl Layers for RegistryImage {
    fn count(&self) -> usize {
        self.layers.len()
    }

    fn open(&mut self, index: usize) -> Result<Box<dyn Read + Send>> {
        let layer = self.layers[index].clone();
        let response = self.runtime.block_on(self.client.blob(&layer.digest))?;
        let verifier = self.client.verifier(&layer.digest)?;
        Ok(Box::new(LayerReader {
            runtime: self.runtime.clone(),
            stream: response.bytes_stream().boxed(),
            current: Bytes::new(),
            verifier: Some(verifier),
            remaining: layer.size,
            digest: layer.digest,
        }))
    }
}

/// A layer's bytes as a blocking reader (the merge runs on a blocking thread), refused when
/// they are more or fewer than the manifest says or do not match the digest.
struct LayerReader {
    runtime: Handle,
    stream: BoxStream<'static, reqwest::Result<Bytes>>,
    current: Bytes,
    /// Until the end has been checked.
    verifier: Option<Verifier>,
    remaining: u64,
    digest: String,
}

impl Read for LayerReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let refuse = |digest: &str, why: &str| io::Error::other(format!("layer {digest}: {why}"));
        while self.current.is_empty() {
            if self.verifier.is_none() {
                return Ok(0);
            }
            match self.runtime.block_on(self.stream.next()) {
                Some(Ok(piece)) => {
                    if piece.len() as u64 > self.remaining {
                        return Err(refuse(&self.digest, "longer than the manifest says"));
                    }
                    self.remaining -= piece.len() as u64;
                    if let Some(verifier) = self.verifier.as_mut() {
                        verifier.update(&piece);
                    }
                    self.current = piece;
                }
                Some(Err(e)) => {
                    tracing::debug!(digest = %self.digest, error = %e, "reading a layer");
                    return Err(refuse(&self.digest, transport_phrase(&e)));
                }
                None => {
                    // Fewer bytes than the manifest says cannot have its digest either.
                    let verifier = self.verifier.take();
                    if self.remaining > 0 || !verifier.is_some_and(Verifier::matches) {
                        return Err(refuse(&self.digest, "content does not match its digest"));
                    }
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_as_docker_resolves_them() {
        let r = parse_reference("alpine").unwrap();
        assert_eq!(r.whole(), "docker.io/library/alpine:latest");
        assert_eq!(r.resolve_registry(), "index.docker.io");
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
        assert!(plain_http("localhost:5000", &[]));
        assert!(plain_http("127.0.0.1:5000", &[]));
        assert!(plain_http("[::1]:5000", &[]));
        assert!(!plain_http("registry.example.com", &[]));
        assert!(plain_http(
            "registry.lan:5000",
            &["registry.lan:5000".into()]
        ));
        assert!(!plain_http(
            "index.docker.io",
            &["registry.lan:5000".into()]
        ));
    }
}
