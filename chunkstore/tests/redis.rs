//! The Redis, Redis Cluster and router stores against real redis-server processes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chunkstore::{Chunk, ChunkKey, ChunkStore, Codec, EncodedChunk, Error, Refusal, Router};
use testkit::{RedisCluster, RedisServer};

fn chunks(n: usize, salt: &str) -> Vec<EncodedChunk> {
    let mut codec = Codec::new(3).unwrap();
    (0..n)
        .map(|i| {
            let data = format!("{salt} {i} ").repeat(40 + i % 50).into_bytes();
            codec.encode(&Chunk::new(data)).unwrap()
        })
        .collect()
}

fn keys(chunks: &[EncodedChunk]) -> Vec<ChunkKey> {
    chunks.iter().map(EncodedChunk::key).collect()
}

async fn open(url: &str) -> Arc<dyn ChunkStore> {
    chunkstore::open(url).await.unwrap()
}

#[tokio::test]
async fn stores_reads_and_counts_with_a_namespace() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = open(&format!("{}/0?namespace=hub", server.url())).await;
    let batch = chunks(300, "ns");
    assert_eq!(
        store.has_many(&keys(&batch)).await.unwrap(),
        vec![false; 300]
    );
    store.put_many(&batch).await.unwrap();
    assert_eq!(
        store.has_many(&keys(&batch)).await.unwrap(),
        vec![true; 300]
    );
    let got = store.get_many(&keys(&batch)).await.unwrap();
    let mut codec = Codec::new(3).unwrap();
    for (chunk, got) in batch.iter().zip(got) {
        codec.decode(&chunk.key(), &got.unwrap()).unwrap();
    }
    assert_eq!(store.get(ChunkKey::of(b"absent")).await.unwrap(), None);
    // Keys live under the prefix, and stats count only them.
    assert!(server.exists(&[b"hub:".as_slice(), batch[0].key().as_bytes()].concat()));
    let other = open(&format!("{}/0?namespace=other", server.url())).await;
    other.put_many(&chunks(5, "other")).await.unwrap();
    assert_eq!(store.stats().await.unwrap()[0].keys, Some(300));
    assert_eq!(server.dbsize(), 305);
    assert_eq!(store.routes(), [store.location()]);
    assert!(!store.location().contains("password"));
}

