//! The embedded chunk store: one file per chunk in a local directory.
//!
//! ```text
//! <root>/FLISTHUB-STORE        marker naming the layout; a non-empty directory without it
//!                              is refused, so a typo never scatters chunks over /home
//! <root>/chunks/ab/abcd…ef     a stored chunk (header + payload), named by its key in hex
//! <root>/chunks/ab/.tmp-XXXXXX a chunk being written
//! <root>/blocks/ab/abcd…       a block of the second key space (crate::blocks), as given
//! ```
//!
//! One level of 256 directories, all made when the store is created, as git and the OCI
//! reference registry do: a chunk write never has to make a directory, and ext4's hashed
//! directories stay fast with millions of names each. A chunk is written to a temporary file
//! in its own directory and renamed into place, so readers never see a partial chunk,
//! concurrent writers of the same key (same content, by construction) replace each other
//! atomically, and renames never cross directories (which Linux serialises per filesystem).
//!
//! Durability (`fsync`, on by default): after writing a batch the store calls `syncfs(2)`
//! once, so the data is on disk before any chunk becomes visible under its key, then renames
//! the batch into place and calls `syncfs(2)` again, so a `put_many` that returned survives a
//! power loss. Two filesystem syncs per batch instead of one `fsync` per chunk keep packs of
//! many small files fast. With `fsync=false` durability is left to the kernel's writeback: a
//! crash can leave empty or partial chunk files, which reads then report as corrupt.
//!
//! A writer killed mid-batch leaves `.tmp-*` files behind; reads never look at them, and
//! `find <root>/chunks -name '.tmp-*' -mmin +60 -delete` removes them.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;

use crate::blocks::{BlockId, MAX_BLOCK_SIZE};
use crate::codec::{EncodedChunk, HEADER_LEN, MAX_CHUNK_SIZE};
use crate::dir_forget;
use crate::error::{Error, Result};
use crate::key::ChunkKey;
use crate::listing::{Cursor, Page};
use crate::store::{BackendStats, ChunkStore};

const MARKER: &str = "FLISTHUB-STORE";
const MARKER_CONTENT: &[u8] = b"flisthub dir store\nlayout 1\n";
/// Sizes a stored chunk can have.
const MIN_STORED: u64 = HEADER_LEN as u64;
const MAX_STORED: u64 = (MAX_CHUNK_SIZE + HEADER_LEN) as u64;

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// How chunk and block files are opened for reading: never through a symlink.
fn read_flags() -> rustix::fs::OFlags {
    rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC
}

/// A chunk or block file at `path`, opened with [`read_flags`].
fn open_for_reading(path: &Path) -> io::Result<File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(read_flags().bits() as i32)
        .open(path)
}

/// Options of a [`DirStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirOptions {
    /// Make every `put_many` durable before it returns (see the module documentation).
    pub fsync: bool,
}

impl Default for DirOptions {
    fn default() -> Self {
        DirOptions { fsync: true }
    }
}

/// A chunk store in a local directory. Cheap to clone.
#[derive(Clone)]
pub struct DirStore {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    location: String,
    options: DirOptions,
    /// The root, opened once the layout exists (for `syncfs`).
    root_dir: OnceLock<File>,
    /// `<root>/chunks`, opened by the first read that finds it: chunks are opened relative
    /// to it, which spares the kernel the lookup of every component of the root for each
    /// (an extraction reads tens of thousands). Like any server holding its files open, a
    /// store directory swapped for another under a running process is not followed.
    chunks_dir: OnceLock<rustix::fd::OwnedFd>,
}

