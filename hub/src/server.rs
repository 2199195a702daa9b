//! `flisthub serve`: opens the hub, listens, and stops gracefully.

mod accept;
mod connections;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::gateway::Gateway;
use crate::http;
use crate::hub::Hub;
use connections::Admission;

/// How often finished jobs are expired and idle rate-limit state dropped.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);

/// Runs the hub until `stop` resolves (SIGTERM, Ctrl-C): then stops accepting
/// connections, lets requests and jobs in flight finish for up to `server.shutdown-grace`,
/// and returns.
pub async fn serve(config: Config, stop: impl Future<Output = ()> + Send + 'static) -> Result<()> {
    serve_with(config, stop, crate::router).await
}

/// [`serve`] with the HTTP interface `app` builds on the opened hub (the binary adds the
/// web pages with [`crate::router_with_pages`]).
pub async fn serve_with(
    mut config: Config,
    stop: impl Future<Output = ()> + Send + 'static,
    app: impl FnOnce(Arc<Hub>) -> axum::Router,
) -> Result<()> {
    // Connections are files: the soft limit (often 1024) is far below what a hub serves.
    let file_limit = connections::raise_file_limit();
    let listen = config.server.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Error::io(format!("listening on {listen}"), e))?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::io("the listening address", e))?;
    if config.server.public_url.is_none() {
        config.server.public_url = Some(default_public_url(address));
    }
    let gateway_listener = match config.gateway.listen {
        Some(address) => Some(Gateway::bind(address).await?),
        None => None,
    };
    let gateway_config = config.gateway.clone();
    let hub = Arc::new(Hub::open(config).await?);
    let admission = Admission::new(&hub.config().server, file_limit);
    announce(&hub, address, &admission, file_limit);
    let gateway_stop = CancellationToken::new();
    if let Some(listener) = gateway_listener {
        let listening = listener
            .local_addr()
            .map_err(|e| Error::io("the gateway's listening address", e))?;
        let public_url = gateway_config.public_url(listening);
        if gateway_config.public_url.is_none() {
            tracing::warn!(
                "gateway.public-url is not set: nodes and clients are told {public_url}"
            );
        }
        if public_url_is_loopback(&public_url) {
            tracing::warn!(
                "gateway.public-url {public_url} is a loopback address: no other machine can reach it"
            );
        }
        tracing::info!("0-db gateway listening on {listening} (public URL {public_url})");
        let gateway = Gateway::new(&hub, &gateway_config, public_url, gateway_stop.clone());
        tokio::spawn(Arc::new(gateway).serve(listener));
    }

    let housekeeping = tokio::spawn(housekeeping(Arc::clone(&hub)));
    let lifecycle = hub.lifecycle().clone();
    let collector = hub.collector().schedule();
    // Without it, `flisthub gc --data-dir` cannot reach this hub (and says so): no reason
    // not to serve.
    let control = crate::gc::control::Control {
        collector: Arc::clone(hub.collector()),
        retention: Arc::clone(hub.retention()),
        scrubber: Arc::clone(hub.scrubber()),
        names: hub.names(),
    };
    let control = crate::gc::control::listen(control, &hub.config().data_dir()?)
        .inspect_err(|e| tracing::warn!(error = %e, "no garbage collection socket"))
        .ok();
    let retention = hub.retention().schedule();
    let scrubber = hub.scrubber().schedule();
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel();
    let server = accept::serve(
        listener,
        app(Arc::clone(&hub)),
        admission,
        hub.config().server.header_read_timeout,
        async move {
            stop.await;
            let _ = stopped_tx.send(());
        },
        lifecycle.shutdown.clone(),
    );
    let mut server = tokio::spawn(server);
    tokio::select! {
        _ = stopped_rx => {}
        served = &mut server => {
            housekeeping.abort();
            collector.abort();
            scrubber.abort();
            if let Some(retention) = &retention {
                retention.abort();
            }
            if let Some(control) = &control {
        control.abort();
    }
            return served.map_err(Error::from);
        }
    }
    tracing::info!("stopping: no new connections; waiting for requests and jobs in flight");
    gateway_stop.cancel();
    // Requests in flight and background jobs have the grace period to finish; new uploads
    // on connections still open are refused.
    lifecycle.tasks.close();
    hub.limits().close();
    let grace = hub.config().server.shutdown_grace;
    let drained = tokio::time::timeout(grace, async {
        let _ = (&mut server).await;
        lifecycle.tasks.wait().await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            grace = %humantime::format_duration(grace),
            "requests or jobs still running after the grace period: cancelling them"
        );
        lifecycle.shutdown.cancel();
        server.abort();
        let _ = tokio::time::timeout(Duration::from_secs(10), lifecycle.tasks.wait()).await;
    }
    housekeeping.abort();
    collector.abort();
    scrubber.abort();
    if let Some(retention) = &retention {
        retention.abort();
    }
    if let Some(control) = &control {
        control.abort();
    }
    hub.collector().flush().await;
    tracing::info!("stopped");
    Ok(())
}

/// `http://<listening address>`; for a wildcard address (`0.0.0.0`, `::`), which is no
/// address a client can use, the machine's host name, with a word to set the real one.
fn default_public_url(address: SocketAddr) -> String {
    let url = if address.ip().is_unspecified() {
        let uname = rustix::system::uname();
        format!(
            "http://{}:{}",
            uname.nodename().to_string_lossy(),
            address.port()
        )
    } else {
        format!("http://{address}")
    };
    // Flists published on a hub with a `dir` store record the chunk API under this URL.
    tracing::warn!(
        "server.public-url is not set: the links the hub prints, and the routes of the flists it publishes on a dir store, use {url}"
    );
    url
}

fn announce(hub: &Hub, address: SocketAddr, admission: &Admission, file_limit: Option<u64>) {
    let config = hub.config();
    let data_dir = config
        .data_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    tracing::info!(
        "connections: at most {} open (open-file limit {}), {} per client address; request heads within {}",
        admission.max(),
        file_limit.map_or_else(|| "unlimited".to_owned(), |l| l.to_string()),
        admission
            .per_address()
            .map_or_else(|| "no limit".to_owned(), |l| l.to_string()),
        humantime::format_duration(config.server.header_read_timeout)
    );
    tracing::info!(
        "listening on http://{address} (public URL {}, data in {data_dir}, store {})",
        hub.catalogue().public_url(),
        hub.status().store_location()
    );
    if config.server.readonly {
        tracing::info!("read-only mode: /api/flist/me... answers 400");
    }
    if !hub.auth().enabled() {
        tracing::warn!("authentication is off: every caller is Administrator");
        return;
    }
    if matches!(hub.tokens().minted(), Ok(0)) {
        tracing::info!(
            "no token minted yet; mint one with: flisthub token create --user NAME --data-dir {data_dir}"
        );
    }
}

async fn housekeeping(hub: Arc<Hub>) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
    loop {
        tick.tick().await;
        match hub.jobs().expire(hub.config().jobs.retention).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(expired = n, "forgot finished jobs"),
            Err(e) => tracing::warn!(error = %e, "expiring jobs"),
        }
        hub.limits().forget_idle();
        if let Some(handle) = http::metrics_handle() {
            handle.run_upkeep();
        }
        metrics::gauge!("flisthub_jobs_running").set(hub.jobs().running() as f64);
    }
}

/// Whether a `zdb://host:port` URL names a loopback address (or `localhost`).
fn public_url_is_loopback(url: &str) -> bool {
    match chunkstore::parse_route(url) {
        Ok(chunkstore::StoreUrl::Zdb(zdb)) => {
            zdb.host == "localhost"
                || zdb
                    .host
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}
