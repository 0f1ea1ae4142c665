//! Cold start, per-object duration and GB-seconds per GB of `trailhound lambda`, through the
//! Lambda Runtime API emulator (`cargo lambda watch --only-lambda-apis`) against moto's S3, SNS
//! and DynamoDB.
//!
//! The synthetic corpus (`trailhound::synth`: a realistic event mix with planted attacks) is
//! uploaded, then handed to the release binary in batches of 10 S3 notifications, as an SQS event
//! source mapping would. Reported:
//! - **init**: from starting the process to the runtime asking for its first event (the part
//!   of a Lambda cold start that is trailhound's: configuration, clients, the DynamoDB table
//!   check, the state restore);
//! - the **first** batch and the **warm** batches: the handler's own `duration_ms` per object;
//! - **GB-seconds per GB** of stored (gzip) logs at the function's memory size, from the summed
//!   handler durations. moto (single-threaded Python on the same 2 cores) serves every GET, PUT
//!   and publish, so this is an upper bound; the decode share alone is in README's Performance.
//!
//! ```sh
//! cargo build --release          # or scripts/lambda-zip.sh and TRAILHOUND_BIN=target/lambda/trailhound/bootstrap
//! eval "$(scripts/moto.sh start)"; eval "$(scripts/tools.sh)"
//! TRAILHOUND_LOG=trailhound=debug \
//!   cargo run --release --example bench_lambda -- "$TRAILHOUND_MOTO_ENDPOINT" [OBJECTS] [EVENTS_PER_OBJECT] [MEMORY_MB]
//! ```

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_sdk_s3::primitives::ByteStream;
use serde_json::{json, Value};
use trailhound::aws::{clients, AwsOptions};
use trailhound::store::dynamodb::DynamoStore;
use trailhound::synth::{generate, SynthSpec};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn options(endpoint: &str) -> AwsOptions {
    AwsOptions {
        endpoint_url: Some(endpoint.to_owned()),
        region: Some("us-east-1".into()),
        path_style: true,
        static_credentials: Some(("testing".into(), "testing".into())),
        ..AwsOptions::default()
    }
}

