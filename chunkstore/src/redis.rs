//! Redis and Valkey backends: one server (`redis://`, `rediss://`) or a Redis Cluster
//! (`redis+cluster://`), with an optional namespace that becomes a key prefix
//! (`<namespace>:<32-byte key>`), so several stores can share one database. Blocks live
//! beside the chunks under `[<namespace>:]block/<id>` (see `layout`), and are read with
//! `GETRANGE`, so that whatever a shared server holds under a block's key, no more than
//! one byte past the largest block comes back.

use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
#[cfg(feature = "tls")]
use redis::TlsCertificates;
use redis::cluster_async::ClusterConnection;
use redis::{
    ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo, RedisError, Value,
};
use tokio::sync::OnceCell;

use crate::blocks::{BlockId, MAX_BLOCK_SIZE};
use crate::codec::EncodedChunk;
use crate::error::{Error, Result};
use crate::key::ChunkKey;
use crate::layout::{
    Entry, block_entries, block_key, block_of, check_block, chunk_entries, chunk_of, distinct,
    is_block_key, is_chunk_key, prefixed,
};
use crate::listing::{Cursor, Page};
use crate::net::{Classified, NetOptions, Pool, READ_GROUP, classify, read_budget, server_text};
use crate::store::{BackendStats, ChunkStore};
use crate::url::{encode_component, url_host};

#[path = "redis_forget.rs"]
mod forget;

/// Single-key commands in flight at once on a cluster connection.
const CLUSTER_CONCURRENCY: usize = 256;

/// One Redis-compatible server.
#[derive(Clone, PartialEq, Eq)]
pub struct Server {
    pub host: String,
    pub port: u16,
}

/// TLS settings of `rediss://` URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of the certificate authorities to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Skip hostname verification (for tests and private networks only).
    pub insecure: bool,
}

/// How to reach a Redis server or cluster.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// One server, or the seed nodes of a cluster.
    pub servers: Vec<Server>,
    pub cluster: bool,
    pub tls: Option<TlsOptions>,
    /// Database number (single server only).
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Key prefix: keys are stored as `<namespace>:<key>`.
    pub namespace: Option<String>,
    pub net: NetOptions,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let servers: Vec<String> = self
            .servers
            .iter()
            .map(|s| format!("{}:{}", s.host, s.port))
            .collect();
        f.debug_struct("RedisOptions")
            .field("servers", &servers)
            .field("cluster", &self.cluster)
            .field("tls", &self.tls)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("namespace", &self.namespace)
            .field("net", &self.net)
            .finish()
    }
}

impl RedisOptions {
    /// The URL without credentials.
    fn location(&self) -> String {
        let scheme = match (self.tls.is_some(), self.cluster) {
            (false, false) => "redis",
            (true, false) => "rediss",
            (false, true) => "redis+cluster",
            (true, true) => "rediss+cluster",
        };
        let servers: Vec<String> = self
            .servers
            .iter()
            .map(|s| format!("{}:{}", url_host(&s.host), s.port))
            .collect();
        let mut url = format!("{scheme}://{}", servers.join(","));
        if !self.cluster {
            url.push_str(&format!("/{}", self.db));
        }
        if let Some(ns) = &self.namespace {
            url.push_str(&format!("?namespace={}", encode_component(ns)));
        }
        url
    }

    fn prefix(&self) -> Vec<u8> {
        self.namespace
            .as_ref()
            .map(|ns| format!("{ns}:").into_bytes())
            .unwrap_or_default()
    }

    fn connection_info(&self, server: &Server) -> Result<ConnectionInfo> {
        let addr = match &self.tls {
            None => ConnectionAddr::Tcp(server.host.clone(), server.port),
            Some(tls) => ConnectionAddr::TcpTls {
                host: server.host.clone(),
                port: server.port,
                insecure: tls.insecure,
                tls_params: None,
            },
        };
        let mut settings = RedisConnectionInfo::default()
            .set_db(self.db)
            .set_skip_set_lib_name();
        if let Some(user) = &self.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &self.password {
            settings = settings.set_password(password);
        }
        Ok(addr
            .into_connection_info()
            .map_err(|e| self.bad(e.to_string()))?
            .set_redis_settings(settings))
    }

