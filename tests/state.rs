//! The persistent state through the binary: `scan --state` carries baselines, aggregation windows
//! and instance roles from one run to the next, is idempotent (the same input twice changes
//! nothing and reports the same ids), survives being killed mid-write, and `replay` reads it
//! without changing it unless `--update-state`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use trailhound::store::sqlite::SqliteStore;
use trailhound::store::{scan_all, Table};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trailhound"));
    command.args(args).current_dir(root()).env_remove("TRAILHOUND_CONFIG").env_remove("TRAILHOUND_STATE");
    command
}

fn trailhound(args: &[&str]) -> Output {
    command(args).output().expect("the binary runs")
}

/// Runs and returns the JSON findings (or events), asserting success.
fn lines(args: &[&str]) -> Vec<Value> {
    let output = trailhound(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
    String::from_utf8(output.stdout).expect("utf-8").lines().map(|l| serde_json::from_str(l).expect("json")).collect()
}

fn rules_of(findings: &[Value]) -> Vec<String> {
    findings.iter().map(|f| f["rule"].as_str().unwrap_or_default().to_owned()).collect()
}

/// Every item of a table with its value and version.
fn table(path: &Path, table: Table) -> BTreeMap<String, (String, u64)> {
    let store = SqliteStore::open_read_only(path).expect("state opens");
    scan_all(&store, table).expect("scan").into_iter().map(|(k, i)| (k, (i.value, i.version))).collect()
}

fn baseline_dir() -> PathBuf {
    root().join("testdata/sequences/baseline")
}

fn baseline_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(baseline_dir()).expect("dir").flatten().map(|e| e.path()).collect();
    files.sort();
    files
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn scanning_twice_with_state_changes_nothing_and_reports_the_same_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.db");
    let input = s(&baseline_dir()).to_owned();
    let first = lines(&["scan", "--format", "jsonl", "--state", s(&state), &input]);
    let baselines = table(&state, Table::Baseline);
    assert_eq!(baselines.len(), 2, "two long-term keys learned");
    assert_eq!(rules_of(&first), ["iam.long_term_key_anomaly", "iam.dormant_key_used"]);

    let second = lines(&["scan", "--format", "jsonl", "--state", s(&state), &input]);
    assert_eq!(first, second, "the same findings, ids included");
    assert_eq!(table(&state, Table::Baseline), baselines, "no value added, not even rewritten");
}

/// The same for every kind of state: carried findings and facts (a minted key's record among
/// them), known SSE-C writers, roles: a second scan of every sequence rewrites no item.
#[test]
fn scanning_every_sequence_twice_rewrites_no_item() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.db");
    let input = root().join("testdata/sequences");
    let every_item = || -> BTreeMap<(String, String), u64> {
        let mut items = BTreeMap::new();
        for t in Table::ALL {
            for (key, (_, version)) in table(&state, t) {
                items.insert((t.name().to_owned(), key), version);
            }
        }
        items
    };
    let first = lines(&["scan", "--format", "jsonl", "--state", s(&state), s(&input)]);
    let written = every_item();
    // Facts are carried one item per slot (`x/<digest>`).
    assert!(
        written.keys().any(|(t, k)| t == "carry" && k.starts_with("x/"))
            && !table(&state, Table::SsecWriter).is_empty()
    );
    let second = lines(&["scan", "--format", "jsonl", "--state", s(&state), s(&input)]);
    assert_eq!(first.len(), second.len());
    assert_eq!(every_item(), written, "no item rewritten");
}

