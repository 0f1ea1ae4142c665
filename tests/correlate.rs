//! The correlation pass over `testdata/sequences/ransomware`: the S3 ransomware chain (SSE-C
//! writes plus a short expiration, mass deletes, or ransom notes in many prefixes, by one
//! principal within 24 h; not for an SSE-C user's small clean-up, a docs deploy full of READMEs,
//! or an SSE-C user's two recovery notes) and instance-role awareness for admin policies.

use std::path::Path;

use trailhound::detect::Engine;
use trailhound::finding::{Finding, Mode, Severity};
use trailhound::pipeline::{scan, ScanPlan, ScanResult};
use trailhound::settings::Settings;

fn run(settings: Settings) -> ScanResult {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sequences/ransomware");
    let plan = ScanPlan::new(vec![dir]);
    scan(&plan, &Engine::new(settings, Mode::Scan), Mode::Scan)
}

fn of_rule<'a>(result: &'a ScanResult, rule: &str) -> Vec<&'a Finding> {
    result.findings.iter().filter(|f| f.rule == rule).collect()
}

#[test]
fn chains_need_sse_c_plus_a_destructive_step_by_the_same_principal() {
    let result = run(Settings::default());
    let chains = of_rule(&result, "s3.ransomware_chain");
    let summary: Vec<(Option<&str>, serde_json::Value)> =
        chains.iter().map(|c| (c.principal.user_name.as_deref(), c.evidence.details["components"].clone())).collect();
    assert_eq!(
        summary,
        [
            (Some("intruder"), serde_json::json!(["short_expiration"])),
            (Some("wiper"), serde_json::json!(["mass_delete"])),
            (Some("extortionist"), serde_json::json!(["ransom_notes"])),
            (Some("copier"), serde_json::json!(["originals_deleted"])),
        ]
    );
    assert_eq!(chains[3].evidence.details["buckets"], serde_json::json!(["finance"]));
    let notes = chains[2];
    assert_eq!(notes.evidence.details["ransom_note_prefixes"], 6);
    assert_eq!(notes.evidence.event_ids.len(), 8, "two writes and six notes");
    assert!(chains.iter().all(|c| c.severity == Severity::Critical));
    let intruder = chains[0];
    assert_eq!(intruder.evidence.details["sse_c_writes"], 2);
    assert_eq!(intruder.evidence.event_ids.len(), 3, "two writes and the lifecycle change");
    assert_eq!(chains[1].evidence.details["objects_deleted"], 150);
}

/// SPEC §2.1: a pipeline role that writes with SSE-C to one bucket from many sessions and
/// deletes hundreds of staged objects in another is not a chain, and its sessions are one
/// writer (one alert per window, not one per session).
#[test]
fn a_pipeline_role_cleaning_another_bucket_is_not_a_chain() {
    let result = run(Settings::default());
    let pipeline = "arn:aws:iam::111122223333:role/data-pipeline";
    let of_pipeline =
        |f: &Finding| f.principal.arn.as_deref().is_some_and(|arn| arn.contains("assumed-role/data-pipeline/"));
    assert!(
        of_rule(&result, "s3.ransomware_chain").iter().all(|f| !of_pipeline(f)),
        "300 deletes in staging-in do not make SSE-C writes to analytics-out a chain"
    );
    let writes: Vec<&Finding> = of_rule(&result, "s3.ssec_write").into_iter().filter(|f| of_pipeline(f)).collect();
    let counts: Vec<u64> = writes.iter().map(|f| f.evidence.count).collect();
    assert_eq!(counts.iter().sum::<u64>(), 18, "every write is covered");
    assert!(writes.len() <= 12, "sessions of {pipeline} share windows: {counts:?}");
}

#[test]
fn admin_policy_on_a_known_instance_role_is_critical() {
    let result = run(Settings::default());
    let by_role: Vec<(String, Severity)> = of_rule(&result, "iam.admin_policy_attached")
        .iter()
        .map(|f| (f.evidence.details["role"].as_str().unwrap_or_default().to_owned(), f.severity))
        .collect();
    assert_eq!(
        by_role,
        [
            ("web-instance-role".to_owned(), Severity::Critical),
            ("lambda-role".to_owned(), Severity::High),
            ("batch-role".to_owned(), Severity::High), // made an instance role only afterwards
        ]
    );
}

