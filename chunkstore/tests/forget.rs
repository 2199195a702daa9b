//! Stores that forget: listing with a resumable cursor and deleting, chunks and blocks,
//! against a dir store, a real `zdb-2.0.7`, redis-server, a Redis Cluster, and a router over
//! replicas; what each backend counts afterwards, told by the backend itself.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use chunkstore::{
    BlockId, Chunk, ChunkKey, ChunkStore, Codec, Cursor, DirOptions, DirStore, EncodedChunk, Error,
    Reclaim, Router,
};
use testkit::peers::Zdb;
use testkit::{RedisCluster, RedisServer};

fn chunks(n: usize, salt: &str) -> Vec<EncodedChunk> {
    let mut codec = Codec::new(3).unwrap();
    (0..n)
        .map(|i| {
            let data = format!("{salt} forget {i} ").repeat(30 + i % 7);
            codec.encode(&Chunk::new(data.into_bytes())).unwrap()
        })
        .collect()
}

fn blocks(n: usize, salt: &str) -> Vec<(BlockId, Bytes)> {
    (0..n)
        .map(|i| {
            let hash = blake3::hash(format!("{salt} block {i}").as_bytes());
            let len = if i % 2 == 0 { 16 } else { 32 };
            let id = BlockId::from_slice(&hash.as_bytes()[..len]).unwrap();
            (id, Bytes::from(format!("block {i} of {salt}").repeat(20)))
        })
        .collect()
}

/// Every chunk key, page by page of `limit`, and the cursors seen on the way.
async fn all_chunks(store: &dyn ChunkStore, limit: usize) -> (Vec<ChunkKey>, Vec<Cursor>) {
    let (mut keys, mut cursors, mut cursor) = (Vec::new(), Vec::new(), None);
    for _ in 0..100_000 {
        let page = store.list_chunks(cursor, limit).await.unwrap();
        for item in &page.items {
            assert!(item.size.is_some_and(|s| s > 0), "{item:?}");
        }
        keys.extend(page.items.into_iter().map(|i| i.key));
        match page.next {
            Some(next) => {
                cursors.push(next.clone());
                cursor = Some(next);
            }
            None => return (keys, cursors),
        }
    }
    panic!("the walk did not end");
}

async fn all_blocks(store: &dyn ChunkStore) -> HashSet<BlockId> {
    let (mut ids, mut cursor) = (HashSet::new(), None);
    loop {
        let page = store.list_blocks(cursor, 5).await.unwrap();
        ids.extend(page.items.into_iter().map(|i| i.key));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
    }
}

fn set(keys: impl IntoIterator<Item = ChunkKey>) -> HashSet<ChunkKey> {
    keys.into_iter().collect()
}

