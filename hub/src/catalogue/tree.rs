//! The tree inside a published flist, read from its own index: what the web's file browser
//! lists (one directory, or the paths below it containing a text) and what its diff
//! compares. Nothing here reads file content: a file's content is named by its chunk (or
//! legacy block) list.
//!
//! A native flist answers a directory with one range scan of its index; a hosted 0-flist
//! or fl file is read whole when opened (within the limits), as every reader of those
//! formats does, and then answers from memory.

use std::path::Path;

use converter::LegacyFlist;
use flist::{Entry, Flist, NodeKind, Walk};

use super::Catalogue;
use crate::error::{Error, Result};
use crate::formats::{Format, legacy_limits};
use crate::names::quote;
use crate::namespace::Resolved;

/// One entry of a tree: its path from the root (relative, `/`-separated, bytes as the
/// flist holds them) and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    pub path: Vec<u8>,
    pub node: flist::Node,
    /// Names sharing its inode.
    pub nlink: u32,
}

impl TreeEntry {
    /// Its name within its directory (empty for the root).
    pub fn name(&self) -> &[u8] {
        self.path.rsplit(|&b| b == b'/').next().unwrap_or_default()
    }

    fn new(path: &[u8], entry: &Entry) -> TreeEntry {
        TreeEntry {
            path: path.to_vec(),
            node: entry.node.clone(),
            nlink: entry.nlink,
        }
    }
}

/// What the browser asks of a directory.
#[derive(Debug, Clone, Default)]
pub struct BrowseQuery {
    /// Only the paths below the directory containing these bytes (ASCII case ignored),
    /// searched through the whole subtree; else the directory's own entries.
    pub filter: Option<Vec<u8>>,
    /// Rows skipped, then rows answered at most.
    pub offset: usize,
    pub limit: usize,
}

/// What a path inside an flist is, and for a directory its rows.
#[derive(Debug, Clone)]
pub struct Browsed {
    /// The flist the name resolved to.
    pub flist: Resolved,
    /// The entry at the path asked for.
    pub entry: TreeEntry,
    /// The directory's entries (by name), or the paths matching the filter (depth first),
    /// from the query's offset.
    pub rows: Vec<TreeEntry>,
    /// Rows there are in all (entries of the directory, or matches).
    pub total: usize,
}

/// An open flist of any format, as a tree of [`flist::Entry`].
pub(super) enum Tree {
    Native(Flist),
    Legacy(LegacyFlist),
}

impl Tree {
    pub(super) fn open(
        file: &Path,
        format: Format,
        limits: &crate::config::LimitsConfig,
    ) -> Result<Tree> {
        Ok(match format {
            Format::Native => Tree::Native(Flist::open(file)?),
            Format::ZeroFlist => Tree::Legacy(LegacyFlist::open(
                file,
                legacy::Format::ZeroFlist,
                &legacy_limits(limits),
            )?),
            Format::Fl => Tree::Legacy(LegacyFlist::open(
                file,
                legacy::Format::Fl,
                &legacy_limits(limits),
            )?),
        })
    }

    /// The entry at `path` (relative, without `.` or `..`), symlinks not followed.
    pub(super) fn lookup(&self, path: &[u8]) -> Result<Option<Entry>> {
        match self {
            Tree::Native(flist) => Ok(flist.lookup(path)?),
            Tree::Legacy(flist) => Ok(flist.lookup(path).cloned()),
        }
    }

    /// `limit` entries of `dir` from the `offset`th, by name, and how many it holds.
    fn children_page(
        &self,
        dir: &Entry,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Entry>, usize)> {
        match self {
            Tree::Native(flist) => {
                let (page, total) = flist.children_page(dir.ino, offset as u64, limit as u64)?;
                Ok((page, usize::try_from(total).unwrap_or(usize::MAX)))
            }
            Tree::Legacy(flist) => {
                let page = flist
                    .children(dir)
                    .skip(offset)
                    .take(limit)
                    .cloned()
                    .collect();
                Ok((page, flist.children(dir).count()))
            }
        }
    }

    /// Visits `start` (at `path`) and everything below it, depth first, siblings by name.
    pub(super) fn walk_from(
        &self,
        path: &[u8],
        start: &Entry,
        mut visit: impl FnMut(&[u8], &Entry) -> Result<Walk>,
    ) -> Result<()> {
        match self {
            Tree::Native(flist) => {
                // The flist's walk takes its own errors: the visitor's is kept aside.
                let mut failure = None;
                flist.walk_from(path, |path, entry| {
                    if failure.is_some() {
                        return Ok(Walk::SkipChildren);
                    }
                    visit(path, entry).or_else(|e| {
                        failure = Some(e);
                        Ok(Walk::SkipChildren)
                    })
                })?;
                failure.map_or(Ok(()), Err)
            }
            Tree::Legacy(flist) => flist.walk_from(start, |path, entry| visit(path, entry)),
        }
    }

