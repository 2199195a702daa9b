//! One gateway connection: requests read in order, pipelined, each answered as 0-db
//! answers it; replies written together once the client has nothing more waiting.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use chunkstore::BlockId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::Gateway;
use crate::auth::{Caller, Credentials};
use crate::error::Error;
use chunkstore::resp::{Malformed, Parser, reply};

/// Bytes read from the socket at a time.
const READ_SIZE: usize = 256 << 10;
/// Requests taken together, at most: a client's pipeline (rfs and libflist keep a few in
/// flight) fits, and one batch of blocks stays small in memory.
const BATCH_REQUESTS: usize = 64;
const BATCH_BYTES: usize = 16 << 20;
/// Bytes of requests received and not yet answered, at most (above one batch, so that the
/// next one arrives while the last is answered).
const IN_FLIGHT_BYTES: usize = 2 * BATCH_BYTES;
/// Replies buffered before they are written, whatever is still waiting to be read.
const WRITE_AT: usize = 1 << 20;

/// The commands answered; anything else is "not supported", as 0-db says.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Command {
    Ping,
    Info,
    Select,
    Auth,
    Exists,
    Get,
    Mget,
    Set,
    Other,
}

impl Command {
    fn of(name: &[u8]) -> Command {
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        // Whole names only: 0-db runs the first command a prefix matches (`ST` is STOP).
        match () {
            () if is("PING") => Command::Ping,
            () if is("INFO") => Command::Info,
            () if is("SELECT") => Command::Select,
            () if is("AUTH") => Command::Auth,
            () if is("EXISTS") => Command::Exists,
            () if is("GET") => Command::Get,
            () if is("MGET") => Command::Mget,
            () if is("SET") || is("SETX") => Command::Set,
            () => Command::Other,
        }
    }

    /// Its label in the metrics: one of a fixed set.
    pub(super) fn label(self) -> &'static str {
        match self {
            Command::Ping => "ping",
            Command::Info => "info",
            Command::Select => "select",
            Command::Auth => "auth",
            Command::Exists => "exists",
            Command::Get => "get",
            Command::Mget => "mget",
            Command::Set => "set",
            Command::Other => "other",
        }
    }
}

pub(super) struct Session {
    gateway: Arc<Gateway>,
    peer: SocketAddr,
    /// Who authenticated on this connection (AUTH, or a SELECT secret); anonymous else.
    caller: Option<Caller>,
    out: BytesMut,
}

impl Session {
    pub(super) fn new(gateway: Arc<Gateway>, peer: SocketAddr) -> Session {
        Session {
            gateway,
            peer,
            caller: None,
            out: BytesMut::with_capacity(64 << 10),
        }
    }

    /// Serves the connection until the client goes, idles past the timeout, sends what is
    /// not a request, or the hub stops. Requests are received while earlier ones are being
    /// answered (checked, stored): a pipelining client keeps both the socket and the store
    /// busy, as it does with 0-db.
    pub(super) async fn run(mut self, stream: TcpStream) {
        let (read, mut write) = stream.into_split();
        let (sender, mut received) = mpsc::channel(2 * BATCH_REQUESTS);
        let receiving = receive(Arc::clone(&self.gateway), self.peer, read, sender);
        let answering = self.answer_received(&mut received, &mut write);
        tokio::pin!(receiving, answering);
        tokio::select! {
            // A write failed or a malformed request was answered: the connection ends.
            () = &mut answering => {}
            // The client is done (or idle, or the hub stops): what it sent is answered.
            () = &mut receiving => answering.await,
        }
    }