/// The lines of the function's log with this message, in order.
fn lines_of(log: &std::path::Path, message: &str) -> Result<Vec<Value>> {
    let file = std::fs::File::open(log)?;
    Ok(BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
        .filter(|line| line["fields"]["message"] == message)
        .collect())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let endpoint = args.next().context("usage: bench_lambda ENDPOINT [OBJECTS] [EVENTS_PER_OBJECT] [MEMORY_MB]")?;
    let objects: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(100);
    let events_per_file: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2_000);
    let memory_mb: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1024.0);
    let cargo_lambda =
        PathBuf::from(std::env::var("TRAILHOUND_CARGO_LAMBDA").context("eval \"$(scripts/tools.sh)\" first")?);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // The release binary, or the Lambda zip's `bootstrap` (which runs `lambda` without arguments).
    let binary =
        std::env::var_os("TRAILHOUND_BIN").map_or_else(|| root.join("target/release/trailhound"), PathBuf::from);
    if !binary.exists() {
        bail!("build the release binary first (cargo build --release) or set TRAILHOUND_BIN");
    }
    let bootstrap = binary.file_name().is_some_and(|name| name == "bootstrap");

    let clients = clients(&options(&endpoint)).await;
    let run = format!("bench-lambda-{}", std::process::id());
    let bucket = format!("{run}-trail");
    clients.s3.create_bucket().bucket(&bucket).send().await?;
    let topic = clients.sns.create_topic().name(format!("{run}-alerts")).send().await?;
    let topic_arn = topic.topic_arn().context("topic")?.to_owned();
    let table = format!("{run}-state");
    DynamoStore::connect(&options(&endpoint), &table)?.create_table()?;

    let spec = SynthSpec { seed: 7, files: objects, events_per_file, attack_every: 3, ..SynthSpec::default() };
    let mut bodies = Vec::new();
    generate(&spec, |object| bodies.push((object.key.clone(), object.gzip)));
    let stored: usize = bodies.iter().map(|(_, body)| body.len()).sum();
    for (key, body) in &bodies {
        clients.s3.put_object().bucket(&bucket).key(key).body(ByteStream::from(body.clone())).send().await?;
    }
    eprintln!("uploaded {} objects, {:.1} MB stored", bodies.len(), stored as f64 / 1e6);

    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let api = Command::new(&cargo_lambda)
        .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", &port.to_string()])
        .current_dir(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let _api = KillOnDrop(api);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("function.log");
    let started = Instant::now();
    let function = Command::new(&binary)
        .args(if bootstrap { &[][..] } else { &["lambda"][..] })
        .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", format!("{memory_mb}"))
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("TRAILHOUND_STATE", format!("dynamodb://{table}"))
        .env("TRAILHOUND_TOPIC_ARN", &topic_arn)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let _function = KillOnDrop(function);
    // Ready when the log says so (the next line it writes is the runtime polling for events).
    let ready = loop {
        if std::fs::read_to_string(&log)?.contains("lambda ready") {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the function never became ready: {}", std::fs::read_to_string(&log)?);
        }
        std::thread::sleep(Duration::from_millis(2));
    };

    for (n, chunk) in bodies.chunks(10).enumerate() {
        let records: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(m, (key, _))| {
                let body = json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]});
                json!({"messageId": format!("m{n}-{m}"), "receiptHandle": "r", "body": body.to_string(),
                       "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "eventSource": "aws:sqs",
                       "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench", "awsRegion": "us-east-1"})
            })
            .collect();
        let event = dir.path().join("event.json");
        std::fs::write(&event, serde_json::to_vec(&json!({ "Records": records }))?)?;
        let output = Command::new(&cargo_lambda)
            .args(["lambda", "invoke", "-A", "127.0.0.1", "-P", &port.to_string(), "--data-file"])
            .arg(&event)
            .arg("_")
            .current_dir(&root)
            .output()?;
        if !output.status.success() || !String::from_utf8_lossy(&output.stdout).contains("\"batchItemFailures\":[]") {
            bail!("batch {n} failed: {}", String::from_utf8_lossy(&output.stdout));
        }
    }

    let lines = lines_of(&log, "batch handled")?;
    let field = |line: &Value, name: &str| line["fields"][name].as_f64().unwrap_or(0.0);
    let per_object = |lines: &[Value]| {
        let (ms, objects) =
            lines.iter().fold((0.0, 0.0), |(ms, n), l| (ms + field(l, "duration_ms"), n + field(l, "objects")));
        (ms / objects.max(1.0), ms, objects)
    };
    let (first, first_ms, _) = per_object(&lines[..1]);
    let (warm, warm_ms, _) = per_object(&lines[1..]);
    let total_s = (first_ms + warm_ms) / 1000.0;
    let gb_stored = stored as f64 / 1e9;
    let json_bytes: f64 = lines.iter().map(|l| field(l, "bytes_json")).sum();
    println!("objects {} of {} events; {:.1} MB stored (gzip)", bodies.len(), events_per_file, stored as f64 / 1e6);
    println!("init (process start → ready for the first event): {} ms", ready.as_millis());
    println!("first batch: {first:.1} ms per object; warm batches: {warm:.1} ms per object");
    let gb_seconds = total_s * memory_mb / 1024.0;
    println!(
        "GB-seconds at {memory_mb} MB: {gb_seconds:.1} for {total_s:.1} s of handler time; per GB stored (gzip): {:.0}; per GB of JSON: {:.0}",
        gb_seconds / gb_stored,
        gb_seconds / (json_bytes / 1e9),
    );
    // With TRAILHOUND_LOG=trailhound=debug the time splits into fetch (S3 GET and decoding,
    // per message, concurrently) and, per batch, the state (the stateful passes and the DynamoDB
    // commit) and publish (SNS).
    let inspected = lines_of(&log, "message inspected")?;
    let concluded = lines_of(&log, "state committed and findings published")?;
    if !inspected.is_empty() && !concluded.is_empty() {
        let mean = |lines: &[Value], name: &str| lines.iter().map(|l| field(l, name)).sum::<f64>() / lines.len() as f64;
        println!(
            "fetch+decode {:.1} ms per message; per batch: state {:.1} ms, publish {:.1} ms",
            mean(&inspected, "fetch_ms"),
            mean(&concluded, "state_ms"),
            mean(&concluded, "publish_ms")
        );
    }
    Ok(())
}