    /// What names a regular file's content: a digest of its chunk list (native) or block
    /// list (legacy), with each piece's length.
    pub(super) fn content(&self, file: &Entry) -> Result<[u8; 32]> {
        let mut hash = blake3::Hasher::new();
        match self {
            Tree::Native(flist) => {
                for chunk in flist.chunks(file)? {
                    hash.update(&chunk.key);
                    hash.update(&chunk.length.to_le_bytes());
                }
            }
            Tree::Legacy(flist) => {
                for span in flist.spans(file)? {
                    hash.update(span.block.id().as_bytes());
                    hash.update(&span.length.to_le_bytes());
                }
            }
        }
        Ok(*hash.finalize().as_bytes())
    }
}

/// `path` as the formats store it: relative, without empty or `.` components; `..` is
/// refused (nothing outside the flist is named).
pub(super) fn relative_path(path: &[u8]) -> Result<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                return Err(Error::BadRequest(
                    "a path inside an flist has no `..`".into(),
                ));
            }
            part => parts.push(part),
        }
    }
    Ok(parts.join(&b'/'))
}

/// Whether `haystack` contains `needle`, ASCII case ignored.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

impl Catalogue {
    /// The entry at `path` inside the flist `repository/name` resolves to and, for a
    /// directory, its rows as `query` asks.
    pub async fn browse(
        &self,
        repository: &str,
        name: &str,
        path: &[u8],
        query: BrowseQuery,
    ) -> Result<Browsed> {
        let wanted = relative_path(path)?;
        let format = self.resolve(repository, name).await?.digest.format;
        let limits = self.limits.clone();
        let (flist, found) = self
            .namespace
            .open_file(
                || self.resolve(repository, name),
                move |file| {
                    let tree = Tree::open(file, format, &limits)?;
                    read(&tree, &wanted, &query)
                },
            )
            .await?;
        let (entry, rows, total) = found.ok_or_else(|| {
            Error::NotFound(format!(
                "{} holds no {}",
                quote(&flist.name),
                quote(&String::from_utf8_lossy(
                    &relative_path(path).unwrap_or_default()
                ))
            ))
        })?;
        Ok(Browsed {
            flist,
            entry,
            rows,
            total,
        })
    }
}

type Read = Option<(TreeEntry, Vec<TreeEntry>, usize)>;

/// The entry at `path` of `tree` and the rows `query` asks for.
fn read(tree: &Tree, path: &[u8], query: &BrowseQuery) -> Result<Read> {
    let Some(entry) = tree.lookup(path)? else {
        return Ok(None);
    };
    let at = TreeEntry::new(path, &entry);
    if entry.node.kind != NodeKind::Directory {
        return Ok(Some((at, Vec::new(), 0)));
    }
    let wanted = query.offset..query.offset.saturating_add(query.limit);
    let mut rows = Vec::new();
    let mut total = 0;
    match query.filter.as_deref().filter(|f| !f.is_empty()) {
        None => {
            let (page, all) = tree.children_page(&entry, query.offset, query.limit)?;
            rows = page
                .iter()
                .map(|child| TreeEntry::new(&flist_join(path, &child.name), child))
                .collect();
            total = all;
        }
        Some(filter) => {
            // The part of each path below the directory is what the filter matches.
            let skip = if path.is_empty() { 0 } else { path.len() + 1 };
            tree.walk_from(path, &entry, |found, child| {
                if found.len() > skip && contains(&found[skip..], filter) {
                    if wanted.contains(&total) {
                        rows.push(TreeEntry::new(found, child));
                    }
                    total += 1;
                }
                Ok(Walk::Continue)
            })?;
        }
    }
    Ok(Some((at, rows, total)))
}

fn flist_join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        name.to_vec()
    } else {
        [dir, b"/", name].concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_and_never_climb() {
        assert_eq!(relative_path(b"/etc//./hosts").unwrap(), b"etc/hosts");
        assert_eq!(relative_path(b"").unwrap(), b"");
        assert!(relative_path(b"etc/../../x").is_err());
    }

    #[test]
    fn the_filter_ignores_ascii_case() {
        assert!(contains(b"usr/lib/LibFoo.so", b"libfoo"));
        assert!(!contains(b"usr/lib", b"bin"));
        assert!(contains(b"x", b""));
    }
}
