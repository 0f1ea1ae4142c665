//! Ground truth on real, publicly released CloudTrail logs (`../shared/corpus`, or the folder in
//! `TRAILHOUND_CORPUS`), as listed in the corpus README: every true positive of the families of
//! the per-event rules is found by eventID at the expected severity, every listed look-alike is
//! silent, and the SSE-C rules stay silent on corpora without S3 data events. Skipped with a
//! notice when the corpus is absent (CI has it).
//!
//! The per-key baseline rules are silent on the corpus as it is (every key is younger than the
//! learning period) and, given a week of the Invictus operator's own Terraform use as history,
//! single out the Stratus Red Team detonations of the same key.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use trailhound::decode::Limits;
use trailhound::detect::Engine;
use trailhound::finding::{Finding, Mode, Severity};
use trailhound::pipeline::{scan, ScanPlan, ScanResult};
use trailhound::settings::Settings;

fn corpus() -> Option<PathBuf> {
    let path = std::env::var_os("TRAILHOUND_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    if path.join("README.md").is_file() {
        Some(path)
    } else {
        eprintln!("NOTICE: corpus not found at {} (set TRAILHOUND_CORPUS); corpus tests skipped", path.display());
        None
    }
}

fn run(paths: Vec<PathBuf>) -> ScanResult {
    let plan = ScanPlan::new(paths);
    scan(&plan, &Engine::new(Settings::default(), Mode::Scan), Mode::Scan)
}

/// Findings by eventID.
fn by_event(findings: &[Finding]) -> HashMap<String, Vec<(&'static str, Severity)>> {
    let mut map: HashMap<String, Vec<_>> = HashMap::new();
    for f in findings {
        for id in &f.evidence.event_ids {
            map.entry(id.clone()).or_default().push((f.rule, f.severity));
        }
    }
    map
}

