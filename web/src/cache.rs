//! Rendered page bodies, kept until the namespace changes. A body depends only on the
//! namespace (never on who asks: the header with the caller's name is added per request),
//! so the hub's generation number says when every kept body is stale.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct PageCache {
    state: Mutex<(u64, HashMap<String, Arc<str>>)>,
}

impl PageCache {
    /// Bodies kept at most; past that the cache starts over.
    const CAPACITY: usize = 10_000;

    /// The body kept under `key` in `generation`.
    pub fn get(&self, generation: u64, key: &str) -> Option<Arc<str>> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (state.0 == generation)
            .then(|| state.1.get(key).cloned())
            .flatten()
    }

    /// Keeps `body`, rendered from what was read in `generation`.
    pub fn put(&self, generation: u64, key: String, body: Arc<str>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.0 != generation || state.1.len() >= Self::CAPACITY {
            if generation < state.0 {
                return;
            }
            *state = (generation, HashMap::new());
        }
        state.1.insert(key, body);
    }
}
