//! `iam.long_term_key_anomaly` — a long-term key used in a way its baseline has never seen.
//!
//! **What it catches.** An `AKIA…` key, past its learning period, used from a new network (/24,
//! /48), with a new user-agent family, in a new region, against a new service or a new API. The
//! finding lists its reasons; one reason is low, two medium, three or more high. A leaked key
//! typically shows up from a new network with a new tool at once.
//!
//! The model and its bounds live in [`crate::analyze::baseline`]; this file only describes the rule.
//!
//! **False positives.** A key's owner changing laptops, CI runners or regions. Each new value is
//! reported once, then it is part of the baseline.
//!
//! **References.** IAM docs "Security best practices" (rotate and monitor long-term keys);
//! GuardDuty's `UnauthorizedAccess:IAMUser/AnomalousBehavior` for the idea; MITRE ATT&CK
//! T1078.004.

use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};

/// The rule.
pub static LONG_TERM_KEY_ANOMALY: RuleInfo = RuleInfo {
    id: "iam.long_term_key_anomaly",
    family: Family::AccessKeys,
    severity: Severity::Medium,
    title: "Long-term access key used in a new way",
    description: "An AKIA key past learning shows a new network, user agent, region, service or API (1 reason low, 2 medium, 3+ high)",
    remediation: "Ask the key's owner whether they made the call from this network and tool. If not, \
        deactivate the key, review its recent activity, and replace it with role-based access.",
    mitre: &["T1078.004"],
    controls: &[],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};
