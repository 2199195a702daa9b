//! The checks across keys that serde cannot express: bounds, keys that only make sense
//! together, and values parsed by the crates that use them (store URLs, the platform).

use std::time::Duration;

use crate::Config;
use crate::error::{Error, Result};

impl Config {
    /// Every rule of the configuration that its types alone do not enforce.
    pub(crate) fn check(&self) -> Result<()> {
        let bad = |what: String| Err(Error::Config(what));
        let l = &self.limits;
        if l.name_length < 8 || l.name_length > 255 {
            return bad(format!(
                "limits.name-length = {}: must be between 8 and 255",
                l.name_length
            ));
        }
        for (key, value) in [
            ("limits.concurrent-uploads", l.concurrent_uploads),
            ("limits.uploads-per-identity", l.uploads_per_identity),
            ("limits.merge-sources", l.merge_sources),
            (
                "chunks.uploads-per-identity",
                self.chunks.uploads_per_identity,
            ),
            ("chunks.concurrent-reads", self.chunks.concurrent_reads),
            ("images.concurrent", self.images.concurrent),
            ("images.per-identity", self.images.per_identity),
            ("server.max-connections", self.server.max_connections),
        ] {
            if value == 0 {
                return bad(format!("{key} must be at least 1"));
            }
        }
        // Two identities must not be able to take every upload slot between them.
        if l.uploads_per_identity.saturating_mul(2) >= l.concurrent_uploads {
            return bad(format!(
                "limits.uploads-per-identity = {} must be less than half of limits.concurrent-uploads = {}, so that two identities cannot hold every upload slot",
                l.uploads_per_identity, l.concurrent_uploads
            ));
        }
        // Below the longest path an archive may hold, long names could not be read at all.
        if l.header_record < 8 << 10 {
            return bad("limits.header-record must be at least 8KiB".into());
        }
        if l.upload_min_rate > 0 && l.upload_rate_window < Duration::from_secs(1) {
            return bad("limits.upload-rate-window must be at least 1s".into());
        }
        if self.server.header_read_timeout.is_zero() {
            return bad("server.header-read-timeout must be longer than 0s".into());
        }
        // A push sends the pack pipeline's batches (a few MiB each) whole.
        if self.chunks.upload_body < 16 << 20 {
            return bad("chunks.upload-body must be at least 16MiB".into());
        }
        if l.write_rate == 0 {
            return bad("limits.write-rate must be at least 1".into());
        }
        if let Some(url) = &self.gateway.public_url {
            match chunkstore::parse_route(url) {
                Ok(chunkstore::StoreUrl::Zdb(_)) => {}
                _ => {
                    return bad(format!(
                        "gateway.public-url = {url:?}: must be a zdb://host:port URL"
                    ));
                }
            }
        }
        if self.gateway.connections == 0 || self.gateway.connections_per_address == 0 {
            return bad(
                "gateway.connections and connections-per-address must be at least 1".into(),
            );
        }
        if let Some(url) = &self.server.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return bad(format!(
                "server.public-url = {url:?}: must start with http:// or https://"
            ));
        }
        for route in &self.publish.routes {
            chunkstore::parse_route(route)
                .map_err(|e| Error::Config(format!("publish.routes: {e}")))?;
        }
        if let Err(e) = self.images.default_platform.parse::<converter::Platform>() {
            return bad(format!("images.default-platform: {e}"));
        }
        for (registry, credentials) in &self.images.credentials {
            credentials
                .load()
                .map_err(|e| Error::Config(format!("images.credentials.{registry:?}: {e}")))?;
        }
        if self.auth.token_ttl > self.auth.max_token_ttl {
            return bad("auth.token-ttl is longer than auth.max-token-ttl".into());
        }
        if let Some(z) = &self.auth.zero_hub
            && z.seed.is_some() == z.seed_file.is_some()
        {
            return bad("auth.zero-hub needs one of seed and seed-file".into());
        }
        Ok(())
    }
}