    /// Answers what `received` brings, in order, until it ends or a write fails. Whatever
    /// is waiting is taken together, runs of GETs and of SETs answered at once (one store
    /// call, one quota charge, one sync); replies are written when nothing more waits.
    async fn answer_received(
        &mut self,
        received: &mut mpsc::Receiver<Received>,
        write: &mut OwnedWriteHalf,
    ) {
        while let Some(first) = received.recv().await {
            let mut requests = Vec::new();
            let mut permits = Vec::new();
            let mut malformed = None;
            let mut next = Some(first);
            while let Some(item) = next.take() {
                match item {
                    Received::Request(request, permit) => {
                        requests.push(request);
                        permits.push(permit);
                    }
                    Received::Malformed(e) => {
                        malformed = Some(e);
                        break;
                    }
                }
                let bytes: usize = permits.iter().map(|p| p.num_permits()).sum();
                if requests.len() < BATCH_REQUESTS && bytes < BATCH_BYTES {
                    next = received.try_recv().ok();
                }
            }
            self.answer_all(requests).await;
            drop(permits);
            if let Some(malformed) = malformed {
                reply::error(&mut self.out, malformed.reply());
                let _ = write.write_all(&self.out).await;
                tracing::debug!(peer = %self.peer, reply = malformed.reply(), "gateway: closing a connection");
                metrics::counter!("flisthub_gateway_malformed_total").increment(1);
                return;
            }
            let flush = received.is_empty() || self.out.len() >= WRITE_AT;
            if flush && !self.out.is_empty() && write.write_all(&self.out.split()).await.is_err() {
                return;
            }
        }
        if !self.out.is_empty() {
            let _ = write.write_all(&self.out.split()).await;
        }
    }

    /// Answers `requests` in order; consecutive GETs are read together, consecutive SETs
    /// stored together.
    async fn answer_all(&mut self, requests: Vec<Vec<Bytes>>) {
        let mut requests = requests.into_iter().peekable();
        while let Some(request) = requests.next() {
            let Some(name) = request.first() else {
                reply::error(&mut self.out, "This is not a valid command");
                continue;
            };
            let command = Command::of(name);
            metrics::counter!("flisthub_gateway_commands_total", "command" => command.label())
                .increment(1);
            let mut run = vec![request];
            if matches!(command, Command::Get | Command::Set) {
                while let Some(next) =
                    requests.next_if(|r| r.first().is_some_and(|n| Command::of(n) == command))
                {
                    metrics::counter!("flisthub_gateway_commands_total", "command" => command.label())
                        .increment(1);
                    run.push(next);
                }
            }
            match command {
                Command::Get => self.get(&run).await,
                Command::Set => self.set(run).await,
                _ => self.answer(command, &run[0][1..]).await,
            }
        }
    }

    async fn answer(&mut self, command: Command, args: &[Bytes]) {
        match command {
            Command::Ping => reply::simple(&mut self.out, "PONG"),
            Command::Info => reply::bulk(&mut self.out, self.gateway.info().as_bytes()),
            Command::Select => self.select(args).await,
            Command::Auth => self.auth(args).await,
            Command::Exists => self.exists(args).await,
            Command::Mget => self.mget(args).await,
            Command::Get | Command::Set => {}
            Command::Other => reply::error(&mut self.out, "Command not supported"),
        }
    }

    /// `SELECT <namespace> [secret]`: namespaces are one here, so always exactly `OK`
    /// (libflist accepts nothing else). A secret that is a hub token authenticates, as
    /// `rfs pack` sends its token (`zdb://user:TOKEN@host/ns`); any other secret (a 0-db
    /// namespace password, which old flists carry) leaves the connection anonymous: it
    /// reads, and its writes are refused.
    async fn select(&mut self, args: &[Bytes]) {
        match args {
            [_] => {}
            [_, secret] => {
                if let Err(e) = self.authenticate(secret).await {
                    tracing::debug!(peer = %self.peer, error = %e, "gateway: SELECT secret is no hub token");
                }
            }
            _ => return reply::error(&mut self.out, "Invalid argument"),
        }
        reply::simple(&mut self.out, "OK");
    }

    /// `AUTH <hub token>`: `OK - <user>` (libflist wants a reply starting with `OK`).
    async fn auth(&mut self, args: &[Bytes]) {
        let [token] = args else {
            return reply::error(&mut self.out, "Invalid argument");
        };
        match self.authenticate(token).await {
            Ok(user) => reply::simple(&mut self.out, &format!("OK - {user}")),
            Err(e) => {
                metrics::counter!("flisthub_gateway_auth_failures_total").increment(1);
                reply::error(
                    &mut self.out,
                    &format!("Access denied: {}", e.client_message()),
                );
            }
        }
    }

