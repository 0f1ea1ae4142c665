//! A fleet that shares one brain (issue 11): several `trailhound run` processes on one queue
//! with `--state dynamodb://TABLE` on moto find what one worker finds. The corpus holds the
//! sequences of `testdata/sequences/`: a long-term key whose eight days of history and whose
//! anomalous use sit in different objects (and a key that wakes after 45 days), SSE-C writes
//! and the lifecycle change that makes them a ransomware chain in two objects, an SSE-C burst
//! whose 15-minute window spans two objects (one alert, then updates), and an instance role
//! learned in one object that makes an admin policy in another critical. Objects go to
//! whichever worker receives them first, so history and chains are split across workers.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;
use trailhound::aws::{clients, Clients};
use trailhound::detect::Engine;
use trailhound::finding::{Mode, Severity};
use trailhound::pipeline::{scan, ScanPlan};
use trailhound::settings::Settings;
use trailhound::store::dynamodb::DynamoStore;
use trailhound::store::session::Session;
use trailhound::store::StateStore;

use common::{endpoint, options, queue, queue_arn, root, subscribe, trailhound_on, unique};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Fleet {
    endpoint: String,
    clients: Clients,
    bucket: String,
    queue_url: String,
    topic_arn: String,
    alerts_url: String,
    table: String,
}

/// One log object of the corpus: its key (named, as CloudTrail names objects, after the time
/// of its first event) and its bytes.
struct Object {
    day: String,
    /// The delivery it belongs to (the time in its name).
    delivery: String,
    name: String,
    key: String,
    body: Vec<u8>,
}

/// The sequences as delivered objects, in delivery order. A live trail delivers its objects
/// every few minutes: workers take the objects of one delivery in any order, but not a
/// delivery a week late (the baselines and the event-time windows depend on that, for one
/// worker as for many).
fn corpus(copy: &str) -> Vec<Object> {
    let mut objects = Vec::new();
    for sequence in ["baseline", "ransomware", "policy", "burst"] {
        let dir = root().join("testdata/sequences").join(sequence);
        for file in std::fs::read_dir(dir).expect("dir").flatten().map(|e| e.path()) {
            let body = std::fs::read(&file).expect("read");
            let records: Value = serde_json::from_slice(&body).expect("JSON");
            let time = records["Records"][0]["eventTime"].as_str().expect("eventTime").to_owned();
            // 2026-10-05T10:00:00Z → 20261005T1000Z
            let digits: String = time.chars().filter(char::is_ascii_digit).collect();
            let name_time = format!("{}T{}Z", &digits[..8], &digits[8..12]);
            let stem = file.file_stem().and_then(|n| n.to_str()).expect("name");
            let tag: String = stem.chars().filter(char::is_ascii_alphanumeric).collect();
            let name = format!("111122223333_CloudTrail_us-east-1_{name_time}_{copy}{tag}.json");
            let (y, m, d) = (&digits[..4], &digits[4..6], &digits[6..8]);
            let key = format!("AWSLogs/111122223333/CloudTrail/us-east-1/{y}/{m}/{d}/{name}");
            objects.push(Object { day: digits[..8].to_owned(), delivery: name_time, name, key, body });
        }
    }
    objects.sort_by(|a, b| a.name.cmp(&b.name));
    objects
}

