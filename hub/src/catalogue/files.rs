//! One file inside a published flist, read without extracting the rest: what the web's file
//! browser opens and downloads, and `GET /api/v1/flists/<repo>/<name>/files/<path>`.
//!
//! Only the chunks (or, for a hosted 0-flist or fl file, the blocks) covering the bytes
//! asked for are fetched, and each is checked before a byte of it is handed out: a native
//! chunk against its key and the length the flist records (through the chunk reader), a
//! legacy block (a rendition's, or one a client stored) by its codec (the plaintext must hash to the block's key) and against the
//! length its place in the file implies.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chunkstore::{BlockId, ChunkKey, ChunkSpan};
use converter::{BlockSource, BlockSpan};
use flist::NodeKind;
use futures_util::{Stream, StreamExt, TryStreamExt, stream};

use super::Catalogue;
use super::tree::{Tree, relative_path};
use crate::error::{Error, Result};
use crate::formats::Format;
use crate::names::quote;
use crate::namespace::Resolved;
use crate::renditions::Renditions;

/// Legacy blocks fetched from the store in one request.
const BLOCK_BATCH: usize = 8;

/// A regular file inside a published flist, found by its path.
#[derive(Debug, Clone)]
pub struct InnerFile {
    /// The flist the name resolved to when the file was looked up: reads go on reading
    /// that one, whatever happens to the name meanwhile.
    pub flist: Resolved,
    /// The path inside the flist, relative, as looked up (bytes: names need not be UTF-8).
    pub path: Vec<u8>,
    pub size: u64,
    /// Permission bits, as `st_mode & 0o7777`.
    pub mode: u32,
    /// Seconds since the epoch.
    pub mtime: i64,
    content: Content,
}

/// Where a file's bytes are, in file order.
#[derive(Debug, Clone)]
enum Content {
    Chunks(Vec<ChunkSpan>),
    /// A hosted 0-flist's or fl file's blocks, each with its place in the file.
    Blocks(Vec<BlockSpan>),
}

impl Catalogue {
    /// The regular file at `path` inside the flist `repository/name` resolves to. The path
    /// is taken literally (a symlink is reported as one, not followed); `..` is refused.
    pub async fn inner_file(&self, repository: &str, name: &str, path: &[u8]) -> Result<InnerFile> {
        let wanted = relative_path(path)?;
        let format = self.resolve(repository, name).await?.digest.format;
        let limits = self.limits.clone();
        let shown_path = wanted.clone();
        let find = move |file: &Path| find(file, format, &limits, &shown_path);
        let (flist, found) = self
            .namespace
            .open_file(|| self.resolve(repository, name), find)
            .await?;
        let Some(found) = found else {
            return Err(Error::NotFound(format!(
                "{} holds no {}",
                quote(&flist.name),
                quote(&String::from_utf8_lossy(&wanted))
            )));
        };
        let (size, content) = match found.kind {
            Found::File { size, content } => (size, content),
            Found::Other(what) => {
                return Err(Error::Conflict(format!(
                    "{} in {} is {what}, not a regular file",
                    quote(&String::from_utf8_lossy(&wanted)),
                    quote(&flist.name)
                )));
            }
        };
        Ok(InnerFile {
            flist,
            path: wanted,
            size,
            mode: found.mode,
            mtime: found.mtime,
            content,
        })
    }

    /// `length` bytes of `file` from `offset` (fewer at its end), verified, in pieces. The
    /// stream ends after the first error: a chunk or block that is missing or damaged.
    pub fn read_inner(
        &self,
        file: &InnerFile,
        offset: u64,
        length: u64,
    ) -> impl Stream<Item = Result<Bytes>> + Send + 'static {
        let end = offset.saturating_add(length).min(file.size);
        let units: stream::BoxStream<'static, Result<Bytes>> = match &file.content {
            Content::Chunks(spans) => {
                let (first, covering) = covering_spans(spans, offset, end);
                let pieces = self.reader.stream(covering).map_err(Error::from);
                return window(pieces, offset - first, end.saturating_sub(offset)).boxed();
            }
            Content::Blocks(spans) => {
                legacy_blocks(Arc::clone(&self.renditions), spans, offset, end)
            }
        };
        let first = match &file.content {
            Content::Blocks(spans) => spans
                .iter()
                .find(|s| s.offset + u64::from(s.length) > offset)
                .map_or(offset, |s| s.offset),
            Content::Chunks(_) => offset,
        };
        window(units, offset - first, end.saturating_sub(offset)).boxed()
    }
}

/// What a path names inside an flist.
struct FoundEntry {
    kind: Found,
    mode: u32,
    mtime: i64,
}

