//! Store URLs.
//!
//! | form | store |
//! |---|---|
//! | `dir:///var/lib/flisthub/store`, `dir:rel/path`, or a path starting with `/` or `.` | [`DirStore`] |
//! | `zdb://[:PASSWORD@]HOST[:PORT][/NAMESPACE]` | [`ZdbStore`]; port 9900, namespace `default` |
//! | `redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]`, `rediss://...` (TLS) | [`RedisStore`]; port 6379 |
//! | `redis+cluster://[USER[:PASSWORD]@]HOST:PORT,HOST:PORT,...`, `rediss+cluster://...` | [`ClusterStore`] |
//! | `https://HOST[:PORT]/api/v1/chunks`, `http://...` | [`HubStore`]: a flisthub hub's chunk API |
//!
//! Query parameters:
//!
//! | parameter | applies to | meaning |
//! |---|---|---|
//! | `fsync=false` | dir | no `syncfs` per batch (scratch stores) |
//! | `password-file=PATH` | zdb, redis | the (namespace) password, read from a file: keeps it out of URLs, shells and logs |
//! | `admin-password-file=PATH`, `admin-password=...` | zdb | the admin password, sent with `AUTH` |
//! | `namespace=NAME` | redis, cluster | keys become `NAME:<key>` |
//! | `ca-file=PATH`, `insecure=true` | rediss | trust this CA; skip hostname checks |
//! | `timeout=10s`, `connect-timeout=3s`, `pool=4`, `in-flight=32MiB` | network stores | see [`NetOptions`] (a hub takes only the two timeouts) |
//! | `token-file=PATH` | hub | the bearer token for uploads, read from a file |
//!
//! Passwords are never part of a store's [`location`](crate::ChunkStore::location), so they
//! do not reach logs, error messages or the routes recorded in flists. Dir paths may
//! percent-encode bytes (`%20`).

// Parsing helpers shared by the network backends go unused in builds without some of them.
#![cfg_attr(
    not(all(feature = "zdb", feature = "redis", feature = "hub")),
    allow(dead_code)
)]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::dir::{DirOptions, DirStore};
use crate::error::{Error, Result};
#[cfg(feature = "hub")]
use crate::hub_api::{HubOptions, HubStore};
#[cfg(any(feature = "zdb", feature = "redis"))]
use crate::net::NetOptions;
#[cfg(feature = "redis")]
use crate::redis::{ClusterStore, RedisOptions, RedisStore, Server, TlsOptions};
use crate::store::ChunkStore;
#[cfg(feature = "zdb")]
use crate::zdb::{ZdbOptions, ZdbStore};

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Dir {
        path: PathBuf,
        options: DirOptions,
    },
    #[cfg(feature = "zdb")]
    Zdb(ZdbOptions),
    #[cfg(feature = "redis")]
    Redis(RedisOptions),
    #[cfg(feature = "hub")]
    Hub(HubOptions),
}

impl FromStr for StoreUrl {
    type Err = Error;

    fn from_str(url: &str) -> Result<StoreUrl> {
        let invalid = |reason: String| Error::InvalidUrl {
            url: redact(url),
            reason,
        };
        if url.starts_with('/') || url.starts_with('.') {
            return parse_dir(url).map_err(invalid);
        }
        let Some((scheme, rest)) = url.split_once(':') else {
            return Err(invalid(
                "not a URL (dir://, zdb://, redis://, rediss://, redis+cluster://, https://) nor a path starting with / or .".into(),
            ));
        };
        match scheme {
            "dir" => parse_dir(rest.strip_prefix("//").unwrap_or(rest)),
            #[cfg(feature = "zdb")]
            "zdb" => parse_zdb(url).map(StoreUrl::Zdb),
            #[cfg(feature = "redis")]
            "redis" | "rediss" => parse_redis(url, false).map(StoreUrl::Redis),
            #[cfg(feature = "redis")]
            "redis+cluster" | "rediss+cluster" => parse_redis(url, true).map(StoreUrl::Redis),
            #[cfg(feature = "hub")]
            "http" | "https" => parse_hub(url).map(StoreUrl::Hub),
            #[cfg(not(feature = "zdb"))]
            "zdb" => Err(not_built("zdb")),
            #[cfg(not(feature = "redis"))]
            "redis" | "rediss" | "redis+cluster" | "rediss+cluster" => Err(not_built("redis")),
            #[cfg(not(feature = "hub"))]
            "http" | "https" => Err(not_built("hub")),
            other => Err(format!(
                "unknown scheme {other:?} (supported: dir, zdb, redis, rediss, redis+cluster, rediss+cluster, http, https)"
            )),
        }
        .map_err(invalid)
    }
}

