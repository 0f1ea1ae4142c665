//! Keeps [`Stateful`] in a [`StateStore`]: restores it when a command starts, loads the baselines
//! of the keys a batch uses before the batch runs, and saves what the batch changed in one
//! all-or-nothing commit after it (so a crash loses at most the batch in progress, which a
//! redelivery or re-run then processes again with the same result).
//!
//! Layout (every value JSON):
//! - `meta/watermark`: the latest event time seen (ms);
//! - `baseline/<access key id>`: a [`KeyState`], recency = last use, so the least recently seen
//!   keys are evicted beyond `max_keys`;
//! - `carry/f/<rule>/<finding id>`: a carried finding ([`crate::finding::StoredFinding`]),
//!   expiring with its horizon; `carry/x/<slot digest>`: a carried delete, ransom-note or mint
//!   fact, one per [`Fact::slot`] (so each item stays small, and a batch rewrites only the slots
//!   it changed); `carry/facts` (all facts in one item) is read from state written before, and
//!   replaced;
//! - `role/<role name>`: `{"since": ms}`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{scan_all, Evict, Expect, StateError, StateStore, Table, Write};
use crate::analyze::baseline::KeyState;
use crate::analyze::passes::{Batch, Stateful};
use crate::analyze::writers::{pair_of, KnownWriter, MAX_KNOWN_WRITERS};
use crate::detect::facts::Fact;
use crate::detect::rules;
use crate::event::time::Millis;
use crate::finding::Finding;
use crate::finding::StoredFinding;
use crate::settings::Settings;

const WATERMARK: &str = "watermark";
/// On a shared store, bumped by every commit: see [`Session::advance`].
const EPOCH: &str = "epoch";
/// All carried facts in one item, as state written before 2026-12-01 holds them.
const LEGACY_FACTS: &str = "facts";
const FACT_PREFIX: &str = "x/";
const FINDING_PREFIX: &str = "f/";

#[derive(Serialize, Deserialize)]
struct RoleValue {
    since: Millis,
}

/// The stateful passes, bound to a store or not, for the length of a command.
#[derive(Debug)]
pub struct Session {
    /// Where state is read from (none: it lives in memory for this command only).
    store: Option<Arc<dyn StateStore>>,
    /// Whether what is learned is written back.
    writes: bool,
    /// The state.
    pub stateful: Stateful,
    stored_carry: HashSet<String>,
    /// What the store holds of the facts (item key → value) and the watermark, so unchanged
    /// ones are not rewritten.
    stored_facts: HashMap<String, String>,
    stored_watermark: Option<Millis>,
    /// Versions of the items read (a shared store's writes are conditional on them).
    versions: HashMap<(Table, String), u64>,
}

/// Attempts at a batch on a shared store before its conflicts are an error.
pub const SHARED_ATTEMPTS: u32 = 12;

fn corrupt(table: Table, key: &str, error: impl ToString) -> StateError {
    StateError::Corrupt { table: table.name(), key: key.to_owned(), reason: error.to_string() }
}

