use std::io::{BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Result, bail};
use converter::LegacyFlist;
use flist::{Entry, Flist, NodeKind, Walk};

use crate::formats::Opened;

#[derive(clap::Args)]
pub struct Args {
    /// The flist (flisthub's, a 0-flist or an fl file): a file, or its URL on a hub.
    flist: PathBuf,
    /// Directory (or entry) inside the flist.
    #[arg(default_value = "/")]
    path: PathBuf,
    /// List subdirectories recursively, like `ls -lR`.
    #[arg(short = 'R', long)]
    recursive: bool,
}

pub async fn run(args: Args) -> Result<()> {
    let local = crate::client::local_flist(&args.flist).await?;
    match crate::formats::open(&local)? {
        Opened::Native => list(&Flist::open(&local.path)?, &args, &local.shown),
        Opened::Legacy(flist) => list(flist.as_ref(), &args, &local.shown),
    }
}

/// What a listing needs of an flist of any format.
trait Listing {
    fn lookup(&self, path: &[u8]) -> flist::Result<Option<Entry>>;
    fn children(&self, dir: &Entry) -> flist::Result<Vec<Entry>>;
    fn walk_from(
        &self,
        path: &[u8],
        start: &Entry,
        visit: &mut dyn FnMut(&[u8], &Entry) -> flist::Result<Walk>,
    ) -> flist::Result<()>;
}

impl Listing for Flist {
    fn lookup(&self, path: &[u8]) -> flist::Result<Option<Entry>> {
        Flist::lookup(self, path)
    }

    fn children(&self, dir: &Entry) -> flist::Result<Vec<Entry>> {
        Flist::children(self, dir.ino)
    }

    fn walk_from(
        &self,
        path: &[u8],
        _start: &Entry,
        visit: &mut dyn FnMut(&[u8], &Entry) -> flist::Result<Walk>,
    ) -> flist::Result<()> {
        Flist::walk_from(self, path, visit)
    }
}

impl Listing for LegacyFlist {
    fn lookup(&self, path: &[u8]) -> flist::Result<Option<Entry>> {
        Ok(LegacyFlist::lookup(self, path).cloned())
    }

    fn children(&self, dir: &Entry) -> flist::Result<Vec<Entry>> {
        Ok(LegacyFlist::children(self, dir).cloned().collect())
    }

    fn walk_from(
        &self,
        _path: &[u8],
        start: &Entry,
        visit: &mut dyn FnMut(&[u8], &Entry) -> flist::Result<Walk>,
    ) -> flist::Result<()> {
        LegacyFlist::walk_from(self, start, visit)
    }
}

fn list(flist: &dyn Listing, args: &Args, shown: &str) -> Result<()> {
    let path = args.path.as_os_str().as_bytes();
    let Some(entry) = flist.lookup(path)? else {
        bail!("{}: no such entry in {shown}", args.path.display());
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    if !entry.is_dir() {
        writeln!(out, "{}", line(&entry))?;
    } else if !args.recursive {
        for child in flist.children(&entry)? {
            writeln!(out, "{}", line(&child))?;
        }
    } else {
        let mut first = true;
        let mut written = Ok(());
        flist.walk_from(path, &entry, &mut |dir, entry| {
            if entry.is_dir() {
                let heading = if first { "" } else { "\n" };
                first = false;
                written = writeln!(out, "{heading}/{}:", printable(dir));
                for child in flist.children(entry)? {
                    if written.is_ok() {
                        written = writeln!(out, "{}", line(&child));
                    }
                }
            }
            // Stop walking once the output is gone (`| head`).
            Ok(if written.is_ok() {
                Walk::Continue
            } else {
                Walk::SkipChildren
            })
        })?;
        written?;
    }
    out.flush()?;
    Ok(())
}

fn line(entry: &Entry) -> String {
    let node = &entry.node;
    let size = match &node.kind {
        NodeKind::CharDevice { major, minor } | NodeKind::BlockDevice { major, minor } => {
            format!("{major}, {minor}")
        }
        _ => node.size().to_string(),
    };
    // Times before 1970 are shown as the epoch; they are kept exactly in the flist.
    let secs = u64::try_from(node.mtime.secs).unwrap_or(0);
    let mtime = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs));
    let mut text = format!(
        "{} {:>3} {:>5} {:>5} {:>10} {} {}",
        node.ls_mode(),
        entry.nlink,
        node.uid,
        node.gid,
        size,
        mtime,
        printable(&entry.name)
    );
    if let NodeKind::Symlink { target } = &node.kind {
        text.push_str(" -> ");
        text.push_str(&printable(target));
    }
    text
}

/// A name as text a terminal shows safely: invalid UTF-8 replaced, control characters escaped.
pub fn printable(name: &[u8]) -> String {
    String::from_utf8_lossy(name)
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_drive_the_terminal() {
        assert_eq!(printable(b"a\x1b[31mb\n"), "a\\u{1b}[31mb\\n");
        assert_eq!(printable("ü".as_bytes()), "ü");
    }
}
