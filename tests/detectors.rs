//! Table-driven detector tests: every file under `testdata/events/<rule>/positive/` must make
//! the rule fire once per event, at the severity its name starts with (`high_…json`), or exactly
//! N times when the severity carries a count (`medium-1_…json`, for rules that aggregate); every
//! file under `negative/` must leave the rule silent. Findings pass through the aggregation pass
//! as in a scan. Failures name the file.

use std::path::{Path, PathBuf};

use trailhound::analyze::aggregate::aggregate;
use trailhound::decode::{Decoder, Limits};
use trailhound::detect::{rules, Engine};
use trailhound::finding::{Mode, Severity};
use trailhound::pipeline::{inspect_object, Gather, Window};
use trailhound::settings::Settings;

fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/events")
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    files
}

/// Runs the whole catalogue over one fixture; returns (events, severities of `rule`'s findings).
fn run(engine: &Engine, file: &Path, rule: &str) -> (u64, Vec<Severity>) {
    let bytes = std::fs::read(file).expect("fixture is readable");
    let mut decoder = Decoder::new(Limits::default());
    let origin = file.display().to_string();
    let inspected =
        inspect_object(&mut decoder, &bytes, &origin, engine, Window::default(), Mode::Scan, Gather::default());
    assert!(inspected.report.damage.is_none(), "{origin}: {:?}", inspected.report.damage);
    assert_eq!(inspected.report.rejected, 0, "{origin}: {:?}", inspected.report.rejects);
    let findings = aggregate(inspected.findings);
    let severities = findings.iter().filter(|f| f.rule == rule).map(|f| f.severity).collect();
    (inspected.report.events, severities)
}

#[test]
fn every_rule_fires_on_its_positives_and_stays_silent_on_its_negatives() {
    let engine = Engine::new(Settings::default(), Mode::Scan);
    let mut failures = Vec::new();
    let mut checked = 0;
    for rule in rules::catalogue() {
        if rule.id == rules::UNREADABLE_LOG_FILE.id {
            continue; // raised for objects, tested in tests/decode_inputs.rs
        }
        let cross_event = [
            rules::LONG_TERM_KEY_ANOMALY.id,
            rules::DORMANT_KEY_USED.id,
            rules::RANSOMWARE_CHAIN.id,
            rules::CREATED_KEY_USED.id,
        ];
        if cross_event.contains(&rule.id) {
            continue; // need several events: tested over testdata/sequences (tests/baselines.rs, tests/correlate.rs)
        }
        let dir = fixture_root().join(rule.id);
        let positives = json_files(&dir.join("positive"));
        let negatives = json_files(&dir.join("negative"));
        if positives.is_empty() || negatives.is_empty() {
            failures.push(format!("{}: needs positive and negative fixtures in {}", rule.id, dir.display()));
        }
        for file in positives {
            checked += 1;
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let prefix = name.split('_').next().unwrap_or_default();
            let (severity, count) = prefix.split_once('-').map_or((prefix, None), |(s, n)| (s, n.parse::<u64>().ok()));
            let Some(want) = Severity::parse(severity) else {
                failures.push(format!("{}: positive fixture name must start with a severity", file.display()));
                continue;
            };
            let (events, got) = run(&engine, &file, rule.id);
            let expected = count.unwrap_or(events);
            if got.len() as u64 != expected || got.iter().any(|s| *s != want) || events == 0 {
                failures.push(format!("{}: expected {expected} {want} finding(s), got {got:?}", file.display()));
            }
        }
        for file in negatives {
            checked += 1;
            let (_, got) = run(&engine, &file, rule.id);
            if !got.is_empty() {
                failures.push(format!("{}: expected no {} finding, got {got:?}", file.display(), rule.id));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} fixtures failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn fixture_folders_name_real_rules() {
    let known: Vec<&str> = rules::catalogue().iter().map(|r| r.id).collect();
    for entry in std::fs::read_dir(fixture_root()).expect("testdata/events exists") {
        let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
        assert!(known.contains(&name.as_str()), "testdata/events/{name} is not a rule id");
    }
}