#[tokio::test]
async fn a_stopped_or_killed_server_fails_within_the_timeout() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let store = open(&format!(
        "{}?timeout=500ms&connect-timeout=500ms",
        server.url()
    ))
    .await;
    let batch = chunks(10, "down");
    store.put_many(&batch).await.unwrap();
    server.pause();
    for call in ["has_many", "get_many", "put_many"] {
        let started = Instant::now();
        let result = match call {
            "has_many" => store.has_many(&keys(&batch)).await.map(|_| ()),
            "get_many" => store.get_many(&keys(&batch)).await.map(|_| ()),
            _ => store.put_many(&chunks(3, call)).await,
        };
        let err = result.unwrap_err();
        assert!(err.is_unavailable(), "{call}: {err}");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{call}: {:?}",
            started.elapsed()
        );
    }
    server.resume();
    server.kill();
    let started = Instant::now();
    let err = store.get_many(&keys(&batch)).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(started.elapsed() < Duration::from_millis(1500));
    // A replacement on the same port is picked up once the backoff has passed.
    server.replace_empty();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.has(batch[0].key()).await.is_err() {
        assert!(Instant::now() < deadline, "no reconnection");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_full_server_is_a_typed_refusal() {
    let Some(server) =
        RedisServer::start_with(&["--maxmemory", "1mb", "--maxmemory-policy", "noeviction"])
    else {
        return;
    };
    let store = open(&server.url()).await;
    let mut codec = Codec::new(1).unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let big: Vec<EncodedChunk> = (0..8)
        .map(|_| {
            // Incompressible, so each stored chunk really takes 1 MB.
            let noise: Vec<u8> = (0..1_000_000)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            codec.encode(&Chunk::new(noise)).unwrap()
        })
        .collect();
    let err = store.put_many(&big).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Refused {
                kind: Refusal::Full,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn tls_with_a_private_ca() {
    let Some(server) = RedisServer::start_tls() else {
        return;
    };
    let ca = server.ca_file().unwrap().display().to_string();
    let store = open(&format!("{}?ca-file={ca}", server.url())).await;
    let batch = chunks(20, "tls");
    store.put_many(&batch).await.unwrap();
    assert_eq!(
        store.get_many(&keys(&batch)).await.unwrap()[7].as_ref(),
        Some(batch[7].bytes())
    );
    // Without trusting the CA, the connection is refused.
    let untrusted = open(&format!("{}?connect-timeout=1s", server.url())).await;
    assert!(untrusted.has(batch[0].key()).await.is_err());
}

#[tokio::test]
async fn a_cluster_of_three_primaries_and_three_replicas() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let store = open(&cluster.url()).await;
    let batch = chunks(500, "cluster");
    store.put_many(&batch).await.unwrap();
    assert_eq!(
        store.has_many(&keys(&batch)).await.unwrap(),
        vec![true; 500]
    );
    let got = store.get_many(&keys(&batch)).await.unwrap();
    assert!(
        got.iter()
            .zip(&batch)
            .all(|(g, c)| g.as_ref() == Some(c.bytes()))
    );
    assert_eq!(cluster.keys(), 500);
    assert_eq!(store.stats().await.unwrap()[0].keys, Some(500));
}

/// Which of the servers hold `key` (database 0, no namespace).
fn holders(servers: &[RedisServer], key: &ChunkKey) -> usize {
    servers.iter().filter(|s| s.exists(key.as_bytes())).count()
}

#[tokio::test]
async fn router_replicates_fails_over_and_repairs() {
    let servers: Vec<RedisServer> = match (0..3).map(|_| RedisServer::start()).collect() {
        Some(servers) => servers,
        None => return,
    };
    let mut servers = servers;
    let urls: Vec<String> = servers
        .iter()
        .map(|s| format!("{}?timeout=1s&connect-timeout=500ms", s.url()))
        .collect();
    let open_router = |quorum: usize| {
        let urls = urls.clone();
        async move {
            let mut backends = Vec::new();
            for url in &urls {
                backends.push(chunkstore::open(url).await.unwrap());
            }
            Arc::new(Router::new(backends, 2, quorum).unwrap())
        }
    };
    let router = open_router(1).await;
    let batch = chunks(200, "router");
    router.put_many(&batch).await.unwrap();
    for chunk in &batch {
        assert_eq!(
            holders(&servers, &chunk.key()),
            2,
            "two copies of every chunk"
        );
    }
    let per_server: Vec<u64> = servers.iter().map(RedisServer::dbsize).collect();
    assert!(
        per_server.iter().all(|&n| n > 60),
        "spread over all servers: {per_server:?}"
    );

    // One server down: reads fail over, writes with quorum 1 go on, quorum 2 cannot.
    servers[0].kill();
    let got = router.get_many(&keys(&batch)).await.unwrap();
    assert!(
        got.iter().all(Option::is_some),
        "every chunk read from its other replica"
    );
    assert_eq!(
        router.has_many(&keys(&batch)).await.unwrap(),
        vec![true; 200]
    );
    let more = chunks(50, "while-down");
    router.put_many(&more).await.unwrap();
    let strict = open_router(2).await;
    let refused = chunks(50, "strict");
    let err = strict.put_many(&refused).await.unwrap_err();
    assert!(
        err.is_unavailable() && err.to_string().contains("2 required"),
        "{err}"
    );
    // A chunk the failed write left on one replica does not count as stored for a router
    // that needs two copies, so a retry writes it again instead of accepting one copy.
    let stored = strict.has_many(&keys(&refused)).await.unwrap();
    for (chunk, stored) in refused.iter().zip(&stored) {
        assert_eq!(
            *stored,
            holders(&servers, &chunk.key()) >= 2,
            "{}",
            chunk.key()
        );
    }
    assert!(stored.iter().any(|s| !s));

    // Repair with a backend down reports what it could not reach instead of failing.
    let report = router.repair(&keys(&batch)).await.unwrap();
    assert!(report.unreachable > 0, "{report:?}");

    // The server comes back empty; repair restores two copies of everything.
    servers[0].replace_empty();
    tokio::time::sleep(Duration::from_millis(600)).await; // past the backoff
    let all: Vec<ChunkKey> = keys(&batch).into_iter().chain(keys(&more)).collect();
    let report = router.repair(&all).await.unwrap();
    assert_eq!(report.checked, 250);
    assert_eq!(report.missing, 0);
    assert!(report.copied > 60, "{report:?}");
    for key in &all {
        assert_eq!(holders(&servers, key), 2, "{key} after repair");
    }
    assert_eq!(
        router.repair(&all).await.unwrap().copied,
        0,
        "nothing left to copy"
    );
    let twice = router.repair(&[all[0], all[0]]).await.unwrap();
    assert_eq!(twice.checked, 1, "keys are counted once");

    // A damaged copy on the first replica: reads go on to the next one.
    let victim = batch[3].key();
    let damaged = servers
        .iter()
        .find(|s| s.exists(victim.as_bytes()))
        .unwrap();
    damaged.set(victim.as_bytes(), b"garbage");
    let got = router.get(victim).await.unwrap().unwrap();
    assert_eq!(&got, batch[3].bytes(), "the intact copy");
    // Repair copies only what verifies: with the intact copy gone, a copy that looks right
    // but does not decode is no source, and the chunk counts as missing.
    damaged.set(victim.as_bytes(), b"FLCK\x01\x00\x05\x00\x00\x00wrong");
    for server in &servers {
        if server.port() != damaged.port() {
            server.del(victim.as_bytes());
        }
    }
    let report = router.repair(&[victim]).await.unwrap();
    assert_eq!((report.missing, report.copied), (1, 0), "{report:?}");
    // Reads hand on a copy that looks right; the reader's decoding catches it.
    let bytes = router.get(victim).await.unwrap().unwrap();
    let err = Codec::new(3).unwrap().decode(&victim, &bytes).unwrap_err();
    assert!(matches!(err, Error::KeyMismatch { .. }), "{err}");
    // Only garbage left: an error, not "absent".
    damaged.set(victim.as_bytes(), b"garbage");
    let err = router.get(victim).await.unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");

    // A chunk no replica has is absent, not an error; a router's stats list each server.
    assert_eq!(router.get(ChunkKey::of(b"nowhere")).await.unwrap(), None);
    // (The refused write left the copies it could make; they count too.)
    let stats = router.stats().await.unwrap();
    assert_eq!(stats.len(), 3);
    let copies: usize = all
        .iter()
        .chain(&keys(&refused))
        .map(|k| holders(&servers, k))
        .sum();
    assert_eq!(
        stats.iter().map(|s| s.keys.unwrap()).sum::<u64>(),
        copies as u64
    );
}
