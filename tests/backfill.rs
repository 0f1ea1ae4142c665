//! `backfill` and `replay s3://…` end to end against the moto server and the real AWS SDK, run
//! as the binary. The bucket holds four days of generated logs (two regions, several accounts,
//! the last two days in an organization trail's `o-…` layout), digest and Insight objects, and
//! a stray file; the same objects are also written to a local folder so `scan` and `replay`
//! over local files can be compared with the S3 runs.
//!
//! Without the endpoint the tests print a notice and pass, unless `TRAILHOUND_REQUIRE_MOTO` is set.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;
use trailhound::aws::{clients, Clients};
use trailhound::commands::run::Worker;
use trailhound::config::WorkerConfig;
use trailhound::detect::Engine;
use trailhound::finding::{Mode, Severity};
use trailhound::metrics::Metrics;
use trailhound::settings::Settings;
use trailhound::store::sqlite::SqliteStore;
use trailhound::store::{scan_all, StateStore, Table};
use trailhound::synth::{generate, SynthSpec};

mod common;
use common::*;

const DAY: i64 = 86_400_000;
/// 2026-11-01T00:00:00Z.
const NOV_1: i64 = 1_793_491_200_000;
const ORG: &str = "o-exampleorg1";

/// A bucket and its local copy.
struct Trail {
    endpoint: String,
    clients: Clients,
    bucket: String,
    local: tempfile::TempDir,
    /// Log object keys (no digests or Insight).
    keys: Vec<String>,
}

async fn put(clients: &Clients, bucket: &str, local: &Path, key: &str, body: Vec<u8>) {
    let path = local.join(key);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, &body).expect("write local copy");
    clients.s3.put_object().bucket(bucket).key(key).body(ByteStream::from(body)).send().await.expect("put");
}

/// Four days (Nov 1–4, 10:00) of logs with planted attacks; days 3 and 4 in an org layout.
async fn trail(endpoint: &str, files_per_day: usize) -> Trail {
    let clients = clients(&options(endpoint)).await;
    let bucket = unique("trail");
    clients.s3.create_bucket().bucket(&bucket).send().await.expect("bucket");
    let local = tempfile::tempdir().expect("tempdir");
    let mut objects = Vec::new();
    for day in 0..4i64 {
        let spec = SynthSpec {
            seed: 100 + day as u64,
            files: files_per_day,
            events_per_file: 60,
            accounts: 2,
            regions: vec!["us-east-1", "eu-west-1"],
            start: NOV_1 + day * DAY + 10 * 3_600_000,
            attack_every: 2,
            ..SynthSpec::default()
        };
        generate(&spec, |object| {
            let key = match day {
                0 | 1 => object.key,
                _ => object.key.replacen("AWSLogs/", &format!("AWSLogs/{ORG}/"), 1),
            };
            objects.push((key, object.gzip));
        });
    }
    let keys: Vec<String> = objects.iter().map(|(key, _)| key.clone()).collect();
    for (key, body) in objects {
        put(&clients, &bucket, local.path(), &key, body).await;
    }
    // Digests, Insight and stray files beside the logs: never listed into, never read.
    let account = keys[0].split('/').nth(1).expect("account").to_owned();
    let junk = b"not a log".to_vec();
    for extra in [
        format!("AWSLogs/{account}/CloudTrail-Digest/us-east-1/2026/11/02/{account}_CloudTrail-Digest_us-east-1_x_20261102T1000Z.json.gz"),
        format!("AWSLogs/{account}/CloudTrail-Insight/us-east-1/2026/11/02/{account}_CloudTrail-Insight_us-east-1_20261102T1000Z_x.json.gz"),
        "AWSLogs/README.txt".to_owned(),
        // Another service's logs beside the trail's: never listed into.
        "access-logs/2026-11-02-10-00-00-0123456789ABCDEF".to_owned(),
    ] {
        put(&clients, &bucket, local.path(), &extra, junk.clone()).await;
    }
    Trail { endpoint: endpoint.to_owned(), clients, bucket, local, keys }
}

fn trailhound(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trailhound"))
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("TRAILHOUND_CONFIG")
        .env_remove("TRAILHOUND_STATE")
        .output()
        .expect("run trailhound")
}

