//! The state in one DynamoDB table, shared by a fleet of workers (SPEC §5).
//!
//! Item layout: partition key `pk` = `<table>#<key>` (`baseline#AKIA…`), with `tbl` and `k`
//! (the table and key again, for scans), `v` (the JSON value), `ver` (the version every write
//! increments, the basis of conditional writes), `recency`, `exp_ms` (the expiry in ms, as the
//! other stores keep it) and `expires_at` (the same in epoch seconds: the table's TTL
//! attribute). [`DynamoStore::create_table`] makes the table on-demand with TTL on.
//!
//! The four operations:
//! - `get_many`: `BatchGetItem` (100 keys a call, strongly consistent), unprocessed keys retried
//!   with backoff;
//! - `scan`: a `Scan` of the table's items filtered on `tbl`, paginated, sorted by key (DynamoDB
//!   scans are unordered); [`StateStore::scan_all`] reads a table once instead of page by page;
//! - `commit`: `TransactWriteItems`, every put an `Update` that increments `ver`, with the
//!   write's expectation as its condition (`attribute_not_exists(pk)`, or `ver = :read`). A
//!   cancelled transaction whose reasons include `ConditionalCheckFailed` is a
//!   [`StateError::Conflict`]: nothing was written, and the caller re-reads and retries. Above
//!   100 writes the commit is split, conditional writes first: every conditional write of a
//!   commit of up to 100 of them stays in one transaction, so a conflict still applies nothing;
//!   the unconditional writes that follow are set-like (baselines merged, carried findings keyed
//!   by id), so a crash between two transactions is repaired by redoing the batch.
//! - `evict`: left to DynamoDB's TTL (expired items disappear within days of `expires_at`), and
//!   no least-recently-used bound: storage is not the limit in DynamoDB.
//!
//! The interface is blocking; this store runs its SDK calls on a small runtime of its own and
//! waits for them, so it can be called from any thread that may block (tokio's blocking
//! threads, the main thread of `scan`), never from an async task.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, KeySchemaElement, KeyType, KeysAndAttributes,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, TransactWriteItem, Update,
};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Evict, Expect, Item, StateError, StateStore, Table, Usage, Write};
use crate::aws::{AwsOptions, BoxError};

/// Items per `TransactWriteItems` call (DynamoDB's limit).
pub const TRANSACTION_ITEMS: usize = 100;
/// Keys per `BatchGetItem` call (DynamoDB's limit).
const GET_BATCH: usize = 100;
/// Rounds for unprocessed keys before giving up.
const UNPROCESSED_ROUNDS: u32 = 8;

type Attributes = HashMap<String, AttributeValue>;

/// Counters of what the store asked of DynamoDB (see [`Usage`]).
#[derive(Debug, Default)]
struct Meter {
    requests: AtomicU64,
    items_read: AtomicU64,
    items_written: AtomicU64,
    read_units: AtomicU64,
    write_units: AtomicU64,
}

impl Meter {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A strongly consistent read of items of these sizes.
    fn read(&self, sizes: impl Iterator<Item = usize>) {
        let (mut items, mut units) = (0, 0);
        for size in sizes {
            items += 1;
            units += (size as u64).div_ceil(4096).max(1);
        }
        Meter::add(&self.items_read, items);
        Meter::add(&self.read_units, units);
    }
}

/// The size DynamoDB counts for an item: attribute names and values.
fn item_size(attributes: &Attributes) -> usize {
    attributes
        .iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
                    _ => 8,
                }
        })
        .sum()
}

/// One DynamoDB table as a [`StateStore`].
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    meter: Arc<Meter>,
    /// The store's own runtime; `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for DynamoStore {
    fn drop(&mut self) {
        // Without waiting: the store may be dropped on a thread that must not block.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore").field("table", &self.table).finish()
    }
}

