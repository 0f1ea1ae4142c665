//! The DynamoDB state store against moto: the contract the SQLite and memory stores keep, the
//! item layout and TTL attribute of SPEC §5, conflicts between two writers, and the session
//! state a fleet shares.

mod common;

use std::sync::Arc;

use trailhound::store::contract;
use trailhound::store::dynamodb::DynamoStore;
use trailhound::store::{Expect, StateError, StateStore, Table, Write};

use common::{endpoint, options, root, tool, unique};

fn store(endpoint: &str) -> DynamoStore {
    let store = DynamoStore::connect(&options(endpoint), &unique("state")).expect("connect");
    store.create_table().expect("create table");
    store
}

/// The fleet tests rely on DynamoDB's atomic requests, which moto keeps only as
/// `scripts/moto_server.py` serves it (one DynamoDB request at a time): plain `moto_server`
/// loses acknowledged writes and shows half-made items when transactions are cancelled
/// concurrently, as the fleet's conflicting workers do.
#[test]
fn the_emulator_applies_each_dynamodb_request_atomically() {
    let (Some(endpoint), Some(python)) = (endpoint(), tool("TRAILHOUND_MOTO_PYTHON")) else { return };
    let output = std::process::Command::new(python)
        .arg(root().join("scripts/moto_race.py"))
        .arg(&endpoint)
        .output()
        .expect("run scripts/moto_race.py");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_dynamodb_store_keeps_the_contract() {
    let Some(endpoint) = endpoint() else { return };
    contract::check(&store(&endpoint), false);
}

#[test]
fn items_follow_the_documented_layout_with_a_ttl_in_epoch_seconds() {
    let Some(endpoint) = endpoint() else { return };
    let store = store(&endpoint);
    let dedup = Write::put(Table::Dedup, "f00d:1", "1".into(), Some(1_764_460_800_123), 5);
    store.commit(vec![dedup]).expect("commit");
    let (counts, ttl) = store.report().expect("report");
    assert_eq!(counts, [("dedup".to_owned(), 1)]);
    assert!(ttl, "TTL is on");
    let item = store.get_many(Table::Dedup, &["f00d:1".into()]).expect("get")[0].clone().expect("item");
    assert_eq!((item.expires_at, item.version), (Some(1_764_460_800_123), 1));
    // The raw item: pk `<table>#<key>`, the TTL attribute in seconds.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let raw = runtime.block_on(async {
        let clients = trailhound::aws::clients(&options(&endpoint)).await;
        let key = aws_sdk_dynamodb::types::AttributeValue::S("dedup#f00d:1".into());
        clients.dynamodb.get_item().table_name(store.table()).key("pk", key).send().await.expect("GetItem")
    });
    let raw = raw.item().expect("raw item");
    assert_eq!(raw["expires_at"].as_n().expect("number"), "1764460800");
    assert_eq!(raw["v"].as_s().expect("string"), "1");
}

#[test]
fn two_writers_of_one_item_conflict_and_the_second_sees_the_first() {
    let Some(endpoint) = endpoint() else { return };
    let first: Arc<dyn StateStore> = Arc::new(store(&endpoint));
    let table = {
        let any = first.clone();
        format!("{any:?}")
    };
    assert!(table.contains("DynamoStore"));
    let put = |value: &str, expect| Write::Put {
        table: Table::Baseline,
        key: "AKIAEXAMPLE".into(),
        value: value.into(),
        expires_at: None,
        recency: 1,
        expect,
    };
    first.commit(vec![put("{}", Expect::Absent)]).expect("created");
    // Both read version 1; the first to write wins, the other is told to re-read.
    first.commit(vec![put("{\"a\":1}", Expect::Version(1))]).expect("first writer");
    let second = first.commit(vec![put("{\"b\":1}", Expect::Version(1))]);
    assert!(matches!(second, Err(StateError::Conflict { table: "baseline", .. })), "{second:?}");
    let now = first.get_many(Table::Baseline, &["AKIAEXAMPLE".into()]).expect("get")[0].clone().expect("item");
    assert_eq!((now.value.as_str(), now.version), ("{\"a\":1}", 2));
    assert!(first.shared());
}