fn s3_flags(endpoint: &str) -> Vec<String> {
    ["--endpoint-url", endpoint, "--path-style", "--progress", "off", "--format", "jsonl"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// `verb source window… --endpoint-url … --state state`, for the S3 commands.
fn s3_command(verb: &str, source: String, window: &[&str], endpoint: &str, state: &Path) -> Vec<String> {
    let mut args = vec![verb.to_owned(), source];
    args.extend(window.iter().map(|s| s.to_string()));
    args.extend(s3_flags(endpoint));
    args.extend(["--state".into(), state.display().to_string()]);
    args
}

const WINDOW: [&str; 4] = ["--since", "2026-11-02T00:00:00Z", "--until", "2026-11-04T00:00:00Z"];

fn run(args: &[String]) -> (i32, Vec<Value>, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = trailhound(&args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let findings = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{stderr}")))
        .collect();
    (output.status.code().unwrap_or(-1), findings, stderr)
}

/// Rule, id and count of each finding (the origin and mode differ between sources).
fn summary(findings: &[Value]) -> BTreeSet<(String, String, u64)> {
    findings
        .iter()
        .map(|f| {
            let count = f["evidence"]["count"].as_u64().expect("count");
            (f["rule"].as_str().expect("rule").to_owned(), f["id"].as_str().expect("id").to_owned(), count)
        })
        .collect()
}

/// Each finding once, with the largest count it was reported with (an update keeps its id).
fn latest(findings: impl IntoIterator<Item = (String, String, u64)>) -> BTreeSet<(String, String, u64)> {
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (rule, id, count) in findings {
        let slot = counts.entry((rule, id)).or_default();
        *slot = (*slot).max(count);
    }
    counts.into_iter().map(|((rule, id), count)| (rule, id, count)).collect()
}

/// The number before the last `label` in the output, e.g. `12` of `with 12 ListObjectsV2 requests`.
fn number_before(text: &str, label: &str) -> u64 {
    let at = text.rfind(label).unwrap_or_else(|| panic!("no `{label}` in: {text}"));
    let words: Vec<&str> = text[..at].split_whitespace().collect();
    words.last().and_then(|w| w.parse().ok()).unwrap_or_else(|| panic!("no number before `{label}` in: {text}"))
}

/// The requests a walk from the bucket root must make, and no more: the root, `AWSLogs/`, the
/// organization folder, each account folder and its `CloudTrail/`, and one listing per region
/// per day folder of the window.
fn expected_list_requests(trail: &Trail, day_folders: usize) -> u64 {
    let mut accounts = BTreeSet::new();
    let mut regions = BTreeSet::new();
    for key in &trail.keys {
        let parts: Vec<&str> = key.split('/').collect();
        let (account_folder, region) = match parts[1] {
            ORG => (format!("{ORG}/{}", parts[2]), format!("{ORG}/{}/{}", parts[2], parts[4])),
            account => (account.to_owned(), format!("{account}/{}", parts[3])),
        };
        accounts.insert(account_folder);
        regions.insert(region);
    }
    (2 + 1 + 2 * accounts.len() + regions.len() * day_folders) as u64
}

#[test]
fn a_window_lists_only_its_day_folders_and_finds_what_a_local_scan_finds() {
    let Some(endpoint) = endpoint() else { return };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let trail = runtime.block_on(trail(&endpoint, 6));
    let state = tempfile::tempdir().expect("state dir");
    let bucket = format!("s3://{}", trail.bucket);
    let args = s3_command("backfill", bucket, &WINDOW, &trail.endpoint, &state.path().join("state.db"));
    let (code, from_s3, stderr) = run(&args);
    assert_eq!(code, 0, "{stderr}");

    let mut local =
        vec!["scan".to_owned(), trail.local.path().display().to_string(), "--format".into(), "jsonl".into()];
    local.extend(WINDOW.map(String::from));
    let (code, from_files, scan_stderr) = run(&local);
    assert_eq!(code, 0, "{scan_stderr}");
    assert!(from_files.len() >= 4, "the window holds planted attacks: {scan_stderr}");
    assert_eq!(summary(&from_s3), summary(&from_files), "backfill from S3 = scan of the same files\n{stderr}");
    assert!(from_s3
        .iter()
        .all(|f| f["mode"] == "backfill" && f["origin"].as_str().is_some_and(|o| o.starts_with("s3://"))));

    // Days 2 and 3 are selected; days 1 and 4 are listed (the slack reaches into them) but their
    // objects are named too far from the window; years, months, digests and Insight never are.
    let in_window = trail.keys.iter().filter(|k| k.contains("/2026/11/02/") || k.contains("/2026/11/03/")).count();
    assert_eq!(number_before(&stderr, "in the window"), in_window as u64, "{stderr}");
    assert_eq!(number_before(&stderr, "files ("), in_window as u64, "{stderr}");
    assert_eq!(number_before(&stderr, "ListObjectsV2 requests"), expected_list_requests(&trail, 4), "{stderr}");

    // The state is warm for the worker: baselines of the keys seen, and the checkpoint.
    let state_file = state.path().join("state.db").display().to_string();
    let report = String::from_utf8_lossy(&trailhound(&["state", "--state", &state_file]).stdout).into_owned();
    let baselines = report.lines().find_map(|l| l.strip_prefix("baseline: ")).and_then(|l| l.split(' ').next());
    assert!(baselines.and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n > 0), "{report}");
    assert!(report.contains("checkpoint: 1 items"), "{report}");
    assert!(report.contains(&format!("{in_window} objects of s3://{}/ done, up to s3://", trail.bucket)), "{report}");

    // Filters prune the walk: one account of the org trail, one region.
    let org_key: Vec<&str> = trail.keys.iter().find(|k| k.contains(ORG)).expect("org key").split('/').collect();
    let (account, region) = (org_key[2], org_key[4]);
    let logs = format!("s3://{}/AWSLogs/", trail.bucket);
    let filters = [
        "--since",
        "2026-11-01T00:00:00Z",
        "--until",
        "2026-11-05T00:00:00Z",
        "--account",
        account,
        "--region",
        region,
    ];
    let mut narrow = s3_command("backfill", logs, &filters, &trail.endpoint, &state.path().join("narrow.db"));
    narrow.retain(|a| a != "--progress" && a != "off");
    let (code, findings, stderr) = run(&narrow);
    assert_eq!(code, 0, "{stderr}");
    // Not a terminal: no bar, one machine-readable progress line at the end.
    let progress: Vec<Value> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("{\"progress\"").map(|_| serde_json::from_str(l).expect("JSON")))
        .collect();
    assert_eq!(progress.len(), 1, "{stderr}");
    assert_eq!(progress[0]["progress"]["share"], 1.0);
    assert!(!stderr.contains('\r'), "no bar when stderr is not a terminal");
    let wanted = trail.keys.iter().filter(|k| k.contains(&format!("{account}/CloudTrail/{region}/"))).count();
    assert!(wanted > 0 && wanted < trail.keys.len());
    assert_eq!(number_before(&stderr, "in the window"), wanted as u64, "{stderr}");
    assert!(findings.iter().all(|f| f["account"] == account), "only that account's events");
}

#[test]
fn replay_from_s3_equals_replay_of_local_files_and_changes_nothing() {
    let Some(endpoint) = endpoint() else { return };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let trail = runtime.block_on(trail(&endpoint, 6));
    let dir = tempfile::tempdir().expect("state dir");
    let state = dir.path().join("state.db");
    // A state file from a backfill of the first day; the replay must leave it as it is.
    let first_day = ["--since", "2026-11-01T00:00:00Z", "--until", "2026-11-02T00:00:00Z"];
    let warm = s3_command("backfill", format!("s3://{}/AWSLogs/", trail.bucket), &first_day, &trail.endpoint, &state);
    assert_eq!(run(&warm).0, 0);
    let before = std::fs::read(&state).expect("state file");

    let window = [
        "--since",
        "2026-11-03T00:00:00Z",
        "--until",
        "2026-11-04T00:00:00Z",
        "--warmup",
        "1d",
        "--events",
        "--where",
        "eventName=CopyObject",
    ];
    let remote = s3_command("replay", format!("s3://{}", trail.bucket), &window, &trail.endpoint, &state);
    let (code, from_s3, stderr) = run(&remote);
    assert_eq!(code, 0, "{stderr}");
    let mut local = vec!["replay".to_owned(), trail.local.path().display().to_string()];
    local.extend(window.map(String::from));
    local.extend(["--state".into(), state.display().to_string(), "--format".into(), "jsonl".into()]);
    let (code, from_files, local_stderr) = run(&local);
    assert_eq!(code, 0, "{local_stderr}");

    let (s3_findings, s3_events): (Vec<Value>, Vec<Value>) = from_s3.into_iter().partition(|v| v.get("rule").is_some());
    let (file_findings, file_events): (Vec<Value>, Vec<Value>) =
        from_files.into_iter().partition(|v| v.get("rule").is_some());
    assert!(!s3_findings.is_empty() && !s3_events.is_empty(), "{stderr}");
    assert_eq!(summary(&s3_findings), summary(&file_findings));
    assert!(s3_findings.iter().all(|f| f["mode"] == "replay"));
    let records = |events: &[Value]| events.iter().map(|e| e["record"].to_string()).collect::<Vec<_>>();
    assert_eq!(records(&s3_events), records(&file_events), "the same raw events, redacted the same way");
    assert_eq!(std::fs::read(&state).expect("state file"), before, "a replay never writes the state");
    let mut updating = remote.clone();
    updating.push("--update-state".into());
    let (code, again, stderr) = run(&updating);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        summary(&again.into_iter().filter(|v| v.get("rule").is_some()).collect::<Vec<_>>()),
        summary(&s3_findings)
    );
    assert_ne!(std::fs::read(&state).expect("state file"), before, "--update-state writes what the replay learned");
}

