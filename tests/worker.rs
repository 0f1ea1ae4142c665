//! The worker end to end against a real AWS-compatible endpoint: a moto server on loopback
//! (`scripts/moto.sh`, started by `scripts/test.sh`; its URL in `TRAILHOUND_MOTO_ENDPOINT`) and
//! the real AWS SDK. Every test makes its own uniquely named bucket, queues and topic; alerts
//! are read back from an SQS queue subscribed to the topic.
//!
//! Without the endpoint the tests print a notice and pass, unless `TRAILHOUND_REQUIRE_MOTO` is
//! set (the test command sets it, so CI cannot skip them silently).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{json, Value};
use trailhound::aws::{clients, AwsOptions, Clients};
use trailhound::commands::run::Worker;
use trailhound::config::WorkerConfig;
use trailhound::detect::Engine;
use trailhound::finding::Mode;
use trailhound::metrics::Metrics;
use trailhound::settings::Settings;
use trailhound::sink::SinkSpec;
use trailhound::store::sqlite::SqliteStore;
use trailhound::store::StateStore;

mod common;
use common::*;

/// One test's AWS resources.
struct Stack {
    endpoint: String,
    clients: Clients,
    bucket: String,
    queue_url: String,
    dlq_url: String,
    topic_arn: String,
    alerts_url: String,
    _dir: tempfile::TempDir,
    state: PathBuf,
}

/// Bucket → queue notifications, a DLQ after `max_receives`, a topic with an alert queue.
async fn stack(endpoint: &str, visibility_s: u32, max_receives: u32) -> Stack {
    let clients = clients(&options(endpoint)).await;
    let bucket = unique("trail");
    clients.s3.create_bucket().bucket(&bucket).send().await.expect("bucket");
    let dlq_url = queue(&clients, &unique("dlq"), &[]).await;
    let dlq_arn = queue_arn(&clients, &dlq_url).await;
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives.to_string()}).to_string();
    let queue_url = queue(
        &clients,
        &unique("notifications"),
        &[
            (QueueAttributeName::VisibilityTimeout, visibility_s.to_string()),
            (QueueAttributeName::RedrivePolicy, redrive),
        ],
    )
    .await;
    let notifications_arn = queue_arn(&clients, &queue_url).await;
    let notification = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder()
                .queue_arn(notifications_arn)
                .events(Event::S3ObjectCreated)
                .build()
                .expect("config"),
        )
        .build();
    clients
        .s3
        .put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(notification)
        .send()
        .await
        .expect("notification configuration");
    let topic_arn =
        clients.sns.create_topic().name(unique("alerts")).send().await.expect("topic").topic_arn.expect("arn");
    let alerts_url = queue(&clients, &unique("alert-inbox"), &[]).await;
    let alerts_arn = queue_arn(&clients, &alerts_url).await;
    subscribe(&clients, &topic_arn, alerts_arn).await;
    // The configuration's s3:TestEvent lands first; the worker acknowledges it.
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.db");
    Stack {
        endpoint: endpoint.to_owned(),
        clients,
        bucket,
        queue_url,
        dlq_url,
        topic_arn,
        alerts_url,
        _dir: dir,
        state,
    }
}

/// A gzip CloudTrail object made of fixture files' records.
fn object(fixtures: &[&str]) -> Vec<u8> {
    let mut records = Vec::new();
    for fixture in fixtures {
        let value: Value =
            serde_json::from_slice(&std::fs::read(root().join("testdata/events").join(fixture)).expect("fixture"))
                .expect("json");
        records.extend(value["Records"].as_array().expect("records").iter().cloned());
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json!({ "Records": records }).to_string().as_bytes()).expect("gzip");
    gz.finish().expect("gzip")
}

const SSE_C: &str = "s3.ssec_copy_overwrite/positive/critical_in_place_with_sse_c_header.json";
const SSH: &str = "ec2.instance_connect_ssh/positive/medium_send_ssh_public_key.json";

fn log_key(name: &str) -> String {
    format!("AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/01/111122223333_CloudTrail_us-east-1_20261101T1000Z_{name}.json.gz")
}

impl Stack {
    async fn put(&self, key: &str, body: Vec<u8>) {
        self.clients
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .expect("put");
    }

