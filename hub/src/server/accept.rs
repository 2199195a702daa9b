//! The accept loop: hyper-util's connection builder driven by hand, since `axum::serve`
//! offers neither a header timeout nor connection limits. A client that connects and sends
//! nothing, or half a request line, is closed after `server.header-read-timeout`; the
//! connections open at once, and those of one address, are bounded by [`Admission`].

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::connections::Admission;

/// The start of HTTP/2's connection preface, by which a client asks for HTTP/2 without TLS.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a connection beyond its address's limit is told before it is closed.
const TOO_MANY_CONNECTIONS: &str = "{\"status\": \"error\", \"message\": \"too many connections from this address (server.connections-per-address)\"}\n";

/// Serves `app` on `listener` until `stop` resolves; then accepts no more and returns once
/// the open connections have finished the requests they were serving. Connections still open
/// when `abort` is cancelled are dropped.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    admission: Admission,
    header_read_timeout: Duration,
    stop: impl Future<Output = ()>,
    abort: CancellationToken,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let room = tokio::select! {
            () = &mut stop => break,
            room = admission.room() => match room {
                Some(room) => room,
                None => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
        };
        let Some(ticket) = admission.admit(room, peer.ip()) else {
            refuse(&stream);
            continue;
        };
        let connection = Connection {
            builder: builder.clone(),
            app: app.clone(),
            peer,
            header_read_timeout,
        };
        let watcher = graceful.watcher();
        let abort = abort.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = connection.serve(stream, watcher) => {}
                () = abort.cancelled() => {}
            }
            drop(ticket);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

struct Connection {
    builder: auto::Builder<TokioExecutor>,
    app: Router,
    peer: SocketAddr,
    header_read_timeout: Duration,
}

impl Connection {
    async fn serve(self, stream: TcpStream, watcher: hyper_util::server::graceful::Watcher) {
        if !protocol_known(&stream, self.header_read_timeout).await {
            return;
        }
        let peer = self.peer;
        // The router reads the client's address from ConnectInfo, as under axum::serve.
        let service = self.app.map_request(move |request: Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let connection = self
            .builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        if let Err(e) = watcher.watch(connection).await {
            tracing::debug!(%peer, error = %e, "connection ended");
        }
    }
}

/// Waits until the first bytes tell HTTP/1 from HTTP/2, for at most `within`; `false` if
/// they do not come, or the client closed. hyper's header timeout only starts once the
/// protocol is known: a client that connected and said nothing would otherwise be kept for
/// ever.
async fn protocol_known(stream: &TcpStream, within: Duration) -> bool {
    let known = async {
        let mut start = [0u8; H2_PREFACE.len()];
        loop {
            let n = match stream.peek(&mut start).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            };
            if n == start.len() || start[..n] != H2_PREFACE[..n] {
                return true;
            }
            // Part of the HTTP/2 preface: peeking again would answer at once with the same
            // bytes.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(within, known).await.unwrap_or(false)
}

/// Tells a connection beyond its address's limit why it is closed, if it can without
/// waiting, and closes it.
fn refuse(stream: &TcpStream) {
    metrics::counter!("flisthub_connections_refused_total").increment(1);
    let answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 5\r\nConnection: close\r\n\r\n{TOO_MANY_CONNECTIONS}",
        TOO_MANY_CONNECTIONS.len()
    );
    let _ = stream.try_write(answer.as_bytes());
}

/// A failed accept: a connection that went away before it was accepted is nothing; anything
/// else (no file descriptor left) is logged, and accepting pauses for a moment so that the
/// hub does not spin.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
