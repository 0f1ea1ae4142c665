//! End-to-end throughput of the worker against a moto server (TESTING.md §1), in three phases:
//!
//! 1. **Live latency**: the worker runs while objects are uploaded one by one; each object holds
//!    one planted finding, and the time from its upload to its alert in an SQS inbox subscribed
//!    to the topic is recorded (p50, p99).
//! 2. **Backlog drain**: with the worker stopped, objects and their notifications pile up; the
//!    worker is started and timed until every alert arrived (objects/s, events/s).
//! 3. **Emulator ceiling**: the same backlog drained by a plain loop that only receives, GETs and
//!    deletes (no decoding, no SNS): what moto itself allows. Phase 2 close to phase 3 means the
//!    emulator, not the worker, is the bottleneck.
//!
//! ```sh
//! eval "$(scripts/moto.sh start)"
//! cargo run --release --example bench_worker -- "$TRAILHOUND_MOTO_ENDPOINT" [OBJECTS] [EVENTS_PER_OBJECT]
//! ```

use std::collections::HashMap;
use std::io::Write as _;
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
use trailhound::store::sqlite::SqliteStore;
use trailhound::store::StateStore;

fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A gzip log: `events - 1` benign events and one SSH-key push with eventID `planted-<tag>`.
fn object(tag: &str, events: usize) -> Vec<u8> {
    let mut records: Vec<Value> = (1..events)
        .map(|i| {
            json!({"eventVersion": "1.10", "eventTime": "2026-11-01T10:00:00Z", "eventSource": "ec2.amazonaws.com",
                "eventName": "DescribeInstances", "awsRegion": "us-east-1", "sourceIPAddress": "10.0.0.1",
                "userAgent": "aws-cli/2.15.30 Python/3.11.8 Linux/6.1 exe/x86_64.amzn.2023",
                "eventID": format!("benign-{tag}-{i}"), "eventType": "AwsApiCall", "readOnly": true,
                "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/ops/alice",
                    "accessKeyId": "ASIAEXAMPLE", "accountId": "111122223333"},
                "requestParameters": {"instancesSet": {}, "filterSet": {}}, "responseElements": null,
                "requestID": format!("req-{tag}-{i}"), "recipientAccountId": "111122223333"})
        })
        .collect();
    records.push(json!({"eventVersion": "1.10", "eventTime": "2026-11-01T10:00:00Z",
        "eventSource": "ec2-instance-connect.amazonaws.com", "eventName": "SendSSHPublicKey", "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.30", "eventID": format!("planted-{tag}"),
        "eventType": "AwsApiCall", "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/bob", "accessKeyId": "AKIAEXAMPLEBENCH0001",
            "accountId": "111122223333", "userName": "bob"},
        "requestParameters": {"instanceId": "i-0123456789abcdef0", "instanceOSUser": "ec2-user", "sSHPublicKey": "ssh-ed25519 AAAA"},
        "responseElements": {"success": true}}));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    let _ = gz.write_all(json!({ "Records": records }).to_string().as_bytes());
    gz.finish().unwrap_or_default()
}

fn key(tag: &str) -> String {
    format!("AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/01/111122223333_CloudTrail_us-east-1_20261101T1000Z_{tag}.json.gz")
}

async fn queue(clients: &Clients, name: &str) -> (String, String) {
    let url = clients
        .sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, "60")
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let attributes =
        clients.sqs.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::QueueArn).send().await;
    let arn = attributes.expect("arn").attributes.expect("map")[&QueueAttributeName::QueueArn].clone();
    (url, arn)
}

/// A bucket whose object creations notify a new queue; returns (bucket, queue url).
async fn notifying_bucket(clients: &Clients, run: &str, name: &str) -> (String, String) {
    let bucket = format!("bench-{name}-{run}");
    clients.s3.create_bucket().bucket(&bucket).send().await.expect("bucket");
    let (url, arn) = queue(clients, &format!("bench-{name}-{run}")).await;
    let configuration = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder().queue_arn(arn).events(Event::S3ObjectCreated).build().expect("q"),
        )
        .build();
    clients
        .s3
        .put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(configuration)
        .send()
        .await
        .expect("notification");
    (bucket, url)
}

