//! A bounded channel from async code to a pipeline's blocking reader: the sender waits
//! (asynchronously) while the reader is behind, so memory stays bounded.

use std::io::{self, Read};

use bytes::Bytes;
use tokio::sync::mpsc;

/// A channel of at most `depth` pieces in flight; dropping the sender ends the stream, an
/// `Err` piece fails the reader's next read.
pub fn pipe(depth: usize) -> (mpsc::Sender<io::Result<Bytes>>, PipeReader) {
    let (tx, rx) = mpsc::channel(depth);
    (
        tx,
        PipeReader {
            rx,
            current: Bytes::new(),
        },
    )
}

/// The blocking end of [`pipe`]; read it on a blocking thread.
pub struct PipeReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(piece)) => self.current = piece,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
