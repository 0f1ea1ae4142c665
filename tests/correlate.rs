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
        ]
    );
    let notes = chains[2];
    assert_eq!(notes.evidence.details["ransom_note_prefixes"], 6);
    assert_eq!(notes.evidence.event_ids.len(), 8, "two writes and six notes");
    assert!(chains.iter().all(|c| c.severity == Severity::Critical));
    let intruder = chains[0];
    assert_eq!(intruder.evidence.details["sse_c_writes"], 2);
    assert_eq!(intruder.evidence.event_ids.len(), 3, "two writes and the lifecycle change");
    assert_eq!(chains[1].evidence.details["objects_deleted"], 150);
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
    assert_eq!(users, [Some("intruder"), Some("extortionist")]);
}