/// A loopback proxy to `endpoint` that serves `allowed` object downloads and then answers every
/// further download with 403 (listings still pass): a backfill interrupted part way.
async fn failing_after(endpoint: &str, allowed: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target = endpoint.trim_start_matches("http://").to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let served = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let (target, served) = (target.clone(), served.clone());
            tokio::spawn(async move {
                // One body-less request per connection (a backfill only lists and downloads).
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match client.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let line = text.lines().next().unwrap_or("");
                let download = line.starts_with("GET ") && !line.contains("list-type=");
                if download && served.fetch_add(1, Ordering::SeqCst) >= allowed {
                    let body = "<Error><Code>AccessDenied</Code><Message>denied</Message></Error>";
                    let response = format!(
                        "HTTP/1.1 403 Forbidden\r\ncontent-type: application/xml\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = client.write_all(response.as_bytes()).await;
                    return;
                }
                let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else { return };
                let head: String = text
                    .split("\r\n")
                    .filter(|h| !h.to_ascii_lowercase().starts_with("connection:"))
                    .collect::<Vec<_>>()
                    .join("\r\n");
                let head = head.replacen("\r\n\r\n", "\r\nconnection: close\r\n\r\n", 1);
                if server.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy(&mut server, &mut client).await;
                let _ = client.shutdown().await;
            });
        }
    });
    url
}