/// Opens the store a URL names. Network stores connect on first use.
pub async fn open(url: &str) -> Result<Arc<dyn ChunkStore>> {
    open_url(url.parse()?)
}

/// Opens the store a parsed URL names.
pub(crate) fn open_url(url: StoreUrl) -> Result<Arc<dyn ChunkStore>> {
    Ok(match url {
        StoreUrl::Dir { path, options } => Arc::new(DirStore::open(path, options)?),
        #[cfg(feature = "zdb")]
        StoreUrl::Zdb(options) => Arc::new(ZdbStore::new(options)?),
        #[cfg(feature = "redis")]
        StoreUrl::Redis(options) if options.cluster => Arc::new(ClusterStore::new(options)?),
        #[cfg(feature = "redis")]
        StoreUrl::Redis(options) => Arc::new(RedisStore::new(options)?),
        #[cfg(feature = "hub")]
        StoreUrl::Hub(options) => Arc::new(HubStore::new(options)?),
    })
}

/// The refusal of a URL whose backend this build leaves out.
#[allow(dead_code, reason = "used only by builds without some backend")]
fn not_built(feature: &str) -> String {
    format!("this build has no support for it (chunkstore's cargo feature {feature:?})")
}

/// Parses a route recorded in an flist. Flists come from anywhere, so a route may only name
/// a network store: no local directory, no credentials, and no parameter that reads a local
/// file (`password-file=/etc/shadow` would otherwise be read and sent to the flist's server).
pub fn parse_route(route: &str) -> Result<StoreUrl> {
    let invalid = |reason: &str| Error::InvalidUrl {
        url: redact(route),
        reason: format!("not usable as a route: {reason}"),
    };
    let Some((scheme, rest)) = route.split_once("://") else {
        return Err(invalid("not a network store URL"));
    };
    if !matches!(
        scheme,
        "zdb" | "redis" | "rediss" | "redis+cluster" | "rediss+cluster" | "http" | "https"
    ) {
        return Err(invalid(
            "only zdb://, redis://, redis+cluster:// stores and hubs (https://) are routes",
        ));
    }
    if split_userinfo(rest).0.is_some() {
        return Err(invalid("it carries credentials"));
    }
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        if !matches!(key, "namespace" | "timeout" | "connect-timeout") {
            return Err(invalid(&format!(
                "parameter {key:?} is not allowed in a route"
            )));
        }
    }
    route.parse()
}

/// Splits `user:password@hosts...` at the last `@` (a password may hold an unencoded `/`,
/// `?` or `@`; an `@` elsewhere in a URL must be percent-encoded).
fn split_userinfo(rest: &str) -> (Option<&str>, &str) {
    match rest.rsplit_once('@') {
        Some((userinfo, after)) => (Some(userinfo), after),
        None => (None, rest),
    }
}

/// The URL with credentials and password parameters replaced, for error messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (userinfo, rest) = split_userinfo(rest);
    let (before, query) = rest.split_once('?').unwrap_or((rest, ""));
    let query: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|part| match part.split_once('=') {
            Some((key, _)) if key.ends_with("password") => format!("{key}=***"),
            _ => part.to_owned(),
        })
        .collect();
    let credentials = if userinfo.is_some() { "***@" } else { "" };
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    format!("{scheme}://{credentials}{before}{query}")
}