impl DynamoStore {
    /// A store on `table`, reached as `options` say (region, endpoint, credentials).
    pub fn connect(options: &AwsOptions, table: &str) -> Result<DynamoStore, StateError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("trailhound-dynamodb")
            .enable_all()
            .build()
            .map_err(|e| StateError::backend(table, e))?;
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let options = options.clone();
        // Spawned, not `block_on`: this may be called from a thread inside another runtime.
        runtime.spawn(async move {
            let _ = sender.send(crate::aws::clients(&options).await);
        });
        let clients = receiver.recv().map_err(|e| StateError::backend(table, e))?;
        let meter = Arc::default();
        Ok(DynamoStore { client: clients.dynamodb, table: table.to_owned(), meter, runtime: Some(runtime) })
    }

    /// [`DynamoStore::connect`], then checks that the table exists (`trailhound state init`
    /// creates it), so a typo is one clear error before any work.
    pub fn open(options: &AwsOptions, table: &str) -> Result<DynamoStore, StateError> {
        let store = DynamoStore::connect(options, table)?;
        let (client, name) = (store.client.clone(), table.to_owned());
        let described = store.wait(async move { client.describe_table().table_name(name).send().await });
        match described {
            Ok(_) => Ok(store),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
                Err(StateError::Incompatible {
                    path: format!("dynamodb://{table}"),
                    reason: format!("no such table; create it with `trailhound state init dynamodb://{table}`"),
                })
            }
            Err(error) => Err(store.failed(error)),
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn failed(&self, source: impl Into<BoxError>) -> StateError {
        StateError::Backend { store: format!("dynamodb://{}", self.table), source: source.into() }
    }

    /// Runs a future on the store's runtime and waits for it.
    fn wait<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let task = async move {
            let _ = sender.send(future.await);
        };
        match &self.runtime {
            Some(runtime) => drop(runtime.spawn(task)),
            None => unreachable!("the runtime lives until the store is dropped"),
        }
        // The task only ends without sending if it panicked; that is a bug worth a panic here.
        receiver.recv().expect("a DynamoDB task panicked")
    }

    /// Creates the table (on-demand billing, TTL on `expires_at`) and waits until it is active.
    pub fn create_table(&self) -> Result<(), StateError> {
        let (client, table) = (self.client.clone(), self.table.clone());
        let created = self.wait(async move {
            let key = KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build()?;
            let attribute =
                AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build()?;
            let create = client
                .create_table()
                .table_name(&table)
                .key_schema(key)
                .attribute_definitions(attribute)
                .billing_mode(BillingMode::PayPerRequest);
            create.send().await?;
            for _ in 0..120 {
                let described = client.describe_table().table_name(&table).send().await?;
                if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let ttl = TimeToLiveSpecification::builder().enabled(true).attribute_name("expires_at").build()?;
            client.update_time_to_live().table_name(&table).time_to_live_specification(ttl).send().await?;
            Ok::<_, BoxError>(())
        });
        created.map_err(|e| self.failed(e))
    }

    /// Items per table (read whole, so each is checked) and the TTL setting, for
    /// `trailhound state`.
    pub fn report(&self) -> Result<(Vec<(String, u64)>, bool), StateError> {
        let mut counts = Vec::new();
        for table in Table::ALL {
            // Every item is read, not only counted: an item this version cannot read fails here.
            let count = self.all_of(table)?.len() as u64;
            if count > 0 {
                counts.push((table.name().to_owned(), count));
            }
        }
        let (client, name) = (self.client.clone(), self.table.clone());
        let ttl = self.wait(async move { client.describe_time_to_live().table_name(name).send().await });
        let ttl = ttl.map_err(|e| self.failed(e))?;
        let on =
            ttl.time_to_live_description().and_then(|d| d.time_to_live_status()).map(|s| s.as_str()) == Some("ENABLED");
        Ok((counts, on))
    }

    fn all_of(&self, table: Table) -> Result<Vec<(String, Item)>, StateError> {
        let (client, name, tbl, meter) = (self.client.clone(), self.table.clone(), table.name(), self.meter.clone());
        let items = self.wait(async move {
            let mut items = Vec::new();
            let mut start: Option<Attributes> = None;
            loop {
                let page = client
                    .scan()
                    .table_name(&name)
                    .filter_expression("tbl = :t")
                    .expression_attribute_values(":t", AttributeValue::S(tbl.to_owned()))
                    .consistent_read(true)
                    .set_exclusive_start_key(start)
                    .send()
                    .await?;
                Meter::add(&meter.requests, 1);
                // A scan is billed by what it reads, before the filter: at least this.
                let scanned: usize = page.items().iter().map(item_size).sum();
                Meter::add(&meter.read_units, (scanned as u64).div_ceil(4096).max(1));
                Meter::add(&meter.items_read, page.items().len() as u64);
                items.extend(page.items().iter().cloned());
                start = page.last_evaluated_key().cloned();
                if start.is_none() {
                    return Ok::<_, BoxError>(items);
                }
            }
        });
        let mut items: Vec<(String, Item)> = items
            .map_err(|e| self.failed(e))?
            .iter()
            .map(|attributes| keyed_item(table, attributes))
            .collect::<Result<_, StateError>>()?;
        items.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(items)
    }
}

