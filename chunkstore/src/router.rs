//! A store that spreads chunks over several backends and keeps `R` copies of each.
//!
//! Placement is rendezvous (highest random weight) hashing: every backend gets a score for
//! a key, `BLAKE3(keyed by the backend's id, chunk key)`, and the key lives on the `R`
//! backends with the highest scores, tried in that order. Adding or removing a backend moves
//! only the keys whose top `R` changes, and every client computes the same placement from
//! the same list of backends, whatever its order.
//!
//! * Writes go to all `R` replicas; a write succeeds when at least `write_quorum` of them
//!   acknowledged it, so with a quorum below `R` one backend can be down.
//! * Reads try the replicas in order and fail over; a key that none of its replicas holds is
//!   looked for on the other backends too (it may not have been moved yet after the list of
//!   backends changed). A key is reported absent only when every backend asked answered that
//!   it does not. Existence checks ask the replicas only, so a writer puts a misplaced chunk
//!   where it belongs.
//! * `repair` copies every given key to each of its replicas that lacks it, from any backend
//!   that has it, after verifying it.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::future::join_all;

use crate::codec::{Codec, DEFAULT_LEVEL, EncodedChunk};
use crate::error::{Error, Result};
use crate::key::ChunkKey;
use crate::store::{BackendStats, ChunkStore, RepairReport};

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
    fn ranking(&self, key: &ChunkKey) -> Vec<usize> {
        let mut scored: Vec<(u64, usize)> = self
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let hash = blake3::keyed_hash(id, key.as_bytes());
                let score: [u8; 8] = hash.as_bytes()[..8]
                    .try_into()
                    .expect("a BLAKE3 hash has 32 bytes");
                (u64::from_le_bytes(score), i)
            })
            .collect();
        scored.sort_unstable_by(|a, b| b.cmp(a));
        scored.into_iter().map(|(_, i)| i).collect()
    }

    /// Runs `call` on each backend with the keys (by index into `keys`) assigned to it.
    async fn per_backend<T, F, Fut>(
        &self,
        keys: &[ChunkKey],
        assigned: HashMap<usize, Vec<usize>>,
        call: F,
    ) -> Vec<(usize, Vec<usize>, Result<Vec<T>>)>
    where
        F: Fn(Arc<dyn ChunkStore>, Vec<ChunkKey>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<T>>>,
    {
        let calls = assigned.into_iter().map(|(backend, indexes)| {
            let subset: Vec<ChunkKey> = indexes.iter().map(|&i| keys[i]).collect();
            let future = call(Arc::clone(&self.backends[backend]), subset);
            async move { (backend, indexes, future.await) }
        });
        join_all(calls).await
    }

    fn unavailable(&self, key: &ChunkKey, errors: &[String]) -> Error {
        Error::Unavailable {
            location: self.location.clone(),
            reason: format!(
                "no backend that may hold chunk {key} could answer: {}",
                errors.join("; ")
            ),
        }
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

    /// Asks the replicas only: a chunk that sits on some other backend (the list of backends
    /// changed) is reported absent, so that a writer stores it where it belongs.
    async fn has_many(&self, keys: &[ChunkKey]) -> Result<Vec<bool>> {
        let mut assigned: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            for &backend in &self.ranking(key)[..self.replicas] {
                assigned.entry(backend).or_default().push(i);
            }
        }
        let mut found = vec![false; keys.len()];
        let mut answered = vec![false; keys.len()];
        let mut errors: Vec<Vec<String>> = vec![Vec::new(); keys.len()];
        let answers = self
            .per_backend(keys, assigned, |backend, subset| async move {
                backend.has_many(&subset).await
            })
            .await;
        for (backend, indexes, answer) in answers {
            match answer {
                Ok(present) => {
                    for (&i, present) in indexes.iter().zip(present) {
                        found[i] |= present;
                        answered[i] = true;
                    }
                }
                Err(e) => {
                    for &i in &indexes {
                        errors[i].push(format!("{}: {e}", self.backends[backend].location()));
                    }
                }
            }
        }
        // Absent is an answer only if a replica gave it; a key none of its replicas could be
        // asked about is an error, not a "no".
        for i in 0..keys.len() {
            if !found[i] && !answered[i] {
                return Err(self.unavailable(&keys[i], &errors[i]));
            }
        }
        Ok(found)
    }

    async fn put_many(&self, chunks: &[EncodedChunk]) -> Result<()> {
        let keys: Vec<ChunkKey> = chunks.iter().map(EncodedChunk::key).collect();
        let mut assigned: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            for &backend in &self.ranking(key)[..self.replicas] {
                assigned.entry(backend).or_default().push(i);
            }
        }
        let calls = assigned.into_iter().map(|(backend, indexes)| {
            let subset: Vec<EncodedChunk> = indexes.iter().map(|&i| chunks[i].clone()).collect();
            let store = Arc::clone(&self.backends[backend]);
            async move { (backend, indexes, store.put_many(&subset).await) }
        });
        let mut acks = vec![0usize; chunks.len()];
        let mut errors: Vec<Vec<String>> = vec![Vec::new(); chunks.len()];
        let mut refusal: Option<Error> = None;
        for (backend, indexes, result) in join_all(calls).await {
            match result {
                Ok(()) => indexes.iter().for_each(|&i| acks[i] += 1),
                Err(e) => {
                    let text = format!("{}: {e}", self.backends[backend].location());
                    indexes.iter().for_each(|&i| errors[i].push(text.clone()));
                    if !e.is_unavailable() && refusal.is_none() {
                        refusal = Some(e);
                    }
                }
            }
        }
        if let Some(i) = acks.iter().position(|&n| n < self.write_quorum) {
            // A refusal (full, read-only, ...) says more than "some backend was down".
            return Err(refusal.unwrap_or_else(|| Error::Unavailable {
                location: self.location.clone(),
                reason: format!(
                    "chunk {} stored on {} of {} replicas, {} required: {}",
                    keys[i],
                    acks[i],
                    self.replicas,
                    self.write_quorum,
                    errors[i].join("; ")
                ),
            }));
        }
        Ok(())
    }

    async fn get_many(&self, keys: &[ChunkKey]) -> Result<Vec<Option<Bytes>>> {
        let rankings: Vec<Vec<usize>> = keys.iter().map(|k| self.ranking(k)).collect();
        let mut found: Vec<Option<Bytes>> = vec![None; keys.len()];
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
            let answers = self
                .per_backend(keys, assigned, |backend, subset| async move {
                    backend.get_many(&subset).await
                })
                .await;
            for (backend, indexes, answer) in answers {
                match answer {
                    Ok(values) => {
                        for (&i, value) in indexes.iter().zip(values) {
                            found[i] = value;
                        }
                    }
                    Err(e) => {
                        for &i in &indexes {
                            errors[i].push(format!("{}: {e}", self.backends[backend].location()));
                        }
                    }
                }
            }
        }
        // Absent everywhere that answered, but some backend could not answer: unknown.
        for i in 0..keys.len() {
            if found[i].is_none() && !errors[i].is_empty() {
                return Err(self.unavailable(&keys[i], &errors[i]));
            }
        }
        Ok(found)
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
                        bytes: None,
                    });
                }
            }
        }
        Ok(all)
    }

    async fn repair(&self, keys: &[ChunkKey]) -> Result<RepairReport> {
        let mut report = RepairReport::default();
        let mut codec = Codec::new(DEFAULT_LEVEL)?;
        for batch in keys.chunks(REPAIR_BATCH) {
            report.checked += batch.len() as u64;
            // Which replicas lack which keys.
            let mut assigned: HashMap<usize, Vec<usize>> = HashMap::new();
            for (i, key) in batch.iter().enumerate() {
                for &backend in &self.ranking(key)[..self.replicas] {
                    assigned.entry(backend).or_default().push(i);
                }
            }
            let mut lacking: HashMap<usize, Vec<usize>> = HashMap::new();
            for (backend, indexes, answer) in self
                .per_backend(batch, assigned, |b, subset| async move {
                    b.has_many(&subset).await
                })
                .await
            {
                let present = answer?;
                for (&i, present) in indexes.iter().zip(present) {
                    if !present {
                        lacking.entry(backend).or_default().push(i);
                    }
                }
            }
            if lacking.is_empty() {
                continue;
            }
            // Fetch each lacking key once, from wherever it is, and verify it.
            let mut wanted: Vec<usize> = lacking.values().flatten().copied().collect();
            wanted.sort_unstable();
            wanted.dedup();
            let wanted_keys: Vec<ChunkKey> = wanted.iter().map(|&i| batch[i]).collect();
            let values = self.get_many(&wanted_keys).await?;
            let mut copies: HashMap<usize, EncodedChunk> = HashMap::new();
            for ((&i, key), value) in wanted.iter().zip(&wanted_keys).zip(values) {
                match value {
                    Some(bytes) => {
                        copies.insert(i, codec.verify(*key, bytes)?);
                    }
                    None => report.missing += 1,
                }
            }
            for (backend, indexes) in lacking {
                let chunks: Vec<EncodedChunk> = indexes
                    .iter()
                    .filter_map(|i| copies.get(i).cloned())
                    .collect();
                if !chunks.is_empty() {
                    self.backends[backend].put_many(&chunks).await?;
                    report.copied += chunks.len() as u64;
                }
            }
        }
        Ok(report)
    }
}
