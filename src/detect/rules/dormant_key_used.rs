//! `iam.dormant_key_used` — a long-term key used again after a long silence.
//!
//! **What it catches.** An `AKIA…` key not seen for at least `dormant_days` (default 30) that
//! makes a call. Forgotten keys are the ones that leak (old repositories, laptops, backups), and
//! their owners are not watching them.
//!
//! The model lives in [`crate::analyze::baseline`]; this file only describes the rule.
//!
//! **False positives.** Quarterly jobs and break-glass keys; allowlist them for this rule.
//!
//! **References.** IAM docs "Find unused credentials"; Security Hub IAM.8 (unused credentials
//! removed); MITRE ATT&CK T1078.004.

use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};

/// The rule.
pub static DORMANT_KEY_USED: RuleInfo = RuleInfo {
    id: "iam.dormant_key_used",
    family: Family::AccessKeys,
    severity: Severity::High,
    title: "Dormant long-term access key used again",
    description: "An AKIA key not seen for >= 30 days is used again",
    remediation: "Confirm the owner still needs the key and made this call; otherwise deactivate it. \
        Remove keys unused for 90 days or more.",
    mitre: &["T1078.004"],
    controls: &["IAM.8"],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};
