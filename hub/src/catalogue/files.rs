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

use bytes::Bytes;
use chunkstore::{BlockId, ChunkKey, ChunkSpan};
use futures_util::{Stream, StreamExt, TryStreamExt, stream};
use legacy::{BLOCK_SIZE, fl, zero};

use super::Catalogue;
use crate::error::{Error, Result};
use crate::formats::AnyFlist;
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
    /// The path inside the flist, relative, as looked up.
    pub path: String,
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
    ZeroBlocks(Vec<zero::Block>),
    FlBlocks(Vec<fl::Block>),
}

impl Catalogue {
    /// The regular file at `path` inside the flist `repository/name` resolves to. The path
    /// is taken literally (a symlink is reported as one, not followed); `..` is refused.
    pub async fn inner_file(&self, repository: &str, name: &str, path: &str) -> Result<InnerFile> {
        let wanted = relative_path(path)?;
        let format = self.resolve(repository, name).await?.digest.format;
        let limits = self.limits.clone();
        let shown_path = wanted.clone();
        let find = move |file: &Path| find(&AnyFlist::open(file, format, &limits)?, &shown_path);
        let (flist, found) = self
            .namespace
            .open_file(|| self.resolve(repository, name), find)
            .await?;
        let Some(found) = found else {
            return Err(Error::NotFound(format!(
                "{} holds no {}",
                quote(&flist.name),
                quote(&wanted)
            )));
        };
        let (size, content) = match found.kind {
            Found::File { size, content } => (size, content),
            Found::Other(what) => {
                return Err(Error::Conflict(format!(
                    "{} in {} is {what}, not a regular file",
                    quote(&wanted),
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
            Content::ZeroBlocks(blocks) => legacy_blocks(
                Arc::clone(&self.renditions),
                blocks
                    .iter()
                    .map(|b| (BlockId::from(b.id), Key::Zero(b.key))),
                file.size,
                offset,
                end,
            ),
            Content::FlBlocks(blocks) => legacy_blocks(
                Arc::clone(&self.renditions),
                blocks.iter().map(|b| (BlockId::from(b.id), Key::Fl(b.key))),
                file.size,
                offset,
                end,
            ),
        };
        let skip = offset % BLOCK_SIZE;
        window(units, skip, end.saturating_sub(offset)).boxed()
    }
}

/// `path` as the formats store it: relative, without empty or `.` components.
fn relative_path(path: &str) -> Result<String> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(Error::BadRequest(
                    "a path inside an flist has no `..`".into(),
                ));
            }
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
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

fn find(flist: &AnyFlist, path: &str) -> Result<Option<FoundEntry>> {
    match flist {
        AnyFlist::Native(flist) => {
            let Some(entry) = flist.lookup(path.as_bytes())? else {
                return Ok(None);
            };
            let kind = match entry.node.kind {
                flist::NodeKind::Regular { size } => Found::File {
                    size,
                    content: Content::Chunks(
                        flist
                            .chunks(&entry)?
                            .into_iter()
                            .map(|c| ChunkSpan {
                                key: ChunkKey::from(c.key),
                                length: c.length,
                            })
                            .collect(),
                    ),
                },
                ref other => Found::Other(kind_words(other.kind())),
            };
            Ok(Some(FoundEntry {
                kind,
                mode: entry.node.mode,
                mtime: entry.node.mtime.secs,
            }))
        }
        AnyFlist::ZeroFlist(file) => {
            find_legacy(|visit| file.walk(visit), path, Content::ZeroBlocks)
        }
        AnyFlist::Fl(file) => find_legacy(|visit| file.walk(visit), path, Content::FlBlocks),
    }
}

/// The entry at `path` of a legacy file, found by walking it (its readers have no index
/// by path).
fn find_legacy<B: Clone>(
    walk: impl FnOnce(
        &mut dyn FnMut(&[u8], &legacy::Entry<B>) -> legacy::Result<()>,
    ) -> legacy::Result<()>,
    path: &str,
    content: fn(Vec<B>) -> Content,
) -> Result<Option<FoundEntry>> {
    let mut found = None;
    walk(&mut |at, entry| {
        if found.is_none() && at == path.as_bytes() {
            let kind = match &entry.kind {
                legacy::Kind::File { size, blocks } => Found::File {
                    size: *size,
                    content: content(blocks.clone()),
                },
                legacy::Kind::Directory => Found::Other("a directory"),
                legacy::Kind::Symlink { .. } => Found::Other("a symbolic link"),
                legacy::Kind::Special(_) => Found::Other("a special file"),
            };
            found = Some(FoundEntry {
                kind,
                mode: entry.mode,
                mtime: entry.mtime,
            });
        }
        Ok(())
    })?;
    Ok(found)
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

/// The key that opens a legacy block.
#[derive(Clone, Copy)]
enum Key {
    Zero([u8; 16]),
    Fl([u8; 32]),
}

/// The blocks covering bytes `offset..end` of a legacy file of `size` bytes, decoded and
/// checked, fetched [`BLOCK_BATCH`] at a time.
fn legacy_blocks(
    renditions: Arc<Renditions>,
    blocks: impl Iterator<Item = (BlockId, Key)>,
    size: u64,
    offset: u64,
    end: u64,
) -> stream::BoxStream<'static, Result<Bytes>> {
    let first = offset / BLOCK_SIZE;
    let covering: Vec<(u64, BlockId, Key)> = blocks
        .enumerate()
        .map(|(i, (id, key))| (i as u64, id, key))
        .skip(first as usize)
        .take_while(|(i, _, _)| i * BLOCK_SIZE < end)
        .collect();
    let batches: Vec<Vec<(u64, BlockId, Key)>> =
        covering.chunks(BLOCK_BATCH).map(<[_]>::to_vec).collect();
    stream::iter(batches)
        .then(move |batch| {
            let renditions = Arc::clone(&renditions);
            async move {
                let ids: Vec<BlockId> = batch.iter().map(|(_, id, _)| *id).collect();
                let sealed = renditions.served_blocks(&ids).await?;
                tokio::task::spawn_blocking(move || {
                    batch
                        .into_iter()
                        .zip(sealed)
                        .map(|((index, id, key), sealed)| open_block(index, id, key, sealed, size))
                        .collect::<Result<Vec<Bytes>>>()
                })
                .await?
            }
        })
        .map_ok(|blocks| stream::iter(blocks.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
}

/// Block `index` of a file of `size` bytes, opened and checked.
fn open_block(
    index: u64,
    id: BlockId,
    key: Key,
    sealed: Option<Bytes>,
    size: u64,
) -> Result<Bytes> {
    let sealed = sealed.ok_or_else(|| Error::NotFound(format!("missing block {}", id.to_hex())))?;
    let plain = match key {
        Key::Zero(key) => zero::decode(&sealed, &key)?,
        Key::Fl(key) => fl::decode(&sealed, &key)?,
    };
    let expected = (size - index * BLOCK_SIZE).min(BLOCK_SIZE);
    if plain.len() as u64 != expected {
        return Err(Error::Internal(format!(
            "block {} holds {} bytes, the file needs {expected} there",
            id.to_hex(),
            plain.len()
        )));
    }
    Ok(Bytes::from(plain))
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
    fn paths_are_relative_and_never_climb() {
        assert_eq!(relative_path("/etc//./hosts").unwrap(), "etc/hosts");
        assert_eq!(relative_path("").unwrap(), "");
        assert!(relative_path("etc/../../x").is_err());
    }

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
