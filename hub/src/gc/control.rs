//! How `flisthub gc --data-dir D` (and `flisthub retention`, `flisthub check`) reach the
//! hub serving `D`: a Unix socket in the data directory (`gc.sock`), which only those who
//! may write the data directory can open, so that no token is needed. The command writes
//! one [`Request`] as a line of JSON (`{"run": "gc", "dry-run": false}`,
//! `{"run": "retention", "dry-run": true, "repository": "alice"}`,
//! `{"run": "scrub", "deep": true}`); the hub answers the run's report as JSON, or
//! `error: <message>`, and closes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use serde::{Deserialize, Serialize};

use super::{Collector, Report};
use crate::error::{Error, Result};
use crate::names::Names;
use crate::retention::{self, Retention};
use crate::scrub::{self, Scrubber};

/// The socket's name in the data directory.
pub const SOCKET: &str = "gc.sock";

/// Longest request line (a request and a repository name).
const REQUEST_MAX: u64 = 512;

/// What the command asks for.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "run", rename_all = "kebab-case", deny_unknown_fields)]
enum Request {
    Gc {
        #[serde(rename = "dry-run")]
        dry_run: bool,
    },
    Retention {
        #[serde(rename = "dry-run")]
        dry_run: bool,
        #[serde(default)]
        repository: Option<String>,
    },
    Scrub {
        deep: bool,
        #[serde(default)]
        repository: Option<String>,
    },
}

/// What the socket answers for.
pub(crate) struct Control {
    pub collector: Arc<Collector>,
    pub retention: Arc<Retention>,
    pub scrubber: Arc<Scrubber>,
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
    fn json(report: &impl Serialize) -> Result<String> {
        serde_json::to_string(report).map_err(|e| Error::Internal(e.to_string()))
    }
    let request: Request =
        serde_json::from_str(line).map_err(|e| Error::BadRequest(format!("not a request: {e}")))?;
    let repository =
        |name: Option<String>| name.map(|name| control.names.repository(&name)).transpose();
    match request {
        Request::Gc { dry_run } => json(&control.collector.run(dry_run).await?),
        Request::Retention {
            dry_run,
            repository: only,
        } => {
            let only = repository(only)?;
            let retention = &control.retention;
            json(
                &retention
                    .run(only.as_ref(), dry_run, retention::ACTOR)
                    .await?,
            )
        }
        Request::Scrub {
            deep,
            repository: only,
        } => {
            let only = repository(only)?;
            json(&control.scrubber.run(only.as_ref(), deep).await?)
        }
    }
}

/// Asks the hub serving `data_dir` for a run.
pub async fn ask(data_dir: &Path, dry_run: bool) -> Result<Report> {
    parse(&request(data_dir, &Request::Gc { dry_run }).await?)
}

/// Asks the hub serving `data_dir` to apply the retention policies (of `only`, or all).
pub async fn ask_retention(
    data_dir: &Path,
    only: Option<&str>,
    dry_run: bool,
) -> Result<retention::Report> {
    let repository = only.map(str::to_owned);
    parse(
        &request(
            data_dir,
            &Request::Retention {
                dry_run,
                repository,
            },
        )
        .await?,
    )
}

/// Asks the hub serving `data_dir` for an integrity scrub (of the flists of `only`, or all).
pub async fn ask_scrub(data_dir: &Path, only: Option<&str>, deep: bool) -> Result<scrub::Report> {
    let repository = only.map(str::to_owned);
    parse(&request(data_dir, &Request::Scrub { deep, repository }).await?)
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    if let Some(message) = text.strip_prefix("error: ") {
        return Err(Error::Unavailable(format!("the serving hub: {message}")));
    }
    serde_json::from_str(text)
        .map_err(|e| Error::Internal(format!("the serving hub's answer: {e}")))
}

/// Sends one request to the hub serving `data_dir`; its whole answer.
async fn request(data_dir: &Path, request: &Request) -> Result<String> {
    let request = serde_json::to_string(request).map_err(|e| Error::Internal(e.to_string()))?;
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

#[cfg(test)]
mod tests {
    use super::Request;

    #[test]
    fn a_request_is_one_line_of_json_and_anything_else_is_refused() {
        let scrub = Request::Scrub {
            deep: true,
            repository: Some("alice".into()),
        };
        let line = serde_json::to_string(&scrub).unwrap();
        assert_eq!(line, r#"{"run":"scrub","deep":true,"repository":"alice"}"#);
        let gc: Request = serde_json::from_str(r#"{"run":"gc","dry-run":true}"#).unwrap();
        assert!(matches!(gc, Request::Gc { dry_run: true }));
        for bad in [
            "run",
            r#"{"run":"gc"}"#,
            r#"{"run":"gc","dry-run":false,"deep":true}"#,
            r#"{"run":"fsck","deep":true}"#,
            r#"{"run":"scrub","deep":"yes"}"#,
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }
}
