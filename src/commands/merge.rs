use std::path::PathBuf;

use anyhow::{Context, Result};
use flist::Flist;

use crate::ui::{self, Ui};

#[derive(clap::Args)]
pub struct Args {
    /// The flists to layer, in order: on every path the first one that has it wins, later
    /// ones only fill gaps; metadata comes from the first.
    #[arg(required = true)]
    sources: Vec<PathBuf>,
    /// The flist to write.
    #[arg(short, long)]
    output: PathBuf,
}

pub fn run(args: Args, ui: &Ui) -> Result<()> {
    let flists = args
        .sources
        .iter()
        .map(|path| Flist::open(path).with_context(|| format!("{}", path.display())))
        .collect::<Result<Vec<_>>>()?;
    let sources: Vec<&Flist> = flists.iter().collect();
    let totals = flist::merge(&sources, &args.output)?;
    ui.say(format!(
        "wrote {}: {} files, {} directories, {} of content",
        args.output.display(),
        ui::count(totals.files),
        ui::count(totals.directories),
        ui::bytes(totals.bytes)
    ));
    Ok(())
}
