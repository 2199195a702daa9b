//! A store that spreads chunks over several backends and keeps `R` copies of each.
//!
//! Placement is rendezvous (highest random weight) hashing: every backend gets a score for
//! a key, `BLAKE3(keyed by the backend's id, chunk key)`, and the key lives on the `R`
//! backends with the highest scores, tried in that order. Adding or removing a backend moves
//! only the keys whose top `R` changes, and every client computes the same placement from
//! the same backends, whatever order they are listed in.
//!
//! * Writes go to all `R` replicas and succeed when at least `write_quorum` of them
//!   acknowledged, so with a quorum below `R` one backend can be down.
//! * A key counts as stored (`has_many`) only when at least `write_quorum` of its replicas
//!   hold it, so that a writer finding it under-replicated writes it again rather than
//!   accepting fewer copies than a write needs.
//! * Reads try the replicas in order and fail over, also past a copy that is visibly damaged
//!   (wrong header or size); a key none of its replicas holds is looked for on the other
//!   backends too (it may not have been moved yet after the list of backends changed). A
//!   key is reported absent only when every backend asked answered that it does not.
//! * `repair` copies every given key to each of its replicas that lacks it, from any backend
//!   whose copy verifies; replicas that cannot be reached are counted, not fatal.
//! * `scrub` and `scrub_blocks` check each replica's copy (deep: that it is sound) and
//!   rewrite a missing or damaged one from a sound copy (see `router_scrub.rs`).
//!
//! * Listing walks the backends one after the other (a key is listed once per backend
//!   holding it); deleting deletes from every backend, replica or not (a copy left on a
//!   backend that is no replica would otherwise come back through read fail-over).
//!
//! Blocks (the second key space, see `crate::blocks`) follow the same rules, placed by
//! their ids' bytes: each backend keeps them apart from its chunks. A store cannot check a
//! block against its id (that takes the block's own codec), so reads take the first copy
//! found; there is no block repair.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::future::join_all;

use crate::blocks::BlockId;
use crate::codec::{Codec, DEFAULT_LEVEL, EncodedChunk, looks_like_chunk};
use crate::error::{Error, Result};
use crate::key::ChunkKey;
use crate::listing::{Cursor, Page, Reclaim};
use crate::store::{BackendStats, BlockCheck, ChunkStore, Health, RepairReport};

#[path = "router_scrub.rs"]
mod scrub;

/// Keys per round of a repair.
const REPAIR_BATCH: usize = 1000;

pub struct Router {
    backends: Vec<Arc<dyn ChunkStore>>,
    /// BLAKE3 of each backend's location: its identity in placement.
    ids: Vec<[u8; 32]>,
    replicas: usize,
    write_quorum: usize,
    location: String,
}

/// Each backend's answer for the keys (indexes into the caller's list) it was asked about.
type Answers<T> = Vec<(usize, Vec<usize>, Result<Vec<T>>)>;

/// What the router places: chunk keys and block ids, each by its bytes.
trait Placed: Copy + Send + Sync + 'static {
    fn placement(&self) -> &[u8];
    /// How messages name it.
    fn describe(&self) -> String;
}

impl Placed for ChunkKey {
    fn placement(&self) -> &[u8] {
        self.as_bytes()
    }

    fn describe(&self) -> String {
        format!("chunk {self}")
    }
}

impl Placed for BlockId {
    fn placement(&self) -> &[u8] {
        self.as_bytes()
    }

    fn describe(&self) -> String {
        format!("block {self}")
    }
}

/// What the backends had for one key.
enum Fetched {
    Found(Bytes),
    /// Every backend answered, none has it.
    Absent,
    /// The only copies found were damaged.
    Damaged,
    /// Not found, and some backend could not be asked.
    Unreachable(Vec<String>),
}