async fn fleet(endpoint: &str) -> Fleet {
    let clients = clients(&options(endpoint)).await;
    let bucket = unique("fleet-trail");
    clients.s3.create_bucket().bucket(&bucket).send().await.expect("bucket");
    let visibility = [(QueueAttributeName::VisibilityTimeout, "20".to_owned())];
    let queue_url = queue(&clients, &unique("fleet-notifications"), &visibility).await;
    let notifications_arn = queue_arn(&clients, &queue_url).await;
    let configuration = QueueConfiguration::builder()
        .queue_arn(notifications_arn)
        .events(Event::S3ObjectCreated)
        .build()
        .expect("config");
    let notification = NotificationConfiguration::builder().queue_configurations(configuration).build();
    let configure = clients.s3.put_bucket_notification_configuration().bucket(&bucket);
    configure.notification_configuration(notification).send().await.expect("notifications");
    let topic = clients.sns.create_topic().name(unique("fleet-alerts")).send().await.expect("topic");
    let topic_arn = topic.topic_arn().expect("arn").to_owned();
    let alerts_url = queue(&clients, &unique("fleet-inbox"), &[]).await;
    subscribe(&clients, &topic_arn, queue_arn(&clients, &alerts_url).await).await;
    let table = unique("fleet-state");
    let store = DynamoStore::connect(&options(endpoint), &table).expect("connect");
    store.create_table().expect("table");
    Fleet { endpoint: endpoint.to_owned(), clients, bucket, queue_url, topic_arn, alerts_url, table }
}

fn spawn_worker(queue_url: &str, topic_arn: &str, endpoint: &str, state: &str) -> KillOnDrop {
    let child = trailhound_on(endpoint)
        .args(["run", "--queue-url", queue_url, "--topic-arn", topic_arn])
        .args(["--endpoint-url", endpoint, "--aws-region", "us-east-1", "--path-style"])
        .args(["--state", state, "--grace", "5", "--concurrency", "2"])
        .env("TRAILHOUND_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(worker_log())
        .spawn()
        .expect("spawn a worker");
    KillOnDrop(child)
}

/// Where the workers' logs go (appended, all workers of the run), for a failure to show.
fn worker_log_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("trailhound-fleet-workers-{}.log", std::process::id()))
}

fn worker_log() -> Stdio {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(worker_log_path());
    file.map_or_else(|_| Stdio::null(), Stdio::from)
}

/// The end of the workers' logs, for an assertion message.
fn worker_log_tail() -> String {
    let text = std::fs::read_to_string(worker_log_path()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "last worker log lines ({}):\n{}",
        worker_log_path().display(),
        lines[lines.len().saturating_sub(40)..].join("\n")
    )
}

impl Fleet {
    fn worker(&self) -> KillOnDrop {
        (self.spawner())()
    }

