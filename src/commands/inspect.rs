use std::path::PathBuf;

use anyhow::Result;
use flist::Flist;
use serde_json::{Map, Value};

use crate::ui;

#[derive(clap::Args)]
pub struct Args {
    flist: PathBuf,
    /// Print metadata and totals as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let flist = Flist::open(&args.flist)?;
    let metadata = flist.metadata()?;
    let totals = flist.totals()?;
    let size = std::fs::metadata(&args.flist)?.len();
    if args.json {
        // JSON metadata values are shown parsed, others as strings (as 0-hub's API does).
        let metadata: Map<String, Value> = metadata
            .iter()
            .map(|(k, v)| {
                let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
                (k.to_owned(), value)
            })
            .collect();
        let report = serde_json::json!({
            "flist": args.flist.display().to_string(),
            "size": size,
            "metadata": metadata,
            "totals": totals,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "flist        {} ({})",
        args.flist.display(),
        ui::bytes(size)
    );
    for (key, value) in metadata.iter() {
        println!(
            "{key:<12} {}",
            crate::commands::ls::printable(value.as_bytes())
        );
    }
    println!("files        {}", ui::count(totals.files));
    println!("directories  {}", ui::count(totals.directories));
    println!("symlinks     {}", ui::count(totals.symlinks));
    println!("special      {}", ui::count(totals.specials));
    println!("hardlinks    {}", ui::count(totals.hardlinks));
    println!(
        "bytes        {} ({})",
        ui::count(totals.bytes),
        ui::bytes(totals.bytes)
    );
    println!(
        "chunks       {} ({} distinct)",
        ui::count(totals.chunks),
        ui::count(totals.unique_chunks)
    );
    Ok(())
}
