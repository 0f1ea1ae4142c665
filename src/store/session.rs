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
//!   expiring with its horizon; `carry/facts`: the carried mass-delete and ransom-note facts;
//! - `role/<role name>`: `{"since": ms}`.

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{scan_all, Evict, StateError, StateStore, Table, Write};
use crate::analyze::baseline::KeyState;
use crate::analyze::passes::{Batch, Stateful};
use crate::detect::facts::Fact;
use crate::detect::rules;
use crate::event::time::Millis;
use crate::finding::Finding;
use crate::finding::StoredFinding;
use crate::settings::Settings;

const WATERMARK: &str = "watermark";
const FACTS: &str = "facts";
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
}

fn corrupt(table: Table, key: &str, error: impl ToString) -> StateError {
    StateError::Corrupt { table: table.name(), key: key.to_owned(), reason: error.to_string() }
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serializing plain data structs (strings, numbers, maps with string keys) cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

impl Session {
    /// State in memory for this command only (`scan` without `--state`): nothing is read or
    /// written, and baselines are bounded by `max_keys` in memory.
    pub fn in_memory(settings: Settings) -> Session {
        Session { store: None, writes: false, stateful: Stateful::new(settings), stored_carry: HashSet::new() }
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
        let mut stateful = Stateful::new(settings);
        let watermark = match store.get_many(Table::Meta, &[WATERMARK.to_owned()])?.pop().flatten() {
            Some(item) => Some(item.value.parse::<Millis>().map_err(|e| corrupt(Table::Meta, WATERMARK, e))?),
            None => None,
        };
        let mut carry = Vec::new();
        let mut facts = Vec::new();
        let mut stored_carry = HashSet::new();
        for (key, item) in scan_all(store.as_ref(), Table::Carry)? {
            if key == FACTS {
                facts = serde_json::from_str::<Vec<Fact>>(&item.value).map_err(|e| corrupt(Table::Carry, &key, e))?;
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
            roles.push((role, value.since));
        }
        stateful.restore(watermark, carry, facts, roles);
        Ok(Session { store: Some(store), writes, stateful, stored_carry })
    }

    /// Runs a batch: loads the baselines it needs, advances, saves. Returns the new findings.
    pub fn advance(&mut self, batch: Batch) -> Result<Vec<Finding>, StateError> {
        self.load_baselines(batch.observations.iter().map(|o| o.key.as_str()))?;
        let findings = self.stateful.advance(batch);
        if self.writes {
            self.save()?;
        } else if self.store.is_none() {
            // Nothing to save to: forget the least recently seen keys beyond the bound.
            self.stateful.baselines.clear_changed();
            self.stateful.baselines.shrink();
        }
        Ok(findings)
    }

    /// Bounds the store (least recently seen keys beyond `max_keys`) at the end of a command.
    pub fn close(self) -> Result<(), StateError> {
        if let Some(store) = self.store.as_ref().filter(|_| self.writes) {
            store.evict(Table::Baseline, Evict::KeepNewest(self.stateful.settings().baseline.max_keys))?;
        }
        Ok(())
    }

    fn load_baselines<'k>(&mut self, keys: impl Iterator<Item = &'k str>) -> Result<(), StateError> {
        let Some(store) = &self.store else { return Ok(()) };
        let mut wanted: Vec<String> =
            keys.filter(|k| !self.stateful.baselines.contains(k)).map(str::to_owned).collect();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(());
        }
        let items = store.get_many(Table::Baseline, &wanted)?;
        for (key, item) in wanted.into_iter().zip(items) {
            if let Some(item) = item {
                let state: KeyState =
                    serde_json::from_str(&item.value).map_err(|e| corrupt(Table::Baseline, &key, e))?;
                self.stateful.baselines.load(key, state);
            }
        }
        Ok(())
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
        for (role, since) in self.stateful.take_new_roles() {
            writes.push(Write::put(Table::Role, role, to_json(&RoleValue { since }), None, since));
        }
        if let Some(watermark) = self.stateful.watermark() {
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
            writes.push(Write::Delete { table: Table::Carry, key: gone.clone(), expect: super::Expect::Any });
        }
        writes.push(Write::put(Table::Carry, FACTS, to_json(&facts), None, 0));
        store.commit(writes)?;
        self.stored_carry = now_carried;
        self.stateful.baselines.shrink();
        Ok(())
    }
}
