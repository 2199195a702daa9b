use std::path::PathBuf;

use anyhow::Result;
use converter::LegacyFlist;
use flist::Flist;
use serde_json::{Map, Value, json};

use crate::client::LocalFlist;
use crate::formats::Opened;
use crate::ui;

#[derive(clap::Args)]
pub struct Args {
    /// The flist (flisthub's, a 0-flist or an fl file): a file, or its URL on a hub.
    flist: PathBuf,
    /// Print metadata and totals as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> Result<()> {
    let local = crate::client::local_flist(&args.flist).await?;
    let size = std::fs::metadata(&local.path)?.len();
    match crate::formats::open(&local)? {
        Opened::Native => native(&args, &local, size),
        Opened::Legacy(flist) => legacy(&args, &local, size, &flist),
    }
}

/// JSON metadata values parsed, others as strings (as 0-hub's API shows them).
fn metadata_json<'a>(metadata: impl Iterator<Item = (&'a str, &'a str)>) -> Map<String, Value> {
    metadata
        .map(|(k, v)| {
            let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
            (k.to_owned(), value)
        })
        .collect()
}

/// The lines of the report, label and value, printed in two aligned columns (metadata
/// keys are as long as their writers make them).
#[derive(Default)]
struct Lines(Vec<Vec<String>>);

impl Lines {
    fn add(&mut self, label: &str, value: impl Into<String>) {
        self.0.push(vec![label.to_owned(), value.into()]);
    }

    fn header(local: &LocalFlist, size: u64) -> Lines {
        let mut lines = Lines::default();
        lines.add("flist", format!("{} ({})", local.shown, ui::bytes(size)));
        lines
    }

    fn metadata<'a>(&mut self, metadata: impl Iterator<Item = (&'a str, &'a str)>) {
        use crate::commands::ls::printable;
        for (key, value) in metadata {
            let row = vec![printable(key.as_bytes()), printable(value.as_bytes())];
            self.0.push(row);
        }
    }

    fn counts(&mut self, counts: &[(&str, u64)]) {
        for (label, n) in counts {
            self.add(label, ui::count(*n));
        }
    }

    /// The bytes of the files, and the pieces (chunks or blocks) that hold them.
    fn sizes(&mut self, bytes: u64, pieces: &str, total: u64, distinct: u64) {
        self.add(
            "bytes",
            format!("{} ({})", ui::count(bytes), ui::bytes(bytes)),
        );
        let (total, distinct) = (ui::count(total), ui::count(distinct));
        self.add(pieces, format!("{total} ({distinct} distinct)"));
    }

    fn print(self) {
        print!("{}", ui::columns(&self.0));
    }
}

fn native(args: &Args, local: &LocalFlist, size: u64) -> Result<()> {
    let flist = Flist::open(&local.path)?;
    let metadata = flist.metadata()?;
    let totals = flist.totals()?;
    if args.json {
        let report = json!({
            "flist": local.shown,
            "format": "native",
            "size": size,
            "metadata": metadata_json(metadata.iter()),
            "totals": totals,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let mut lines = Lines::header(local, size);
    lines.metadata(metadata.iter());
    lines.counts(&[
        ("files", totals.files),
        ("directories", totals.directories),
        ("symlinks", totals.symlinks),
        ("special", totals.specials),
        ("hardlinks", totals.hardlinks),
    ]);
    lines.sizes(totals.bytes, "chunks", totals.chunks, totals.unique_chunks);
    lines.print();
    Ok(())
}

/// Where a legacy file says its blocks are: a 0-flist's backend (its password left out),
/// or an fl file's routes (theirs too), or why they cannot be used.
fn stores(flist: &LegacyFlist) -> (Option<String>, Result<Vec<String>, String>) {
    let backend = match flist.backend() {
        Ok(Some(b)) => Some(format!(
            "zdb://{}:{}/{}{}",
            b.host,
            b.port,
            b.namespace.as_deref().unwrap_or("default"),
            if b.password.is_some() {
                " (with a password)"
            } else {
                ""
            }
        )),
        Ok(None) => None,
        Err(e) => Some(format!("unusable: {e}")),
    };
    let routes = flist
        .routes()
        .map(|routes| {
            routes
                .iter()
                .map(|r| {
                    format!(
                        "{:02x}-{:02x} {}",
                        r.start,
                        r.end,
                        crate::blocks::without_password(&r.url)
                    )
                })
                .collect()
        })
        .map_err(|e| e.to_string());
    (backend, routes)
}

fn legacy(args: &Args, local: &LocalFlist, size: u64, flist: &LegacyFlist) -> Result<()> {
    let format = crate::formats::name(flist.format());
    let metadata = flist
        .metadata()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()));
    let totals = flist.totals();
    let (backend, routes) = stores(flist);
    if args.json {
        let mut report = json!({
            "flist": local.shown,
            "format": format,
            "size": size,
            "metadata": metadata_json(metadata),
            "totals": {
                "files": totals.files,
                "directories": totals.directories,
                "symlinks": totals.symlinks,
                "specials": totals.specials,
                "bytes": totals.bytes,
                "blocks": totals.blocks,
                "distinct_blocks": flist.distinct_blocks(),
            },
        });
        if let Some(backend) = backend {
            report["backend"] = backend.into();
        }
        report["routes"] = match routes {
            Ok(routes) => routes.into(),
            Err(e) => json!({ "unusable": e }),
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let mut lines = Lines::header(local, size);
    lines.add("format", format);
    lines.metadata(metadata);
    if let Some(backend) = backend {
        lines.add("backend", backend);
    }
    match routes {
        Ok(routes) => {
            for route in routes {
                lines.add("route", route);
            }
        }
        Err(e) => lines.add("routes", format!("unusable: {e}")),
    }
    lines.counts(&[
        ("files", totals.files),
        ("directories", totals.directories),
        ("symlinks", totals.symlinks),
        ("special", totals.specials),
    ]);
    let distinct = flist.distinct_blocks();
    lines.sizes(totals.bytes, "blocks", totals.blocks, distinct);
    lines.print();
    Ok(())
}