/// A host as it goes in a URL (IPv6 addresses in brackets).
pub(crate) fn url_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// Percent-encodes everything but unreserved characters, for a path segment or a value.
pub(crate) fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn parse_dir(rest: &str) -> Result<StoreUrl, String> {
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() {
        return Err("the directory path is empty".into());
    }
    let mut options = DirOptions::default();
    for (key, value) in pairs(query)? {
        match key.as_str() {
            "fsync" => options.fsync = parse_bool(&key, &value)?,
            _ => return Err(format!("unknown option {key:?} for dir (known: fsync)")),
        }
    }
    let path = percent_decode(path)?;
    Ok(StoreUrl::Dir {
        path: PathBuf::from(OsString::from_vec(path)),
        options,
    })
}

/// The parameters every network store takes; returns false for a key it does not know.
#[cfg(any(feature = "zdb", feature = "redis"))]
fn net_option(net: &mut NetOptions, key: &str, value: &str) -> Result<bool, String> {
    match key {
        "timeout" => net.timeout = parse_duration(key, value)?,
        "connect-timeout" => net.connect_timeout = parse_duration(key, value)?,
        "pool" => {
            net.pool = value
                .parse()
                .ok()
                .filter(|&n| (1..=256).contains(&n))
                .ok_or_else(|| format!("pool={value:?} is not a count from 1 to 256"))?
        }
        "in-flight" => {
            net.in_flight = parse_size(value)
                .filter(|&n| (1 << 20..=1 << 30).contains(&n))
                .ok_or_else(|| format!("in-flight={value:?} is not a size from 1MiB to 1GiB"))?
        }
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(feature = "zdb")]
fn parse_zdb(url: &str) -> Result<ZdbOptions, String> {
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    if !parsed.username().is_empty() {
        return Err("0-db has no user names: give the namespace password as zdb://:PASSWORD@host, or password-file=".into());
    }
    let host = host(&parsed)?;
    let namespace = match parsed.path().trim_start_matches('/') {
        "" => "default".to_owned(),
        ns if ns.contains('/') => return Err(format!("namespace {ns:?} contains '/'")),
        ns => decode(ns)?,
    };
    let mut options = ZdbOptions {
        host,
        port: parsed.port().unwrap_or(9900),
        namespace,
        password: parsed.password().map(decode).transpose()?,
        admin_password: None,
        net: NetOptions::default(),
    };
    for (key, value) in parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
    {
        if net_option(&mut options.net, &key, &value)? {
            continue;
        }
        match key.as_str() {
            "password-file" => options.password = Some(read_secret(&key, &value)?),
            "admin-password" => options.admin_password = Some(value),
            "admin-password-file" => options.admin_password = Some(read_secret(&key, &value)?),
            _ => {
                return Err(format!(
                    "unknown option {key:?} for zdb (known: password-file, admin-password, admin-password-file, timeout, connect-timeout, pool, in-flight)"
                ));
            }
        }
    }
    Ok(options)
}

#[cfg(feature = "redis")]
fn parse_redis(url: &str, cluster: bool) -> Result<RedisOptions, String> {
    let (scheme, rest) = url.split_once("://").ok_or("missing '://'")?;
    let tls = scheme.starts_with("rediss");
    if tls && !cfg!(feature = "tls") {
        return Err(not_built("tls"));
    }
    let (userinfo, rest) = split_userinfo(rest);
    let tail_start = rest.find(['/', '?']).unwrap_or(rest.len());
    let (hosts, tail) = rest.split_at(tail_start);
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (user, password) = info.split_once(':').unwrap_or((info, ""));
            let user = decode(user)?;
            let password = decode(password)?;
            (
                Some(user).filter(|u| !u.is_empty()),
                Some(password).filter(|p| !p.is_empty()),
            )
        }
    };
    let servers = hosts
        .split(',')
        .map(|hostport| {
            // Each one parsed as a URL of its own, for IPv6 brackets and port checks.
            let one = url::Url::parse(&format!("redis://{hostport}"))
                .map_err(|e| format!("server {hostport:?}: {e}"))?;
            Ok(Server {
                host: host(&one)?,
                port: one.port().unwrap_or(6379),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if !cluster && servers.len() != 1 {
        return Err("several servers: use redis+cluster:// for a cluster".into());
    }
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    let db = match path.trim_matches('/') {
        "" => 0,
        _ if cluster => return Err("a cluster has no database number".into()),
        db => db
            .parse()
            .map_err(|_| format!("database {db:?} is not a number"))?,
    };
    let mut options = RedisOptions {
        servers,
        cluster,
        tls: tls.then(TlsOptions::default),
        db,
        username,
        password,
        namespace: None,
        net: NetOptions::default(),
    };
    for (key, value) in pairs(query)? {
        if cluster && matches!(key.as_str(), "pool" | "in-flight") {
            return Err(format!(
                "{key} does not apply to a cluster (the client keeps one connection per node)"
            ));
        }
        if net_option(&mut options.net, &key, &value)? {
            continue;
        }
        match (key.as_str(), options.tls.as_mut()) {
            ("namespace", _) if !value.is_empty() && !value.contains(['*', '?', '[', ']']) => {
                options.namespace = Some(value)
            }
            ("namespace", _) => {
                return Err(format!(
                    "namespace {value:?} must be non-empty, without * ? [ ]"
                ));
            }
            ("password-file", _) => options.password = Some(read_secret(&key, &value)?),
            ("ca-file", Some(tls)) => tls.ca_file = Some(PathBuf::from(value)),
            ("insecure", Some(tls)) => tls.insecure = parse_bool(&key, &value)?,
            ("ca-file" | "insecure", None) => {
                return Err(format!("{key} needs rediss:// (TLS)"));
            }
            _ => {
                return Err(format!(
                    "unknown option {key:?} for redis (known: namespace, password-file, ca-file, insecure, timeout, connect-timeout, pool, in-flight)"
                ));
            }
        }
    }
    Ok(options)
}

#[cfg(feature = "hub")]
fn parse_hub(url: &str) -> Result<HubOptions, String> {
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    if parsed.scheme() == "https" && !cfg!(feature = "tls") {
        return Err(not_built("tls"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "a hub takes a bearer token, not a user and password: give it with token-file=".into(),
        );
    }
    host(&parsed)?;
    let mut base = parsed.clone();
    base.set_query(None);
    base.set_fragment(None);
    let mut options = HubOptions::new(base.as_str());
    for (key, value) in parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
    {
        match key.as_str() {
            "timeout" => options.timeout = parse_duration(&key, &value)?,
            "connect-timeout" => options.connect_timeout = parse_duration(&key, &value)?,
            "token-file" => options.token = Some(read_secret(&key, &value)?),
            _ => {
                return Err(format!(
                    "unknown option {key:?} for a hub (known: token-file, timeout, connect-timeout)"
                ));
            }
        }
    }
    Ok(options)
}

fn host(url: &url::Url) -> Result<String, String> {
    match url.host() {
        Some(url::Host::Domain(name)) => Ok(name.to_owned()),
        Some(url::Host::Ipv4(ip)) => Ok(ip.to_string()),
        Some(url::Host::Ipv6(ip)) => Ok(ip.to_string()),
        None => Err("no host".into()),
    }
}

/// `key=value` pairs of a query string, percent-decoded.
fn pairs(query: &str) -> Result<Vec<(String, String)>, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("option {pair:?} has no value"))?;
            Ok((decode(key)?, decode(value)?))
        })
        .collect()
}

