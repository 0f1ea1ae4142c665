//! `s3.ransomware_chain` — one principal encrypting with SSE-C and destroying the way back.
//!
//! **What it catches.** Within 24 hours of event time, the same principal (access key or ARN)
//! makes SSE-C writes and at least one of: a lifecycle rule expiring versions within days,
//! versioning suspended, or mass deletes (at least 100 objects). Each step alone has innocent
//! explanations; together they are the S3 ransomware playbook (encrypt with a key only the
//! attacker holds, then make sure the prior versions go away).
//!
//! Computed by the correlation pass ([`crate::detect::correlate`]) from the findings of the
//! individual steps and from counted deletes; one finding per principal per 24-hour episode.
//!
//! **False positives.** A team that uses SSE-C and also cleans up its buckets the same day;
//! allowlist its principal.
//!
//! **References.** Halcyon on Codefinger (2025); AWS Security Blog on SSE-C ransomware; Stratus
//! Red Team `aws.impact.s3-ransomware-*`; MITRE ATT&CK T1486, T1485, T1490.

use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};

/// The rule.
pub static RANSOMWARE_CHAIN: RuleInfo = RuleInfo {
    id: "s3.ransomware_chain",
    family: Family::S3Ransomware,
    severity: Severity::Critical,
    title: "S3 ransomware chain: SSE-C encryption plus destruction of recovery paths",
    description: "One principal within 24 h: SSE-C writes plus short expiration, versioning suspended or mass deletes",
    remediation: "Disable the principal now, block SSE-C on the affected buckets, undo the lifecycle \
        and versioning changes, and restore objects from prior versions or backups before they \
        expire. Treat as an incident: the attacker holds the only copy of the key.",
    mitre: &["T1486", "T1485", "T1490"],
    controls: &[],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};
