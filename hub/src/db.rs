//! The hub's SQLite database: one writer connection behind a lock (SQLite has one writer at a
//! time anyway, and the lock also serialises the file moves that go with a change, see
//! `namespace`), a pool of read-only connections for everything else, WAL so that readers
//! never wait for the writer, and migrations keyed by `user_version`.
//!
//! Work runs on tokio's blocking threads: rusqlite is synchronous.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// The schema, one entry per version; a database at version N gets entries N.. applied.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("schema/1.sql"),
    include_str!("schema/2.sql"),
    include_str!("schema/3.sql"),
    include_str!("schema/4.sql"),
    include_str!("schema/5.sql"),
    include_str!("schema/6.sql"),
    include_str!("schema/7.sql"),
    include_str!("schema/8.sql"),
    include_str!("schema/9.sql"),
    include_str!("schema/10.sql"),
    include_str!("schema/11.sql"),
];

/// Read connections at most: past that, reads wait for one to be free (opening a
/// connection costs more than the indexed reads the hub makes, and each holds a page cache).
const READERS: usize = 16;

/// How long a connection waits for a lock held by another process (the `token` CLI next to
/// a running hub) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Db(Arc<Inner>);

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Readers>,
    /// Signalled when a read connection is given back.
    returned: Condvar,
    /// A read connection kept for [`Db::data_version`] alone: the version it reports moves
    /// with every commit made through any other connection, and it makes none itself.
    watcher: Mutex<Option<Connection>>,
}

#[derive(Default)]
struct Readers {
    idle: Vec<Connection>,
    /// Connections open, idle or in use.
    open: usize,
}

impl Db {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Db> {
        let mut writer = Connection::open(path)?;
        writer.busy_timeout(BUSY_TIMEOUT)?;
        // FULL: a publish acknowledged to a client survives a power loss, not only a crash.
        writer.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )?;
        migrate(&mut writer)?;
        Ok(Db(Arc::new(Inner {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: Mutex::default(),
            returned: Condvar::new(),
            watcher: Mutex::default(),
        })))
    }

    /// Runs `f` with a read-only connection.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.read_now(f)).await?
    }

    /// Runs `f` with the writer connection, alone. `f` opens its own transaction, so that it
    /// can also do what must follow the commit while nobody else writes.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.write_now(f)).await?
    }

    /// [`Db::write`] for bookkeeping whose last changes may be lost in a power cut (usage
    /// counters): committed without waiting for the disk (`synchronous = NORMAL` in WAL
    /// mode: still atomic, and durable at the next checkpoint). The changes of the
    /// namespace never use it.
    pub async fn write_relaxed<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.write(move |conn| {
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            let result = f(conn);
            conn.pragma_update(None, "synchronous", "FULL")?;
            result
        })
        .await
    }

    /// SQLite's `data_version` as one connection sees it: a number that changes whenever a
    /// change is committed, by this process or another one. A read of shared memory, no
    /// disk access: cheap enough to ask before every cached answer.
    pub fn data_version(&self) -> Result<i64> {
        let mut watcher = self.0.watcher.lock().unwrap_or_else(|p| p.into_inner());
        let conn = match watcher.take() {
            Some(conn) => conn,
            None => self.open_reader()?,
        };
        let version = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        *watcher = Some(conn);
        Ok(version)
    }

    /// [`Db::read`] on the calling thread, for blocking contexts.
    pub fn read_now<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let lease = Lease {
            db: self,
            conn: Some(self.take_reader()?),
        };
        let conn = lease
            .conn
            .as_ref()
            .ok_or_else(|| Error::Internal("a read lease without its connection".into()))?;
        f(conn)
    }

    /// An idle read connection, a new one while there are fewer than [`READERS`], or the
    /// next one given back.
    fn take_reader(&self) -> Result<Connection> {
        let mut readers = self.lock_readers();
        loop {
            if let Some(conn) = readers.idle.pop() {
                return Ok(conn);
            }
            if readers.open < READERS {
                readers.open += 1;
                drop(readers);
                return self
                    .open_reader()
                    .inspect_err(|_| self.lock_readers().open -= 1);
            }
            readers = self
                .0
                .returned
                .wait(readers)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// [`Db::write`] on the calling thread, for blocking contexts.
    pub fn write_now<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self
            .0
            .writer
            .lock()
            .map_err(|_| Error::Internal("the database writer panicked earlier".into()))?;
        f(&mut conn)
    }

    fn lock_readers(&self) -> std::sync::MutexGuard<'_, Readers> {
        // A panic while holding this lock cannot leave the vector inconsistent.
        self.0.readers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open_reader(&self) -> Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.0.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(conn)
    }
}

/// A read connection in use; given back when dropped, or closed if its user panicked.
struct Lease<'a> {
    db: &'a Db,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut readers = self.db.lock_readers();
        match self.conn.take() {
            Some(conn) if !std::thread::panicking() => readers.idle.push(conn),
            _ => readers.open -= 1,
        }
        drop(readers);
        self.db.0.returned.notify_one();
    }
}

/// Brings the schema of `conn` to the newest version.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let version = version as usize;
    if version > MIGRATIONS.len() {
        return Err(Error::Config(format!(
            "the database has schema version {version}; this build knows up to {} (a newer flisthub wrote it)",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as u32 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Seconds since the epoch: the unit of every time the hub stores and 0-hub shows.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite3");
        drop(Db::open(&path).unwrap());
        let db = Db::open(&path).unwrap();
        let version: u32 = db
            .read_now(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(version as usize, MIGRATIONS.len());
        drop(db);
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Db::open(&path).err().unwrap().to_string();
        assert!(err.contains("schema version 99"), "{err}");
    }
}