    /// Authenticates the connection with `token` (as the HTTP API would with it as a
    /// bearer token); a failure leaves it anonymous.
    async fn authenticate(&mut self, token: &[u8]) -> Result<String, Error> {
        self.caller = None;
        let mut header = b"Bearer ".to_vec();
        header.extend_from_slice(token);
        let credentials = Credentials {
            authorization: Some(&header),
            active_user: None,
        };
        let caller = self.gateway.auth.authenticate(credentials).await?;
        let user = caller.user.clone();
        self.caller = Some(caller);
        Ok(user)
    }

    async fn exists(&mut self, args: &[Bytes]) {
        let [id] = args else {
            return reply::error(&mut self.out, "Unexpected arguments");
        };
        let Some(id) = BlockId::from_slice(id) else {
            return reply::integer(&mut self.out, 0);
        };
        match self.gateway.blocks.has(id).await {
            Ok(present) => reply::integer(&mut self.out, i64::from(present)),
            Err(e) => self.failed(&e),
        }
    }

    /// GETs, read from the store together.
    async fn get(&mut self, requests: &[Vec<Bytes>]) {
        // What each request asks: an id, or its refusal.
        let asked: Vec<Result<Option<BlockId>, &'static str>> = requests
            .iter()
            .map(|r| match &r[1..] {
                [id] => Ok(BlockId::from_slice(id)),
                _ => Err("Unexpected arguments"),
            })
            .collect();
        let ids: Vec<BlockId> = asked.iter().flatten().flatten().copied().collect();
        let mut found = match self.gateway.blocks.get(self.peer.ip(), &ids).await {
            Ok(found) => found.into_iter(),
            Err(e) => {
                let message = e.client_message();
                for _ in requests {
                    reply::error(&mut self.out, &message);
                }
                return;
            }
        };
        for request in asked {
            match request {
                Err(refusal) => reply::error(&mut self.out, refusal),
                Ok(None) => reply::nil(&mut self.out),
                Ok(Some(_)) => match found.next().flatten() {
                    Some(block) => reply::bulk(&mut self.out, &block),
                    None => reply::nil(&mut self.out),
                },
            }
        }
    }

    async fn mget(&mut self, args: &[Bytes]) {
        if args.is_empty() {
            return reply::error(&mut self.out, "Invalid argument");
        }
        let ids: Vec<Option<BlockId>> = args.iter().map(|id| BlockId::from_slice(id)).collect();
        let asked: Vec<BlockId> = ids.iter().flatten().copied().collect();
        let mut found = match self.gateway.blocks.get(self.peer.ip(), &asked).await {
            Ok(found) => found.into_iter(),
            Err(e) => return self.failed(&e),
        };
        reply::array_header(&mut self.out, ids.len());
        for id in &ids {
            match id.and(found.next()).flatten() {
                Some(block) => reply::bulk(&mut self.out, &block),
                None => reply::nil(&mut self.out),
            }
        }
    }

