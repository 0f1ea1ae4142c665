//! The state store (SPEC §5): per-key baselines, carried aggregation state, known instance roles,
//! the dedup record and backfill checkpoints, behind one small interface.
//!
//! The interface is four operations on named tables of JSON items, chosen so that DynamoDB can
//! implement it too (one table with a `tbl#key` partition key):
//! - [`StateStore::get_many`] — `BatchGetItem`;
//! - [`StateStore::scan`] — `Query`/`Scan` in key order, paginated by the last key;
//! - [`StateStore::commit`] — all-or-nothing writes with per-item expectations (absent, or an
//!   exact version): `TransactWriteItems` with condition expressions;
//! - [`StateStore::evict`] — drop expired items or keep the most recent ones. DynamoDB does the
//!   first with its TTL attribute and the second is unnecessary there (items expire instead).
//!
//! Values are JSON text so that a user can read the file with `sqlite3` or `trailhound state`.
//! Two implementations: [`sqlite::SqliteStore`] (the file behind `--state`, and the daemon's)
//! and [`MemoryStore`] (for tests of the contract and of code written against the interface).
//! `scan` without `--state` uses no store at all ([`session::Session::in_memory`]), and a
//! replay reads a store without writing to it ([`session::Session::read_only`]).

#[cfg(any(test, feature = "testkit"))]
pub mod contract;
pub mod dynamodb;
pub mod memory;
pub mod session;
pub mod sqlite;

pub use memory::MemoryStore;

/// The tables. Each has its own key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Store-wide values: the event-time watermark.
    Meta,
    /// One item per long-term access key: its baseline.
    Baseline,
    /// Findings that later events may still aggregate or correlate with (SSE-C writes, bursts,
    /// chain companions) and the mass-delete facts, until their event-time horizon passes.
    Carry,
    /// Roles known to be used by EC2 instances, with the time they became known.
    Role,
    /// Finding ids already published (the daemon's dedup record).
    Dedup,
    /// Known SSE-C writers: (principal identity, bucket) pairs already alerted on.
    SsecWriter,
    /// Progress of a backfill.
    Checkpoint,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 7] =
        [Table::Meta, Table::Baseline, Table::Carry, Table::Role, Table::Dedup, Table::Checkpoint, Table::SsecWriter];

    /// The name used in the file.
    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Baseline => "baseline",
            Table::Carry => "carry",
            Table::Role => "role",
            Table::Dedup => "dedup",
            Table::Checkpoint => "checkpoint",
            Table::SsecWriter => "ssec_writer",
        }
    }

    /// The table with this name.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// A stored item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// JSON text.
    pub value: String,
    /// Incremented by every write; the basis of conditional writes.
    pub version: u64,
    /// When the item stops mattering (ms; event time for carried state, wall time for dedup).
    pub expires_at: Option<i64>,
    /// Recency used by [`Evict::KeepNewest`] (ms; a key's last use, say).
    pub recency: i64,
}

/// What a write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Anything (unconditional).
    Any,
    /// No item.
    Absent,
    /// An item at exactly this version.
    Version(u64),
}

/// One write of a [`StateStore::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Create or replace an item.
    Put {
        /// Table.
        table: Table,
        /// Key.
        key: String,
        /// JSON text.
        value: String,
        /// Expiry (ms).
        expires_at: Option<i64>,
        /// Recency (ms).
        recency: i64,
        /// Condition.
        expect: Expect,
    },
    /// Remove an item (absent is fine unless `expect` says otherwise).
    Delete {
        /// Table.
        table: Table,
        /// Key.
        key: String,
        /// Condition.
        expect: Expect,
    },
}

impl Write {
    /// An unconditional put.
    pub fn put(table: Table, key: impl Into<String>, value: String, expires_at: Option<i64>, recency: i64) -> Write {
        Write::Put { table, key: key.into(), value, expires_at, recency, expect: Expect::Any }
    }

    pub(crate) fn target(&self) -> (Table, &str, Expect) {
        match self {
            Write::Put { table, key, expect, .. } | Write::Delete { table, key, expect } => (*table, key, *expect),
        }
    }
}

/// What [`StateStore::evict`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evict {
    /// Items whose `expires_at` is before this time (ms).
    ExpiredBefore(i64),
    /// All but the `n` items of highest recency.
    KeepNewest(usize),
}