fn pk(table: Table, key: &str) -> AttributeValue {
    AttributeValue::S(format!("{}#{key}", table.name()))
}

/// An item of the table that is not what this version of trailhound writes.
#[derive(Debug, thiserror::Error)]
#[error("attribute `{name}` is missing or not a {expected}")]
struct BadAttribute {
    name: &'static str,
    expected: &'static str,
}

fn text(attributes: &Attributes, name: &'static str) -> Result<String, BadAttribute> {
    match attributes.get(name) {
        Some(AttributeValue::S(text)) => Ok(text.clone()),
        _ => Err(BadAttribute { name, expected: "string" }),
    }
}

fn number(attributes: &Attributes, name: &'static str) -> Result<Option<i64>, BadAttribute> {
    match attributes.get(name) {
        Some(AttributeValue::N(n)) => n.parse().map(Some).map_err(|_| BadAttribute { name, expected: "number" }),
        None => Ok(None),
        Some(_) => Err(BadAttribute { name, expected: "number" }),
    }
}

/// The key and item an item of the table holds.
fn keyed_item(table: Table, attributes: &Attributes) -> Result<(String, Item), StateError> {
    let corrupt =
        |key: String, e: BadAttribute| StateError::Corrupt { table: table.name(), key, reason: e.to_string() };
    // An item without its `k` is still named in the error, by its partition key, so that an
    // operator knows which item to repair or delete.
    let key = text(attributes, "k").map_err(|e| corrupt(partition_key_name(table, attributes), e))?;
    let field = |e| corrupt(key.clone(), e);
    let item = Item {
        value: text(attributes, "v").map_err(field)?,
        version: number(attributes, "ver").map_err(field)?.unwrap_or(0) as u64,
        expires_at: number(attributes, "exp_ms").map_err(field)?,
        recency: number(attributes, "recency").map_err(field)?.unwrap_or(0),
    };
    Ok((key, item))
}

/// The key part of an item's partition key (`baseline#AKIA…` → `AKIA…`), or the whole of it.
fn partition_key_name(table: Table, attributes: &Attributes) -> String {
    match attributes.get("pk") {
        Some(AttributeValue::S(pk)) => {
            pk.strip_prefix(table.name()).and_then(|rest| rest.strip_prefix('#')).unwrap_or(pk).to_owned()
        }
        _ => String::new(),
    }
}