    #[cfg(feature = "tls")]
    fn certificates(&self) -> Result<Option<TlsCertificates>> {
        let Some(path) = self.tls.as_ref().and_then(|t| t.ca_file.as_ref()) else {
            return Ok(None);
        };
        let pem = std::fs::read(path)
            .map_err(|e| self.bad(format!("CA file {}: {e}", path.display())))?;
        Ok(Some(TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        }))
    }

    fn bad(&self, reason: String) -> Error {
        Error::Store {
            location: self.location(),
            reason,
        }
    }
}

/// A Redis or Valkey server.
pub struct RedisStore {
    pool: Pool,
    prefix: Vec<u8>,
}

impl RedisStore {
    /// Prepares the store; connections open on first use.
    pub fn new(options: RedisOptions) -> Result<RedisStore> {
        let [server] = options.servers.as_slice() else {
            return Err(
                options.bad("a single server is needed; use redis+cluster:// for several".into())
            );
        };
        let info = options.connection_info(server)?;
        #[cfg(feature = "tls")]
        let client = match options.certificates()? {
            Some(certs) => redis::Client::build_with_tls(info, certs),
            None => redis::Client::open(info),
        };
        #[cfg(not(feature = "tls"))]
        let client = redis::Client::open(info);
        let client = client.map_err(|e| options.bad(e.to_string()))?;
        Ok(RedisStore {
            pool: Pool::new(options.location(), client, None, options.net),
            prefix: options.prefix(),
        })
    }

    fn chunk_keys(&self, keys: &[ChunkKey]) -> Vec<Vec<u8>> {
        keys.iter().map(|k| prefixed(&self.prefix, k)).collect()
    }

    fn block_keys(&self, ids: &[BlockId]) -> Vec<Vec<u8>> {
        ids.iter().map(|id| block_key(&self.prefix, id)).collect()
    }

    async fn put_entries(&self, entries: Vec<Entry>) -> Result<()> {
        self.pool
            .write_groups(&distinct(entries), |group| async move {
                self.set_group(&group).await
            })
            .await
    }

    async fn set_group(&self, group: &[Entry]) -> Result<()> {
        let bytes = group.iter().map(|(_, value)| value.len()).sum();
        let replies: Vec<Value> = self
            .pool
            .run(bytes, |mut conn| {
                let mut pipe = redis::pipe();
                for (key, value) in group {
                    pipe.cmd("SET").arg(key).arg(&value[..]);
                }
                async move { pipe.query_async(&mut conn).await }
            })
            .await?;
        match replies.iter().find(|r| !matches!(r, Value::Okay)) {
            None if replies.len() == group.len() => Ok(()),
            other => Err(self.pool.protocol(format!("SET answered {other:?}"))),
        }
    }

    /// Bounded reads of `READ_GROUP` keys per pipeline, `pool` pipelines at once, in order.
    async fn get_ranges(&self, keys: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
        // Owned groups: a stream of borrowed ones trips the compiler's Send inference.
        let groups: Vec<Vec<Vec<u8>>> = keys.chunks(READ_GROUP).map(<[_]>::to_vec).collect();
        let found: Vec<Vec<Vec<u8>>> = stream::iter(groups)
            .map(|group| async move {
                let values: Vec<Vec<u8>> = self
                    .pool
                    .run(read_budget(group.len()), |mut conn| {
                        let mut pipe = redis::pipe();
                        for key in &group {
                            pipe.add_command(get_range(key));
                        }
                        async move { pipe.query_async(&mut conn).await }
                    })
                    .await?;
                if values.len() != group.len() {
                    return Err(self.pool.protocol(format!(
                        "{} replies to {} GETRANGE",
                        values.len(),
                        group.len()
                    )));
                }
                Ok(values)
            })
            .buffered(self.pool.options().pool)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Chunks and blocks of this store, counted with `SCAN` (of the namespace's keys, or
    /// of the whole database without one) and told apart by their shape. Keys of neither
    /// shape (another program's) are left out.
    async fn count_keys(&self) -> Result<(u64, u64)> {
        let pattern = [glob_escape(&self.prefix), b"*".to_vec()].concat();
        let (mut cursor, mut chunks, mut blocks) = (0u64, 0u64, 0u64);
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = self
                .pool
                .run(1, |mut conn| {
                    let mut scan = redis::cmd("SCAN");
                    scan.arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000);
                    async move { scan.query_async(&mut conn).await }
                })
                .await?;
            for key in &keys {
                if is_chunk_key(&self.prefix, key) {
                    chunks += 1;
                } else if is_block_key(&self.prefix, key) {
                    blocks += 1;
                }
            }
            if next == 0 {
                return Ok((chunks, blocks));
            }
            cursor = next;
        }
    }
}

