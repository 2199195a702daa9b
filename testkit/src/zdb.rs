//! A 0-db protocol peer: enough of 0-db 2.0.7, answering exactly as the reference documents,
//! to assert how a client handles each of its replies.
//!
//! Implemented: PING, INFO, AUTH (admin password), SELECT (namespace, password, public
//! read-only access), SET (key or nil answers, a 4th argument only for admins, size limits),
//! GET, MGET, EXISTS (one key), DEL (`-Key not found`), NSINFO; errors without an `ERR`
//! prefix; `-Command not supported` for everything else (HELLO, CLIENT, ...); inline commands
//! and oversize values answered with an error and the connection closed; more than 1024
//! arguments answered once, then silence.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// 0-db's `REDIS_MAX_PAYLOAD`: larger arguments close the connection.
const MAX_PAYLOAD: usize = 8 * 1024 * 1024;
const MAX_ARGS: usize = 1024;

#[derive(Default)]
struct Namespace {
    password: Option<String>,
    public: bool,
    locked: bool,
    sequential: bool,
    maxsize: Option<u64>,
    next_id: u64,
    data: HashMap<Vec<u8>, Vec<u8>>,
}

impl Namespace {
    fn size(&self) -> u64 {
        self.data.values().map(|v| v.len() as u64).sum()
    }
}

#[derive(Default)]
struct State {
    namespaces: HashMap<String, Namespace>,
    admin_password: Option<String>,
    /// EXISTS answers 0 whatever is stored (to make a client send a SET of a stored value).
    pretend_missing: bool,
    /// SET closes the connection, as 0-db does on an oversize value.
    close_on_set: bool,
    /// Every command received, in order, arguments as bytes.
    log: Vec<Vec<Vec<u8>>>,
}

/// A 0-db peer on a loopback port. Stops (and resets every connection) when dropped.
pub struct ZdbPeer {
    port: u16,
    state: Arc<Mutex<State>>,
    paused: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
}

impl ZdbPeer {
    /// A peer with the `default` namespace, public and without password.
    pub fn start() -> ZdbPeer {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let mut state = State::default();
        state.namespaces.insert(
            "default".into(),
            Namespace {
                public: true,
                ..Namespace::default()
            },
        );
        let peer = ZdbPeer {
            port,
            state: Arc::new(Mutex::new(state)),
            paused: Arc::new(AtomicBool::new(false)),
            stopped: Arc::new(AtomicBool::new(false)),
            connections: Arc::new(Mutex::new(Vec::new())),
        };
        let (state, paused, stopped, connections) = (
            Arc::clone(&peer.state),
            Arc::clone(&peer.paused),
            Arc::clone(&peer.stopped),
            Arc::clone(&peer.connections),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                if let Ok(clone) = stream.try_clone() {
                    lock(&connections).push(clone);
                }
                let (state, paused) = (Arc::clone(&state), Arc::clone(&paused));
                std::thread::spawn(move || serve(stream, &state, &paused));
            }
        });
        peer
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `zdb://127.0.0.1:<port>/<namespace>` plus `extra` (`?timeout=1s`, ...).
    pub fn url(&self, namespace: &str, extra: &str) -> String {
        format!("zdb://127.0.0.1:{}/{namespace}{extra}", self.port)
    }

    /// Sets the admin password (`--admin`): `AUTH` then works, and SET timestamps need it.
    pub fn set_admin_password(&self, password: &str) {
        lock(&self.state).admin_password = Some(password.into());
    }

    /// Creates a namespace, optionally with a password; `public` lets clients without the
    /// password read (and only read).
    pub fn create_namespace(&self, name: &str, password: Option<&str>, public: bool) {
        lock(&self.state).namespaces.insert(
            name.into(),
            Namespace {
                password: password.map(Into::into),
                public,
                ..Namespace::default()
            },
        );
    }

    /// `NSSET <ns> lock 1`: writes refused.
    pub fn lock(&self, namespace: &str, locked: bool) {
        self.with(namespace, |ns| ns.locked = locked);
    }

    /// `NSSET <ns> maxsize <bytes>`.
    pub fn set_maxsize(&self, namespace: &str, bytes: u64) {
        self.with(namespace, |ns| ns.maxsize = Some(bytes));
    }

    /// A sequential-mode namespace: SET of an empty key answers an 8-byte id, SET of any
    /// other key that is not an id refuses it, as 0-db does.
    pub fn set_sequential(&self, namespace: &str) {
        self.with(namespace, |ns| ns.sequential = true);
    }

    /// `NSDEL`: clients using it are told so and disconnected on their next command.
    pub fn delete_namespace(&self, namespace: &str) {
        lock(&self.state).namespaces.remove(namespace);
    }

    /// EXISTS answers 0 for every key, so that a client believes nothing is stored.
    pub fn pretend_missing(&self, on: bool) {
        lock(&self.state).pretend_missing = on;
    }

    /// SET closes the connection before answering (0-db's reaction to an oversize value).
    pub fn close_on_set(&self, on: bool) {
        lock(&self.state).close_on_set = on;
    }

    /// Resets every open connection; the peer keeps listening.
    pub fn disconnect_all(&self) {
        for stream in lock(&self.connections).drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Stops answering (connections stay open), as a frozen server would.
    pub fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }

    /// Stops listening and resets every connection: the server is gone.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        for stream in lock(&self.connections).drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        // Wake the accept loop so it sees the flag and drops the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }

    /// Keys stored in a namespace.
    pub fn keys(&self, namespace: &str) -> usize {
        lock(&self.state)
            .namespaces
            .get(namespace)
            .map_or(0, |ns| ns.data.len())
    }

    /// Overwrites a stored value (to simulate damage on the server).
    pub fn corrupt(&self, namespace: &str, key: &[u8], value: &[u8]) {
        self.with(namespace, |ns| {
            ns.data.insert(key.to_vec(), value.to_vec());
        });
    }

    /// Every command received so far, the first argument upper-cased.
    pub fn commands(&self) -> Vec<Vec<Vec<u8>>> {
        lock(&self.state).log.clone()
    }

    /// The names of the commands received, in order.
    pub fn command_names(&self) -> Vec<String> {
        self.commands()
            .iter()
            .map(|c| String::from_utf8_lossy(&c[0]).into_owned())
            .collect()
    }

    /// Forgets the commands received so far.
    pub fn clear_log(&self) {
        lock(&self.state).log.clear();
    }

    fn with(&self, namespace: &str, change: impl FnOnce(&mut Namespace)) {
        let mut state = lock(&self.state);
        let ns = state
            .namespaces
            .get_mut(namespace)
            .expect("no such namespace");
        change(ns);
    }
}