/// The transaction item of one write.
fn transact_item(table_name: &str, write: Write) -> Result<TransactWriteItem, BoxError> {
    let condition = |expect: Expect, values: &mut Attributes| match expect {
        Expect::Any => None,
        Expect::Absent => Some("attribute_not_exists(pk)".to_owned()),
        Expect::Version(version) => {
            values.insert(":read".into(), AttributeValue::N(version.to_string()));
            Some("ver = :read".to_owned())
        }
    };
    Ok(match write {
        Write::Put { table, key, value, expires_at, recency, expect } => {
            let mut values: Attributes = HashMap::from([
                (":tbl".into(), AttributeValue::S(table.name().to_owned())),
                (":k".into(), AttributeValue::S(key.clone())),
                (":v".into(), AttributeValue::S(value)),
                (":recency".into(), AttributeValue::N(recency.to_string())),
                (":zero".into(), AttributeValue::N("0".into())),
                (":one".into(), AttributeValue::N("1".into())),
            ]);
            let mut set =
                "SET tbl = :tbl, k = :k, v = :v, recency = :recency, ver = if_not_exists(ver, :zero) + :one".to_owned();
            let expiry = match expires_at {
                Some(ms) => {
                    values.insert(":exp_ms".into(), AttributeValue::N(ms.to_string()));
                    values.insert(":expires_at".into(), AttributeValue::N(ms.div_euclid(1000).to_string()));
                    set.push_str(", exp_ms = :exp_ms, expires_at = :expires_at");
                    ""
                }
                None => " REMOVE exp_ms, expires_at",
            };
            set.push_str(expiry);
            let condition = condition(expect, &mut values);
            let update = Update::builder()
                .table_name(table_name)
                .key("pk", pk(table, &key))
                .update_expression(set)
                .set_condition_expression(condition)
                .set_expression_attribute_values(Some(values))
                .build()?;
            TransactWriteItem::builder().update(update).build()
        }
        Write::Delete { table, key, expect } => {
            let mut values = Attributes::new();
            let condition = condition(expect, &mut values);
            let delete = Delete::builder()
                .table_name(table_name)
                .key("pk", pk(table, &key))
                .set_condition_expression(condition)
                .set_expression_attribute_values(Some(values).filter(|v| !v.is_empty()))
                .build()?;
            TransactWriteItem::builder().delete(delete).build()
        }
    })
}

/// What a cancelled transaction means.
enum Cancelled {
    /// A condition did not hold: (table, key) of the first such write.
    Conflict(Table, String),
    /// Anything else.
    Failed(BoxError),
}

impl StateStore for DynamoStore {
    fn get_many(&self, table: Table, keys: &[String]) -> Result<Vec<Option<Item>>, StateError> {
        let mut found: HashMap<String, Item> = HashMap::new();
        for chunk in keys.chunks(GET_BATCH) {
            let mut wanted: Vec<Attributes> =
                chunk.iter().map(|key| HashMap::from([("pk".to_owned(), pk(table, key))])).collect();
            wanted.dedup();
            let (client, name, meter) = (self.client.clone(), self.table.clone(), self.meter.clone());
            let responses = self.wait(async move {
                let mut responses: Vec<Attributes> = Vec::new();
                let mut round = 0;
                while !wanted.is_empty() {
                    round += 1;
                    if round > UNPROCESSED_ROUNDS {
                        return Err::<_, BoxError>("keys left unprocessed after every retry (throttled)".into());
                    }
                    let request =
                        KeysAndAttributes::builder().set_keys(Some(std::mem::take(&mut wanted))).consistent_read(true);
                    let output = client.batch_get_item().request_items(&name, request.build()?).send().await?;
                    Meter::add(&meter.requests, 1);
                    if let Some(items) = output.responses().and_then(|r| r.get(&name)) {
                        meter.read(items.iter().map(item_size));
                        responses.extend(items.iter().cloned());
                    }
                    // Throttled keys come back unprocessed: ask again after a pause.
                    if let Some(left) = output.unprocessed_keys().and_then(|u| u.get(&name)) {
                        wanted = left.keys().to_vec();
                        tokio::time::sleep(Duration::from_millis(50 << round.min(6))).await;
                    }
                }
                Ok(responses)
            });
            for attributes in responses.map_err(|e| self.failed(e))? {
                let (key, item) = keyed_item(table, &attributes)?;
                found.insert(key, item);
            }
        }
        Ok(keys.iter().map(|key| found.get(key).cloned()).collect())
    }

