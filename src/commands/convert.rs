//! `flisthub convert IMAGE -o OUT.flist`: a container image into an flist, from its
//! registry (default) or the local Docker daemon.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use converter::{Credentials, Egress, ImageRequest, ImageSource, PackOptions, Platform, Progress};

use crate::StoreArgs;
use crate::ui::{self, Ui};

#[derive(clap::Args)]
pub struct Args {
    /// The image, as Docker takes it: alpine:3.20, registry.example:5000/app, app@sha256:...
    image: String,
    /// The flist to write (default: the name 0-hub gives it, in the current directory).
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    source: SourceArgs,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// How to get an image: shared with `push --image`.
#[derive(clap::Args, Clone)]
pub struct SourceArgs {
    /// The platform to take from a multi-platform image (default: linux/amd64).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// Read the image from the local Docker daemon instead of its registry.
    #[arg(long)]
    daemon: bool,
    /// With --daemon: let the daemon pull the image first.
    #[arg(long, requires = "daemon")]
    pull: bool,
    /// Registry user name; the password is read from stdin (--password-stdin) or
    /// $FLISTHUB_REGISTRY_PASSWORD.
    #[arg(long)]
    username: Option<String>,
    /// Read the registry password from the first line of stdin.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// A registry (host[:port]) to reach over plain HTTP (loopback ones always are).
    /// Repeatable.
    #[arg(long, value_name = "HOST[:PORT]")]
    insecure_registry: Vec<String>,
    /// Do not add 0-hub's /.startup.toml.
    #[arg(long)]
    no_startup_toml: bool,
}

impl SourceArgs {
    /// Whether any of these options was given.
    pub fn given(&self) -> bool {
        self.platform.is_some()
            || self.daemon
            || self.username.is_some()
            || !self.insecure_registry.is_empty()
            || self.no_startup_toml
    }

    pub fn request(&self, image: &str) -> Result<ImageRequest> {
        let credentials = match &self.username {
            None => None,
            Some(username) => {
                let password = if self.password_stdin {
                    let mut line = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut line)
                        .context("reading the registry password from stdin")?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                } else {
                    std::env::var("FLISTHUB_REGISTRY_PASSWORD").context(
                        "--username needs a password: --password-stdin or $FLISTHUB_REGISTRY_PASSWORD",
                    )?
                };
                Some(Credentials {
                    username: username.clone(),
                    password,
                })
            }
        };
        Ok(ImageRequest {
            image: image.to_owned(),
            platform: self
                .platform
                .as_deref()
                .map(str::parse::<Platform>)
                .transpose()?,
            credentials,
            source: if self.daemon {
                ImageSource::Daemon { pull: self.pull }
            } else {
                ImageSource::Registry
            },
            insecure_registries: self.insecure_registry.clone(),
            // The operator's own command reaches what the operator's machine reaches.
            egress: Egress::Open,
            startup_toml: !self.no_startup_toml,
            timeout: Duration::from_secs(120),
            spool: std::env::temp_dir(),
        })
    }
}

pub async fn run(
    args: Args,
    config: &crate::config::Config,
    ui: &Ui,
    cancel: converter::Cancel,
) -> Result<()> {
    let request = args.source.request(&args.image)?;
    let store = crate::stores::for_writing(args.store.store.as_deref(), config).await?;
    let location = store.location().to_owned();
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(converter::flist_name(&args.image)));
    let options = PackOptions {
        cancel,
        ..PackOptions::default()
    };
    let summary = convert(request, output.clone(), store, options, ui).await?;
    if args.json {
        let report = serde_json::json!({
            "flist": output.display().to_string(),
            "image": summary.reference,
            "digest": summary.digest,
            "platform": summary.platform.as_ref().map(ToString::to_string),
            "store": location,
            "totals": summary.pack.totals,
            "chunks": summary.pack.chunks,
            "new_chunks": summary.pack.new_chunks,
            "stored_bytes": summary.pack.stored_bytes,
            "warnings": summary.warnings,
            "seconds": summary.pack.elapsed.as_secs_f64(),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    ui.say(format!(
        "wrote {} from {} ({})",
        output.display(),
        summary.reference,
        summary.digest
    ));
    ui.say(format!(
        "  {} files, {} of content, {} chunks ({} new, {} written to {location}) in {:.2} s",
        ui::count(summary.pack.totals.files),
        ui::bytes(summary.pack.content_bytes),
        ui::count(summary.pack.chunks),
        ui::count(summary.pack.new_chunks),
        ui::bytes(summary.pack.stored_bytes),
        summary.pack.elapsed.as_secs_f64()
    ));
    Ok(())
}

/// Converts with a progress bar; warnings about the image are printed.
pub async fn convert(
    request: ImageRequest,
    output: PathBuf,
    store: Arc<dyn chunkstore::ChunkStore>,
    options: PackOptions,
    ui: &Ui,
) -> Result<converter::ImageSummary> {
    let progress = Arc::new(Progress::default());
    let summary = {
        let _bar = ui.track_image(&progress, &request.image);
        converter::pack_image(request, output, store, options, Arc::clone(&progress)).await?
    };
    for warning in &summary.warnings {
        ui.say(format!("warning: {warning}"));
    }
    Ok(summary)
}
