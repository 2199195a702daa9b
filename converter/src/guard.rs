//! A reader between the decompressor and the tar crate that follows the stream's 512-byte
//! headers as they pass, to bound what the crate would otherwise take on trust:
//!
//! * The crate reads a PAX record (`x`) or a GNU long name or link (`L`, `K`) whole, into
//!   memory, inside `entries()`, before its caller sees the entry: a header declaring a
//!   record of gigabytes costs gigabytes. Here such a header (and a global `g` one) is
//!   refused when it has passed, before any byte of its data does.
//! * Decompression work is bounded by a ratio of expanded to compressed bytes beyond a
//!   floor, so a few megabytes of a compressed stream cannot keep the hub inflating zeros
//!   for minutes.
//!
//! Data is never copied: headers (512 bytes) and the small PAX records that may change the
//! next entry's size are looked at as they pass, everything else is only counted. The
//! walk mirrors the crate's (`Archive::next_entry`): a local PAX `size` applies to the next
//! entry that is not itself an extension record, and GNU sparse headers may be followed by
//! extension blocks before the data. A header the crate will refuse (bad checksum, a size
//! that is not a number) ends the walk; from there bytes pass unobserved, as the crate
//! stops at that header.

use std::cell::Cell;
use std::io::{self, BufRead, Read};
use std::rc::Rc;

use crate::error::{Error, escape};

const BLOCK: usize = 512;

/// What the guard enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Largest `x`, `g`, `L` or `K` record.
    pub header_record: u64,
    /// Largest ratio of expanded to compressed bytes once `expansion_floor` bytes have
    /// come out; 0 for no bound.
    pub expansion_ratio: u64,
    pub expansion_floor: u64,
}

pub(crate) struct Guard<R> {
    inner: R,
    bounds: Bounds,
    /// Bytes the decompressor has taken, for a compressed input.
    compressed: Option<Rc<Cell<u64>>>,
    state: State,
    /// The header (or sparse extension block) being assembled.
    block: [u8; BLOCK],
    filled: usize,
    /// The data of a local PAX record, kept to learn the next entry's size.
    record: Vec<u8>,
    pax_size: Option<u64>,
    expanded: u64,
    /// Set when the input ended (see `ended`).
    ended: bool,
    /// The refusal, kept for the caller: the crate wraps or replaces the errors it gets.
    refused: Option<Error>,
}

enum State {
    Header,
    /// GNU sparse extension blocks, then `data` bytes of data and padding.
    SparseExtension {
        data: u64,
    },
    /// The data of a local PAX record, then `pad` bytes.
    Record {
        left: u64,
        pad: u64,
    },
    /// Data and padding nobody needs to look at.
    Skip(u64),
    /// The end-of-archive marker, or a header the crate refuses, has passed.
    Done,
}

impl<R: Read> Guard<R> {
    pub(crate) fn new(inner: R, bounds: Bounds, compressed: Option<Rc<Cell<u64>>>) -> Self {
        Guard {
            inner,
            bounds,
            compressed,
            state: State::Header,
            block: [0; BLOCK],
            filled: 0,
            record: Vec::new(),
            pax_size: None,
            expanded: 0,
            ended: false,
            refused: None,
        }
    }

    /// Whether the input ran out while it was being read, that is before tar's
    /// end-of-archive marker if the caller stopped reading at it.
    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// The refusal that failed a read, if any.
    pub(crate) fn take_refusal(&mut self) -> Option<Error> {
        self.refused.take()
    }

    fn refuse(&mut self, e: Error) -> io::Error {
        let text = e.to_string();
        self.refused = Some(e);
        io::Error::new(io::ErrorKind::InvalidData, text)
    }

    fn check_expansion(&mut self) -> Result<(), Error> {
        let Some(compressed) = &self.compressed else {
            return Ok(());
        };
        let (ratio, compressed) = (self.bounds.expansion_ratio, compressed.get());
        if ratio > 0
            && self.expanded > self.bounds.expansion_floor
            && self.expanded / compressed.max(1) > ratio
        {
            return Err(Error::ExpansionTooLarge {
                compressed,
                expanded: self.expanded,
                ratio,
            });
        }
        Ok(())
    }

