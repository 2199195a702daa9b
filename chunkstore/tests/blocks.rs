//! The block key space (0-flist and fl blocks) in every store, against real servers: a real
//! `zdb-2.0.7`, redis-server, a Redis Cluster, and routers over two stores.

use std::sync::Arc;

use bytes::Bytes;
use chunkstore::{
    BlockId, Chunk, ChunkKey, ChunkStore, Codec, DirOptions, DirStore, EncodedChunk, Error,
    MAX_BLOCK_SIZE, Router,
};
use testkit::peers::Zdb;
use testkit::{RedisCluster, RedisServer};

fn chunk(salt: &str) -> EncodedChunk {
    let data = format!("a chunk beside blocks, {salt} ").repeat(50);
    Codec::new(3)
        .unwrap()
        .encode(&Chunk::new(data.into_bytes()))
        .unwrap()
}

fn block(id: &BlockId) -> Bytes {
    Bytes::from(format!("the block {id}").repeat(30))
}

async fn open(url: &str) -> Arc<dyn ChunkStore> {
    chunkstore::open(url).await.unwrap()
}

/// Round trips of a 16- and a 32-byte block, the 32-byte one with the bytes of a stored
/// chunk's key, which both keep their own content; a missing id; an oversized block
/// refused. Returns the 32-byte id.
async fn round_trip(store: &dyn ChunkStore) -> BlockId {
    let stored = chunk(store.location());
    store.put(stored.clone()).await.unwrap();
    let key = stored.key();
    let short = BlockId::from_slice(&key.as_bytes()[..16]).unwrap();
    let long = BlockId::from_slice(key.as_bytes()).unwrap();
    let missing = BlockId::from_slice(&[0xee; 32]).unwrap();
    let ids = [short, long, missing];
    assert_eq!(store.has_blocks(&ids).await.unwrap(), [false; 3]);
    assert_eq!(store.get_blocks(&ids).await.unwrap(), [None, None, None]);

    let blocks = [(short, block(&short)), (long, block(&long))];
    store.put_blocks(&blocks).await.unwrap();
    // Again: harmless.
    store.put_blocks(&blocks).await.unwrap();
    assert_eq!(store.has_blocks(&ids).await.unwrap(), [true, true, false]);
    assert_eq!(
        store.get_blocks(&ids).await.unwrap(),
        [Some(block(&short)), Some(block(&long)), None]
    );
    // The chunk under the same bytes is untouched, and a block is not a chunk.
    assert_eq!(store.get(key).await.unwrap().as_ref(), Some(stored.bytes()));
    let block_only = BlockId::from_slice(ChunkKey::of(b"no such chunk").as_bytes()).unwrap();
    store
        .put_blocks(&[(block_only, block(&block_only))])
        .await
        .unwrap();
    let as_key = ChunkKey::from_bytes(block_only.as_bytes().try_into().unwrap());
    assert!(!store.has(as_key).await.unwrap());
    assert_eq!(store.get(as_key).await.unwrap(), None);

    let huge = Bytes::from(vec![1; MAX_BLOCK_SIZE + 1]);
    let err = store.put_blocks(&[(missing, huge)]).await.unwrap_err();
    assert!(matches!(err, Error::BlockTooLarge { .. }), "{err}");
    assert_eq!(store.has_blocks(&[missing]).await.unwrap(), [false]);
    long
}

/// The counts of chunks and blocks `stats` reports, summed over the backends.
async fn counts(store: &dyn ChunkStore) -> (u64, u64) {
    let stats = store.stats().await.unwrap();
    (
        stats.iter().map(|s| s.keys.unwrap()).sum(),
        stats.iter().map(|s| s.blocks.unwrap()).sum(),
    )
}

#[tokio::test]
async fn zdb() {
    let Some(zdb) = Zdb::start() else { return };
    let store = open(&format!("zdb://127.0.0.1:{}/default", zdb.port())).await;
    let long = round_trip(&*store).await;
    // Under its own key, beside the chunk with the same bytes.
    let key = [b"block/".as_slice(), long.as_bytes()].concat();
    assert_eq!(zdb.get(&key), Some(block(&long).to_vec()));
    assert_eq!(counts(&*store).await, (1, 3));
}

#[tokio::test]
async fn redis_with_and_without_a_namespace() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let plain = open(&server.url()).await;
    let long = round_trip(&*plain).await;
    assert!(server.exists(&[b"block/".as_slice(), long.as_bytes()].concat()));
    let named = open(&format!("{}?namespace=hub", server.url())).await;
    let long = round_trip(&*named).await;
    assert!(server.exists(&[b"hub:block/".as_slice(), long.as_bytes()].concat()));
    // Each store counts its own: the plain one sees the namespaced keys as foreign.
    assert_eq!(counts(&*plain).await, (1, 3));
    assert_eq!(counts(&*named).await, (1, 3));

    // Whatever sits under a block's key, no more than a block is read of it.
    let odd = BlockId::from_slice(&[0x0d; 16]).unwrap();
    let key = [b"block/".as_slice(), odd.as_bytes()].concat();
    server.set(&key, &vec![2; MAX_BLOCK_SIZE + 100]);
    let err = plain.get_blocks(&[odd]).await.unwrap_err();
    assert!(matches!(err, Error::BlockTooLarge { .. }), "{err}");
    // An empty value is a block, not a missing one.
    server.set(&key, b"");
    assert_eq!(
        plain.get_blocks(&[odd]).await.unwrap(),
        [Some(Bytes::new())]
    );
}

#[tokio::test]
async fn redis_cluster() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let store = open(&format!("{}?namespace=hub", cluster.url())).await;
    round_trip(&*store).await;
    // A cluster counts keys, blocks included.
    let stats = store.stats().await.unwrap();
    assert_eq!((stats[0].keys, stats[0].blocks), (Some(4), None));
}

