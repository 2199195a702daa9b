use std::io::{BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use anyhow::Result;

use crate::StoreArgs;
use crate::formats::Opened;

#[derive(clap::Args)]
pub struct Args {
    /// The flist (flisthub's, a 0-flist or an fl file): a file, or its URL on a hub.
    flist: PathBuf,
    /// Path of the file inside the flist (symlinks inside the flist are followed).
    path: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(args: Args, config: &crate::config::Config) -> Result<()> {
    let local = crate::client::local_flist(&args.flist).await?;
    let named = args.store.store.as_deref();
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout());
    let path = args.path.as_os_str().as_bytes().to_vec();
    match crate::formats::open(&local)? {
        Opened::Native => {
            let store = crate::stores::for_reading(named, config, &local).await?;
            converter::cat(local.path.clone(), path, store, &mut out).await?;
        }
        Opened::Legacy(flist) => {
            let blocks = crate::blocks::for_reading(named, config, &local, &flist).await?;
            converter::cat_legacy(&flist, &path, blocks, &mut out).await?;
        }
    }
    out.flush()?;
    Ok(())
}
