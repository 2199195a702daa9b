//! Content-defined chunking with FastCDC (2020), over any reader, with one reusable buffer.
//!
//! The `fastcdc` crate's own streaming iterator allocates a `max`-sized buffer per stream and
//! shifts it after every chunk; packing thousands of small files that way spends more time in
//! `memset` and `memmove` than in hashing. Here the buffer belongs to the chunker, is reused
//! for every file, and is refilled only when less than one maximal chunk is left in it.

use std::io::{self, Read};

use fastcdc::v2020::{self, Normalization};

use crate::codec::MAX_CHUNK_SIZE;
use crate::error::{Error, Result};

const NORMALIZATION: Normalization = Normalization::Level1;

/// Chunk size bounds for FastCDC, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkerParams {
    pub min: u32,
    pub avg: u32,
    pub max: u32,
}

impl Default for ChunkerParams {
    /// 128 KiB / 512 KiB / 2 MiB: big enough that a chunk is worth a round trip, small
    /// enough that a changed region costs little to re-upload.
    fn default() -> Self {
        ChunkerParams {
            min: 128 * 1024,
            avg: 512 * 1024,
            max: 2 * 1024 * 1024,
        }
    }
}

impl ChunkerParams {
    /// Name of the algorithm recorded in flist metadata.
    pub const ALGORITHM: &'static str = "fastcdc-2020";
    /// Normalisation level recorded in flist metadata.
    pub const NORMALIZATION_LEVEL: u8 = 1;

    pub fn validate(&self) -> Result<()> {
        let ChunkerParams { min, avg, max } = *self;
        let (min, avg, max) = (min as usize, avg as usize, max as usize);
        let problem = if !(v2020::MINIMUM_MIN..=v2020::MINIMUM_MAX).contains(&min) {
            format!(
                "min {min} is outside {}..={}",
                v2020::MINIMUM_MIN,
                v2020::MINIMUM_MAX
            )
        } else if !(v2020::AVERAGE_MIN..=v2020::AVERAGE_MAX).contains(&avg) {
            format!(
                "avg {avg} is outside {}..={}",
                v2020::AVERAGE_MIN,
                v2020::AVERAGE_MAX
            )
        } else if !(v2020::MAXIMUM_MIN..=MAX_CHUNK_SIZE).contains(&max) {
            format!(
                "max {max} is outside {}..={MAX_CHUNK_SIZE}",
                v2020::MAXIMUM_MIN
            )
        } else if !(min < avg && avg < max) {
            format!("need min < avg < max, got {min} / {avg} / {max}")
        } else if min % 2 + avg % 2 + max % 2 != 0 {
            "sizes must be even".to_owned()
        } else {
            return Ok(());
        };
        Err(Error::InvalidChunker(problem))
    }
}

/// Cuts byte streams into chunks. Keep one per thread; the buffer is reused.
pub struct Chunker {
    params: ChunkerParams,
    mask_s: u64,
    mask_l: u64,
    buffer: Vec<u8>,
}

impl Chunker {
    pub fn new(params: ChunkerParams) -> Result<Chunker> {
        params.validate()?;
        let (mask_s, mask_l) = v2020::select_masks(params.avg as usize, NORMALIZATION);
        Ok(Chunker {
            params,
            mask_s,
            mask_l,
            buffer: Vec::new(),
        })
    }

    pub fn params(&self) -> ChunkerParams {
        self.params
    }

