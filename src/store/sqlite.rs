//! The embedded file database: SQLite, through `rusqlite` with the bundled library.
//!
//! Why SQLite: a single file that users and responders can open with the ubiquitous `sqlite3`
//! shell (values are JSON text), decades of crash-safety engineering (write-ahead log, atomic
//! commits, recovery on open), and no server. `redb` was the alternative: pure Rust and fast,
//! but its files need a Rust program to inspect. The bundled library pins the SQLite version
//! and needs only a C compiler at build time.
//!
//! Crash safety: the database runs in WAL mode with `synchronous = FULL`; every
//! [`StateStore::commit`] is one transaction, so a kill at any point leaves either the old or the
//! new state and a file that opens (SQLite replays or discards the log on open). The schema
//! version is kept in `PRAGMA user_version` and an `application_id` marks the file as ours; a
//! file from a newer schema or another program is refused rather than altered.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{check, Evict, Item, StateError, StateStore, Table, Write};

/// The schema this build reads and writes.
pub const SCHEMA_VERSION: i64 = 1;
/// `PRAGMA application_id`: "THND".
const APPLICATION_ID: i64 = 0x5448_4e44;

const CREATE: &str = "
CREATE TABLE items (
    tbl        TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    expires_at INTEGER,
    recency    INTEGER NOT NULL,
    PRIMARY KEY (tbl, key)
) WITHOUT ROWID;
CREATE INDEX items_recency ON items (tbl, recency);
CREATE INDEX items_expiry ON items (tbl, expires_at) WHERE expires_at IS NOT NULL;
";

/// The state in one SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish()
    }
}

impl SqliteStore {
    /// Opens (creating when needed, with its folder) the state file at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StateError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|source| StateError::Folder { path: path.display().to_string(), source })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Self::with_connection(path, Connection::open_with_flags(path, flags), true)
    }

    /// Opens an existing state file without ever writing to it.
    pub fn open_read_only(path: &Path) -> Result<SqliteStore, StateError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Self::with_connection(path, Connection::open_with_flags(path, flags), false)
    }

    fn with_connection(
        path: &Path,
        connection: rusqlite::Result<Connection>,
        writable: bool,
    ) -> Result<SqliteStore, StateError> {
        let name = path.display().to_string();
        let db = |source: rusqlite::Error| StateError::backend(&name, source);
        let connection = connection.map_err(db)?;
        connection.busy_timeout(std::time::Duration::from_secs(10)).map_err(db)?;
        let store = SqliteStore { path: path.to_owned(), connection: Mutex::new(connection) };
        store.prepare(writable)?;
        Ok(store)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db_error(&self, source: rusqlite::Error) -> StateError {
        StateError::backend(&self.path.display().to_string(), source)
    }

    fn incompatible(&self, reason: String) -> StateError {
        StateError::Incompatible { path: self.path.display().to_string(), reason }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // Transactions roll back when dropped, so a poisoned connection is still consistent.
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Checks the file is ours and current, and creates the schema in a new file.
    fn prepare(&self, writable: bool) -> Result<(), StateError> {
        let mut conn = self.lock();
        let pragma = |conn: &Connection, name: &str| -> rusqlite::Result<i64> {
            conn.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
        };
        let application = pragma(&conn, "application_id").map_err(|e| self.not_a_state_file(e))?;
        let version = pragma(&conn, "user_version").map_err(|e| self.not_a_state_file(e))?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .map_err(|e| self.not_a_state_file(e))?;
        if tables > 0 && application != APPLICATION_ID {
            return Err(self.incompatible("not a trailhound state file (another program's SQLite database)".into()));
        }
        if version > SCHEMA_VERSION {
            return Err(self.incompatible(format!(
                "written by a newer trailhound (schema {version}; this build reads schema {SCHEMA_VERSION})"
            )));
        }
        if !writable {
            if tables == 0 {
                return Err(self.incompatible("empty file, not a trailhound state file".into()));
            }
            return Ok(());
        }
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| self.db_error(e))?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(|e| self.db_error(e))?;
        if tables == 0 {
            let tx = conn.transaction().map_err(|e| self.db_error(e))?;
            tx.execute_batch(CREATE).map_err(|e| self.db_error(e))?;
            tx.pragma_update(None, "application_id", APPLICATION_ID).map_err(|e| self.db_error(e))?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(|e| self.db_error(e))?;
            tx.commit().map_err(|e| self.db_error(e))?;
        }
        Ok(())
    }

    fn not_a_state_file(&self, error: rusqlite::Error) -> StateError {
        match error {
            rusqlite::Error::SqliteFailure(code, _) if code.code == rusqlite::ErrorCode::NotADatabase => {
                self.incompatible("not a SQLite database".into())
            }
            other => self.db_error(other),
        }
    }

    /// Runs SQLite's own consistency check; `Ok(())` when the file is sound.
    pub fn integrity_check(&self) -> Result<(), StateError> {
        let conn = self.lock();
        let verdict: String =
            conn.query_row("PRAGMA integrity_check", [], |row| row.get(0)).map_err(|e| self.db_error(e))?;
        if verdict == "ok" {
            Ok(())
        } else {
            Err(self.incompatible(format!("integrity check failed: {verdict}")))
        }
    }

    /// Items per table, for `trailhound state`.
    pub fn counts(&self) -> Result<Vec<(String, u64)>, StateError> {
        let conn = self.lock();
        let mut statement =
            conn.prepare("SELECT tbl, count(*) FROM items GROUP BY tbl ORDER BY tbl").map_err(|e| self.db_error(e))?;
        let rows = statement
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64)))
            .map_err(|e| self.db_error(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.db_error(e))
    }
}

