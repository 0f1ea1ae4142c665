//! `trailhound lambda` through the Lambda Runtime API (issue 12): `cargo lambda watch
//! --only-lambda-apis` serves the Runtime API on loopback, the built binary is the function, and
//! `cargo lambda invoke --data-file` sends SQS event payloads in the shape AWS documents
//! (`Records[]` with `messageId`, `receiptHandle`, `body`, `attributes`, `eventSource: aws:sqs`).
//! S3, SNS and the DynamoDB state are moto's.
//!
//! One batch holds two good notifications (an S3 event and a CloudTrail notification inside an
//! SNS envelope) of the ransomware sequence, a notification of an object whose bucket does not
//! exist yet (transiently unreachable), one of a corrupt object and a body that is not a
//! notification. The response must name exactly the unreachable one and the poison one; the
//! corrupt object is quarantined (a `trail.unreadable_log_file` alert) and acknowledged. Once the
//! bucket exists, the retried message succeeds; a redelivered good message pages nobody twice.
//!
//! Skipped with a notice when `TRAILHOUND_CARGO_LAMBDA` (the `cargo-lambda` binary that
//! `scripts/tools.sh` installs) is unset, unless `TRAILHOUND_REQUIRE_MOTO` is set.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use serde_json::{json, Value};
use trailhound::aws::{clients, Clients};
use trailhound::store::dynamodb::DynamoStore;

use common::function::{cargo_lambda, Function};
use common::{endpoint, options, queue, queue_arn, root, subscribe, trailhound_on, unique};

/// A CloudTrail-style key for a delivery of account 111122223333.
fn log_key(stamp: &str, tag: &str, gz: bool) -> String {
    let (y, m, d) = (&stamp[..4], &stamp[4..6], &stamp[6..8]);
    let suffix = if gz { ".json.gz" } else { ".json" };
    format!(
        "AWSLogs/111122223333/CloudTrail/us-east-1/{y}/{m}/{d}/111122223333_CloudTrail_us-east-1_{stamp}_{tag}{suffix}"
    )
}

/// An SQS record as the event source mapping hands it to the function.
fn record(id: &str, body: &str, queue_arn: &str) -> Value {
    json!({
        "messageId": id,
        "receiptHandle": format!("AQEB{id}receipt"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1764460800000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1764460800010"
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1"
    })
}

fn s3_notification(bucket: &str, key: &str) -> String {
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-10-05T10:05:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": key, "size": 1024}}
    }]})
    .to_string()
}

fn cloudtrail_notification_in_sns(bucket: &str, key: &str, topic_arn: &str) -> String {
    let inner = json!({"s3Bucket": bucket, "s3ObjectKey": [key]}).to_string();
    json!({"Type": "Notification", "MessageId": "0f6c0f5e-1", "TopicArn": topic_arn, "Message": inner,
           "Timestamp": "2026-10-05T10:05:00.000Z"})
    .to_string()
}

async fn alerts(clients: &Clients, inbox: &str, quiet: Duration) -> Vec<Value> {
    let mut alerts = Vec::new();
    let mut last = Instant::now();
    while last.elapsed() < quiet {
        let receive = clients.sqs.receive_message().queue_url(inbox).max_number_of_messages(10).wait_time_seconds(1);
        for message in receive.send().await.expect("receive").messages.unwrap_or_default() {
            last = Instant::now();
            alerts.push(serde_json::from_str(message.body().unwrap_or("")).expect("alert JSON"));
            let receipt = message.receipt_handle().unwrap_or_default();
            clients.sqs.delete_message().queue_url(inbox).receipt_handle(receipt).send().await.ok();
        }
    }
    alerts
}

fn failures(response: &Value) -> BTreeSet<String> {
    let list = response["batchItemFailures"].as_array().unwrap_or_else(|| panic!("no batchItemFailures: {response}"));
    list.iter().map(|f| f["itemIdentifier"].as_str().expect("itemIdentifier").to_owned()).collect()
}

fn sequence_file(name: &str) -> Vec<u8> {
    std::fs::read(root().join("testdata/sequences/ransomware").join(name)).expect("sequence file")
}

