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
/// checking that its schema is exactly `schema`. A file that is not SQLite, or whose schema
/// differs, gives [`Error::NotAnFlist`] or [`Error::UnexpectedSchema`].
pub fn open(path: &Path, schema: &Schema) -> Result<Connection> {
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