impl Router {
    /// A router over `backends` keeping `replicas` copies, a write needing `write_quorum`.
    pub fn new(
        backends: Vec<Arc<dyn ChunkStore>>,
        replicas: usize,
        write_quorum: usize,
    ) -> Result<Router> {
        let location = format!(
            "router(replicas={replicas}, write-quorum={write_quorum}: {})",
            backends
                .iter()
                .map(|b| b.location().to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let bad = |reason: String| Error::Store {
            location: location.clone(),
            reason,
        };
        if backends.is_empty() {
            return Err(bad("no backends".into()));
        }
        if replicas == 0 || replicas > backends.len() {
            return Err(bad(format!(
                "replicas must be 1 to {} (the number of backends)",
                backends.len()
            )));
        }
        if write_quorum == 0 || write_quorum > replicas {
            return Err(bad(format!(
                "write-quorum must be 1 to {replicas} (the replicas)"
            )));
        }
        let ids: Vec<[u8; 32]> = backends
            .iter()
            .map(|b| *blake3::hash(b.location().as_bytes()).as_bytes())
            .collect();
        for (i, id) in ids.iter().enumerate() {
            if ids[..i].contains(id) {
                return Err(bad(format!("{} is listed twice", backends[i].location())));
            }
        }
        Ok(Router {
            backends,
            ids,
            replicas,
            write_quorum,
            location,
        })
    }

    /// Every backend, best first for `key`; the first `replicas` are its replicas.
    fn ranking(&self, key: &impl Placed) -> Vec<usize> {
        let mut scored: Vec<(u64, usize)> = self
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let hash = blake3::keyed_hash(id, key.placement());
                let score: [u8; 8] = hash.as_bytes()[..8]
                    .try_into()
                    .expect("a BLAKE3 hash has 32 bytes");
                (u64::from_le_bytes(score), i)
            })
            .collect();
        scored.sort_unstable_by(|a, b| b.cmp(a));
        scored.into_iter().map(|(_, i)| i).collect()
    }