#[test]
fn an_interrupted_backfill_resumes_where_it_stopped() {
    let Some(endpoint) = endpoint() else { return };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let trail = runtime.block_on(trail(&endpoint, 40));
    let proxy = runtime.block_on(failing_after(&endpoint, 100));
    let dir = tempfile::tempdir().expect("state dir");
    let backfill = |state: &str, endpoint: &str, restart: bool| {
        let window = ["--since", "2026-11-01T00:00:00Z", "--until", "2026-11-05T00:00:00Z", "--concurrency", "4"];
        let mut args =
            s3_command("backfill", format!("s3://{}", trail.bucket), &window, endpoint, &dir.path().join(state));
        if restart {
            args.push("--restart".into());
        }
        run(&args)
    };
    let (code, whole, stderr) = backfill("whole.db", &endpoint, false);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(number_before(&stderr, "in the window"), 160);

    let (code, first, stderr) = backfill("split.db", &proxy, false);
    assert_eq!(code, 2, "the downloads after the 100th fail: {stderr}");
    assert!(stderr.contains("AccessDenied") && stderr.contains("resumes"), "{stderr}");
    let done = number_before(&stderr, "files (");
    assert_eq!(done, 64, "one batch of 64 finished before the failing one: {stderr}");

    let (code, second, stderr) = backfill("split.db", &endpoint, false);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("resuming: 64 objects were done"), "{stderr}");
    assert_eq!(number_before(&stderr, "files ("), 160 - 64, "{stderr}");
    assert_eq!(number_before(&stderr, "in the window to do"), 160 - 64, "{stderr}");
    assert_eq!(number_before(&stderr, "done by an earlier run"), 64, "{stderr}");
    // The two halves report what one run reports (a finding that grew keeps its id).
    assert!(!whole.is_empty());
    assert_eq!(latest(summary(&first).into_iter().chain(summary(&second))), summary(&whole));

    // Finished: the same command again has nothing left; --restart does it all again.
    let (code, again, stderr) = backfill("split.db", &endpoint, false);
    assert_eq!(code, 0, "{stderr}");
    assert!(again.is_empty() && stderr.contains("resuming: 160 objects"), "{stderr}");
    let (code, _, stderr) = backfill("split.db", &endpoint, true);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(number_before(&stderr, "files ("), 160, "{stderr}");
}

