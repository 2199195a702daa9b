use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use converter::{ExtractOptions, Progress};

use crate::StoreArgs;
use crate::formats::Opened;
use crate::ui::{self, Ui};

#[derive(clap::Args)]
pub struct Args {
    /// The flist (flisthub's, a 0-flist or an fl file): a file, or its URL on a hub
    /// (downloaded, and checked against the hub's digest of it).
    flist: PathBuf,
    /// Directory to recreate the tree in (created if missing).
    dest: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
    /// Restore owners even when not running as root (by default only root does, as tar).
    #[arg(long, conflicts_with = "no_same_owner")]
    same_owner: bool,
    /// Do not restore owners, even as root.
    #[arg(long)]
    no_same_owner: bool,
}

pub async fn run(
    args: Args,
    config: &crate::config::Config,
    ui: &Ui,
    cancel: converter::Cancel,
) -> Result<()> {
    let local = crate::client::local_flist(&args.flist).await?;
    let named = args.store.store.as_deref();
    let opened = crate::formats::open(&local)?;
    let total = match &opened {
        Opened::Native => flist::Flist::open(&local.path)?.totals()?.bytes,
        Opened::Legacy(flist) => flist.totals().bytes,
    };
    let progress = Arc::new(Progress::default());
    let summary = {
        let _bar = ui.track(&progress, |p| &p.content_bytes, Some(total), "extracting");
        let options = ExtractOptions {
            preserve_owner: match (args.same_owner, args.no_same_owner) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            cancel,
            ..ExtractOptions::default()
        };
        let dest = args.dest.clone();
        match opened {
            Opened::Native => {
                let store = crate::stores::for_reading(named, config, &local).await?;
                let flist = local.path.clone();
                converter::extract(flist, dest, store, options, progress).await?
            }
            Opened::Legacy(flist) => {
                let blocks = crate::blocks::for_reading(named, config, &local, &flist).await?;
                converter::extract_legacy(flist, dest, blocks, options, progress).await?
            }
        }
    };
    for warning in &summary.warnings {
        ui.say(format!("warning: {warning}"));
    }
    ui.say(format!(
        "extracted {} entries ({} files, {}) to {} in {:.2} s ({})",
        ui::count(summary.entries),
        ui::count(summary.files),
        ui::bytes(summary.bytes),
        args.dest.display(),
        summary.elapsed.as_secs_f64(),
        ui::rate(summary.bytes, summary.elapsed)
    ));
    Ok(())
}
