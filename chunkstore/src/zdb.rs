//! The 0-db (zdb) backend.
//!
//! 0-db speaks RESP but is not Redis (what it accepts: `docs/0-db.md`); this client
//! keeps to the subset both agree on and normalises the rest:
//!
//! * RESP2 only; nothing is sent on connect but an optional `AUTH <admin password>` (one
//!   argument) and `SELECT <namespace> [password]`, on every new or re-opened connection.
//!   No `HELLO`, no `CLIENT SETINFO`, never `SELECT <number>`.
//! * `EXISTS` takes one key, so existence checks are pipelined one key per command.
//! * `MGET` takes at most 1023 keys before the server stops answering; reads go in `MGET`s of
//!   64 keys (`net::READ_GROUP`), several at once, which also bounds the bytes of a reply.
//! * `SET` answers the key, or nil when the identical value is already stored; both are
//!   success. A namespace in sequential mode, which cannot hold content-addressed keys,
//!   refuses the key (`Invalid key, only update authorized`): `NSINFO` confirms the mode
//!   and the error says so. No SET options are ever sent (a 4th argument is a timestamp
//!   for 0-db).
//! * Values over 8 MiB make the server drop the connection mid-write, keys are 1 to 255
//!   bytes: both are checked before anything is sent.
//! * Before writing, the keys are checked with `EXISTS` and only missing ones are sent:
//!   0-db appends every write to disk and 2.0.7 leaks the value on an identical overwrite.
//! * Error replies have no code word; they are matched by their text (see `net::classify`).
//!
//! Keys: a chunk under its 32 bytes, a block under `block/<id>` (see `layout`), in the
//! same namespace. Key counts come from a `SCAN` of the namespace, which tells the two apart
//! by their shape: `NSINFO`'s `entries` counts every key.

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, Value};

use crate::blocks::{BlockId, MAX_BLOCK_SIZE};
use crate::codec::EncodedChunk;
use crate::error::{Error, Result};
use crate::key::ChunkKey;
use crate::layout::{
    Entry, block_key, block_of, check_block, chunk_entries, chunk_of, distinct, is_block_key,
    is_chunk_key, prefixed,
};
use crate::listing::{Cursor, Listed, Page, Reclaim, page_size};
use crate::net::{Handshake, NetOptions, Pool, server_text};
use crate::store::{BackendStats, ChunkStore};
use crate::url::{encode_component, url_host};

/// Largest value 0-db accepts (`REDIS_MAX_PAYLOAD`, inclusive).
pub const MAX_VALUE: usize = 8 * 1024 * 1024;
/// Longest key 0-db accepts in user-key mode.
pub const MAX_KEY: usize = 255;

// Every block fits in a value, so a 0-db never holds a block larger than a store may.
const _: () = assert!(MAX_BLOCK_SIZE <= MAX_VALUE);

/// Chunk keys have no prefix: a 0-db namespace is the store's own.
const PREFIX: &[u8] = b"";

/// How to reach a 0-db namespace.
#[derive(Clone, PartialEq, Eq)]
pub struct ZdbOptions {
    pub host: String,
    pub port: u16,
    pub namespace: String,
    /// The namespace password, sent with `SELECT`.
    pub password: Option<String>,
    /// The admin password, sent with `AUTH` before `SELECT` (needed for writes on a
    /// `--protect`ed server's `default` namespace, together with the namespace password).
    pub admin_password: Option<String>,
    pub net: NetOptions,
}

impl std::fmt::Debug for ZdbOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZdbOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("namespace", &self.namespace)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "<redacted>"),
            )
            .field("net", &self.net)
            .finish()
    }
}

/// A 0-db namespace used as a chunk store.
pub struct ZdbStore {
    pool: Pool,
    namespace: String,
    /// Blocks under their bare ids, not `block/<id>` ([`ZdbStore::with_bare_block_ids`]).
    bare_block_ids: bool,
}

impl ZdbStore {
    /// Prepares the store; connections open on first use.
    pub fn new(options: ZdbOptions) -> Result<ZdbStore> {
        let location = format!(
            "zdb://{}:{}/{}",
            url_host(&options.host),
            options.port,
            encode_component(&options.namespace)
        );
        let bad = |reason: String| Error::Store {
            location: location.clone(),
            reason,
        };
        if options.namespace.is_empty() || options.namespace.len() > 128 {
            return Err(bad("namespace names are 1 to 128 bytes".into()));
        }
        // No password and database 0 for redis-rs: it would turn them into `AUTH` and
        // `SELECT <n>`, which mean other things to 0-db. The handshake does it the 0-db way.
        let info = ConnectionAddr::Tcp(options.host.clone(), options.port)
            .into_connection_info()
            .map_err(|e| bad(e.to_string()))?
            .set_redis_settings(RedisConnectionInfo::default().set_skip_set_lib_name());
        let client = redis::Client::open(info).map_err(|e| bad(e.to_string()))?;
        let handshake = handshake(&options);
        Ok(ZdbStore {
            pool: Pool::new(location, client, Some(handshake), options.net),
            namespace: options.namespace,
            bare_block_ids: false,
        })
    }

    fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(self.pool.protocol(format!(
                "a key of {} bytes; 0-db takes 1 to {MAX_KEY}",
                key.len()
            )));
        }
        Ok(())
    }
}

fn handshake(options: &ZdbOptions) -> Handshake {
    let (namespace, password, admin) = (
        options.namespace.clone(),
        options.password.clone(),
        options.admin_password.clone(),
    );
    Box::new(move |mut conn: MultiplexedConnection| {
        let (namespace, password, admin) = (namespace.clone(), password.clone(), admin.clone());
        Box::pin(async move {
            if let Some(admin) = admin {
                redis::cmd("AUTH")
                    .arg(admin)
                    .query_async::<Value>(&mut conn)
                    .await?;
            }
            let mut select = redis::cmd("SELECT");
            select.arg(namespace);
            if let Some(password) = password {
                select.arg(password);
            }
            select.query_async::<Value>(&mut conn).await?;
            Ok(())
        })
    })
}

#[async_trait]
impl ChunkStore for ZdbStore {
    fn location(&self) -> &str {
        self.pool.location()
    }

    /// Routes never carry credentials: readers use the namespace's public read access.
    fn routes(&self) -> Vec<String> {
        vec![self.pool.location().to_owned()]
    }

    async fn has_many(&self, keys: &[ChunkKey]) -> Result<Vec<bool>> {
        self.pool.exists_many(&chunk_keys(keys)).await
    }

    async fn put_many(&self, chunks: &[EncodedChunk]) -> Result<()> {
        if let Some(chunk) = chunks.iter().find(|c| c.len() > MAX_VALUE) {
            return Err(Error::TooLarge {
                size: chunk.len(),
                max: MAX_VALUE,
            });
        }
        self.put_entries(chunk_entries(PREFIX, chunks)).await
    }

    async fn get_many(&self, keys: &[ChunkKey]) -> Result<Vec<Option<Bytes>>> {
        self.pool.get_many(&chunk_keys(keys)).await
    }

    async fn has_blocks(&self, ids: &[BlockId]) -> Result<Vec<bool>> {
        self.pool.exists_many(&self.block_keys(ids)).await
    }

    async fn put_blocks(&self, blocks: &[(BlockId, Bytes)]) -> Result<()> {
        for (id, block) in blocks {
            check_block(self.location(), id, block.len())?;
        }
        let ids: Vec<BlockId> = blocks.iter().map(|(id, _)| *id).collect();
        let entries = self
            .block_keys(&ids)
            .into_iter()
            .zip(blocks.iter().map(|(_, block)| block.clone()))
            .collect();
        self.put_entries(entries).await
    }

    /// 0-db holds no value over 8 MiB, the largest block; a reply that does is refused
    /// all the same.
    async fn get_blocks(&self, ids: &[BlockId]) -> Result<Vec<Option<Bytes>>> {
        let found = self.pool.get_many(&self.block_keys(ids)).await?;
        for (id, block) in ids.iter().zip(&found) {
            if let Some(block) = block {
                check_block(self.location(), id, block.len())?;
            }
        }
        Ok(found)
    }

    async fn list_chunks(&self, cursor: Option<Cursor>, limit: usize) -> Result<Page<ChunkKey>> {
        if self.bare_block_ids {
            return Err(self.cannot_forget());
        }
        self.list(cursor, limit, |key| chunk_of(PREFIX, key)).await
    }

    async fn delete_many(&self, keys: &[ChunkKey]) -> Result<u64> {
        if self.bare_block_ids {
            return Err(self.cannot_forget());
        }
        self.delete(chunk_keys(keys)).await
    }

    async fn list_blocks(&self, cursor: Option<Cursor>, limit: usize) -> Result<Page<BlockId>> {
        let bare = self.bare_block_ids;
        self.list(cursor, limit, |key| match bare {
            true => BlockId::from_slice(key),
            false => block_of(PREFIX, key),
        })
        .await
    }

    async fn delete_blocks(&self, ids: &[BlockId]) -> Result<u64> {
        self.delete(self.block_keys(ids)).await
    }

    /// 0-db appends a deletion to its files: the space comes back when they are compacted.
    fn reclaim(&self) -> Reclaim {
        Reclaim::OnCompaction
    }

