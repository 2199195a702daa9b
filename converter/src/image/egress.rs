//! Where a registry pull may connect: the hub's egress rule.
//!
//! A hub converts images from registries its users name, so without a rule any token holder
//! could make it fetch from `127.0.0.1:<port>`, a cloud metadata address or anything else on
//! the hub's own network. Under [`Egress::Guarded`] every connection of a pull (to the
//! registry, to the token service its challenge names, to wherever it redirects) goes to
//! public addresses only, and a redirect to another host is followed only for a blob (the
//! distribution protocol sends blob reads to storage: S3, a CDN); everything else is
//! refused before a byte is sent.
//!
//! How: the registry client (`client`) is our own, on reqwest, because `oci-client` builds
//! its HTTP client inside with the system resolver and reqwest's default redirect policy
//! (any host, ten hops) and offers no hook for either. The other way, a filtering proxy on
//! loopback for its traffic, could check addresses but cannot tell a manifest redirect from
//! a blob redirect inside an HTTPS tunnel, and would be an HTTP server of its own for other
//! local users to reach. Here reqwest is given:
//! - a resolver ([`CheckedResolver`]) that resolves as the system does and refuses a name
//!   when any of its addresses is not public. The connector connects to exactly the
//!   addresses the resolver returned, so what was checked is what is reached: a name that
//!   answers differently the next time (DNS rebinding) gains nothing;
//! - a redirect policy that applies the host rule and checks address literals;
//! - no proxy (a proxy would resolve names itself, out of our sight).
//!
//! Addresses written as literals never reach a resolver (the connector parses them), so
//! every URL the client requests or is redirected to is checked by [`Guard::check`] as well.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Url, redirect};
use url::Host;

/// Where a registry pull may connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// Any address, any redirect: for the operator's own commands (`flisthub convert`).
    Open,
    /// The hub's rule: redirects to another host only for blobs, and, unless
    /// `private_networks`, public addresses only; the registry's own host is reached on
    /// whatever address it has when `trusted_registry` (the operator listed it).
    Guarded {
        private_networks: bool,
        trusted_registry: bool,
    },
}

/// Why a connection was not made. Found in a reqwest error's causes by [`refusal`]; the
/// host it names is for the hub's log, never for the caller.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    #[error("{host} has an address that is not public")]
    Address { host: String },
    #[error("a redirect to another host ({to}) for something that is not a blob")]
    Redirect { to: String },
}

/// The refusal among `error`'s causes, if a refusal made it.
pub(crate) fn refusal<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused);
        }
        cause = e.source();
    }
    None
}

/// The egress rule of one pull, for the registry at `registry` (its base URL).
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    egress: Egress,
    /// The registry's host, when it may be reached on any address.
    trusted: Option<Host<String>>,
}

impl Guard {
    pub(crate) fn new(egress: Egress, registry: &Url) -> Guard {
        let trusted = match egress {
            Egress::Guarded {
                trusted_registry: true,
                ..
            } => registry.host().map(|h| h.to_owned()),
            _ => None,
        };
        Guard { egress, trusted }
    }

    /// Whether addresses are checked at all.
    fn checks_addresses(&self) -> bool {
        matches!(
            self.egress,
            Egress::Guarded {
                private_networks: false,
                ..
            }
        )
    }

    /// `builder` with this rule's resolver, redirect policy and proxies.
    pub(crate) fn apply(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        if self.egress == Egress::Open {
            return builder.redirect(redirect::Policy::limited(10));
        }
        let guard = self.clone();
        let builder = builder
            .no_proxy()
            .redirect(redirect::Policy::custom(move |attempt| {
                let (next, previous) = (attempt.url(), attempt.previous());
                // The first is the request made; a blob's may go to storage elsewhere.
                let elsewhere = previous
                    .first()
                    .is_none_or(|first| !same_host(first, next) && !is_blob(first));
                let to = next.host_str().unwrap_or_default().to_owned();
                let checked = guard.check(next);
                if previous.len() > REDIRECTS {
                    attempt.error(TooManyRedirects)
                } else if elsewhere {
                    attempt.error(Refused::Redirect { to })
                } else if let Err(refused) = checked {
                    attempt.error(refused)
                } else {
                    attempt.follow()
                }
            }));
        if !self.checks_addresses() {
            return builder;
        }
        let trusted_name = match &self.trusted {
            Some(Host::Domain(name)) => Some(name.clone()),
            _ => None,
        };
        builder.dns_resolver(Arc::new(CheckedResolver { trusted_name }))
    }

    /// Refuses `url` when its host is an address this rule does not reach (names are
    /// checked when they are resolved).
    pub(crate) fn check(&self, url: &Url) -> Result<(), Refused> {
        if !self.checks_addresses() {
            return Ok(());
        }
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        let trusted = self.trusted.is_some() && url.host().map(|h| h.to_owned()) == self.trusted;
        if trusted || is_public(ip) {
            Ok(())
        } else {
            Err(Refused::Address {
                host: url.host_str().unwrap_or_default().to_owned(),
            })
        }
    }
}

