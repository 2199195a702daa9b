use std::io::{BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use anyhow::Result;

use crate::StoreArgs;

#[derive(clap::Args)]
pub struct Args {
    /// The flist: a file, or its URL on a hub.
    flist: PathBuf,
    /// Path of the file inside the flist (symlinks inside the flist are followed).
    path: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(args: Args, config: &crate::config::Config) -> Result<()> {
    let local = crate::client::local_flist(&args.flist).await?;
    let store = crate::stores::for_reading(args.store.store.as_deref(), config, &local).await?;
    let flist = local.path.clone();
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout());
    let path = args.path.as_os_str().as_bytes().to_vec();
    converter::cat(flist, path, store, &mut out).await?;
    out.flush()?;
    Ok(())
}
