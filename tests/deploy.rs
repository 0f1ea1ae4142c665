//! `deploy/` checked here (issue 12, SPEC §7, TESTING.md §6):
//! - the CloudFormation template passes cfn-lint and checkov, the Terraform module parses with
//!   python-hcl2 and passes checkov (no terraform binary can be installed on these machines), the
//!   container image definition passes checkov;
//! - the stack deploys into moto (`create_stack`) in both compute modes, and trailhound runs end
//!   to end against each stack's outputs: `run` (the ECS service) with S3 notifications from the
//!   trail bucket, `backfill --enqueue` (the ECS task) into the stack's queue, and `lambda`
//!   through the Lambda Runtime API emulator on the stack's bucket, table and topic, the test
//!   playing the notification and the event source mapping (moto hands a mapped queue's messages
//!   to a function it runs in Docker, which is not here);
//! - least privilege: every AWS call of those runs is recorded (`TRAILHOUND_AWS_CALL_LOG`) and
//!   `tests/deployment/iam.py` checks that each role of the template and each policy document of
//!   the module grants exactly the actions called.
//!
//! The tools come from `scripts/tools.sh` and `scripts/moto.sh` (environment variables named
//! below); the tests skip with a notice without them unless `TRAILHOUND_REQUIRE_MOTO` is set.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use serde_json::{json, Value};
use trailhound::aws::{clients, Clients, CALL_LOG_ENV};

use common::function::{cargo_lambda, Function, KillOnDrop};
use common::{endpoint, options, queue, queue_arn, root, subscribe, tool, trailhound_on, unique};

fn succeeds(what: &str, output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn template() -> PathBuf {
    root().join("deploy/cloudformation/trailhound.yaml")
}

#[test]
fn the_template_the_module_and_the_image_pass_their_checks() {
    let (Some(cfn_lint), Some(checkov), Some(hcl2)) =
        (tool("TRAILHOUND_CFN_LINT"), tool("TRAILHOUND_CHECKOV"), tool("TRAILHOUND_HCL2_PYTHON"))
    else {
        return;
    };
    succeeds("cfn-lint", Command::new(cfn_lint).arg(template()).output().expect("cfn-lint"));
    let checkov_on = |framework: &str, target: &[&str]| {
        let mut command = Command::new(&checkov);
        command.args(["--quiet", "--compact", "--skip-download", "--framework", framework]).args(target);
        let report =
            succeeds(&format!("checkov ({framework})"), command.current_dir(root()).output().expect("checkov"));
        assert!(report.contains("Passed checks"), "checkov checked nothing ({framework}): {report}");
        assert!(report.contains("Failed checks: 0"), "checkov ({framework}): {report}");
    };
    checkov_on("cloudformation", &["-f", "deploy/cloudformation/trailhound.yaml"]);
    checkov_on("terraform", &["-d", "deploy/terraform"]);
    checkov_on("dockerfile", &["-f", "deploy/Dockerfile"]);
    let parse = "import hcl2, sys\nfor path in sys.argv[1:]:\n    assert hcl2.load(open(path)), path\n    print(path)";
    let modules: Vec<PathBuf> = std::fs::read_dir(root().join("deploy/terraform"))
        .expect("module")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "tf"))
        .collect();
    assert!(modules.len() >= 4, "the module's files: {modules:?}");
    let parsed =
        succeeds("python-hcl2", Command::new(hcl2).arg("-c").arg(parse).args(&modules).output().expect("hcl2"));
    assert_eq!(parsed.lines().count(), modules.len());
}

/// The outputs of a stack deployed into moto by tests/deployment/stack.py.
fn deploy_stack(python: &Path, endpoint: &str, mode: &str) -> Value {
    let name = unique(&format!("th-{}", mode.to_ascii_lowercase()));
    let mut command = Command::new(python);
    command.arg(root().join("tests/deployment/stack.py")).args([endpoint, &name, mode]).arg(template());
    let outputs: Value =
        serde_json::from_str(&succeeds("create_stack", command.output().expect("python"))).expect("JSON");
    outputs
}

fn output<'a>(outputs: &'a Value, key: &str) -> &'a str {
    outputs[key].as_str().unwrap_or_else(|| panic!("no output {key}: {outputs}"))
}

fn log_key(stamp: &str, tag: &str) -> String {
    let (y, m, d) = (&stamp[..4], &stamp[4..6], &stamp[6..8]);
    format!(
        "AWSLogs/111122223333/CloudTrail/us-east-1/{y}/{m}/{d}/111122223333_CloudTrail_us-east-1_{stamp}_{tag}.json"
    )
}

