//! A running hub's connections under hostile clients: a flood of half-sent requests, more
//! connections from one address than it may hold, and an upload slower than the floor.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::hub::*;
use common::*;

/// Opens `count` connections from `source` (any 127.x.y.z address is this machine's), each
/// sending the start of a request line and then nothing.
fn half_sent(hub: SocketAddr, source: Ipv4Addr, count: usize) -> Vec<TcpStream> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use tokio::io::AsyncWriteExt;
        let mut streams = Vec::with_capacity(count);
        for i in 0..count {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(SocketAddr::new(source.into(), 0)).unwrap();
            let mut stream = tokio::time::timeout(Duration::from_secs(5), socket.connect(hub))
                .await
                .unwrap_or_else(|_| panic!("connection {i} from {source} not taken within 5 s"))
                .unwrap();
            stream.write_all(b"GET /api/v1/hea").await.unwrap();
            let stream = stream.into_std().unwrap();
            stream.set_nonblocking(false).unwrap();
            streams.push(stream);
        }
        streams
    })
}

/// Whether the hub has closed `stream` (with an answer or not, or a reset), waiting at most
/// `wait`.
fn closed_within(mut stream: &TcpStream, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// Whether the hub has closed `stream` already (without waiting).
fn closed_now(mut stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1024];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

/// `GET /api/v1/health` from 127.0.0.1: the status, or 0 if no answer came within `wait`.
fn health_within(url: &str, wait: Duration) -> u16 {
    let address = url.trim_start_matches("http://");
    let Ok(mut stream) = TcpStream::connect(address) else {
        return 0;
    };
    stream.set_read_timeout(Some(wait)).unwrap();
    let request =
        format!("GET /api/v1/health HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return 0;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Gives this test process the hard open-file limit (it holds over a thousand sockets).
fn raise_own_file_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    )
    .unwrap();
    limit.maximum
}

#[test]
fn half_sent_requests_neither_starve_the_hub_nor_stay_open() {
    // Long enough that a loaded machine opens every connection of a step within it: the
    // per-address step counts the connections closed before any header timeout could be.
    const TIMEOUT: Duration = Duration::from_secs(4);
    // The hub starts with the usual soft limit of 1024 files: it must raise it itself.
    let config = format!(
        "[server]\nheader-read-timeout = \"{}s\"\n",
        TIMEOUT.as_secs()
    );
    let Some(hub) = HubServer::start_with_file_limit(&config, 1024) else {
        return;
    };
    let hard = raise_own_file_limit();
    if let Some(hard) = hard {
        assert!(
            hub.log().contains(&format!("(open-file limit {hard})")),
            "{}",
            hub.log()
        );
    }
    let address: SocketAddr = hub.url.trim_start_matches("http://").parse().unwrap();

    // 1,100 stalled requests, from five addresses (each below the per-address limit).
    let first = Instant::now();
    let mut stalled: Vec<TcpStream> = Vec::new();
    for source in 2..7 {
        stalled.extend(half_sent(address, Ipv4Addr::new(127, 0, 0, source), 220));
    }
    let sent = Instant::now();
    let status = health_within(&hub.url, Duration::from_secs(5));
    let answered = sent.elapsed();
    assert_eq!(status, 200, "no answer to health within 5 s");
    assert!(
        answered < Duration::from_secs(1),
        "health answered after {answered:?}"
    );
    // None was closed before the header timeout; all are closed soon after it.
    let early = stalled.iter().filter(|s| closed_now(s)).count();
    if first.elapsed() < TIMEOUT - Duration::from_millis(200) {
        assert_eq!(early, 0, "closed before the header timeout");
    }
    let deadline = TIMEOUT + Duration::from_secs(4);
    let open = stalled
        .iter()
        .filter(|s| !closed_within(s, deadline.saturating_sub(sent.elapsed())))
        .count();
    assert_eq!(open, 0, "still open {deadline:?} after the last was sent");
    assert!(sent.elapsed() >= TIMEOUT - Duration::from_millis(500));
    eprintln!(
        "1,100 half-sent requests: health answered in {answered:?}; all closed {:?} after the last was sent",
        sent.elapsed()
    );

    // One address past its limit: the connections beyond it are closed at once, the others
    // kept (until their own header timeout).
    let limit = 256;
    let started = Instant::now();
    let crowd = half_sent(address, Ipv4Addr::new(127, 0, 0, 7), limit + 44);
    let opened = Instant::now();
    let mut closed = vec![false; crowd.len()];
    while opened.elapsed() < Duration::from_millis(1200) {
        for (stream, closed) in crowd.iter().zip(&mut closed) {
            if !*closed {
                *closed = closed_now(stream);
            }
        }
        if closed.iter().filter(|&&c| c).count() >= 44 {
            break;
        }
    }
    assert!(
        started.elapsed() < TIMEOUT,
        "opening the connections took {:?}, past the header timeout",
        started.elapsed()
    );
    assert_eq!(closed.iter().filter(|&&c| c).count(), 44, "refused at once");
    // Another address is still welcome.
    assert_eq!(health_within(&hub.url, Duration::from_secs(5)), 200);
}

#[test]
fn an_upload_slower_than_the_floor_is_cut_with_408_and_frees_its_slot() {
    let hub = HubServer::start(
        "[limits]\nupload-min-rate = \"64KiB\"\nupload-rate-window = \"2s\"\nconcurrent-uploads = 3\nuploads-per-identity = 1\n",
    );
    let token = hub.token("alice", &[]);
    let mut archive = member(b"data.bin", b'0', &noise(4 << 20, 9), b"");
    archive.extend(end_of_archive());
    let (content_type, body) = multipart_body(&[("file", Some("app.tar"), &archive)]);
    let address = hub.url.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "POST /api/flist/me/upload HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    // 8 KiB every 250 ms: 32 KiB/s, never silent for long.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writer = stream.try_clone().unwrap();
    let writing = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            for piece in body.chunks(8 << 10) {
                if stop.load(Ordering::Relaxed) || writer.write_all(piece).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    };
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&answer).contains("}\n") {
            break;
        }
    }
    let elapsed = started.elapsed();
    eprintln!("an upload at 32 KiB/s under a 64 KiB/s floor: cut after {elapsed:?}");
    stop.store(true, Ordering::Relaxed);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "{answer:?} after {elapsed:?}"
    );
    assert!(answer.contains("limits.upload-min-rate"), "{answer}");
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(8),
        "{elapsed:?}"
    );
    drop(stream);
    writing.join().unwrap();
    // The one slot this identity has is free again.
    assert_eq!(
        hub.upload(&token, "next.tar.gz", small_tarball("next"))
            .status(),
        200
    );
}