/// Reads every alert the inbox queue holds, waiting until `expected` arrived or `patience` ran out.
async fn read_alerts(clients: &Clients, inbox: &str, expected: usize, patience: Duration) -> Vec<(Value, Value)> {
    let started = Instant::now();
    let mut alerts = Vec::new();
    while alerts.len() < expected && started.elapsed() < patience {
        let received = clients
            .sqs
            .receive_message()
            .queue_url(inbox)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .expect("receive");
        for message in received.messages() {
            let body: Value = serde_json::from_str(message.body().unwrap_or("")).expect("alert JSON");
            let attributes: serde_json::Map<String, Value> = message
                .message_attributes()
                .map(|map| map.iter().map(|(k, v)| (k.clone(), Value::from(v.string_value().unwrap_or("")))).collect())
                .unwrap_or_default();
            alerts.push((body, Value::Object(attributes)));
            let receipt = message.receipt_handle().unwrap_or("");
            clients.sqs.delete_message().queue_url(inbox).receipt_handle(receipt).send().await.expect("delete");
        }
    }
    alerts
}

async fn topic_with_inbox(clients: &Clients) -> (String, String) {
    let topic = clients.sns.create_topic().name(unique("alerts")).send().await.expect("topic").topic_arn.expect("arn");
    let inbox = queue(clients, &unique("inbox"), &[]).await;
    subscribe(clients, &topic, queue_arn(clients, &inbox).await).await;
    (topic, inbox)
}

