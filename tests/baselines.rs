//! Per-key baselines over `testdata/sequences/baseline`: eleven daily delivery files in which
//! `deploy-bot`'s key, after eight days of the same use, shows up from a new network with a new
//! tool in a new region calling a new service and API, and `old-reporting`'s key wakes up after 45
//! days. Order, duplicates and thread count must not change the answer.

use std::path::{Path, PathBuf};

use trailhound::detect::Engine;
use trailhound::finding::{Finding, Mode, Severity};
use trailhound::pipeline::{scan, ScanPlan, ScanResult};
use trailhound::settings::Settings;

const ANOMALY_EVENT: &str = "a099bf4a-c18c-5c52-ab10-6ab649f694dc";
const DORMANT_EVENT: &str = "c420a283-896f-502a-a196-482d01662822";

fn sequence() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sequences/baseline")
}

fn run(paths: Vec<PathBuf>, settings: Settings) -> ScanResult {
    let plan = ScanPlan::new(paths);
    scan(&plan, &Engine::new(settings, Mode::Scan), Mode::Scan)
}

fn baseline_findings(result: &ScanResult) -> Vec<&Finding> {
    result
        .findings
        .iter()
        .filter(|f| f.rule == "iam.long_term_key_anomaly" || f.rule == "iam.dormant_key_used")
        .collect()
}

#[test]
fn new_values_after_learning_and_a_dormant_key_are_reported_once() {
    let result = run(vec![sequence()], Settings::default());
    let found = baseline_findings(&result);
    assert_eq!(found.len(), 2, "{found:#?}");
    let anomaly = found.iter().find(|f| f.rule == "iam.long_term_key_anomaly").expect("anomaly");
    assert_eq!(anomaly.evidence.event_ids, [ANOMALY_EVENT]);
    assert_eq!(anomaly.severity, Severity::High);
    assert_eq!(
        anomaly.evidence.details["reasons"],
        serde_json::json!(["new_network", "new_user_agent", "new_region", "new_service", "new_api"])
    );
    assert_eq!(anomaly.evidence.details["new_values"]["new_network"], "203.0.113.0/24");
    assert_eq!(anomaly.evidence.details["new_values"]["new_user_agent"], "Boto3/1");
    let dormant = found.iter().find(|f| f.rule == "iam.dormant_key_used").expect("dormant");
    assert_eq!(dormant.evidence.event_ids, [DORMANT_EVENT]);
    assert_eq!(dormant.evidence.details["silent_days"], 45);
}

#[test]
fn duplicated_files_and_reversed_order_change_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut names: Vec<PathBuf> =
        std::fs::read_dir(sequence()).expect("sequence").flatten().map(|e| e.path()).collect();
    names.sort();
    // Copy every file under a name that sorts in reverse time order, plus a second copy of each.
    for (i, path) in names.iter().enumerate() {
        let bytes = std::fs::read(path).expect("read");
        std::fs::write(dir.path().join(format!("{:02}-a.json", 99 - i)), &bytes).expect("write");
        std::fs::write(dir.path().join(format!("{:02}-b.json", 50 - i)), &bytes).expect("write");
    }
    let original = run(vec![sequence()], Settings::default());
    let shuffled = run(vec![dir.path().to_path_buf()], Settings::default());
    let ids = |r: &ScanResult| baseline_findings(r).iter().map(|f| f.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&original), ids(&shuffled));
}

#[test]
fn a_longer_learning_period_and_disabling_are_honoured() {
    let mut settings = Settings::default();
    settings.baseline.learning_days = 30;
    let learning = run(vec![sequence()], settings);
    let rules: Vec<&str> = baseline_findings(&learning).iter().map(|f| f.rule).collect();
    assert_eq!(rules, ["iam.dormant_key_used"], "deploy-bot is still learning after 9 days of 30");

    let mut settings = Settings::default();
    settings.disabled_rules.insert("iam.dormant_key_used".into());
    settings.disabled_rules.insert("iam.long_term_key_anomaly".into());
    assert!(baseline_findings(&run(vec![sequence()], settings)).is_empty());
}
