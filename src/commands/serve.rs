use std::path::PathBuf;

use anyhow::Result;
use chunkstore::StoreConfig;

#[derive(clap::Args)]
pub struct Args {
    /// Address and port to listen on (server.listen).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<std::net::SocketAddr>,
    /// Where the hub keeps its database, flists and, by default, its chunks
    /// (server.data-dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The chunk store to write to, instead of the configuration's [store].
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// The URL clients reach the hub at (server.public-url).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
}

/// Applies the flags over the configuration.
pub fn configure(args: Args, mut config: hub::Config) -> Result<hub::Config> {
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.server.data_dir = Some(dir);
    }
    if let Some(url) = args.store {
        config.store = Some(StoreConfig {
            url: Some(url),
            ..StoreConfig::default()
        });
    }
    if let Some(url) = args.public_url {
        anyhow::ensure!(
            url.starts_with("http://") || url.starts_with("https://"),
            "--public-url {url:?}: must start with http:// or https://"
        );
        config.server.public_url = Some(url);
    }
    Ok(config)
}

pub async fn run(
    config: hub::Config,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    Ok(hub::serve_with(config, stop, web::app).await?)
}
