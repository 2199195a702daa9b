//! What a handler leaves of a request body is read and thrown away before the answer goes
//! out, up to [`DRAIN_LIMIT`] bytes and [`DRAIN_TIME`], while the client keeps sending.
//!
//! A handler may answer without reading the whole body: a refused token, an archive the
//! converter rejected in its first bytes, a file past its limit. If the connection were then
//! closed with unread bytes in it, the kernel would reset it, and a client still sending
//! (curl, zflist) would see "connection reset" instead of the answer. Reading the rest is
//! what lets the answer arrive; the bounds keep a client from holding the hub with a body
//! nobody wants (beyond them the connection is closed as before). A client the hub cut off
//! for its pace (408) gets [`DRAIN_TIME_CUT`]: waiting ten seconds for a trickle is what the
//! cut is there to avoid.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as _, Frame, SizeHint};

/// The most bytes read after the handler is done.
const DRAIN_LIMIT: u64 = 64 << 20;
/// The longest time spent reading them.
const DRAIN_TIME: Duration = Duration::from_secs(10);
const DRAIN_TIME_CUT: Duration = Duration::from_secs(1);
/// A client that sends nothing for this long is not waited for.
const DRAIN_IDLE: Duration = Duration::from_secs(1);

pub async fn drain_unread_body(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let shared = Shared(Arc::new(Mutex::new(body)));
    let response = next
        .run(Request::from_parts(parts, Body::new(shared.clone())))
        .await;
    let time = if response.status() == StatusCode::REQUEST_TIMEOUT {
        DRAIN_TIME_CUT
    } else {
        DRAIN_TIME
    };
    let _ = tokio::time::timeout(time, shared.drain()).await;
    response
}

/// The request body, shared between the handler (which may drop its part early) and the
/// middleware (which reads what is left).
#[derive(Clone)]
struct Shared(Arc<Mutex<Body>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Body> {
        // Polling a body cannot leave it half-changed: a panic elsewhere is no reason to stop.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn drain(mut self) {
        let mut read = 0u64;
        while read <= DRAIN_LIMIT {
            let frame = std::future::poll_fn(|cx| Pin::new(&mut self).poll_frame(cx));
            match tokio::time::timeout(DRAIN_IDLE, frame).await {
                Ok(Some(Ok(frame))) => read += frame.data_ref().map_or(0, |d| d.len() as u64),
                Ok(Some(Err(_)) | None) | Err(_) => return,
            }
        }
    }
}

impl http_body::Body for Shared {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut *self.lock()).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.lock().is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.lock().size_hint()
    }
}