/// Stores 60 chunks and 10 blocks; lists them whole in small pages and from a cursor kept
/// halfway; deletes a third, absent keys among them; lists and checks again; deletes the
/// blocks. `unique`: the backend lists each key once (Redis's SCAN may repeat one).
async fn forgets(store: &dyn ChunkStore, unique: bool) {
    let batch = chunks(60, store.location());
    let keys: Vec<ChunkKey> = batch.iter().map(EncodedChunk::key).collect();
    store.put_many(&batch).await.unwrap();
    let (listed, cursors) = all_chunks(store, 7).await;
    if unique {
        assert_eq!(listed.len(), 60, "{}", store.location());
    }
    assert_eq!(set(listed.clone()), set(keys.clone()));
    assert!(cursors.len() >= 2, "pages: {}", cursors.len() + 1);

    // A walk resumed from a kept cursor lists the rest: with what came before, everything.
    let middle = cursors[cursors.len() / 2].clone();
    let kept = Cursor::from_bytes(middle.as_bytes().to_vec());
    let mut rest = Vec::new();
    let mut cursor = Some(kept);
    while let Some(c) = cursor {
        let page = store.list_chunks(Some(c), 7).await.unwrap();
        rest.extend(page.items.into_iter().map(|i| i.key));
        cursor = page.next;
    }
    assert!(!rest.is_empty() && rest.len() < 60, "{}", rest.len());

    // Delete a third and two keys never stored.
    let mut doomed: Vec<ChunkKey> = keys.iter().step_by(3).copied().collect();
    doomed.push(ChunkKey::of(b"never stored"));
    doomed.push(ChunkKey::of(b"never stored either"));
    assert_eq!(store.delete_many(&doomed).await.unwrap(), 20);
    assert_eq!(store.delete_many(&doomed).await.unwrap(), 0, "idempotent");
    let present = store.has_many(&keys).await.unwrap();
    for (i, present) in present.iter().enumerate() {
        assert_eq!(*present, i % 3 != 0, "key {i}");
    }
    let (listed, _) = all_chunks(store, 1000).await;
    let expected: HashSet<ChunkKey> = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, k)| *k)
        .collect();
    assert_eq!(set(listed), expected);
    // Deleted, then stored again: back.
    store.put_many(&batch[..1]).await.unwrap();
    assert!(store.has(keys[0]).await.unwrap());
    store.delete_many(&keys[..1]).await.unwrap();

    // Blocks: their own space, listed and deleted apart from the chunks.
    let stored = blocks(10, store.location());
    store.put_blocks(&stored).await.unwrap();
    let ids: Vec<BlockId> = stored.iter().map(|(id, _)| *id).collect();
    assert_eq!(all_blocks(store).await, ids.iter().copied().collect());
    assert_eq!(store.delete_blocks(&ids[..4]).await.unwrap(), 4);
    assert_eq!(
        store.has_blocks(&ids).await.unwrap(),
        [
            false, false, false, false, true, true, true, true, true, true
        ]
    );
    assert_eq!(all_blocks(store).await, ids[4..].iter().copied().collect());
    // The chunks did not move.
    assert_eq!(
        store
            .has_many(&expected.iter().copied().collect::<Vec<_>>())
            .await
            .unwrap(),
        vec![true; 40]
    );

    // A walk that deletes what each page lists before asking for the next one, as a
    // collector does, still goes through everything.
    let fresh = chunks(25, &format!("{} fresh", store.location()));
    let fresh_keys = set(fresh.iter().map(EncodedChunk::key));
    store.put_many(&fresh).await.unwrap();
    let (mut seen, mut cursor) = (HashSet::new(), None);
    loop {
        let page = store.list_chunks(cursor, 3).await.unwrap();
        let doomed: Vec<ChunkKey> = page
            .items
            .iter()
            .map(|i| i.key)
            .filter(|k| fresh_keys.contains(k))
            .collect();
        store.delete_many(&doomed).await.unwrap();
        seen.extend(page.items.into_iter().map(|i| i.key));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert!(fresh_keys.is_subset(&seen));
    assert!(expected.is_subset(&seen));
    let fresh_keys: Vec<ChunkKey> = fresh_keys.into_iter().collect();
    assert_eq!(store.has_many(&fresh_keys).await.unwrap(), vec![false; 25]);
}

#[tokio::test]
async fn a_dir_store_forgets() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::open(dir.path().join("s"), DirOptions::default()).unwrap();
    // A store never written lists nothing.
    let page = store.list_chunks(None, 10).await.unwrap();
    assert!(page.items.is_empty() && page.next.is_none());
    forgets(&store, true).await;
    // Written times are the files' mtimes; a leftover temporary file is never listed.
    let page = store.list_chunks(None, 1000).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        page.items
            .iter()
            .all(|i| i.written.is_some_and(|w| (now - w).abs() < 60))
    );
    let tmp = store
        .chunk_path(&page.items[0].key)
        .with_file_name(".tmp-leftover");
    std::fs::write(&tmp, b"x").unwrap();
    let (listed, _) = all_chunks(&store, 1000).await;
    assert_eq!(listed.len(), 40);
    assert_eq!(store.reclaim(), Reclaim::AtOnce);
    // A cursor of another store is refused, not misread.
    let bad = store
        .list_chunks(Some(Cursor::from_bytes(vec![0xff, 0])), 10)
        .await;
    assert!(bad.is_err());
}

