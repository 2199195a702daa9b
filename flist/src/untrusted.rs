//! Opening SQLite files that come from outside.
//!
//! An SQLite file is code as much as data: its schema can hold views, triggers, generated
//! columns, expression indexes and virtual tables, all of which run SQL (and SQL functions)
//! when an innocent-looking query touches them. A published flist, an uploaded 0-flist's
//! `flistdb.sqlite3` or an rfs `fl` file is written by someone else, so [`open`] does, before
//! any query of the caller's runs:
//!
//! * opens read-only, with `immutable=1`: SQLite neither looks for nor creates `-wal`,
//!   `-journal` or `-shm` side files and takes no locks. That is both faster (no probes per
//!   open) and right for these files: published flists are content-addressed and never change,
//!   and every writer of the formats read this way (flisthub's writers, zflist, rfs) leaves
//!   a complete file behind with no journal to replay. A file that did change while open
//!   could only give wrong answers or `SQLITE_CORRUPT`, which the readers' checks report as
//!   errors; no memory safety depends on it;
//! * turns on SQLite's defensive mode, turns off `trusted_schema`, triggers and views, checks
//!   cell sizes, and caps the length of any value SQLite will hand out ([`MAX_VALUE_LEN`]);
//! * compares `sqlite_schema` with the exact list of tables and indexes the format defines:
//!   no other table, index, view or trigger; every table an ordinary one (not virtual), with
//!   exactly the expected column names and declared types, in order, none generated or
//!   hidden; every index on the expected columns, none on expressions or partial.

use std::io::Read;
use std::path::Path;

use rusqlite::limits::Limit;
use rusqlite::{Connection, OpenFlags, config::DbConfig};

use crate::error::{Error, Result};

/// Longest string or BLOB SQLite returns from an untrusted file. Anything longer is an error
/// rather than an allocation of the size the file claims.
pub const MAX_VALUE_LEN: i32 = 256 * 1024 * 1024;

/// A table a format defines.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    /// Column names and declared types, in declaration order. Compared ignoring ASCII case,
    /// as SQLite itself does.
    pub columns: &'static [(&'static str, &'static str)],
    pub without_rowid: bool,
    /// Files of some writers lack it (older 0-flists have no `metadata` table).
    pub optional: bool,
}

/// An index a format defines (including the automatic index SQLite makes for a `PRIMARY
/// KEY` or `UNIQUE` column of a rowid table, `sqlite_autoindex_<table>_<n>`).
#[derive(Debug, Clone, Copy)]
pub struct Index {
    pub name: &'static str,
    pub table: &'static str,
    pub columns: &'static [&'static str],
    pub optional: bool,
}

/// Everything a file of a format may hold.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    pub tables: &'static [Table],
    pub indexes: &'static [Index],
}

/// Opens the SQLite file at `path` for reading, hardened as the module describes, after
/// checking its [`header`] and that its schema is exactly `schema`. A file that is not
/// SQLite gives [`Error::NotAnFlist`] or [`Error::Truncated`]; one whose schema differs,
/// [`Error::UnexpectedSchema`].
pub fn open(path: &Path, schema: &Schema) -> Result<Connection> {
    header(path)?;
    let conn = Connection::open_with_flags(
        immutable_uri(path)?,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false)?;
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_VALUE_LEN)?;
    // Neither reads the schema: they only change how pages are checked and read.
    conn.execute_batch("PRAGMA cell_size_check = ON; PRAGMA mmap_size = 0;")?;
    check_schema(&conn, schema).map_err(|reason| match reason {
        Refusal::Sqlite(e) => Error::NotAnFlist {
            path: path.to_owned(),
            reason: format!("SQLite cannot read it ({e})"),
        },
        Refusal::Schema(reason) => Error::UnexpectedSchema {
            path: path.to_owned(),
            reason,
        },
    })?;
    Ok(conn)
}

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// What the header of an SQLite file says about the application that wrote it.
pub struct Header {
    pub application_id: i32,
    pub user_version: u32,
}

/// Checks the 100-byte SQLite header: a file read here is an SQLite file in rollback-journal
/// mode (a WAL file depends on side files) whose length matches the page count the header
/// declares (SQLite itself would only notice truncation when it reads a missing page, deep
/// inside some query). [`open`] makes this check first.
pub fn header(path: &Path) -> Result<Header> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let actual = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let not_flist = |reason: &str| Error::NotAnFlist {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if actual == 0 {
        return Err(not_flist("the file is empty"));
    }
    let mut header = [0u8; 100];
    let n = read_up_to(&mut file, &mut header).map_err(|e| Error::io(path, e))?;
    let header = &header[..n];
    let magic_len = n.min(SQLITE_MAGIC.len());
    if header[..magic_len] != SQLITE_MAGIC[..magic_len] {
        return Err(not_flist("not an SQLite database"));
    }
    if n < 100 {
        return Err(Error::Truncated {
            path: path.to_owned(),
            expected: 100,
            actual,
        });
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536,
        n => u64::from(n),
    };
    if header[18] != 1 || header[19] != 1 {
        return Err(not_flist(
            "an SQLite file in WAL mode (these files must be self-contained)",
        ));
    }
    let change_counter = &header[24..28];
    let valid_for = &header[92..96];
    let pages = u64::from(u32::from_be_bytes([
        header[28], header[29], header[30], header[31],
    ]));
    if change_counter == valid_for && pages > 0 {
        let expected = pages * page_size;
        if actual < expected {
            return Err(Error::Truncated {
                path: path.to_owned(),
                expected,
                actual,
            });
        }
    }
    let be32 = |at: usize| [header[at], header[at + 1], header[at + 2], header[at + 3]];
    Ok(Header {
        application_id: i32::from_be_bytes(be32(68)),
        user_version: u32::from_be_bytes(be32(60)),
    })
}

fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

enum Refusal {
    Sqlite(rusqlite::Error),
    Schema(String),
}

impl From<rusqlite::Error> for Refusal {
    fn from(e: rusqlite::Error) -> Self {
        Refusal::Sqlite(e)
    }
}

fn refuse<T>(reason: String) -> std::result::Result<T, Refusal> {
    Err(Refusal::Schema(reason))
}

fn check_schema(conn: &Connection, schema: &Schema) -> std::result::Result<(), Refusal> {
    // Reading sqlite_schema parses the schema: with the settings above, that compiles the
    // declarations but runs none of them.
    let objects: Vec<(String, String, String)> = conn
        .prepare("SELECT type, name, tbl_name FROM sqlite_schema")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (kind, name, table) in &objects {
        let known = match kind.as_str() {
            "table" => schema.tables.iter().any(|t| t.name == name),
            "index" => schema
                .indexes
                .iter()
                .any(|i| i.name == name && i.table == table),
            _ => false,
        };
        if !known {
            return refuse(format!("unexpected {kind} {name:?}"));
        }
    }
    let present = |kind: &str, name: &str| objects.iter().any(|(k, n, _)| k == kind && n == name);
    for table in schema.tables {
        if !present("table", table.name) {
            if table.optional {
                continue;
            }
            return refuse(format!("table {:?} is missing", table.name));
        }
        check_table(conn, table)?;
    }
    for index in schema.indexes {
        if !present("index", index.name) {
            if index.optional {
                continue;
            }
            return refuse(format!("index {:?} is missing", index.name));
        }
        check_index(conn, index)?;
    }
    Ok(())
}

fn check_table(conn: &Connection, table: &Table) -> std::result::Result<(), Refusal> {
    let name = table.name;
    let (kind, without_rowid): (String, bool) = conn.query_row(
        "SELECT type, wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1",
        [name],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if kind != "table" {
        return refuse(format!("{name:?} is a {kind} table, not an ordinary one"));
    }
    if without_rowid != table.without_rowid {
        return refuse(format!(
            "table {name:?} has the wrong storage (WITHOUT ROWID)"
        ));
    }
    let columns: Vec<(String, String, i64)> = conn
        .prepare("SELECT name, type, hidden FROM pragma_table_xinfo(?1) ORDER BY cid")?
        .query_map([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let same = columns.len() == table.columns.len()
        && columns.iter().zip(table.columns).all(|(found, expected)| {
            found.0.eq_ignore_ascii_case(expected.0)
                && found.1.eq_ignore_ascii_case(expected.1)
                && found.2 == 0
        });
    if !same {
        let found: Vec<String> = columns
            .iter()
            .map(|(n, t, hidden)| match hidden {
                0 => format!("{n} {t}"),
                _ => format!("{n} {t} (generated or hidden)"),
            })
            .collect();
        return refuse(format!(
            "table {name:?} has columns ({}), expected ({})",
            found.join(", "),
            table
                .columns
                .iter()
                .map(|(n, t)| format!("{n} {t}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

fn check_index(conn: &Connection, index: &Index) -> std::result::Result<(), Refusal> {
    let partial: bool = conn.query_row(
        "SELECT partial FROM pragma_index_list(?1) WHERE name = ?2",
        [index.table, index.name],
        |r| r.get(0),
    )?;
    let columns: Vec<Option<String>> = conn
        .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?
        .query_map([index.name], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let same = columns.len() == index.columns.len()
        && columns
            .iter()
            .zip(index.columns)
            .all(|(found, expected)| found.as_deref() == Some(*expected));
    if partial || !same {
        return refuse(format!(
            "index {:?} is not on ({}) alone",
            index.name,
            index.columns.join(", ")
        ));
    }
    Ok(())
}

/// The `file:` URI of `path` with `immutable=1`, every byte outside the unreserved set
/// percent-encoded (paths are bytes; SQLite decodes them back).
fn immutable_uri(path: &Path) -> Result<String> {
    use std::os::unix::ffi::OsStrExt;
    let absolute = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
    let mut uri = String::from("file://");
    for &b in absolute.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_escape_what_sqlite_would_read_as_syntax() {
        let uri = immutable_uri(Path::new("/tmp/a b?c#d%e")).unwrap();
        assert_eq!(uri, "file:///tmp/a%20b%3Fc%23d%25e?immutable=1");
    }
}
