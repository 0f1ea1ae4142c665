//! `iam.key_error_burst` — a long-term key collecting access errors: enumeration with a stolen key.
//!
//! **What it catches.** At least 20 `AccessDenied`/`UnauthorizedOperation` errors from one
//! `AKIA…` key within 10 minutes of event time. Someone holding a leaked key typically probes
//! what it may do (IAM, S3, EC2 listings) and collects a run of denials; the owner's automation
//! rarely does. Single errors are not findings; the burst is one finding listing its events.
//!
//! **False positives.** Misconfigured automation retrying a denied call; fix its policy or
//! allowlist the key for this rule.
//!
//! **References.** Datadog Security Labs and Invictus IR on leaked-key enumeration (e.g.
//! `enumerate-iam`, Pacu); MITRE ATT&CK T1580, T1087.004.

use crate::detect::{is_long_term_key_use, who, Detector, Hit};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "iam.key_error_burst",
    family: Family::AccessKeys,
    severity: Severity::Medium,
    title: "Burst of access errors from a long-term key",
    description: ">= 20 AccessDenied/UnauthorizedOperation errors from one AKIA key in 10 min",
    remediation: "Check who holds the key: a run of denials is what enumeration with a leaked key \
        looks like. If it is not the owner, deactivate the key and review what it did succeed at.",
    mitre: &["T1580", "T1087.004"],
    controls: &[],
    on_failure: OnFailure::Burst { threshold: 20, window_minutes: 10 },
    merge_window_minutes: None,
};

/// Error codes that mean "not allowed".
const DENIALS: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "Client.UnauthorizedOperation",
    "UnauthorizedOperation",
    "Client.AccessDenied",
    "UnauthorizedAccess",
];

/// See the module documentation.
pub struct KeyErrorBurst;

impl Detector for KeyErrorBurst {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &[]
    }

    fn reads_bodies(&self) -> bool {
        false
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        let code = event.error_code?;
        if !DENIALS.contains(&code) || !is_long_term_key_use(event) {
            return None;
        }
        let key = event.identity.access_key_id?;
        let api = format!("{}:{}", event.service(), event.event_name);
        Some(
            Hit::new(format!("{} was denied {api} with long-term key {key}", who(event)))
                .resource("AWS::IAM::AccessKey", key)
                .detail_text("api", &api)
                .group(key.to_owned()),
        )
    }
}