#[tokio::test]
async fn a_zdb_namespace_forgets_and_a_sequential_one_says_it_cannot() {
    let Some(zdb) = Zdb::start_mixed() else {
        return;
    };
    let ns = |name: &str| {
        let reply = zdb.command(&[b"NSNEW", name.as_bytes()]);
        assert_eq!(reply, b"+OK");
    };
    ns("gc");
    let store = chunkstore::open(&format!("zdb://127.0.0.1:{}/gc", zdb.port()))
        .await
        .unwrap();
    forgets(store.as_ref(), true).await;
    // 0-db counts what is left itself; its entries have write times.
    let dbsize = |namespace: &str| {
        let info = zdb.command(&[b"NSINFO", namespace.as_bytes()]);
        let info = String::from_utf8_lossy(&info).into_owned();
        info.lines()
            .find_map(|l| {
                l.strip_prefix("entries: ")
                    .map(|v| v.trim().parse::<u64>().unwrap())
            })
            .unwrap()
    };
    assert_eq!(dbsize("gc"), 40 + 6, "40 chunks and 6 blocks left");
    let page = store.list_chunks(None, 1000).await.unwrap();
    assert!(page.items.iter().all(|i| i.written.is_some()));
    assert_eq!(store.reclaim(), Reclaim::OnCompaction);

    ns("seq");
    assert_eq!(zdb.command(&[b"NSSET", b"seq", b"mode", b"seq"]), b"+OK");
    let seq = chunkstore::open(&format!("zdb://127.0.0.1:{}/seq", zdb.port()))
        .await
        .unwrap();
    let err = seq.delete_many(&[ChunkKey::of(b"x")]).await.unwrap_err();
    assert!(matches!(err, Error::CannotDelete { .. }), "{err:?}");
    assert!(err.to_string().contains("sequential mode"), "{err}");
}

#[tokio::test]
async fn redis_forgets_within_its_namespace() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = chunkstore::open(&format!("{}/0?namespace=gc", server.url()))
        .await
        .unwrap();
    let other = chunkstore::open(&format!("{}/0?namespace=other", server.url()))
        .await
        .unwrap();
    other.put_many(&chunks(5, "other")).await.unwrap();
    server.set(b"gc:not-a-chunk", b"value");
    forgets(store.as_ref(), false).await;
    // 40 chunks and 6 blocks of `gc`, the 5 of `other`, the foreign key: untouched.
    assert_eq!(server.dbsize(), 40 + 6 + 5 + 1);
    assert!(server.exists(b"gc:not-a-chunk"));
}

#[tokio::test]
async fn a_redis_cluster_forgets_on_every_primary() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let store = chunkstore::open(&cluster.url()).await.unwrap();
    forgets(store.as_ref(), false).await;
    assert_eq!(cluster.keys(), 40 + 6);
}

#[tokio::test]
async fn a_router_forgets_on_every_replica() {
    let Some(zdb) = Zdb::start() else { return };
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir_store: Arc<dyn ChunkStore> =
        Arc::new(DirStore::open(dir.path(), DirOptions::default()).unwrap());
    let zdb_store = chunkstore::open(&format!("zdb://127.0.0.1:{}/default", zdb.port()))
        .await
        .unwrap();
    let redis_store = chunkstore::open(&redis.url()).await.unwrap();
    let backends = vec![dir_store, zdb_store, redis_store];
    let router = Router::new(backends.clone(), 2, 2).unwrap();
    let batch = chunks(30, "router");
    let keys: Vec<ChunkKey> = batch.iter().map(EncodedChunk::key).collect();
    router.put_many(&batch).await.unwrap();
    // Each key on two backends: listed twice.
    let (listed, _) = all_chunks(&router, 4).await;
    assert_eq!(listed.len(), 60);
    assert_eq!(set(listed), set(keys.clone()));
    // A stray copy on the backend that is no replica of the key goes too.
    for backend in &backends {
        backend.put(batch[0].clone()).await.unwrap();
    }
    assert_eq!(router.delete_many(&keys[..10]).await.unwrap(), 10 * 2 + 1);
    for backend in &backends {
        assert_eq!(
            backend.has_many(&keys[..10]).await.unwrap(),
            vec![false; 10]
        );
    }
    // What each backend counts itself: the 20 other keys, twice.
    let mut counted = 0;
    for backend in &backends {
        counted += backend.stats().await.unwrap()[0].keys.unwrap();
    }
    assert_eq!(counted, 40);
    assert_eq!(router.parts().len(), 3);
    assert_eq!(router.reclaim(), Reclaim::OnCompaction, "a 0-db among them");
}
