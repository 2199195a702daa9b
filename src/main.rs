//! `flisthub`: the flisthub command line.

#![forbid(unsafe_code)]

mod blocks;
mod client;
mod commands;
mod config;
mod formats;
mod stores;
mod ui;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "flisthub",
    version,
    about = "Pack filesystem trees into flists and back, and run the hub that serves them"
)]
struct Cli {
    /// No progress bars or summaries (errors are still reported).
    #[arg(short, long, global = true)]
    quiet: bool,

    /// More log output (-v: debug, -vv: trace). `FLISTHUB_LOG` takes a full filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Configuration file (default: ~/.config/flisthub/config.toml, if it exists).
    #[arg(long, global = true, env = "FLISTHUB_CONFIG")]
    config: Option<std::path::PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pack a directory or a tar archive (plain, gzip or zstd; `-` for stdin) into an flist.
    Pack(commands::pack::Args),
    /// List the entries of an flist (flisthub's, a 0-flist or an fl file), like `ls -l`.
    Ls(commands::ls::Args),
    /// Show an flist's metadata and totals.
    Inspect(commands::inspect::Args),
    /// Write one file of an flist to standard output.
    Cat(commands::cat::Args),
    /// Recreate the tree of an flist in a directory.
    Extract(commands::extract::Args),
    /// Layer several flists into one (the first wins on every path), as 0-hub's merge does.
    Merge(commands::merge::Args),
    /// Convert a container image (from its registry, or the local Docker daemon) into an
    /// flist.
    Convert(commands::convert::Args),
    /// Look after a chunk store: statistics, repair of replicas.
    #[command(subcommand)]
    Store(commands::store::Command),
    /// Collect the garbage of a hub's chunk store: what no flist names and nobody stored or
    /// asked about within the grace period ([gc] grace).
    Gc(commands::gc::Args),
    /// Apply the hub's retention policies: delete the flists no rule keeps (never one a
    /// link or a tag points at); the chunks they free go at the next garbage collection.
    Retention(commands::retention::Args),
    /// Check the hub's published flists: every chunk there (--deep: read and verified);
    /// with replicas, a missing or damaged copy is repaired from a sound one.
    Check(commands::check::Args),
    /// Run the hub: the 0-hub-compatible HTTP API, uploads, downloads.
    Serve(commands::serve::Args),
    /// Mint, list and revoke the hub's API tokens.
    #[command(subcommand)]
    Token(commands::token::Command),
    /// Add, change and remove the local accounts people log in with on the web pages.
    #[command(subcommand)]
    User(commands::user::Command),
    /// Pack here and publish on a hub, uploading only the chunks it lacks.
    Push(commands::push::Args),
    /// Check a hub token and keep it (with the hub's URL) for push.
    Login(commands::login::Args),
    /// Bring a 0-hub's public directory (repositories, flists, links, tags) into this hub,
    /// and the blocks of its flists from its 0-db; rerun it at will: it changes only what
    /// differs.
    #[command(name = "import-0hub")]
    Import0hub(commands::import::Args),
}

/// Options shared by the commands that read or write chunks.
// No Debug: the URL may hold a password.
#[derive(clap::Args, Clone)]
struct StoreArgs {
    /// Chunk store URL: dir:///path, zdb://host:port/namespace, redis://host:port/db,
    /// rediss://..., redis+cluster://host:port,host:port (see the README). Default: the
    /// configuration's [store]; else, for reading, the routes recorded in the flist; else the
    /// local store in the user's data directory.
    #[arg(long, env = "FLISTHUB_STORE")]
    store: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One TLS crypto provider for every client the process makes (rediss://, hubs,
    // registries): ring's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            return ExitCode::FAILURE;
        }
    };
    init_logs(&cli, &config);
    let ui = ui::Ui::new(cli.quiet);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cancel = converter::Cancel::default();
    let result = runtime.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(stop_on_signals(cancel.clone(), stop_tx));
        match cli.command {
            Command::Pack(args) => commands::pack::run(args, &config, &ui, cancel).await,
            Command::Ls(args) => commands::ls::run(args).await,
            Command::Inspect(args) => commands::inspect::run(args).await,
            Command::Cat(args) => commands::cat::run(args, &config).await,
            Command::Extract(args) => commands::extract::run(args, &config, &ui, cancel).await,
            Command::Merge(args) => commands::merge::run(args, &ui),
            Command::Convert(args) => commands::convert::run(args, &config, &ui, cancel).await,
            Command::Store(command) => commands::store::run(command, &config, &ui).await,
            Command::Serve(args) => {
                let config = commands::serve::configure(args, config)?;
                let mut stop = stop_rx;
                let stopped = async move {
                    let _ = stop.wait_for(|stopping| *stopping).await;
                };
                commands::serve::run(config, stopped).await
            }
            Command::Gc(args) => commands::gc::run(args, config, &ui).await,
            Command::Retention(args) => commands::retention::run(args, config, &ui).await,
            Command::Check(args) => commands::check::run(args, config, &ui).await,
            Command::Token(command) => commands::token::run(command, config),
            Command::User(command) => commands::user::run(command, config),
            Command::Push(args) => commands::push::run(args, &ui, cancel).await,
            Command::Login(args) => commands::login::run(args, &ui).await,
            Command::Import0hub(args) => commands::import::run(args, config, &ui).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`flisthub ls ... | head`): not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::from(141),
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            let cancelled = e
                .downcast_ref::<converter::Error>()
                .is_some_and(|e| matches!(e, converter::Error::Cancelled));
            ExitCode::from(if cancelled { 130 } else { 1 })
        }
    }
}

/// Logs go to stderr: warnings by default, request logs and more for the hub, as JSON
/// when the configuration says so. `FLISTHUB_LOG` takes a full filter.
fn init_logs(cli: &Cli, config: &config::Config) {
    let serving = matches!(cli.command, Command::Serve(_));
    let default_level = match (cli.verbose, serving) {
        (0, false) => "warn",
        (0, true) => "info",
        (1, _) => "debug",
        _ => "trace",
    };
    let filter =
        EnvFilter::try_from_env("FLISTHUB_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if serving && config.server.log_format == hub::LogFormat::Json {
        logs.json().init();
    } else {
        logs.init();
    }
}

/// The first Ctrl-C or SIGTERM asks the running pipeline to stop (it cleans up and leaves
/// no partial flist) or the hub to shut down gracefully; a second one quits at once.
async fn stop_on_signals(cancel: converter::Cancel, stop: tokio::sync::watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    for round in 0.. {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        if round > 0 {
            std::process::exit(130);
        }
        eprintln!("\nstopping; press Ctrl-C again to quit at once");
        cancel.cancel();
        let _ = stop.send(true);
    }
}

/// The error and its causes, each cause added only if the message does not already say it
/// (our errors include their cause in their own message).
fn describe(e: &anyhow::Error) -> String {
    let mut message = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !message.contains(&cause) {
            message.push_str(": ");
            message.push_str(&cause);
        }
    }
    message
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