#[test]
fn baselines_learned_in_one_run_are_used_by_the_next() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.db");
    let files = baseline_files();
    let (learning, later) = files.split_at(9);
    let mut args: Vec<&str> = vec!["scan", "--format", "jsonl", "--state", s(&state)];
    args.extend(learning.iter().map(|p| s(p)));
    assert!(lines(&args).is_empty(), "only learning in the first nine days");
    let mut args: Vec<&str> = vec!["scan", "--format", "jsonl", "--state", s(&state)];
    args.extend(later.iter().map(|p| s(p)));
    let split = lines(&args);

    let whole = lines(&["scan", "--format", "jsonl", s(&baseline_dir())]);
    let ids = |findings: &[Value]| findings.iter().map(|f| f["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&split), ids(&whole), "two runs with state equal one run over everything");
    // Without the state, the later files alone are all learning.
    let mut args: Vec<&str> = vec!["scan", "--format", "jsonl"];
    args.extend(later.iter().map(|p| s(p)));
    assert!(lines(&args).is_empty());
}

/// A CloudTrail object with `count` in-place SSE-C overwrites, one a second from `start_minute`.
fn sse_c_burst(start_minute: u32, count: u32) -> Value {
    let records: Vec<Value> = (0..count)
        .map(|i| {
            let second = start_minute * 60 + i;
            let key = format!("data/object-{start_minute}-{i}.bin");
            json!({
                "eventVersion": "1.10",
                "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/intruder",
                    "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLEINTRUDER1", "userName": "intruder"},
                "eventTime": format!("2026-10-05T10:{:02}:{:02}Z", second / 60, second % 60),
                "eventSource": "s3.amazonaws.com", "eventName": "CopyObject", "awsRegion": "us-east-1",
                "sourceIPAddress": "198.51.100.66", "userAgent": "aws-cli/2.15.30",
                "requestParameters": {"bucketName": "finance", "key": key,
                    "x-amz-copy-source": format!("finance/{key}"),
                    "x-amz-server-side-encryption-customer-algorithm": "AES256"},
                "responseElements": null,
                "additionalEventData": {"SSEApplied": "SSE_C"},
                "eventID": format!("00000000-0000-4000-8000-{:012}", second),
                "eventType": "AwsApiCall", "eventCategory": "Data", "recipientAccountId": "111122223333"
            })
        })
        .collect();
    json!({ "Records": records })
}

#[test]
fn an_sse_c_burst_split_across_runs_alerts_once_and_then_updates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.db");
    let first_file = dir.path().join("111122223333_CloudTrail_us-east-1_20261005T1000Z_a.json");
    let second_file = dir.path().join("111122223333_CloudTrail_us-east-1_20261005T1005Z_b.json");
    std::fs::write(&first_file, sse_c_burst(0, 40).to_string()).expect("write");
    std::fs::write(&second_file, sse_c_burst(5, 40).to_string()).expect("write");

    let first = lines(&["scan", "--format", "jsonl", "--state", s(&state), s(&first_file)]);
    let counts = |f: &[Value]| f.iter().map(|f| f["evidence"]["count"].as_u64().unwrap_or(0)).collect::<Vec<_>>();
    assert_eq!(counts(&first), [1, 39], "the first alerts, the rest is one update");
    let second = lines(&["scan", "--format", "jsonl", "--state", s(&state), s(&second_file)]);
    assert_eq!(counts(&second), [79], "no new first alert: the update grows");
    assert_eq!(second[0]["id"], first[1]["id"], "and keeps its id");
    assert_eq!(second[0]["evidence"]["event_ids"].as_array().map(Vec::len), Some(79));

    // One run over both files gives the final picture directly.
    let both = lines(&["scan", "--format", "jsonl", s(&first_file), s(&second_file)]);
    assert_eq!(counts(&both), [1, 79]);
    assert_eq!(both[1]["id"], second[0]["id"]);
    // Replaying the second file again with the state: the same update, nothing new.
    assert_eq!(lines(&["scan", "--format", "jsonl", "--state", s(&state), s(&second_file)]), second);
}

