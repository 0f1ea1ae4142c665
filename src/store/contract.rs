//! The contract every [`StateStore`] keeps, as one function of assertions run against each
//! implementation: the memory and SQLite stores in unit tests, DynamoDB against the emulator
//! (`tests/dynamodb.rs`). Behind the `testkit` feature: tests only.

#![allow(clippy::unwrap_used)]

use super::{scan_all, Evict, Expect, StateError, StateStore, Table, Write};

/// The contract every implementation keeps: batch gets, ordered scans, all-or-nothing
/// conditional commits, deletes, and the store's own eviction unless it leaves eviction to the
/// backend (`evicts`: false for DynamoDB, whose TTL removes expired items).
pub fn check(store: &dyn StateStore, evicts: bool) {
    let put = |key: &str, value: &str, recency: i64| Write::put(Table::Baseline, key, value.into(), None, recency);
    store.commit(vec![put("a", "1", 10), put("b", "2", 20), put("c", "3", 30)]).expect("commit");
    store.commit(vec![Write::put(Table::Role, "a", "\"role\"".into(), Some(5), 0)]).expect("other table");
    let got = store.get_many(Table::Baseline, &["b".into(), "x".into()]).expect("get");
    assert_eq!(got[0].as_ref().map(|i| (i.value.as_str(), i.version)), Some(("2", 1)));
    assert!(got[1].is_none());

    // A failed expectation applies nothing.
    let conflict = store.commit(vec![
        put("d", "4", 40),
        Write::Put {
            table: Table::Baseline,
            key: "a".into(),
            value: "9".into(),
            expires_at: None,
            recency: 0,
            expect: Expect::Absent,
        },
    ]);
    assert!(matches!(conflict, Err(StateError::Conflict { .. })));
    assert!(store.get_many(Table::Baseline, &["d".into()]).expect("get")[0].is_none());
    let versioned = Write::Put {
        table: Table::Baseline,
        key: "a".into(),
        value: "5".into(),
        expires_at: None,
        recency: 50,
        expect: Expect::Version(1),
    };
    store.commit(vec![versioned]).expect("right version");
    let a = store.get_many(Table::Baseline, &["a".into()]).expect("get")[0].clone().expect("a");
    assert_eq!((a.value.as_str(), a.version), ("5", 2));

    let keys: Vec<String> =
        store.scan(Table::Baseline, Some("a"), 10).expect("scan").into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["b", "c"]);
    assert_eq!(scan_all(store, Table::Role).expect("scan").len(), 1);

    if evicts {
        // Keep the two most recent: a (50) and c (30).
        assert_eq!(store.evict(Table::Baseline, Evict::KeepNewest(2)).expect("evict"), 1);
        let keys: Vec<String> = scan_all(store, Table::Baseline).expect("scan").into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "c"]);
        assert_eq!(store.evict(Table::Role, Evict::ExpiredBefore(6)).expect("expire"), 1);
    } else {
        store
            .commit(vec![Write::Delete { table: Table::Baseline, key: "b".into(), expect: Expect::Any }])
            .expect("del");
    }
    // A delete that expects a version the item no longer has applies nothing.
    let stale = Write::Delete { table: Table::Baseline, key: "a".into(), expect: Expect::Version(1) };
    assert!(matches!(store.commit(vec![stale]), Err(StateError::Conflict { .. })));
    store.commit(vec![Write::Delete { table: Table::Baseline, key: "c".into(), expect: Expect::Any }]).expect("del");
    assert_eq!(scan_all(store, Table::Baseline).expect("scan").len(), 1);
    // A commit larger than one DynamoDB transaction (100 items) applies every write.
    let many: Vec<Write> = (0..250).map(|i| put(&format!("bulk{i:03}"), "1", i)).collect();
    store.commit(many).expect("a large commit");
    assert_eq!(scan_all(store, Table::Baseline).expect("scan").len(), 251);
    let keys: Vec<String> = (0..250).map(|i| format!("bulk{i:03}")).collect();
    let got = store.get_many(Table::Baseline, &keys).expect("more than one BatchGetItem");
    assert!(got.iter().all(Option::is_some));
    let deletes = keys.into_iter().map(|key| Write::Delete { table: Table::Baseline, key, expect: Expect::Any });
    store.commit(deletes.collect()).expect("a large delete");
    assert_eq!(scan_all(store, Table::Baseline).expect("scan").len(), 1);
}