    async fn send(&self, body: &str) {
        self.clients.sqs.send_message().queue_url(&self.queue_url).message_body(body).send().await.expect("send");
    }

    async fn worker(&self, configure: impl FnOnce(&mut WorkerConfig)) -> (Worker, Arc<Metrics>) {
        self.worker_with(self.clients.clone(), configure).await
    }

    /// A worker whose S3 requests go through `s3_endpoint` (a slow proxy, say).
    async fn worker_via(&self, s3_endpoint: &str, configure: impl FnOnce(&mut WorkerConfig)) -> (Worker, Arc<Metrics>) {
        let endpoint = options(&self.endpoint);
        let options = AwsOptions { s3_endpoint_url: Some(s3_endpoint.to_owned()), ..endpoint };
        self.worker_with(clients(&options).await, configure).await
    }

    async fn worker_with(&self, clients: Clients, configure: impl FnOnce(&mut WorkerConfig)) -> (Worker, Arc<Metrics>) {
        let mut config = WorkerConfig::new(&self.queue_url, &self.topic_arn);
        config.wait_seconds = 1;
        configure(&mut config);
        let store: Arc<dyn StateStore> = Arc::new(SqliteStore::open(&self.state).expect("state"));
        let metrics = Arc::new(Metrics::default());
        let engine = Engine::new(Settings::default(), Mode::Live);
        let worker = Worker::new(clients, config, engine, store, metrics.clone(), now_millis).await.expect("worker");
        (worker, metrics)
    }

    /// Alerts on the inbox until `done` says so or the deadline passes.
    async fn alerts_until(&self, deadline: Duration, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let start = Instant::now();
        let mut alerts = Vec::new();
        while !done(&alerts) && start.elapsed() < deadline {
            let received = self
                .clients
                .sqs
                .receive_message()
                .queue_url(&self.alerts_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_attribute_names("All")
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .send()
                .await
                .expect("receive alerts");
            for message in received.messages.unwrap_or_default() {
                let mut body: Value = serde_json::from_str(message.body().unwrap_or("")).expect("alert is JSON");
                // The SNS message attributes, as the subscription delivered them.
                let attributes: serde_json::Map<String, Value> = message
                    .message_attributes()
                    .into_iter()
                    .flatten()
                    .map(|(name, value)| (name.clone(), json!(value.string_value())))
                    .collect();
                body["__attributes"] = Value::Object(attributes);
                let group = message
                    .attributes()
                    .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId));
                body["__group"] = json!(group);
                alerts.push(body);
                let receipt = message.receipt_handle().unwrap_or_default();
                self.clients.sqs.delete_message().queue_url(&self.alerts_url).receipt_handle(receipt).send().await.ok();
            }
        }
        alerts
    }

    async fn depth(&self, url: &str) -> u64 {
        let attributes = self
            .clients
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("attributes")
            .attributes
            .unwrap_or_default();
        let get = |name| attributes.get(&name).and_then(|v: &String| v.parse::<u64>().ok()).unwrap_or(0);
        get(QueueAttributeName::ApproximateNumberOfMessages)
            + get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
    }
}

fn rules(alerts: &[Value]) -> Vec<String> {
    let mut rules: Vec<String> = alerts.iter().map(|a| a["rule"].as_str().unwrap_or("").to_owned()).collect();
    rules.sort();
    rules
}

