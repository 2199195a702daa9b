//! How `flisthub gc --data-dir D` (and `flisthub retention`) reach the hub serving `D`: a
//! Unix socket in the data directory (`gc.sock`), which only those who may write the data
//! directory can open, so that no token is needed. The command writes one line: `run` or
//! `dry-run` (a collection), or `retention` or `retention-dry-run`, optionally followed by
//! a space and one repository's name; the hub answers the run's report as JSON, or
//! `error: <message>`, and closes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::{Collector, Report};
use crate::error::{Error, Result};
use crate::names::Names;
use crate::retention::{self, Retention};

/// The socket's name in the data directory.
pub const SOCKET: &str = "gc.sock";

/// Longest request line (a request and a repository name).
const REQUEST_MAX: u64 = 320;

/// What the socket answers for.
pub(crate) struct Control {
    pub collector: Arc<Collector>,
    pub retention: Arc<Retention>,
    pub names: Names,
}

/// Listens on `<data_dir>/gc.sock` until aborted. Call with `serve.lock` held: a socket
/// left by an earlier run is then stale and replaced.
pub(crate) fn listen(control: Control, data_dir: &Path) -> Result<tokio::task::JoinHandle<()>> {
    let control = Arc::new(control);
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
            let control = Arc::clone(&control);
            tokio::spawn(async move {
                if let Err(e) = answer(stream, &control).await {
                    tracing::warn!(error = %e, "answering a garbage collection request");
                }
            });
        }
    }))
}

async fn answer(stream: UnixStream, control: &Control) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read)
        .take(REQUEST_MAX)
        .read_line(&mut line)
        .await?;
    let text = match run(control, line.trim_end_matches('\n')).await {
        Ok(json) => json,
        Err(e) => format!("error: {e}"),
    };
    write.write_all(text.as_bytes()).await?;
    write.shutdown().await
}

/// Runs what `line` asks for; its report as JSON.
async fn run(control: &Control, line: &str) -> Result<String> {
    fn json(report: &impl serde::Serialize) -> Result<String> {
        serde_json::to_string(report).map_err(|e| Error::Internal(e.to_string()))
    }
    let (request, repository) = match line.split_once(' ') {
        Some((request, repository)) => (request, Some(control.names.repository(repository)?)),
        None => (line, None),
    };
    match (request, repository) {
        ("run", None) => json(&control.collector.run(false).await?),
        ("dry-run", None) => json(&control.collector.run(true).await?),
        ("retention" | "retention-dry-run", only) => {
            let dry_run = request == "retention-dry-run";
            let retention = &control.retention;
            json(
                &retention
                    .run(only.as_ref(), dry_run, retention::ACTOR)
                    .await?,
            )
        }
        _ => Err(Error::BadRequest(format!("unknown request {line:?}"))),
    }
}

/// Asks the hub serving `data_dir` for a run.
pub async fn ask(data_dir: &Path, dry_run: bool) -> Result<Report> {
    let request = if dry_run { "dry-run" } else { "run" };
    parse(&request_line(data_dir, request).await?)
}

/// Asks the hub serving `data_dir` to apply the retention policies (of `only`, or all).
pub async fn ask_retention(
    data_dir: &Path,
    only: Option<&str>,
    dry_run: bool,
) -> Result<retention::Report> {
    let mut request = String::from(if dry_run {
        "retention-dry-run"
    } else {
        "retention"
    });
    if let Some(repository) = only {
        request = format!("{request} {repository}");
    }
    parse(&request_line(data_dir, &request).await?)
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    if let Some(message) = text.strip_prefix("error: ") {
        return Err(Error::Unavailable(format!("the serving hub: {message}")));
    }
    serde_json::from_str(text)
        .map_err(|e| Error::Internal(format!("the serving hub's answer: {e}")))
}

/// Sends one request line to the hub serving `data_dir`; its whole answer.
async fn request_line(data_dir: &Path, request: &str) -> Result<String> {
    let path: PathBuf = data_dir.join(SOCKET);
    let mut stream = UnixStream::connect(&path).await.map_err(|e| {
        Error::Unavailable(format!(
            "{}: the hub serving this data directory does not answer: {e}",
            path.display()
        ))
    })?;
    stream
        .write_all(format!("{request}\n").as_bytes())
        .await
        .map_err(|e| Error::io(path.display(), e))?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .await
        .map_err(|e| Error::io(path.display(), e))?;
    Ok(text)
}
