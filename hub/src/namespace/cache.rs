//! The answers of `info` (and so of `resolve`), kept until the next change of the
//! namespace. Nodes ask for the same names again and again (`light`, `.md5`, downloads);
//! any change empties the cache, which keeps it right without tracking what depends on
//! what (a link's answer depends on its target's). Each answer carries the generation it
//! was read in, so an answer read before a change is never kept after it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::views::Info;

type Key = (String, String);

#[derive(Default)]
pub(super) struct InfoCache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    generation: u64,
    entries: HashMap<Key, Info>,
}

impl InfoCache {
    /// Answers kept at most; past that the cache starts over.
    const CAPACITY: usize = 100_000;

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a map and a counter: a panic elsewhere cannot leave it half-changed.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The kept answer, or the generation to read a new one in.
    pub(super) fn get(&self, key: &Key) -> Result<Info, u64> {
        let state = self.lock();
        state.entries.get(key).cloned().ok_or(state.generation)
    }

    pub(super) fn put(&self, key: Key, generation: u64, info: &Info) {
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        if state.entries.len() >= Self::CAPACITY {
            state.entries.clear();
        }
        state.entries.insert(key, info.clone());
    }

    pub(super) fn generation(&self) -> u64 {
        self.lock().generation
    }

    pub(super) fn clear(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.entries.clear();
    }
}
