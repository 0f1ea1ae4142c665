//! `trail.unreadable_log_file` — a log object that cannot be read.
//!
//! **What it catches.** A CloudTrail object that is empty, not gzip or JSON, truncated, fails its
//! CRC, is over the size cap, or is not a CloudTrail envelope. CloudTrail does not write such
//! objects; an unreadable one is either corruption or someone tampering with the evidence (or
//! planting a decompression bomb to stop the pipeline). The object is quarantined: counted,
//! reported with this finding, and not retried; the records read before the damage are still
//! inspected.
//!
//! This finding is raised by the pipeline for an object, not by a detector for an event.
//!
//! **References.** SPEC §4; CloudTrail docs "Validating CloudTrail log file integrity";
//! MITRE ATT&CK T1565.001, T1070.

use crate::finding;
use crate::finding::{clean, finding_id, Family, Finding, Mode, Outcome, Principal, Resource, Severity};
use crate::finding::{OnFailure, RuleInfo};

/// The rule.
pub static UNREADABLE_LOG_FILE: RuleInfo = RuleInfo {
    id: "trail.unreadable_log_file",
    family: Family::LogIntegrity,
    severity: Severity::Medium,
    title: "Unreadable CloudTrail log object",
    description:
        "A log object is empty, corrupt, truncated, over the size cap or not a CloudTrail envelope (quarantined)",
    remediation: "Check the object in S3 (size, content type, who wrote it; S3 server access logs or \
        data events). Run CloudTrail log file integrity validation for the period, and restrict \
        write access to the trail bucket to CloudTrail.",
    mitre: &["T1565.001", "T1070"],
    controls: &[],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// The finding for a quarantined object; its id depends only on the object name.
pub fn unreadable_log_file(object: &str, reason: &str, events_read: u64, mode: Mode) -> Finding {
    let info = &UNREADABLE_LOG_FILE;
    let mut details = serde_json::Map::new();
    details.insert("reason".into(), clean(reason).into());
    details.insert("events_read_before_damage".into(), events_read.into());
    Finding {
        schema: finding::SCHEMA,
        id: finding_id(info.id, &[object]),
        rule: info.id,
        family: info.family,
        severity: info.severity,
        title: info.title,
        summary: clean(&format!("log object {object} is unreadable: {reason}")),
        outcome: Outcome::Success,
        first_seen: None,
        last_seen: None,
        account: None,
        region: None,
        principal: Principal::default(),
        source_ip: None,
        user_agent: None,
        resources: vec![Resource { kind: "AWS::S3::Object".into(), id: clean(object) }],
        evidence: finding::Evidence { event_ids: Vec::new(), count: 0, event_ids_truncated: false, details },
        controls: info.controls,
        mitre: info.mitre,
        remediation: info.remediation,
        origin: clean(object),
        mode,
        api: None,
        sort_time: i64::MIN,
        pending: None,
        carried: false,
    }
}
