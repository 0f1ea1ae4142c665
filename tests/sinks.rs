//! The Security Hub and EventBridge sinks, and several sinks at once, against moto: findings of
//! every rule reach Security Hub as ASFF (read back with `GetFindings`) and EventBridge (a rule
//! routes them to an SQS queue); the publish threshold and the dedup record apply to each sink;
//! a failing sink keeps the batch for a retry and a sink that accepted a finding is not sent it
//! again on that retry.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_securityhub::types::AwsSecurityFinding;
use serde_json::Value;
use trailhound::aws::{clients, Clients};
use trailhound::config::DEFAULT_DEDUP_TTL;
use trailhound::detect::Engine;
use trailhound::finding::{Finding, Mode, Severity};
use trailhound::pipeline::{scan, ScanPlan};
use trailhound::settings::Settings;
use trailhound::sink::{Publisher, SinkSpec};
use trailhound::store::{MemoryStore, StateStore};

use common::{endpoint, now_millis, options, queue, queue_arn, root, subscribe, unique};

/// Findings of every rule from the detector fixtures, with ids no other test uses.
fn findings(tag: &str) -> Vec<Finding> {
    let plan = ScanPlan::new(vec![root().join("testdata/events")]);
    let mut findings = scan(&plan, &Engine::new(Settings::default(), Mode::Scan), Mode::Scan).findings;
    for finding in &mut findings {
        finding.id = format!("{}-{tag}", finding.id);
    }
    findings
}

fn publisher(specs: &[SinkSpec], clients: &Clients, store: &Arc<dyn StateStore>, at: Severity) -> Publisher {
    Publisher::new(specs, clients, Some(store.clone()), at, DEFAULT_DEDUP_TTL, now_millis).expect("sinks")
}

