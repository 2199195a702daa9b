//! One gateway connection: requests read in order, pipelined, each answered as 0-db
//! answers it; replies written together once the client has nothing more waiting.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use chunkstore::BlockId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Gateway;
use crate::auth::{Caller, Credentials};
use crate::error::Error;
use chunkstore::resp::{Parser, reply};

/// Bytes read from the socket at a time.
const READ_SIZE: usize = 256 << 10;
/// Requests taken together, at most: a client's pipeline (rfs and libflist keep a few in
/// flight) fits, and one batch of blocks stays small in memory.
const BATCH_REQUESTS: usize = 64;
const BATCH_BYTES: usize = 32 << 20;
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
    /// not a request, or the hub stops.
    pub(super) async fn run(mut self, mut stream: TcpStream) {
        let gateway = Arc::clone(&self.gateway);
        let limits = &gateway.limits;
        let parser = Parser::new(chunkstore::MAX_BLOCK_SIZE, limits.max_request);
        let mut buf = BytesMut::with_capacity(READ_SIZE);
        let mut need = 0usize;
        let stop = self.gateway.stop.clone();
        loop {
            // Every whole request already received is answered before reading more, runs
            // of GETs and of SETs together (one store call, one quota charge, one sync).
            loop {
                let mut requests = Vec::new();
                let mut bytes = 0;
                let mut malformed = None;
                while requests.len() < BATCH_REQUESTS && bytes < BATCH_BYTES {
                    match parser.next(&mut buf, &mut need) {
                        Ok(Some(request)) => {
                            bytes += request.iter().map(Bytes::len).sum::<usize>();
                            requests.push(request);
                        }
                        Ok(None) => break,
                        Err(e) => {
                            malformed = Some(e);
                            break;
                        }
                    }
                }
                let more = !requests.is_empty() && malformed.is_none();
                self.answer_all(requests).await;
                if let Some(malformed) = malformed {
                    reply::error(&mut self.out, malformed.reply());
                    let _ = stream.write_all(&self.out).await;
                    tracing::debug!(peer = %self.peer, reply = malformed.reply(), "gateway: closing a connection");
                    metrics::counter!("flisthub_gateway_malformed_total").increment(1);
                    return;
                }
                if self.out.len() >= WRITE_AT && stream.write_all(&self.out.split()).await.is_err()
                {
                    return;
                }
                if !more {
                    break;
                }
            }
            if !self.out.is_empty() && stream.write_all(&self.out.split()).await.is_err() {
                return;
            }
            buf.reserve(need.saturating_sub(buf.len()).max(READ_SIZE));
            let read = tokio::select! {
                read = tokio::time::timeout(limits.idle_timeout, stream.read_buf(&mut buf)) => read,
                _ = stop.cancelled() => return,
            };
            match read {
                Ok(Ok(0) | Err(_)) => return,
                Ok(Ok(_)) => {}
                Err(_) => {
                    tracing::debug!(peer = %self.peer, "gateway: idle connection closed");
                    return;
                }
            }
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
