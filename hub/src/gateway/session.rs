//! One gateway connection: requests read in order, pipelined, each answered as 0-db
//! answers it; replies written together once the client has nothing more waiting.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use chunkstore::BlockId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Gateway;
use super::resp::{Parser, reply};
use crate::auth::{Caller, Credentials};
use crate::error::Error;

/// Bytes read from the socket at a time.
const READ_SIZE: usize = 256 << 10;
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
            // Every whole request already received is answered before reading more.
            loop {
                match parser.next(&mut buf, &mut need) {
                    Ok(Some(request)) => self.answer(request).await,
                    Ok(None) => break,
                    Err(malformed) => {
                        reply::error(&mut self.out, malformed.reply());
                        let _ = stream.write_all(&self.out).await;
                        tracing::debug!(peer = %self.peer, reply = malformed.reply(), "gateway: closing a connection");
                        metrics::counter!("flisthub_gateway_malformed_total").increment(1);
                        return;
                    }
                }
                if self.out.len() >= WRITE_AT && stream.write_all(&self.out.split()).await.is_err()
                {
                    return;
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

    async fn answer(&mut self, request: Vec<Bytes>) {
        let Some((name, args)) = request.split_first() else {
            reply::error(&mut self.out, "This is not a valid command");
            return;
        };
        let command = Command::of(name);
        metrics::counter!("flisthub_gateway_commands_total", "command" => command.label())
            .increment(1);
        match command {
            Command::Ping => reply::simple(&mut self.out, "PONG"),
            Command::Info => reply::bulk(&mut self.out, self.gateway.info().as_bytes()),
            Command::Select => self.select(args).await,
            Command::Auth => self.auth(args).await,
            Command::Exists => self.exists(args).await,
            Command::Get => self.get(args).await,
            Command::Mget => self.mget(args).await,
            Command::Set => self.set(args).await,
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

    async fn get(&mut self, args: &[Bytes]) {
        let [id] = args else {
            return reply::error(&mut self.out, "Unexpected arguments");
        };
        let Some(id) = BlockId::from_slice(id) else {
            return reply::nil(&mut self.out);
        };
        match self.gateway.blocks.get(&[id]).await {
            Ok(mut found) => match found.pop().flatten() {
                Some(block) => reply::bulk(&mut self.out, &block),
                None => reply::nil(&mut self.out),
            },
            Err(e) => self.failed(&e),
        }
    }

    async fn mget(&mut self, args: &[Bytes]) {
        if args.is_empty() {
            return reply::error(&mut self.out, "Invalid argument");
        }
        let ids: Vec<Option<BlockId>> = args.iter().map(|id| BlockId::from_slice(id)).collect();
        let asked: Vec<BlockId> = ids.iter().flatten().copied().collect();
        let mut found = match self.gateway.blocks.get(&asked).await {
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

    /// `SET <id> <block>`: for an authenticated caller, a block whose id is its content's
    /// hash (16 bytes: BLAKE2b-128, as 0-hub's gateway checked; 32: BLAKE2b-256, as rfs
    /// writes). The reply is the id, or nil when the block was already stored (all that
    /// libflist accepts).
    async fn set(&mut self, args: &[Bytes]) {
        let [id, block] = args else {
            return reply::error(&mut self.out, "Unexpected arguments");
        };
        let Some(caller) = &self.caller else {
            metrics::counter!("flisthub_gateway_refused_writes_total").increment(1);
            return reply::error(
                &mut self.out,
                "Unauthorized: AUTH with a hub token first (or SELECT <namespace> <token>)",
            );
        };
        let matches = match id.len() {
            16 => legacy::zero::blake2b_128(block).as_slice() == id.as_ref(),
            32 => legacy::fl::blake2b_256(block).as_slice() == id.as_ref(),
            _ => {
                return reply::error(
                    &mut self.out,
                    "Invalid key: a block id is 16 bytes (BLAKE2b-128) or 32 (BLAKE2b-256)",
                );
            }
        };
        let Some(block_id) = BlockId::from_slice(id).filter(|_| matches) else {
            metrics::counter!("flisthub_gateway_refused_writes_total").increment(1);
            return reply::error(
                &mut self.out,
                "Unauthorized payload: the id is not the hash of the block",
            );
        };
        let caller = caller.clone();
        match self
            .gateway
            .blocks
            .put(&caller, block_id, block.clone())
            .await
        {
            Ok(true) => reply::bulk(&mut self.out, id),
            Ok(false) => reply::nil(&mut self.out),
            Err(e) => self.failed(&e),
        }
    }

    /// A failure of the hub (the store, a quota) in 0-db's words: a message, never the
    /// internals.
    fn failed(&mut self, e: &Error) {
        reply::error(&mut self.out, &e.client_message());
    }
}