    fn scan(&self, table: Table, after: Option<&str>, limit: usize) -> Result<Vec<(String, Item)>, StateError> {
        let all = self.all_of(table)?;
        Ok(all.into_iter().filter(|(k, _)| after.is_none_or(|a| k.as_str() > a)).take(limit).collect())
    }

    fn scan_all(&self, table: Table) -> Result<Vec<(String, Item)>, StateError> {
        self.all_of(table)
    }

    fn commit(&self, mut writes: Vec<Write>) -> Result<(), StateError> {
        // Conditional writes first, so that up to 100 of them share one transaction.
        writes.sort_by_key(|w| w.target().2 == Expect::Any);
        let mut rest = writes;
        while !rest.is_empty() {
            let chunk: Vec<Write> = rest.drain(..rest.len().min(TRANSACTION_ITEMS)).collect();
            // Two write units per 1 KB of each item in a transaction.
            let units: u64 = chunk.iter().map(|w| (write_size(w) as u64).div_ceil(1024).max(1) * 2).sum();
            Meter::add(&self.meter.requests, 1);
            Meter::add(&self.meter.items_written, chunk.len() as u64);
            Meter::add(&self.meter.write_units, units);
            let targets: Vec<(Table, String)> = chunk.iter().map(|w| (w.target().0, w.target().1.to_owned())).collect();
            let items = chunk
                .into_iter()
                .map(|w| transact_item(&self.table, w))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.failed(e))?;
            let client = self.client.clone();
            let outcome = self.wait(async move {
                match client.transact_write_items().set_transact_items(Some(items)).send().await {
                    Ok(_) => Ok(()),
                    Err(error) => {
                        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
                        let reasons = match error.as_service_error() {
                            Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                                e.cancellation_reasons().to_vec()
                            }
                            _ => Vec::new(),
                        };
                        match reasons.iter().position(|r| r.code() == Some("ConditionalCheckFailed")) {
                            Some(at) => Err(Err(at)),
                            None => Err(Ok(BoxError::from(error))),
                        }
                    }
                }
            });
            let cancelled = match outcome {
                Ok(()) => continue,
                Err(Err(at)) => {
                    let (table, key) = targets.get(at).cloned().unwrap_or((Table::Meta, String::new()));
                    Cancelled::Conflict(table, key)
                }
                Err(Ok(error)) => Cancelled::Failed(error),
            };
            return Err(match cancelled {
                Cancelled::Conflict(table, key) => StateError::Conflict { table: table.name(), key },
                Cancelled::Failed(error) => self.failed(error),
            });
        }
        Ok(())
    }

    fn evict(&self, _table: Table, _what: Evict) -> Result<u64, StateError> {
        // DynamoDB's TTL deletes expired items; the table needs no bound on its size.
        Ok(0)
    }

    fn shared(&self) -> bool {
        true
    }

    fn usage(&self) -> Option<Usage> {
        let m = &self.meter;
        Some(Usage {
            requests: m.requests.load(Ordering::Relaxed),
            items_read: m.items_read.load(Ordering::Relaxed),
            items_written: m.items_written.load(Ordering::Relaxed),
            read_units: m.read_units.load(Ordering::Relaxed),
            write_units: m.write_units.load(Ordering::Relaxed),
        })
    }
}

/// The size of the item a write leaves (its key, value and numbers).
fn write_size(write: &Write) -> usize {
    match write {
        Write::Put { table, key, value, .. } => 2 * (table.name().len() + key.len()) + value.len() + 60,
        Write::Delete { table, key, .. } => table.name().len() + key.len() + 4,
    }
}