    /// Reads `reader` to its end and calls `emit(offset, bytes)` for each chunk in order.
    /// Input shorter than `min` is one chunk; empty input gives none. Returns the byte count.
    pub fn chunk<R: Read>(
        &mut self,
        mut reader: R,
        mut emit: impl FnMut(u64, &[u8]) -> io::Result<()>,
    ) -> io::Result<u64> {
        let max = self.params.max as usize;
        // Two maximal chunks: after each refill at least one full window is available.
        if self.buffer.len() < 2 * max {
            self.buffer = vec![0; 2 * max];
        }
        let (mut start, mut end, mut eof, mut offset) = (0usize, 0usize, false, 0u64);
        loop {
            if !eof && end - start < max {
                self.buffer.copy_within(start..end, 0);
                end -= start;
                start = 0;
                while end < self.buffer.len() {
                    match reader.read(&mut self.buffer[end..]) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(n) => end += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            if start == end {
                return Ok(offset);
            }
            let window = &self.buffer[start..end];
            let (_, len) = v2020::cut(
                window,
                self.params.min as usize,
                self.params.avg as usize,
                max,
                self.mask_s,
                self.mask_l,
                self.mask_s << 1,
                self.mask_l << 1,
            );
            emit(offset, &window[..len])?;
            start += len;
            offset += len as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    }

    fn cuts(chunker: &mut Chunker, data: &[u8]) -> Vec<(u64, usize)> {
        let mut out = Vec::new();
        let n = chunker
            .chunk(data, |offset, bytes| {
                out.push((offset, bytes.len()));
                Ok(())
            })
            .unwrap();
        assert_eq!(n, data.len() as u64);
        out
    }

    #[test]
    fn chunks_cover_the_input_within_bounds() {
        let mut chunker = Chunker::new(ChunkerParams::default()).unwrap();
        let data = noise(20 << 20, 1);
        let cuts = cuts(&mut chunker, &data);
        let mut expected = 0;
        for (i, &(offset, len)) in cuts.iter().enumerate() {
            assert_eq!(offset, expected);
            assert!(len <= 2 << 20);
            if i + 1 < cuts.len() {
                assert!(len >= 128 << 10);
            }
            expected += len as u64;
        }
        assert_eq!(expected, data.len() as u64);
        let avg = data.len() / cuts.len();
        assert!((256 << 10..1 << 20).contains(&avg), "average chunk {avg}");
    }

    #[test]
    fn small_and_empty_inputs() {
        let mut chunker = Chunker::new(ChunkerParams::default()).unwrap();
        assert!(cuts(&mut chunker, &[]).is_empty());
        assert_eq!(cuts(&mut chunker, &noise(1000, 2)), [(0, 1000)]);
        assert_eq!(cuts(&mut chunker, &noise(128 << 10, 3)), [(0, 128 << 10)]);
    }

    #[test]
    fn boundaries_resynchronise_after_an_insertion() {
        let mut chunker = Chunker::new(ChunkerParams::default()).unwrap();
        let data = noise(16 << 20, 4);
        let mut edited = data[..5_000_000].to_vec();
        edited.extend_from_slice(b"a few inserted bytes");
        edited.extend_from_slice(&data[5_000_000..]);
        let before = cuts(&mut chunker, &data);
        let after = cuts(&mut chunker, &edited);
        let chunk_set = |data: &[u8], cuts: &[(u64, usize)]| {
            cuts.iter()
                .map(|&(o, l)| blake3::hash(&data[o as usize..o as usize + l]))
                .collect::<std::collections::HashSet<_>>()
        };
        let shared = chunk_set(&data, &before)
            .intersection(&chunk_set(&edited, &after))
            .count();
        assert!(
            shared + 2 >= before.len(),
            "{shared} of {} chunks shared",
            before.len()
        );
    }

    #[test]
    fn chunking_does_not_depend_on_read_sizes() {
        struct Dribble<'a>(&'a [u8]);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(4093);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut chunker = Chunker::new(ChunkerParams::default()).unwrap();
        let data = noise(6 << 20, 5);
        let whole = cuts(&mut chunker, &data);
        let mut dribbled = Vec::new();
        chunker
            .chunk(Dribble(&data), |o, b| {
                dribbled.push((o, b.len()));
                Ok(())
            })
            .unwrap();
        assert_eq!(whole, dribbled);
    }

    #[test]
    fn invalid_parameters_are_refused() {
        for (min, avg, max) in [
            (0, 512, 4096),
            (4096, 1024, 8192),
            (1 << 20, 2 << 20, 8 << 20),
            (1001, 4096, 8192),
        ] {
            assert!(
                Chunker::new(ChunkerParams { min, avg, max }).is_err(),
                "{min} {avg} {max}"
            );
        }
    }
}
