//! The 0-db gateway: a 0-db-protocol listener where zflist, `rfs pack` and the publish
//! actions send the blocks of the flists they make, and where Zero-OS nodes read them, as
//! they did from 0-hub's gateway and 0-db. It speaks the subset those clients use, with the
//! exact replies they check (`PING`, `INFO`, `SELECT`, `AUTH`, `EXISTS`, `GET`, `MGET`,
//! `SET`); anything else is "not supported", as 0-db says.
//!
//! Reads are anonymous, as from 0-hub's 0-db; writes need a hub token (`AUTH <token>`, or
//! `SELECT <namespace> <token>`), and a block is stored only when its id is its content's
//! hash. Blocks live in the hub's chunk store, in their own key space.

mod blocks;
mod session;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::config::GatewayConfig;
use crate::error::{Error, Result};
use crate::hub::Hub;
pub use blocks::Blocks;
use session::Session;

/// Bounds of one gateway.
struct Limits {
    idle_timeout: Duration,
    per_address: usize,
    /// Largest request: one block and its id, with room for the framing.
    max_request: usize,
}

pub struct Gateway {
    auth: Arc<Authenticator>,
    blocks: Blocks,
    limits: Limits,
    /// Cancelled when the hub stops: the listener and every connection end.
    stop: CancellationToken,
    public_url: String,
    /// Connections open, hub-wide.
    open: Arc<Semaphore>,
    /// Connections open per client address.
    by_address: Mutex<HashMap<IpAddr, usize>>,
}

impl Gateway {
    /// The gateway of `hub`, configured by `[gateway]`.
    pub fn new(
        hub: &Hub,
        config: &GatewayConfig,
        public_url: String,
        stop: CancellationToken,
    ) -> Gateway {
        if let Err(e) = hub.renditions().start(&public_url) {
            tracing::error!(error = %e, "renditions for nodes are not made");
        }
        Gateway {
            auth: Arc::clone(hub.auth()),
            blocks: Blocks::new(
                Arc::clone(hub.chunks()),
                Arc::clone(hub.renditions()),
                Arc::clone(hub.limits()),
            ),
            limits: Limits {
                idle_timeout: config.idle_timeout,
                per_address: config.connections_per_address,
                max_request: chunkstore::MAX_BLOCK_SIZE + (64 << 10),
            },
            stop,
            public_url,
            open: Arc::new(Semaphore::new(config.connections)),
            by_address: Mutex::default(),
        }
    }

    /// Binds `address`; failing to is fatal for the hub, with the address named.
    pub async fn bind(address: SocketAddr) -> Result<TcpListener> {
        TcpListener::bind(address)
            .await
            .map_err(|e| Error::io(format!("the 0-db gateway listening on {address}"), e))
    }

    /// Accepts connections until the hub stops.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let stop = self.stop.clone();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stop.cancelled() => return,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, go on.
                    tracing::warn!(error = %e, "gateway: accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(slot) = self.admit(peer) else {
                metrics::counter!("flisthub_gateway_refused_connections_total").increment(1);
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let gateway = Arc::clone(&self);
            tokio::spawn(async move {
                let _slot = slot;
                Session::new(Arc::clone(&gateway), peer).run(stream).await;
            });
        }
    }

    /// A connection slot for `peer`, within the hub-wide and per-address limits.
    fn admit(self: &Arc<Self>, peer: SocketAddr) -> Option<Slot> {
        let permit = Arc::clone(&self.open).try_acquire_owned().ok()?;
        let mut by_address = self.by_address.lock().unwrap_or_else(|p| p.into_inner());
        let count = by_address.entry(peer.ip()).or_default();
        if *count >= self.limits.per_address {
            return None;
        }
        *count += 1;
        Some(Slot {
            gateway: Arc::clone(self),
            address: peer.ip(),
            _permit: permit,
        })
    }

    /// What `INFO` answers: 0-db-like `key: value` lines. Never short: libflist decides
    /// that a server is a 0-db when the reply is *not* found inside "0-db (zdb)".
    fn info(&self) -> String {
        format!(
            "# server\nserver_name: 0-db (zdb) compatible gateway (flisthub)\nserver_revision: flisthub {}\nengine: flisthub\nmode: userkey\npublic_url: {}\n# clients\nclients_limit: {}\n",
            env!("CARGO_PKG_VERSION"),
            self.public_url,
            self.open.available_permits(),
        )
    }
}

/// A connection counted against the limits while it lives.
struct Slot {
    gateway: Arc<Gateway>,
    address: IpAddr,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut by_address = self
            .gateway
            .by_address
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                by_address.remove(&self.address);
            }
        }
    }
}
