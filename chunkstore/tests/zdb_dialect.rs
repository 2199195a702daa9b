//! The 0-db client against a peer that answers as 0-db does: what the client sends, and how
//! it handles each reply.

use std::time::{Duration, Instant};

use chunkstore::{Chunk, ChunkKey, ChunkStore, Codec, EncodedChunk, Error, Refusal};
use testkit::ZdbPeer;

fn chunks(n: usize, salt: &str) -> Vec<EncodedChunk> {
    let mut codec = Codec::new(3).unwrap();
    (0..n)
        .map(|i| {
            let data = format!("{salt} chunk {i} ").repeat(50 + i).into_bytes();
            codec.encode(&Chunk::new(data)).unwrap()
        })
        .collect()
}

fn keys(chunks: &[EncodedChunk]) -> Vec<ChunkKey> {
    chunks.iter().map(EncodedChunk::key).collect()
}

async fn open(url: &str) -> std::sync::Arc<dyn ChunkStore> {
    chunkstore::open(url).await.unwrap()
}

#[tokio::test]
async fn handshake_and_commands_are_0db_dialect() {
    let peer = ZdbPeer::start();
    peer.create_namespace("flists", Some("pw"), false);
    let store = open(&peer.url("flists", "")).await;
    // The password in the URL form: zdb://:pw@host/ns.
    let store_pw = open(&format!("zdb://:pw@127.0.0.1:{}/flists", peer.port())).await;
    let err = store.has(ChunkKey::of(b"x")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Refused {
                kind: Refusal::PermissionDenied,
                ..
            }
        ),
        "private namespace without password: {err}"
    );
    peer.clear_log();

    let batch = chunks(3, "a");
    store_pw.put_many(&batch).await.unwrap();
    assert_eq!(store_pw.has_many(&keys(&batch)).await.unwrap(), [true; 3]);
    let got = store_pw.get_many(&keys(&batch)).await.unwrap();
    assert_eq!(got[1].as_ref(), Some(batch[1].bytes()));

    let log = peer.commands();
    let names = peer.command_names();
    // The first thing on the connection: SELECT by name with the password. No HELLO, no
    // CLIENT SETINFO, no AUTH (no admin password given), no numeric SELECT.
    assert_eq!(
        log[0],
        vec![b"SELECT".to_vec(), b"flists".to_vec(), b"pw".to_vec()]
    );
    assert!(
        !names
            .iter()
            .any(|n| n == "HELLO" || n == "CLIENT" || n == "AUTH"),
        "{names:?}"
    );
    // EXISTS with exactly one key each, checked before SET; SET with key and value only.
    for cmd in log.iter().filter(|c| c[0] == b"EXISTS") {
        assert_eq!(cmd.len(), 2);
    }
    let sets: Vec<_> = log.iter().filter(|c| c[0] == b"SET").collect();
    assert_eq!(sets.len(), 3);
    assert!(sets.iter().all(|c| c.len() == 3 && c[1].len() == 32));
    assert!(names.iter().position(|n| n == "EXISTS") < names.iter().position(|n| n == "SET"));
    assert!(names.contains(&"MGET".to_string()));

    // Putting the same chunks again sends no SET: 0-db would append them to disk again.
    peer.clear_log();
    store_pw.put_many(&batch).await.unwrap();
    assert!(!peer.command_names().contains(&"SET".to_string()));
    assert_eq!(peer.keys("flists"), 3);
}

#[tokio::test]
async fn select_is_sent_again_on_every_new_connection() {
    let peer = ZdbPeer::start();
    peer.create_namespace("ns", None, true);
    let store = open(&peer.url("ns", "?pool=1")).await;
    store.has(ChunkKey::of(b"a")).await.unwrap();
    peer.disconnect_all();
    // The broken connection is noticed and replaced; the new one selects the namespace again.
    store.has(ChunkKey::of(b"b")).await.unwrap();
    let names = peer.command_names();
    assert_eq!(names, ["SELECT", "EXISTS", "SELECT", "EXISTS"], "{names:?}");
}

#[tokio::test]
async fn nil_from_set_means_already_stored() {
    let peer = ZdbPeer::start();
    let store = open(&peer.url("default", "")).await;
    let batch = chunks(2, "n");
    store.put_many(&batch).await.unwrap();
    // The peer now pretends not to have them: the client sends SET, 0-db answers nil
    // (identical value), and that is success.
    peer.pretend_missing(true);
    peer.clear_log();
    store.put_many(&batch).await.unwrap();
    assert_eq!(
        peer.command_names().iter().filter(|n| *n == "SET").count(),
        2
    );
}