#[test]
fn the_chain_rule_can_be_disabled_or_allowlisted() {
    let mut settings = Settings::default();
    settings.disabled_rules.insert("s3.ransomware_chain".into());
    assert!(of_rule(&run(settings), "s3.ransomware_chain").is_empty());
    let mut settings = Settings::default();
    settings.rules.insert(
        "s3.ransomware_chain".into(),
        trailhound::settings::RuleSettings { severity: None, allow_principals: vec!["AKIAEXAMPLEWIPER0001".into()] },
    );
    let chains = run(settings);
    let users: Vec<Option<&str>> =
        of_rule(&chains, "s3.ransomware_chain").iter().map(|c| c.principal.user_name.as_deref()).collect();
    assert_eq!(users, [Some("intruder"), Some("extortionist"), Some("copier")]);
}

/// SPEC §3: when a chain's eventID list must be cut, the event that made it a chain (here the
/// lifecycle change, whose id sorts after 2,000 write ids) and the first and last writes stay.
#[test]
fn a_cut_chain_keeps_its_defining_events() {
    let identity = r#"{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/mass","accountId":"111122223333","accessKeyId":"AKIAEXAMPLEMASS00001","userName":"mass"}"#;
    let mut records: Vec<String> = (0..2_000)
        .map(|i| {
            format!(
                r#"{{"eventVersion":"1.10","userIdentity":{identity},"eventTime":"2026-10-06T10:{:02}:{:02}Z","eventSource":"s3.amazonaws.com","eventName":"CopyObject","awsRegion":"us-east-1","requestParameters":{{"bucketName":"vault","key":"k{i:04}","x-amz-copy-source":"vault/k{i:04}","x-amz-server-side-encryption-customer-algorithm":"AES256"}},"eventID":"a-{i:04}","eventCategory":"Data","recipientAccountId":"111122223333"}}"#,
                i / 60,
                i % 60
            )
        })
        .collect();
    records.push(format!(
        r#"{{"eventVersion":"1.10","userIdentity":{identity},"eventTime":"2026-10-06T11:00:00Z","eventSource":"s3.amazonaws.com","eventName":"PutBucketLifecycle","awsRegion":"us-east-1","requestParameters":{{"bucketName":"vault","LifecycleConfiguration":{{"Rule":{{"Status":"Enabled","Filter":{{"Prefix":""}},"NoncurrentVersionExpiration":{{"NoncurrentDays":1}},"ID":"bye"}}}}}},"eventID":"zz-lifecycle","recipientAccountId":"111122223333"}}"#
    ));
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("mass.json"), format!(r#"{{"Records":[{}]}}"#, records.join(","))).expect("write");
    let result =
        scan(&ScanPlan::new(vec![dir.path().to_path_buf()]), &Engine::new(Settings::default(), Mode::Scan), Mode::Scan);
    let chains = of_rule(&result, "s3.ransomware_chain");
    assert_eq!(chains.len(), 1);
    let ids = &chains[0].evidence.event_ids;
    assert!(chains[0].evidence.event_ids_truncated && ids.len() == 1_000, "{}", ids.len());
    for defining in ["zz-lifecycle", "a-0000", "a-1999"] {
        assert!(ids.iter().any(|id| id == defining), "{defining} was cut");
    }
}

fn scan_dir(name: &str) -> ScanResult {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sequences").join(name);
    scan(&ScanPlan::new(vec![dir]), &Engine::new(Settings::default(), Mode::Scan), Mode::Scan)
}

/// SPEC §2.3 `iam.created_key_used`: a key minted with a stolen key and used from another host and
/// client is high; the owner's own rotation, used from the usual network and tools, is medium;
/// each key's first use is reported once.
#[test]
fn a_minted_key_used_within_a_day_is_reported_by_how_it_was_used() {
    let intrusion = scan_dir("intrusion");
    let used = of_rule(&intrusion, "iam.created_key_used");
    assert_eq!(used.len(), 1, "the first use only");
    assert_eq!(used[0].severity, Severity::High);
    assert_eq!(used[0].principal.access_key_id.as_deref(), Some("AKIAEXAMPLENEWKEY001"));
    assert_eq!(used[0].evidence.details["reasons"], serde_json::json!(["new_network", "new_user_agent"]));
    assert_eq!(used[0].evidence.event_ids.len(), 2, "the mint and the first use");
    let grant = of_rule(&intrusion, "iam.admin_policy_attached");
    assert_eq!(grant.len(), 1);
    assert_eq!(grant[0].severity, Severity::Critical, "ci-legacy granted itself * on *");
    assert_eq!(of_rule(&intrusion, "iam.key_error_burst").len(), 1, "the enumeration");

    let rotation = scan_dir("rotation");
    let used = of_rule(&rotation, "iam.created_key_used");
    assert_eq!(used.len(), 1);
    assert_eq!(used[0].severity, Severity::Medium, "{:?}", used[0].evidence.details);
}
