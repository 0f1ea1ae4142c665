//! One rule policy for every pass (issue 10): an entry in a rule's `allow_principals` silences
//! that rule whichever pass would report it — the per-event engine, the ransomware chain
//! (correlation) and the per-key baselines — and by any name of the principal, a role's name
//! included. Before, a role name silenced per-event rules (through the session issuer) but not
//! the chain, which compared it with the role session's ARN.

use std::path::{Path, PathBuf};

use trailhound::detect::rules::{
    LIFECYCLE_SHORT_EXPIRATION, LONG_TERM_KEY_ANOMALY, RANSOMWARE_CHAIN, SSEC_COPY_OVERWRITE,
};
use trailhound::detect::Engine;
use trailhound::finding::{Mode, RuleInfo};
use trailhound::pipeline::{scan, ScanPlan, ScanResult};
use trailhound::settings::{RuleSettings, Settings};

fn sequence(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sequences").join(name)
}

fn run(name: &str, settings: Settings) -> ScanResult {
    scan(&ScanPlan::new(vec![sequence(name)]), &Engine::new(settings, Mode::Scan), Mode::Scan)
}

fn count(result: &ScanResult, rule: &RuleInfo) -> usize {
    result.findings.iter().filter(|f| f.rule == rule.id).count()
}

fn allow(settings: &mut Settings, rule: &RuleInfo, name: &str) {
    let entry = RuleSettings { severity: None, allow_principals: vec![name.to_owned()] };
    settings.rules.insert(rule.id.to_owned(), entry);
}

#[test]
fn issue_10_a_role_name_allowlist_silences_the_chain_like_per_event_rules() {
    // `backup-pipeline` (an assumed role) overwrites two objects with SSE-C and then sets a
    // one-day expiration on the bucket.
    let unfiltered = run("policy", Settings::default());
    assert_eq!(count(&unfiltered, &RANSOMWARE_CHAIN), 1);
    assert_eq!(count(&unfiltered, &SSEC_COPY_OVERWRITE), 2);

    let mut settings = Settings::default();
    allow(&mut settings, &RANSOMWARE_CHAIN, "backup-pipeline");
    allow(&mut settings, &LIFECYCLE_SHORT_EXPIRATION, "backup-pipeline");
    let allowed = run("policy", settings);
    assert_eq!(count(&allowed, &RANSOMWARE_CHAIN), 0, "the chain asks the same policy");
    assert_eq!(count(&allowed, &LIFECYCLE_SHORT_EXPIRATION), 0, "so does the per-event engine");
    assert_eq!(count(&allowed, &SSEC_COPY_OVERWRITE), 2, "other rules are untouched");

    // The role's ARN and the session's ARN name the same principal; another account's role
    // of the same name does not.
    let by = |name: &str| {
        let mut settings = Settings::default();
        allow(&mut settings, &RANSOMWARE_CHAIN, name);
        count(&run("policy", settings), &RANSOMWARE_CHAIN)
    };
    assert_eq!(by("arn:aws:iam::111122223333:role/backup-pipeline"), 0);
    assert_eq!(by("arn:aws:sts::111122223333:assumed-role/backup-pipeline/nightly"), 0);
    assert_eq!(by("arn:aws:iam::444455556666:role/backup-pipeline"), 1);
}

#[test]
fn issue_10_the_baselines_ask_the_same_policy() {
    assert_eq!(count(&run("baseline", Settings::default()), &LONG_TERM_KEY_ANOMALY), 1);
    for name in ["deploy-bot", "AKIAEXAMPLEDEPLOYBOT", "arn:aws:iam::111122223333:user/deploy-bot"] {
        let mut settings = Settings::default();
        allow(&mut settings, &LONG_TERM_KEY_ANOMALY, name);
        let result = run("baseline", settings);
        let keys: Vec<_> = result
            .findings
            .iter()
            .filter(|f| f.rule == LONG_TERM_KEY_ANOMALY.id)
            .map(|f| f.principal.user_name.clone())
            .collect();
        assert!(keys.is_empty(), "{name}: {keys:?}");
    }
}
