//! The router's scrub: each replica's copy of each key checked on its own (a key counts as
//! sound only when every replica holds a copy, and, deep, every copy verifies), and a copy
//! missing or damaged rewritten from one that verifies, found on any backend.

use std::collections::HashMap;

use super::{Answers, Fetched, Router, get_chunks};
use crate::codec::{Codec, DEFAULT_LEVEL, EncodedChunk};
use crate::error::Result;
use crate::key::ChunkKey;
use crate::store::{Fault, Health};

impl Router {
    pub(super) async fn scrub_copies(&self, keys: &[ChunkKey], deep: bool) -> Result<Vec<Health>> {
        let mut codec = Codec::new(DEFAULT_LEVEL)?;
        let assigned = self.by_replica(keys);
        // Each replica's verdict on each of its keys: `None` when its copy is sound.
        let verdicts: Answers<Option<Fault>> = match deep {
            true => self
                .per_backend(keys, assigned, get_chunks)
                .await
                .into_iter()
                .map(|(backend, indexes, answer)| {
                    let answer = answer.map(|copies| {
                        indexes
                            .iter()
                            .zip(copies)
                            .map(|(&i, copy)| Fault::of(&mut codec, &keys[i], copy.as_deref()))
                            .collect()
                    });
                    (backend, indexes, answer)
                })
                .collect(),
            false => self
                .per_backend(keys, assigned, |b, subset| async move {
                    b.has_many(&subset).await
                })
                .await
                .into_iter()
                .map(|(backend, indexes, answer)| {
                    let answer = answer.map(|present| {
                        present
                            .into_iter()
                            .map(|p| (!p).then_some(Fault::Missing))
                            .collect()
                    });
                    (backend, indexes, answer)
                })
                .collect(),
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
        let wanted_keys: Vec<ChunkKey> = wanted.iter().map(|&i| keys[i]).collect();
        // A copy to repair from: the first, in ranking order, that verifies (checked again
        // here, whatever the replicas' verdicts said).
        let fetched = self
            .fetch(&wanted_keys, get_chunks, |key, bytes| {
                codec.decode(key, bytes).is_ok()
            })
            .await;
        let mut writes: HashMap<usize, Vec<EncodedChunk>> = HashMap::new();
        for ((&i, key), fetched) in wanted.iter().zip(&wanted_keys).zip(fetched) {
            let faults = &bad[&i];
            let worst = faults
                .iter()
                .map(|(_, f)| *f)
                .max()
                .unwrap_or(Fault::Missing);
            health[i] = match fetched {
                Fetched::Found(bytes) => {
                    let chunk = codec.verify(*key, bytes)?;
                    for (backend, _) in faults {
                        writes.entry(*backend).or_default().push(chunk.clone());
                    }
                    Health::Repaired(worst)
                }
                Fetched::Absent | Fetched::Damaged => Health::Lost(worst),
                Fetched::Unreachable(errors) => return Err(self.unavailable(key, &errors)),
            };
        }
        for (backend, chunks) in writes {
            let backend = &self.backends[backend];
            backend.put_many(&chunks).await?;
            tracing::info!(
                backend = backend.location(),
                chunks = chunks.len(),
                "copies missing or damaged rewritten from a sound copy"
            );
        }
        Ok(health)
    }
}