#[tokio::test]
async fn router_over_two_dir_stores() {
    let dir = tempfile::tempdir().unwrap();
    let backends: Vec<Arc<dyn ChunkStore>> = ["a", "b"]
        .iter()
        .map(|name| {
            let store = DirStore::open(dir.path().join(name), DirOptions { fsync: false });
            Arc::new(store.unwrap()) as Arc<dyn ChunkStore>
        })
        .collect();
    let router = Router::new(backends.clone(), 1, 1).unwrap();
    round_trip(&router).await;
    // Spread as chunks are: each block on one of the two.
    let ids: Vec<BlockId> = (0..40u8)
        .map(|i| BlockId::from_slice(&[i; 16]).unwrap())
        .collect();
    let blocks: Vec<(BlockId, Bytes)> = ids.iter().map(|id| (*id, block(id))).collect();
    router.put_blocks(&blocks).await.unwrap();
    let mut held = [0; 2];
    for (i, backend) in backends.iter().enumerate() {
        held[i] = backend
            .has_blocks(&ids)
            .await
            .unwrap()
            .iter()
            .filter(|&&h| h)
            .count();
    }
    assert_eq!(held[0] + held[1], 40, "{held:?}");
    assert!(held.iter().all(|&n| n > 5), "{held:?}");
    let got = router.get_blocks(&ids).await.unwrap();
    assert!(
        got.iter()
            .zip(&blocks)
            .all(|(g, (_, b))| g.as_ref() == Some(b))
    );
    assert_eq!(counts(&router).await, (1, 43));
}

#[tokio::test]
async fn router_replicates_and_fails_over() {
    let Some(mut first) = RedisServer::start() else {
        return;
    };
    let Some(second) = RedisServer::start() else {
        return;
    };
    let mut backends = Vec::new();
    for server in [&first, &second] {
        backends.push(
            open(&format!(
                "{}?timeout=1s&connect-timeout=500ms",
                server.url()
            ))
            .await,
        );
    }
    let router = Router::new(backends, 2, 1).unwrap();
    let long = round_trip(&router).await;
    let key = [b"block/".as_slice(), long.as_bytes()].concat();
    assert!(first.exists(&key) && second.exists(&key), "a copy on each");
    first.kill();
    assert_eq!(router.has_blocks(&[long]).await.unwrap(), [true]);
    assert_eq!(
        router.get_blocks(&[long]).await.unwrap(),
        [Some(block(&long))]
    );
    let late = BlockId::from_slice(&[0x1a; 32]).unwrap();
    router.put_blocks(&[(late, block(&late))]).await.unwrap();
    let strict = Router::new(
        vec![
            open(&format!("{}?connect-timeout=500ms", first.url())).await,
            open(&second.url()).await,
        ],
        2,
        2,
    )
    .unwrap();
    let err = strict
        .put_blocks(&[(late, block(&late))])
        .await
        .unwrap_err();
    assert!(
        err.is_unavailable() && err.to_string().contains("block 1a1a"),
        "{err}"
    );
}

/// The router's scrub of blocks over two dir replicas: a copy missing on one replica and a
/// copy damaged on one are rewritten from the other; a block with no sound copy left is
/// lost; the caller's check, not the store, says what a sound copy is.
#[tokio::test]
async fn router_scrub_rewrites_missing_and_damaged_block_copies() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let replicas: Vec<Arc<dyn ChunkStore>> = dirs
        .iter()
        .map(|d| {
            Arc::new(DirStore::open(d.path(), DirOptions::default()).unwrap())
                as Arc<dyn ChunkStore>
        })
        .collect();
    let router = Router::new(replicas.clone(), 2, 2).unwrap();
    let ids: Vec<BlockId> = (1..=4u8)
        .map(|i| BlockId::from_slice(&[i; 16]).unwrap())
        .collect();
    let blocks: Vec<(BlockId, Bytes)> = ids.iter().map(|id| (*id, block(id))).collect();
    router.put_blocks(&blocks).await.unwrap();
    let bad = Bytes::from_static(b"not the block");
    let (sound_one, missing, damaged, lost) = (ids[0], ids[1], ids[2], ids[3]);
    replicas[0].delete_blocks(&[missing, lost]).await.unwrap();
    replicas[1]
        .put_blocks(&[(damaged, bad.clone()), (lost, bad.clone())])
        .await
        .unwrap();
    let check = |id: &BlockId, copy: &[u8]| copy == block(id).as_ref();

    // Shallow: only the missing copies show; the one with a sound copy elsewhere is
    // rewritten, the other's only copy fails the check (a repair takes only sound copies).
    let shallow = router.scrub_blocks(&ids, false, &check).await.unwrap();
    use chunkstore::{Fault::*, Health::*};
    assert_eq!(shallow, [Sound, Repaired(Missing), Sound, Lost(Missing)]);
    assert_eq!(
        replicas[0].get_blocks(&[missing]).await.unwrap(),
        [Some(block(&missing))]
    );
    // Deep: the damaged copies too.
    let deep = router.scrub_blocks(&ids, true, &check).await.unwrap();
    assert_eq!(deep, [Sound, Sound, Repaired(Damaged), Lost(Damaged)]);
    for replica in &replicas {
        assert_eq!(
            replica
                .get_blocks(&[sound_one, missing, damaged])
                .await
                .unwrap(),
            [
                Some(block(&sound_one)),
                Some(block(&missing)),
                Some(block(&damaged))
            ],
            "{}",
            replica.location()
        );
    }
    assert_eq!(
        router.scrub_blocks(&ids, true, &check).await.unwrap(),
        [Sound, Sound, Sound, Lost(Damaged)]
    );
}