    /// Keys (indexes) by each of their replicas.
    fn by_replica(&self, keys: &[impl Placed]) -> HashMap<usize, Vec<usize>> {
        let mut assigned: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            for &backend in &self.ranking(key)[..self.replicas] {
                assigned.entry(backend).or_default().push(i);
            }
        }
        assigned
    }

    /// Runs `call` on each backend with the keys (by index into `keys`) assigned to it.
    async fn per_backend<K, T, F, Fut>(
        &self,
        keys: &[K],
        assigned: HashMap<usize, Vec<usize>>,
        call: F,
    ) -> Answers<T>
    where
        K: Placed,
        F: Fn(Arc<dyn ChunkStore>, Vec<K>) -> Fut,
        Fut: Future<Output = Result<Vec<T>>>,
    {
        let calls = assigned.into_iter().map(|(backend, indexes)| {
            let subset: Vec<K> = indexes.iter().map(|&i| keys[i]).collect();
            let future = call(Arc::clone(&self.backends[backend]), subset);
            async move { (backend, indexes, future.await) }
        });
        join_all(calls)
            .await
            .into_iter()
            .map(|(backend, indexes, answer)| {
                // A backend that answers for fewer keys than asked is broken, not "absent".
                let answer = answer.and_then(|values| {
                    if values.len() == indexes.len() {
                        Ok(values)
                    } else {
                        Err(Error::Protocol {
                            location: self.backends[backend].location().to_owned(),
                            message: format!("{} answers for {} keys", values.len(), indexes.len()),
                        })
                    }
                });
                (backend, indexes, answer)
            })
            .collect()
    }

    /// Fetches every key with `get` from the first backend, in ranking order, whose copy
    /// passes `accept`.
    async fn fetch<K, G, Fut>(
        &self,
        keys: &[K],
        get: G,
        mut accept: impl FnMut(&K, &Bytes) -> bool,
    ) -> Vec<Fetched>
    where
        K: Placed,
        G: Fn(Arc<dyn ChunkStore>, Vec<K>) -> Fut,
        Fut: Future<Output = Result<Vec<Option<Bytes>>>>,
    {
        let rankings: Vec<Vec<usize>> = keys.iter().map(|k| self.ranking(k)).collect();
        let mut found: Vec<Option<Bytes>> = vec![None; keys.len()];
        let mut damaged = vec![false; keys.len()];
        let mut errors: Vec<Vec<String>> = vec![Vec::new(); keys.len()];
        // One round per rank: the best replica of every key first, then the next, then the
        // backends that are not replicas at all.
        for rank in 0..self.backends.len() {
            let mut assigned: HashMap<usize, Vec<usize>> = HashMap::new();
            for (i, ranking) in rankings.iter().enumerate() {
                if found[i].is_none() {
                    assigned.entry(ranking[rank]).or_default().push(i);
                }
            }
            if assigned.is_empty() {
                break;
            }
            let answers = self.per_backend(keys, assigned, &get).await;
            for (_, indexes, answer) in answers {
                match answer {
                    Ok(values) => {
                        for (&i, value) in indexes.iter().zip(values) {
                            match value {
                                Some(bytes) if accept(&keys[i], &bytes) => found[i] = Some(bytes),
                                Some(_) => damaged[i] = true,
                                None => {}
                            }
                        }
                    }
                    Err(e) => indexes.iter().for_each(|&i| errors[i].push(e.to_string())),
                }
            }
        }
        found
            .into_iter()
            .zip(damaged)
            .zip(errors)
            .map(|((found, damaged), errors)| match found {
                Some(bytes) => Fetched::Found(bytes),
                None if !errors.is_empty() => Fetched::Unreachable(errors),
                None if damaged => Fetched::Damaged,
                None => Fetched::Absent,
            })
            .collect()
    }

    fn unavailable(&self, key: &impl Placed, errors: &[String]) -> Error {
        Error::Unavailable {
            location: self.location.clone(),
            reason: format!("{}: {}", key.describe(), errors.join("; ")),
        }
    }

    /// Stored means: on at least `write_quorum` of the key's replicas (see the module
    /// documentation). Only the replicas are asked (with `has`), so a copy sitting on some
    /// other backend is reported absent and a writer stores it where it belongs.
    async fn present<K, H, Fut>(&self, keys: &[K], has: H) -> Result<Vec<bool>>
    where
        K: Placed,
        H: Fn(Arc<dyn ChunkStore>, Vec<K>) -> Fut,
        Fut: Future<Output = Result<Vec<bool>>>,
    {
        let mut copies = vec![0usize; keys.len()];
        let mut answered = vec![false; keys.len()];
        let mut errors: Vec<Vec<String>> = vec![Vec::new(); keys.len()];
        let answers = self.per_backend(keys, self.by_replica(keys), has).await;
        for (_, indexes, answer) in answers {
            match answer {
                Ok(present) => {
                    for (&i, present) in indexes.iter().zip(present) {
                        copies[i] += usize::from(present);
                        answered[i] = true;
                    }
                }
                Err(e) => indexes.iter().for_each(|&i| errors[i].push(e.to_string())),
            }
        }
        // A key none of its replicas could be asked about is an error, not a "no".
        if let Some(i) = (0..keys.len()).find(|&i| !answered[i]) {
            return Err(self.unavailable(&keys[i], &errors[i]));
        }
        Ok(copies.into_iter().map(|n| n >= self.write_quorum).collect())
    }

    /// Writes each item (keyed by `key`) to its replicas with `put`; succeeds when every
    /// item has `write_quorum` acknowledgements.
    async fn write<K, V, P, Fut>(&self, items: &[V], key: impl Fn(&V) -> K, put: P) -> Result<()>
    where
        K: Placed,
        V: Clone,
        P: Fn(Arc<dyn ChunkStore>, Vec<V>) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let keys: Vec<K> = items.iter().map(key).collect();
        let calls = self
            .by_replica(&keys)
            .into_iter()
            .map(|(backend, indexes)| {
                let subset: Vec<V> = indexes.iter().map(|&i| items[i].clone()).collect();
                let written = put(Arc::clone(&self.backends[backend]), subset);
                async move { (indexes, written.await) }
            });
        let mut acks = vec![0usize; items.len()];
        let mut errors: Vec<Error> = Vec::new();
        let mut failed: Vec<Vec<usize>> = vec![Vec::new(); items.len()]; // into `errors`
        for (indexes, result) in join_all(calls).await {
            match result {
                Ok(()) => indexes.iter().for_each(|&i| acks[i] += 1),
                Err(e) => {
                    indexes.iter().for_each(|&i| failed[i].push(errors.len()));
                    errors.push(e);
                }
            }
        }
        let Some(i) = acks.iter().position(|&n| n < self.write_quorum) else {
            return Ok(());
        };
        // A refusal (full, read-only, ...) by one of this item's replicas says more than
        // "a backend was down".
        if let Some(&refusal) = failed[i].iter().find(|&&e| !errors[e].is_unavailable()) {
            return Err(errors.swap_remove(refusal));
        }
        let reasons: Vec<String> = failed[i].iter().map(|&e| errors[e].to_string()).collect();
        Err(Error::Unavailable {
            location: self.location.clone(),
            reason: format!(
                "{} stored on {} of {} replicas, {} required: {}",
                keys[i].describe(),
                acks[i],
                self.replicas,
                self.write_quorum,
                reasons.join("; ")
            ),
        })
    }
}