#[tokio::test]
async fn get_uses_mget_of_at_most_1000_keys() {
    let peer = ZdbPeer::start();
    let store = open(&peer.url("default", "")).await;
    let batch = chunks(5, "m");
    store.put_many(&batch).await.unwrap();
    let mut wanted: Vec<ChunkKey> = (0..2500u32)
        .map(|i| ChunkKey::of(&i.to_le_bytes()))
        .collect();
    wanted[2499] = batch[4].key();
    peer.clear_log();
    let got = store.get_many(&wanted).await.unwrap();
    assert_eq!(got.iter().filter(|g| g.is_some()).count(), 1);
    assert_eq!(got[2499].as_ref(), Some(batch[4].bytes()));
    let mgets: Vec<usize> = peer
        .commands()
        .iter()
        .filter(|c| c[0] == b"MGET")
        .map(|c| c.len() - 1)
        .collect();
    assert!(mgets.iter().all(|&n| n <= 1000), "{mgets:?}");
    assert_eq!(mgets.iter().sum::<usize>(), 2500);
}

#[tokio::test]
async fn error_replies_become_typed_errors() {
    let peer = ZdbPeer::start();
    let batch = chunks(1, "e");

    // Public namespace with a password, selected without it: read-only.
    peer.create_namespace("public", Some("secret"), true);
    let store = open(&peer.url("public", "")).await;
    assert!(!store.has(batch[0].key()).await.unwrap(), "reads work");
    let err = store.put_many(&batch).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Refused {
                kind: Refusal::ReadOnly,
                ..
            }
        ),
        "{err}"
    );

    peer.create_namespace("locked", None, true);
    peer.lock("locked", true);
    let err = open(&peer.url("locked", ""))
        .await
        .put_many(&batch)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Refused {
                kind: Refusal::Locked,
                ..
            }
        ),
        "{err}"
    );

    peer.create_namespace("small", None, true);
    peer.set_maxsize("small", 10);
    let err = open(&peer.url("small", ""))
        .await
        .put_many(&batch)
        .await
        .unwrap_err();
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
    assert!(
        err.to_string().contains("No space left on this namespace"),
        "{err}"
    );

    let err = open(&format!("zdb://:wrong@127.0.0.1:{}/public", peer.port()))
        .await
        .has(batch[0].key())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Refused {
                kind: Refusal::PermissionDenied,
                ..
            }
        ),
        "{err}"
    );

    peer.create_namespace("seq", None, true);
    peer.set_sequential("seq");
    let err = open(&peer.url("seq", ""))
        .await
        .put_many(&batch)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Store { .. }) && err.to_string().contains("sequential mode"),
        "{err}"
    );

    let err = open(&peer.url("nonexistent", ""))
        .await
        .has(batch[0].key())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Namespace not found"), "{err}");

    // A namespace deleted under a connected client: 0-db says so and hangs up.
    peer.create_namespace("doomed", None, true);
    let store = open(&peer.url("doomed", "")).await;
    store.has(batch[0].key()).await.unwrap();
    peer.delete_namespace("doomed");
    let err = store.has(batch[0].key()).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
}

#[tokio::test]
async fn admin_password_goes_with_a_single_argument_auth() {
    let peer = ZdbPeer::start();
    peer.set_admin_password("root-pw");
    peer.create_namespace("ns", Some("ns-pw"), false);
    let store = open(&format!(
        "zdb://:ns-pw@127.0.0.1:{}/ns?admin-password=root-pw",
        peer.port()
    ))
    .await;
    store.put_many(&chunks(1, "admin")).await.unwrap();
    let log = peer.commands();
    assert_eq!(log[0], vec![b"AUTH".to_vec(), b"root-pw".to_vec()]);
    assert_eq!(
        log[1],
        vec![b"SELECT".to_vec(), b"ns".to_vec(), b"ns-pw".to_vec()]
    );
}

#[tokio::test]
async fn a_connection_closed_during_a_write_is_an_error_not_a_hang() {
    let peer = ZdbPeer::start();
    let store = open(&peer.url("default", "?timeout=2s")).await;
    peer.close_on_set(true);
    let started = Instant::now();
    let err = store.put_many(&chunks(2, "c")).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // The server is fine otherwise: after the backoff the next write goes through.
    peer.close_on_set(false);
    tokio::time::sleep(Duration::from_millis(300)).await;
    store.put_many(&chunks(2, "c")).await.unwrap();
}

#[tokio::test]
async fn a_frozen_or_dead_server_fails_within_the_timeout() {
    let peer = ZdbPeer::start();
    let store = open(&peer.url("default", "?timeout=500ms&connect-timeout=500ms")).await;
    let batch = chunks(2, "t");
    store.put_many(&batch).await.unwrap();
    peer.pause(true);
    for call in ["has_many", "get_many", "put_many"] {
        let started = Instant::now();
        let err = match call {
            "has_many" => store.has_many(&keys(&batch)).await.map(|_| ()),
            "get_many" => store.get_many(&keys(&batch)).await.map(|_| ()),
            _ => store.put_many(&chunks(1, call)).await,
        }
        .unwrap_err();
        assert!(err.is_unavailable(), "{call}: {err}");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{call} took {:?}",
            started.elapsed()
        );
    }
    peer.pause(false);
    peer.stop();
    let started = Instant::now();
    let err = store.has_many(&keys(&batch)).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(started.elapsed() < Duration::from_millis(1500));
}