/// The deliveries of the tests: the two halves of a ransomware chain, an SSE-C burst whose
/// window stays open at the end of its object (state carried between batches), and a delivery
/// two days later that closes it (the carried state is deleted).
const CHAIN: &[(&str, &str, &str)] = &[
    ("20261005T1000Z", "encrypts", "ransomware/01_intruder_encrypts.json"),
    ("20261005T1010Z", "expiry", "ransomware/02_intruder_sets_expiry.json"),
];
const BURST: &[(&str, &str, &str)] = &[("20261005T1400Z", "burst", "burst/01_sse_c_burst_part1.json")];
const LATER: &[(&str, &str, &str)] = &[("20261007T0900Z", "notes", "ransomware/06_extortionist_leaves_notes.json")];

/// Puts a delivery's objects in the trail bucket; returns their keys.
async fn deliver(clients: &Clients, bucket: &str, delivery: &[(&str, &str, &str)]) -> Vec<String> {
    let mut keys = Vec::new();
    for (stamp, tag, file) in delivery {
        let body = std::fs::read(root().join("testdata/sequences").join(file)).expect("sequence file");
        let key = log_key(stamp, tag);
        clients.s3.put_object().bucket(bucket).key(&key).body(ByteStream::from(body)).send().await.expect("put");
        keys.push(key);
    }
    keys
}

/// An inbox queue subscribed to the stack's alert topic.
async fn inbox(clients: &Clients, topic_arn: &str) -> String {
    let url = queue(clients, &unique("deploy-inbox"), &[]).await;
    subscribe(clients, topic_arn, queue_arn(clients, &url).await).await;
    url
}

/// The rules of the alerts that arrive within `deadline`, until `rule` is among them.
async fn alerts_until(clients: &Clients, inbox: &str, rule: &str, deadline: Duration) -> Vec<String> {
    let start = Instant::now();
    let mut rules = Vec::new();
    while start.elapsed() < deadline && !rules.iter().any(|r| r == rule) {
        let receive = clients.sqs.receive_message().queue_url(inbox).max_number_of_messages(10).wait_time_seconds(1);
        for message in receive.send().await.expect("receive").messages.unwrap_or_default() {
            let alert: Value = serde_json::from_str(message.body().unwrap_or("")).expect("alert JSON");
            rules.push(alert["rule"].as_str().unwrap_or("").to_owned());
        }
    }
    rules
}

async fn queue_depth(clients: &Clients, url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName as Name;
    let names = [Name::ApproximateNumberOfMessages, Name::ApproximateNumberOfMessagesNotVisible];
    let got = clients.sqs.get_queue_attributes().queue_url(url).set_attribute_names(Some(names.to_vec())).send().await;
    let attributes = got.expect("attributes").attributes.unwrap_or_default();
    attributes.values().filter_map(|v| v.parse::<u64>().ok()).sum()
}