/// A slot's item key: fixed length, whatever the principal and bucket names.
fn slot_digest(slot: &str) -> String {
    use sha2::Digest;
    crate::hash::sha256_hex(sha2::Sha256::new_with_prefix(slot.as_bytes()))
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serializing plain data structs (strings, numbers, maps with string keys) cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

impl Session {
    /// State in memory for this command only (`scan` without `--state`): nothing is read or
    /// written, and baselines are bounded by `max_keys` in memory.
    pub fn in_memory(settings: Settings) -> Session {
        Session {
            store: None,
            writes: false,
            stateful: Stateful::new(settings),
            stored_carry: HashSet::new(),
            stored_facts: HashMap::new(),
            stored_watermark: None,
            versions: HashMap::new(),
        }
    }

    /// Restores the state from `store`; every batch writes what it changed back.
    pub fn open(store: Arc<dyn StateStore>, settings: Settings) -> Result<Session, StateError> {
        Self::restore(store, settings, true)
    }

    /// Restores the state from `store` but never writes to it (a replay without
    /// `--update-state`): what the command learns stays in memory.
    pub fn read_only(store: Arc<dyn StateStore>, settings: Settings) -> Result<Session, StateError> {
        Self::restore(store, settings, false)
    }

    /// Restores the watermark, carried findings and facts, and known instance roles.
    fn restore(store: Arc<dyn StateStore>, settings: Settings, writes: bool) -> Result<Session, StateError> {
        let mut session = Session { store: Some(store), writes, ..Session::in_memory(settings) };
        session.reload()?;
        Ok(session)
    }

    /// Reads the watermark, carried findings and facts, and known instance roles into fresh
    /// state (the baselines are loaded per batch).
    fn reload(&mut self) -> Result<(), StateError> {
        let Some(store) = self.store.clone() else { return Ok(()) };
        let mut stateful = Stateful::new(self.stateful.settings().clone());
        let mut versions = HashMap::new();
        let mut meta = store.get_many(Table::Meta, &[WATERMARK.to_owned(), EPOCH.to_owned()])?.into_iter();
        let watermark = match meta.next().flatten() {
            Some(item) => {
                versions.insert((Table::Meta, WATERMARK.to_owned()), item.version);
                Some(item.value.parse::<Millis>().map_err(|e| corrupt(Table::Meta, WATERMARK, e))?)
            }
            None => None,
        };
        if let Some(epoch) = meta.next().flatten() {
            versions.insert((Table::Meta, EPOCH.to_owned()), epoch.version);
        }
        let mut carry = Vec::new();
        let mut facts = Vec::new();
        let mut stored_carry = HashSet::new();
        let mut stored_facts = HashMap::new();
        for (key, item) in scan_all(store.as_ref(), Table::Carry)? {
            versions.insert((Table::Carry, key.clone()), item.version);
            if key == LEGACY_FACTS {
                facts.extend(
                    serde_json::from_str::<Vec<Fact>>(&item.value).map_err(|e| corrupt(Table::Carry, &key, e))?,
                );
                stored_facts.insert(key, item.value);
                continue;
            }
            if key.starts_with(FACT_PREFIX) {
                facts.push(serde_json::from_str::<Fact>(&item.value).map_err(|e| corrupt(Table::Carry, &key, e))?);
                stored_facts.insert(key, item.value);
                continue;
            }
            let stored: StoredFinding =
                serde_json::from_str(&item.value).map_err(|e| corrupt(Table::Carry, &key, e))?;
            let rule = rules::info(stored.rule())
                .ok_or_else(|| corrupt(Table::Carry, &key, format!("unknown rule `{}`", stored.rule())))?;
            carry.push(Finding::from_stored(stored, rule));
            stored_carry.insert(key);
        }
        let mut roles = Vec::new();
        for (role, item) in scan_all(store.as_ref(), Table::Role)? {
            let value: RoleValue = serde_json::from_str(&item.value).map_err(|e| corrupt(Table::Role, &role, e))?;
            versions.insert((Table::Role, role.clone()), item.version);
            roles.push((role, value.since));
        }
        stateful.restore(watermark, carry, facts, roles);
        self.stateful = stateful;
        self.stored_carry = stored_carry;
        self.stored_facts = stored_facts;
        self.stored_watermark = watermark;
        self.versions = versions;
        Ok(())
    }

    /// Whether other processes write the store at the same time.
    fn shared(&self) -> bool {
        self.writes && self.store.as_ref().is_some_and(|s| s.shared())
    }

    /// Runs a batch: loads the baselines it needs, advances, saves. Returns the new findings.
    ///
    /// On a shared store (a fleet on DynamoDB) another worker may have changed the state since
    /// this one read it, so every batch starts from what the store holds now, and its commit is
    /// conditional on the versions read. Every commit also bumps one `meta/epoch` item, on the
    /// version read: two batches that ran on the same state cannot both commit, even when they
    /// write different items (an SSE-C write in one object and the lifecycle change that makes
    /// it a chain in another would otherwise each miss the other). On a conflict nothing was
    /// written: the batch is run again on the state as it is then (which now includes the other
    /// worker's), up to [`SHARED_ATTEMPTS`] times. The passes are deterministic and baselines
    /// set-like, so the batch that loses a race concludes what is still new after the winner's.
    /// Commits are thus serialized across the fleet (decoding is not): tens of commits a second,
    /// each a whole message of objects.
    pub fn advance(&mut self, batch: Batch) -> Result<Vec<Finding>, StateError> {
        if !self.shared() {
            return self.advance_once(batch);
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.reload()?;
            match self.advance_once(batch.clone()) {
                Err(StateError::Conflict { table, key }) if attempt < SHARED_ATTEMPTS => {
                    tracing::debug!(attempt, table, key = %crate::finding::clean(&key), "state changed meanwhile; batch again");
                    // Jittered backoff: the writers that collided should not collide again.
                    let jitter = (std::process::id() as u64 * 7 + attempt as u64 * 13) % 50;
                    std::thread::sleep(std::time::Duration::from_millis(20 * attempt as u64 + jitter));
                }
                other => return other,
            }
        }
    }

    fn advance_once(&mut self, batch: Batch) -> Result<Vec<Finding>, StateError> {
        self.load_baselines(batch.observations.iter().map(|o| o.key.as_str()))?;
        // Every SSE-C write reported by this batch has a member in it (its pair is among these):
        // carried ones are not judged again (see KnownWriters::apply).
        self.load_writers(batch.findings.iter().filter_map(pair_of))?;
        let findings = self.stateful.advance(batch);
        if self.writes {
            self.save()?;
        } else if self.store.is_none() {
            // Nothing to save to: forget the least recently seen keys beyond the bound.
            self.stateful.baselines.clear_changed();
            self.stateful.baselines.shrink();
            self.stateful.writers.take_changed();
            self.stateful.writers.shrink();
        }
        Ok(findings)
    }

    /// Bounds the store (least recently seen keys beyond `max_keys`) at the end of a command.
    pub fn close(self) -> Result<(), StateError> {
        if let Some(store) = self.store.as_ref().filter(|_| self.writes) {
            store.evict(Table::Baseline, Evict::KeepNewest(self.stateful.settings().baseline.max_keys))?;
            store.evict(Table::SsecWriter, Evict::KeepNewest(MAX_KNOWN_WRITERS))?;
        }
        Ok(())
    }

    fn load_baselines<'k>(&mut self, keys: impl Iterator<Item = &'k str>) -> Result<(), StateError> {
        let wanted = keys.filter(|k| !self.stateful.baselines.contains(k)).map(str::to_owned).collect();
        for (key, state) in self.fetch::<KeyState>(Table::Baseline, wanted)? {
            self.stateful.baselines.load(key, state);
        }
        Ok(())
    }

    /// Reads the known-writer records of the batch's SSE-C write pairs that are not in memory.
    fn load_writers(&mut self, pairs: impl Iterator<Item = String>) -> Result<(), StateError> {
        let wanted = pairs.filter(|p| !self.stateful.writers.contains(p)).collect();
        for (pair, writer) in self.fetch::<KnownWriter>(Table::SsecWriter, wanted)? {
            self.stateful.writers.load(pair, writer);
        }
        Ok(())
    }

    /// The items of `wanted` keys that exist in `table`, parsed, with their versions noted for
    /// conditional writes.
    fn fetch<T: serde::de::DeserializeOwned>(
        &mut self,
        table: Table,
        mut wanted: Vec<String>,
    ) -> Result<Vec<(String, T)>, StateError> {
        let Some(store) = &self.store else { return Ok(Vec::new()) };
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let items = store.get_many(table, &wanted)?;
        let mut found = Vec::new();
        for (key, item) in wanted.into_iter().zip(items) {
            if let Some(item) = item {
                self.versions.insert((table, key.clone()), item.version);
                let value: T = serde_json::from_str(&item.value).map_err(|e| corrupt(table, &key, e))?;
                found.push((key, value));
            }
        }
        Ok(found)
    }

    /// Whether batches are written back to a store.
    pub fn writes(&self) -> bool {
        self.writes && self.store.is_some()
    }

    /// The store behind this session, if any.
    pub fn store(&self) -> Option<&Arc<dyn StateStore>> {
        self.store.as_ref()
    }

    fn save(&mut self) -> Result<(), StateError> {
        let Some(store) = &self.store else { return Ok(()) };
        let mut writes = Vec::new();
        for (key, state) in self.stateful.baselines.take_changed() {
            writes.push(Write::put(Table::Baseline, key, to_json(&state), None, state.last_seen));
        }
        for (pair, writer) in self.stateful.writers.take_changed() {
            let recency = writer.last_seen;
            writes.push(Write::put(Table::SsecWriter, pair, to_json(&writer), None, recency));
        }
        for (role, since) in self.stateful.take_new_roles() {
            writes.push(Write::put(Table::Role, role, to_json(&RoleValue { since }), None, since));
        }
        // The watermark only moves forward; an unchanged one is not rewritten.
        let watermark = self.stateful.watermark().filter(|w| Some(*w) > self.stored_watermark);
        if let Some(watermark) = watermark {
            writes.push(Write::put(Table::Meta, WATERMARK, watermark.to_string(), None, watermark));
        }
        let (carry, facts) = self.stateful.carried();
        let mut now_carried = HashSet::with_capacity(carry.len());
        for finding in carry {
            let key = format!("{FINDING_PREFIX}{}/{}", finding.rule, finding.id);
            if !self.stored_carry.contains(&key) {
                writes.push(Write::put(
                    Table::Carry,
                    key.clone(),
                    to_json(&finding.to_stored()),
                    None,
                    finding.sort_time,
                ));
            }
            now_carried.insert(key);
        }
        for gone in self.stored_carry.difference(&now_carried) {
            writes.push(Write::Delete { table: Table::Carry, key: gone.clone(), expect: Expect::Any });
        }
        let mut now_stored = HashMap::with_capacity(facts.len());
        for fact in facts {
            let Some(slot) = fact.slot() else { continue };
            let key = format!("{FACT_PREFIX}{}", slot_digest(&slot));
            let value = to_json(fact);
            if self.stored_facts.get(&key) != Some(&value) {
                writes.push(Write::put(Table::Carry, key.clone(), value.clone(), None, fact.time()));
            }
            now_stored.insert(key, value);
        }
        for gone in self.stored_facts.keys().filter(|key| !now_stored.contains_key(*key)) {
            writes.push(Write::Delete { table: Table::Carry, key: gone.clone(), expect: Expect::Any });
        }
        if store.shared() && !writes.is_empty() {
            let epoch = self.versions.get(&(Table::Meta, EPOCH.to_owned())).copied();
            // First, so that it is in the first transaction when a large commit is split: a
            // concurrent batch is then refused before anything of this one is written.
            writes.insert(0, Write::put(Table::Meta, EPOCH, epoch.map_or(1, |v| v + 1).to_string(), None, 0));
            writes = writes.into_iter().map(|write| self.conditional(write)).collect();
        }
        if !writes.is_empty() {
            store.commit(writes)?;
        }
        self.stored_carry = now_carried;
        self.stored_facts = now_stored;
        self.stored_watermark = self.stored_watermark.max(watermark);
        self.stateful.baselines.shrink();
        self.stateful.writers.shrink();
        Ok(())
    }

    /// On a shared store, a put expects the version this session read (or no item), so a
    /// concurrent change by another worker makes the commit fail instead of being overwritten.
    /// Deleting a carried finding needs no condition (its content never changes), nor deleting
    /// an expired fact: the epoch item, conditional in every commit, refuses one that raced.
    fn conditional(&self, write: Write) -> Write {
        match write {
            Write::Put { table, key, value, expires_at, recency, expect: Expect::Any } => {
                let expect = match self.versions.get(&(table, key.clone())) {
                    Some(version) => Expect::Version(*version),
                    None => Expect::Absent,
                };
                Write::Put { table, key, value, expires_at, recency, expect }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Decoder, Limits};
    use crate::detect::Engine;
    use crate::finding::{Mode, Severity};
    use crate::pipeline::{inspect_object, Gather, Window};
    use crate::store::{Item, MemoryStore, Usage};

    /// A memory store that says it is shared, as DynamoDB does: every batch re-reads the state
    /// and commits conditionally.
    #[derive(Debug)]
    struct Shared(MemoryStore);

    impl StateStore for Shared {
        fn get_many(&self, table: Table, keys: &[String]) -> Result<Vec<Option<Item>>, StateError> {
            self.0.get_many(table, keys)
        }
        fn scan(&self, table: Table, after: Option<&str>, limit: usize) -> Result<Vec<(String, Item)>, StateError> {
            self.0.scan(table, after, limit)
        }
        fn commit(&self, writes: Vec<Write>) -> Result<(), StateError> {
            self.0.commit(writes)
        }
        fn evict(&self, table: Table, what: Evict) -> Result<u64, StateError> {
            self.0.evict(table, what)
        }
        fn shared(&self) -> bool {
            true
        }
        fn usage(&self) -> Option<Usage> {
            None
        }
    }

    /// One object's outcome, as a live worker inspects it.
    fn inspect(record: &str) -> crate::pipeline::Inspected {
        let engine = Engine::new(Settings::default(), Mode::Live);
        let mut decoder = Decoder::new(Limits::default());
        inspect_object(&mut decoder, record.as_bytes(), "o", &engine, Window::default(), Mode::Live, Gather::default())
    }

    fn batch_of(minute: u32) -> Batch {
        batch_in("exports", minute)
    }

    fn batch_in(bucket: &str, minute: u32) -> Batch {
        let record = format!(
            r#"{{"Records":[{{"eventVersion":"1.10","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/etl","accessKeyId":"AKIAEXAMPLEETL000001","userName":"etl"}},"eventTime":"2026-10-01T10:{minute:02}:00Z","eventSource":"s3.amazonaws.com","eventName":"PutObject","awsRegion":"us-east-1","requestParameters":{{"bucketName":"{bucket}","key":"{minute}.csv","x-amz-server-side-encryption-customer-algorithm":"AES256"}},"eventID":"e-{bucket}-{minute}","eventCategory":"Data"}}]}}"#
        );
        let inspected = inspect(&record);
        Batch { findings: inspected.findings, latest: inspected.totals.latest_event_time, ..Batch::default() }
    }

    /// One object of a pipeline's cleanup at `minute` of the day: a `DeleteObjects` of 200
    /// keys of 500 bytes.
    fn cleanup_at(minute: u32) -> Batch {
        let keys: Vec<String> =
            (0..200).map(|n| format!(r#"{{"key":"stage/{minute:04}/{n:03}-{}"}}"#, "k".repeat(490))).collect();
        let record = format!(
            r#"{{"Records":[{{"eventVersion":"1.10","userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/pipeline/run-{minute}","sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"arn:aws:iam::111122223333:role/pipeline","userName":"pipeline"}}}}}},"eventTime":"2026-10-01T{:02}:{:02}:00Z","eventSource":"s3.amazonaws.com","eventName":"DeleteObjects","awsRegion":"us-east-1","requestParameters":{{"bucketName":"staging","delete":{{"Object":[{}]}}}},"eventID":"d-{minute}","eventCategory":"Data"}}]}}"#,
            minute / 60,
            minute % 60,
            keys.join(",")
        );
        let inspected = inspect(&record);
        assert_eq!(inspected.facts.len(), 1, "one delete fact per object");
        Batch { facts: inspected.facts, latest: inspected.totals.latest_event_time, ..Batch::default() }
    }

    /// A day of a pipeline's cleanups, one object every 5 minutes, on a shared store: the
    /// carried facts are one item per hour, each far below DynamoDB's 400 KB item limit (all
    /// facts were one item, which passed it within the day and failed every commit after).
    #[test]
    fn a_day_of_cleanups_is_carried_in_small_items_one_per_hour() {
        let store: Arc<dyn StateStore> = Arc::new(Shared(MemoryStore::new()));
        let mut session = Session::open(store.clone(), Settings::default()).expect("open");
        for minute in (0..24 * 60).step_by(5) {
            session.advance(cleanup_at(minute)).expect("every batch commits");
        }
        let facts: Vec<(String, Item)> = scan_all(store.as_ref(), Table::Carry)
            .expect("scan")
            .into_iter()
            .filter(|(key, _)| key.starts_with(FACT_PREFIX))
            .collect();
        assert_eq!(facts.len(), 24, "one per hour of the chain window");
        let largest = facts.iter().map(|(_, item)| item.value.len()).max().unwrap_or(0);
        assert!((60_000..100_000).contains(&largest), "largest fact item: {largest} bytes");
        let deleted: u64 = facts
            .iter()
            .map(|(_, item)| match serde_json::from_str::<Fact>(&item.value).expect("a fact") {
                Fact::S3Deletes { objects, .. } => objects,
                other => panic!("{other:?}"),
            })
            .sum();
        assert_eq!(deleted, 288 * 200, "every delete counted once");
        // The same object again (a redelivery) changes nothing.
        let before = scan_all(store.as_ref(), Table::Carry).expect("scan");
        session.advance(cleanup_at(24 * 60 - 5)).expect("redelivery");
        let after = scan_all(store.as_ref(), Table::Carry).expect("scan");
        assert_eq!(after.len(), before.len());
        assert!(after.iter().zip(&before).all(|((a, x), (b, y))| a == b && x.value == y.value));
    }

    /// State written before facts had their own items (all of them in `carry/facts`) is read,
    /// and replaced by one item per slot at the next commit.
    #[test]
    fn facts_stored_in_one_item_are_read_and_moved_to_their_slots() {
        let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let mut old = cleanup_at(10).facts;
        old.extend(cleanup_at(15).facts);
        let write = |key: &str, value: String| Write::put(Table::Carry, key, value, None, 0);
        store.commit(vec![write(LEGACY_FACTS, to_json(&old))]).expect("old layout");
        store.commit(vec![Write::put(Table::Meta, WATERMARK, "1790000000000".to_owned(), None, 0)]).expect("meta");
        let mut session = Session::open(store.clone(), Settings::default()).expect("open");
        // The old facts are within the chain window of the stored watermark.
        session.advance(Batch { latest: None, ..cleanup_at(20) }).expect("commit");
        let keys: Vec<String> =
            scan_all(store.as_ref(), Table::Carry).expect("scan").into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert!(keys[0].starts_with(FACT_PREFIX));
    }

    /// A pair learned in one batch is known in the next, on a shared store, even when its only
    /// finding there is a carried one: its record is read, not rewritten as new (which failed
    /// every later batch of the pair with a conflict).
    #[test]
    fn a_known_writer_survives_the_reload_of_a_shared_store() {
        let store: Arc<dyn StateStore> = Arc::new(Shared(MemoryStore::new()));
        let mut session = Session::open(store.clone(), Settings::default()).expect("open");
        let first = session.advance(batch_of(0)).expect("first batch");
        assert_eq!(first.iter().map(|f| f.severity).collect::<Vec<_>>(), [Severity::High]);
        // Only another bucket's write: the first pair's finding is there only as carried.
        session.advance(batch_in("other", 2)).expect("a batch with a carried write of the pair commits");
        let second = session.advance(batch_of(5)).expect("second batch commits");
        assert!(second.iter().all(|f| f.severity == Severity::Info), "{second:?}");
        let third = session.advance(batch_of(20)).expect("third batch commits");
        assert!(!third.is_empty() && third.iter().all(|f| f.severity == Severity::Info));
        assert_eq!(scan_all(store.as_ref(), Table::SsecWriter).expect("scan").len(), 2);
    }
}
