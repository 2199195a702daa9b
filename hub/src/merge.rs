//! Merges of flists, each format with its own rule: native flists with the flist crate's
//! merge, 0-flists as `zflist merge` does (the first source wins on every path, metadata
//! from the first); fl files have no merge (rfs has none), and formats do not mix.

use std::path::Path;

use crate::error::{Error, Result};
use crate::formats::{AnyFlist, Format};

/// Writes the merge of `sources` (each with the name it is quoted by in messages), the
/// first winning on every path, to `out`. Blocking.
pub fn merge(sources: Vec<(String, AnyFlist)>, out: &Path) -> Result<()> {
    let Some((first_name, first)) = sources.first() else {
        return Err(Error::BadRequest("no source found".into()));
    };
    let format = first.format();
    if let Some((name, other)) = sources
        .iter()
        .find(|(_, f)| !format.merges_with(f.format()))
    {
        return Err(Error::BadRequest(
            if format == Format::Fl || other.format() == Format::Fl {
                format!(
                    "{name} is an rfs fl file, which cannot be merged (rfs has no merge); merge 0-flists or flisthub flists"
                )
            } else {
                format!(
                    "{first_name} is {} and {name} is {}: a merge takes flists of one format",
                    describe(format),
                    describe(other.format())
                )
            },
        ));
    }
    match format {
        Format::Native => {
            let flists: Vec<&flist::Flist> = sources
                .iter()
                .filter_map(|(_, f)| match f {
                    AnyFlist::Native(flist) => Some(flist),
                    _ => None,
                })
                .collect();
            flist::merge(&flists, out)?;
        }
        Format::ZeroFlist => {
            let mut trees = sources.iter().filter_map(|(_, f)| match f {
                AnyFlist::ZeroFlist(zero) => Some(zero),
                _ => None,
            });
            let first = trees
                .next()
                .ok_or_else(|| Error::Internal("a 0-flist merge without a 0-flist".into()))?;
            let metadata = first.metadata()?;
            let mut tree = first.tree()?;
            for other in trees {
                tree.merge_from(&other.tree()?);
            }
            let file = std::fs::File::create(out).map_err(|e| Error::io(out.display(), e))?;
            let mut writer = std::io::BufWriter::new(file);
            legacy::zero::write(&tree, &metadata, &mut writer)?;
            std::io::Write::flush(&mut writer).map_err(|e| Error::io(out.display(), e))?;
        }
        Format::Fl => return Err(Error::Internal("an fl merge".into())),
    }
    Ok(())
}

fn describe(format: Format) -> &'static str {
    match format {
        Format::Native => "a flisthub flist",
        Format::ZeroFlist => "a 0-flist",
        Format::Fl => "an rfs fl file",
    }
}