    /// `SET <id> <block>`s: for an authenticated caller, blocks whose id is their
    /// content's hash (16 bytes: BLAKE2b-128, as 0-hub's gateway checked; 32: BLAKE2b-256,
    /// as rfs writes), checked on every core and stored together. Each reply is the id, or
    /// nil when the block was already stored (all that libflist accepts).
    async fn set(&mut self, requests: Vec<Vec<Bytes>>) {
        let Some(caller) = self.caller.clone() else {
            metrics::counter!("flisthub_gateway_refused_writes_total")
                .increment(requests.len() as u64);
            for _ in requests {
                reply::error(
                    &mut self.out,
                    "Unauthorized: AUTH with a hub token first (or SELECT <namespace> <token>)",
                );
            }
            return;
        };
        let checks = requests.into_iter().map(|request| {
            tokio::task::spawn_blocking(move || match &request[1..] {
                [id, block] => check(id, block).map(|id| (id, block.clone())),
                _ => Err("Unexpected arguments"),
            })
        });
        let mut checked = Vec::new();
        for check in checks.collect::<Vec<_>>() {
            checked.push(check.await.unwrap_or(Err("Internal Error")));
        }
        let blocks: Vec<(BlockId, Bytes)> = checked.iter().flatten().cloned().collect();
        let stored = match self.gateway.blocks.put(&caller, blocks).await {
            Ok(stored) => stored,
            Err(e) => {
                let message = e.client_message();
                for _ in &checked {
                    reply::error(&mut self.out, &message);
                }
                return;
            }
        };
        let mut stored = stored.into_iter();
        for outcome in checked {
            match outcome {
                Err(refusal) => {
                    metrics::counter!("flisthub_gateway_refused_writes_total").increment(1);
                    reply::error(&mut self.out, refusal);
                }
                Ok((id, _)) => match stored.next() {
                    Some(true) => reply::bulk(&mut self.out, id.as_bytes()),
                    _ => reply::nil(&mut self.out),
                },
            }
        }
    }

    /// A failure of the hub (the store, a quota) in 0-db's words: a message, never the
    /// internals.
    fn failed(&mut self, e: &Error) {
        reply::error(&mut self.out, &e.client_message());
    }
}

/// What the receiving side passes on: a request, with its share of the connection's
/// in-flight budget, or why nothing more can be read.
enum Received {
    Request(Vec<Bytes>, OwnedSemaphorePermit),
    Malformed(Malformed),
}

/// Reads requests from the client and passes them on, until it goes, idles past the
/// timeout, sends what is not a request, or the hub stops. At most `IN_FLIGHT_BYTES` of
/// requests wait to be answered: past that, the client waits, as it would for 0-db.
async fn receive(
    gateway: Arc<Gateway>,
    peer: SocketAddr,
    mut read: OwnedReadHalf,
    sender: mpsc::Sender<Received>,
) {
    let limits = &gateway.limits;
    let parser = Parser::new(chunkstore::MAX_BLOCK_SIZE, limits.max_request);
    let budget = Arc::new(Semaphore::new(IN_FLIGHT_BYTES));
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    let mut need = 0usize;
    loop {
        loop {
            let item = match parser.next(&mut buf, &mut need) {
                Ok(Some(request)) => {
                    // Within u32 and the budget: the parser bounds a request to
                    // `max_request`, below `IN_FLIGHT_BYTES`.
                    let size = request
                        .iter()
                        .map(Bytes::len)
                        .sum::<usize>()
                        .clamp(1, IN_FLIGHT_BYTES);
                    let Ok(permit) = Arc::clone(&budget).acquire_many_owned(size as u32).await
                    else {
                        return;
                    };
                    Received::Request(request, permit)
                }
                Ok(None) => break,
                Err(e) => Received::Malformed(e),
            };
            let last = matches!(item, Received::Malformed(_));
            if sender.send(item).await.is_err() || last {
                return;
            }
        }
        buf.reserve(need.saturating_sub(buf.len()).max(READ_SIZE));
        let read = tokio::select! {
            read = tokio::time::timeout(limits.idle_timeout, read.read_buf(&mut buf)) => read,
            () = gateway.stop.cancelled() => return,
        };
        match read {
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(_)) => {}
            Err(_) => {
                tracing::debug!(peer = %peer, "gateway: idle connection closed");
                return;
            }
        }
    }
}

/// The id of a block, if it is its content's hash.
fn check(id: &[u8], block: &[u8]) -> Result<BlockId, &'static str> {
    let matches = match id.len() {
        16 => legacy::zero::blake2b_128(block).as_slice() == id,
        32 => legacy::fl::blake2b_256(block).as_slice() == id,
        _ => return Err("Invalid key: a block id is 16 bytes (BLAKE2b-128) or 32 (BLAKE2b-256)"),
    };
    BlockId::from_slice(id)
        .filter(|_| matches)
        .ok_or("Unauthorized payload: the id is not the hash of the block")
}