/// Runs the worker until `stop` resolves.
async fn run_until(worker: &Worker, stop: impl std::future::Future<Output = ()>) {
    worker.run(stop).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_log_becomes_alerts_and_its_message_is_deleted() {
    let Some(endpoint) = endpoint() else { return };
    let stack = stack(&endpoint, 30, 3).await;
    stack.put(&log_key("planted"), object(&[SSE_C, SSH])).await;
    let (worker, metrics) = stack.worker(|_| {}).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = run_until(&worker, async {
        let _ = stopped.await;
    });
    let watch = async {
        let alerts = stack.alerts_until(Duration::from_secs(60), |a| a.len() >= 2).await;
        // Wait for the delete, which follows the publication.
        let start = Instant::now();
        while stack.depth(&stack.queue_url).await > 0 && start.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let _ = stop.send(());
        alerts
    };
    let ((), alerts) = tokio::join!(running, watch);
    assert_eq!(rules(&alerts), ["ec2.instance_connect_ssh", "s3.ssec_copy_overwrite"]);
    let sse_c = alerts.iter().find(|a| a["rule"] == "s3.ssec_copy_overwrite").expect("sse-c");
    assert_eq!(sse_c["mode"], "live");
    let attributes = &sse_c["__attributes"];
    assert_eq!(attributes["severity"], "critical");
    assert_eq!(attributes["rule"], "s3.ssec_copy_overwrite");
    assert_eq!(attributes["family"], "s3-ransomware");
    assert_eq!(attributes["account"], "111122223333");
    assert_eq!(sse_c["severity"], "critical");
    assert!(sse_c["origin"].as_str().is_some_and(|o| o.starts_with(&format!("s3://{}/AWSLogs/", stack.bucket))));
    assert_eq!(stack.depth(&stack.queue_url).await, 0, "the notification (and the test event) were deleted");
    assert_eq!(metrics.objects_inspected.load(Ordering::Relaxed), 1);
    let text = metrics.render(now_millis());
    assert!(
        text.contains("trailhound_findings_total{rule=\"s3.ssec_copy_overwrite\",severity=\"critical\"} 1"),
        "{text}"
    );
}

/// Runs a worker until the alert inbox holds `expected` alerts (or a minute passes) and the
/// notification queue is empty, then stops it; returns the alerts.
async fn run_to_alerts(stack: &Stack, worker: &Worker, expected: usize) -> Vec<Value> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = run_until(worker, async {
        let _ = stopped.await;
    });
    let watch = async {
        let alerts = stack.alerts_until(Duration::from_secs(60), |a| a.len() >= expected).await;
        let start = Instant::now();
        while stack.depth(&stack.queue_url).await > 0 && start.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // A little longer, to catch any alert that should not be there.
        let extra = stack.alerts_until(Duration::from_secs(2), |_| false).await;
        let _ = stop.send(());
        alerts.into_iter().chain(extra).collect::<Vec<_>>()
    };
    let ((), alerts) = tokio::join!(running, watch);
    alerts
}

/// A bucket without notifications, for objects whose notifications the test writes itself.
async fn quiet_bucket(stack: &Stack) -> String {
    let bucket = unique("quiet");
    stack.clients.s3.create_bucket().bucket(&bucket).send().await.expect("bucket");
    bucket
}

