use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chunkstore::ChunkStore;
use converter::{Limits, PackOptions, PackSummary, Progress};
use serde::Serialize;

use crate::StoreArgs;
use crate::ui::{self, Ui};

#[derive(clap::Args)]
pub struct Args {
    /// A directory, a tar archive (plain, .gz or .zst), or `-` for a tar stream on stdin.
    source: PathBuf,
    /// The flist to write (replaced atomically if it exists).
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
    /// zstd level for new chunks (1-22).
    #[arg(long, default_value_t = chunkstore::DEFAULT_LEVEL)]
    level: i32,
    /// Refuse inputs with more entries than this.
    #[arg(long, default_value_t = Limits::default().max_entries)]
    max_entries: u64,
    /// Refuse inputs whose files add up to more than this (bytes, or with K, M, G, T: 10G).
    #[arg(long, default_value = "1T", value_parser = parse_size)]
    max_size: u64,
    /// Refuse paths longer than this many bytes.
    #[arg(long, default_value_t = Limits::default().max_path_len)]
    max_path: usize,
    /// Refuse PAX records and GNU long names larger than this (bytes, or with K, M: 64K).
    #[arg(long, default_value = "64K", value_parser = parse_size)]
    max_header_record: u64,
    /// Refuse compressed archives that expand more than this many times their size past
    /// the first 64 MiB (0: no bound).
    #[arg(long, default_value_t = Limits::default().max_expansion_ratio)]
    max_ratio: u64,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub async fn run(
    args: Args,
    config: &crate::config::Config,
    ui: &Ui,
    cancel: converter::Cancel,
) -> Result<()> {
    let named = args.store.store.as_deref();
    let store = crate::stores::for_writing(named, config).await?;
    let location = store.location().to_owned();
    // Packed into the store of a hub on this machine: the flist records where that hub
    // serves the chunks, as the flists it publishes do, so that it reads anywhere once
    // published with `upload-flist`.
    let local_hub = hub::local_hub(config, store.as_ref(), named.is_none());
    let options = PackOptions {
        metadata: local_hub
            .as_ref()
            .map(|hub| hub.location.metadata())
            .unwrap_or_default(),
        level: args.level,
        limits: Limits {
            max_entries: args.max_entries,
            max_total_size: args.max_size,
            max_path_len: args.max_path,
            max_header_record: args.max_header_record,
            max_expansion_ratio: args.max_ratio,
            ..Limits::default()
        },
        cancel,
        ..PackOptions::default()
    };
    let summary = pack_source(&args.source, args.output.clone(), store, options, ui).await?;
    let hub_note = local_hub.as_ref().map(hub_note);
    if args.json {
        let mut report = Report::new(&summary, &args.output, &location);
        report.hub = hub_note.as_deref();
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report(ui, &summary, &args.output, &location);
        if let Some(note) = &hub_note {
            ui.say(format!("  hub      {note}"));
        }
    }
    Ok(())
}

/// What the summary says of a pack into a hub's own store.
fn hub_note(hub: &hub::LocalHub) -> String {
    let state = if hub.serving {
        "the running hub's store"
    } else {
        "the store of the hub (not running now)"
    };
    format!(
        "{state} of {}; the flist records {} as where its chunks are",
        hub.data_dir.display(),
        hub.location.routes.join(", ")
    )
}

/// Packs a directory, a tar archive or `-` (a tar stream on stdin) into `out`, with a
/// progress bar.
pub async fn pack_source(
    source: &Path,
    out: PathBuf,
    store: Arc<dyn ChunkStore>,
    options: PackOptions,
    ui: &Ui,
) -> Result<PackSummary> {
    let progress = Arc::new(Progress::default());
    if source.as_os_str() == "-" {
        let _bar = ui.track(&progress, |p| &p.input_bytes, None, "packing stdin");
        let stdin = std::io::stdin();
        return Ok(converter::pack_tar(stdin, "-".into(), out, store, options, progress).await?);
    }
    let meta = std::fs::metadata(source).with_context(|| format!("{}", source.display()))?;
    if meta.is_dir() {
        let _bar = ui.track(&progress, |p| &p.content_bytes, None, "packing");
        Ok(converter::pack_dir(source.to_owned(), out, store, options, progress).await?)
    } else if meta.is_file() {
        let file = File::open(source).with_context(|| format!("{}", source.display()))?;
        let name = source
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _bar = ui.track(&progress, |p| &p.input_bytes, Some(meta.len()), "packing");
        Ok(converter::pack_tar(file, name, out, store, options, progress).await?)
    } else {
        bail!("{}: neither a directory nor a file", source.display());
    }
}

fn parse_size(text: &str) -> Result<u64, String> {
    chunkstore::parse_size(text)
        .map(|n| n as u64)
        .ok_or_else(|| format!("{text:?} is not a size (bytes, or with K, M, G, T)"))
}

fn report(ui: &Ui, s: &PackSummary, out: &std::path::Path, location: &str) {
    let t = &s.totals;
    ui.say(format!("wrote {}", out.display()));
    ui.say(format!(
        "  entries  {} files, {} directories, {} symlinks, {} special, {} hardlinks",
        ui::count(t.files),
        ui::count(t.directories),
        ui::count(t.symlinks),
        ui::count(t.specials),
        ui::count(t.hardlinks)
    ));
    ui.say(format!(
        "  read     {} of file content in {:.2} s ({})",
        ui::bytes(s.content_bytes),
        s.elapsed.as_secs_f64(),
        ui::rate(s.content_bytes, s.elapsed)
    ));
    ui.say(format!(
        "  chunks   {} total: {} new, {} already stored",
        ui::count(s.chunks),
        ui::count(s.new_chunks),
        ui::count(s.chunks - s.new_chunks)
    ));
    ui.say(format!(
        "  written  {} to {location}",
        ui::bytes(s.stored_bytes)
    ));
}

/// The `--json` summary.
#[derive(Serialize)]
struct Report<'a> {
    flist: String,
    store: &'a str,
    totals: flist::Totals,
    input_bytes: u64,
    content_bytes: u64,
    chunks: u64,
    new_chunks: u64,
    stored_chunks: u64,
    stored_bytes: u64,
    seconds: f64,
    /// Set when the store is a hub's on this machine (see `hub_note`).
    #[serde(skip_serializing_if = "Option::is_none")]
    hub: Option<&'a str>,
}

impl<'a> Report<'a> {
    fn new(s: &PackSummary, out: &std::path::Path, store: &'a str) -> Report<'a> {
        Report {
            flist: out.display().to_string(),
            store,
            totals: s.totals,
            input_bytes: s.input_bytes,
            content_bytes: s.content_bytes,
            chunks: s.chunks,
            new_chunks: s.new_chunks,
            stored_chunks: s.chunks - s.new_chunks,
            stored_bytes: s.stored_bytes,
            seconds: s.elapsed.as_secs_f64(),
            hub: None,
        }
    }
}