/// Collects alerts from the inbox until `expected` planted ids arrived; returns arrival times.
async fn collect(clients: &Clients, inbox: &str, expected: usize, deadline: Duration) -> HashMap<String, Instant> {
    let start = Instant::now();
    let mut arrivals = HashMap::new();
    while arrivals.len() < expected && start.elapsed() < deadline {
        let received =
            clients.sqs.receive_message().queue_url(inbox).max_number_of_messages(10).wait_time_seconds(1).send().await;
        for message in received.map(|r| r.messages.unwrap_or_default()).unwrap_or_default() {
            let alert: Value = serde_json::from_str(message.body().unwrap_or("{}")).unwrap_or_default();
            if let Some(id) = alert["evidence"]["event_ids"][0].as_str() {
                arrivals.entry(id.to_owned()).or_insert_with(Instant::now);
            }
            if let Some(receipt) = message.receipt_handle() {
                let _ = clients.sqs.delete_message().queue_url(inbox).receipt_handle(receipt).send().await;
            }
        }
    }
    arrivals
}

async fn upload(clients: &Clients, bucket: &str, bodies: &[(String, Vec<u8>)]) {
    for (tag, body) in bodies {
        let put = clients.s3.put_object().bucket(bucket).key(key(tag)).body(ByteStream::from(body.clone()));
        put.send().await.expect("put");
    }
}

