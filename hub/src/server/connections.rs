//! Which connections the hub takes: at most `server.max-connections` open at once, kept
//! below the open-file limit (raised to its hard limit at start) so that accepting can never
//! starve the hub of the files it needs itself; and at most `server.connections-per-address`
//! from one client address, so that one client cannot take them all.

use std::net::IpAddr;
use std::sync::Arc;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ServerConfig;
use crate::limits::{Counted, Counts};

/// Files kept for the hub's own use besides connections: the database, flists being read or
/// published, staging files, connections to the store.
const FILES_KEPT: u64 = 256;

pub struct Admission {
    open: Arc<Semaphore>,
    max: usize,
    /// `None`: no per-address limit.
    per_address: Option<(usize, Counts<Client>)>,
}

/// A connection's places in the limits; given back when it closes.
pub struct Ticket {
    _open: OwnedSemaphorePermit,
    _address: Option<Counted<Client>>,
}

/// A client as the per-address limit counts it: an IPv4 address, or the /64 an IPv6 address
/// is in (one host usually holds a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    V4(std::net::Ipv4Addr),
    V6Prefix(u64),
}

impl Client {
    fn of(address: IpAddr) -> Client {
        match address.to_canonical() {
            IpAddr::V4(v4) => Client::V4(v4),
            IpAddr::V6(v6) => Client::V6Prefix((v6.to_bits() >> 64) as u64),
        }
    }
}

impl Admission {
    /// The limits of `config`, the open-file limit being `file_limit` (`None`: unlimited).
    pub fn new(config: &ServerConfig, file_limit: Option<u64>) -> Admission {
        let max = connection_cap(config.max_connections, file_limit);
        if max < config.max_connections {
            tracing::warn!(
                "server.max-connections = {} is more than the open-file limit ({}) allows: at most {max} connections",
                config.max_connections,
                file_limit.unwrap_or_default()
            );
        }
        // Behind a proxy every connection comes from the proxy.
        let per_address = (config.connections_per_address > 0 && !config.trust_forwarded)
            .then(|| (config.connections_per_address, Counts::default()));
        Admission {
            open: Arc::new(Semaphore::new(max)),
            max,
            per_address,
        }
    }

    /// The most connections open at once.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The per-address limit, if there is one.
    pub fn per_address(&self) -> Option<usize> {
        self.per_address.as_ref().map(|(limit, _)| *limit)
    }

    /// Waits for room for one more connection: while the hub is full it accepts none, and
    /// new connections wait in the listen queue. (`None` only if the limits were closed,
    /// which they never are.)
    pub async fn room(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.open).acquire_owned().await.ok()
    }

    /// Admits a connection from `peer` into `room`; `None` if its address already holds its
    /// share.
    pub fn admit(&self, room: OwnedSemaphorePermit, peer: IpAddr) -> Option<Ticket> {
        let address = match &self.per_address {
            Some((limit, counts)) => Some(Counted::take(counts, &Client::of(peer), *limit)?),
            None => None,
        };
        Some(Ticket {
            _open: room,
            _address: address,
        })
    }
}

/// Raises the soft open-file limit to the hard one, which any process may; returns the soft
/// limit in force (`None`: unlimited).
pub fn raise_file_limit() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(hard)) = (limit.current, limit.maximum)
        && current < hard
    {
        let raised = Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => return Some(hard),
            Err(e) => tracing::warn!(
                error = %e,
                "could not raise the open-file limit from {current} to {hard}"
            ),
        }
    }
    limit.current
}

/// `configured`, or less if the open-file limit leaves less room beside the files the hub
/// keeps for itself (half of a small limit).
fn connection_cap(configured: usize, file_limit: Option<u64>) -> usize {
    let Some(limit) = file_limit else {
        return configured;
    };
    let room = limit.saturating_sub(FILES_KEPT.min(limit / 2));
    configured
        .min(usize::try_from(room).unwrap_or(usize::MAX))
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_stay_below_the_open_file_limit() {
        assert_eq!(connection_cap(8192, None), 8192);
        assert_eq!(connection_cap(8192, Some(1_048_576)), 8192);
        assert_eq!(connection_cap(8192, Some(1024)), 768);
        assert_eq!(connection_cap(8192, Some(300)), 150);
        assert_eq!(connection_cap(8192, Some(0)), 1);
    }

    #[test]
    fn the_per_address_limit_counts_ipv6_by_its_64_prefix() {
        let mut config = crate::config::Config::from_toml("").unwrap().server;
        config.connections_per_address = 2;
        let admission = Admission::new(&config, None);
        let admit = |address: &str| {
            let room = Arc::clone(&admission.open).try_acquire_owned().unwrap();
            admission.admit(room, address.parse().unwrap())
        };
        let held: Vec<Ticket> = ["2001:db8::1", "2001:db8::ffff:2"]
            .into_iter()
            .map(|a| admit(a).unwrap())
            .collect();
        assert!(admit("2001:db8::3").is_none(), "the same /64");
        assert!(admit("2001:db8:0:1::1").is_some(), "another /64");
        let first = admit("192.0.2.1").unwrap();
        let mapped = admit("::ffff:192.0.2.1").unwrap();
        assert!(
            admit("192.0.2.1").is_none(),
            "the same IPv4 address, mapped"
        );
        drop((first, mapped));
        assert!(
            admit("192.0.2.1").is_some(),
            "a closed connection frees its place"
        );
        drop(held);
        assert!(admit("2001:db8::3").is_some());

        config.trust_forwarded = true;
        assert_eq!(Admission::new(&config, None).per_address(), None);
    }
}