/// Redirects followed in a row under the hub's rule (a blob goes to storage in one or two).
const REDIRECTS: usize = 5;

#[derive(Debug, thiserror::Error)]
#[error("too many redirects")]
struct TooManyRedirects;

fn same_host(a: &Url, b: &Url) -> bool {
    a.host() == b.host() && a.port_or_known_default() == b.port_or_known_default()
}

/// Whether `url` reads a blob: `/v2/<name>/blobs/<digest>`.
fn is_blob(url: &Url) -> bool {
    let mut segments = url.path().rsplit('/');
    let digest = segments.next().unwrap_or_default();
    url.path().starts_with("/v2/") && segments.next() == Some("blobs") && digest.contains(':')
}

/// Resolves names as the system does, refusing a name any of whose addresses is not
/// public (but the trusted registry's).
struct CheckedResolver {
    trusted_name: Option<String>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let trusted = self
            .trusted_name
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(&host));
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !trusted && addresses.iter().any(|a| !is_public(a.ip())) {
                tracing::debug!(%host, ?addresses, "refused: an address that is not public");
                return Err(Box::new(Refused::Address { host }) as _);
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// Whether `ip` is a public address: not loopback, private, shared (CGNAT), link-local,
/// unique-local, multicast, broadcast, reserved, for documentation or benchmarks, nor an
/// IPv6 form of one of those (mapped, NAT64, 6to4).
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network"
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 88 && c == 99) // 6to4 relays
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    let embedded = |high: u16, low: u16| {
        is_public_v4(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low)))
    };
    match s {
        // NAT64 reaches the IPv4 address it embeds.
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => embedded(high, low),
        // 6to4 as well.
        [0x2002, high, low, ..] => embedded(high, low),
        // Outside 2000::/3, nothing is global unicast: unspecified, loopback, unique-local,
        // link-local, multicast, discard, local NAT64.
        [first, ..] if first & 0xe000 != 0x2000 => false,
        // IETF protocol assignments (Teredo, benchmarking, ORCHID) and documentation.
        [0x2001, second, ..] if second < 0x200 || second == 0xdb8 => false,
        [0x3fff, second, ..] if second < 0x1000 => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses_only() {
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "198.17.0.1",
            "223.255.255.255",
            "2600:1f18::1",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        for private in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2002:a00:1::1",
            "2002:7f00:1::",
            "3fff::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
    }

    fn guard(egress: Egress) -> Guard {
        Guard::new(egress, &Url::parse("http://127.0.0.1:5000/v2/").unwrap())
    }

    #[test]
    fn literals_are_checked_as_the_rule_says() {
        let check = |g: &Guard, url: &str| g.check(&Url::parse(url).unwrap()).is_ok();
        let public_only = guard(Egress::Guarded {
            private_networks: false,
            trusted_registry: false,
        });
        assert!(!check(&public_only, "http://127.0.0.1:5000/v2/"));
        assert!(!check(&public_only, "http://[::1]:5000/v2/"));
        assert!(!check(&public_only, "http://[::ffff:7f00:1]/v2/"));
        // The URL parser reads every IPv4 spelling the way a resolver would.
        assert!(!check(&public_only, "http://2130706433/v2/"));
        assert!(!check(&public_only, "http://0x7f.1/v2/"));
        assert!(check(&public_only, "https://8.8.8.8/v2/"));
        // Names are the resolver's.
        assert!(check(&public_only, "http://localhost/v2/"));
        let trusted = guard(Egress::Guarded {
            private_networks: false,
            trusted_registry: true,
        });
        assert!(check(&trusted, "http://127.0.0.1:5000/v2/"));
        assert!(!check(&trusted, "http://10.0.0.1/v2/"));
        let private = guard(Egress::Guarded {
            private_networks: true,
            trusted_registry: false,
        });
        assert!(check(&private, "http://10.0.0.1/v2/"));
        assert!(check(&guard(Egress::Open), "http://10.0.0.1/v2/"));
    }

    #[test]
    fn blobs_and_hosts() {
        let url = |u: &str| Url::parse(u).unwrap();
        assert!(is_blob(&url("https://r.example/v2/a/b/blobs/sha256:00")));
        assert!(!is_blob(&url("https://r.example/v2/a/blobs/manifests/v1")));
        assert!(!is_blob(&url("https://r.example/v2/a/manifests/sha256:00")));
        assert!(!is_blob(&url("https://r.example/token?scope=blobs")));
        assert!(same_host(
            &url("https://r.example/v2/"),
            &url("https://r.example:443/x")
        ));
        assert!(!same_host(
            &url("http://r.example:5000/v2/"),
            &url("http://r.example:5001/v2/")
        ));
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_private_addresses() {
        let resolver = CheckedResolver { trusted_name: None };
        let refused = resolver
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .expect("localhost refused");
        assert!(matches!(refusal(&*refused), Some(Refused::Address { .. })));
        let trusted = CheckedResolver {
            trusted_name: Some("localhost".into()),
        };
        let addresses: Vec<SocketAddr> = trusted
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(
            addresses.iter().all(|a| a.ip().is_loopback()),
            "{addresses:?}"
        );
    }
}
