//! The 0-db gateway's protocol: the exact replies zflist, rfs and the node readers check,
//! and every refusal.

mod common;

use std::time::Duration;

use chunkstore::BlockId;
use common::TestHub;
use testkit::RedisServer;
use testkit::peers::Zdb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request as a client library sends it: an array of bulk strings.
fn request(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend(b"\r\n");
    }
    out
}

struct Client {
    stream: TcpStream,
}

impl Client {
    async fn connect(address: std::net::SocketAddr) -> Client {
        Client {
            stream: TcpStream::connect(address).await.unwrap(),
        }
    }

    /// Sends `args` and reads one reply, whole.
    async fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.stream.write_all(&request(args)).await.unwrap();
        self.reply().await
    }

    async fn reply(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut byte = [0u8; 1];
        // The first line, then a bulk's payload when there is one.
        while !out.ends_with(b"\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut byte))
                .await
                .expect("a reply in time")
                .unwrap();
            if n == 0 {
                return out;
            }
            out.push(byte[0]);
        }
        if out[0] == b'$' && out != b"$-1\r\n" {
            let len: usize = std::str::from_utf8(&out[1..out.len() - 2])
                .unwrap()
                .parse()
                .unwrap();
            let mut payload = vec![0; len + 2];
            self.stream.read_exact(&mut payload).await.unwrap();
            out.extend(payload);
        }
        out
    }

    /// Whether the gateway closed the connection.
    async fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }
}

fn bulk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend(b"\r\n");
    out
}

/// A hub whose chunk store is the real 0-db `zdb`.
async fn on_zdb(zdb: &Zdb) -> TestHub {
    TestHub::open(&format!(
        "[store]\nurl = \"zdb://127.0.0.1:{}/default\"\n",
        zdb.port()
    ))
    .await
}

#[tokio::test]
async fn the_replies_clients_check_and_the_refusals() {
    replies_and_refusals(TestHub::open("").await).await;
}

/// The same through a hub whose blocks are in a real 0-db, beside its chunks.
#[tokio::test]
async fn the_replies_clients_check_on_a_zdb_store() {
    let Some(zdb) = Zdb::start() else { return };
    replies_and_refusals(on_zdb(&zdb).await).await;
}

