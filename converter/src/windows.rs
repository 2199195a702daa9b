//! The 512 KiB windows of the formats Zero-OS nodes read, hashed while a file is packed
//! ([`PackOptions::window_keys`](crate::PackOptions::window_keys)), so that the hub makes
//! the renditions of what it converts without reading the content a second time.
//!
//! The source thread only copies content into whole windows (a memory copy); the pack
//! workers hash them beside the chunks, and the keys come back through a channel of their
//! own, collected when the pack ends.

use std::collections::HashMap;
use std::io;

use crossbeam_channel::{Receiver, Sender};
use flist::InodeId;
use legacy::BLOCK_SIZE;
use legacy::window::WindowKeys;

/// The window keys of each regular file of a pack, by the path it was added under (names
/// of one inode share it: the first one added).
pub type FileWindows = HashMap<Vec<u8>, Vec<WindowKeys>>;

/// A whole window of one file, for a worker to hash.
pub(crate) struct WindowTask {
    pub inode: InodeId,
    pub index: u32,
    pub data: Vec<u8>,
}

/// A hashed window.
pub(crate) struct WindowDone {
    inode: InodeId,
    index: u32,
    keys: WindowKeys,
}

impl WindowTask {
    pub(crate) fn hash(self) -> WindowDone {
        WindowDone {
            inode: self.inode,
            index: self.index,
            keys: WindowKeys::of(&self.data),
        }
    }
}

/// Cuts one file's content, given in pieces, into windows: `send(index, window)`.
#[derive(Default)]
pub(crate) struct WindowCutter {
    buffer: Vec<u8>,
    index: u32,
}

impl WindowCutter {
    /// Takes the next piece of content; `send` gets every window it completes.
    pub(crate) fn feed(
        &mut self,
        mut piece: &[u8],
        send: &mut impl FnMut(u32, Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        const WINDOW: usize = BLOCK_SIZE as usize;
        while !piece.is_empty() {
            if self.buffer.capacity() == 0 {
                self.buffer.reserve_exact(WINDOW);
            }
            let take = (WINDOW - self.buffer.len()).min(piece.len());
            self.buffer.extend_from_slice(&piece[..take]);
            piece = &piece[take..];
            if self.buffer.len() == WINDOW {
                self.send_window(send)?;
            }
        }
        Ok(())
    }

    /// The last, shorter window (an empty file has none).
    pub(crate) fn finish(
        mut self,
        send: &mut impl FnMut(u32, Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.send_window(send)
    }

    fn send_window(
        &mut self,
        send: &mut impl FnMut(u32, Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        let index = self.index;
        self.index += 1;
        send(index, std::mem::take(&mut self.buffer))
    }
}

/// Collects the keys the workers send back, and the path of each file.
#[derive(Default)]
pub(crate) struct WindowCollector {
    paths: HashMap<InodeId, Vec<u8>>,
}

impl WindowCollector {
    pub(crate) fn file(&mut self, inode: InodeId, path: &[u8]) {
        self.paths.entry(inode).or_insert_with(|| path.to_vec());
    }

    /// Every file's windows in order, once the workers have stopped.
    pub(crate) fn finish(self, done: &Receiver<WindowDone>) -> FileWindows {
        let mut by_inode: HashMap<InodeId, Vec<(u32, WindowKeys)>> = HashMap::new();
        for window in done.try_iter() {
            by_inode
                .entry(window.inode)
                .or_default()
                .push((window.index, window.keys));
        }
        let mut files = FileWindows::with_capacity(self.paths.len());
        for (inode, path) in self.paths {
            let mut windows = by_inode.remove(&inode).unwrap_or_default();
            windows.sort_unstable_by_key(|(index, _)| *index);
            files.insert(path, windows.into_iter().map(|(_, keys)| keys).collect());
        }
        files
    }
}

/// The channel the workers send hashed windows on (unbounded: 60 bytes per 512 KiB of
/// content).
pub(crate) fn channel() -> (Sender<WindowDone>, Receiver<WindowDone>) {
    crossbeam_channel::unbounded()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_whatever_the_pieces() {
        let content: Vec<u8> = (0..(2 * BLOCK_SIZE as usize + 123))
            .map(|i| (i % 253) as u8)
            .collect();
        for piece in [1000, 65536, 700_000, content.len()] {
            let mut cutter = WindowCutter::default();
            let mut windows = Vec::new();
            let mut send = |index, data| {
                windows.push((index, data));
                Ok(())
            };
            for part in content.chunks(piece) {
                cutter.feed(part, &mut send).unwrap();
            }
            cutter.finish(&mut send).unwrap();
            let indexes: Vec<u32> = windows.iter().map(|(i, _)| *i).collect();
            let sizes: Vec<usize> = windows.iter().map(|(_, d)| d.len()).collect();
            assert_eq!(indexes, [0, 1, 2]);
            assert_eq!(sizes, [BLOCK_SIZE as usize, BLOCK_SIZE as usize, 123]);
            let joined: Vec<u8> = windows.into_iter().flat_map(|(_, d)| d).collect();
            assert!(joined == content);
        }
    }
}