#[test]
fn corpus_ground_truth() {
    let Some(root) = corpus() else { return };
    let result = run(vec![root.clone()]);
    let found = by_event(&result.findings);
    let mut failures = Vec::new();

    let true_positives: &[(&str, &str, Severity)] = &[
        // Interactive access (README §2).
        ("ec2.instance_connect_ssh", "0968cbec-f8df-43f3-94ba-b451aad083ed", Severity::Medium),
        ("ec2.instance_connect_ssh", "1214f520-2eaf-4438-92ab-304bcf115296", Severity::Medium),
        ("ec2.instance_connect_ssh", "803d3bd8-44cb-4284-a4a9-cdfde3b00570", Severity::Medium),
        ("ec2.serial_console_enabled", "37ba412b-f943-44f2-ae48-4527f6e789d9", Severity::Medium),
        ("ec2.instance_connect_ssh", "787b2464-f27b-4d4c-91bc-6396f2297d0e", Severity::High),
        ("ec2.instance_connect_ssh", "e49972cb-b394-43e2-aab5-602f1fb56f85", Severity::High),
        ("ec2.instance_connect_ssh", "f4dc86c9-6b22-4643-a0e8-fcb97fcfae68", Severity::High),
        ("ec2.remote_admin_port_open", "9fd68588-ecbf-4528-a345-199fa6bb0821", Severity::High),
        ("ec2.remote_admin_port_open", "74bd84b4-6729-4895-b2a4-e2beb7c6b377", Severity::High),
        ("ec2.instance_connect_ssh", "c085aaa6-3b7e-48c2-b430-fb821ae9e073", Severity::Medium),
        ("ec2.instance_connect_ssh", "15f299e4-4e8c-4ebe-abe4-c09e96a217e6", Severity::High),
        ("ec2.rdp_password_retrieved", "8e09c825-df0e-43d5-898d-92504bb56c4f", Severity::Medium),
        ("ec2.remote_admin_port_open", "c409b898-91e4-44d5-a994-68741a8a0212", Severity::Medium),
        // Long-term keys (README §3).
        ("iam.access_key_created", "64b7de64-bf53-47ae-b7e3-d30cb1b5136e", Severity::High),
        ("iam.access_key_created", "8c282c0b-00d1-4369-95b7-cb50b6eee620", Severity::High),
        ("iam.access_key_created", "c64c4ded-ef03-4e5c-81eb-153b118d72f2", Severity::High),
        ("iam.access_key_created", "94faedcc-0fa4-46e6-9322-022e8e934f04", Severity::High),
        ("iam.long_term_key_sensitive_api", "6e882b9d-2af8-4c67-b91f-aeac6a0e5e70", Severity::High),
        // Ransomware staging and trail tampering by the Stratus detonations.
        ("s3.lifecycle_short_expiration", "7823c70d-f7f9-4a04-b4c0-baa8fbe09ea3", Severity::Medium),
        ("trail.tampering", "ee73c230-44bc-4492-8542-cfb189eae287", Severity::High),
        ("trail.tampering", "10163ed2-2253-469d-a5ee-cbc6651f8934", Severity::High),
        ("trail.tampering", "c2a89408-340a-42f0-8ace-75d9f5769393", Severity::High),
        // Exposure: the backdoor role gets AdministratorAccess.
        ("iam.admin_policy_attached", "39480357-0a1d-4531-a3f2-71be4c041c25", Severity::High),
    ];
    for (rule, event_id, severity) in true_positives {
        let hits = found.get(*event_id).cloned().unwrap_or_default();
        if !hits.contains(&(*rule, *severity)) {
            failures.push(format!("missed {rule} ({severity}) on {event_id}; got {hits:?}"));
        }
    }

    // The one public SSE-C CopyObject overwrite has no eventID: find it by its file.
    let sample = "aws.impact.s3-ransomware-client-side-encryption.sample-CopyObject.json";
    let ssec = result.findings.iter().find(|f| f.origin.ends_with(sample));
    if ssec.map(|f| (f.rule, f.severity)) != Some(("s3.ssec_copy_overwrite", Severity::Critical)) {
        failures.push(format!("missed s3.ssec_copy_overwrite on {sample}: {ssec:?}"));
    }

    // Look-alikes: no interactive-access, S3-ransomware or exposure finding at all.
    let look_alikes = [
        "7e96f0e7-4d78-423d-b3f5-391370685b30", // tcp 443 from 0.0.0.0/0 by Terraform
        "72a37ea2-cbf9-47bf-9ae0-0149d8acbbbc", // egress tcp 4444
        "8086b250-d29c-4659-9aec-86c8446a3895", // StartSession, default shell document
        "10057a87-1da5-4c7d-a411-e41543dc91f5",
        "32e8a07f-4751-4081-882e-958a25231c56",
        "c3c698fc-eaa1-493e-94bf-784c7341ade9", // Elastic StartSession
        "722d2b25-6a0d-4b47-b567-219e8aa5476a", // TerminateSession
        "1d4a7eb7-10cf-49f3-bf2f-05303f3524e7", // OpenControlChannel
        "65679ba9-4201-4785-a7f9-6cc998e4c2f7", // CreateControlChannel (denied)
        "22d1e206-17fd-4a52-9923-e86605f3dd7f", // SendCommand (SSM-mediated)
        "99b46479-d5c7-4384-b342-006ece8c36a0",
        "2a5178c8-b4c7-44ba-b066-1ecc79b7087c",
        "5288bfb8-e3fa-4c41-be02-6853521afe8b",
        "0c06e2ff-5e88-44e6-a081-57871bbe770b", // CopyObject to another key, SSE-S3 "AES256"
        "6829a09f-4a37-4ec7-86d2-e739f77a57f3", // PutObject without SSE
    ];
    for event_id in look_alikes {
        if let Some(hits) = found.get(event_id) {
            failures.push(format!("look-alike {event_id} reported: {hits:?}"));
        }
    }

    // Password spraying with GetPasswordData: one burst finding each, listing every attempt
    // (Invictus: 29 failures split over two delivery files; Stratus: 30).
    let bursts: Vec<(&str, u64)> = result
        .findings
        .iter()
        .filter(|f| f.rule == "ec2.rdp_password_retrieved" && f.evidence.count > 1)
        .map(|f| (f.origin.as_str(), f.evidence.count))
        .collect();
    let burst_of =
        |folder: &str| bursts.iter().filter(|(o, _)| o.contains(folder)).map(|(_, c)| *c).collect::<Vec<_>>();
    if burst_of("invictus-ir-aws_dataset") != [29] || burst_of("stratus-red-team-detonation-logs") != [30] {
        failures.push(format!("GetPasswordData bursts: {bursts:?}"));
    }

    // Every key of the corpus is seen for less than the 7-day learning period: no baseline finding.
    for f in
        result.findings.iter().filter(|f| f.rule == "iam.long_term_key_anomaly" || f.rule == "iam.dormant_key_used")
    {
        failures.push(format!("baseline finding while every key is learning: {} {}", f.rule, f.summary));
    }

    // Stolen temporary credentials (OTRF) are not long-term key use.
    let otrf = result.findings.iter().filter(|f| f.origin.contains("otrf-security-datasets"));
    for f in otrf.filter(|f| f.family.as_str() == "access-keys") {
        failures.push(format!("OTRF temporary credentials reported as long-term key use: {}", f.id));
    }
    assert!(failures.is_empty(), "{} ground-truth failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn sse_c_rules_are_silent_without_s3_data_events_and_the_run_warns() {
    let Some(root) = corpus() else { return };
    for dir in ["invictus-ir-aws_dataset", "stratus-red-team-detonation-logs"] {
        let result = run(vec![root.join(dir)]);
        assert!(result.totals.events > 300, "{dir}: {} events", result.totals.events);
        assert_eq!(result.totals.s3_data_events, 0, "{dir}");
        assert!(result.totals.lacks_s3_data_events(), "{dir}: the coverage warning must be raised");
        let ssec: Vec<&Finding> = result.findings.iter().filter(|f| f.rule.starts_with("s3.ssec_")).collect();
        assert!(ssec.is_empty(), "{dir}: {ssec:?}");
        assert!(result.quarantined.is_empty() && result.totals.rejected_records == 0, "{dir}");
    }
}

#[test]
fn gzipped_delivery_gives_the_same_findings_as_plain_json() {
    let Some(root) = corpus() else { return };
    let plain_dir = root.join("invictus-ir-aws_dataset");
    let gz_dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(&plain_dir).expect("invictus folder") {
        let path = entry.expect("entry").path();
        let name = format!("{}.gz", path.file_name().and_then(|n| n.to_str()).expect("name"));
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        encoder.write_all(&std::fs::read(&path).expect("read")).expect("gzip");
        std::fs::write(gz_dir.path().join(name), encoder.finish().expect("gzip")).expect("write");
    }
    let plain = run(vec![plain_dir]);
    let gzipped = run(vec![gz_dir.path().to_path_buf()]);
    let ids = |r: &ScanResult| r.findings.iter().map(|f| f.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&plain), ids(&gzipped));
    assert_eq!(plain.totals.events, 2_900);
    assert_eq!(gzipped.totals.events, 2_900);
    assert!(gzipped.totals.stored_bytes < gzipped.totals.json_bytes);
}

