//! `flisthub import-0hub`: a 0-hub's public directory (and, with `--blocks-from`, the
//! blocks of its flists) brought into a hub's data directory, beside the hub serving it or
//! not. The work is the hub's (`hub::Importer`); this prints its progress and summary.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::token::HubArgs;
use crate::ui::{self, Ui};

#[derive(clap::Args)]
pub struct Args {
    /// 0-hub's public directory (the one holding `users/`), or its `users/` directory.
    public_dir: PathBuf,
    /// The 0-db 0-hub's flists read their blocks from: every block the imported flists
    /// name is copied from it into the hub's store, checked against its id.
    #[arg(long, value_name = "zdb://HOST:PORT[/NAMESPACE]")]
    blocks_from: Option<String>,
    #[command(flatten)]
    hub: HubArgs,
}

pub async fn run(args: Args, mut config: hub::Config, ui: &Ui) -> Result<()> {
    if !args.public_dir.is_dir() {
        anyhow::bail!("{}: not a directory", args.public_dir.display());
    }
    if let Some(dir) = args.hub.data_dir {
        config.server.data_dir = Some(dir);
    }
    let from = args
        .blocks_from
        .as_deref()
        .map(hub::import_blocks_source)
        .transpose()?;
    let importer = hub::importer(&config).await?;
    let progress = Arc::new(hub::ImportProgress::default());
    let started = Instant::now();
    let bar = track(ui, &progress);
    let summary = importer
        .run(&args.public_dir, from, &progress)
        .await
        .context("importing the 0-hub tree")?;
    bar.finish_and_clear();
    report(ui, &summary, started.elapsed());
    Ok(())
}

/// A bar of the flist files dealt with, and the blocks copied so far.
fn track(ui: &Ui, progress: &Arc<hub::ImportProgress>) -> ProgressBar {
    if ui.quiet() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr()).with_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} flists, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let (shown, progress) = (bar.clone(), Arc::clone(progress));
    tokio::spawn(async move {
        while !shown.is_finished() {
            shown.set_length(progress.files_total.load(Ordering::Relaxed));
            shown.set_position(progress.files_done.load(Ordering::Relaxed));
            let blocks = &progress.blocks;
            shown.set_message(format!(
                "importing ({} blocks, {} copied)",
                ui::count(blocks.copied.load(Ordering::Relaxed)),
                ui::bytes(blocks.bytes.load(Ordering::Relaxed))
            ));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    bar
}

fn report(ui: &Ui, s: &hub::ImportSummary, elapsed: Duration) {
    let counted = |c: hub::Counted| format!("{} added, {} unchanged", c.added, c.unchanged);
    ui.say(format!(
        "imported {} repositories in {:.1}s{}",
        s.repositories,
        elapsed.as_secs_f64(),
        if s.changed() {
            ""
        } else {
            " (nothing changed)"
        }
    ));
    ui.say(format!("  flists:      {}", counted(s.flists)));
    ui.say(format!("  symlinks:    {}", counted(s.symlinks)));
    ui.say(format!("  tag members: {}", counted(s.tag_members)));
    ui.say(format!("  taglinks:    {}", counted(s.taglinks)));
    ui.say(format!("  times set:   {} repositories", s.times_set));
    ui.say(format!(
        "  blocks:      {} copied ({}, {}), {} already in the store",
        ui::count(s.blocks_copied),
        ui::bytes(s.block_bytes),
        ui::rate(s.block_bytes, elapsed),
        ui::count(s.blocks_present)
    ));
    if !s.official.is_empty() {
        ui.say(format!(
            "  official (from the configuration): {}",
            s.official.join(", ")
        ));
    }
    // What was not imported is always told, even with --quiet.
    if !s.skipped.is_empty() {
        eprintln!("skipped {} (not imported):", s.skipped.len());
        for skipped in &s.skipped {
            eprintln!("  {}: {}", skipped.path, skipped.reason);
        }
    }
}
