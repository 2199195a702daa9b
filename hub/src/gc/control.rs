//! How `flisthub gc --data-dir D` reaches the hub serving `D`: a Unix socket in the data
//! directory (`gc.sock`), which only those who may write the data directory can open, so
//! that no token is needed. The command writes `run` or `dry-run` and a newline; the hub
//! answers the run's report as JSON, or `error: <message>`, and closes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::{Collector, Report};
use crate::error::{Error, Result};

/// The socket's name in the data directory.
pub const SOCKET: &str = "gc.sock";

/// Longest request line.
const REQUEST_MAX: u64 = 64;

/// Listens on `<data_dir>/gc.sock` until aborted. Call with `serve.lock` held: a socket
/// left by an earlier run is then stale and replaced.
pub(crate) fn listen(
    collector: Arc<Collector>,
    data_dir: &Path,
) -> Result<tokio::task::JoinHandle<()>> {
    let path = data_dir.join(SOCKET);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(path.display(), e)),
    }
    let listener = UnixListener::bind(&path).map_err(|e| Error::io(path.display(), e))?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let collector = Arc::clone(&collector);
            tokio::spawn(async move {
                if let Err(e) = answer(stream, &collector).await {
                    tracing::warn!(error = %e, "answering a garbage collection request");
                }
            });
        }
    }))
}

async fn answer(stream: UnixStream, collector: &Collector) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read)
        .take(REQUEST_MAX)
        .read_line(&mut line)
        .await?;
    let answer = match line.trim_end() {
        "run" => collector.run(false).await,
        "dry-run" => collector.run(true).await,
        other => Err(Error::BadRequest(format!("unknown request {other:?}"))),
    };
    let text = match answer
        .and_then(|r| serde_json::to_string(&r).map_err(|e| Error::Internal(e.to_string())))
    {
        Ok(json) => json,
        Err(e) => format!("error: {e}"),
    };
    write.write_all(text.as_bytes()).await?;
    write.shutdown().await
}

/// Asks the hub serving `data_dir` for a run.
pub async fn ask(data_dir: &Path, dry_run: bool) -> Result<Report> {
    let path: PathBuf = data_dir.join(SOCKET);
    let mut stream = UnixStream::connect(&path).await.map_err(|e| {
        Error::Unavailable(format!(
            "{}: the hub serving this data directory does not answer: {e}",
            path.display()
        ))
    })?;
    let request = if dry_run { "dry-run\n" } else { "run\n" };
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| Error::io(path.display(), e))?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .await
        .map_err(|e| Error::io(path.display(), e))?;
    if let Some(message) = text.strip_prefix("error: ") {
        return Err(Error::Unavailable(format!("the serving hub: {message}")));
    }
    serde_json::from_str(&text)
        .map_err(|e| Error::Internal(format!("the serving hub's answer: {e}")))
}
