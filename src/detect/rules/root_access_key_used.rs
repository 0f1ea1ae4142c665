//! `iam.root_access_key_used` — the root user's long-term access key was used.
//!
//! **What it catches.** Any call (not made by an AWS service on its behalf) whose
//! `userIdentity.type` is `Root` and whose key is an `AKIA…` long-term key. AWS advises that the
//! root user have no access keys at all; a root key in use is either a legacy risk or a stolen
//! credential with unlimited power.
//!
//! **False positives.** None expected beyond legacy automation, which should be migrated anyway.
//! Console sign-ins by root use `ASIA…` session keys and are not reported here.
//!
//! **References.** IAM docs "Root user best practices"; Security Hub IAM.4 (no root access key);
//! MITRE ATT&CK T1078.004.

use crate::detect::{who, Detector, Hit};
use crate::event::{Event, KeyKind};
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "iam.root_access_key_used",
    family: Family::AccessKeys,
    severity: Severity::Critical,
    title: "Root user access key used",
    description: "userIdentity.type Root with an AKIA key",
    remediation: "Find the caller of this key, move the workload to an IAM role, then deactivate and \
        delete the root access key. Turn on MFA for the root user and monitor it.",
    mitre: &["T1078.004"],
    controls: &["IAM.4"],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct RootAccessKeyUsed;

impl Detector for RootAccessKeyUsed {
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
        if event.identity.kind != Some("Root") || event.key_kind() != KeyKind::LongTerm || event.is_service_call() {
            return None;
        }
        let key = event.identity.access_key_id.unwrap_or("?");
        Some(
            Hit::new(format!("{} called {} with long-term access key {key}", who(event), event.event_name))
                .resource("AWS::IAM::AccessKey", key)
                .detail_text("event_name", event.event_name),
        )
    }
}