#[test]
fn instance_roles_learned_earlier_raise_a_later_admin_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.db");
    let sequence = root().join("testdata/sequences/ransomware/05_instance_role.json");
    let records: Vec<Value> = serde_json::from_slice::<Value>(&std::fs::read(&sequence).expect("read")).expect("json")
        ["Records"]
        .as_array()
        .expect("records")
        .clone();
    let (roles, attachments): (Vec<Value>, Vec<Value>) =
        records.into_iter().partition(|r| r["eventName"] != "AttachRolePolicy");
    let roles_file = dir.path().join("1_roles.json");
    let attach_file = dir.path().join("2_attach.json");
    std::fs::write(&roles_file, json!({ "Records": roles }).to_string()).expect("write");
    std::fs::write(&attach_file, json!({ "Records": attachments }).to_string()).expect("write");

    lines(&["scan", "--format", "jsonl", "--state", s(&state), s(&roles_file)]);
    assert!(!table(&state, Table::Role).is_empty(), "roles remembered");
    let with_state = lines(&["scan", "--format", "jsonl", "--state", s(&state), s(&attach_file)]);
    let without = lines(&["scan", "--format", "jsonl", s(&attach_file)]);
    let critical = |f: &[Value]| f.iter().filter(|f| f["severity"] == "critical").count();
    assert_eq!(critical(&with_state), 1, "the instance role is known from the earlier run");
    assert_eq!(critical(&without), 0);
}

#[test]
fn replay_learns_from_the_warmup_reports_the_window_and_leaves_the_state_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = s(&baseline_dir()).to_owned();
    let window = ["--since", "2026-09-09T00:00:00Z", "--until", "2026-09-20T00:00:00Z"];
    let replay = |extra: &[&str]| {
        let mut args = vec!["replay", "--format", "jsonl"];
        args.extend(window);
        args.extend(extra);
        args.push(&input);
        lines(&args)
    };
    // With no state and no warm-up, every key is still learning inside the window.
    let missing = dir.path().join("none.db");
    assert!(replay(&["--state", s(&missing)]).is_empty());
    assert!(!missing.exists(), "a replay never creates state");
    let warm = replay(&["--state", s(&missing), "--warmup", "60d"]);
    assert_eq!(rules_of(&warm), ["iam.long_term_key_anomaly", "iam.dormant_key_used"]);
    let scanned = lines(&["scan", "--format", "jsonl", &input]);
    let ids = |findings: &[Value]| findings.iter().map(|f| f["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&warm), ids(&scanned), "the same conclusions as a scan of everything");
    assert!(warm.iter().all(|f| f["mode"] == "replay"));

    // A window that ends before the anomaly reports nothing, warm-up or not.
    let mut args = vec!["replay", "--format", "jsonl", "--since", "2026-09-09T00:00:00Z"];
    args.extend(["--until", "2026-09-10T00:00:00Z", "--warmup", "60d", &input]);
    assert!(lines(&args).is_empty());

    // The state file is read but not written without --update-state.
    let state = dir.path().join("state.db");
    let mut args: Vec<&str> = vec!["scan", "--format", "jsonl", "--state", s(&state)];
    let files = baseline_files();
    args.extend(files[..9].iter().map(|p| s(p)));
    lines(&args);
    let before = std::fs::read(&state).expect("state");
    let from_state = replay(&["--state", s(&state)]);
    assert_eq!(rules_of(&from_state), ["iam.long_term_key_anomaly", "iam.dormant_key_used"]);
    assert_eq!(std::fs::read(&state).expect("state"), before, "byte-identical after a replay");
    let baselines = table(&state, Table::Baseline);
    replay(&["--state", s(&state), "--update-state"]);
    assert_ne!(table(&state, Table::Baseline), baselines, "--update-state writes what it learned");
}

#[test]
fn replay_prints_matching_raw_events_with_secrets_redacted() {
    let input = root().join("testdata/events/ec2.instance_connect_ssh/positive");
    let args = [
        "replay",
        "--format",
        "jsonl",
        "--since",
        "2026-11-01T00:00:00Z",
        "--until",
        "2026-11-02T00:00:00Z",
        "--events",
        "--where",
        "eventName=SendSSHPublicKey",
        "--where",
        "eventName=SendSerialConsoleSSHPublicKey",
        "--where",
        "sourceIPAddress=198.51.100.0/24",
        s(&input),
    ];
    let output = lines(&args);
    let events: Vec<&Value> = output.iter().filter(|l| l.get("schema").is_none()).collect();
    let findings = output.len() - events.len();
    assert!(findings >= 2, "findings come first");
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e["eventName"].as_str().is_some_and(|n| n.starts_with("Send"))));
    let text = serde_json::to_string(&events).expect("json");
    assert!(
        text.contains("[redacted]") && !text.contains("ssh-ed25519 AAAA") && !text.contains("ssh-rsa AAAA"),
        "{text}"
    );

    let bad = trailhound(&["replay", "--since", "1d", "--until", "0h", "--events", "--where", "user=x", "testdata"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown key `user`"));
}

/// Writes `keys` distinct long-term keys' uses as one JSON-lines file.
fn many_keys(path: &Path, keys: usize) {
    let mut text = String::with_capacity(keys * 400);
    for i in 0..keys {
        let record = json!({
            "eventVersion": "1.10",
            "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::111122223333:user/u{i}"),
                "accountId": "111122223333", "accessKeyId": format!("AKIA{i:016}"), "userName": format!("u{i}")},
            "eventTime": "2026-10-01T10:00:00Z", "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets",
            "awsRegion": "us-east-1", "sourceIPAddress": format!("10.{}.{}.1", i / 256 % 256, i % 256),
            "userAgent": "aws-cli/2.15.30", "eventID": format!("e{i}"), "eventType": "AwsApiCall",
            "recipientAccountId": "111122223333"
        });
        text.push_str(&record.to_string());
        text.push('\n');
    }
    std::fs::write(path, text).expect("write");
}