async fn put_in(stack: &Stack, bucket: &str, key: &str, body: Vec<u8>) {
    stack.clients.s3.put_object().bucket(bucket).key(key).body(ByteStream::from(body)).send().await.expect("put");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_notification_envelope_is_understood() {
    let Some(endpoint) = endpoint() else { return };
    let stack = stack(&endpoint, 30, 3).await;
    let bucket = quiet_bucket(&stack).await;
    let keys =
        [log_key("with space+plus ü"), log_key("sns"), log_key("native-1"), log_key("native-2"), log_key("bridge")];
    let fixtures = [
        SSE_C,
        SSH,
        "ec2.serial_console_enabled/positive/medium_enable_serial_console.json",
        "ssm.port_forward_remote_admin/positive/medium_port_forward_ssh.json",
        "ecs.execute_command/positive/medium_interactive_shell.json",
    ];
    for (key, fixture) in keys.iter().zip(fixtures) {
        put_in(&stack, &bucket, key, object(&[fixture])).await;
    }
    // 1. S3 notification, key form-encoded as S3 does it.
    let encoded: String = keys[0]
        .split('/')
        .map(|part| {
            percent_encoding::utf8_percent_encode(part, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
                .replace("%20", "+")
                .replace("%2E", ".")
                .replace("%5F", "_")
                .replace("%2D", "-")
        })
        .collect::<Vec<_>>()
        .join("/");
    let s3 = |key: &str| {
        json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]})
        .to_string()
    };
    stack.send(&s3(&encoded)).await;
    // 2. The same inside an SNS envelope (keys encoded too; this one has nothing to encode).
    stack.send(&json!({"Type": "Notification", "Message": s3(&keys[1])}).to_string()).await;
    // 3. CloudTrail's own notification with two keys, not encoded.
    stack.send(&json!({"s3Bucket": bucket, "s3ObjectKey": [keys[2], keys[3]]}).to_string()).await;
    // 4. EventBridge.
    let bridge = json!({"version": "0", "detail-type": "Object Created", "source": "aws.s3",
        "detail": {"bucket": {"name": bucket}, "object": {"key": keys[4]}}});
    stack.send(&bridge.to_string()).await;
    let (worker, metrics) = stack.worker(|_| {}).await;
    let alerts = run_to_alerts(&stack, &worker, 5).await;
    assert_eq!(
        rules(&alerts),
        [
            "ec2.instance_connect_ssh",
            "ec2.serial_console_enabled",
            "ecs.execute_command",
            "s3.ssec_copy_overwrite",
            "ssm.port_forward_remote_admin"
        ]
    );
    assert_eq!(metrics.objects_inspected.load(Ordering::Relaxed), 5);
    assert_eq!(stack.depth(&stack.queue_url).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_body_reaches_the_dead_letter_queue_unchanged() {
    let Some(endpoint) = endpoint() else { return };
    let stack = stack(&endpoint, 1, 2).await;
    let poison = "{\"not\": \"a notification\", \"bytes\": \"\\u00e9\\n\"}  trailing";
    stack.send(poison).await;
    let (worker, metrics) = stack.worker(|_| {}).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = run_until(&worker, async {
        let _ = stopped.await;
    });
    let watch = async {
        let start = Instant::now();
        while stack.depth(&stack.dlq_url).await == 0 && start.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let _ = stop.send(());
    };
    tokio::join!(running, watch);
    let moved = stack.clients.sqs.receive_message().queue_url(&stack.dlq_url).send().await.expect("dlq");
    let bodies: Vec<&str> = moved.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, [poison], "dead-lettered byte-identical");
    assert_eq!(stack.depth(&stack.queue_url).await, 0);
    assert!(metrics.messages_received.load(Ordering::Relaxed) >= 2, "received maxReceiveCount times");
    assert_eq!(metrics.messages_deleted.load(Ordering::Relaxed), 1, "only the s3:TestEvent was deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_object_is_quarantined_and_acknowledged_and_its_good_records_still_count() {
    let Some(endpoint) = endpoint() else { return };
    let stack = stack(&endpoint, 30, 3).await;
    let good = object(&[SSE_C]);
    let mut truncated = good.clone();
    truncated.truncate(good.len() - 12); // the gzip trailer and a little of the stream
    stack.put(&log_key("truncated"), truncated).await;
    stack.put(&log_key("random"), (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect()).await;
    let (worker, metrics) = stack.worker(|_| {}).await;
    let alerts = run_to_alerts(&stack, &worker, 2).await;
    let quarantined: Vec<&Value> = alerts.iter().filter(|a| a["rule"] == "trail.unreadable_log_file").collect();
    assert_eq!(quarantined.len(), 2, "{alerts:#?}");
    assert_eq!(metrics.objects_quarantined.load(Ordering::Relaxed), 2);
    assert_eq!(stack.depth(&stack.queue_url).await, 0, "quarantined objects are acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_notifications_page_once_per_finding() {
    let Some(endpoint) = endpoint() else { return };
    let stack = stack(&endpoint, 30, 3).await;
    let bucket = quiet_bucket(&stack).await;
    let key = log_key("twice");
    put_in(&stack, &bucket, &key, object(&[SSE_C, SSH])).await;
    let native = json!({"s3Bucket": bucket, "s3ObjectKey": [key]}).to_string();
    for _ in 0..3 {
        stack.send(&native).await;
    }
    // The same events in another object: the same finding ids.
    let copy = log_key("copy");
    put_in(&stack, &bucket, &copy, object(&[SSE_C, SSH])).await;
    stack.send(&json!({"s3Bucket": bucket, "s3ObjectKey": [copy]}).to_string()).await;
    let (worker, metrics) = stack.worker(|_| {}).await;
    let alerts = run_to_alerts(&stack, &worker, 2).await;
    assert_eq!(rules(&alerts), ["ec2.instance_connect_ssh", "s3.ssec_copy_overwrite"], "one alert per finding id");
    assert!(metrics.alerts_suppressed.load(Ordering::Relaxed) >= 6);
    assert_eq!(stack.depth(&stack.queue_url).await, 0);
}

/// A gzip log of `records` benign events (no findings): decoding it takes a while.
fn benign_object(tag: usize, records: usize) -> Vec<u8> {
    let records: Vec<Value> = (0..records)
        .map(|i| {
            json!({"eventVersion": "1.10", "eventTime": "2026-11-01T10:00:00Z", "eventSource": "ec2.amazonaws.com",
                "eventName": "DescribeInstances", "awsRegion": "us-east-1", "sourceIPAddress": "10.0.0.1",
                "userAgent": "aws-cli/2.15.30", "eventID": format!("benign-{tag}-{i}"), "eventType": "AwsApiCall",
                "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/ops/alice",
                    "accessKeyId": "ASIAEXAMPLE", "accountId": "111122223333"},
                "requestParameters": {"instancesSet": {}, "filterSet": {"items": [{"name": "tag:team", "valueSet": {"items": [{"value": "payments"}]}}]}},
                "responseElements": null, "recipientAccountId": "111122223333"})
        })
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(json!({ "Records": records }).to_string().as_bytes()).expect("gzip");
    gz.finish().expect("gzip")
}

/// Uploads `n` logs to a quiet bucket and returns a CloudTrail-native notification naming them
/// all: with one fetch at a time, a message that takes seconds.
async fn slow_message(stack: &Stack, n: usize) -> String {
    let bucket = quiet_bucket(stack).await;
    let mut keys = Vec::new();
    for i in 0..n {
        let key = log_key(&format!("slow-{i:04}"));
        put_in(stack, &bucket, &key, benign_object(i, 200)).await;
        keys.push(key);
    }
    json!({"s3Bucket": bucket, "s3ObjectKey": keys}).to_string()
}

/// Two workers share a queue with a 1 s visibility timeout; one message takes several times
/// longer (the first worker reaches moto through a slow proxy). Returns the objects inspected by
/// both and the number named.
async fn two_workers_on_a_slow_message(heartbeat: bool) -> Option<(u64, usize)> {
    let endpoint = endpoint()?;
    let stack = stack(&endpoint, 1, 5).await;
    let objects = 40;
    let message = slow_message(&stack, objects).await;
    let configure = |config: &mut WorkerConfig| {
        config.heartbeat = heartbeat;
        config.message.fetch_concurrency = 1;
    };
    // 100 ms per S3 request, one object at a time: the message takes at least 4 s.
    let slow = slow_proxy(&endpoint, Duration::from_millis(100)).await;
    let (first, first_metrics) = stack.worker_via(&slow, configure).await;
    let (second, second_metrics) = stack.worker(configure).await;
    stack.send(&message).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    let watch = async {
        let start = Instant::now();
        while stack.depth(&stack.queue_url).await > 0 && start.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!("queue empty after {:?}", start.elapsed());
        let _ = stop.send(true);
    };
    // The second worker starts once the first has the message (it is the slow one).
    let second_run = async {
        let start = Instant::now();
        while first_metrics.objects_inspected.load(Ordering::Relaxed) == 0 && start.elapsed() < Duration::from_secs(30)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        second.run(until_stopped(stopped.clone())).await;
    };
    tokio::join!(first.run(until_stopped(stopped.clone())), second_run, watch);
    let inspected = first_metrics.objects_inspected.load(Ordering::Relaxed)
        + second_metrics.objects_inspected.load(Ordering::Relaxed);
    eprintln!(
        "heartbeat {heartbeat}: {inspected} objects inspected, receives {} + {}",
        first_metrics.messages_received.load(Ordering::Relaxed),
        second_metrics.messages_received.load(Ordering::Relaxed)
    );
    Some((inspected, objects))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_heartbeat_keeps_a_slow_message_from_being_redelivered() {
    let Some((inspected, objects)) = two_workers_on_a_slow_message(true).await else { return };
    assert_eq!(inspected, objects as u64, "one worker did the message, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_heartbeat_the_test_sees_the_redelivery() {
    // The control: proves the heartbeat test could see a duplicate.
    let Some((inspected, objects)) = two_workers_on_a_slow_message(false).await else { return };
    assert!(inspected > objects as u64, "the message ran out of visibility and was done twice: {inspected}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_work_in_flight_exits_in_time_and_releases_the_message() {
    let Some(endpoint) = endpoint() else { return };
    let stack = stack(&endpoint, 120, 5).await;
    let message = slow_message(&stack, 40).await;
    stack.send(&message).await;
    // Every S3 request takes 100 ms: the message is in progress for seconds.
    let slow = slow_proxy(&endpoint, Duration::from_millis(100)).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let metrics_addr = format!("127.0.0.1:{port}");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_trailhound"))
        .args(["run", "--queue-url", &stack.queue_url, "--topic-arn", &stack.topic_arn])
        .args([
            "--endpoint-url",
            &endpoint,
            "--s3-endpoint-url",
            &slow,
            "--region",
            "us-east-1",
            "--path-style",
            "--concurrency",
            "1",
        ])
        .args(["--grace", "0", "--metrics-addr", &metrics_addr, "--log-format", "json"])
        .arg("--state")
        .arg(&stack.state)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("TRAILHOUND_CONFIG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut child = KillOnDrop(child);
    // Wait until the slow message is in progress.
    let start = Instant::now();
    loop {
        let body = http_get(&metrics_addr, "/metrics").await.unwrap_or_default();
        if metric(&body, "trailhound_in_flight") == 1 && metric(&body, "trailhound_objects_inspected_total") >= 1 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the worker never took the message: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(http_get(&metrics_addr, "/healthz").await.as_deref(), Some("ok\n"));
    let signalled = Instant::now();
    let status = std::process::Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let exit = loop {
        if let Some(exit) = child.0.try_wait().expect("wait") {
            break exit;
        }
        assert!(signalled.elapsed() < Duration::from_secs(10), "no exit within the grace period");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(exit.code(), Some(0));
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().expect("stderr"), &mut logs).expect("logs");
    assert!(logs.contains("released unfinished message"), "{logs}");
    // Visible again at once, although the queue's visibility timeout is two minutes.
    let again = stack
        .clients
        .sqs
        .receive_message()
        .queue_url(&stack.queue_url)
        .wait_time_seconds(2)
        .send()
        .await
        .expect("receive");
    let bodies: Vec<&str> = again.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, [message.as_str()], "the unfinished message is back, unchanged");
}

/// Kills the child if the test fails before it exits.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A metric's value in Prometheus text (0 when absent).
fn metric(text: &str, name: &str) -> i64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

/// A GET over a plain TCP connection; the body, or `None` when nothing answers.
async fn http_get(addr: &str, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_topics_get_group_and_deduplication_ids() {
    let Some(endpoint) = endpoint() else { return };
    let mut stack = stack(&endpoint, 30, 3).await;
    let topic = stack
        .clients
        .sns
        .create_topic()
        .name(format!("{}.fifo", unique("alerts")))
        .attributes("FifoTopic", "true")
        .send()
        .await
        .expect("fifo topic")
        .topic_arn
        .expect("arn");
    let inbox =
        queue(&stack.clients, &format!("{}.fifo", unique("inbox")), &[(QueueAttributeName::FifoQueue, "true".into())])
            .await;
    let inbox_arn = queue_arn(&stack.clients, &inbox).await;
    subscribe(&stack.clients, &topic, inbox_arn).await;
    stack.topic_arn = topic;
    stack.alerts_url = inbox.clone();
    stack.put(&log_key("fifo"), object(&[SSE_C, SSH])).await;
    let (worker, _) = stack.worker(|_| {}).await;
    let alerts = run_to_alerts(&stack, &worker, 2).await;
    assert_eq!(rules(&alerts), ["ec2.instance_connect_ssh", "s3.ssec_copy_overwrite"]);
    for alert in &alerts {
        assert_eq!(alert["__group"], alert["rule"], "one FIFO group per rule");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_s3_errors_leave_the_message_for_a_later_retry() {
    let Some(endpoint) = endpoint() else { return };
    let stack = stack(&endpoint, 30, 5).await;
    stack.put(&log_key("unlucky"), object(&[SSE_C])).await;
    let failing = failing_endpoint().await;
    let (worker, metrics) = stack.worker_via(&failing, |_| {}).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let watch = async {
        let start = Instant::now();
        while metrics
            .render(now_millis())
            .lines()
            .all(|l| !l.starts_with("trailhound_errors_total{kind=\"transient\"}"))
            && start.elapsed() < Duration::from_secs(60)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = stop.send(());
    };
    tokio::join!(
        run_until(&worker, async {
            let _ = stopped.await;
        }),
        watch
    );
    assert!(metrics.render(now_millis()).contains("trailhound_errors_total{kind=\"transient\"} 1"));
    assert_eq!(stack.depth(&stack.queue_url).await, 1, "the message is kept, not deleted");
    assert!(stack.alerts_until(Duration::from_secs(1), |_| false).await.is_empty());
    // S3 recovers: the retry (here a fresh worker once the backoff has passed) does the work.
    let (healthy, _) = stack.worker(|_| {}).await;
    let alerts = run_to_alerts(&stack, &healthy, 1).await;
    assert_eq!(rules(&alerts), ["s3.ssec_copy_overwrite"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_publishes_to_every_configured_sink() {
    let Some(endpoint) = endpoint() else { return };
    let stack = stack(&endpoint, 30, 3).await;
    // An EventBridge bus whose rule sends every trailhound event to a queue.
    let bus = unique("bus");
    stack.clients.eventbridge.create_event_bus().name(&bus).send().await.expect("bus");
    let events_url = queue(&stack.clients, &unique("events"), &[]).await;
    let events_arn = queue_arn(&stack.clients, &events_url).await;
    let rule = unique("rule");
    let pattern = r#"{"source":["trailhound"]}"#;
    let put_rule = stack.clients.eventbridge.put_rule().name(&rule).event_bus_name(&bus).event_pattern(pattern);
    put_rule.send().await.expect("rule");
    let target = aws_sdk_eventbridge::types::Target::builder().id("q").arn(events_arn).build().expect("target");
    let put_target = stack.clients.eventbridge.put_targets().rule(&rule).event_bus_name(&bus).targets(target);
    put_target.send().await.expect("target");
    // A copy of the SSE-C fixture under an eventID no other test publishes to Security Hub.
    let fixture = std::fs::read(root().join("testdata/events").join(SSE_C)).expect("fixture");
    let mut record: Value = serde_json::from_slice(&fixture).expect("fixture JSON");
    let event_id = unique("sinks-event");
    record["Records"][0]["eventID"] = json!(event_id);
    stack.put(&log_key("sinks"), serde_json::to_vec(&record).expect("json")).await;

    let (worker, _) = stack
        .worker(|config| {
            config.message.sinks.push(SinkSpec::SecurityHub { account: None });
            config.message.sinks.push(SinkSpec::EventBridge { bus: bus.clone() });
        })
        .await;
    let alerts = run_to_alerts(&stack, &worker, 1).await;
    assert_eq!(rules(&alerts), ["s3.ssec_copy_overwrite"], "SNS");
    let id = alerts[0]["id"].as_str().expect("id").to_owned();

    // Other tests import into the same emulator: page through everything.
    let mut imported = Vec::new();
    let mut token = None;
    loop {
        let page = stack.clients.securityhub.get_findings().set_next_token(token).max_results(100).send().await;
        let page = page.expect("GetFindings");
        imported.extend(page.findings().iter().filter(|f| f.id() == Some(id.as_str())).cloned());
        token = page.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(imported.len(), 1, "Security Hub");
    assert_eq!(imported[0].generator_id(), Some("s3.ssec_copy_overwrite"));

    let received = stack.clients.sqs.receive_message().queue_url(&events_url).wait_time_seconds(5).send().await;
    let messages = received.expect("receive").messages.unwrap_or_default();
    let event: Value = serde_json::from_str(messages[0].body().unwrap_or("")).expect("event JSON");
    assert_eq!(event["detail"]["id"], id.as_str(), "EventBridge");
    assert_eq!(event["detail"]["mode"], "live");
}