/// A state store failure.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A write's expectation did not hold; nothing of the commit was applied.
    #[error("conditional write failed on {table}/{key}: the item changed since it was read")]
    Conflict {
        /// Table name.
        table: &'static str,
        /// Key.
        key: String,
    },
    /// The file belongs to another program or a newer schema.
    #[error("state file `{path}`: {reason}")]
    Incompatible {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A stored value is not what this version of trailhound wrote.
    #[error("state item {table}/{key} is unreadable: {reason}")]
    Corrupt {
        /// Table name.
        table: &'static str,
        /// Key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The backend failed (the database, the service); the cause names what.
    #[error("state store `{store}` failed")]
    Backend {
        /// The file or table.
        store: String,
        /// The backend's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The folder of the file could not be created.
    #[error("cannot create the folder of state file `{path}`: {source}")]
    Folder {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl StateError {
    /// A backend failure of the store named `store`.
    pub fn backend(store: &str, source: impl std::error::Error + Send + Sync + 'static) -> StateError {
        StateError::Backend { store: store.to_owned(), source: Box::new(source) }
    }
}

/// The storage interface shared by the file database and memory (and, to come, DynamoDB).
///
/// **Blocking, by choice.** The callers are the stateful passes between batches and the dedup
/// wrapper around a sink, a handful of calls per batch; the embedded database is blocking by
/// nature, and a blocking interface keeps the pure passes free of async and lets tests use a
/// store directly. Async code calls it through [`crate::pipeline::Driver::blocking`] (tokio's
/// blocking threads), never on a runtime or rayon thread; a networked backend bridges to its
/// async client inside its own implementation. Stores are shared as `Arc<dyn StateStore>`.
pub trait StateStore: Send + Sync + std::fmt::Debug {
    /// The items at `keys`, in the same order (`None` where absent).
    fn get_many(&self, table: Table, keys: &[String]) -> Result<Vec<Option<Item>>, StateError>;
    /// Up to `limit` items with keys after `after` (all keys when `None`), in key order.
    fn scan(&self, table: Table, after: Option<&str>, limit: usize) -> Result<Vec<(String, Item)>, StateError>;
    /// Applies every write or none.
    fn commit(&self, writes: Vec<Write>) -> Result<(), StateError>;
    /// Removes expired or surplus items of `table`; returns how many.
    fn evict(&self, table: Table, what: Evict) -> Result<u64, StateError>;
    /// Every item of a table in key order (page by page unless the store knows better).
    fn scan_all(&self, table: Table) -> Result<Vec<(String, Item)>, StateError> {
        const PAGE: usize = 1_000;
        let mut all: Vec<(String, Item)> = Vec::new();
        loop {
            let page = self.scan(table, all.last().map(|(k, _)| k.as_str()), PAGE)?;
            let done = page.len() < PAGE;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }
    /// Whether other processes write this store at the same time (a fleet on DynamoDB): the
    /// session then re-reads what it needs before every batch and commits conditionally.
    fn shared(&self) -> bool {
        false
    }
    /// What this process has asked of a billed store so far (DynamoDB), for the run summary.
    fn usage(&self) -> Option<Usage> {
        None
    }
}

/// Requests and capacity units of a billed store, counted as DynamoDB on-demand bills them: a
/// strongly consistent read is one read unit per 4 KB of item, a transactional write two write
/// units per 1 KB, a scan one read unit per 4 KB scanned.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Requests made.
    pub requests: u64,
    /// Items read.
    pub items_read: u64,
    /// Items written or deleted.
    pub items_written: u64,
    /// Read capacity units.
    pub read_units: u64,
    /// Write capacity units.
    pub write_units: u64,
}

/// Reads every item of a table.
pub fn scan_all(store: &dyn StateStore, table: Table) -> Result<Vec<(String, Item)>, StateError> {
    store.scan_all(table)
}

/// Checks one expectation against the current version.
pub(crate) fn check(expect: Expect, current: Option<u64>, table: Table, key: &str) -> Result<(), StateError> {
    let holds = match expect {
        Expect::Any => true,
        Expect::Absent => current.is_none(),
        Expect::Version(v) => current == Some(v),
    };
    if holds {
        Ok(())
    } else {
        Err(StateError::Conflict { table: table.name(), key: key.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_keeps_the_contract() {
        contract::check(&MemoryStore::new(), true);
    }
}
