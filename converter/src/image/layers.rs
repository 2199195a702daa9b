//! An image's layers applied as a container runtime stacks them (the OCI image spec's
//! "applying changesets"), read from the top layer down, so that nothing an upper layer
//! replaces or deletes is ever chunked.
//!
//! Reading top-down, a path is final the first time it is seen. The state kept between
//! layers says what upper layers decided: the paths they defined, the directories their
//! entries imply, the paths they deleted (`.wh.<name>` whiteouts) and the directories whose
//! lower content they hid (`.wh..wh..opq`). An entry of a lower layer is skipped when an
//! upper layer defined its path, deleted it or an ancestor, hid an ancestor's content, or
//! replaced an ancestor with something that is not a directory. A directory entry whose
//! path upper layers only implied still gives the directory its attributes.
//!
//! Hardlinks name their target as it is in the link's own layer and below. A target in the
//! same layer is linked at once; one in a lower layer is found going down: the first entry
//! met at that path is the content the link names, and it is kept for the link even when an
//! upper layer replaced it at its own path (the runtime's unpacking would keep that inode
//! too). A target of the link's own layer that an upper layer replaced was passed over
//! before the link was met: that layer is read a second time for such targets alone. A link
//! whose target never comes is dropped with a warning.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use flist::{Node, NodeKind, Xattr};

use crate::error::{Error, Result};
use crate::pack::Packer;
use crate::tarball::{EntryKind, TarEntry, for_each_entry};

/// The layers of an image, opened one at a time, top layer first.
pub(crate) trait Layers {
    fn count(&self) -> usize;
    /// The content of layer `index` (0 is the bottom layer), as stored (compressed or not).
    fn open(&mut self, index: usize) -> Result<Box<dyn Read + Send>>;
}

/// A file added over the image's own tree unless the image has that path (`/.startup.toml`).
pub(crate) struct ExtraFile {
    pub path: Vec<u8>,
    pub node: Node,
    pub content: Vec<u8>,
}

const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

/// Merges `layers` into `packer`. Returns warnings about the image (links to nothing).
pub(crate) fn merge(
    packer: &mut Packer,
    layers: &mut dyn Layers,
    extra: Vec<ExtraFile>,
) -> Result<Vec<String>> {
    let progress = packer.progress();
    let limits = packer.limits();
    let count = layers.count();
    crate::Progress::set(&progress.layers, count as u64);
    let mut state = State::default();
    for (position, index) in (0..count).rev().enumerate() {
        crate::Progress::set(&progress.layer, position as u64 + 1);
        let mut layer = Layer::default();
        read_layer(layers, index, &progress, &limits, |entry, content| {
            // Every entry of every layer counts against the limits (and checks for
            // cancellation), hidden ones and whiteouts too: they cost memory here.
            packer.count_entry(&entry.path)?;
            state.entry(packer, &mut layer, entry, content)
        })?;
        if !layer.relink.is_empty() {
            // Hardlinks to files an upper layer replaced, whose content was passed over
            // before the links showed it is still needed: the layer is read again for
            // those files alone (rare: `rm /usr/bin/perl` above `perl5.36 -> perl`).
            let mut relink = std::mem::take(&mut layer.relink);
            read_layer(layers, index, &progress, &limits, |entry, content| {
                if let EntryKind::Node(node) = &entry.kind
                    && matches!(node.kind, NodeKind::Regular { .. })
                    && let Some(links) = relink.remove(&entry.path)
                {
                    packer.add_file(&links[0], node, &entry.xattrs, content)?;
                    for link in &links[1..] {
                        packer.add_hardlink(link, &links[0])?;
                    }
                }
                Ok(())
            })?;
            for (target, links) in relink {
                for link in links {
                    state.warnings.push(format!(
                        "{}: a hardlink to {}, which its layer does not hold: left out",
                        show(&link),
                        show(&target)
                    ));
                }
            }
        }
        state.end_layer(layer);
    }
    for file in extra {
        if state.hidden(&file.path, false) {
            continue;
        }
        packer.count_entry(&file.path)?;
        packer.add_file(&file.path, &file.node, &[], file.content.as_slice())?;
    }
    let mut warnings = state.warnings;
    for (target, links) in state.waiting {
        for link in links {
            warnings.push(format!(
                "{}: a hardlink to {}, which no layer has: left out",
                show(&link),
                show(&target)
            ));
        }
    }
    Ok(warnings)
}

