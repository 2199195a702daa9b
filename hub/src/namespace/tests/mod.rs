//! Unit tests of every namespace rule on an in-memory database: the rules are functions of
//! a transaction and a time, so each test states the time and checks the rows.

mod changelog;
mod expire;
mod links;
mod other_writers;
mod publish;
mod rename_promote;
mod share;
mod tags;

use rusqlite::Connection;

use super::change::{Applied, Change, apply};
use super::read;
use super::source::Source;
use super::views::{Info, Kind, Listed};
use crate::blobs::Digest256;
use crate::error::{Error, Result};
use crate::facts::Facts;
use crate::inspect::Stats;
use crate::names::{FlistName, Names, RepoName, TagName, TaglinkName};

const NAMES: Names = Names { max_len: 255 };

fn repo(name: &str) -> RepoName {
    NAMES.repository(name).unwrap()
}

fn flist(name: &str) -> FlistName {
    NAMES.flist(name).unwrap()
}

fn tag(name: &str) -> TagName {
    NAMES.tag(name).unwrap()
}

fn taglink(name: &str) -> TaglinkName {
    NAMES.taglink(name).unwrap()
}

/// A file whose content is `seed`.
fn file(seed: &str) -> Digest256 {
    Digest256 {
        sha256: format!("{seed:0>64}"),
        md5: format!("{seed:0>32}"),
        size: seed.len() as u64 * 100,
        format: crate::formats::Format::Native,
    }
}

/// What a publisher records of a small file.
fn facts() -> Facts {
    Facts {
        metadata: std::collections::BTreeMap::new(),
        stats: Stats::default(),
        entries: 1,
    }
}

/// A namespace in memory, with the hub's schema.
struct Ns {
    conn: Connection,
}

impl Ns {
    fn new() -> Ns {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut conn).unwrap();
        Ns { conn }
    }

    /// Applies a change at `time`, committing it if it succeeds.
    fn at(&mut self, time: i64, change: Change) -> Result<Applied> {
        let tx = self.conn.transaction().unwrap();
        let applied = apply(&tx, &change, "tester", time)?;
        tx.commit().unwrap();
        Ok(applied)
    }

    fn publish(&mut self, time: i64, repository: &str, name: &str, seed: &str) -> Applied {
        self.at(
            time,
            Change::Publish {
                repository: repo(repository),
                name: flist(name),
                file: file(seed),
                facts: facts(),
                source: Source::Archive {
                    file: format!("{seed}.tar"),
                },
                contents: Vec::new(),
            },
        )
        .unwrap()
    }

    fn link(&mut self, time: i64, repository: &str, source: &str, link: &str) -> Result<Applied> {
        self.at(
            time,
            Change::Link {
                repository: repo(repository),
                source: flist(source),
                link: flist(link),
            },
        )
    }

    fn list(&self, repository: &str) -> Option<Vec<Listed>> {
        read::list(&self.conn, repository).unwrap()
    }

    /// `(name, kind)` of each listed entry, in order.
    fn names(&self, repository: &str) -> Vec<(String, Kind)> {
        self.list(repository)
            .unwrap_or_default()
            .into_iter()
            .map(|l| (l.name, l.kind))
            .collect()
    }

    fn info(&self, repository: &str, name: &str) -> Result<Info> {
        read::info(&self.conn, repository, &flist(name))
    }

    /// The sha256 `name` resolves to.
    fn resolves_to(&self, repository: &str, name: &str) -> Option<String> {
        self.info(repository, name)
            .ok()
            .and_then(|i| i.resolved)
            .map(|r| r.digest.sha256)
    }

    fn updated(&self, repository: &str) -> i64 {
        read::repositories(&self.conn)
            .unwrap()
            .into_iter()
            .find(|(name, _)| name == repository)
            .unwrap()
            .1
    }
}

/// The message of a failure, and that it is of the kind expected.
fn refused(result: Result<Applied>) -> Error {
    match result {
        Ok(applied) => panic!("accepted: {applied:?}"),
        Err(e) => e,
    }
}

fn not_found(result: Result<Applied>, message: &str) {
    match refused(result) {
        Error::NotFound(m) => assert_eq!(m, message),
        other => panic!("{other:?}"),
    }
}

fn link_conflict(result: Result<Applied>, message: &str) {
    match refused(result) {
        Error::LinkConflict(m) => assert_eq!(m, message),
        other => panic!("{other:?}"),
    }
}