#[async_trait]
impl ChunkStore for Router {
    fn location(&self) -> &str {
        &self.location
    }

    /// Every backend's routes: a reader opens them all and, with the same rendezvous
    /// hashing, looks first where each chunk was placed.
    fn routes(&self) -> Vec<String> {
        self.backends.iter().flat_map(|b| b.routes()).collect()
    }

    async fn has_many(&self, keys: &[ChunkKey]) -> Result<Vec<bool>> {
        self.present(keys, |backend, subset| async move {
            backend.has_many(&subset).await
        })
        .await
    }

    async fn put_many(&self, chunks: &[EncodedChunk]) -> Result<()> {
        self.write(chunks, EncodedChunk::key, |backend, subset| async move {
            backend.put_many(&subset).await
        })
        .await
    }

    /// Fails over past copies whose header or size is visibly wrong; full verification
    /// (decompressing and hashing) is left to the reader, which does it anyway.
    async fn get_many(&self, keys: &[ChunkKey]) -> Result<Vec<Option<Bytes>>> {
        let fetched = self
            .fetch(keys, get_chunks, |_, bytes| looks_like_chunk(bytes))
            .await;
        keys.iter()
            .zip(fetched)
            .map(|(key, fetched)| match fetched {
                Fetched::Found(bytes) => Ok(Some(bytes)),
                Fetched::Absent => Ok(None),
                // Damaged copies are handed on: the reader's verification names the problem.
                Fetched::Damaged => Err(Error::Corrupt {
                    key: *key,
                    detail: "every copy the backends hold is damaged".into(),
                }),
                Fetched::Unreachable(errors) => Err(self.unavailable(key, &errors)),
            })
            .collect()
    }

    async fn has_blocks(&self, ids: &[BlockId]) -> Result<Vec<bool>> {
        self.present(ids, |backend, subset| async move {
            backend.has_blocks(&subset).await
        })
        .await
    }

    async fn put_blocks(&self, blocks: &[(BlockId, Bytes)]) -> Result<()> {
        self.write(
            blocks,
            |(id, _)| *id,
            |backend, subset| async move { backend.put_blocks(&subset).await },
        )
        .await
    }

    /// The first copy found, in ranking order (a store cannot tell a damaged block).
    async fn get_blocks(&self, ids: &[BlockId]) -> Result<Vec<Option<Bytes>>> {
        let get = |backend: Arc<dyn ChunkStore>, subset: Vec<BlockId>| async move {
            backend.get_blocks(&subset).await
        };
        let fetched = self.fetch(ids, get, |_, _| true).await;
        ids.iter()
            .zip(fetched)
            .map(|(id, fetched)| match fetched {
                Fetched::Found(bytes) => Ok(Some(bytes)),
                Fetched::Absent | Fetched::Damaged => Ok(None),
                Fetched::Unreachable(errors) => Err(self.unavailable(id, &errors)),
            })
            .collect()
    }