/// Runs a worker in the background; send `true` to stop it.
fn spawn(worker: Worker) -> (tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(async move {
        worker
            .run(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
    });
    (stop, running)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("TRAILHOUND_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    }
    let args: Vec<String> = std::env::args().collect();
    let endpoint = args.get(1).cloned().unwrap_or_else(|| "http://127.0.0.1:5000".into());
    let objects: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200);
    let events: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(500);
    let options = AwsOptions {
        endpoint_url: Some(endpoint.clone()),
        region: Some("us-east-1".into()),
        path_style: true,
        static_credentials: Some(("testing".into(), "testing".into())),
        ..AwsOptions::default()
    };
    let clients = clients(&options).await;
    let run = format!("{}", now_millis() % 1_000_000_000);
    let (bucket, queue_url) = notifying_bucket(&clients, &run, "live").await;
    let topic =
        clients.sns.create_topic().name(format!("bench-{run}")).send().await.expect("topic").topic_arn.expect("arn");
    let (inbox, inbox_arn) = queue(&clients, &format!("bench-inbox-{run}")).await;
    clients
        .sns
        .subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(inbox_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .expect("subscribe");
    let bodies: Vec<(String, Vec<u8>)> =
        (0..objects * 2).map(|i| (format!("o{i:05}"), object(&format!("o{i:05}"), events))).collect();
    let stored: usize = bodies.iter().map(|(_, b)| b.len()).sum::<usize>() / 2;
    println!(
        "{objects} objects per phase, {events} events each ({:.1} KB gzip per object)",
        stored as f64 / objects as f64 / 1e3
    );

    let dir = std::env::temp_dir().join(format!("trailhound-bench-{run}"));
    let store: Arc<dyn StateStore> = Arc::new(SqliteStore::open(&dir.join("state.db")).expect("state"));
    let start_worker = |metrics: Arc<Metrics>| {
        let clients = clients.clone();
        let config = WorkerConfig::new(&queue_url, &topic);
        let store = store.clone();
        async move {
            Worker::new(clients, config, Engine::new(Settings::default(), Mode::Live), store, metrics, now_millis)
                .await
                .expect("worker")
        }
    };

    // Phase 1: live latency.
    let metrics = Arc::new(Metrics::default());
    let worker = start_worker(metrics.clone()).await;
    let (stop, running) = spawn(worker);
    // Alerts are collected while the objects are uploaded, so arrival times are real.
    let collector = {
        let (clients, inbox) = (clients.clone(), inbox.clone());
        tokio::spawn(async move { collect(&clients, &inbox, objects, Duration::from_secs(600)).await })
    };
    let mut uploaded = HashMap::new();
    let upload_start = Instant::now();
    for (tag, body) in &bodies[..objects] {
        let put = clients.s3.put_object().bucket(&bucket).key(key(tag)).body(ByteStream::from(body.clone()));
        put.send().await.expect("put");
        uploaded.insert(format!("planted-{tag}"), Instant::now());
    }
    let upload_secs = upload_start.elapsed().as_secs_f64();
    let arrivals = collector.await.unwrap_or_default();
    let mut latencies: Vec<f64> = arrivals
        .iter()
        .filter_map(|(id, at)| uploaded.get(id).map(|up| at.saturating_duration_since(*up).as_secs_f64() * 1e3))
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    println!(
        "live: {} of {objects} alerts; uploads (PUT + notification) at {:.0} objects/s; upload → alert p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        arrivals.len(),
        objects as f64 / upload_secs,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    let _ = stop.send(true);
    let _ = running.await;

    // Phase 2: a backlog, then the worker.
    upload(&clients, &bucket, &bodies[objects..]).await;
    let metrics = Arc::new(Metrics::default());
    let worker = start_worker(metrics.clone()).await;
    let drain_start = Instant::now();
    let (stop, running) = spawn(worker);
    let arrivals = collect(&clients, &inbox, objects, Duration::from_secs(600)).await;
    let drain = drain_start.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let _ = running.await;
    let events_done = metrics.events.load(std::sync::atomic::Ordering::Relaxed);
    let json = metrics.bytes_json.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "backlog: {} alerts in {drain:.2} s: {:.0} objects/s, {:.0} events/s, {:.1} MB/s of JSON",
        arrivals.len(),
        objects as f64 / drain,
        events_done as f64 / drain,
        json as f64 / 1e6 / drain
    );

    // Phase 3: the emulator's ceiling for the same work without decoding or publishing.
    let (bucket2, queue2) = notifying_bucket(&clients, &run, "ceiling").await;
    upload(&clients, &bucket2, &bodies[objects..]).await;
    let ceiling_start = Instant::now();
    let mut fetched = 0;
    while fetched < objects && ceiling_start.elapsed() < Duration::from_secs(600) {
        let received = clients
            .sqs
            .receive_message()
            .queue_url(&queue2)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await;
        let messages = received.map(|r| r.messages.unwrap_or_default()).unwrap_or_default();
        let mut gets = tokio::task::JoinSet::new();
        for message in &messages {
            let body: Value = serde_json::from_str(message.body().unwrap_or("{}")).unwrap_or_default();
            let Some(raw) = body["Records"][0]["s3"]["object"]["key"].as_str() else { continue };
            let key = trailhound::source::notify::decode_form_key(raw).unwrap_or_default();
            let (s3, bucket) = (clients.s3.clone(), bucket2.clone());
            gets.spawn(async move {
                if let Ok(out) = s3.get_object().bucket(bucket).key(key).send().await {
                    let _ = out.body.collect().await;
                }
            });
            fetched += 1;
        }
        while gets.join_next().await.is_some() {}
        for message in messages {
            if let Some(receipt) = message.receipt_handle() {
                let _ = clients.sqs.delete_message().queue_url(&queue2).receipt_handle(receipt).send().await;
            }
        }
    }
    let ceiling = ceiling_start.elapsed().as_secs_f64();
    println!("emulator ceiling (receive + GET + delete, no decoding): {:.0} objects/s", fetched as f64 / ceiling);
    let _ = std::fs::remove_dir_all(&dir);
}