/// Reads layer `index` through, giving each entry to `each`.
fn read_layer(
    layers: &mut dyn Layers,
    index: usize,
    progress: &std::sync::Arc<crate::Progress>,
    limits: &crate::Limits,
    each: impl FnMut(TarEntry, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    let count = layers.count();
    let mut input = layers.open(index)?;
    for_each_entry(&mut input, std::sync::Arc::clone(progress), limits, each).map_err(
        |e| match e {
            // What the registry or daemon sent cannot be read as a layer (a stream cut
            // short, bytes that do not match the digest, not a tar): the image's fault.
            Error::Input(why) => invalid(index, count, why),
            other => other,
        },
    )?;
    // The rest of the blob (tar padding, compressed trailers) is read too: a registry
    // layer's digest is checked when its last byte has been read.
    std::io::copy(&mut input, &mut std::io::sink()).map_err(|e| invalid(index, count, e))?;
    Ok(())
}

fn invalid(index: usize, count: usize, why: impl std::fmt::Display) -> Error {
    Error::image(
        crate::ImageFailure::Invalid,
        format!("layer {} of {count}: {why}", index + 1),
    )
}

/// What the layers above the current one decided.
#[derive(Default)]
struct State {
    /// Paths an upper layer has an entry for, and whether that entry is a directory.
    defined: HashMap<Vec<u8>, bool>,
    /// Ancestors of defined paths: directories an upper layer implies.
    implied: HashSet<Vec<u8>>,
    /// Paths an upper layer deleted, and directories whose lower content it hid.
    whiteouts: HashSet<Vec<u8>>,
    opaque: HashSet<Vec<u8>>,
    /// Hardlinks of upper layers waiting for their target, by target.
    waiting: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    warnings: Vec<String>,
}

/// What the current layer decides, for the layers below it.
#[derive(Default)]
struct Layer {
    defined: HashMap<Vec<u8>, bool>,
    whiteouts: HashSet<Vec<u8>>,
    opaque: HashSet<Vec<u8>>,
    /// Regular files of this layer that were not added (an upper layer replaced them).
    skipped: HashSet<Vec<u8>>,
    /// Skipped files that hardlinks (of this layer or above) turned out to need, with the
    /// links' names: read again once the layer has been read.
    relink: HashMap<Vec<u8>, Vec<Vec<u8>>>,
}

impl State {
    /// Whether an entry at `path` of the current layer is hidden by the layers above.
    fn hidden(&self, path: &[u8], is_dir: bool) -> bool {
        if self.defined.contains_key(path) || self.whiteouts.contains(path) {
            return true;
        }
        // Something that is not a directory, where an upper layer has a directory.
        if !is_dir && self.implied.contains(path) {
            return true;
        }
        ancestors(path).any(|dir| {
            self.whiteouts.contains(dir)
                || self.opaque.contains(dir)
                || self.defined.get(dir) == Some(&false)
        })
    }

    fn entry(
        &mut self,
        packer: &mut Packer,
        layer: &mut Layer,
        entry: TarEntry,
        content: &mut dyn Read,
    ) -> Result<()> {
        let TarEntry { path, kind, xattrs } = entry;
        let (dir, name) = split(&path);
        if name == OPAQUE {
            layer.opaque.insert(dir.to_vec());
            return Ok(());
        }
        if let Some(deleted) = name.strip_prefix(WHITEOUT) {
            // Other `.wh..wh.` names are aufs bookkeeping, not files; `.wh.` alone names
            // nothing.
            if !deleted.is_empty() && !deleted.starts_with(WHITEOUT) {
                layer.whiteouts.insert(join(dir, deleted));
            }
            return Ok(());
        }
        let node = match kind {
            // A name linked to itself (tar's way of storing a file named twice) adds nothing
            // here; in a plain archive the flist writer refuses it unless the name came before.
            EntryKind::Hardlink(target) if target == path => return Ok(()),
            EntryKind::Hardlink(target) => return self.hardlink(packer, layer, path, target),
            EntryKind::Node(node) => node,
        };
        let is_dir = node.kind == NodeKind::Directory;
        let hidden = self.hidden(&path, is_dir);
        let waiting = self.waiting.remove(&path).unwrap_or_default();
        if !waiting.is_empty() && !is_dir {
            // The target of upper hardlinks: if the path itself is final, add it there;
            // else the content lives on under the first link's name only.
            let (home, others) = match hidden {
                false => (path.clone(), waiting.as_slice()),
                true => (waiting[0].clone(), &waiting[1..]),
            };
            self.add(packer, layer, &home, &node, &xattrs, content)?;
            for link in others {
                packer.add_hardlink(link, &home)?;
            }
            return Ok(());
        }
        if !waiting.is_empty() {
            for link in waiting {
                self.warnings.push(format!(
                    "{}: a hardlink to the directory {}: left out",
                    show(&link),
                    show(&path)
                ));
            }
        }
        if hidden {
            if matches!(node.kind, NodeKind::Regular { .. }) {
                layer.skipped.insert(path);
            }
            return Ok(());
        }
        self.add(packer, layer, &path, &node, &xattrs, content)
    }

    fn add(
        &mut self,
        packer: &mut Packer,
        layer: &mut Layer,
        path: &[u8],
        node: &Node,
        xattrs: &[Xattr],
        content: &mut dyn Read,
    ) -> Result<()> {
        if matches!(node.kind, NodeKind::Regular { .. }) {
            packer.add_file(path, node, xattrs, content)?;
        } else {
            packer.add(path, node, xattrs)?;
        }
        layer
            .defined
            .insert(path.to_vec(), node.kind == NodeKind::Directory);
        Ok(())
    }

    fn hardlink(
        &mut self,
        packer: &mut Packer,
        layer: &mut Layer,
        path: Vec<u8>,
        target: Vec<u8>,
    ) -> Result<()> {
        // Links of upper layers to this link want its target's content: they follow it.
        let mut links = self.waiting.remove(&path).unwrap_or_default();
        let hidden = self.hidden(&path, false);
        if !hidden {
            links.insert(0, path.clone());
        }
        if links.is_empty() {
            return Ok(());
        }
        if layer.defined.get(&target) == Some(&false) {
            // The target is an earlier entry of this layer, added.
            for link in &links {
                packer.add_hardlink(link, &target)?;
            }
        } else if layer.skipped.contains(&target) {
            // Its content was passed over (an upper layer replaced it) before this link
            // showed that it is still needed: read again at the end of the layer.
            layer.relink.entry(target).or_default().extend(links);
        } else if layer.defined.contains_key(&target) {
            return Err(Error::entry(&path, "a hardlink to a directory"));
        } else {
            // In a lower layer: found on the way down.
            self.waiting.entry(target).or_default().extend(links);
        }
        if !hidden {
            layer.defined.insert(path, false);
        }
        Ok(())
    }

    /// Hardlinks of upper layers whose targets a whiteout of the current layer shows to name
    /// nothing.
    fn drop_waiting(&mut self, gone: impl Fn(&[u8]) -> bool, why: &str) {
        let gone: Vec<Vec<u8>> = self.waiting.keys().filter(|t| gone(t)).cloned().collect();
        for t in gone {
            for link in self.waiting.remove(&t).unwrap_or_default() {
                self.warnings.push(format!(
                    "{}: a hardlink to {}, {why}: left out",
                    show(&link),
                    show(&t)
                ));
            }
        }
    }

    fn end_layer(&mut self, layer: Layer) {
        // Links of upper layers still waiting for a target this layer deleted or hid name
        // nothing below it. (Checked at the end: a layer lists its whiteouts before the
        // entries it recreates, and those may be the targets.)
        for dir in &layer.opaque {
            self.drop_waiting(|t| is_below(t, dir), "hidden by a layer below the link");
        }
        for target in &layer.whiteouts {
            self.drop_waiting(
                |t| t == target.as_slice() || is_below(t, target),
                "deleted by a layer below the link",
            );
        }
        for path in layer.defined.keys() {
            for dir in ancestors(path) {
                if !self.implied.insert(dir.to_vec()) {
                    break; // its ancestors are in already
                }
            }
        }
        for (path, is_dir) in layer.defined {
            // A directory an upper layer defined keeps its attributes; `entry` never adds
            // a path twice across layers, so nothing is overwritten here.
            self.defined.entry(path).or_insert(is_dir);
        }
        self.whiteouts.extend(layer.whiteouts);
        self.opaque.extend(layer.opaque);
    }
}

/// `dir/name` split at the last `/` (the root's children have `dir` empty).
fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    [dir, b"/", name].concat()
}