    async fn stats(&self) -> Result<Vec<BackendStats>> {
        let mut all = Vec::new();
        for (backend, stats) in self
            .backends
            .iter()
            .zip(join_all(self.backends.iter().map(|b| b.stats())).await)
        {
            match stats {
                Ok(stats) => all.extend(stats),
                Err(e) => {
                    tracing::warn!(backend = backend.location(), error = %e, "no stats");
                    all.push(BackendStats {
                        location: backend.location().to_owned(),
                        keys: None,
                        blocks: None,
                        bytes: None,
                    });
                }
            }
        }
        Ok(all)
    }

    async fn probe(&self) -> Vec<(String, Result<()>)> {
        join_all(self.backends.iter().map(|b| b.probe()))
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    async fn list_chunks(&self, cursor: Option<Cursor>, limit: usize) -> Result<Page<ChunkKey>> {
        self.walk(cursor, |backend, inner| async move {
            backend.list_chunks(inner, limit).await
        })
        .await
    }

    async fn delete_many(&self, keys: &[ChunkKey]) -> Result<u64> {
        self.everywhere(|backend| async move { backend.delete_many(keys).await })
            .await
    }

    async fn list_blocks(&self, cursor: Option<Cursor>, limit: usize) -> Result<Page<BlockId>> {
        self.walk(cursor, |backend, inner| async move {
            backend.list_blocks(inner, limit).await
        })
        .await
    }

    async fn delete_blocks(&self, ids: &[BlockId]) -> Result<u64> {
        self.everywhere(|backend| async move { backend.delete_blocks(ids).await })
            .await
    }

    /// Freed at once only if every backend frees at once.
    fn reclaim(&self) -> Reclaim {
        match self.backends.iter().all(|b| b.reclaim() == Reclaim::AtOnce) {
            true => Reclaim::AtOnce,
            false => Reclaim::OnCompaction,
        }
    }

    fn parts(&self) -> Vec<Arc<dyn ChunkStore>> {
        self.backends.clone()
    }

    async fn scrub(&self, keys: &[ChunkKey], deep: bool) -> Result<Vec<Health>> {
        self.scrub_chunks(keys, deep).await
    }

    async fn scrub_blocks(
        &self,
        ids: &[BlockId],
        deep: bool,
        sound: &BlockCheck,
    ) -> Result<Vec<Health>> {
        self.scrub_block_copies(ids, deep, sound).await
    }

    async fn repair(&self, keys: &[ChunkKey]) -> Result<RepairReport> {
        let mut seen = HashSet::with_capacity(keys.len());
        let keys: Vec<ChunkKey> = keys.iter().copied().filter(|k| seen.insert(*k)).collect();
        let mut report = RepairReport::default();
        let mut codec = Codec::new(DEFAULT_LEVEL)?;
        for batch in keys.chunks(REPAIR_BATCH) {
            report.checked += batch.len() as u64;
            // Which replicas lack which keys; replicas that cannot say are counted.
            let mut lacking: HashMap<usize, Vec<usize>> = HashMap::new();
            let answers = self
                .per_backend(batch, self.by_replica(batch), |b, subset| async move {
                    b.has_many(&subset).await
                })
                .await;
            for (backend, indexes, answer) in answers {
                match answer {
                    Ok(present) => {
                        for (&i, present) in indexes.iter().zip(present) {
                            if !present {
                                lacking.entry(backend).or_default().push(i);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "a replica could not be checked");
                        report.unreachable += indexes.len() as u64;
                    }
                }
            }
            if lacking.is_empty() {
                continue;
            }
            // Fetch each lacking key once, from the first backend whose copy verifies.
            let mut wanted: Vec<usize> = lacking.values().flatten().copied().collect();
            wanted.sort_unstable();
            wanted.dedup();
            let wanted_keys: Vec<ChunkKey> = wanted.iter().map(|&i| batch[i]).collect();
            let fetched = self
                .fetch(&wanted_keys, get_chunks, |key, bytes| {
                    codec.decode(key, bytes).is_ok()
                })
                .await;
            let mut copies: HashMap<usize, EncodedChunk> = HashMap::new();
            for ((&i, key), fetched) in wanted.iter().zip(&wanted_keys).zip(fetched) {
                match fetched {
                    Fetched::Found(bytes) => {
                        copies.insert(i, codec.verify(*key, bytes)?);
                    }
                    // Nothing sound to copy from.
                    Fetched::Absent | Fetched::Damaged => report.missing += 1,
                    Fetched::Unreachable(_) => report.unreachable += 1,
                }
            }
            for (backend, indexes) in lacking {
                let chunks: Vec<EncodedChunk> = indexes
                    .iter()
                    .filter_map(|i| copies.get(i).cloned())
                    .collect();
                if chunks.is_empty() {
                    continue;
                }
                match self.backends[backend].put_many(&chunks).await {
                    Ok(()) => report.copied += chunks.len() as u64,
                    Err(e) => {
                        tracing::warn!(error = %e, "a replica could not be written");
                        report.unreachable += chunks.len() as u64;
                    }
                }
            }
        }
        Ok(report)
    }
}

impl Router {
    /// A page of the walk through every backend in turn: the cursor is the backend's place
    /// (4 bytes) and that backend's own cursor.
    async fn walk<K, L, Fut>(&self, cursor: Option<Cursor>, list: L) -> Result<Page<K>>
    where
        L: Fn(Arc<dyn ChunkStore>, Option<Cursor>) -> Fut,
        Fut: Future<Output = Result<Page<K>>>,
    {
        let (mut backend, mut inner) = match cursor {
            None => (0, None),
            Some(cursor) => {
                let bytes = cursor.as_bytes();
                let place = bytes
                    .get(..4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(u32::from_be_bytes)
                    .filter(|&place| (place as usize) < self.backends.len())
                    .ok_or_else(|| Error::Store {
                        location: self.location.clone(),
                        reason: "not a cursor of this store".into(),
                    })?;
                // No more than the place: that backend's walk starts.
                let inner = (bytes.len() > 4).then(|| Cursor::from_bytes(bytes[4..].to_vec()));
                (place as usize, inner)
            }
        };
        loop {
            let page = list(Arc::clone(&self.backends[backend]), inner).await?;
            match page.next {
                Some(next) => {
                    let place = (backend as u32).to_be_bytes();
                    return Ok(Page {
                        items: page.items,
                        next: Some(Cursor::from_bytes([&place[..], next.as_bytes()].concat())),
                    });
                }
                None if backend + 1 < self.backends.len() => {
                    // This backend is done: the next one starts with the next page (a page
                    // holds keys of one backend only).
                    let place = (backend as u32 + 1).to_be_bytes();
                    if !page.items.is_empty() {
                        return Ok(Page {
                            items: page.items,
                            next: Some(Cursor::from_bytes(place.to_vec())),
                        });
                    }
                    (backend, inner) = (backend + 1, None);
                }
                None => return Ok(page),
            }
        }
    }

    /// Runs a delete on every backend; the count of keys gone, summed over the backends.
    /// Every backend is tried; the first error is returned after.
    async fn everywhere<'a, D, Fut>(&'a self, delete: D) -> Result<u64>
    where
        D: Fn(Arc<dyn ChunkStore>) -> Fut,
        Fut: Future<Output = Result<u64>> + 'a,
    {
        let results = join_all(self.backends.iter().map(|b| delete(Arc::clone(b)))).await;
        let mut deleted = 0;
        for result in results {
            deleted += result?;
        }
        Ok(deleted)
    }
}

/// A backend's `get_many`, as `Router::fetch` calls it.
async fn get_chunks(
    backend: Arc<dyn ChunkStore>,
    keys: Vec<ChunkKey>,
) -> Result<Vec<Option<Bytes>>> {
    backend.get_many(&keys).await
}