    /// Follows the stream through `bytes`, which have just been read.
    fn observe(&mut self, mut bytes: &[u8]) -> Result<(), Error> {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Done => return Ok(()),
                State::Skip(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        self.state = State::Header;
                    }
                }
                State::Record { left, pad } => {
                    let n = (*left).min(bytes.len() as u64) as usize;
                    self.record.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    *left -= n as u64;
                    if *left == 0 {
                        self.pax_size = pax_size(&self.record);
                        self.state = skip(*pad);
                    }
                }
                State::Header | State::SparseExtension { .. } => {
                    let n = (BLOCK - self.filled).min(bytes.len());
                    self.block[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
                    self.filled += n;
                    bytes = &bytes[n..];
                    if self.filled == BLOCK {
                        self.filled = 0;
                        self.state = match self.state {
                            State::SparseExtension { data } => {
                                // `isextended` of a `GnuExtSparseHeader`.
                                if self.block[504] != 0 {
                                    State::SparseExtension { data }
                                } else {
                                    skip(data)
                                }
                            }
                            _ => self.header()?,
                        };
                    }
                }
            }
        }
        Ok(())
    }

    /// What follows the header in `self.block`.
    fn header(&mut self) -> Result<State, Error> {
        if self.block.iter().all(|&b| b == 0) {
            return Ok(State::Done);
        }
        let header = tar::Header::from_byte_slice(&self.block);
        let sum: u32 = self.block[..148]
            .iter()
            .chain(&self.block[156..])
            .map(|&b| u32::from(b))
            .sum::<u32>()
            + 8 * 32;
        let Ok(size) = header.entry_size() else {
            return Ok(State::Done);
        };
        if header.cksum().ok() != Some(sum) {
            return Ok(State::Done);
        }
        let kind = header.entry_type();
        let record = match kind.as_byte() {
            b'x' => Some("PAX"),
            b'g' => Some("global PAX"),
            b'L' => Some("GNU long name"),
            b'K' => Some("GNU long link name"),
            _ => None,
        };
        if let Some(record) = record {
            if size > self.bounds.header_record {
                return Err(Error::HeaderRecordTooLarge {
                    entry: escape(&header.path_bytes()),
                    kind: record,
                    size,
                    limit: self.bounds.header_record,
                });
            }
            let pad = padding(size);
            // The crate reads a local PAX record for the next entry only in a header it
            // recognises; any other is an entry of an unsupported type, refused later.
            if kind.is_pax_local_extensions()
                && (header.as_ustar().is_some() || header.as_gnu().is_some())
            {
                self.record.clear();
                return Ok(if size == 0 {
                    self.pax_size = pax_size(&[]);
                    skip(pad)
                } else {
                    State::Record { left: size, pad }
                });
            }
            return Ok(skip(size + pad));
        }
        let size = self.pax_size.take().unwrap_or(size);
        let Some(data) = size.checked_add(padding(size)) else {
            return Ok(State::Done);
        };
        if kind.is_gnu_sparse() && header.as_gnu().is_some_and(|g| g.is_extended()) {
            return Ok(State::SparseExtension { data });
        }
        Ok(skip(data))
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.refused {
            return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()));
        }
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.ended = true;
        }
        self.expanded += n as u64;
        if let Err(e) = self
            .check_expansion()
            .and_then(|()| self.observe(&buf[..n]))
        {
            return Err(self.refuse(e));
        }
        Ok(n)
    }
}

fn skip(n: u64) -> State {
    if n == 0 {
        State::Header
    } else {
        State::Skip(n)
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// The `size` of a PAX record, as the tar crate reads it (`pax_extensions_value`): the
/// first `size` key, if its value is a number and every record before it is well formed.
fn pax_size(record: &[u8]) -> Option<u64> {
    for extension in tar::PaxExtensions::new(record) {
        let extension = extension.ok()?;
        if extension.key() != Ok("size") {
            continue;
        }
        return extension.value().ok()?.parse().ok();
    }
    None
}

/// Counts the bytes a decompressor takes from its buffered input.
pub(crate) struct Consumed<B> {
    inner: B,
    count: Rc<Cell<u64>>,
}

impl<B> Consumed<B> {
    pub(crate) fn new(inner: B, count: Rc<Cell<u64>>) -> Self {
        Consumed { inner, count }
    }
}

impl<B: BufRead> Read for Consumed<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

impl<B: BufRead> BufRead for Consumed<B> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.count.set(self.count.get() + amount as u64);
        self.inner.consume(amount);
    }
}