/// Starts a scan with state and kills it (SIGKILL) once `ready` says so; returns whether it
/// was still running then.
fn kill_when(state: &Path, input: &Path, ready: impl Fn() -> bool) -> bool {
    let mut child = command(&["scan", "--format", "jsonl", "--state", s(state), s(input)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let running = loop {
        if child.try_wait().expect("wait").is_some() {
            break false;
        }
        if ready() {
            break true;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let _ = child.kill();
    let _ = child.wait();
    running
}

fn assert_opens_whole(state: &Path, keys: u64) {
    let store = SqliteStore::open(state).expect("a killed run leaves a file that opens");
    store.integrity_check().expect("and is sound");
    let count = store.counts().expect("counts").into_iter().find(|(t, _)| t == "baseline").map_or(0, |(_, n)| n);
    assert!(count == 0 || count == keys, "all or nothing, not {count}");
}

#[test]
fn a_kill_during_a_write_leaves_a_state_file_that_opens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("keys.jsonl");
    let keys = 80_000;
    many_keys(&input, keys as usize);
    let state = dir.path().join("state.db");
    let wal = dir.path().join("state.db-wal");
    let wal_bytes = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    // Mid-commit: the one big transaction has spilled pages into the write-ahead log.
    for threshold in [1 << 20, 8 << 20, 16 << 20] {
        assert!(kill_when(&state, &input, || wal_bytes() > threshold), "the run ended before writing {threshold} B");
        assert_opens_whole(&state, keys);
    }
    // And at other moments: while decoding, right after opening.
    let started = std::time::Instant::now();
    kill_when(&state, &input, || started.elapsed() > Duration::from_millis(300));
    assert_opens_whole(&state, keys);

    let finished = trailhound(&["scan", "--format", "jsonl", "--state", s(&state), s(&input)]);
    assert_eq!(finished.status.code(), Some(0));
    assert_eq!(table(&state, Table::Baseline).len() as u64, keys);
    let info = trailhound(&["state", "--state", s(&state)]);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("integrity: ok") && text.contains("baseline: 80000 items"), "{text}");
}

#[test]
fn foreign_files_are_refused_as_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "not a database ".repeat(100)).expect("write");
    let output = trailhound(&["scan", "--state", s(&notes), "testdata/sample"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a SQLite database"));
    assert_eq!(std::fs::read(&notes).expect("read"), "not a database ".repeat(100).as_bytes(), "left alone");
}

/// SPEC §2.1 known SSE-C writers: a (role, bucket) pair alerts once, with its first SSE-C write;
/// every later write of the pair is `info`, in the same run and in the next one (the pair is in
/// the state), while re-running the first input reports its first alert again at full severity.
#[test]
fn a_known_sse_c_writer_alerts_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state.db");
    let day = |date: &str, file: &str| {
        let records: Vec<String> = (0..6)
            .map(|i| {
                format!(
                    r#"{{"eventVersion":"1.10","userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/etl/i-0{i}","accountId":"111122223333","accessKeyId":"ASIAEXAMPLEETL0000{i}","sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"arn:aws:iam::111122223333:role/etl","userName":"etl"}}}}}},"eventTime":"{date}T{:02}:00:00Z","eventSource":"s3.amazonaws.com","eventName":"PutObject","awsRegion":"us-east-1","requestParameters":{{"bucketName":"exports","key":"{date}/{i}.csv","x-amz-server-side-encryption-customer-algorithm":"AES256"}},"eventID":"{date}-{i}","eventCategory":"Data","recipientAccountId":"111122223333"}}"#,
                    8 + i
                )
            })
            .collect();
        let path = dir.path().join(file);
        std::fs::write(&path, format!(r#"{{"Records":[{}]}}"#, records.join(","))).expect("write");
        path
    };
    let (first, second) = (day("2026-10-01", "day1.json"), day("2026-10-02", "day2.json"));
    let severities = |file: &Path| -> Vec<String> {
        lines(&["scan", "--format", "jsonl", "--state", s(&state), s(file)])
            .iter()
            .filter(|f| f["rule"] == "s3.ssec_write")
            .map(|f| f["severity"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(severities(&first), ["high", "info", "info", "info", "info", "info"], "six windows, one alert");
    assert_eq!(table(&state, Table::SsecWriter).len(), 1, "one pair: the role and the bucket");
    assert!(severities(&second).iter().all(|s| s == "info"), "known from the day before");
    assert_eq!(severities(&first)[0], "high", "a re-run reports the same first alert");
}

/// `iam.created_key_used` across runs: a key minted in one run and used in the next is joined
/// through the carried mint fact; its first use is reported once, and again with the same id
/// only when that same input is scanned again.
#[test]
fn a_key_minted_in_one_run_and_used_in_the_next_is_joined() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state.db");
    let intrusion = root().join("testdata/sequences/intrusion");
    let run = |file: &str| -> Vec<Value> {
        let path = intrusion.join(file);
        let found = lines(&["scan", "--format", "jsonl", "--state", s(&state), s(&path)]);
        found.into_iter().filter(|f| f["rule"] == "iam.created_key_used").collect()
    };
    assert!(run("01_owner_uses_the_key_for_a_week.json").is_empty());
    assert!(run("02_stolen_key_enumerates_escalates_and_mints_a_key.json").is_empty(), "minted, not yet used");
    let first = run("03_the_new_key_is_used_elsewhere.json");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["severity"], "high");
    let again = run("03_the_new_key_is_used_elsewhere.json");
    assert_eq!(again.iter().map(|f| &f["id"]).collect::<Vec<_>>(), [&first[0]["id"]], "same input, same finding");
}

/// SPEC §8: `replay --group-by` folds the window's findings into incidents; the raw events it
/// counts are the window's, not the warm-up's.
#[test]
fn replay_groups_the_window_into_incidents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("none.db");
    let input = root().join("testdata/sequences/intrusion");
    let args = [
        "replay",
        "--format",
        "jsonl",
        "--group-by",
        "principal",
        "--since",
        "2026-10-10T00:00:00Z",
        "--until",
        "2026-10-11T00:00:00Z",
        "--warmup",
        "30d",
        "--state",
        s(&missing),
        s(&input),
    ];
    let incidents = lines(&args);
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["schema"], "trailhound.incident/v1");
    assert_eq!(incidents[0]["severity"], "critical");
    // The owner's week of use (the warm-up) is not counted: 26 events of the intrusion and 3 of
    // the new key, the window's.
    assert_eq!(incidents[0]["raw_events"], 29);
}