/// Every corpus file gives the same findings whether each record is parsed completely or read
/// by the header walker first (the fast path parses only what rules need).
#[test]
fn header_walker_path_matches_the_full_parse_on_real_logs() {
    use trailhound::decode::Decoder;
    use trailhound::detect::EventOrigin;
    use trailhound::pipeline::{inspect_object, Gather, Window};
    let Some(root) = corpus() else { return };
    let engine = Engine::new(Settings::default(), Mode::Scan);
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in std::fs::read_dir(&root).expect("corpus").flatten().filter(|e| e.path().is_dir()) {
        files.extend(std::fs::read_dir(dir.path()).expect("folder").flatten().map(|e| e.path()));
    }
    assert!(files.len() > 100);
    for file in files {
        let bytes = std::fs::read(&file).expect("read");
        let origin = file.display().to_string();
        let mut full = Vec::new();
        let full_report = Decoder::new(Limits::default()).decode(&bytes, &mut |index, event| {
            engine.inspect(event, EventOrigin { object: &origin, index }, &mut full)
        });
        let fast = inspect_object(
            &mut Decoder::new(Limits::default()),
            &bytes,
            &origin,
            &engine,
            Window::default(),
            Mode::Scan,
            Gather::default(),
        );
        // The quarantine finding is added by inspect_object, not by the engine.
        let ids = |findings: &[Finding]| {
            findings.iter().filter(|f| f.rule != "trail.unreadable_log_file").map(|f| f.id.clone()).collect::<Vec<_>>()
        };
        assert_eq!(ids(&fast.findings), ids(&full), "{origin}");
        assert_eq!(fast.report.damage.is_some(), full_report.damage.is_some(), "{origin}");
        assert_eq!((fast.report.events, fast.report.rejected), (full_report.events, full_report.rejected), "{origin}");
    }
}

