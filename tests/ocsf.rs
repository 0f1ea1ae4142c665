//! `--format ocsf`: every finding of every rule renders as an OCSF 1.3.0 Detection Finding that
//! the offline validator `../shared/ocsf/ocsf_check.py` accepts (errors and warnings), over the
//! detector fixtures, the sequences, a quarantined object and the real-log corpus. Skipped with a
//! notice when the validator is not beside the project (set `TRAILHOUND_OCSF_CHECK`).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use trailhound::detect::{rules, Engine};
use trailhound::finding::{Finding, Mode};
use trailhound::pipeline::{scan, ScanPlan};
use trailhound::settings::Settings;
use trailhound::sink::ocsf;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn validator() -> Option<PathBuf> {
    let path = std::env::var_os("TRAILHOUND_OCSF_CHECK")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/ocsf/ocsf_check.py"));
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("NOTICE: {} not found (set TRAILHOUND_OCSF_CHECK); OCSF validation skipped", path.display());
        None
    }
}

fn findings(paths: Vec<PathBuf>) -> Vec<Finding> {
    scan(&ScanPlan::new(paths), &Engine::new(Settings::default(), Mode::Scan), Mode::Scan).findings
}

/// Runs the validator over the rendered findings; returns its report.
fn validate(validator: &Path, findings: &[Finding]) -> (bool, String) {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    for finding in findings {
        serde_json::to_writer(&mut file, &ocsf::render(finding, 1_764_460_800_000)).expect("write");
        file.write_all(b"\n").expect("write");
    }
    let output = Command::new("python3")
        .arg(validator)
        .args(["--version", "1.3.0", "--warnings", "--strict", "--min-events"])
        .arg(findings.len().to_string())
        .arg(file.path())
        .output()
        .expect("python3 runs");
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn every_rule_renders_as_a_valid_detection_finding() {
    let Some(validator) = validator() else { return };
    let damaged = tempfile::tempdir().expect("temp dir");
    std::fs::write(damaged.path().join("cut.json.gz"), [0x1f, 0x8b, 8, 0, 0]).expect("write");
    let all = findings(vec![root().join("testdata"), damaged.path().to_path_buf()]);
    let rendered: BTreeSet<&str> = all.iter().map(|f| f.rule).collect();
    let catalogue: BTreeSet<&str> = rules::catalogue().iter().map(|r| r.id).collect();
    assert_eq!(rendered, catalogue, "a fixture for every rule");
    let (valid, report) = validate(&validator, &all);
    assert!(valid, "{report}");
    assert!(report.contains(&format!("{} events, 0 errors", all.len())), "{report}");
}

#[test]
fn the_real_corpus_renders_valid_detection_findings() {
    let Some(validator) = validator() else { return };
    let corpus =
        std::env::var_os("TRAILHOUND_CORPUS").map(PathBuf::from).unwrap_or_else(|| root().join("../shared/corpus"));
    if !corpus.join("README.md").is_file() {
        eprintln!("NOTICE: corpus not found at {}; skipped", corpus.display());
        return;
    }
    let all = findings(vec![corpus]);
    assert!(all.len() > 50, "{} findings", all.len());
    let (valid, report) = validate(&validator, &all);
    assert!(valid, "{report}");
}

#[test]
fn the_cli_prints_ocsf_lines() {
    let output = Command::new(env!("CARGO_BIN_EXE_trailhound"))
        .args(["scan", "--format", "ocsf", "testdata/events/ec2.serial_console_enabled"])
        .current_dir(root())
        .env_remove("TRAILHOUND_CONFIG")
        .output()
        .expect("runs");
    assert!(output.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert!(!lines.is_empty());
    for line in &lines {
        assert_eq!(line["class_uid"], 2004);
        assert_eq!(line["finding_info"]["types"][0], "ec2.serial_console_enabled");
        assert_eq!(line["metadata"]["profiles"], serde_json::json!(["cloud", "host"]));
    }
}