impl DirStore {
    /// Opens the store at `root`. Nothing is created until the first write, so reading
    /// from a store that does not exist yet simply finds no chunks.
    pub fn open(root: impl AsRef<Path>, options: DirOptions) -> Result<DirStore> {
        let root = std::path::absolute(root.as_ref())
            .map_err(|e| Error::io(root.as_ref().display(), e))?;
        let location = format!("dir://{}", root.display());
        let refuse = |reason: &str| Error::Store {
            location: location.clone(),
            reason: reason.to_owned(),
        };
        match fs::read(root.join(MARKER)) {
            Ok(content) if content == MARKER_CONTENT => {}
            Ok(_) => {
                return Err(refuse(
                    "unknown store layout (FLISTHUB-STORE not understood)",
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::read_dir(&root) {
                Ok(mut entries) => {
                    // The marker's own temporary file is what a crash while the layout
                    // was being made leaves (the marker is written first).
                    let leftover =
                        |e: &fs::DirEntry| e.file_name().as_encoded_bytes().starts_with(b".tmp-");
                    if entries.any(|e| !e.is_ok_and(|e| leftover(&e))) {
                        return Err(refuse(
                            "directory is not empty and not a flisthub store (no FLISTHUB-STORE file)",
                        ));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&location, e)),
            },
            Err(e) => return Err(Error::io(&location, e)),
        }
        Ok(DirStore {
            inner: Arc::new(Inner {
                root,
                location,
                options,
                root_dir: OnceLock::new(),
                chunks_dir: OnceLock::new(),
            }),
        })
    }

    /// The file a chunk is stored in.
    pub fn chunk_path(&self, key: &ChunkKey) -> PathBuf {
        self.inner.chunk_path(key)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|e| Error::io(&self.inner.location, io::Error::other(e)))?
    }
}

impl Inner {
    fn chunk_dir(&self, key: &ChunkKey) -> PathBuf {
        self.root
            .join("chunks")
            .join(hex::encode(&key.as_bytes()[..1]))
    }

    fn chunk_path(&self, key: &ChunkKey) -> PathBuf {
        self.chunk_dir(key).join(key.to_hex())
    }

    fn block_dir(&self, id: &BlockId) -> PathBuf {
        self.root
            .join("blocks")
            .join(hex::encode(&id.as_bytes()[..1]))
    }

    fn block_path(&self, id: &BlockId) -> PathBuf {
        self.block_dir(id).join(id.to_hex())
    }

    fn io(&self, e: io::Error) -> Error {
        Error::io(&self.location, e)
    }

    /// Creates the layout on first write and returns the open root directory.
    fn layout(&self) -> Result<&File> {
        if let Some(dir) = self.root_dir.get() {
            return Ok(dir);
        }
        // The marker first: a crash after it leaves a store the next write completes; a
        // crash before it, at most the marker's temporary file.
        fs::create_dir_all(&self.root).map_err(|e| self.io(e))?;
        if !self.root.join(MARKER).exists() {
            let mut marker = tempfile::Builder::new()
                .prefix(".tmp-")
                .permissions(fs::Permissions::from_mode(0o666))
                .tempfile_in(&self.root)
                .map_err(|e| self.io(e))?;
            marker.write_all(MARKER_CONTENT).map_err(|e| self.io(e))?;
            marker
                .persist(self.root.join(MARKER))
                .map_err(|e| self.io(e.error))?;
        }
        let chunks = self.root.join("chunks");
        for byte in 0..=255u8 {
            fs::create_dir_all(chunks.join(hex::encode([byte]))).map_err(|e| self.io(e))?;
        }
        let dir = File::open(&self.root).map_err(|e| self.io(e))?;
        Ok(self.root_dir.get_or_init(|| dir))
    }

    fn sync(&self, root: &File) -> Result<()> {
        if self.options.fsync {
            rustix::fs::syncfs(root).map_err(|e| self.io(e.into()))?;
        }
        Ok(())
    }

    /// A chunk file counts only if it could be a chunk: a regular file no shorter than a
    /// header and no longer than the largest chunk. An empty or cut file (a crash with
    /// `fsync=false`) is reported absent, so the next write replaces it.
    fn has(&self, key: &ChunkKey) -> Result<bool> {
        match fs::symlink_metadata(self.chunk_path(key)) {
            Ok(meta) => Ok(meta.is_file() && (MIN_STORED..=MAX_STORED).contains(&meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io(e)),
        }
    }

    /// Reads a chunk file without following a symlink and without reading more than the
    /// largest chunk, whatever sits in the directory.
    fn get(&self, key: &ChunkKey) -> Result<Option<Bytes>> {
        let mut bytes = Vec::new();
        Ok(self.get_into(key, &mut bytes)?.then(|| Bytes::from(bytes)))
    }

    /// As [`get`](Self::get), into `buf`; whether the chunk is there.
    fn get_into(&self, key: &ChunkKey, buf: &mut Vec<u8>) -> Result<bool> {
        let too_large = || Error::Corrupt {
            key: *key,
            detail: format!("the chunk file is larger than {MAX_STORED} bytes"),
        };
        let opened = match self.chunks_dir() {
            Some(dir) => {
                // "ab/abcd…ef", made on the stack: the directory is named by the first two
                // hex digits of the key.
                let mut name = [b'/'; 3 + 2 * 32];
                for (i, byte) in key.as_bytes().iter().enumerate() {
                    name[3 + 2 * i] = HEX_DIGITS[usize::from(byte >> 4)];
                    name[4 + 2 * i] = HEX_DIGITS[usize::from(byte & 0xf)];
                }
                name.copy_within(3..5, 0);
                rustix::fs::openat(dir, &name[..], read_flags(), rustix::fs::Mode::empty())
                    .map(File::from)
                    .map_err(io::Error::from)
            }
            None => open_for_reading(&self.chunk_path(key)),
        };
        self.read_bounded(opened, MAX_STORED, too_large, buf)
    }

    /// `<root>/chunks`, if it exists (a store nothing has been written to yet has none).
    fn chunks_dir(&self) -> Option<&rustix::fd::OwnedFd> {
        if let Some(dir) = self.chunks_dir.get() {
            return Some(dir);
        }
        let flags =
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC;
        let dir = rustix::fs::open(self.root.join("chunks"), flags, rustix::fs::Mode::empty());
        let dir = dir.ok()?;
        Some(self.chunks_dir.get_or_init(|| dir))
    }

    /// A block, read as chunks are.
    fn get_block(&self, id: &BlockId) -> Result<Option<Bytes>> {
        let too_large = || Error::BlockTooLarge {
            location: self.location.clone(),
            id: *id,
        };
        let mut bytes = Vec::new();
        let opened = open_for_reading(&self.block_path(id));
        let found = self.read_bounded(opened, MAX_BLOCK_SIZE as u64, too_large, &mut bytes)?;
        Ok(found.then(|| Bytes::from(bytes)))
    }

    /// Reads the file just `opened` into `buf` (replacing its content), refusing one larger
    /// than `max`; whether it is there.
    fn read_bounded(
        &self,
        opened: io::Result<File>,
        max: u64,
        too_large: impl FnOnce() -> Error,
        buf: &mut Vec<u8>,
    ) -> Result<bool> {
        buf.clear();
        let file = match opened {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(self.io(e)),
        };
        // Room for one byte more than the file's length, so that one read usually takes it
        // all: a read that returns less than asked, once the length is reached, has met
        // the end (`read_to_end` would grow its reads from 8 KiB and confirm the end with
        // one more). A file that grew since is read on, up to one byte past `max`.
        let size = file.metadata().map_or(0, |m| m.len()).min(max) as usize;
        let bound = max as usize + 1;
        buf.reserve(size + 1);
        loop {
            if buf.len() == buf.capacity() {
                if buf.len() >= bound {
                    break;
                }
                buf.reserve((bound - buf.len()).min(buf.len().max(64 << 10)));
            }
            let asked = buf.capacity() - buf.len();
            match rustix::io::read(&file, rustix::buffer::spare_capacity(buf)) {
                Ok(0) => break,
                Ok(n) if n < asked && buf.len() >= size => break,
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(self.io(e.into())),
            }
        }
        if buf.len() as u64 > max {
            return Err(too_large());
        }
        Ok(true)
    }

    /// Whether a block file is there (a regular file, not a symlink).
    fn has_block(&self, id: &BlockId) -> Result<bool> {
        match fs::symlink_metadata(self.block_path(id)) {
            Ok(meta) => Ok(meta.is_file() && meta.len() <= MAX_BLOCK_SIZE as u64),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io(e)),
        }
    }

    /// Chunks and blocks, counted apart, and the bytes of both.
    fn stats(&self) -> Result<Vec<BackendStats>> {
        let (chunks, chunk_bytes) = self.count_files("chunks")?;
        let (blocks, block_bytes) = self.count_files("blocks")?;
        Ok(vec![BackendStats {
            location: self.location.clone(),
            keys: Some(chunks),
            blocks: Some(blocks),
            bytes: Some(chunk_bytes + block_bytes),
        }])
    }

    /// Files under `<root>/<space>/*/`, temporary ones left out, and their bytes.
    fn count_files(&self, space: &str) -> Result<(u64, u64)> {
        let (mut files, mut bytes) = (0, 0);
        let dirs = match fs::read_dir(self.root.join(space)) {
            Ok(dirs) => dirs.collect::<Vec<_>>(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(), // nothing written yet
            Err(e) => return Err(self.io(e)),
        };
        for dir in dirs {
            let dir = dir.map_err(|e| self.io(e))?;
            for entry in fs::read_dir(dir.path()).map_err(|e| self.io(e))? {
                let entry = entry.map_err(|e| self.io(e))?;
                if entry.file_name().as_encoded_bytes().starts_with(b".tmp") {
                    continue;
                }
                files += 1;
                bytes += entry.metadata().map_err(|e| self.io(e))?.len();
            }
        }
        Ok((files, bytes))
    }

    fn put(&self, chunks: &[EncodedChunk]) -> Result<()> {
        let files = chunks.iter().map(|chunk| {
            (
                self.chunk_dir(&chunk.key()),
                chunk.key().to_hex(),
                chunk.bytes(),
            )
        });
        self.write_all(files)
    }

    fn put_blocks(&self, blocks: &[(BlockId, Bytes)]) -> Result<()> {
        if let Some((id, _)) = blocks
            .iter()
            .find(|(_, block)| block.len() > MAX_BLOCK_SIZE)
        {
            return Err(Error::BlockTooLarge {
                location: self.location.clone(),
                id: *id,
            });
        }
        // The layout (marker first) before any block directory: a store whose first write
        // is a block, killed right after, must still open as a store.
        self.layout()?;
        for (id, _) in blocks {
            // Made when first needed: the block space is used by hubs that host legacy
            // files only.
            fs::create_dir_all(self.block_dir(id)).map_err(|e| self.io(e))?;
        }
        let files = blocks
            .iter()
            .map(|(id, block)| (self.block_dir(id), id.to_hex(), block));
        self.write_all(files)
    }

    /// Removes files of the store, durably when `fsync` is on; how many were there.
    fn remove(&self, paths: impl Iterator<Item = PathBuf>) -> Result<u64> {
        let removed = dir_forget::remove(paths).map_err(|e| self.io(e))?;
        if removed > 0 {
            let root = self.layout()?;
            self.sync(root)?;
        }
        Ok(removed)
    }

    /// Writes each `(directory, name, content)` to a temporary file in its directory, makes
    /// them durable, then renames them into place and makes that durable.
    fn write_all<'a>(
        &self,
        files: impl Iterator<Item = (PathBuf, String, &'a Bytes)>,
    ) -> Result<()> {
        let root = self.layout()?;
        let mut written = Vec::new();
        for (dir, name, content) in files {
            // Mode 0666 less the umask, as for any file a command creates: chunks are
            // public content, and one store can serve several users.
            let mut file = tempfile::Builder::new()
                .prefix(".tmp-")
                .permissions(fs::Permissions::from_mode(0o666))
                .tempfile_in(&dir)
                .map_err(|e| self.io(e))?;
            file.write_all(content).map_err(|e| self.io(e))?;
            written.push((file.into_temp_path(), dir.join(name)));
        }
        self.sync(root)?;
        for (file, path) in written {
            file.persist(path).map_err(|e| self.io(e.error))?;
        }
        self.sync(root)
    }
}

#[async_trait]
impl ChunkStore for DirStore {
    fn location(&self) -> &str {
        &self.inner.location
    }

    /// A local path means nothing on another machine (and recording it would make the same
    /// tree pack to different bytes in different home directories).
    fn routes(&self) -> Vec<String> {
        Vec::new()
    }

    async fn has_many(&self, keys: &[ChunkKey]) -> Result<Vec<bool>> {
        let keys = keys.to_vec();
        self.blocking(move |s| keys.iter().map(|k| s.has(k)).collect())
            .await
    }

    async fn put_many(&self, chunks: &[EncodedChunk]) -> Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let chunks = chunks.to_vec();
        self.blocking(move |s| s.put(&chunks)).await
    }

    async fn get_many(&self, keys: &[ChunkKey]) -> Result<Vec<Option<Bytes>>> {
        let keys = keys.to_vec();
        self.blocking(move |s| keys.iter().map(|k| s.get(k)).collect())
            .await
    }

    fn get_here(&self, key: &ChunkKey, buf: &mut Vec<u8>) -> Option<Result<bool>> {
        Some(self.inner.get_into(key, buf))
    }

    async fn stats(&self) -> Result<Vec<BackendStats>> {
        self.blocking(|s| s.stats()).await
    }

    async fn has_blocks(&self, ids: &[BlockId]) -> Result<Vec<bool>> {
        let ids = ids.to_vec();
        self.blocking(move |s| ids.iter().map(|id| s.has_block(id)).collect())
            .await
    }

    async fn put_blocks(&self, blocks: &[(BlockId, Bytes)]) -> Result<()> {
        if blocks.is_empty() {
            return Ok(());
        }
        let blocks = blocks.to_vec();
        self.blocking(move |s| s.put_blocks(&blocks)).await
    }

    async fn get_blocks(&self, ids: &[BlockId]) -> Result<Vec<Option<Bytes>>> {
        let ids = ids.to_vec();
        self.blocking(move |s| ids.iter().map(|id| s.get_block(id)).collect())
            .await
    }

    async fn list_chunks(&self, cursor: Option<Cursor>, limit: usize) -> Result<Page<ChunkKey>> {
        self.blocking(move |s| {
            dir_forget::list(&s.root, "chunks", cursor, limit, |name| {
                let key: ChunkKey = name.parse().ok()?;
                // Lower-case hex only, as the store writes it: one file per key.
                (key.to_hex() == name).then_some(key)
            })
            .map_err(|e| s.io(e))
        })
        .await
    }

    async fn delete_many(&self, keys: &[ChunkKey]) -> Result<u64> {
        let keys = keys.to_vec();
        self.blocking(move |s| s.remove(keys.iter().map(|k| s.chunk_path(k))))
            .await
    }

    async fn list_blocks(&self, cursor: Option<Cursor>, limit: usize) -> Result<Page<BlockId>> {
        self.blocking(move |s| {
            dir_forget::list(&s.root, "blocks", cursor, limit, |name| {
                let bytes = hex::decode(name).ok()?;
                // Lower-case hex only, as the store writes it: one file per id.
                (hex::encode(&bytes) == name).then(|| BlockId::from_slice(&bytes))?
            })
            .map_err(|e| s.io(e))
        })
        .await
    }

    async fn delete_blocks(&self, ids: &[BlockId]) -> Result<u64> {
        let ids = ids.to_vec();
        self.blocking(move |s| s.remove(ids.iter().map(|id| s.block_path(id))))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Chunk, Codec};

    fn encoded(n: usize) -> Vec<EncodedChunk> {
        let mut codec = Codec::new(3).unwrap();
        (0..n)
            .map(|i| {
                codec
                    .encode(&Chunk::new(format!("chunk {i}").repeat(100).into_bytes()))
                    .unwrap()
            })
            .collect()
    }

    #[tokio::test]
    async fn stores_reads_and_reports_absence() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path().join("s"), DirOptions::default()).unwrap();
        let chunks = encoded(3);
        let keys: Vec<_> = chunks.iter().map(|c| c.key()).collect();
        assert_eq!(store.has_many(&keys).await.unwrap(), [false; 3]);
        assert_eq!(store.get(keys[0]).await.unwrap(), None);
        store.put_many(&chunks[..2]).await.unwrap();
        assert_eq!(store.has_many(&keys).await.unwrap(), [true, true, false]);
        let got = store.get_many(&keys).await.unwrap();
        assert_eq!(got[0].as_ref(), Some(chunks[0].bytes()));
        assert_eq!(got[2], None);
        assert!(
            store
                .chunk_path(&keys[0])
                .starts_with(dir.path().join("s/chunks"))
        );
        // No temporary file is left next to the chunks.
        let leftovers = fs::read_dir(store.chunk_path(&keys[0]).parent().unwrap())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".tmp")
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[tokio::test]
    async fn concurrent_writers_of_the_same_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let chunks = encoded(20);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = DirStore::open(dir.path(), DirOptions { fsync: false }).unwrap();
            let chunks = chunks.clone();
            tasks.push(tokio::spawn(async move { store.put_many(&chunks).await }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let store = DirStore::open(dir.path(), DirOptions::default()).unwrap();
        let keys: Vec<_> = chunks.iter().map(|c| c.key()).collect();
        let mut codec = Codec::new(3).unwrap();
        for (chunk, got) in chunks.iter().zip(store.get_many(&keys).await.unwrap()) {
            codec.decode(&chunk.key(), &got.unwrap()).unwrap();
        }
    }

    #[tokio::test]
    async fn corrupt_chunks_are_errors_not_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path(), DirOptions::default()).unwrap();
        let chunk = encoded(1).remove(0);
        store.put(chunk.clone()).await.unwrap();
        let path = store.chunk_path(&chunk.key());
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let stored = store.get(chunk.key()).await.unwrap().unwrap();
        let err = Codec::new(3)
            .unwrap()
            .decode(&chunk.key(), &stored)
            .unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    }

    #[tokio::test]
    async fn blocks_live_apart_from_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path(), DirOptions::default()).unwrap();
        let short = BlockId::from_slice(&[7; 16]).unwrap();
        let long = BlockId::from_slice(&[7; 32]).unwrap();
        assert_eq!(
            store.has_blocks(&[short, long]).await.unwrap(),
            [false, false]
        );
        store
            .put_blocks(&[(short, Bytes::from_static(b"sixteen"))])
            .await
            .unwrap();
        assert_eq!(
            store.has_blocks(&[short, long]).await.unwrap(),
            [true, false]
        );
        let got = store.get_blocks(&[short, long]).await.unwrap();
        assert_eq!(got, [Some(Bytes::from_static(b"sixteen")), None]);
        // Not a chunk, whatever its bytes, and counted apart.
        let as_key = ChunkKey::from_bytes([7; 32]);
        assert!(!store.has(as_key).await.unwrap());
        store.put_many(&encoded(1)).await.unwrap();
        let stats = store.stats().await.unwrap();
        assert_eq!((stats[0].keys, stats[0].blocks), (Some(1), Some(1)));
        let huge = Bytes::from(vec![0; MAX_BLOCK_SIZE + 1]);
        assert!(store.put_blocks(&[(long, huge)]).await.is_err());
        // The store still opens, blocks directory and all.
        DirStore::open(dir.path(), DirOptions::default()).unwrap();
    }

    #[tokio::test]
    async fn a_first_write_of_blocks_makes_the_store_first() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let store = DirStore::open(&root, DirOptions::default()).unwrap();
        let huge = Bytes::from(vec![0; MAX_BLOCK_SIZE + 1]);
        let blocks = [
            (
                BlockId::from_slice(&[1; 16]).unwrap(),
                Bytes::from_static(b"x"),
            ),
            (BlockId::from_slice(&[2; 16]).unwrap(), huge),
        ];
        // Refused whole, before anything is made.
        assert!(store.put_blocks(&blocks).await.is_err());
        assert!(!root.join("blocks").exists());
        store.put_blocks(&blocks[..1]).await.unwrap();
        assert!(root.join(MARKER).exists());
        DirStore::open(&root, DirOptions::default()).unwrap();
    }

    #[test]
    fn refuses_a_directory_that_is_not_a_store() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("precious.txt"), b"data").unwrap();
        let err = DirStore::open(dir.path(), DirOptions::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("not a flisthub store"), "{err}");
        fs::write(dir.path().join(MARKER), b"something else").unwrap();
        assert!(DirStore::open(dir.path(), DirOptions::default()).is_err());
    }
}
