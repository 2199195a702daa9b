//! Two published flists compared from their indexes alone: the paths only one holds, and
//! the paths both hold whose entries differ (kind, size, symlink target or device, mode,
//! owner, or the list of chunks that make a file's content). No content is read: two
//! files are the same content when their chunk lists are. Times are not compared: a tree
//! built again from the same files differs in nothing else, and would list every path.

use std::cmp::Ordering;

use flist::{NodeKind, Walk};

use super::Catalogue;
use super::tree::{Tree, TreeEntry};
use crate::error::{Error, Result};
use crate::namespace::Resolved;

/// How a path differs between the two flists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    /// Only in the second.
    Added,
    /// Only in the first.
    Removed,
    /// In both, different.
    Changed,
}

/// A path that differs.
#[derive(Debug, Clone)]
pub struct DiffRow {
    pub change: Difference,
    /// The entry in the first flist and in the second (`None` where there is none).
    pub before: Option<TreeEntry>,
    pub after: Option<TreeEntry>,
    /// Both are regular files whose chunk lists differ.
    pub content_differs: bool,
}

impl DiffRow {
    pub fn path(&self) -> &[u8] {
        self.after
            .as_ref()
            .or(self.before.as_ref())
            .map_or(&[][..], |e| &e.path)
    }
}

/// What differs between two flists.
#[derive(Debug, Clone)]
pub struct Diff {
    pub a: Resolved,
    pub b: Resolved,
    /// The first rows, in tree order (depth first, siblings by name).
    pub rows: Vec<DiffRow>,
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
    pub unchanged: u64,
    /// Whether contents were compared: only chunk lists of the same format are comparable
    /// (a native flist's chunks and a legacy file's blocks are cut and keyed differently),
    /// else files are compared by size and attributes only.
    pub contents_compared: bool,
}

/// An entry as the diff compares it.
struct Seen {
    entry: TreeEntry,
    content: Option<[u8; 32]>,
}

impl Catalogue {
    /// Compares the flists `a` and `b` name (each `<repository>/<name>`, a link followed,
    /// or `<repository>/tags/<tag>/<name>`), listing `limit` rows at most.
    pub async fn diff(&self, a: &str, b: &str, limit: usize) -> Result<Diff> {
        let ((a, before), (b, after)) = tokio::try_join!(self.entries_of(a), self.entries_of(b))?;
        let contents_compared = a.digest.format == b.digest.format;
        let mut diff = Diff {
            a,
            b,
            rows: Vec::new(),
            added: 0,
            removed: 0,
            changed: 0,
            unchanged: 0,
            contents_compared,
        };
        let push = |diff: &mut Diff, row: DiffRow| {
            match row.change {
                Difference::Added => diff.added += 1,
                Difference::Removed => diff.removed += 1,
                Difference::Changed => diff.changed += 1,
            }
            if diff.rows.len() < limit {
                diff.rows.push(row);
            }
        };
        let (mut before, mut after) = (before.into_iter().peekable(), after.into_iter().peekable());
        loop {
            let order = match (before.peek(), after.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(x), Some(y)) => tree_order(&x.entry.path, &y.entry.path),
            };
            let row = match order {
                Ordering::Less => before.next().map(|x| DiffRow {
                    change: Difference::Removed,
                    before: Some(x.entry),
                    after: None,
                    content_differs: false,
                }),
                Ordering::Greater => after.next().map(|y| DiffRow {
                    change: Difference::Added,
                    before: None,
                    after: Some(y.entry),
                    content_differs: false,
                }),
                Ordering::Equal => match (before.next(), after.next()) {
                    (Some(x), Some(y)) => {
                        let content_differs = contents_compared && x.content != y.content;
                        if content_differs || !same_attributes(&x.entry, &y.entry) {
                            Some(DiffRow {
                                change: Difference::Changed,
                                before: Some(x.entry),
                                after: Some(y.entry),
                                content_differs,
                            })
                        } else {
                            diff.unchanged += 1;
                            None
                        }
                    }
                    _ => None,
                },
            };
            if let Some(row) = row {
                push(&mut diff, row);
            }
        }
        Ok(diff)
    }

    /// The flist `reference` names and its entries below the root, in tree order.
    async fn entries_of(&self, reference: &str) -> Result<(Resolved, Vec<Seen>)> {
        let format = self.resolve_reference(reference).await?.digest.format;
        let limits = self.limits.clone();
        self.namespace
            .open_file(
                || self.resolve_reference(reference),
                move |file| {
                    let tree = Tree::open(file, format, &limits)?;
                    let root = tree
                        .lookup(b"")?
                        .ok_or_else(|| Error::NotFound("the flist has no root".into()))?;
                    let mut seen = Vec::new();
                    tree.walk_from(b"", &root, |path, entry| {
                        if !path.is_empty() {
                            let content = match entry.node.kind {
                                NodeKind::Regular { .. } => Some(tree.content(entry)?),
                                _ => None,
                            };
                            seen.push(Seen {
                                entry: TreeEntry {
                                    path: path.to_vec(),
                                    node: entry.node.clone(),
                                    nlink: entry.nlink,
                                },
                                content,
                            });
                        }
                        Ok(Walk::Continue)
                    })?;
                    // Walks are in tree order already; a file from elsewhere is not trusted
                    // to be, and the merge above needs it.
                    if !seen.is_sorted_by(|x, y| tree_order(&x.entry.path, &y.entry.path).is_lt()) {
                        seen.sort_by(|x, y| tree_order(&x.entry.path, &y.entry.path));
                    }
                    Ok(seen)
                },
            )
            .await
    }

    /// The flist `<repository>/<name>` or `<repository>/tags/<tag>/<name>` resolves to.
    pub async fn resolve_reference(&self, reference: &str) -> Result<Resolved> {
        let parts: Vec<&str> = reference.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            [repository, name] => self.resolve(repository, name).await,
            [repository, "tags", tag, name] => self.resolve_in_tag(repository, tag, name).await,
            _ => Err(Error::BadRequest(format!(
                "{reference:?} names no flist: write <repository>/<name> or \
                 <repository>/tags/<tag>/<name>"
            ))),
        }
    }
}

/// The order of a depth-first walk with siblings by name: by path component.
fn tree_order(a: &[u8], b: &[u8]) -> Ordering {
    a.split(|&c| c == b'/').cmp(b.split(|&c| c == b'/'))
}

/// Whether two entries agree in everything but content and times.
fn same_attributes(x: &TreeEntry, y: &TreeEntry) -> bool {
    x.node.kind == y.node.kind
        && x.node.mode == y.node.mode
        && x.node.uid == y.node.uid
        && x.node.gid == y.node.gid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_order_is_a_depth_first_walk_by_name() {
        let mut paths: Vec<&[u8]> = vec![b"a-c", b"a/b", b"a", b"b", b"a/b/c"];
        paths.sort_by(|x, y| tree_order(x, y));
        assert_eq!(paths, vec![&b"a"[..], b"a/b", b"a/b/c", b"a-c", b"b"]);
    }
}
