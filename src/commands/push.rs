//! `flisthub push SOURCE --name NAME` (or `push --image IMAGE`): builds the flist here,
//! from a tree, an archive or a container image, uploads only the chunks the hub lacks
//! (asked in batches, several uploads in flight), then publishes the flist with
//! `upload-flist`. Run again after an interruption, it sends only what is still missing.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use converter::{PackOptions, PackSummary};
use serde::Serialize;

use crate::client::{HubArgs, HubClient, Published};
use crate::commands::convert::SourceArgs;
use crate::ui::{self, Ui};

#[derive(clap::Args)]
pub struct Args {
    /// A directory, a tar archive (plain, .gz or .zst), or `-` for a tar stream on stdin.
    #[arg(required_unless_present = "image", conflicts_with = "image")]
    source: Option<PathBuf>,
    /// A container image to convert here and push, as Docker names it (see `convert`).
    #[arg(long)]
    image: Option<String>,
    #[command(flatten)]
    image_source: SourceArgs,
    /// The flist's name on the hub (`.flist` is added if missing). Required with SOURCE (a
    /// directory, an archive or `-`); with --image, default: the name 0-hub gives it.
    #[arg(long, required_unless_present = "image")]
    name: Option<String>,
    #[command(flatten)]
    hub: HubArgs,
    /// zstd level for new chunks (1-22).
    #[arg(long, default_value_t = chunkstore::DEFAULT_LEVEL)]
    level: i32,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, ui: &Ui, cancel: converter::Cancel) -> Result<()> {
    let stdin_source = args.source.as_ref().is_some_and(|s| s.as_os_str() == "-")
        || args.image_source.password_stdin;
    if stdin_source && args.hub.token.as_deref() == Some("-") {
        anyhow::bail!("stdin cannot carry both the token and the tar stream or password");
    }
    if args.image.is_none() && args.image_source.given() {
        anyhow::bail!(
            "--platform, --daemon, --username, --insecure-registry and --no-startup-toml go with --image"
        );
    }
    // Read before anything is sent: a wrong password fails here, not after the push.
    let image = match &args.image {
        Some(image) => Some(args.image_source.request(image)?),
        None => None,
    };
    let client = HubClient::new(&args.hub)?;
    let repository = client.whoami().await?;
    let api = client.chunk_api().await?;
    let store = Arc::new(client.chunk_store()?.with_routes(api.routes));
    ui.say(format!("pushing to {} as {repository}", client.url));
    let name = match (&args.name, &args.image) {
        (Some(name), _) if name.ends_with(".flist") => name.clone(),
        (Some(name), _) => format!("{name}.flist"),
        (None, image) => converter::flist_name(image.as_deref().unwrap_or_default()),
    };
    let staging = tempfile::Builder::new()
        .prefix("flisthub-push-")
        .suffix(".flist")
        .tempfile()?
        .into_temp_path();
    let options = PackOptions {
        level: args.level,
        cancel,
        ..PackOptions::default()
    };
    let summary = match (image, &args.source) {
        (Some(request), _) => {
            let out = staging.to_path_buf();
            crate::commands::convert::convert(request, out, store, options, ui)
                .await?
                .pack
        }
        (None, Some(source)) => {
            let out = staging.to_path_buf();
            crate::commands::pack::pack_source(source, out, store, options, ui).await?
        }
        (None, None) => anyhow::bail!("nothing to push: give a SOURCE or --image"),
    };
    let published = client.upload_flist(&staging, &name).await?;
    let report = Report::new(&summary, &published, &repository);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.show(ui, &summary);
    }
    Ok(())
}

/// The summary of a push.
#[derive(Serialize)]
struct Report<'a> {
    repository: &'a str,
    name: &'a str,
    url: &'a str,
    md5: &'a str,
    chunks: u64,
    /// Chunks the hub already had.
    present: u64,
    /// Chunks sent, and their bytes as stored (compressed).
    uploaded: u64,
    uploaded_bytes: u64,
    content_bytes: u64,
    seconds: f64,
}

impl<'a> Report<'a> {
    fn new(s: &PackSummary, published: &'a Published, repository: &'a str) -> Report<'a> {
        Report {
            repository,
            name: &published.name,
            url: &published.url,
            md5: &published.md5,
            chunks: s.chunks,
            present: s.chunks - s.new_chunks,
            uploaded: s.new_chunks,
            uploaded_bytes: s.stored_bytes,
            content_bytes: s.content_bytes,
            seconds: s.elapsed.as_secs_f64(),
        }
    }

    fn show(&self, ui: &Ui, s: &PackSummary) {
        ui.say(format!("published {}", self.url));
        ui.say(format!("  md5      {}", self.md5));
        ui.say(format!(
            "  chunks   {} total: {} already on the hub, {} uploaded",
            ui::count(self.chunks),
            ui::count(self.present),
            ui::count(self.uploaded)
        ));
        ui.say(format!(
            "  sent     {} of chunks for {} of files in {:.2} s ({})",
            ui::bytes(self.uploaded_bytes),
            ui::bytes(self.content_bytes),
            self.seconds,
            ui::rate(s.content_bytes, s.elapsed)
        ));
    }
}