#[test]
fn publish_tags_the_mode_and_enqueue_feeds_workers_that_find_the_same() {
    let Some(endpoint) = endpoint() else { return };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let trail = runtime.block_on(trail(&endpoint, 6));
    let dir = tempfile::tempdir().expect("state dir");
    let bucket = format!("s3://{}", trail.bucket);
    let command =
        |verb: &str, state: &str| s3_command(verb, bucket.clone(), &WINDOW, &trail.endpoint, &dir.path().join(state));

    // --publish: every finding at or above the severity, tagged mode=backfill.
    let (topic, inbox) = runtime.block_on(topic_with_inbox(&trail.clients));
    let mut args = command("backfill", "published.db");
    args.extend(["--publish".into(), topic.clone(), "--publish-severity".into(), "low".into()]);
    let (code, findings, stderr) = run(&args);
    assert_eq!(code, 0, "{stderr}");
    let publishable = findings.iter().filter(|f| f["severity"] != "info").count();
    assert!(publishable > 0);
    assert_eq!(number_before(&stderr, "alerts to"), publishable as u64, "{stderr}");
    let alerts = runtime.block_on(read_alerts(&trail.clients, &inbox, publishable, Duration::from_secs(20)));
    assert_eq!(alerts.len(), publishable);
    for (body, attributes) in &alerts {
        assert_eq!(body["mode"], "backfill");
        assert_eq!(attributes["mode"], "backfill");
    }
    // Again from the start on the same state: the dedup record pages no one twice.
    args.push("--restart".into());
    let (code, again, stderr) = run(&args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary(&again), summary(&findings));
    assert!(stderr.contains(&format!("published 0 alerts to {topic} ({publishable} published before)")), "{stderr}");
    assert!(runtime.block_on(read_alerts(&trail.clients, &inbox, 1, Duration::from_secs(2))).is_empty());

    // A replay pages no one without --publish, and tags its alerts mode=replay with it.
    let mut replay = command("replay", "none.db");
    assert_eq!(run(&replay).0, 0);
    assert!(runtime.block_on(read_alerts(&trail.clients, &inbox, 1, Duration::from_secs(2))).is_empty());
    replay.extend(["--publish".into(), topic, "--publish-severity".into(), "low".into()]);
    assert_eq!(run(&replay).0, 0);
    let alerts = runtime.block_on(read_alerts(&trail.clients, &inbox, publishable, Duration::from_secs(20)));
    assert_eq!(alerts.len(), publishable);
    assert!(alerts.iter().all(|(body, attributes)| body["mode"] == "replay" && attributes["mode"] == "replay"));

    // --enqueue: the window's keys go to the queue; a worker then finds what the backfill found.
    let work = runtime.block_on(queue(&trail.clients, &unique("work"), &[]));
    let mut enqueue = command("backfill", "enqueue.db");
    enqueue.extend(["--enqueue".into(), work.clone()]);
    let (code, nothing, stderr) = run(&enqueue);
    assert_eq!(code, 0, "{stderr}");
    assert!(nothing.is_empty(), "enqueueing processes nothing itself");
    let in_window = trail.keys.iter().filter(|k| k.contains("/2026/11/02/") || k.contains("/2026/11/03/")).count();
    assert!(
        stderr.contains(&format!("enqueued {in_window} objects in {} messages", in_window.div_ceil(10))),
        "{stderr}"
    );
    // Enqueueing is resumable too: the same command again sends nothing.
    let (code, _, again) = run(&enqueue);
    assert_eq!(code, 0, "{again}");
    assert!(again.contains("enqueued 0 objects in 0 messages"), "{again}");

    let (topic, inbox) = runtime.block_on(topic_with_inbox(&trail.clients));
    let store: Arc<dyn StateStore> = Arc::new(SqliteStore::open(&dir.path().join("worker.db")).expect("state"));
    let worker = |objects| drain(&trail.clients, &work, &topic, store.clone(), objects);
    let suppressed = runtime.block_on(worker(in_window as u64));
    assert_eq!(suppressed, 0);
    let alerts = runtime.block_on(read_alerts(&trail.clients, &inbox, findings.len(), Duration::from_secs(20)));
    let bodies: Vec<Value> = alerts.into_iter().map(|(body, _)| body).collect();
    let from_worker = latest(summary(&bodies));
    assert_eq!(from_worker, summary(&findings), "the fleet finds what the backfill found");

    // The same objects enqueued again (a replay of the backlog): the workers page no one and
    // the baselines do not change.
    let baselines = || scan_all(store.as_ref(), Table::Baseline).expect("baselines");
    let before = baselines();
    enqueue.push("--restart".into());
    assert_eq!(run(&enqueue).0, 0);
    let suppressed = runtime.block_on(worker(in_window as u64));
    assert!(suppressed > 0);
    assert!(runtime.block_on(read_alerts(&trail.clients, &inbox, 1, Duration::from_secs(3))).is_empty());
    assert_eq!(baselines(), before, "the same events teach nothing new");
}