/// Percent-decodes a URL part into text. Errors never repeat the text: it may be a password.
fn decode(text: &str) -> Result<String, String> {
    String::from_utf8(percent_decode(text)?).map_err(|_| "a part is not UTF-8 once decoded".into())
}

fn read_secret(key: &str, path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{key} {path:?}: {e}"))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{key}={value:?} is not true or false")),
    }
}

fn parse_duration(key: &str, value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{key}={value:?} is not a duration such as 500ms or 10s"))
}

/// Parses a size: plain bytes, or with a binary unit: `64K`, `32MiB`, `1G`, `2TB`.
pub fn parse_size(text: &str) -> Option<usize> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = text[digits.len()..].to_ascii_uppercase();
    let shift = match unit.trim_end_matches('B').trim_end_matches('I') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    digits.parse::<usize>().ok()?.checked_mul(1 << shift)
}

fn percent_decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "a bad percent escape".to_owned())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    if out.contains(&0) {
        return Err("NUL byte".into());
    }
    Ok(out)
}

#[cfg(test)]
// The forms of every backend: run with all features (the default of `cargo test`).
#[cfg(all(feature = "zdb", feature = "redis", feature = "hub", feature = "tls"))]
mod tests {
    use super::*;

    fn parse(url: &str) -> StoreUrl {
        url.parse().unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn hub_forms() {
        let StoreUrl::Hub(h) = parse("https://hub.example.com/api/v1/chunks/?timeout=5s") else {
            panic!()
        };
        assert_eq!(h.url, "https://hub.example.com/api/v1/chunks");
        assert_eq!((h.timeout, h.token), (Duration::from_secs(5), None));
        assert!(
            "https://user:pw@hub.example/api/v1/chunks"
                .parse::<StoreUrl>()
                .is_err()
        );
        assert!(parse_route("https://hub.example/api/v1/chunks").is_ok());
        assert!(parse_route("https://hub.example/api/v1/chunks?token-file=/etc/shadow").is_err());
    }

    #[test]
    fn dir_forms() {
        let dir = |url| match parse(url) {
            StoreUrl::Dir { path, options } => (path, options.fsync),
            other => panic!("{other:?}"),
        };
        assert_eq!(dir("dir:///var/lib/x"), ("/var/lib/x".into(), true));
        assert_eq!(dir("dir:rel/x?fsync=false"), ("rel/x".into(), false));
        assert_eq!(dir("/abs"), ("/abs".into(), true));
        assert_eq!(dir("./here"), ("./here".into(), true));
        assert_eq!(dir("dir:///a%20b"), ("/a b".into(), true));
    }

    #[test]
    fn zdb_forms() {
        let StoreUrl::Zdb(z) = parse("zdb://hub.example") else {
            panic!()
        };
        assert_eq!(
            (z.host.as_str(), z.port, z.namespace.as_str()),
            ("hub.example", 9900, "default")
        );
        assert_eq!((z.password, z.admin_password), (None, None));
        let StoreUrl::Zdb(z) =
            parse("zdb://:s%40cret@[::1]:9910/flists?timeout=2s&pool=2&admin-password=root")
        else {
            panic!()
        };
        assert_eq!(
            (z.host.as_str(), z.port, z.namespace.as_str()),
            ("::1", 9910, "flists")
        );
        assert_eq!(z.password.as_deref(), Some("s@cret"));
        assert_eq!(z.admin_password.as_deref(), Some("root"));
        assert_eq!((z.net.timeout, z.net.pool), (Duration::from_secs(2), 2));
        // Debug output never shows passwords.
        assert!(!format!("{z:?}").contains("s@cret"));
    }

    #[test]
    fn zdb_password_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let StoreUrl::Zdb(z) = parse(&format!("zdb://h/ns?password-file={}", file.display()))
        else {
            panic!()
        };
        assert_eq!(z.password.as_deref(), Some("from-file"));
    }

