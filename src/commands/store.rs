use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chunkstore::ChunkKey;
use flist::{Flist, Kind, Walk};

use crate::StoreArgs;
use crate::config::Config;
use crate::ui::{self, Ui};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Chunk and block counts and sizes of each backend of the store.
    Stats {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Copy every chunk the given flists use to each replica it belongs on (after a backend
    /// was replaced or added), and report chunks no backend holds.
    Repair {
        /// Flists whose chunks to check.
        #[arg(required = true)]
        flists: Vec<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(command: Command, config: &Config, ui: &Ui) -> Result<()> {
    match command {
        Command::Stats { store } => {
            let store = crate::stores::for_writing(store.store.as_deref(), config).await?;
            for backend in store.stats().await? {
                let show = |n: Option<u64>, f: fn(u64) -> String| n.map_or("?".into(), f);
                // A backend that cannot tell blocks from chunks counts its keys.
                let keys = match (backend.keys, backend.blocks) {
                    (Some(keys), None) => format!("{} keys", ui::count(keys)),
                    (keys, blocks) => format!(
                        "{} chunks\t{} blocks",
                        show(keys, ui::count),
                        show(blocks, ui::count)
                    ),
                };
                println!(
                    "{}\t{keys}\t{}",
                    backend.location,
                    show(backend.bytes, ui::bytes)
                );
            }
        }
        Command::Repair { flists, store } => {
            let store = crate::stores::for_writing(store.store.as_deref(), config).await?;
            let keys = chunk_keys(&flists)?;
            ui.say(format!(
                "checking {} chunks on {}",
                ui::count(keys.len() as u64),
                store.location()
            ));
            let report = store.repair(&keys).await?;
            ui.say(format!(
                "checked {}, copied {}, missing everywhere {}, not reachable {}",
                ui::count(report.checked),
                ui::count(report.copied),
                ui::count(report.missing),
                ui::count(report.unreachable)
            ));
            if report.missing > 0 {
                anyhow::bail!("{} chunks are on no backend", report.missing);
            }
            if report.unreachable > 0 {
                anyhow::bail!(
                    "{} replicas could not be checked or written; run the repair again once every backend is up",
                    report.unreachable
                );
            }
        }
    }
    Ok(())
}

/// The distinct chunk keys of the flists.
fn chunk_keys(flists: &[PathBuf]) -> Result<Vec<ChunkKey>> {
    let mut keys = HashSet::new();
    for path in flists {
        let flist = Flist::open(path).with_context(|| path.display().to_string())?;
        flist.walk(|_, entry| {
            if entry.node.kind.kind() == Kind::Regular {
                keys.extend(flist.chunks(entry)?.iter().map(|c| ChunkKey::from(c.key)));
            }
            Ok(Walk::Continue)
        })?;
    }
    Ok(keys.into_iter().collect())
}
