//! Listing and deleting the keys of the Redis stores.
//!
//! One server: Redis's `SCAN` with `MATCH <prefix>*` (its cursor, a number, kept as 8
//! bytes), keys told apart by their shape (see `layout`), their sizes asked with `STRLEN`
//! in the same round trip's pipeline; deletes are `DEL`s of many keys.
//!
//! A cluster: the same walk on each primary in turn (the primaries as `CLUSTER SLOTS`
//! names them, sorted, so that every page finds the same order); the cursor is the
//! primary's place in that order and its own cursor. A reshard during a walk can make it
//! miss keys (never invent them): a collector then deletes less, never more. Deletes are
//! one `DEL` per key, each routed to its slot's primary.

use redis::Value;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

use super::{ClusterStore, RedisStore, command, glob_escape};
use crate::error::{Error, Result};
use crate::listing::{Cursor, Listed, Page, page_size};

/// Keys per `DEL` on one server.
const DELETE_GROUP: usize = 1000;

/// The two numbers of a cursor: a primary's place (0 on one server) and its `SCAN` cursor.
fn decode(location: &str, cursor: Option<Cursor>) -> Result<(u32, u64)> {
    let Some(cursor) = cursor else {
        return Ok((0, 0));
    };
    let bytes: [u8; 12] = cursor.as_bytes().try_into().map_err(|_| Error::Store {
        location: location.to_owned(),
        reason: "not a cursor of this store".into(),
    })?;
    let (node, scan) = bytes.split_at(4);
    Ok((
        u32::from_be_bytes(node.try_into().unwrap_or_default()),
        u64::from_be_bytes(scan.try_into().unwrap_or_default()),
    ))
}

fn encode(node: u32, scan: u64) -> Cursor {
    Cursor::from_bytes([node.to_be_bytes().as_slice(), &scan.to_be_bytes()].concat())
}

fn scan_command(prefix: &[u8], cursor: u64, limit: usize) -> redis::Cmd {
    let pattern = [glob_escape(prefix), b"*".to_vec()].concat();
    let mut scan = redis::cmd("SCAN");
    scan.arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(limit);
    scan
}

/// Listed keys from `keys` that `wanted` takes, with their sizes.
fn listed<K>(
    keys: Vec<Vec<u8>>,
    sizes: Vec<i64>,
    wanted: &impl Fn(&[u8]) -> Option<K>,
) -> Vec<Listed<K>> {
    keys.iter()
        .zip(sizes)
        .filter_map(|(key, size)| {
            Some(Listed {
                key: wanted(key)?,
                size: Some(size as u64),
                written: None,
            })
        })
        .collect()
}

impl RedisStore {
    /// A page of the keys `wanted` takes, from `cursor` on.
    pub(super) async fn list<K>(
        &self,
        cursor: Option<Cursor>,
        limit: usize,
        wanted: impl Fn(&[u8]) -> Option<K>,
    ) -> Result<Page<K>> {
        let (_, mut scan) = decode(self.pool.location(), cursor)?;
        let limit = page_size(limit);
        let mut items = Vec::new();
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = self
                .pool
                .run(1, |mut conn| {
                    let scan = scan_command(&self.prefix, scan, limit);
                    async move { scan.query_async(&mut conn).await }
                })
                .await?;
            let keys: Vec<Vec<u8>> = keys.into_iter().filter(|k| wanted(k).is_some()).collect();
            let sizes: Vec<i64> = if keys.is_empty() {
                Vec::new()
            } else {
                self.pool
                    .run(keys.len() * 64, |mut conn| {
                        let mut pipe = redis::pipe();
                        for key in &keys {
                            pipe.cmd("STRLEN").arg(key);
                        }
                        async move { pipe.query_async(&mut conn).await }
                    })
                    .await?
            };
            items.extend(listed(keys, sizes, &wanted));
            if next == 0 {
                return Ok(Page { items, next: None });
            }
            scan = next;
            if items.len() >= limit {
                return Ok(Page {
                    items,
                    next: Some(encode(0, scan)),
                });
            }
        }
    }

    /// Deletes keys (as stored); how many were there.
    pub(super) async fn delete(&self, keys: Vec<Vec<u8>>) -> Result<u64> {
        let mut deleted = 0;
        for group in keys.chunks(DELETE_GROUP) {
            let count: u64 = self
                .pool
                .run(group.len() * 64, |mut conn| {
                    let mut del = redis::cmd("DEL");
                    for key in group {
                        del.arg(key);
                    }
                    async move { del.query_async(&mut conn).await }
                })
                .await?;
            deleted += count;
        }
        Ok(deleted)
    }
}