/// `GETRANGE <key> 0 <MAX_BLOCK_SIZE>`: the value, cut one byte past the largest block
/// (the end is inclusive), so that an oversized value is seen without being read whole.
/// A missing key reads as empty.
fn get_range(key: &[u8]) -> redis::Cmd {
    let mut cmd = redis::cmd("GETRANGE");
    cmd.arg(key).arg(0).arg(MAX_BLOCK_SIZE);
    cmd
}

/// Blocks from their bounded reads: an empty read is a block only if its key exists, which
/// `exists` is asked for those reads alone (a block is never empty in practice, so this
/// costs a round trip only when some are missing).
async fn blocks_from_ranges<F, Fut>(
    location: &str,
    ids: &[BlockId],
    keys: &[Vec<u8>],
    values: Vec<Vec<u8>>,
    exists: F,
) -> Result<Vec<Option<Bytes>>>
where
    F: FnOnce(Vec<Vec<u8>>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<bool>>>,
{
    let empty: Vec<usize> = (0..values.len())
        .filter(|&i| values[i].is_empty())
        .collect();
    let present = if empty.is_empty() {
        Vec::new()
    } else {
        exists(empty.iter().map(|&i| keys[i].clone()).collect()).await?
    };
    if present.len() != empty.len() {
        return Err(Error::Protocol {
            location: location.to_owned(),
            message: format!("{} answers to {} EXISTS", present.len(), empty.len()),
        });
    }
    let mut present = present.into_iter();
    ids.iter()
        .zip(values)
        .map(|(id, value)| {
            if value.is_empty() {
                return Ok(present.next().unwrap_or(false).then(Bytes::new));
            }
            check_block(location, id, value.len())?;
            Ok(Some(Bytes::from(value)))
        })
        .collect()
}

/// Escapes the glob characters of a `SCAN MATCH` pattern.
fn glob_escape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

#[async_trait]
impl ChunkStore for RedisStore {
    fn location(&self) -> &str {
        self.pool.location()
    }

    fn routes(&self) -> Vec<String> {
        vec![self.pool.location().to_owned()]
    }

    async fn has_many(&self, keys: &[ChunkKey]) -> Result<Vec<bool>> {
        self.pool.exists_many(&self.chunk_keys(keys)).await
    }

    async fn put_many(&self, chunks: &[EncodedChunk]) -> Result<()> {
        self.put_entries(chunk_entries(&self.prefix, chunks)).await
    }

    async fn get_many(&self, keys: &[ChunkKey]) -> Result<Vec<Option<Bytes>>> {
        self.pool.get_many(&self.chunk_keys(keys)).await
    }

    async fn has_blocks(&self, ids: &[BlockId]) -> Result<Vec<bool>> {
        self.pool.exists_many(&self.block_keys(ids)).await
    }

    async fn put_blocks(&self, blocks: &[(BlockId, Bytes)]) -> Result<()> {
        self.put_entries(block_entries(self.location(), &self.prefix, blocks)?)
            .await
    }

    async fn get_blocks(&self, ids: &[BlockId]) -> Result<Vec<Option<Bytes>>> {
        let keys = self.block_keys(ids);
        let values = self.get_ranges(&keys).await?;
        blocks_from_ranges(self.location(), ids, &keys, values, |keys| async move {
            self.pool.exists_many(&keys).await
        })
        .await
    }

    async fn list_chunks(&self, cursor: Option<Cursor>, limit: usize) -> Result<Page<ChunkKey>> {
        let prefix = self.prefix.clone();
        self.list(cursor, limit, move |key| chunk_of(&prefix, key))
            .await
    }

    async fn delete_many(&self, keys: &[ChunkKey]) -> Result<u64> {
        self.delete(self.chunk_keys(keys)).await
    }

    async fn list_blocks(&self, cursor: Option<Cursor>, limit: usize) -> Result<Page<BlockId>> {
        let prefix = self.prefix.clone();
        self.list(cursor, limit, move |key| block_of(&prefix, key))
            .await
    }

    async fn delete_blocks(&self, ids: &[BlockId]) -> Result<u64> {
        self.delete(self.block_keys(ids)).await
    }

    async fn stats(&self) -> Result<Vec<BackendStats>> {
        let (chunks, blocks) = self.count_keys().await?;
        Ok(vec![BackendStats {
            location: self.location().to_owned(),
            keys: Some(chunks),
            blocks: Some(blocks),
            bytes: None,
        }])
    }
}

/// A Redis Cluster, reached through its seed nodes. The cluster client keeps one multiplexed
/// connection per node, follows slot moves and reconnects by itself.
pub struct ClusterStore {
    client: redis::cluster::ClusterClient,
    connection: OnceCell<ClusterConnection>,
    location: String,
    prefix: Vec<u8>,
    net: NetOptions,
}

impl ClusterStore {
    /// Prepares the store; the cluster is contacted on first use.
    pub fn new(options: RedisOptions) -> Result<ClusterStore> {
        if options.servers.is_empty() {
            return Err(options.bad("no seed nodes".into()));
        }
        let nodes = options
            .servers
            .iter()
            .map(|s| options.connection_info(s))
            .collect::<Result<Vec<_>>>()?;
        let builder = redis::cluster::ClusterClient::builder(nodes)
            .connection_timeout(options.net.connect_timeout)
            .response_timeout(options.net.timeout)
            .retries(2);
        #[cfg(feature = "tls")]
        let builder = match options.certificates()? {
            Some(certs) => builder.certs(certs),
            None => builder,
        };
        let client = builder.build().map_err(|e| options.bad(e.to_string()))?;
        Ok(ClusterStore {
            client,
            connection: OnceCell::new(),
            location: options.location(),
            prefix: options.prefix(),
            net: options.net,
        })
    }

    async fn connection(&self) -> Result<ClusterConnection> {
        let connect = async {
            tokio::time::timeout(
                self.net.connect_timeout + self.net.timeout,
                self.client.get_async_connection(),
            )
            .await
            .map_err(|_| self.unavailable("no answer from the seed nodes".into()))?
            .map_err(|e| self.error(e))
        };
        self.connection.get_or_try_init(|| connect).await.cloned()
    }

    fn unavailable(&self, reason: String) -> Error {
        Error::Unavailable {
            location: self.location.clone(),
            reason,
        }
    }

    fn error(&self, e: RedisError) -> Error {
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
        {
            return self.unavailable(e.to_string());
        }
        let text = server_text(&e);
        match classify(&text) {
            Classified::Unavailable => self.unavailable(text),
            Classified::Refused(kind) => Error::Refused {
                location: self.location.clone(),
                kind,
                message: text,
            },
        }
    }

    /// Runs single-key commands, many at once, results in order.
    async fn each<R: redis::FromRedisValue>(&self, commands: Vec<redis::Cmd>) -> Result<Vec<R>> {
        let conn = self.connection().await?;
        let count = commands.len();
        let run = stream::iter(commands)
            .map(|cmd| {
                let mut conn = conn.clone();
                async move { cmd.query_async::<R>(&mut conn).await }
            })
            .buffered(CLUSTER_CONCURRENCY)
            .try_collect::<Vec<R>>();
        // The client times out each command; this bounds the whole batch as well.
        let rounds = count.div_ceil(CLUSTER_CONCURRENCY).max(1) as u32;
        match tokio::time::timeout(self.net.timeout.saturating_mul(rounds + 1), run).await {
            Ok(result) => result.map_err(|e| self.error(e)),
            Err(_) => Err(self.unavailable("the cluster did not answer in time".into())),
        }
    }
}

/// A single-key command on `key` with optional value.
fn command(name: &str, key: Vec<u8>, value: Option<&[u8]>) -> redis::Cmd {
    let mut cmd = redis::cmd(name);
    cmd.arg(key);
    if let Some(value) = value {
        cmd.arg(value);
    }
    cmd
}

#[async_trait]
impl ChunkStore for ClusterStore {
    fn location(&self) -> &str {
        &self.location
    }

    fn routes(&self) -> Vec<String> {
        vec![self.location.clone()]
    }

    async fn has_many(&self, keys: &[ChunkKey]) -> Result<Vec<bool>> {
        self.exists(keys.iter().map(|k| prefixed(&self.prefix, k)).collect())
            .await
    }

    async fn put_many(&self, chunks: &[EncodedChunk]) -> Result<()> {
        self.set(chunk_entries(&self.prefix, chunks)).await
    }

    async fn get_many(&self, keys: &[ChunkKey]) -> Result<Vec<Option<Bytes>>> {
        let commands = keys
            .iter()
            .map(|key| command("GET", prefixed(&self.prefix, key), None))
            .collect();
        let values: Vec<Option<Vec<u8>>> = self.each(commands).await?;
        Ok(values.into_iter().map(|v| v.map(Bytes::from)).collect())
    }

    async fn has_blocks(&self, ids: &[BlockId]) -> Result<Vec<bool>> {
        self.exists(ids.iter().map(|id| block_key(&self.prefix, id)).collect())
            .await
    }

    async fn put_blocks(&self, blocks: &[(BlockId, Bytes)]) -> Result<()> {
        self.set(block_entries(&self.location, &self.prefix, blocks)?)
            .await
    }

    async fn get_blocks(&self, ids: &[BlockId]) -> Result<Vec<Option<Bytes>>> {
        let keys: Vec<Vec<u8>> = ids.iter().map(|id| block_key(&self.prefix, id)).collect();
        let values: Vec<Vec<u8>> = self
            .each(keys.iter().map(|k| get_range(k)).collect())
            .await?;
        blocks_from_ranges(&self.location, ids, &keys, values, |keys| self.exists(keys)).await
    }

    async fn list_chunks(&self, cursor: Option<Cursor>, limit: usize) -> Result<Page<ChunkKey>> {
        let prefix = self.prefix.clone();
        self.list(cursor, limit, move |key| chunk_of(&prefix, key))
            .await
    }

    async fn delete_many(&self, keys: &[ChunkKey]) -> Result<u64> {
        self.delete(keys.iter().map(|k| prefixed(&self.prefix, k)).collect())
            .await
    }

    async fn list_blocks(&self, cursor: Option<Cursor>, limit: usize) -> Result<Page<BlockId>> {
        let prefix = self.prefix.clone();
        self.list(cursor, limit, move |key| block_of(&prefix, key))
            .await
    }

    async fn delete_blocks(&self, ids: &[BlockId]) -> Result<u64> {
        self.delete(ids.iter().map(|id| block_key(&self.prefix, id)).collect())
            .await
    }

    /// `DBSIZE` summed over the primaries: all keys, whatever their namespace, blocks
    /// included (telling them apart would take a `SCAN` of every primary).
    async fn stats(&self) -> Result<Vec<BackendStats>> {
        let keys: Vec<u64> = self.each(vec![redis::cmd("DBSIZE")]).await?;
        Ok(vec![BackendStats {
            location: self.location.clone(),
            keys: keys.first().copied(),
            blocks: None,
            bytes: None,
        }])
    }
}

impl ClusterStore {
    async fn exists(&self, keys: Vec<Vec<u8>>) -> Result<Vec<bool>> {
        let commands = keys
            .into_iter()
            .map(|key| command("EXISTS", key, None))
            .collect();
        let counts: Vec<i64> = self.each(commands).await?;
        Ok(counts.into_iter().map(|n| n > 0).collect())
    }

    async fn set(&self, entries: Vec<Entry>) -> Result<()> {
        let commands = entries
            .into_iter()
            .map(|(key, value)| command("SET", key, Some(&value)))
            .collect();
        let _: Vec<Value> = self.each(commands).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn scan_patterns_escape_glob_characters() {
        assert_eq!(super::glob_escape(b"a*b[c]?\\"), b"a\\*b\\[c\\]\\?\\\\");
    }
}
