//! The scrub's pass over the files: each file's keys read by the same walk as the garbage
//! collector's mark phase, each key asked of the store once per run, in batches, and what
//! the store found noted against every file naming the key.
//!
//! Memory: the set of keys already checked (a 34-byte key in a hash set: by arithmetic,
//! under 80 MiB for a million keys, as the mark phase), the keys found at fault, one batch,
//! and one outcome per file.

use std::collections::{HashMap, HashSet};

use chunkstore::{BlockId, ChunkKey, ChunkStore, Fault, Health};
use tokio::runtime::Handle;

use super::{FileReport, KeyProblem, Totals};
use crate::blobs::Blobs;
use crate::config::LimitsConfig;
use crate::error::{Error, Result};
use crate::gc::{Item, file_keys};

/// Keys per store round trip.
const BATCH: usize = 4096;
/// Keys at fault named per file.
pub(super) const PROBLEMS_SHOWN: usize = 10;

/// What the walk needs.
pub(super) struct Walk<'a> {
    pub blobs: &'a Blobs,
    pub limits: &'a LimitsConfig,
    pub store: &'a dyn ChunkStore,
    pub runtime: Handle,
    pub deep: bool,
}

/// Checks the files `(sha256, format)`; each one's outcome (none for a file gone since
/// the list was read) and the run's totals. Blocking.
pub(super) fn files(
    walk: &Walk<'_>,
    files: Vec<(String, String)>,
) -> Result<(Vec<FileReport>, Totals)> {
    let mut checker = Checker {
        walk,
        seen: HashSet::new(),
        bad: HashMap::new(),
        chunks: Vec::new(),
        blocks: Vec::new(),
        file: FileReport::default(),
        noted: HashSet::new(),
        totals: Totals::default(),
        failure: None,
    };
    let mut outcomes = Vec::new();
    for (sha256, format) in files {
        checker.file = FileReport {
            sha256: sha256.clone(),
            ..FileReport::default()
        };
        checker.noted.clear();
        let read = file_keys(walk.blobs, &sha256, &format, walk.limits, &mut |item, _| {
            checker.add(item);
        })?;
        checker.flush();
        if let Some(e) = checker.failure.take() {
            return Err(e);
        }
        if read {
            checker.totals.flists += 1;
            outcomes.push(std::mem::take(&mut checker.file));
        }
    }
    checker.totals.keys = checker.seen.len() as u64;
    Ok((outcomes, checker.totals))
}

struct Checker<'w, 'a> {
    walk: &'w Walk<'a>,
    /// Keys checked, or waiting in a batch.
    seen: HashSet<Item>,
    /// Keys checked and found at fault.
    bad: HashMap<Item, Health>,
    chunks: Vec<ChunkKey>,
    blocks: Vec<BlockId>,
    /// The outcome of the file being walked, and the keys at fault noted in it (a file
    /// may name a key more than once).
    file: FileReport,
    noted: HashSet<Item>,
    totals: Totals,
    /// The store's, which ends the run once the file's walk is done.
    failure: Option<Error>,
}

impl Checker<'_, '_> {
    fn add(&mut self, item: Item) {
        if self.failure.is_some() {
            return;
        }
        if !self.seen.insert(item) {
            // Checked already (for another file, or earlier in this one): noted again here.
            if let Some(health) = self.bad.get(&item).copied() {
                self.note(item, health);
            }
            return;
        }
        match item {
            Item::Chunk(key) => self.chunks.push(key),
            Item::Block(id) => self.blocks.push(id),
        }
        if self.chunks.len() + self.blocks.len() >= BATCH {
            self.flush();
        }
    }

    /// Checks the keys waiting.
    fn flush(&mut self) {
        let chunks = std::mem::take(&mut self.chunks);
        let blocks = std::mem::take(&mut self.blocks);
        if self.failure.is_some() {
            return;
        }
        let found = self.check(&chunks, &blocks);
        match found {
            Ok(found) => {
                for (item, health) in found {
                    if health == Health::Sound {
                        continue;
                    }
                    self.totals.count(health);
                    self.bad.insert(item, health);
                    self.note(item, health);
                }
            }
            Err(e) => self.failure = Some(e),
        }
    }

    fn note(&mut self, item: Item, health: Health) {
        if self.noted.insert(item) {
            self.file.note(item, health);
        }
    }

    fn check(&self, chunks: &[ChunkKey], blocks: &[BlockId]) -> Result<Vec<(Item, Health)>> {
        let walk = self.walk;
        let mut found = Vec::with_capacity(chunks.len() + blocks.len());
        if !chunks.is_empty() {
            let health = walk.runtime.block_on(walk.store.scrub(chunks, walk.deep))?;
            short(chunks.len(), health.len())?;
            found.extend(chunks.iter().map(|k| Item::Chunk(*k)).zip(health));
        }
        if !blocks.is_empty() {
            let health = self.check_blocks(blocks)?;
            found.extend(blocks.iter().map(|id| Item::Block(*id)).zip(health));
        }
        Ok(found)
    }

    /// Blocks as chunks are (`ChunkStore::scrub_blocks`), a copy being sound when it
    /// hashes to its id as its format does (0-flist: BLAKE2b-128, fl: BLAKE2b-256).
    fn check_blocks(&self, ids: &[BlockId]) -> Result<Vec<Health>> {
        let walk = self.walk;
        let sound = &crate::import::blocks::hashes_to;
        let health = walk
            .runtime
            .block_on(walk.store.scrub_blocks(ids, walk.deep, sound))?;
        short(ids.len(), health.len())?;
        Ok(health)
    }
}

/// A store that answers for fewer keys than asked is broken: its silence is not "sound".
fn short(asked: usize, answered: usize) -> Result<()> {
    match asked == answered {
        true => Ok(()),
        false => Err(Error::Internal(format!(
            "the store answered for {answered} of {asked} keys"
        ))),
    }
}

impl FileReport {
    fn note(&mut self, item: Item, health: Health) {
        let (fault, repaired) = match health {
            Health::Sound => return,
            Health::Repaired(fault) => (fault, true),
            Health::Lost(fault) => (fault, false),
        };
        match (fault, repaired) {
            (_, true) => self.repaired += 1,
            (Fault::Missing, false) => self.missing += 1,
            (Fault::Damaged, false) => self.damaged += 1,
        }
        if self.problems.len() < PROBLEMS_SHOWN {
            self.problems.push(KeyProblem {
                key: match item {
                    Item::Chunk(key) => format!("chunk {key}"),
                    Item::Block(id) => format!("block {id}"),
                },
                fault: match fault {
                    Fault::Missing => "missing",
                    Fault::Damaged => "damaged",
                }
                .to_owned(),
                repaired,
            });
        }
    }
}