    #[test]
    fn redis_forms() {
        let StoreUrl::Redis(r) = parse("redis://127.0.0.1") else {
            panic!()
        };
        assert_eq!(
            (r.servers[0].port, r.db, r.cluster, r.tls.is_some()),
            (6379, 0, false, false)
        );
        let StoreUrl::Redis(r) =
            parse("rediss://user:pw@cache:6380/3?namespace=hub&ca-file=/ca.pem&in-flight=8MiB")
        else {
            panic!()
        };
        assert_eq!(
            (r.db, r.username.as_deref(), r.password.as_deref()),
            (3, Some("user"), Some("pw"))
        );
        assert_eq!(r.namespace.as_deref(), Some("hub"));
        assert_eq!(r.tls.unwrap().ca_file, Some(PathBuf::from("/ca.pem")));
        assert_eq!(r.net.in_flight, 8 << 20);
        let StoreUrl::Redis(r) =
            parse("redis+cluster://:pw@h1:7000,h2:7001,[::1]:7002?namespace=x")
        else {
            panic!()
        };
        assert!(r.cluster);
        assert_eq!(r.servers.len(), 3);
        assert_eq!(r.servers[2].host, "::1");
        assert_eq!(r.password.as_deref(), Some("pw"));
    }

    #[test]
    fn routes_from_flists_are_restricted() {
        for route in [
            "zdb://h:9900/ns",
            "redis://h:6379/0?namespace=x",
            "redis+cluster://a:1,b:2",
        ] {
            parse_route(route).unwrap();
        }
        for (route, part) in [
            ("dir:///etc", "are routes"),
            ("/etc", "network store"),
            ("zdb://h/ns?password-file=/etc/shadow", "password-file"),
            (
                "zdb://h/ns?admin-password-file=/root/pw",
                "admin-password-file",
            ),
            ("rediss://h?ca-file=/etc/ssl/private/key.pem", "ca-file"),
            ("redis://user:pw@h", "credentials"),
            ("zdb://:pw@h/ns", "credentials"),
        ] {
            let err = parse_route(route).unwrap_err().to_string();
            assert!(err.contains(part), "{route}: {err}");
        }
        // Locations are routes: IPv6 and odd namespaces survive the round trip.
        let StoreUrl::Zdb(z) = parse("zdb://[::1]:9900/a%20b%26c") else {
            panic!()
        };
        let store = crate::ZdbStore::new(z).unwrap();
        let again = parse_route(crate::ChunkStore::location(&store)).unwrap();
        let StoreUrl::Zdb(z) = again else { panic!() };
        assert_eq!((z.host.as_str(), z.namespace.as_str()), ("::1", "a b&c"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("10MiB"), Some(10 << 20));
        assert_eq!(parse_size("2g"), Some(2 << 30));
        assert_eq!(parse_size("1TB"), Some(1 << 40));
        assert_eq!(parse_size("5X"), None);
        assert_eq!(parse_size("G"), None);
        assert_eq!(parse_size("99999999999T"), None);
    }

    #[test]
    fn malformed_urls_name_the_bad_part_and_hide_passwords() {
        for (url, part) in [
            ("s3://bucket", "\"s3\""),
            ("bucket", "not a URL"),
            ("dir://", "empty"),
            ("dir:///x?fsync=maybe", "maybe"),
            ("dir:///x?compress=1", "compress"),
            ("dir:///x%zz", "percent escape"),
            ("dir:///x%00", "NUL"),
            ("zdb://user@h", "no user names"),
            ("zdb://h/a/b", "contains '/'"),
            ("zdb://h:99999", "invalid port"),
            ("zdb://h?timeout=soon", "timeout"),
            ("zdb://h?pool=0", "pool"),
            ("zdb://h?color=red", "\"color\""),
            ("redis://h1,h2", "redis+cluster"),
            ("redis://h/zero", "not a number"),
            ("redis://h?ca-file=/x", "needs rediss"),
            ("redis://h?namespace=a*", "namespace"),
            ("redis+cluster://h:1/2", "no database"),
            ("redis+cluster://h:1?pool=2", "does not apply to a cluster"),
            ("redis://h?in-flight=2097152T", "in-flight"),
            (
                "zdb://:topsecret@h?password-file=/nonexistent/pw",
                "password-file",
            ),
        ] {
            let err = url.parse::<StoreUrl>().unwrap_err().to_string();
            assert!(err.contains(part), "{url}: {err}");
            assert!(!err.contains("topsecret"), "{url}: {err}");
        }
        assert_eq!(
            redact("redis://u:pw@h:1/0?admin-password=x&pool=2"),
            "redis://***@h:1/0?admin-password=***&pool=2"
        );
        // Passwords holding URL delimiters, and undecodable ones, are not echoed either.
        for url in [
            "zdb://:se/cret@h/ns?pool=0",
            "redis://u:pa?ss@h:99999",
            "redis://u:%ffTOPSECRET@h",
            "redis+cluster://u:pa:1,2@h:1/3",
        ] {
            let err = url.parse::<StoreUrl>().map(|_| ()).unwrap_err().to_string();
            for secret in ["cret", "pa?ss", "TOPSECRET", "pa:1"] {
                assert!(!err.contains(secret), "{url}: {err}");
            }
        }
    }
}