impl Drop for ZdbPeer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// What one connection has selected and may do.
struct Session {
    namespace: String,
    writable: bool,
    admin: bool,
}

enum Request {
    Command(Vec<Vec<u8>>),
    /// Answer with this error and close the connection.
    Fatal(&'static str),
    /// Answer with this error, then never answer again (0-db after too many arguments).
    Mute(&'static str),
}

fn serve(stream: TcpStream, state: &Mutex<State>, paused: &AtomicBool) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    // Without an admin password every connection is admin, and writable.
    let open = lock(state).admin_password.is_none();
    let mut session = Session {
        namespace: "default".into(),
        writable: open,
        admin: open,
    };
    let mut muted = false;
    loop {
        let request = match read_request(&mut reader) {
            Ok(Some(request)) => request,
            _ => return,
        };
        while paused.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let reply = match request {
            Request::Fatal(error) => {
                let _ = out.write_all(format!("-{error}\r\n").as_bytes());
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
            Request::Mute(error) => {
                muted = true;
                format!("-{error}\r\n").into_bytes()
            }
            Request::Command(args) => {
                let mut state = lock(state);
                state.log.push(
                    std::iter::once(args[0].to_ascii_uppercase())
                        .chain(args[1..].iter().cloned())
                        .collect(),
                );
                match execute(&mut state, &mut session, &args) {
                    Ok(reply) => reply,
                    Err(Closed) => {
                        if !state.namespaces.contains_key(&session.namespace) {
                            let _ = out.write_all(
                                b"-Your active namespace is not available anymore (probably removed).\r\n",
                            );
                        }
                        let _ = out.shutdown(Shutdown::Both);
                        return;
                    }
                }
            }
        };
        if muted && !reply.starts_with(b"-Too many") {
            continue;
        }
        if out.write_all(&reply).is_err() {
            return;
        }
    }
}

/// Reads one request; `None` at the end of the stream.
fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let mut line = Vec::new();
    if reader.read_until(b'\n', &mut line)? == 0 {
        return Ok(None);
    }
    let Some(count) = line.strip_prefix(b"*") else {
        return Ok(Some(Request::Fatal("Malformed request, array expected")));
    };
    let count: usize = parse_number(count).unwrap_or(0);
    let mut args = Vec::with_capacity(count.min(MAX_ARGS));
    for _ in 0..count {
        line.clear();
        reader.read_until(b'\n', &mut line)?;
        let Some(len) = line.strip_prefix(b"$") else {
            return Ok(Some(Request::Fatal("Malformed query string")));
        };
        let len: usize = parse_number(len).unwrap_or(0);
        if len > MAX_PAYLOAD {
            // 0-db answers before reading the payload and closes the socket at once.
            return Ok(Some(Request::Fatal("Payload too big")));
        }
        let mut value = vec![0u8; len + 2];
        io::Read::read_exact(reader, &mut value)?;
        value.truncate(len);
        args.push(value);
    }
    if count > MAX_ARGS {
        return Ok(Some(Request::Mute("Too many arguments")));
    }
    if args.is_empty() {
        return Ok(Some(Request::Fatal("Malformed request, array expected")));
    }
    Ok(Some(Request::Command(args)))
}

fn parse_number(text: &[u8]) -> Option<usize> {
    std::str::from_utf8(text).ok()?.trim().parse().ok()
}

/// The connection must be closed (after the error reply, if any, the caller sends).
struct Closed;

fn bulk(value: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", value.len()).into_bytes();
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    out
}

fn error(text: &str) -> Vec<u8> {
    format!("-{text}\r\n").into_bytes()
}

const NIL: &[u8] = b"$-1\r\n";

fn execute(state: &mut State, session: &mut Session, args: &[Vec<u8>]) -> Result<Vec<u8>, Closed> {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
    let arg = |i: usize| String::from_utf8_lossy(&args[i]).into_owned();
    Ok(match (name.as_str(), args.len()) {
        ("PING", 1) => b"+PONG\r\n".to_vec(),
        ("INFO", _) => bulk(b"# server\nserver_name: 0-db (zdb)\nserver_revision: testkit\n"),
        ("AUTH", 2) => match &state.admin_password {
            None => error("Authentication disabled"),
            Some(pw) if *pw == arg(1) => {
                session.admin = true;
                b"+OK\r\n".to_vec()
            }
            Some(_) => error("Access denied"),
        },
        ("AUTH", _) => error("Only SECURE extra method supported"),
        ("SELECT", 2 | 3) => {
            let Some(ns) = state.namespaces.get(&arg(1)) else {
                return Ok(error("Namespace not found"));
            };
            let writable = match (&ns.password, args.get(2)) {
                (None, _) => true,
                (Some(pw), Some(given)) if pw.as_bytes() == given.as_slice() => true,
                (Some(_), Some(_)) => return Ok(error("Access denied")),
                (Some(_), None) if ns.public => false,
                (Some(_), None) => return Ok(error("Namespace protected and private")),
            };
            session.namespace = arg(1);
            session.writable = writable;
            b"+OK\r\n".to_vec()
        }
        ("NSINFO", 2) => match state.namespaces.get(&arg(1)) {
            None => error("Namespace not found"),
            Some(ns) => bulk(
                format!(
                    "# namespace\nname: {}\nentries: {}\npublic: {}\npassword: {}\ndata_size_bytes: {}\nmode: {}\n",
                    arg(1),
                    ns.data.len(),
                    if ns.public { "yes" } else { "no" },
                    if ns.password.is_some() { "yes" } else { "no" },
                    ns.size(),
                    if ns.sequential { "sequential" } else { "userkey" }
                )
                .as_bytes(),
            ),
        },
        ("SET", _) if state.close_on_set => return Err(Closed),
        ("EXISTS", 2) if state.pretend_missing => b":0\r\n".to_vec(),
        ("SET" | "GET" | "MGET" | "EXISTS" | "DEL", _) => {
            let admin = session.admin;
            let writable = session.writable;
            let ns = state.namespaces.get_mut(&session.namespace).ok_or(Closed)?;
            data_command(ns, &name, args, admin, writable)
        }
        _ => error("Command not supported"),
    })
}

fn data_command(
    ns: &mut Namespace,
    name: &str,
    args: &[Vec<u8>],
    admin: bool,
    writable: bool,
) -> Vec<u8> {
    match (name, args.len()) {
        ("SET", 3..=4) => {
            if args.len() == 4 && !admin {
                return error("Permission denied");
            }
            let (key, value) = (&args[1], &args[2]);
            if ns.sequential {
                // An empty key allocates the next id; other keys must be existing ids.
                if !key.is_empty() && !ns.data.contains_key(key) {
                    return error("Invalid key, only update authorized");
                }
                ns.next_id += 1;
                ns.data
                    .insert(ns.next_id.to_le_bytes().to_vec(), value.clone());
                return bulk(&ns.next_id.to_le_bytes());
            }
            if key.is_empty() {
                error("Invalid argument, key needed")
            } else if key.len() > 255 {
                error("Key too large")
            } else if !writable {
                error("Namespace is in read-only mode")
            } else if ns.locked {
                error("Namespace is temporarily locked (read-only)")
            } else if ns.data.get(key) == Some(value) {
                NIL.to_vec() // identical value already stored: nothing written
            } else if ns
                .maxsize
                .is_some_and(|max| ns.size() + value.len() as u64 > max)
            {
                error("No space left on this namespace")
            } else {
                ns.data.insert(key.clone(), value.clone());
                bulk(key)
            }
        }
        ("SET", _) => error("Unexpected arguments"),
        ("GET", 2) => match ns.data.get(&args[1]) {
            Some(value) => bulk(value),
            None => NIL.to_vec(),
        },
        ("MGET", n) if n >= 2 => {
            let mut out = format!("*{}\r\n", n - 1).into_bytes();
            for key in &args[1..] {
                match ns.data.get(key) {
                    Some(value) => out.extend(bulk(value)),
                    None => out.extend_from_slice(NIL),
                }
            }
            out
        }
        ("EXISTS", 2) => format!(":{}\r\n", u8::from(ns.data.contains_key(&args[1]))).into_bytes(),
        ("DEL", 2) => {
            if !writable {
                error("Namespace is in read-only mode")
            } else if ns.data.remove(&args[1]).is_some() {
                b"+OK\r\n".to_vec()
            } else {
                error("Key not found")
            }
        }
        _ => error("Unexpected arguments"),
    }
}