/// The Invictus operator key `AKIATFQR7NSC8Q4X20BJ` (`bert-jan`) drives Terraform and, in between,
/// 76 `stratus-red-team_<uuid>` detonations. Its Terraform events, re-dated ten days earlier (new
/// eventIDs), are a week of normal history; on the real day, the baseline must report the key for
/// the Stratus user agent (and the APIs only the attacks use), never for Terraform, and keys
/// without history (`benjamin`) stay in learning.
#[test]
fn a_week_of_terraform_history_singles_out_the_stratus_detonations() {
    let Some(corpus) = corpus() else { return };
    let folder = corpus.join("invictus-ir-aws_dataset");
    let mut history = Vec::new();
    let mut day_files: Vec<PathBuf> = std::fs::read_dir(&folder).expect("folder").flatten().map(|e| e.path()).collect();
    day_files.sort();
    for file in &day_files {
        let object: serde_json::Value = serde_json::from_slice(&std::fs::read(file).expect("read")).expect("json");
        for record in object["Records"].as_array().into_iter().flatten() {
            let by_operator = record["userIdentity"]["accessKeyId"] == "AKIATFQR7NSC8Q4X20BJ";
            let terraform = record["userAgent"].as_str().is_some_and(|ua| ua.contains("Terraform"));
            if by_operator && terraform {
                let mut old = record.clone();
                let time = old["eventTime"].as_str().expect("time").replacen("2023-07-10", "2023-06-30", 1);
                old["eventTime"] = serde_json::json!(time);
                old["eventID"] = serde_json::json!(format!("history-{}", record["eventID"].as_str().expect("id")));
                history.push(old);
            }
        }
    }
    assert!(history.len() > 1_500, "the Terraform warm-up and clean-up: {}", history.len());
    let dir = tempfile::tempdir().expect("tempdir");
    let history_file = dir.path().join("218007301253_CloudTrail_us-east-1_20230630T1145Z_history.json");
    std::fs::write(&history_file, serde_json::json!({ "Records": history }).to_string()).expect("write");

    let mut inputs = vec![history_file];
    inputs.extend(day_files);
    let result = run(inputs);
    let stratus_ids: std::collections::HashSet<String> =
        collect_ids(&folder, |r| r["userAgent"].as_str().is_some_and(|ua| ua.contains("stratus-red-team")));
    let anomalies: Vec<&Finding> = result.findings.iter().filter(|f| f.rule == "iam.long_term_key_anomaly").collect();
    assert!(!anomalies.is_empty(), "the detonations are new behaviour for the key");
    for finding in &anomalies {
        assert_eq!(finding.principal.access_key_id.as_deref(), Some("AKIATFQR7NSC8Q4X20BJ"), "{}", finding.summary);
        assert!(
            finding.evidence.event_ids.iter().all(|id| stratus_ids.contains(id)),
            "not a detonation: {}",
            finding.summary
        );
        let reasons = finding.evidence.details["reasons"].as_array().expect("reasons");
        // The same workstation (192.168.10.20) throughout: never a new network.
        assert!(reasons.iter().all(|r| r != "new_network"), "{}", finding.summary);
    }
    // One family of tool: after its first use the Stratus agent is known, so later detonations
    // report only APIs that are new too.
    let agents: Vec<&serde_json::Value> =
        anomalies.iter().filter_map(|f| f.evidence.details["new_values"].get("new_user_agent")).collect();
    assert_eq!(agents, ["stratus-red-team"], "the new user agent is reported once");
    assert!(result.findings.iter().all(|f| f.rule != "iam.dormant_key_used"));
}

/// The eventIDs of the records in `folder` that `keep` selects.
fn collect_ids(folder: &Path, keep: impl Fn(&serde_json::Value) -> bool) -> std::collections::HashSet<String> {
    let mut ids = std::collections::HashSet::new();
    for entry in std::fs::read_dir(folder).expect("folder").flatten() {
        let object: serde_json::Value =
            serde_json::from_slice(&std::fs::read(entry.path()).expect("read")).expect("json");
        for record in object["Records"].as_array().into_iter().flatten().filter(|r| keep(r)) {
            ids.insert(record["eventID"].as_str().unwrap_or_default().to_owned());
        }
    }
    ids
}