    /// The namespace's disk use from `NSINFO`; its chunks and blocks counted by a walk.
    async fn stats(&self) -> Result<Vec<BackendStats>> {
        let info = self.nsinfo().await?;
        let number = |name: &str| nsinfo_field(&info, name).and_then(|v| v.parse::<u64>().ok());
        let (chunks, blocks) = self.count_keys().await?;
        Ok(vec![BackendStats {
            location: self.location().to_owned(),
            keys: Some(chunks),
            blocks: Some(blocks),
            bytes: number("data_size_bytes"),
        }])
    }
}

fn chunk_keys(keys: &[ChunkKey]) -> Vec<Vec<u8>> {
    keys.iter().map(|k| prefixed(PREFIX, k)).collect()
}

impl ZdbStore {
    /// Blocks under their bare ids, as zflist and rfs write them and the node readers read
    /// them, in a namespace of their own: for reading the blocks of a 0-flist or fl file
    /// from the 0-db its backend or routes name. Such a namespace is no chunk store (a
    /// 32-byte id there could be a chunk's key).
    pub fn with_bare_block_ids(mut self) -> ZdbStore {
        self.bare_block_ids = true;
        self
    }

    fn block_keys(&self, ids: &[BlockId]) -> Vec<Vec<u8>> {
        ids.iter()
            .map(|id| match self.bare_block_ids {
                true => id.as_bytes().to_vec(),
                false => block_key(PREFIX, id),
            })
            .collect()
    }

    async fn nsinfo(&self) -> Result<String> {
        self.pool
            .run(1, |mut conn| {
                let mut cmd = redis::cmd("NSINFO");
                cmd.arg(&self.namespace);
                async move { cmd.query_async(&mut conn).await }
            })
            .await
    }

    /// Stores the entries the namespace lacks: never a value the server already holds
    /// (nor the same one twice).
    async fn put_entries(&self, entries: Vec<Entry>) -> Result<()> {
        for (key, _) in &entries {
            self.check_key(key)?;
        }
        let entries = distinct(entries);
        let keys: Vec<Vec<u8>> = entries.iter().map(|(key, _)| key.clone()).collect();
        let present = self.pool.exists_many(&keys).await?;
        let missing: Vec<Entry> = entries
            .into_iter()
            .zip(present)
            .filter(|(_, present)| !present)
            .map(|(entry, _)| entry)
            .collect();
        self.pool
            .write_groups(
                &missing,
                |group| async move { self.set_group(&group).await },
            )
            .await
    }

    async fn set_group(&self, group: &[Entry]) -> Result<()> {
        let bytes: usize = group.iter().map(|(_, value)| value.len()).sum();
        let sent = self
            .pool
            .run(bytes, |mut conn| {
                let mut pipe = redis::pipe();
                for (key, value) in group {
                    pipe.cmd("SET").arg(key).arg(&value[..]);
                }
                async move { pipe.query_async(&mut conn).await }
            })
            .await;
        let replies: Vec<Value> = match sent {
            // What a sequential namespace answers a key that is not one of its ids.
            Err(refused @ Error::Refused { .. })
                if refused.to_string().contains("only update authorized") =>
            {
                return Err(self.sequential_or(refused).await);
            }
            other => other?,
        };
        if replies.len() != group.len() {
            return Err(self.pool.protocol(format!(
                "{} replies to {} SET",
                replies.len(),
                group.len()
            )));
        }
        for ((key, _), reply) in group.iter().zip(replies) {
            match reply {
                // Stored, or already stored with the identical value.
                Value::Nil | Value::Okay => {}
                Value::BulkString(answered) if &answered == key => {}
                other => {
                    return Err(self.pool.protocol(format!("SET answered {other:?}")));
                }
            }
        }
        Ok(())
    }

    /// Chunks and blocks in the namespace, by a walk of `SCAN`. Keys of neither shape
    /// (another program's) are left out.
    async fn count_keys(&self) -> Result<(u64, u64)> {
        let (mut chunks, mut blocks) = (0u64, 0u64);
        let mut cursor: Option<Vec<u8>> = None;
        while let Some((next, entries)) = self.scan(cursor.as_deref()).await? {
            for (key, _, _) in &entries {
                if is_chunk_key(PREFIX, key) {
                    chunks += 1;
                } else if is_block_key(PREFIX, key) {
                    blocks += 1;
                }
            }
            cursor = Some(next);
        }
        Ok((chunks, blocks))
    }