impl ClusterStore {
    /// The primaries, as `host:port`, sorted.
    async fn primaries(&self) -> Result<Vec<(String, u16)>> {
        let slots: Vec<Value> = self
            .each(vec![redis::cmd("CLUSTER").arg("SLOTS").clone()])
            .await?;
        let Some(Value::Array(ranges)) = slots.into_iter().next() else {
            return Err(self.unavailable("CLUSTER SLOTS answered no slots".into()));
        };
        let mut primaries = Vec::new();
        for range in ranges {
            // [start, end, [host, port, id...], replicas...]
            let Value::Array(fields) = range else {
                continue;
            };
            let Some(Value::Array(primary)) = fields.get(2) else {
                continue;
            };
            if let (Some(Value::BulkString(host)), Some(Value::Int(port))) =
                (primary.first(), primary.get(1))
            {
                let host = String::from_utf8_lossy(host).into_owned();
                primaries.push((host, *port as u16));
            }
        }
        primaries.sort();
        primaries.dedup();
        Ok(primaries)
    }

    /// A page of the keys `wanted` takes, from `cursor` on, primary after primary.
    pub(super) async fn list<K>(
        &self,
        cursor: Option<Cursor>,
        limit: usize,
        wanted: impl Fn(&[u8]) -> Option<K>,
    ) -> Result<Page<K>> {
        let (mut node, mut scan) = decode(&self.location, cursor)?;
        let limit = page_size(limit);
        let primaries = self.primaries().await?;
        let mut conn = self.connection().await?;
        let mut items = Vec::new();
        while let Some((host, port)) = primaries.get(node as usize) {
            let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: host.clone(),
                port: *port,
            });
            let reply = tokio::time::timeout(
                self.net.timeout,
                conn.route_command(scan_command(&self.prefix, scan, limit), routing),
            )
            .await
            .map_err(|_| self.unavailable(format!("{host}:{port} did not answer SCAN in time")))?
            .map_err(|e| self.error(e))?;
            let (next, keys): (u64, Vec<Vec<u8>>) =
                redis::from_redis_value(reply).map_err(|e| self.error(e.into()))?;
            let keys: Vec<Vec<u8>> = keys.into_iter().filter(|k| wanted(k).is_some()).collect();
            let sizes: Vec<i64> = self
                .each(
                    keys.iter()
                        .map(|k| command("STRLEN", k.clone(), None))
                        .collect(),
                )
                .await?;
            items.extend(listed(keys, sizes, &wanted));
            if next == 0 {
                (node, scan) = (node + 1, 0);
            } else {
                scan = next;
            }
            if items.len() >= limit {
                break;
            }
        }
        let next = (node as usize) < primaries.len();
        Ok(Page {
            items,
            next: next.then(|| encode(node, scan)),
        })
    }

    /// Deletes keys (as stored), each on its slot's primary; how many were there.
    pub(super) async fn delete(&self, keys: Vec<Vec<u8>>) -> Result<u64> {
        let commands = keys.into_iter().map(|k| command("DEL", k, None)).collect();
        let counts: Vec<u64> = self.each(commands).await?;
        Ok(counts.into_iter().sum())
    }
}