async fn hub_findings(clients: &Clients) -> BTreeMap<String, AwsSecurityFinding> {
    let mut all = BTreeMap::new();
    let mut token = None;
    loop {
        let page = clients.securityhub.get_findings().set_next_token(token).max_results(100).send().await;
        let page = page.expect("GetFindings");
        for finding in page.findings() {
            all.insert(finding.id().unwrap_or_default().to_owned(), finding.clone());
        }
        token = page.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
        if token.is_none() {
            return all;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_hub_receives_every_rule_as_asff_and_updates_in_place() {
    let Some(endpoint) = endpoint() else { return };
    let clients = clients(&options(&endpoint)).await;
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let hub = publisher(&[SinkSpec::SecurityHub { account: None }], &clients, &store, Severity::Info);
    let mut findings = findings(&unique("hub"));
    // Past one call of 100: copies under other ids.
    let copies: Vec<Finding> =
        findings.iter().take(70).map(|f| Finding { id: format!("{}-copy", f.id), ..f.clone() }).collect();
    findings.extend(copies);
    assert!(findings.len() > 100, "{}", findings.len());
    let published = hub.publish(&findings).await.expect("imported");
    assert_eq!(published.sent as usize, findings.len());

    let imported = hub_findings(&clients).await;
    for finding in &findings {
        let asff = imported.get(&finding.id).unwrap_or_else(|| panic!("{} not imported", finding.id));
        assert_eq!(asff.generator_id(), Some(finding.rule));
        assert_eq!(asff.schema_version(), Some("2018-10-08"));
        let account = finding.account.as_deref().unwrap_or("unknown");
        let product = format!("arn:aws:securityhub:us-east-1:{account}:product/{account}/default");
        assert_eq!(asff.product_arn(), Some(product.as_str()));
        let label = asff.severity().and_then(|s| s.label()).map(|l| l.as_str().to_ascii_lowercase());
        let expected = if finding.severity == Severity::Info { "informational" } else { finding.severity.as_str() };
        assert_eq!(label.as_deref(), Some(expected), "{}", finding.rule);
        assert!(!asff.resources().is_empty());
        match finding.controls.first() {
            Some(control) => {
                let compliance = asff.compliance().expect("compliance");
                assert_eq!(compliance.security_control_id(), Some(*control));
            }
            None => assert!(asff.compliance().is_none()),
        }
    }
    let rules: BTreeSet<&str> = findings.iter().map(|f| f.rule).collect();
    assert!(rules.len() >= 30, "{rules:?}");

    // Published before: suppressed. Grown: the same Id, updated in place.
    assert_eq!(hub.publish(&findings).await.expect("again").sent, 0);
    let mut grown = findings[0].clone();
    grown.evidence.count += 41;
    grown.summary = "grown".into();
    assert_eq!(hub.publish(&[grown.clone()]).await.expect("grown").sent, 1);
    let imported = hub_findings(&clients).await;
    assert_eq!(imported[&grown.id].description(), Some("grown"));
    assert_eq!(imported.keys().filter(|id| **id == grown.id).count(), 1);
}

/// An EventBridge bus with a rule that sends every trailhound event to a new queue.
async fn routed_bus(clients: &Clients) -> (String, String) {
    let bus = unique("bus");
    clients.eventbridge.create_event_bus().name(&bus).send().await.expect("bus");
    let inbox = queue(clients, &unique("findings"), &[]).await;
    let arn = queue_arn(clients, &inbox).await;
    let rule = unique("rule");
    let pattern = r#"{"source":["trailhound"],"detail-type":["trailhound finding"]}"#;
    clients.eventbridge.put_rule().name(&rule).event_bus_name(&bus).event_pattern(pattern).send().await.expect("rule");
    let target = aws_sdk_eventbridge::types::Target::builder().id("inbox").arn(arn).build().expect("target");
    clients.eventbridge.put_targets().rule(&rule).event_bus_name(&bus).targets(target).send().await.expect("target");
    (bus, inbox)
}

/// Message bodies on `queue` until `expected` arrived or `deadline` passed.
async fn drain_for(clients: &Clients, queue: &str, expected: usize, deadline: Duration) -> Vec<Value> {
    let start = Instant::now();
    let mut bodies = Vec::new();
    while bodies.len() < expected && start.elapsed() < deadline {
        let received = clients.sqs.receive_message().queue_url(queue).max_number_of_messages(10).wait_time_seconds(1);
        for message in received.send().await.expect("receive").messages.unwrap_or_default() {
            bodies.push(serde_json::from_str(message.body().unwrap_or("")).expect("JSON"));
            let receipt = message.receipt_handle().unwrap_or_default();
            clients.sqs.delete_message().queue_url(queue).receipt_handle(receipt).send().await.ok();
        }
    }
    bodies
}

async fn drain(clients: &Clients, queue: &str, expected: usize) -> Vec<Value> {
    drain_for(clients, queue, expected, Duration::from_secs(30)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventbridge_routes_findings_above_the_threshold_through_a_rule() {
    let Some(endpoint) = endpoint() else { return };
    let clients = clients(&options(&endpoint)).await;
    let (bus, inbox) = routed_bus(&clients).await;
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let sink = publisher(&[SinkSpec::EventBridge { bus }], &clients, &store, Severity::Medium);
    let findings = findings(&unique("bus"));
    let wanted: BTreeSet<String> =
        findings.iter().filter(|f| f.severity >= Severity::Medium).map(|f| f.id.clone()).collect();
    assert!(wanted.len() > 10, "more than one PutEvents call");
    assert_eq!(sink.publish(&findings).await.expect("put").sent as usize, wanted.len());
    let events = drain(&clients, &inbox, wanted.len()).await;
    let got: BTreeSet<String> = events.iter().map(|e| e["detail"]["id"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(got, wanted);
    assert!(events.iter().all(|e| e["source"] == "trailhound" && e["detail-type"] == "trailhound finding"));
    assert!(events.iter().all(|e| e["detail"]["schema"] == "trailhound.finding/v1"));
    assert_eq!(sink.publish(&findings).await.expect("again").sent, 0, "the dedup record holds them");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sink_keeps_the_batch_and_the_sinks_that_took_it_are_not_sent_it_twice() {
    let Some(endpoint) = endpoint() else { return };
    let clients = clients(&options(&endpoint)).await;
    let topic = clients.sns.create_topic().name(unique("alerts")).send().await.expect("topic");
    let topic_arn = topic.topic_arn().expect("arn").to_owned();
    let alerts = queue(&clients, &unique("alerts"), &[]).await;
    subscribe(&clients, &topic_arn, queue_arn(&clients, &alerts).await).await;
    // A bus that does not exist yet.
    let bus = unique("late-bus");
    let specs = [SinkSpec::Sns { topic_arn }, SinkSpec::EventBridge { bus: bus.clone() }];
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let sinks = publisher(&specs, &clients, &store, Severity::High);
    let findings = findings(&unique("fail"));
    let wanted = findings.iter().filter(|f| f.severity >= Severity::High).count();

    assert!(sinks.publish(&findings).await.is_err(), "the missing bus fails the batch");
    assert_eq!(drain(&clients, &alerts, wanted).await.len(), wanted, "SNS took every finding");

    clients.eventbridge.create_event_bus().name(&bus).send().await.expect("bus");
    let published = sinks.publish(&findings).await.expect("the retry succeeds");
    assert_eq!(published.sent as usize, wanted, "only EventBridge is sent them");
    assert_eq!(published.suppressed as usize, wanted, "SNS is not");
    assert!(drain_for(&clients, &alerts, 1, Duration::from_secs(3)).await.is_empty(), "no second page");
}
