//! Rendered page bodies, kept until the namespace changes. A body depends only on the
//! namespace (never on who asks: the header with the caller's name is added per request),
//! so the hub's generation number says when every kept body is stale: it is part of the
//! key, and a new generation empties the cache.
//!
//! Bodies are weighed by their bytes, and one render runs per key at a time: the requests
//! that miss the same page while it is rendered wait for that render (without this, a
//! burst of requests for `/` right after a change all rendered it).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quick_cache::Weighter;
use quick_cache::sync::Cache;

type Key = (u64, String);

pub struct PageCache {
    bodies: Cache<Key, Arc<str>, Bytes>,
    /// The newest generation bodies were asked for.
    generation: AtomicU64,
}

#[derive(Clone)]
struct Bytes;

impl Weighter<Key, Arc<str>> for Bytes {
    fn weight(&self, key: &Key, body: &Arc<str>) -> u64 {
        (key.1.len() + body.len()) as u64
    }
}

impl Default for PageCache {
    fn default() -> PageCache {
        PageCache {
            bodies: Cache::with_weighter(Self::PAGES, Self::BYTES, Bytes),
            generation: AtomicU64::new(0),
        }
    }
}

impl PageCache {
    /// Bytes of bodies kept at most: every page of a hub of 20,000 names fits.
    const BYTES: u64 = 256 << 20;
    /// Pages expected, to size the cache's table.
    const PAGES: usize = 40_000;

    /// The body of `key` read in `generation`: kept, or rendered by `render` (once for all
    /// the requests that wait for it) and kept. A request of an older generation (one that
    /// read its generation before a change) renders without keeping.
    pub async fn get_or_render<E>(
        &self,
        generation: u64,
        key: String,
        render: impl Future<Output = Result<Arc<str>, E>>,
    ) -> Result<Arc<str>, E> {
        let newest = self.generation.fetch_max(generation, Ordering::AcqRel);
        if generation < newest {
            return render.await;
        }
        if generation > newest {
            self.bodies.clear();
        }
        self.bodies
            .get_or_insert_async(&(generation, key), render)
            .await
    }
}