enum Found {
    File {
        size: u64,
        content: Content,
    },
    /// Anything else, in words.
    Other(&'static str),
}

/// The entry at `path` of the flist file at `file`, of `format`.
fn find(
    file: &Path,
    format: Format,
    limits: &crate::config::LimitsConfig,
    path: &[u8],
) -> Result<Option<FoundEntry>> {
    let tree = Tree::open(file, format, limits)?;
    let Some(entry) = tree.lookup(path)? else {
        return Ok(None);
    };
    let kind = match entry.node.kind {
        NodeKind::Regular { size } => Found::File {
            size,
            content: match &tree {
                Tree::Native(flist) => Content::Chunks(
                    flist
                        .chunks(&entry)?
                        .into_iter()
                        .map(|c| ChunkSpan {
                            key: ChunkKey::from(c.key),
                            length: c.length,
                        })
                        .collect(),
                ),
                Tree::Legacy(flist) => Content::Blocks(flist.spans(&entry)?),
            },
        },
        ref other => Found::Other(kind_words(other.kind())),
    };
    Ok(Some(FoundEntry {
        kind,
        mode: entry.node.mode,
        mtime: entry.node.mtime.secs,
    }))
}

fn kind_words(kind: flist::Kind) -> &'static str {
    match kind {
        flist::Kind::Directory => "a directory",
        flist::Kind::Symlink => "a symbolic link",
        _ => "a special file",
    }
}

/// The spans covering bytes `offset..end` of a file, and the file offset of the first.
fn covering_spans(spans: &[ChunkSpan], offset: u64, end: u64) -> (u64, Vec<ChunkSpan>) {
    let mut first = None;
    let mut covering = Vec::new();
    let mut start = 0u64;
    for span in spans {
        let stop = start + u64::from(span.length);
        if stop > offset && start < end {
            first.get_or_insert(start);
            covering.push(*span);
        }
        if stop >= end {
            break;
        }
        start = stop;
    }
    (first.unwrap_or(offset), covering)
}

/// The blocks the hub serves (renditions', then those clients stored), as the converter's
/// legacy readers take them.
struct ServedBlocks(Arc<Renditions>);

#[async_trait]
impl BlockSource for ServedBlocks {
    fn location(&self) -> &str {
        "this hub's blocks"
    }

    async fn get_blocks(&self, ids: &[BlockId]) -> chunkstore::Result<Vec<Option<Bytes>>> {
        self.0
            .served_blocks(ids)
            .await
            .map_err(|e| chunkstore::Error::Store {
                location: self.location().to_owned(),
                reason: e.to_string(),
            })
    }
}

/// The blocks covering bytes `offset..end` of a legacy file, decoded and checked,
/// fetched [`BLOCK_BATCH`] at a time.
fn legacy_blocks(
    renditions: Arc<Renditions>,
    spans: &[BlockSpan],
    offset: u64,
    end: u64,
) -> stream::BoxStream<'static, Result<Bytes>> {
    let covering: Vec<BlockSpan> = spans
        .iter()
        .filter(|s| s.offset + u64::from(s.length) > offset && s.offset < end)
        .copied()
        .collect();
    let batches: Vec<Vec<BlockSpan>> = covering.chunks(BLOCK_BATCH).map(<[_]>::to_vec).collect();
    let source = Arc::new(ServedBlocks(renditions));
    stream::iter(batches)
        .then(move |batch| {
            let source = Arc::clone(&source);
            async move {
                let decoded = converter::read_blocks(source.as_ref(), &batch).await?;
                let blocks: Vec<Result<Bytes>> = decoded
                    .into_iter()
                    .map(|block| block.map_err(Error::from))
                    .collect();
                Ok::<_, Error>(stream::iter(blocks))
            }
        })
        .try_flatten()
        .boxed()
}

/// Of a stream of consecutive pieces, the `take` bytes after the first `skip`.
fn window(
    pieces: impl Stream<Item = Result<Bytes>> + Send + 'static,
    mut skip: u64,
    mut take: u64,
) -> impl Stream<Item = Result<Bytes>> + Send + 'static {
    pieces
        .take_while(move |_| std::future::ready(take > 0 || skip > 0))
        .try_filter_map(move |mut piece| {
            let skipped = skip.min(piece.len() as u64);
            piece = piece.slice(skipped as usize..);
            skip -= skipped;
            let kept = take.min(piece.len() as u64);
            piece.truncate(kept as usize);
            take -= kept;
            std::future::ready(Ok((!piece.is_empty()).then_some(piece)))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covering_spans_are_those_the_range_touches() {
        let span = |n: u8, length| ChunkSpan {
            key: ChunkKey::from([n; 32]),
            length,
        };
        let spans = [span(1, 10), span(2, 10), span(3, 10)];
        let (first, covering) = covering_spans(&spans, 12, 25);
        assert_eq!(first, 10);
        assert_eq!(covering, vec![spans[1], spans[2]]);
        let (first, covering) = covering_spans(&spans, 0, 10);
        assert_eq!((first, covering), (0, vec![spans[0]]));
    }

    #[tokio::test]
    async fn window_keeps_the_bytes_asked_for() {
        let pieces = stream::iter(
            [&b"abcd"[..], b"efgh", b"ijkl"]
                .into_iter()
                .map(|p| Ok(Bytes::from_static(p))),
        );
        let kept: Vec<Bytes> = window(pieces, 2, 7).try_collect().await.unwrap();
        assert_eq!(kept.concat(), b"cdefghi");
    }
}
