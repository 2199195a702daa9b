//! The content of regular files: worker threads take batches of spans (of one file or of
//! many small ones), read them (from a local store chunk by chunk on the worker's own thread,
//! through two buffers it reuses; from any other in one request per batch: chunks through
//! the chunk reader, or legacy blocks; each decoded and checked against its key and length
//! on the worker's own thread, so that decoding and hashing use every core) and write them at
//! their offsets into the files the walk created and left open. The worker that finishes a file
//! sets its attributes through the same handle (see `attributes`).

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chunkstore::Scratch;
use flist::{Node, Xattr};
use tokio::runtime::Handle;

use super::attributes::Restore;
use super::source::{Content, Origin, Span};
use super::{Problems, show};
use crate::Cancel;
use crate::progress::Progress;

/// A file being written: its handle stays open until its last chunk is written.
pub(super) struct Target {
    /// The file's path below the destination, for messages.
    pub(super) path: Vec<u8>,
    pub(super) ino: u64,
    pub(super) file: File,
    /// Set by the first chunk that could not be written; the file is removed afterwards.
    failed: AtomicBool,
    /// Spans not yet written or given up: the worker that takes it to zero finishes the file.
    left: AtomicUsize,
    /// What to restore once the content is in.
    node: Node,
    xattrs: Vec<Xattr>,
}

impl Target {
    pub(super) fn new(
        path: &[u8],
        ino: u64,
        file: File,
        spans: usize,
        node: Node,
        xattrs: Vec<Xattr>,
    ) -> Target {
        Target {
            path: path.to_vec(),
            ino,
            file,
            failed: AtomicBool::new(false),
            left: AtomicUsize::new(spans),
            node,
            xattrs,
        }
    }
}

/// One span to read and write.
pub(super) struct Piece {
    pub(super) target: Arc<Target>,
    pub(super) seq: usize,
    pub(super) span: Span,
}

/// What the workers share with the walk.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) content: Content,
    pub(super) runtime: Handle,
    pub(super) problems: Arc<Mutex<Problems>>,
    /// Inodes whose content could not be written completely.
    pub(super) incomplete: Arc<Mutex<HashSet<u64>>>,
    pub(super) progress: Arc<Progress>,
    pub(super) cancel: Cancel,
    pub(super) restore: Restore,
    /// Attributes that could not be restored.
    pub(super) warnings: Arc<Mutex<Vec<String>>>,
}

impl Shared {
    pub(super) fn run(&self, batches: &crossbeam_channel::Receiver<Vec<Piece>>) {
        let mut scratch = Scratch::default();
        for batch in batches {
            if self.cancel.is_cancelled() {
                continue; // drain without work so the walk can finish
            }
            if !self.write_here(&batch, &mut scratch) {
                self.write_fetched(&batch);
            }
        }
    }

    /// Reads and writes a batch span by span on this thread, through the same two buffers
    /// for every chunk (no memory allocated, nor faulted in, per chunk), where the content
    /// is local; `false`, with nothing done, where it is not (a store says so from its
    /// first chunk on).
    fn write_here(&self, batch: &[Piece], scratch: &mut Scratch) -> bool {
        for (i, piece) in batch.iter().enumerate() {
            if piece.target.failed.load(Ordering::Relaxed) {
                self.done(piece);
                continue;
            }
            let Some(data) = self.content.read_here(&piece.span, scratch) else {
                if i == 0 {
                    return false;
                }
                self.write(piece, Err("the store stopped reading locally".into()));
                continue;
            };
            self.write(piece, data.map_err(|e| e.to_string()));
        }
        true
    }

    /// Reads a batch in one request (on the runtime for a remote store) and writes it.
    fn write_fetched(&self, batch: &[Piece]) {
        let spans: Vec<Span> = batch.iter().map(|p| p.span).collect();
        let read = match self.runtime.block_on(self.content.read(&spans)) {
            Ok(read) => read,
            Err(e) => {
                let problem = e.to_string();
                for piece in batch {
                    self.fail(piece, &problem);
                    self.done(piece);
                }
                return;
            }
        };
        for (piece, data) in batch.iter().zip(read) {
            if piece.target.failed.load(Ordering::Relaxed) {
                self.done(piece);
                continue;
            }
            self.write(piece, data.as_deref().map_err(|e| e.to_string()));
        }
    }

    /// Writes one span's content (or reports why there is none) and counts it as dealt with.
    fn write(&self, piece: &Piece, data: Result<&[u8], String>) {
        let written = data.and_then(|data| {
            piece
                .target
                .file
                .write_all_at(data, piece.span.offset)
                .map_err(|e| format!("writing: {e}"))
        });
        match written {
            Ok(()) => {
                Progress::add(&self.progress.chunks, 1);
                Progress::add(&self.progress.content_bytes, u64::from(piece.span.length));
            }
            Err(problem) => self.fail(piece, &problem),
        }
        self.done(piece);
    }

    /// Counts a span of its file as dealt with; after the last one, a file written
    /// completely gets its attributes.
    fn done(&self, piece: &Piece) {
        let target = &piece.target;
        if target.left.fetch_sub(1, Ordering::AcqRel) != 1 || target.failed.load(Ordering::Acquire)
        {
            return;
        }
        let mut warn = |w: String| {
            let mut warnings = self.warnings.lock().unwrap_or_else(|e| e.into_inner());
            warnings.push(format!("{}: {w}", show(&target.path)));
        };
        let restored = self
            .restore
            .file(&target.file, &target.node, &target.xattrs, &mut warn);
        if let Err(e) = restored {
            Problems::push(&self.problems, format!("{}: {e}", show(&target.path)));
        }
    }

    /// Reports the first problem of a file (one per file, so that the count says how many
    /// files are broken) and marks it for removal.
    fn fail(&self, piece: &Piece, problem: &str) {
        let target = &piece.target;
        if target.failed.swap(true, Ordering::Relaxed) {
            return;
        }
        self.incomplete
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(target.ino);
        let what = match piece.span.origin {
            Origin::Chunk(_) => "chunk",
            Origin::Block(_) => "block",
        };
        Problems::push(
            &self.problems,
            format!(
                "{} ({what} {} at offset {}): {problem}",
                show(&target.path),
                piece.seq,
                piece.span.offset
            ),
        );
    }
}