    /// One `SCAN` (0-db's: an opaque cursor, the walk ended by the error `No more data`,
    /// entries in write order, deleted ones left out); `None` at the end.
    async fn scan(&self, cursor: Option<&[u8]>) -> Result<Option<ScanPage>> {
        self.pool
            .run(1, |mut conn| {
                let mut scan = redis::cmd("SCAN");
                if let Some(cursor) = cursor {
                    scan.arg(cursor);
                }
                async move {
                    match scan.query_async(&mut conn).await {
                        Ok(page) => Ok(Some(page)),
                        Err(e) if server_text(&e).contains("No more data") => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .await
    }

    /// The keys `wanted` picks out of the namespace, from `cursor` on: `SCAN`s until
    /// `limit` were found or the namespace ends. A `SCAN` answers as many entries as fit in
    /// a few milliseconds, whatever is asked: a page cut short goes on from its last
    /// entry's own cursor (`KEYCUR`), which `SCAN` continues after.
    async fn list<K>(
        &self,
        cursor: Option<Cursor>,
        limit: usize,
        wanted: impl Fn(&[u8]) -> Option<K>,
    ) -> Result<Page<K>> {
        let limit = page_size(limit);
        let mut cursor = cursor.map(|c| c.as_bytes().to_vec());
        let mut items = Vec::new();
        loop {
            let Some((next, entries)) = self.scan(cursor.as_deref()).await? else {
                return Ok(Page { items, next: None });
            };
            let mut last = None;
            for (key, size, written) in entries {
                if items.len() == limit {
                    break;
                }
                if let Some(item) = wanted(&key) {
                    items.push(Listed {
                        key: item,
                        size: number(&size).map(|n| n as u64),
                        written: number(&written),
                    });
                }
                last = Some(key);
            }
            cursor = Some(next);
            if items.len() == limit {
                // Cut short, or not: the walk goes on right after the last entry taken.
                if let Some(last) = last {
                    cursor = Some(self.key_cursor(&last).await?);
                }
                return Ok(Page {
                    items,
                    next: cursor.map(Cursor::from_bytes),
                });
            }
        }
    }

    /// `KEYCUR <key>`: the `SCAN` cursor of an entry.
    async fn key_cursor(&self, key: &[u8]) -> Result<Vec<u8>> {
        self.pool
            .run(1, |mut conn| {
                let mut keycur = redis::cmd("KEYCUR");
                keycur.arg(key);
                async move { keycur.query_async(&mut conn).await }
            })
            .await
    }

    /// Deletes keys, one `DEL` each (0-db takes one key), pipelined; a key not there
    /// (`Key not found`) is no error. A namespace in sequential mode cannot delete by key.
    async fn delete(&self, keys: Vec<Vec<u8>>) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let info = self.nsinfo().await?;
        if nsinfo_field(&info, "mode") == Some("sequential") {
            return Err(Error::CannotDelete {
                location: self.location().to_owned(),
                reason: format!(
                    "namespace {:?} is in sequential mode, where keys are ids, not chunk keys",
                    self.namespace
                ),
            });
        }
        let mut deleted = 0;
        for group in keys.chunks(DELETE_PIPELINE) {
            let replies: Vec<Value> = self
                .pool
                .run(group.len() * 64, |mut conn| {
                    let mut pipe = redis::pipe();
                    pipe.ignore_errors();
                    for key in group {
                        pipe.cmd("DEL").arg(key);
                    }
                    async move { pipe.query_async(&mut conn).await }
                })
                .await?;
            if replies.len() != group.len() {
                return Err(self.pool.protocol(format!(
                    "{} replies to {} DEL",
                    replies.len(),
                    group.len()
                )));
            }
            for reply in replies {
                match reply {
                    Value::Okay => deleted += 1,
                    Value::ServerError(e) => {
                        let e = redis::RedisError::from(e);
                        if !server_text(&e).contains("Key not found") {
                            return Err(self.pool.refused(&e));
                        }
                    }
                    other => return Err(self.pool.protocol(format!("DEL answered {other:?}"))),
                }
            }
        }
        Ok(deleted)
    }

    /// The error for a SET refused as by a sequential namespace: said plainly when `NSINFO`
    /// confirms the mode, `refused` as it is otherwise.
    async fn sequential_or(&self, refused: Error) -> Error {
        match self.nsinfo().await {
            Ok(info) if nsinfo_field(&info, "mode") == Some("sequential") => Error::Store {
                location: self.location().to_owned(),
                reason: format!(
                    "namespace {:?} is in sequential mode; a chunk store needs a namespace in \
                     user-key mode",
                    self.namespace
                ),
            },
            _ => refused,
        }
    }
}

/// `DEL`s per pipeline.
const DELETE_PIPELINE: usize = 1000;

/// An integer of a `SCAN` entry.
fn number(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        _ => None,
    }
}

/// A page of 0-db's `SCAN`: the next cursor, and `[key, size, timestamp]` per entry.
type ScanPage = (Vec<u8>, Vec<(Vec<u8>, Value, Value)>);

/// A `name: value` line of `NSINFO`'s text.
fn nsinfo_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == name).then(|| v.trim())
    })
}
