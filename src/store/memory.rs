//! State in memory: for tests of the contract and of code written against the interface.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{check, Evict, Item, StateError, StateStore, Table, Write};

/// State in memory, gone at exit.
#[derive(Debug, Default)]
pub struct MemoryStore {
    items: Mutex<BTreeMap<(Table, String), Item>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(Table, String), Item>> {
        // A panic while holding the lock cannot leave a half-applied commit (writes are applied
        // after every check), so a poisoned map is still consistent.
        self.items.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl StateStore for MemoryStore {
    fn get_many(&self, table: Table, keys: &[String]) -> Result<Vec<Option<Item>>, StateError> {
        let items = self.lock();
        Ok(keys.iter().map(|k| items.get(&(table, k.clone())).cloned()).collect())
    }

    fn scan(&self, table: Table, after: Option<&str>, limit: usize) -> Result<Vec<(String, Item)>, StateError> {
        let items = self.lock();
        let start = (table, after.unwrap_or("").to_owned());
        Ok(items
            .range(start..)
            .filter(|((t, k), _)| *t == table && after.is_none_or(|a| k.as_str() > a))
            .take_while(|((t, _), _)| *t == table)
            .take(limit)
            .map(|((_, k), item)| (k.clone(), item.clone()))
            .collect())
    }

    fn commit(&self, writes: Vec<Write>) -> Result<(), StateError> {
        let mut items = self.lock();
        for write in &writes {
            let (table, key, expect) = write.target();
            check(expect, items.get(&(table, key.to_owned())).map(|i| i.version), table, key)?;
        }
        for write in writes {
            match write {
                Write::Put { table, key, value, expires_at, recency, .. } => {
                    let k = (table, key);
                    let version = items.get(&k).map_or(1, |i| i.version + 1);
                    items.insert(k, Item { value, version, expires_at, recency });
                }
                Write::Delete { table, key, .. } => {
                    items.remove(&(table, key));
                }
            }
        }
        Ok(())
    }

    fn evict(&self, table: Table, what: Evict) -> Result<u64, StateError> {
        let mut items = self.lock();
        let before = items.len();
        match what {
            Evict::ExpiredBefore(time) => {
                items.retain(|(t, _), item| *t != table || item.expires_at.is_none_or(|e| e >= time))
            }
            Evict::KeepNewest(n) => {
                let mut recencies: Vec<i64> =
                    items.iter().filter(|((t, _), _)| *t == table).map(|(_, i)| i.recency).collect();
                if recencies.len() > n {
                    recencies.sort_unstable_by(|a, b| b.cmp(a));
                    let mut surplus = recencies.len() - n;
                    // Ties at the cut-off: drop the lowest keys first, so the outcome is deterministic.
                    let cut = recencies[n];
                    items.retain(|(t, _), item| {
                        let drop = *t == table && (item.recency < cut || (item.recency == cut && surplus > 0));
                        if drop {
                            surplus = surplus.saturating_sub(1);
                        }
                        !drop
                    });
                }
            }
        }
        Ok((before - items.len()) as u64)
    }
}
