//! What an extraction recreates, whatever the format: the tree (walked in the same order
//! twice, see `Creator` and `Attributes`), each file's content as spans to read, and where
//! the workers read them (chunks through the chunk reader, or legacy blocks).

use std::collections::HashSet;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use chunkstore::{ChunkKey, ChunkReader, ChunkSpan, Scratch};
use flist::{Entry, Flist, Walk, Xattr};

use super::CreateError;
use crate::error::{Error, Result};
use crate::legacy::{BlockSource, BlockSpan, LegacyFlist};

/// A piece of a file's content: where it goes, and what to read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    pub(super) offset: u64,
    pub(super) length: u32,
    pub(super) origin: Origin,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Origin {
    Chunk(ChunkKey),
    Block(BlockSpan),
}

/// The tree to recreate.
pub(super) trait Tree {
    /// Visits every entry, the root first (path `""`), each directory before its entries.
    fn walk(&self, visit: &mut dyn FnMut(&[u8], &Entry) -> flist::Result<Walk>) -> Result<()>;

    /// [`walk`](Self::walk), with a way of getting the spans of a regular file, in order.
    /// A file whose content cannot be described is a problem of that file
    /// ([`CreateError::Io`]); a broken flist stops everything.
    fn walk_spans(&self, visit: &mut WalkSpans<'_>) -> Result<()>;

    fn xattrs(&self, ino: u64) -> flist::Result<Vec<Xattr>>;

    /// The inodes that have extended attributes.
    fn xattr_inodes(&self) -> flist::Result<HashSet<u64>>;
}

/// The spans of a regular file met in a [`Tree::walk_spans`].
pub(super) type SpansOf<'a> = dyn FnMut(&Entry) -> Result<Vec<Span>, CreateError> + 'a;
/// What visits the entries of a [`Tree::walk_spans`].
pub(super) type WalkSpans<'a> =
    dyn FnMut(&[u8], &Entry, &mut SpansOf<'_>) -> flist::Result<Walk> + 'a;

/// Extended attributes, asked of the tree only for the inodes that have any (most trees
/// have none, or few): one query in all rather than one per entry.
pub(super) struct Xattrs<'a> {
    tree: &'a dyn Tree,
    inodes: HashSet<u64>,
}

impl<'a> Xattrs<'a> {
    pub(super) fn new(tree: &'a dyn Tree) -> flist::Result<Self> {
        Ok(Xattrs {
            tree,
            inodes: tree.xattr_inodes()?,
        })
    }

    pub(super) fn of(&self, ino: u64) -> flist::Result<Vec<Xattr>> {
        if self.inodes.contains(&ino) {
            self.tree.xattrs(ino)
        } else {
            Ok(Vec::new())
        }
    }
}

impl Tree for Flist {
    fn walk(&self, visit: &mut dyn FnMut(&[u8], &Entry) -> flist::Result<Walk>) -> Result<()> {
        Ok(Flist::walk(self, visit)?)
    }

    /// Every file's chunks from one pass over the flist's chunk table (see
    /// [`Flist::walk_with_chunks`]) rather than one query per file.
    fn walk_spans(&self, visit: &mut WalkSpans<'_>) -> Result<()> {
        Ok(self.walk_with_chunks(|path, entry, scan| {
            visit(path, entry, &mut |file| {
                Ok(scan
                    .chunks(file)?
                    .into_iter()
                    .map(|chunk| Span {
                        offset: chunk.offset,
                        length: chunk.length,
                        origin: Origin::Chunk(ChunkKey::from(chunk.key)),
                    })
                    .collect())
            })
        })?)
    }

    fn xattrs(&self, ino: u64) -> flist::Result<Vec<Xattr>> {
        Flist::xattrs(self, ino)
    }

    fn xattr_inodes(&self) -> flist::Result<HashSet<u64>> {
        Flist::xattr_inodes(self)
    }
}

impl Tree for LegacyFlist {
    fn walk(&self, visit: &mut dyn FnMut(&[u8], &Entry) -> flist::Result<Walk>) -> Result<()> {
        Ok(self.walk_from(self.root(), visit)?)
    }

    fn walk_spans(&self, visit: &mut WalkSpans<'_>) -> Result<()> {
        Tree::walk(self, &mut |path, entry| {
            visit(path, entry, &mut |file| {
                let spans = LegacyFlist::spans(self, file)
                    .map_err(|e| CreateError::Io(io::Error::other(e.to_string())))?;
                Ok(spans
                    .into_iter()
                    .map(|span| Span {
                        offset: span.offset,
                        length: span.length,
                        origin: Origin::Block(span),
                    })
                    .collect())
            })
        })
    }

    /// The legacy formats keep no extended attributes.
    fn xattrs(&self, _ino: u64) -> flist::Result<Vec<Xattr>> {
        Ok(Vec::new())
    }

    fn xattr_inodes(&self) -> flist::Result<HashSet<u64>> {
        Ok(HashSet::new())
    }
}

/// Where the workers read spans: each kind of [`Tree`] comes with its own.
#[derive(Clone)]
pub(super) enum Content {
    Chunks(ChunkReader),
    Blocks(Arc<dyn BlockSource>),
}

impl Content {
    /// One span's verified plaintext, read on the caller's thread into `scratch` where the
    /// content is local (chunks of a dir store, see [`ChunkReader::read_here`]); `None`
    /// where it must be asked on the runtime, in batches.
    pub(super) fn read_here<'s>(
        &self,
        span: &Span,
        scratch: &'s mut Scratch,
    ) -> Option<Result<&'s [u8]>> {
        let (Content::Chunks(reader), Origin::Chunk(key)) = (self, span.origin) else {
            return None;
        };
        let chunk = ChunkSpan {
            key,
            length: span.length,
        };
        Some(reader.read_here(&chunk, scratch)?.map_err(Error::from))
    }

    /// The verified plaintext of each span, read in one batch: the outer error is the
    /// store's (the whole batch failed), the inner ones are per span.
    pub(super) async fn read(&self, spans: &[Span]) -> Result<Vec<Result<Bytes>>> {
        match self {
            Content::Chunks(reader) => {
                let chunks = chunk_spans(spans);
                mismatch(chunks.len(), spans.len())?;
                let read = reader.read_chunks(&chunks).await?;
                Ok(read.into_iter().map(|r| r.map_err(Error::from)).collect())
            }
            Content::Blocks(source) => {
                let blocks: Vec<BlockSpan> = spans
                    .iter()
                    .filter_map(|s| match s.origin {
                        Origin::Block(block) => Some(block),
                        Origin::Chunk(_) => None,
                    })
                    .collect();
                mismatch(blocks.len(), spans.len())?;
                crate::legacy::read_blocks(source.as_ref(), &blocks).await
            }
        }
    }
}

fn chunk_spans(spans: &[Span]) -> Vec<ChunkSpan> {
    spans
        .iter()
        .filter_map(|s| match s.origin {
            Origin::Chunk(key) => Some(ChunkSpan {
                key,
                length: s.length,
            }),
            Origin::Block(_) => None,
        })
        .collect()
}

/// The extraction pairs each tree with its own content: anything else is a bug here.
fn mismatch(kept: usize, asked: usize) -> Result<()> {
    if kept != asked {
        return Err(Error::Worker(
            "chunks and legacy blocks asked of the same reader".into(),
        ));
    }
    Ok(())
}
