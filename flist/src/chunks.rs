//! A file's chunks as an flist lists them, checked, and the chunks of every file of a walk
//! read in one pass over the chunk table (see [`Flist::walk_with_chunks`]).

use crate::error::{Error, Result, show};
use crate::node::{ChunkRef, Entry, NodeKind};
use crate::reader::Flist;

/// One row of the chunk table: ino, seq, start, length, key.
pub(crate) type ChunkRow = (i64, i64, i64, i64, Vec<u8>);

/// The chunks of the files of a [`Flist::walk_with_chunks`], read in one pass over the
/// chunk table.
pub struct ChunkScan<'a> {
    pub(crate) flist: &'a Flist,
    pub(crate) rows: rusqlite::Rows<'a>,
    /// The first row not yet given out (read ahead to see where a file's chunks end).
    pub(crate) next: Option<ChunkRow>,
    /// Every row has been read.
    pub(crate) done: bool,
    /// The largest inode whose rows have been read.
    pub(crate) last: i64,
}

impl ChunkScan<'_> {
    /// The chunks of a regular file, checked as [`Flist::chunks`] checks them.
    pub fn chunks(&mut self, file: &Entry) -> Result<Vec<ChunkRef>> {
        let size = regular_size(file)?;
        let ino = i64::try_from(file.ino).unwrap_or(i64::MAX);
        // Rows of this inode already passed (a file out of walk order, such as a hardlink
        // of one seen before): asked of the table directly.
        let passed = match &self.next {
            Some(row) => ino < row.0,
            None => ino <= self.last,
        };
        if passed {
            return self.flist.chunks(file);
        }
        let mut chunks = FileChunks::new(ino);
        loop {
            if self.next.is_none() && !self.done {
                self.next = match self.rows.next()? {
                    Some(r) => Some((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                    None => {
                        self.done = true;
                        None
                    }
                };
                if let Some(row) = &self.next {
                    self.last = self.last.max(row.0);
                }
            }
            match self.next.take() {
                Some(row) if row.0 < ino => {} // a file the walk skipped
                Some((row_ino, seq, start, length, key)) if row_ino == ino => {
                    chunks.push(seq, start, length, key)?;
                }
                other => {
                    self.next = other;
                    return chunks.finish(size);
                }
            }
        }
    }
}

/// The size of a regular file; anything else has no chunks.
pub(crate) fn regular_size(file: &Entry) -> Result<u64> {
    match file.node.kind {
        NodeKind::Regular { size } => Ok(size),
        _ => Err(Error::Conflict {
            path: show(&file.name),
            reason: "not a regular file".into(),
        }),
    }
}

/// A file's chunks as they are read, checked to be numbered from 0 and contiguous.
pub(crate) struct FileChunks {
    ino: i64,
    chunks: Vec<ChunkRef>,
    offset: u64,
}

impl FileChunks {
    pub(crate) fn new(ino: i64) -> Self {
        FileChunks {
            ino,
            chunks: Vec::new(),
            offset: 0,
        }
    }

    pub(crate) fn ino(&self) -> i64 {
        self.ino
    }

    /// Adds the next chunk (the columns of its row), checked; a copy of it.
    pub(crate) fn push(
        &mut self,
        seq: i64,
        start: i64,
        length: i64,
        key: Vec<u8>,
    ) -> Result<ChunkRef> {
        let ino = self.ino;
        let bad = |what: &str| Error::Corrupt(format!("inode {ino}, chunk {seq}: {what}"));
        if seq != self.chunks.len() as i64 {
            return Err(bad("chunk numbers are not contiguous from 0"));
        }
        if start < 0 || start as u64 != self.offset {
            return Err(bad("does not start where the previous chunk ended"));
        }
        let length = u32::try_from(length)
            .ok()
            .filter(|&l| l > 0)
            .ok_or_else(|| bad("invalid length"))?;
        let key: [u8; 32] = key.try_into().map_err(|_| bad("key is not 32 bytes"))?;
        let chunk = ChunkRef {
            key,
            offset: self.offset,
            length,
        };
        self.chunks.push(chunk);
        self.offset += u64::from(length);
        Ok(chunk)
    }

    /// The chunks, once they add up to the file's `size`.
    pub(crate) fn finish(self, size: u64) -> Result<Vec<ChunkRef>> {
        if self.offset != size {
            return Err(Error::Corrupt(format!(
                "inode {}: chunks add up to {} bytes, the file has {size}",
                self.ino, self.offset
            )));
        }
        Ok(self.chunks)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{ChunkRef, Flist, FlistWriter, Node, NodeKind, Timestamp, Walk};

    /// Files `a` (two chunks), `b` (empty), `c/d` (one chunk) and `e`, a second name of `a`.
    fn write(out: &Path) {
        let mut w = FlistWriter::create(out).unwrap();
        for (path, lengths) in [("a", &[3u32, 4][..]), ("b", &[]), ("c/d", &[5])] {
            let size = lengths.iter().map(|&l| u64::from(l)).sum();
            let node = Node {
                kind: NodeKind::Regular { size },
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: Timestamp { secs: 0, nanos: 0 },
            };
            let inode = w.add(path.as_bytes(), &node, &[]).unwrap();
            let mut offset = 0;
            for (seq, &length) in lengths.iter().enumerate() {
                let chunk = ChunkRef {
                    key: [seq as u8 + path.len() as u8; 32],
                    offset,
                    length,
                };
                w.add_chunk(inode, seq as u32, &chunk).unwrap();
                offset += u64::from(length);
            }
        }
        w.add_hardlink(b"e", b"a").unwrap();
        w.finish().unwrap();
    }

    /// A file's path, its chunks from the scan and those from one query.
    type Seen = (Vec<u8>, Vec<ChunkRef>, Vec<ChunkRef>);

    /// Each regular file's chunks from the scan, beside those of one query per file.
    fn scanned(f: &Flist) -> crate::Result<Vec<Seen>> {
        let mut seen = Vec::new();
        f.walk_with_chunks(|path, entry, scan| {
            if matches!(entry.node.kind, NodeKind::Regular { .. }) {
                seen.push((path.to_vec(), scan.chunks(entry)?, f.chunks(entry)?));
            }
            Ok(Walk::Continue)
        })?;
        Ok(seen)
    }

    #[test]
    fn the_scan_gives_what_one_query_per_file_gives_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.flist");
        write(&out);
        let seen = scanned(&Flist::open(&out).unwrap()).unwrap();
        let paths: Vec<&[u8]> = seen.iter().map(|(p, ..)| p.as_slice()).collect();
        // `e` comes after the scan passed `a`'s chunks: it is looked up on its own.
        assert_eq!(paths, [&b"a"[..], b"b", b"c/d", b"e"]);
        for (path, scan, query) in &seen {
            assert_eq!(scan, query, "{}", String::from_utf8_lossy(path));
        }
        assert_eq!(seen[0].1.len(), 2);
        assert!(seen[1].1.is_empty());

        // Renamed so that the walk meets `a` last, out of inode order.
        let db = rusqlite::Connection::open(&out).unwrap();
        db.execute("UPDATE entry SET name = x'7a' WHERE name = x'61'", [])
            .unwrap();
        drop(db);
        let seen = scanned(&Flist::open(&out).unwrap()).unwrap();
        assert_eq!(seen.len(), 4);
        for (path, scan, query) in &seen {
            assert_eq!(scan, query, "{}", String::from_utf8_lossy(path));
        }

        // A broken chunk list is an error from the scan as from the query.
        let db = rusqlite::Connection::open(&out).unwrap();
        db.execute("UPDATE chunk SET seq = 5 WHERE seq = 1", [])
            .unwrap();
        drop(db);
        let err = scanned(&Flist::open(&out).unwrap()).unwrap_err();
        assert!(err.to_string().contains("not contiguous"), "{err}");
    }
}
