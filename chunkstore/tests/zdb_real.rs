//! The 0-db client against the real `zdb-2.0.7` (from `shared/peers`): the refusals that the
//! protocol peer can only imitate, as the server words them.

use chunkstore::{Chunk, ChunkStore, Codec, EncodedChunk, Error, Refusal};
use testkit::peers::Zdb;

fn chunks(n: usize) -> Vec<EncodedChunk> {
    let mut codec = Codec::new(3).unwrap();
    (0..n)
        .map(|i| {
            let data = format!("real zdb chunk {i} ").repeat(40).into_bytes();
            codec.encode(&Chunk::new(data)).unwrap()
        })
        .collect()
}

async fn open(url: &str) -> std::sync::Arc<dyn ChunkStore> {
    chunkstore::open(url).await.unwrap()
}

/// Sends admin commands, asserting each is accepted.
fn admin(zdb: &Zdb, commands: &[&[&[u8]]]) {
    for command in commands {
        let reply = zdb.command(command);
        assert_eq!(reply, b"+OK", "{:?}", String::from_utf8_lossy(&reply));
    }
}

/// A namespace in sequential mode refuses content-addressed keys on `SET` (it answers no id):
/// the error says the mode, confirmed by `NSINFO`.
#[tokio::test]
async fn a_sequential_namespace_is_named_as_such() {
    let Some(zdb) = Zdb::start_mixed() else {
        return;
    };
    admin(
        &zdb,
        &[&[b"NSNEW", b"seq"], &[b"NSSET", b"seq", b"mode", b"seq"]],
    );
    let store = open(&format!("zdb://127.0.0.1:{}/seq", zdb.port())).await;
    let err = store.put_many(&chunks(3)).await.unwrap_err();
    assert!(matches!(err, Error::Store { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("\"seq\" is in sequential mode") && text.contains("user-key mode"),
        "{text}"
    );

    // A user-mode namespace of the same server takes the same chunks.
    admin(&zdb, &[&[b"NSNEW", b"user"]]);
    let store = open(&format!("zdb://127.0.0.1:{}/user", zdb.port())).await;
    store.put_many(&chunks(3)).await.unwrap();
}

/// A wrong password is an authentication refusal: permission denied, in the server's words
/// (not garbled into a code and a detail), final (the next request is refused the same way
/// at once, not told to wait for a retry), and said to be so.
#[tokio::test]
async fn refused_credentials_are_final() {
    let Some(zdb) = Zdb::start() else { return };
    admin(
        &zdb,
        &[
            &[b"NSNEW", b"private"],
            &[b"NSSET", b"private", b"password", b"right"],
            &[b"NSSET", b"private", b"public", b"0"],
        ],
    );
    let batch = chunks(1);
    for url in [
        format!("zdb://:wrong@127.0.0.1:{}/private", zdb.port()),
        format!("zdb://127.0.0.1:{}/private", zdb.port()),
    ] {
        let store = open(&url).await;
        let expected = if url.contains("wrong") {
            "Access denied"
        } else {
            "Namespace protected and private"
        };
        for attempt in 0..2 {
            let err = store.has(batch[0].key()).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Refused {
                        kind: Refusal::PermissionDenied,
                        ..
                    }
                ),
                "{url}, attempt {attempt}: {err:?}"
            );
            let text = err.to_string();
            assert!(
                text.contains(expected) && text.contains("not retried"),
                "{url}, attempt {attempt}: {text}"
            );
            assert!(!text.contains("\"Namespace\""), "{text}");
        }
    }
    let store = open(&format!("zdb://:right@127.0.0.1:{}/private", zdb.port())).await;
    store.put_many(&batch).await.unwrap();
    assert!(store.has(batch[0].key()).await.unwrap());
}