/// The proper ancestors of a path, nearest first, the root (``) last.
fn ancestors(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut end = Some(path.len());
    std::iter::from_fn(move || {
        let at = end?;
        match path[..at].iter().rposition(|&b| b == b'/') {
            Some(i) => {
                end = Some(i);
                Some(&path[..i])
            }
            None if at > 0 => {
                end = None;
                Some(&path[..0])
            }
            None => None,
        }
    })
}

fn is_below(path: &[u8], dir: &[u8]) -> bool {
    dir.is_empty() || (path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/')
}

fn show(path: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_nearest_first_then_the_root() {
        let all: Vec<&[u8]> = ancestors(b"a/b/c").collect();
        assert_eq!(all, [&b"a/b"[..], b"a", b""]);
        assert_eq!(ancestors(b"a").collect::<Vec<_>>(), [&b""[..]]);
        assert_eq!(ancestors(b"").count(), 0);
        assert_eq!(split(b"a/b/.wh.c"), (&b"a/b"[..], &b".wh.c"[..]));
        assert_eq!(split(b".wh.x"), (&b""[..], &b".wh.x"[..]));
        assert!(is_below(b"a/b", b"a") && is_below(b"x", b"") && !is_below(b"ab", b"a"));
    }

    #[test]
    fn what_upper_layers_hide() {
        let mut state = State::default();
        let mut upper = Layer::default();
        upper.defined.insert(b"etc/os-release".to_vec(), false);
        upper.defined.insert(b"bin".to_vec(), false); // a directory replaced by a link
        upper.whiteouts.insert(b"var/cache".to_vec());
        upper.opaque.insert(b"opt/app".to_vec());
        state.end_layer(upper);
        for (path, is_dir, hidden) in [
            (&b"etc/os-release"[..], false, true),
            (b"etc", true, false), // implied, its attributes still come from below
            (b"etc", false, true), // but not as something else than a directory
            (b"bin/sh", false, true), // below a replaced directory
            (b"var/cache", true, true),
            (b"var/cache/x", false, true),
            (b"var/lib", true, false),
            (b"opt/app", true, false), // the opaque directory itself stays
            (b"opt/app/old", false, true),
            (b"usr/bin/ls", false, false),
        ] {
            assert_eq!(state.hidden(path, is_dir), hidden, "{}", show(path));
        }
    }
}