    /// Starts workers of this fleet (from any thread).
    fn spawner(&self) -> impl Fn() -> KillOnDrop + Send + 'static {
        let (queue, topic, endpoint) = (self.queue_url.clone(), self.topic_arn.clone(), self.endpoint.clone());
        let state = format!("dynamodb://{}", self.table);
        move || spawn_worker(&queue, &topic, &endpoint, &state)
    }

    /// Delivers the corpus delivery by delivery, each delivery's objects at once (in `copies`
    /// copies: the same events in several objects, as organization trails deliver them), and
    /// waits until the fleet has finished one before the next. Returns the objects delivered.
    async fn deliver(&self, copies: &[&str]) -> usize {
        let mut days: BTreeMap<String, Vec<Object>> = BTreeMap::new();
        for copy in copies {
            for object in corpus(copy) {
                days.entry(object.delivery.clone()).or_default().push(object);
            }
        }
        let mut count = 0;
        for objects in days.values() {
            for object in objects {
                let body = ByteStream::from(object.body.clone());
                self.clients
                    .s3
                    .put_object()
                    .bucket(&self.bucket)
                    .key(&object.key)
                    .body(body)
                    .send()
                    .await
                    .expect("put");
                count += 1;
            }
            let start = Instant::now();
            while self.depth().await > 0 {
                let depth = self.depth().await;
                assert!(
                    // Generous: a message retried a few times waits out the run command's retry
                    // pauses (5, 10, 20 s …). A real stall prints the workers' log (the one seen
                    // in CI was moto's unlocked DynamoDB; see scripts/moto_server.py).
                    start.elapsed() < Duration::from_secs(600),
                    "the fleet never finished a delivery ({depth} messages left)\n{}",
                    worker_log_tail()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        count
    }

    async fn depth(&self) -> u64 {
        let attributes = self
            .clients
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("attributes")
            .attributes
            .unwrap_or_default();
        attributes.values().filter_map(|v| v.parse::<u64>().ok()).sum()
    }

    /// Alerts until the queue is empty and nothing has arrived for a while.
    async fn alerts(&self, deadline: Duration) -> Vec<Value> {
        let start = Instant::now();
        let mut alerts = Vec::new();
        let mut quiet_since = Instant::now();
        while start.elapsed() < deadline {
            let receive = self.clients.sqs.receive_message().queue_url(&self.alerts_url).max_number_of_messages(10);
            let messages = receive.wait_time_seconds(1).send().await.expect("receive").messages.unwrap_or_default();
            if !messages.is_empty() {
                quiet_since = Instant::now();
            }
            for message in messages {
                alerts.push(serde_json::from_str(message.body().unwrap_or("")).expect("alert JSON"));
                let receipt = message.receipt_handle().unwrap_or_default();
                self.clients.sqs.delete_message().queue_url(&self.alerts_url).receipt_handle(receipt).send().await.ok();
            }
            if quiet_since.elapsed() > Duration::from_secs(4) && self.depth().await == 0 {
                break;
            }
        }
        alerts
    }
}

/// What one process finds in the same objects, taken in delivery order: finding id →
/// severity, at the publish threshold.
fn single_worker() -> BTreeMap<String, Severity> {
    let dir = tempfile::tempdir().expect("temp dir");
    for object in corpus("a") {
        std::fs::write(dir.path().join(&object.name), &object.body).expect("write");
    }
    let plan = ScanPlan::new(vec![dir.path().to_path_buf()]);
    let result = scan(&plan, &Engine::new(Settings::default(), Mode::Scan), Mode::Scan);
    result.findings.iter().filter(|f| f.severity >= Severity::Medium).map(|f| (f.id.clone(), f.severity)).collect()
}

/// Checks what the fleet published against one worker: the same finding ids, and each
/// version of a finding (its id and count) published once.
fn assert_fleet_equals_one_worker(alerts: &[Value]) {
    assert_same_findings(alerts);
    let mut versions: BTreeMap<(String, u64), usize> = BTreeMap::new();
    for alert in alerts {
        let key = (alert["id"].as_str().unwrap_or("").to_owned(), alert["evidence"]["count"].as_u64().unwrap_or(0));
        *versions.entry(key).or_default() += 1;
    }
    let twice: Vec<_> = versions.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "published more than once: {twice:?}");
}

/// The fleet published every finding one worker finds, and no other.
fn assert_same_findings(alerts: &[Value]) {
    let expected = single_worker();
    let published: BTreeSet<String> = alerts.iter().map(|a| a["id"].as_str().unwrap_or("").to_owned()).collect();
    let expected_ids: BTreeSet<String> = expected.keys().cloned().collect();
    let rules = |ids: &BTreeSet<String>| -> Vec<String> {
        alerts.iter().filter(|a| ids.contains(a["id"].as_str().unwrap_or(""))).map(|a| a["rule"].to_string()).collect()
    };
    let extra: BTreeSet<String> = published.difference(&expected_ids).cloned().collect();
    let missing: Vec<&String> = expected_ids.difference(&published).collect();
    assert!(missing.is_empty(), "missing {missing:?}");
    assert!(extra.is_empty(), "not found by one worker: {:?}", rules(&extra));
    for rule in ["iam.long_term_key_anomaly", "iam.dormant_key_used", "s3.ransomware_chain", "s3.ssec_write"] {
        assert!(alerts.iter().any(|a| a["rule"] == rule), "{rule} fires across workers");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_on_one_queue_and_one_table_find_what_one_worker_finds() {
    let Some(endpoint) = endpoint() else { return };
    let fleet = fleet(&endpoint).await;
    let workers: Vec<KillOnDrop> = (0..3).map(|_| fleet.worker()).collect();
    // Two copies of every object: the same events reach two workers at once.
    let objects = fleet.deliver(&["a", "b"]).await;
    assert_eq!(objects, 2 * corpus("a").len());
    let alerts = fleet.alerts(Duration::from_secs(60)).await;
    drop(workers);
    assert_fleet_equals_one_worker(&alerts);
    // The table is consistent: the carried state, roles and watermark load.
    let store = DynamoStore::connect(&options(&endpoint), &fleet.table).expect("connect");
    assert!(store.shared());
    let (counts, _) = store.report().expect("report");
    assert!(counts.iter().any(|(t, n)| t == "baseline" && *n >= 2), "{counts:?}");
    Session::read_only(std::sync::Arc::new(store), Settings::default()).expect("the shared state loads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_killed_at_random_while_committing_lose_nothing_and_leave_the_table_consistent() {
    let Some(endpoint) = endpoint() else { return };
    let fleet = fleet(&endpoint).await;
    let workers: Vec<KillOnDrop> = (0..3).map(|_| fleet.worker()).collect();
    let workers = std::sync::Arc::new(std::sync::Mutex::new(workers));
    // SIGKILL a worker every 700 ms (a seeded order) while the corpus is delivered, and start a
    // fresh one in its place. Killed messages come back after the 20 s visibility timeout,
    // claims after 30 s.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = {
        let (workers, stop, fleet_worker) = (workers.clone(), stop.clone(), fleet.spawner());
        std::thread::spawn(move || {
            let mut seed = 0x2545_f491_u64;
            let mut kills = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && kills < 8 {
                std::thread::sleep(Duration::from_millis(700));
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let mut workers = workers.lock().expect("lock");
                let victim = (seed % workers.len() as u64) as usize;
                let pid = workers[victim].0.id().to_string();
                Command::new("kill").args(["-KILL", &pid]).status().expect("kill");
                workers[victim] = fleet_worker();
                kills += 1;
            }
            kills
        })
    };
    let objects = fleet.deliver(&["a", "b", "c"]).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let kills = killer.join().expect("killer");
    assert!(kills >= 2, "{kills} kills");
    assert_eq!(objects, 3 * corpus("a").len());
    let alerts = fleet.alerts(Duration::from_secs(60)).await;
    drop(workers);
    assert_same_findings(&alerts);
    let store = DynamoStore::connect(&options(&endpoint), &fleet.table).expect("connect");
    Session::read_only(std::sync::Arc::new(store), Settings::default()).expect("the table stays consistent");
    assert_eq!(fleet.depth().await, 0, "every message was finished");
}

/// Runs `trailhound backfill` of `bucket` into `table`.
fn backfill(fleet: &Fleet, bucket: &str, table: &str) {
    let output = trailhound_on(&fleet.endpoint)
        .args(["backfill", &format!("s3://{bucket}"), "--since", "2026-07-31T00:00Z", "--until", "2026-09-09T00:00Z"])
        .args(["--endpoint-url", &fleet.endpoint, "--aws-region", "us-east-1", "--path-style", "--progress", "off"])
        .args(["--state", &format!("dynamodb://{table}"), "--format", "jsonl"])
        .output()
        .expect("backfill runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_into_the_table_warms_the_fleet() {
    let Some(endpoint) = endpoint() else { return };
    let fleet = fleet(&endpoint).await;
    // Eight days of deploy-bot's history, in a bucket the workers are not notified of.
    let history = unique("history");
    fleet.clients.s3.create_bucket().bucket(&history).send().await.expect("bucket");
    let objects = corpus("a");
    let (before, after): (Vec<&Object>, Vec<&Object>) = objects.iter().partition(|o| o.day.as_str() < "20260909");
    for object in &before {
        let body = ByteStream::from(object.body.clone());
        fleet.clients.s3.put_object().bucket(&history).key(&object.key).body(body).send().await.expect("put");
    }
    backfill(&fleet, &history, &fleet.table);
    let store = DynamoStore::connect(&options(&endpoint), &fleet.table).expect("connect");
    let (counts, _) = store.report().expect("report");
    assert!(counts.iter().any(|(t, n)| t == "baseline" && *n >= 1), "the backfill wrote baselines: {counts:?}");

    // Then the worker sees the key's use from a new network, tool and region.
    let workers = vec![fleet.worker()];
    let anomaly = after.iter().find(|o| o.day == "20260910").expect("the anomaly's day");
    let body = ByteStream::from(anomaly.body.clone());
    fleet.clients.s3.put_object().bucket(&fleet.bucket).key(&anomaly.key).body(body).send().await.expect("put");
    let alerts = fleet.alerts(Duration::from_secs(60)).await;
    drop(workers);
    let rules: Vec<&str> = alerts.iter().filter_map(|a| a["rule"].as_str()).collect();
    assert!(rules.contains(&"iam.long_term_key_anomaly"), "a warm worker knows the key: {rules:?}");

    // A cold table: the same object is the key's first use, so nothing is anomalous.
    let cold = Fleet { table: unique("cold-state"), ..fleet };
    DynamoStore::connect(&options(&endpoint), &cold.table).expect("connect").create_table().expect("table");
    let workers = vec![cold.worker()];
    let copy = anomaly.key.replace(".json", "-again.json");
    let body = ByteStream::from(anomaly.body.clone());
    cold.clients.s3.put_object().bucket(&cold.bucket).key(copy).body(body).send().await.expect("put");
    let alerts = cold.alerts(Duration::from_secs(60)).await;
    drop(workers);
    let rules: Vec<&str> = alerts.iter().filter_map(|a| a["rule"].as_str()).collect();
    assert!(!rules.contains(&"iam.long_term_key_anomaly"), "a cold worker is still learning: {rules:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_enqueue_feeds_the_fleet_which_finds_what_a_local_scan_finds() {
    let Some(endpoint) = endpoint() else { return };
    let fleet = fleet(&endpoint).await;
    // One day's objects (the ransomware and policy sequences, whose conclusions do not depend
    // on the order the fleet takes them in), in a bucket the workers are not notified of.
    let archive = unique("archive");
    fleet.clients.s3.create_bucket().bucket(&archive).send().await.expect("bucket");
    let day: Vec<Object> = corpus("a").into_iter().filter(|o| o.day == "20261005").collect();
    assert!(day.len() >= 5);
    let dir = tempfile::tempdir().expect("temp dir");
    for object in &day {
        let body = ByteStream::from(object.body.clone());
        fleet.clients.s3.put_object().bucket(&archive).key(&object.key).body(body).send().await.expect("put");
        std::fs::write(dir.path().join(&object.name), &object.body).expect("write");
    }
    let workers: Vec<KillOnDrop> = (0..3).map(|_| fleet.worker()).collect();
    let output = trailhound_on(&fleet.endpoint)
        .args(["backfill", &format!("s3://{archive}"), "--since", "2026-10-05T00:00Z", "--until", "2026-10-06T00:00Z"])
        .args(["--endpoint-url", &fleet.endpoint, "--aws-region", "us-east-1", "--path-style", "--progress", "off"])
        .args(["--state", &format!("dynamodb://{}", fleet.table), "--enqueue", &fleet.queue_url])
        .output()
        .expect("backfill runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && stderr.contains(&format!("enqueued {} objects", day.len())), "{stderr}");
    let alerts = fleet.alerts(Duration::from_secs(90)).await;
    drop(workers);

    let local =
        scan(&ScanPlan::new(vec![dir.path().to_path_buf()]), &Engine::new(Settings::default(), Mode::Scan), Mode::Scan);
    let expected: BTreeSet<String> =
        local.findings.iter().filter(|f| f.severity >= Severity::Medium).map(|f| f.id.clone()).collect();
    let published: BTreeSet<String> = alerts.iter().map(|a| a["id"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(published, expected);
    assert!(alerts.iter().any(|a| a["rule"] == "s3.ransomware_chain" && a["mode"] == "live"));
}
