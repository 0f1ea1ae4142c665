//! `iam.access_key_created` — a new long-term access key.
//!
//! **What it catches.** `iam:CreateAccessKey`. Low when users create their own key; high when the
//! key is created for another user (the classic backdoor: Stratus Red Team
//! `aws.persistence.iam-backdoor-user`, `iam-create-admin-user`) or by the root user. AWS guidance
//! is to avoid long-term keys altogether, so every new one is worth knowing about. The secret key
//! in the response is never copied.
//!
//! **False positives.** Onboarding of service users that still need keys.
//!
//! **References.** IAM docs "Manage access keys for IAM users"; Panther `AWS.IAM.Backdoor.User.Keys`;
//! MITRE ATT&CK T1098.001.

use crate::detect::{who, Detector, Hit};
use crate::event::shape::{get_any, path, text, text_at};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "iam.access_key_created",
    family: Family::AccessKeys,
    severity: Severity::Low,
    title: "Access key created",
    description: "CreateAccessKey (low for one's own key, high for another user's or by root)",
    remediation: "Confirm the key is needed and owned. A key created for another user, or by root, \
        is a persistence technique: deactivate it and investigate the creator. Prefer IAM roles \
        and IAM Identity Center over long-term keys.",
    mitre: &["T1098.001"],
    controls: &[],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct AccessKeyCreated;

impl Detector for AccessKeyCreated {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["CreateAccessKey"]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        if event.service() != "iam" {
            return None;
        }
        let target = event.request.and_then(|r| text_at(r, &["userName"]));
        let caller = event.identity.user_name;
        let for_other = target.is_some_and(|t| Some(t) != caller || event.identity.kind != Some("IAMUser"));
        let by_root = event.identity.kind == Some("Root");
        let new_key = event.response.and_then(|r| {
            text(path(r, &[&["accessKey"], &["accessKeyId"]])).or_else(|| text(get_any(r, &["accessKeyId"])))
        });
        let owner = target.or(caller).unwrap_or("?");
        let mut hit = Hit::new(format!("{} created an access key for user {owner}", who(event)))
            .resource("AWS::IAM::User", owner)
            .detail_text("target_user", owner)
            .detail("for_another_user", for_other);
        if for_other || by_root {
            hit = hit.severity(Severity::High);
        }
        if let Some(key) = new_key {
            hit = hit.detail_text("new_access_key_id", key);
        }
        Some(hit)
    }
}