async fn replies_and_refusals(hub: TestHub) {
    let token = hub.token("alice");
    let (address, _gateway) = hub.gateway().await;
    let mut c = Client::connect(address).await;

    assert_eq!(c.call(&[b"PING"]).await, b"+PONG\r\n");
    let info = c.call(&[b"INFO"]).await;
    assert!(info.starts_with(b"$"), "INFO is a bulk string");
    assert!(
        info.len() > 64,
        "never a short string (libflist's test is inverted)"
    );
    assert_eq!(c.call(&[b"SELECT", b"default"]).await, b"+OK\r\n");
    assert_eq!(
        c.call(&[b"select", b"ns", b"not-a-token"]).await,
        b"+OK\r\n",
        "a namespace password: OK, anonymous"
    );
    assert_eq!(c.call(&[b"FLUSHDB"]).await, b"-Command not supported\r\n");
    assert_eq!(
        c.call(&[b"ST"]).await,
        b"-Command not supported\r\n",
        "no prefix matching"
    );

    let block = b"a block of a 0-flist".repeat(100);
    let id16 = legacy::zero::blake2b_128(&block);
    let id32 = legacy::fl::blake2b_256(&block);
    // Anonymous: reads yes, writes no.
    assert_eq!(c.call(&[b"EXISTS", &id16]).await, b":0\r\n");
    assert_eq!(c.call(&[b"GET", &id16]).await, b"$-1\r\n");
    let refused = c.call(&[b"SET", &id16, &block]).await;
    assert!(
        refused.starts_with(b"-Unauthorized"),
        "{}",
        String::from_utf8_lossy(&refused)
    );

    // Bad tokens of every kind.
    for bad in [
        &b"nope"[..],
        b"a.b.c",
        b"eyJhbGciOiJub25lIn0.e30.",
        &token.as_bytes()[..token.len() - 2],
    ] {
        let answer = c.call(&[b"AUTH", bad]).await;
        assert!(
            answer.starts_with(b"-Access denied"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    let answer = c.call(&[b"AUTH", token.as_bytes()]).await;
    assert_eq!(answer, b"+OK - alice\r\n");

    // Ids must be the content's hash, of one of the two lengths.
    let wrong = legacy::zero::blake2b_128(b"something else");
    let answer = c.call(&[b"SET", &wrong, &block]).await;
    assert!(
        answer.starts_with(b"-Unauthorized payload"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let answer = c.call(&[b"SET", b"short", &block]).await;
    assert!(
        answer.starts_with(b"-Invalid key"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // The reply is the key, then nil once stored.
    assert_eq!(c.call(&[b"SET", &id16, &block]).await, bulk(&id16));
    assert_eq!(c.call(&[b"SET", &id16, &block]).await, b"$-1\r\n");
    assert_eq!(c.call(&[b"SET", &id32, &block]).await, bulk(&id32));
    assert_eq!(c.call(&[b"EXISTS", &id16]).await, b":1\r\n");
    assert_eq!(c.call(&[b"GET", &id16]).await, bulk(&block));
    assert_eq!(c.call(&[b"GET", &id32]).await, bulk(&block));

    // A SELECT with a token authenticates (rfs pack's zdb://user:TOKEN@host/ns).
    let mut other = Client::connect(address).await;
    assert_eq!(
        other.call(&[b"SELECT", b"ns", token.as_bytes()]).await,
        b"+OK\r\n"
    );
    let block2 = b"another".repeat(10);
    let id2 = legacy::zero::blake2b_128(&block2);
    assert_eq!(other.call(&[b"SET", &id2, &block2]).await, bulk(&id2));

    // Pipelined: replies in order.
    let mut pipelined = Vec::new();
    for _ in 0..50 {
        pipelined.extend(request(&[b"GET", &id16]));
        pipelined.extend(request(&[b"EXISTS", &id2]));
    }
    c.stream.write_all(&pipelined).await.unwrap();
    for _ in 0..50 {
        assert_eq!(c.reply().await, bulk(&block));
        assert_eq!(c.reply().await, b":1\r\n");
    }
}

#[tokio::test]
async fn garbage_and_oversize_values_cost_one_connection_only() {
    let hub = TestHub::open("").await;
    let token = hub.token("alice");
    let (address, _gateway) = hub.gateway().await;
    let mut witness = Client::connect(address).await;
    assert_eq!(
        witness.call(&[b"AUTH", token.as_bytes()]).await,
        b"+OK - alice\r\n"
    );

    let mut inline = Client::connect(address).await;
    inline.stream.write_all(b"PING\r\n").await.unwrap();
    assert_eq!(
        inline.reply().await,
        b"-Malformed request, array expected\r\n"
    );
    assert!(inline.closed().await);

    // A value over 0-db's 8 MiB, refused from its header before it is sent.
    let mut big = Client::connect(address).await;
    big.call(&[b"AUTH", token.as_bytes()]).await;
    big.stream
        .write_all(b"*3\r\n$3\r\nSET\r\n$16\r\n0123456789abcdef\r\n$8388609\r\n")
        .await
        .unwrap();
    assert_eq!(big.reply().await, b"-Payload too big\r\n");
    assert!(big.closed().await);

    let mut many = Client::connect(address).await;
    many.stream.write_all(b"*5000\r\n").await.unwrap();
    assert_eq!(many.reply().await, b"-Too many arguments\r\n");
    assert!(many.closed().await);

    // Exactly 8 MiB is a value 0-db takes.
    let block = vec![7u8; 8 << 20];
    let id = legacy::zero::blake2b_128(&block);
    assert_eq!(witness.call(&[b"SET", &id, &block]).await, bulk(&id));
    assert_eq!(
        witness.call(&[b"PING"]).await,
        b"+PONG\r\n",
        "the others go on"
    );
}

#[tokio::test]
async fn blocks_stored_through_the_gateway_are_readable_over_http() {
    blocks_over_http(TestHub::open("").await).await;
}

/// The same with the blocks in a real redis-server.
#[tokio::test]
async fn blocks_in_a_redis_store_are_readable_over_http() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let toml = format!("[store]\nurl = \"{}/0?namespace=hub\"\n", server.url());
    blocks_over_http(TestHub::open(&toml).await).await;
    assert!(server.dbsize() > 0, "the blocks went to redis");
}

async fn blocks_over_http(hub: TestHub) {
    let token = hub.token("alice");
    let (address, _gateway) = hub.gateway().await;
    let mut c = Client::connect(address).await;
    c.call(&[b"AUTH", token.as_bytes()]).await;
    let block = b"over http".repeat(1000);
    let id = legacy::fl::blake2b_256(&block);
    assert_eq!(c.call(&[b"SET", &id, &block]).await, bulk(&id));
    let answer = hub
        .get(&format!("/api/v1/blocks/{}", hex::encode(id)))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(&answer.body[..], &block[..]);
    assert_eq!(
        hub.get(&format!("/api/v1/blocks/{}", hex::encode([0u8; 16])))
            .await
            .status,
        404
    );
    assert_eq!(hub.get("/api/v1/blocks/zz").await.status, 400);

    // A hub as a store: its blocks read over HTTP, none written that way.
    let (http, _server) = hub.serve().await;
    let store = chunkstore::open(&format!("http://{http}/api/v1/chunks"))
        .await
        .unwrap();
    let id = BlockId::from_slice(&id).unwrap();
    let absent = BlockId::from_slice(&[0; 16]).unwrap();
    assert_eq!(
        store.has_blocks(&[id, absent]).await.unwrap(),
        [true, false]
    );
    assert_eq!(
        store.get_blocks(&[id, absent]).await.unwrap(),
        [Some(bytes::Bytes::from(block.clone())), None]
    );
    let err = store
        .put_blocks(&[(absent, bytes::Bytes::from_static(b"x"))])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("0-db gateway"), "{err}");
    // A chunk key with the block's bytes is no chunk.
    let as_key = chunkstore::ChunkKey::from_bytes(id.as_bytes().try_into().unwrap());
    assert!(!store.has(as_key).await.unwrap());
}