/// Waits until the worker has taken every message but the one that cannot be read yet.
async fn drain(clients: &Clients, queue_url: &str) {
    let start = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    while queue_depth(clients, queue_url).await > 1 && start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Runs the ECS stack's commands against it: the `run` service on S3 notifications (and one
/// notification of an object that cannot be read yet), then `backfill --enqueue`.
async fn ecs_stack(python: &Path, endpoint: &str, clients: &Clients, logs: &Path) {
    let stack = deploy_stack(python, endpoint, "ECS");
    let (queue_url, topic, state) =
        (output(&stack, "QueueUrl"), output(&stack, "AlertTopicArn"), output(&stack, "StateLocation"));
    let bucket = output(&stack, "TrailBucketName");
    let alerts = inbox(clients, topic).await;
    let worker = trailhound_on(endpoint)
        .args(["run", "--queue-url", queue_url, "--topic-arn", topic, "--state", state])
        .args(["--endpoint-url", endpoint, "--path-style", "--grace", "5", "--concurrency", "2"])
        .env(CALL_LOG_ENV, logs.join("run.log"))
        .env("TRAILHOUND_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run");
    let worker = KillOnDrop(worker);
    deliver(clients, bucket, CHAIN).await;
    // A notification of an object in a bucket that does not exist yet: a transient failure that
    // the worker backs off from (ChangeMessageVisibility).
    let missing = json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": unique("not-yet")}, "object": {"key": log_key("20261005T1030Z", "late")}}}]});
    clients.sqs.send_message().queue_url(queue_url).message_body(missing.to_string()).send().await.expect("send");
    let rules = alerts_until(clients, &alerts, "s3.ransomware_chain", Duration::from_secs(90)).await;
    assert!(rules.iter().any(|r| r == "s3.ransomware_chain"), "run against the stack: {rules:?}");
    for delivery in [BURST, LATER] {
        deliver(clients, bucket, delivery).await;
        drain(clients, queue_url).await;
    }
    // Whatever else the deliveries raised, until the inbox stays quiet.
    while !alerts_until(clients, &alerts, "none", Duration::from_secs(3)).await.is_empty() {}

    let backfill = trailhound_on(endpoint)
        .args([
            "backfill",
            &format!("s3://{bucket}/"),
            "--since",
            "2026-10-05T00:00:00Z",
            "--until",
            "2026-10-06T00:00:00Z",
        ])
        .args([
            "--enqueue",
            queue_url,
            "--state",
            state,
            "--endpoint-url",
            endpoint,
            "--path-style",
            "--progress",
            "off",
        ])
        .env(CALL_LOG_ENV, logs.join("backfill.log"))
        .output()
        .expect("backfill");
    succeeds("backfill --enqueue", backfill);
    // The enqueued objects are inspected again.
    drain(clients, queue_url).await;
    let again = alerts_until(clients, &alerts, "none", Duration::from_secs(3)).await;
    assert!(again.is_empty(), "a backfill of what the service saw pages nobody: {again:?}");
    let mut worker = worker;
    let _ = Command::new("kill").args(["-TERM", &worker.0.id().to_string()]).status();
    let _ = worker.0.wait();
}

/// The Lambda stack: S3 notifications of its trail bucket's new objects, handed to `trailhound
/// lambda` as its event source mapping would hand them.
async fn lambda_stack(python: &Path, cargo_lambda: PathBuf, endpoint: &str, clients: &Clients, logs: &Path) {
    let stack = deploy_stack(python, endpoint, "Lambda");
    for resource in ["Function", "FunctionEventSource", "FunctionRole", "StateTable", "AlertTopic", "NotificationQueue"]
    {
        assert!(stack["Resources"].as_array().is_some_and(|r| r.iter().any(|v| v == resource)), "{resource}: {stack}");
    }
    let (topic, state, bucket) =
        (output(&stack, "AlertTopicArn"), output(&stack, "StateLocation"), output(&stack, "TrailBucketName"));
    let alerts = inbox(clients, topic).await;
    let call_log = logs.join("lambda.log");
    let call_log = call_log.to_str().expect("path");
    let env = [("TRAILHOUND_STATE", state), ("TRAILHOUND_TOPIC_ARN", topic), (CALL_LOG_ENV, call_log)];
    let mut function = Function::start(cargo_lambda, endpoint, &env);
    for (n, delivery) in [CHAIN, BURST, LATER].into_iter().enumerate() {
        let records: Vec<Value> = deliver(clients, bucket, delivery)
            .await
            .iter()
            .enumerate()
            .map(|(m, key)| {
                let body = json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]});
                json!({"messageId": format!("m{n}-{m}"), "receiptHandle": format!("r{n}-{m}"), "body": body.to_string(),
                       "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                       "eventSource": "aws:sqs", "eventSourceARN": output(&stack, "QueueArn"), "awsRegion": "us-east-1"})
            })
            .collect();
        let response = function.invoke(&json!({ "Records": records }));
        assert_eq!(response["batchItemFailures"], json!([]), "{}", function.log_text());
    }
    let rules = alerts_until(clients, &alerts, "s3.ransomware_chain", Duration::from_secs(30)).await;
    assert!(
        rules.iter().any(|r| r == "s3.ransomware_chain"),
        "lambda against the stack: {rules:?}\n{}",
        function.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stacks_deployed_into_moto_run_with_exactly_the_permissions_their_code_uses() {
    let (Some(endpoint), Some(python), Some(tools_python), Some(hcl2), Some(cargo_lambda)) = (
        endpoint(),
        tool("TRAILHOUND_MOTO_PYTHON"),
        tool("TRAILHOUND_TOOLS_PYTHON"),
        tool("TRAILHOUND_HCL2_PYTHON"),
        cargo_lambda(),
    ) else {
        return;
    };
    let clients = clients(&options(&endpoint)).await;
    let logs = tempfile::tempdir().expect("temp dir");
    ecs_stack(&python, &endpoint, &clients, logs.path()).await;
    lambda_stack(&python, cargo_lambda, &endpoint, &clients, logs.path()).await;

    let check = Command::new(tools_python)
        .arg(root().join("tests/deployment/iam.py"))
        .arg(template())
        .arg(root().join("deploy/terraform/main.tf"))
        .arg(hcl2)
        .args(
            ["lambda", "run", "backfill"]
                .map(|command| format!("{command}={}", logs.path().join(format!("{command}.log")).display())),
        )
        .output()
        .expect("iam.py");
    let report = succeeds("the least-privilege check", check);
    for (command, action) in
        [("run", "sqs:ChangeMessageVisibility"), ("lambda", "sns:Publish"), ("backfill", "sqs:SendMessage")]
    {
        let line = report.lines().find(|l| l.starts_with(&format!("{command}:"))).unwrap_or_default();
        assert!(line.contains(action), "{command} made no {action} call: {report}");
    }
}