async fn put(clients: &Clients, bucket: &str, key: &str, body: Vec<u8>) {
    clients.s3.put_object().bucket(bucket).key(key).body(ByteStream::from(body)).send().await.expect("put");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_reports_exactly_the_messages_that_must_come_back() {
    let (Some(endpoint), Some(cargo_lambda)) = (endpoint(), cargo_lambda()) else { return };
    let clients = clients(&options(&endpoint)).await;
    let bucket = unique("lambda-trail");
    clients.s3.create_bucket().bucket(&bucket).send().await.expect("bucket");
    let late_bucket = unique("lambda-late");
    let topic = clients.sns.create_topic().name(unique("lambda-alerts")).send().await.expect("topic");
    let topic_arn = topic.topic_arn().expect("arn").to_owned();
    let inbox = queue(&clients, &unique("lambda-inbox"), &[]).await;
    subscribe(&clients, &topic_arn, queue_arn(&clients, &inbox).await).await;
    let table = unique("lambda-state");
    DynamoStore::connect(&options(&endpoint), &table).expect("connect").create_table().expect("table");

    let encrypts = log_key("20261005T1000Z", "encrypts", false);
    let expiry = log_key("20261005T1010Z", "expiry", false);
    let corrupt = log_key("20261005T1020Z", "corrupt", true);
    let late = log_key("20261005T1030Z", "late", false);
    put(&clients, &bucket, &encrypts, sequence_file("01_intruder_encrypts.json")).await;
    put(&clients, &bucket, &expiry, sequence_file("02_intruder_sets_expiry.json")).await;
    put(&clients, &bucket, &corrupt, b"\x1f\x8b\x08\x00 this is not a gzip stream".to_vec()).await;

    let source = "arn:aws:sqs:us-east-1:111122223333:trail-notifications";
    let batch = json!({"Records": [
        record("m-encrypts", &s3_notification(&bucket, &encrypts), source),
        record("m-expiry", &cloudtrail_notification_in_sns(&bucket, &expiry, &topic_arn), source),
        record("m-late", &s3_notification(&late_bucket, &late), source),
        record("m-corrupt", &s3_notification(&bucket, &corrupt), source),
        record("m-poison", "hello, this is not a notification", source),
    ]});

    let state = format!("dynamodb://{table}");
    let env = [
        ("TRAILHOUND_STATE", state.as_str()),
        ("TRAILHOUND_TOPIC_ARN", topic_arn.as_str()),
        ("TRAILHOUND_PUBLISH_SEVERITY", "info"),
        ("TRAILHOUND_LOG", "info"),
    ];
    let mut function = Function::start(cargo_lambda, &endpoint, &env);
    let response = function.invoke(&batch);
    let expected: BTreeSet<String> = ["m-late", "m-poison"].into_iter().map(String::from).collect();
    assert_eq!(failures(&response), expected, "response: {response}\nlog:\n{}", function.log_text());

    let first = alerts(&clients, &inbox, Duration::from_secs(3)).await;
    let rules: BTreeSet<&str> = first.iter().filter_map(|a| a["rule"].as_str()).collect();
    assert!(rules.contains("trail.unreadable_log_file"), "the corrupt object is quarantined: {rules:?}");
    assert!(rules.contains("s3.ransomware_chain"), "the chain across two messages of one batch: {rules:?}");
    let quarantined = first.iter().find(|a| a["rule"] == "trail.unreadable_log_file").expect("quarantine alert");
    assert!(quarantined.to_string().contains("corrupt"), "the alert names the object: {quarantined}");

    // The unreachable object becomes reachable: its message alone comes back and now succeeds.
    clients.s3.create_bucket().bucket(&late_bucket).send().await.expect("late bucket");
    put(&clients, &late_bucket, &late, sequence_file("03_wiper_encrypts_and_deletes.json")).await;
    let retry = json!({"Records": [record("m-late", &s3_notification(&late_bucket, &late), source)]});
    assert!(failures(&function.invoke(&retry)).is_empty());

    // A redelivered message (the mapping retries after a lost response) pages nobody twice.
    let redelivery = json!({"Records": [record("m-encrypts-again", &s3_notification(&bucket, &encrypts), source)]});
    assert!(failures(&function.invoke(&redelivery)).is_empty());
    let later = alerts(&clients, &inbox, Duration::from_secs(3)).await;
    let key = |a: &Value| (a["id"].as_str().unwrap_or("").to_owned(), a["evidence"]["count"].clone());
    let first_keys: Vec<_> = first.iter().map(key).collect();
    for alert in &later {
        assert!(!first_keys.contains(&key(alert)), "paged twice: {alert}");
    }

    // Structured logs: one JSON line per invocation, and the failures with their reasons.
    let lines = function.log_lines();
    let batches: Vec<&Value> = lines.iter().filter(|l| l["fields"]["message"] == "batch handled").collect();
    assert_eq!(batches.len(), 3, "one line per invocation: {}", function.log_text());
    assert_eq!(batches[0]["fields"]["messages"], 5);
    assert_eq!(batches[0]["fields"]["failed"], 2);
    let reasons: Vec<&Value> = lines.iter().filter(|l| l["fields"]["message"] == "message will come back").collect();
    assert!(reasons.iter().any(|l| l["fields"]["message_id"] == "m-poison"
        && l["fields"]["reason"].as_str().unwrap_or("").contains("dead-letter")));
}

const ALERTS: &str = "arn:aws:sns:us-east-1:111122223333:alerts";
const TABLE: &str = "dynamodb://trailhound-state";

/// `trailhound lambda` with this environment: it must exit 2; returns its standard error.
fn refused(env: &[(&str, &str)], removed: &[&str]) -> String {
    let mut command = trailhound_on("http://127.0.0.1:9");
    command.arg("lambda").envs(env.iter().copied());
    for name in removed {
        command.env_remove(name);
    }
    let output = command.output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_function_refuses_a_state_file_with_a_clear_error() {
    let stderr = refused(&[("TRAILHOUND_STATE", "/tmp/state.db"), ("TRAILHOUND_TOPIC_ARN", ALERTS)], &[]);
    assert!(stderr.contains("dynamodb://TABLE"), "{stderr}");
}

#[test]
fn the_function_needs_a_sink() {
    let stderr = refused(&[("TRAILHOUND_STATE", TABLE)], &["TRAILHOUND_TOPIC_ARN", "TRAILHOUND_PUBLISH"]);
    assert!(stderr.contains("TRAILHOUND_PUBLISH"), "{stderr}");
}

/// An object that cannot be read before the invocation's deadline fails alone: the function
/// gives up on it `DEADLINE_RESERVE` before the deadline and reports only its message, while the
/// message beside it (a quarantined key, published without a fetch) is acknowledged. S3 is
/// reached through a proxy that holds every request for 3 s; the deadline is 4 s away (objects
/// are given up at 1.9 s, the rest is for the commit and the publish).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_cannot_finish_before_the_deadline_fails_alone() {
    use std::sync::Arc;
    use trailhound::commands::lambda::LambdaWorker;
    use trailhound::commands::message::MessageHandler;
    use trailhound::config::MessageConfig;
    use trailhound::detect::Engine;
    use trailhound::finding::Mode;
    use trailhound::metrics::Metrics;
    use trailhound::settings::Settings;
    use trailhound::sink::SinkSpec;
    use trailhound::store::memory::MemoryStore;

    let Some(endpoint) = endpoint() else { return };
    let clients = clients(&options(&endpoint)).await;
    let bucket = unique("lambda-slow");
    clients.s3.create_bucket().bucket(&bucket).send().await.expect("bucket");
    let slow_key = log_key("20261005T1000Z", "slow", false);
    put(&clients, &bucket, &slow_key, sequence_file("01_intruder_encrypts.json")).await;
    let topic = clients.sns.create_topic().name(unique("lambda-slow-alerts")).send().await.expect("topic");
    let topic_arn = topic.topic_arn().expect("arn").to_owned();
    let inbox = queue(&clients, &unique("lambda-slow-inbox"), &[]).await;
    subscribe(&clients, &topic_arn, queue_arn(&clients, &inbox).await).await;

    let mut slow = options(&endpoint);
    slow.s3_endpoint_url = Some(common::slow_proxy(&endpoint, Duration::from_secs(3)).await);
    let slow_clients = trailhound::aws::clients(&slow).await;
    let metrics = Arc::new(Metrics::default());
    let engine = Engine::new(Settings::default(), Mode::Live);
    let config = MessageConfig::new(vec![SinkSpec::Sns { topic_arn }]);
    let store = Arc::new(MemoryStore::new());
    let handler =
        MessageHandler::new(&slow_clients, &config, engine, store, metrics, common::now_millis).await.expect("handler");
    let function = LambdaWorker::new(handler);

    let broken_key = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/10/05/broken%zzkey.json.gz";
    let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(json!({"Records": [
        record("m-slow", &s3_notification(&bucket, &slow_key), "arn:aws:sqs:us-east-1:111122223333:q"),
        record("m-broken-key", &s3_notification(&bucket, broken_key), "arn:aws:sqs:us-east-1:111122223333:q"),
    ]}))
    .expect("event");
    let deadline = common::now_millis() as u64 + 4_000;
    let started = Instant::now();
    let response = function.handle_batch(event, Some(deadline)).await.expect("response");
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, ["m-slow"]);
    assert!(started.elapsed() < Duration::from_millis(4_000), "answered before the deadline: {:?}", started.elapsed());
    let published = alerts(&clients, &inbox, Duration::from_secs(2)).await;
    assert!(published.iter().any(|a| a["rule"] == "trail.unreadable_log_file"), "{published:?}");

    // A record that cannot be named in batchItemFailures fails the whole invocation (Lambda then
    // retries the batch), before any of it is handled.
    let unnamed: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_value(json!({"Records": [{"body": s3_notification(&bucket, &slow_key)}]})).expect("event");
    let error = function.handle_batch(unnamed, None).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("no messageId"), "{error}");
}

#[test]
fn outside_lambda_the_function_says_where_it_runs_instead_of_panicking() {
    let stderr = refused(&[("TRAILHOUND_STATE", TABLE), ("TRAILHOUND_TOPIC_ARN", ALERTS)], &["AWS_LAMBDA_RUNTIME_API"]);
    assert!(stderr.contains("AWS_LAMBDA_RUNTIME_API") && !stderr.contains("panicked"), "{stderr}");
}