/// Runs a worker on `queue` until it has inspected `objects` objects, then stops it; returns the
/// alerts it suppressed as already sent.
async fn drain(clients: &Clients, queue: &str, topic: &str, store: Arc<dyn StateStore>, objects: u64) -> u64 {
    let mut config = WorkerConfig::new(queue, topic);
    config.message.publish_at = Severity::Info;
    config.wait_seconds = 1;
    let engine = Engine::new(Settings::default(), Mode::Live);
    let metrics = Arc::new(Metrics::default());
    let worker =
        Worker::new(clients.clone(), config, engine, store, metrics.clone(), now_millis).await.expect("worker");
    let done = async {
        while metrics.objects_inspected.load(Ordering::Relaxed) < objects {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    tokio::time::timeout(Duration::from_secs(120), worker.run(done)).await.expect("worker finished");
    metrics.alerts_suppressed.load(Ordering::Relaxed)
}

#[test]
fn an_interrupt_stops_after_a_batch_and_the_same_command_resumes() {
    use std::io::{BufRead, BufReader};
    let Some(endpoint) = endpoint() else { return };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let trail = runtime.block_on(trail(&endpoint, 40));
    // Every request takes 40 ms or more, so the run is still going when the signal comes.
    let slow = runtime.block_on(slow_proxy(&endpoint, Duration::from_millis(40)));
    let dir = tempfile::tempdir().expect("state dir");
    let window = ["--since", "2026-11-01T00:00:00Z", "--until", "2026-11-05T00:00:00Z", "--concurrency", "2"];
    let command = |endpoint: &str, state: &str| {
        s3_command("backfill", format!("s3://{}", trail.bucket), &window, endpoint, &dir.path().join(state))
    };
    let (code, whole, stderr) = run(&command(&endpoint, "whole.db"));
    assert_eq!(code, 0, "{stderr}");

    let mut args = command(&slow, "split.db");
    let progress = args.iter().position(|a| a == "--progress").expect("--progress");
    args[progress + 1] = "jsonl".into();
    let mut child = Command::new(env!("CARGO_BIN_EXE_trailhound"))
        .args(&args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let collect = std::thread::spawn(move || std::io::read_to_string(stdout).expect("stdout"));
    let mut stderr_lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut stderr = String::new();
    // Once the first batch is done, interrupt.
    for line in stderr_lines.by_ref() {
        let line = line.expect("stderr line");
        stderr.push_str(&line);
        stderr.push('\n');
        let progress: Value = serde_json::from_str(&line).unwrap_or_default();
        if progress["progress"]["done"].as_u64().is_some_and(|done| done >= 64) {
            let pid = child.id().to_string();
            assert!(Command::new("kill").args(["-INT", &pid]).status().expect("kill").success());
            break;
        }
    }
    for line in stderr_lines {
        stderr.push_str(&line.expect("stderr line"));
        stderr.push('\n');
    }
    let status = child.wait().expect("wait");
    let first: Vec<Value> =
        collect.join().expect("stdout thread").lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("interrupted; the same command resumes"), "{stderr}");
    let done = number_before(&stderr, "files (");
    assert!((64..160).contains(&done) && done.is_multiple_of(64), "stopped at a batch boundary: {stderr}");

    let (code, second, stderr) = run(&command(&endpoint, "split.db"));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains(&format!("resuming: {done} objects")), "{stderr}");
    assert_eq!(number_before(&stderr, "files ("), 160 - done, "{stderr}");
    assert_eq!(latest(summary(&first).into_iter().chain(summary(&second))), summary(&whole));
}

#[test]
fn a_damaged_object_is_quarantined_and_a_failing_listing_stops_the_run() {
    let Some(endpoint) = endpoint() else { return };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let trail = runtime.block_on(trail(&endpoint, 2));
    let account = trail.keys[0].split('/').nth(1).expect("account").to_owned();
    let damaged = format!(
        "AWSLogs/{account}/CloudTrail/us-east-1/2026/11/02/{account}_CloudTrail_us-east-1_20261102T1000Z_DAMAGED.json.gz"
    );
    let mut gzip_then_garbage = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    gzip_then_garbage.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    runtime.block_on(put(&trail.clients, &trail.bucket, trail.local.path(), &damaged, gzip_then_garbage));
    let dir = tempfile::tempdir().expect("state dir");
    let bucket = format!("s3://{}", trail.bucket);
    let (code, findings, stderr) =
        run(&s3_command("backfill", bucket.clone(), &WINDOW, &trail.endpoint, &dir.path().join("state.db")));
    assert_eq!(code, 0, "a damaged object does not stop the run: {stderr}");
    let quarantined: Vec<&Value> = findings.iter().filter(|f| f["rule"] == "trail.unreadable_log_file").collect();
    assert_eq!(quarantined.len(), 1, "{stderr}");
    assert_eq!(quarantined[0]["origin"], format!("s3://{}/{damaged}", trail.bucket));
    assert!(stderr.contains("quarantined 1 files"), "{stderr}");
    assert!(findings.len() > 1, "the other objects are still inspected");

    // S3 answering 503 to everything: the SDK retries, then the run stops with a clear error.
    let failing = runtime.block_on(failing_endpoint());
    let mut args = s3_command("backfill", bucket, &WINDOW, &trail.endpoint, &dir.path().join("other.db"));
    args.extend(["--s3-endpoint-url".into(), failing]);
    let (code, findings, stderr) = run(&args);
    assert_eq!(code, 2, "{stderr}");
    assert!(findings.is_empty());
    assert!(stderr.contains("listing s3://") && stderr.contains("ServiceUnavailable"), "{stderr}");
}