fn read_item(row: &rusqlite::Row<'_>, offset: usize) -> rusqlite::Result<Item> {
    Ok(Item {
        value: row.get(offset)?,
        version: row.get::<_, i64>(offset + 1)? as u64,
        expires_at: row.get(offset + 2)?,
        recency: row.get(offset + 3)?,
    })
}

impl StateStore for SqliteStore {
    fn get_many(&self, table: Table, keys: &[String]) -> Result<Vec<Option<Item>>, StateError> {
        let conn = self.lock();
        let mut statement = conn
            .prepare_cached("SELECT value, version, expires_at, recency FROM items WHERE tbl = ?1 AND key = ?2")
            .map_err(|e| self.db_error(e))?;
        keys.iter()
            .map(|key| statement.query_row(params![table.name(), key], |row| read_item(row, 0)).optional())
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.db_error(e))
    }

    fn scan(&self, table: Table, after: Option<&str>, limit: usize) -> Result<Vec<(String, Item)>, StateError> {
        let conn = self.lock();
        let mut statement = conn
            .prepare_cached(
                "SELECT key, value, version, expires_at, recency FROM items
                 WHERE tbl = ?1 AND (?2 IS NULL OR key > ?2) ORDER BY key LIMIT ?3",
            )
            .map_err(|e| self.db_error(e))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement
            .query_map(params![table.name(), after, limit], |row| Ok((row.get(0)?, read_item(row, 1)?)))
            .map_err(|e| self.db_error(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.db_error(e))
    }

    fn commit(&self, writes: Vec<Write>) -> Result<(), StateError> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.db_error(e))?;
        {
            let mut version_of = tx
                .prepare_cached("SELECT version FROM items WHERE tbl = ?1 AND key = ?2")
                .map_err(|e| self.db_error(e))?;
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO items (tbl, key, value, version, expires_at, recency) VALUES (?1, ?2, ?3, 1, ?4, ?5)
                     ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value, version = version + 1,
                       expires_at = excluded.expires_at, recency = excluded.recency",
                )
                .map_err(|e| self.db_error(e))?;
            let mut delete =
                tx.prepare_cached("DELETE FROM items WHERE tbl = ?1 AND key = ?2").map_err(|e| self.db_error(e))?;
            for write in &writes {
                let (table, key, expect) = write.target();
                if expect != super::Expect::Any {
                    let current: Option<i64> = version_of
                        .query_row(params![table.name(), key], |row| row.get(0))
                        .optional()
                        .map_err(|e| self.db_error(e))?;
                    // Returning drops the transaction, which rolls every earlier write back.
                    check(expect, current.map(|v| v as u64), table, key)?;
                }
                match write {
                    Write::Put { table, key, value, expires_at, recency, .. } => {
                        upsert.execute(params![table.name(), key, value, expires_at, recency])
                    }
                    Write::Delete { table, key, .. } => delete.execute(params![table.name(), key]),
                }
                .map_err(|e| self.db_error(e))?;
            }
        }
        tx.commit().map_err(|e| self.db_error(e))
    }

    fn evict(&self, table: Table, what: Evict) -> Result<u64, StateError> {
        let conn = self.lock();
        let removed = match what {
            Evict::ExpiredBefore(time) => conn.execute(
                "DELETE FROM items WHERE tbl = ?1 AND expires_at IS NOT NULL AND expires_at < ?2",
                params![table.name(), time],
            ),
            Evict::KeepNewest(n) => conn.execute(
                "DELETE FROM items WHERE tbl = ?1 AND key NOT IN
                   (SELECT key FROM items WHERE tbl = ?1 ORDER BY recency DESC, key DESC LIMIT ?2)",
                params![table.name(), i64::try_from(n).unwrap_or(i64::MAX)],
            ),
        };
        removed.map(|n| n as u64).map_err(|e| self.db_error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_store_keeps_the_contract_and_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/state.db");
        super::super::contract::check(&SqliteStore::open(&path).expect("open"), true);
        let reopened = SqliteStore::open(&path).expect("reopen");
        reopened.integrity_check().expect("sound");
        assert_eq!(reopened.counts().expect("counts"), [("baseline".to_owned(), 1)]);
        let read_only = SqliteStore::open_read_only(&path).expect("read-only");
        assert!(read_only.commit(vec![Write::put(Table::Meta, "x", "1".into(), None, 0)]).is_err());
    }

    #[test]
    fn foreign_and_newer_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "this is not a database, just some text that is long enough.".repeat(20)).expect("w");
        let error = SqliteStore::open(&text).expect_err("text file");
        assert!(error.to_string().contains("not a SQLite database"), "{error}");

        let other = dir.path().join("other.db");
        Connection::open(&other).expect("db").execute_batch("CREATE TABLE t (x);").expect("table");
        let error = SqliteStore::open(&other).expect_err("foreign db");
        assert!(error.to_string().contains("not a trailhound state file"), "{error}");

        let newer = dir.path().join("newer.db");
        drop(SqliteStore::open(&newer).expect("create"));
        Connection::open(&newer).expect("db").pragma_update(None, "user_version", 99).expect("bump");
        let error = SqliteStore::open(&newer).expect_err("newer schema");
        assert!(error.to_string().contains("newer trailhound (schema 99"), "{error}");
    }
}