#[test]
fn an_item_trailhound_did_not_write_is_reported_as_corrupt_with_its_key() {
    let Some(endpoint) = endpoint() else { return };
    let store = store(&endpoint);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let clients = trailhound::aws::clients(&options(&endpoint)).await;
        let s = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.into());
        let put = clients.dynamodb.put_item().table_name(store.table()).item("pk", s("baseline#AKIAODD"));
        put.item("tbl", s("baseline")).item("k", s("AKIAODD")).send().await.expect("PutItem");
        // Its key alone, as moto once left an item half-made (scripts/moto_server.py).
        let bare = clients.dynamodb.put_item().table_name(store.table()).item("pk", s("baseline#AKIABARE"));
        bare.send().await.expect("PutItem");
    });
    let error = store.get_many(Table::Baseline, &["AKIAODD".into()]).expect_err("no value");
    assert!(matches!(&error, StateError::Corrupt { key, .. } if key == "AKIAODD"), "{error:?}");
    assert!(error.to_string().contains("AKIAODD"), "{error}");
    // Without `k`, the error still names the item, by its partition key.
    let error = store.get_many(Table::Baseline, &["AKIABARE".into()]).expect_err("no key attribute");
    assert!(
        matches!(&error, StateError::Corrupt { key, reason, .. } if key == "AKIABARE" && reason.contains("`k`")),
        "{error:?}"
    );
}

#[test]
fn a_missing_table_is_one_clear_error_naming_the_init_command() {
    let Some(endpoint) = endpoint() else { return };
    let output = common::trailhound_on(&endpoint)
        .args(["scan", "--state", "dynamodb://no-such-table-here", "testdata/events"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("trailhound state init dynamodb://no-such-table-here"), "{stderr}");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_trailhound"))
        .args(["scan", "--state", "dynamodb://x", "testdata/events"])
        .current_dir(common::root())
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("DynamoDB table name"), "refused before any request");
}

/// The `state:` line of a `scan --state dynamodb://…` summary.
fn scan_usage(endpoint: &str, table: &str) -> String {
    let output = common::trailhound_on(endpoint)
        .args(["scan", "--format", "jsonl", "--state", &format!("dynamodb://{table}"), "testdata/sequences"])
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    stderr.lines().find(|l| l.starts_with("state: ")).unwrap_or_else(|| panic!("no usage line: {stderr}")).to_owned()
}

#[test]
fn unchanged_state_is_not_rewritten() {
    let Some(endpoint) = endpoint() else { return };
    let store = store(&endpoint);
    let first = scan_usage(&endpoint, store.table());
    assert!(!first.contains(" 0 written"), "the first scan learns: {first}");
    let again = scan_usage(&endpoint, store.table());
    assert!(again.contains(" 0 written (0 write units)"), "the same input again writes nothing: {again}");
}

/// A pipeline's cleanups all day (a `DeleteObjects` of 200 long keys every 5 minutes) scanned
/// into a DynamoDB table: the delete facts carried for the ransomware chain are kept one item per
/// principal, bucket and hour, each within DynamoDB's 400 KB item limit. (They were one item for
/// all, which passed the limit within the first batch here and failed every commit after.)
#[test]
fn a_day_of_cleanups_fits_dynamodbs_item_limit() {
    let Some(endpoint) = endpoint() else { return };
    let store = store(&endpoint);
    let dir = tempfile::tempdir().expect("tempdir");
    for minute in (0..24 * 60).step_by(5) {
        let objects: Vec<String> =
            (0..200).map(|n| format!(r#"{{"key":"stage/{minute:04}/{n:03}-{}"}}"#, "k".repeat(490))).collect();
        let record = format!(
            r#"{{"Records":[{{"eventVersion":"1.10","userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/pipeline/run","sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"arn:aws:iam::111122223333:role/pipeline","userName":"pipeline"}}}}}},"eventTime":"2026-10-01T{:02}:{:02}:00Z","eventSource":"s3.amazonaws.com","eventName":"DeleteObjects","awsRegion":"us-east-1","requestParameters":{{"bucketName":"staging","delete":{{"Object":[{}]}}}},"eventID":"d-{minute}","eventCategory":"Data"}}]}}"#,
            minute / 60,
            minute % 60,
            objects.join(",")
        );
        std::fs::write(dir.path().join(format!("{minute:04}.json")), record).expect("write");
    }
    let output = common::trailhound_on(&endpoint)
        .args(["scan", "--format", "jsonl", "--state", &format!("dynamodb://{}", store.table())])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (counts, _) = store.report().expect("report");
    assert!(counts.contains(&("carry".to_owned(), 24)), "one fact item per hour: {counts:?}");
}
