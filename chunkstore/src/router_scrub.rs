//! The router's scrub, of chunks and of blocks alike: each replica's copy of each key
//! checked on its own (a key counts as sound only when every replica holds a copy, and,
//! deep, every copy is sound), and a copy missing or damaged rewritten from one that is
//! sound, found on any backend. A chunk's copy is sound when it decodes to content of its
//! key; a block's, when the caller's check (its format's hash) accepts it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;

use super::{Answers, Fetched, Placed, Router, get_chunks};
use crate::blocks::BlockId;
use crate::codec::{Codec, DEFAULT_LEVEL};
use crate::error::Result;
use crate::key::ChunkKey;
use crate::store::{BlockCheck, ChunkStore, Fault, Health};

impl Router {
    pub(super) async fn scrub_chunks(&self, keys: &[ChunkKey], deep: bool) -> Result<Vec<Health>> {
        let mut codec = Codec::new(DEFAULT_LEVEL)?;
        let sound = |key: &ChunkKey, bytes: &[u8]| codec.decode(key, bytes).is_ok();
        self.scrub_copies(keys, deep, has_chunks, get_chunks, sound, put_chunks)
            .await
    }

    pub(super) async fn scrub_block_copies(
        &self,
        ids: &[BlockId],
        deep: bool,
        sound: &BlockCheck,
    ) -> Result<Vec<Health>> {
        self.scrub_copies(ids, deep, has_blocks, get_blocks, sound, put_blocks)
            .await
    }

    async fn scrub_copies<K, H, HF, G, GF, P, PF>(
        &self,
        keys: &[K],
        deep: bool,
        has: H,
        get: G,
        mut sound: impl FnMut(&K, &[u8]) -> bool,
        put: P,
    ) -> Result<Vec<Health>>
    where
        K: Placed,
        H: Fn(Arc<dyn ChunkStore>, Vec<K>) -> HF,
        HF: Future<Output = Result<Vec<bool>>>,
        G: Fn(Arc<dyn ChunkStore>, Vec<K>) -> GF + Copy,
        GF: Future<Output = Result<Vec<Option<Bytes>>>>,
        P: Fn(Arc<dyn ChunkStore>, Vec<(K, Bytes)>) -> PF,
        PF: Future<Output = Result<()>>,
    {
        let assigned = self.by_replica(keys);
        // Each replica's verdict on each of its keys: `None` when its copy is sound.
        let verdicts = match deep {
            true => judge(self.per_backend(keys, assigned, get).await, |i, copy| {
                Fault::of_copy(copy.as_deref(), |b| sound(&keys[i], b))
            }),
            false => judge(self.per_backend(keys, assigned, has).await, |_, present| {
                (!present).then_some(Fault::Missing)
            }),
        };
        // The replicas whose copy of each key is at fault.
        let mut bad: HashMap<usize, Vec<(usize, Fault)>> = HashMap::new();
        for (backend, indexes, answer) in verdicts {
            for (i, verdict) in indexes.into_iter().zip(answer?) {
                if let Some(fault) = verdict {
                    bad.entry(i).or_default().push((backend, fault));
                }
            }
        }
        let mut health = vec![Health::Sound; keys.len()];
        if bad.is_empty() {
            return Ok(health);
        }
        let mut wanted: Vec<usize> = bad.keys().copied().collect();
        wanted.sort_unstable();
        let wanted_keys: Vec<K> = wanted.iter().map(|&i| keys[i]).collect();
        // A copy to repair from: the first, in ranking order, that is sound (checked again
        // here, whatever the replicas' verdicts said).
        let fetched = self
            .fetch(&wanted_keys, get, |key, bytes| sound(key, bytes))
            .await;
        let mut writes: HashMap<usize, Vec<(K, Bytes)>> = HashMap::new();
        for ((&i, key), fetched) in wanted.iter().zip(&wanted_keys).zip(fetched) {
            let faults = &bad[&i];
            let worst = faults
                .iter()
                .map(|(_, f)| *f)
                .max()
                .unwrap_or(Fault::Missing);
            health[i] = match fetched {
                Fetched::Found(bytes) => {
                    for (backend, _) in faults {
                        writes
                            .entry(*backend)
                            .or_default()
                            .push((*key, bytes.clone()));
                    }
                    Health::Repaired(worst)
                }
                Fetched::Absent | Fetched::Damaged => Health::Lost(worst),
                Fetched::Unreachable(errors) => return Err(self.unavailable(key, &errors)),
            };
        }
        for (backend, copies) in writes {
            let backend = &self.backends[backend];
            let count = copies.len();
            put(Arc::clone(backend), copies).await?;
            tracing::info!(
                backend = backend.location(),
                copies = count,
                "copies missing or damaged rewritten from a sound copy"
            );
        }
        Ok(health)
    }
}

/// Each backend's answers turned into verdicts, `verdict` given each key's index in the
/// scrubbed keys and that backend's answer for it.
fn judge<T>(
    answers: Answers<T>,
    mut verdict: impl FnMut(usize, T) -> Option<Fault>,
) -> Answers<Option<Fault>> {
    answers
        .into_iter()
        .map(|(backend, indexes, answer)| {
            let answer = answer.map(|values| {
                indexes
                    .iter()
                    .zip(values)
                    .map(|(&i, value)| verdict(i, value))
                    .collect()
            });
            (backend, indexes, answer)
        })
        .collect()
}

async fn has_chunks(backend: Arc<dyn ChunkStore>, keys: Vec<ChunkKey>) -> Result<Vec<bool>> {
    backend.has_many(&keys).await
}

/// Writes copies found sound (so verifying them again cannot fail, but a store takes only
/// verified chunks).
async fn put_chunks(backend: Arc<dyn ChunkStore>, copies: Vec<(ChunkKey, Bytes)>) -> Result<()> {
    let mut codec = Codec::new(DEFAULT_LEVEL)?;
    let chunks = copies
        .into_iter()
        .map(|(key, bytes)| codec.verify(key, bytes))
        .collect::<Result<Vec<_>>>()?;
    backend.put_many(&chunks).await
}

async fn has_blocks(backend: Arc<dyn ChunkStore>, ids: Vec<BlockId>) -> Result<Vec<bool>> {
    backend.has_blocks(&ids).await
}

async fn get_blocks(backend: Arc<dyn ChunkStore>, ids: Vec<BlockId>) -> Result<Vec<Option<Bytes>>> {
    backend.get_blocks(&ids).await
}

async fn put_blocks(backend: Arc<dyn ChunkStore>, copies: Vec<(BlockId, Bytes)>) -> Result<()> {
    backend.put_blocks(&copies).await
}
