//! `iam.long_term_key_sensitive_api` — a long-term access key calls a sensitive API.
//!
//! **What it catches.** An `AKIA…` key (not an AWS service acting on its behalf) calling an API
//! that changes identities or credentials, mints tokens, weakens logging, storage protection or
//! key management, or leaves the organisation. Stolen long-term keys are the most common
//! initial-access credential in AWS incidents; these are the calls an attacker makes first to
//! persist or to blind defenders, and the ones a well-run account makes through roles.
//!
//! A user creating an access key **for themselves** is left to the rules that judge it with more
//! context (`iam.access_key_created`, low, and `iam.created_key_used`, medium or high by how the
//! new key is used): rotating one's own key with the old one is routine, and paging it high twice
//! was the noise of key rotation. A key created for another user stays here.
//!
//! **False positives.** Legacy automation still running on IAM users; migrate it to roles or
//! allowlist it.
//!
//! **References.** IAM docs "Security best practices" (prefer temporary credentials); Invictus IR
//! and Datadog research on leaked key abuse (`GetFederationToken` persistence); MITRE ATT&CK
//! T1098, T1078.004, T1562.

use crate::detect::{is_long_term_key_use, who, Detector, Hit};
use crate::event::shape::text_at;
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "iam.long_term_key_sensitive_api",
    family: Family::AccessKeys,
    severity: Severity::High,
    title: "Long-term access key called a sensitive API",
    description: "An AKIA key changes IAM users/policies/credentials, mints tokens, weakens CloudTrail, S3, KMS or GuardDuty, or leaves the organization",
    remediation: "Confirm the key's owner made this change. If not, deactivate the key, review what \
        it created (users, keys, policies, tokens), and move automation to IAM roles with \
        temporary credentials.",
    mitre: &["T1098", "T1078.004", "T1562"],
    controls: &[],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// `(service, eventName)` pairs treated as sensitive.
pub const SENSITIVE_APIS: &[(&str, &str)] = &[
    ("iam", "CreateUser"),
    ("iam", "DeleteUser"),
    ("iam", "CreateAccessKey"),
    ("iam", "UpdateAccessKey"),
    ("iam", "CreateLoginProfile"),
    ("iam", "UpdateLoginProfile"),
    ("iam", "DeleteLoginProfile"),
    ("iam", "AttachUserPolicy"),
    ("iam", "PutUserPolicy"),
    ("iam", "AttachRolePolicy"),
    ("iam", "PutRolePolicy"),
    ("iam", "AttachGroupPolicy"),
    ("iam", "PutGroupPolicy"),
    ("iam", "AddUserToGroup"),
    ("iam", "CreatePolicyVersion"),
    ("iam", "SetDefaultPolicyVersion"),
    ("iam", "UpdateAssumeRolePolicy"),
    ("iam", "CreateRole"),
    ("iam", "DeactivateMFADevice"),
    ("iam", "DeleteVirtualMFADevice"),
    ("iam", "UploadSSHPublicKey"),
    ("iam", "CreateServiceSpecificCredential"),
    ("sts", "GetFederationToken"),
    ("sts", "GetSessionToken"),
    ("cloudtrail", "StopLogging"),
    ("cloudtrail", "DeleteTrail"),
    ("cloudtrail", "UpdateTrail"),
    ("cloudtrail", "PutEventSelectors"),
    ("cloudtrail", "PutAdvancedEventSelectors"),
    ("s3", "PutBucketPolicy"),
    ("s3", "DeleteBucketPolicy"),
    ("s3", "PutBucketLifecycle"),
    ("s3", "PutBucketLifecycleConfiguration"),
    ("s3", "PutBucketVersioning"),
    ("s3", "PutBucketEncryption"),
    ("s3", "DeleteBucketEncryption"),
    ("s3", "PutBucketPublicAccessBlock"),
    ("s3", "DeleteBucketPublicAccessBlock"),
    ("kms", "DisableKey"),
    ("kms", "ScheduleKeyDeletion"),
    ("kms", "PutKeyPolicy"),
    ("guardduty", "DeleteDetector"),
    ("guardduty", "UpdateDetector"),
    ("organizations", "LeaveOrganization"),
];

const fn names() -> [&'static str; SENSITIVE_APIS.len()] {
    let mut out = [""; SENSITIVE_APIS.len()];
    let mut i = 0;
    while i < SENSITIVE_APIS.len() {
        out[i] = SENSITIVE_APIS[i].1;
        i += 1;
    }
    out
}

static EVENT_NAMES: [&str; SENSITIVE_APIS.len()] = names();

/// See the module documentation.
pub struct LongTermKeySensitiveApi;

/// `CreateAccessKey` without a `userName`, or naming the caller: a key for oneself.
fn creates_own_key(event: &Event<'_>) -> bool {
    let target = event.request.and_then(|r| text_at(r, &["userName"]));
    target.is_none_or(|user| event.identity.user_name == Some(user))
}

impl Detector for LongTermKeySensitiveApi {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &EVENT_NAMES
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        if !is_long_term_key_use(event) || !SENSITIVE_APIS.contains(&(event.service(), event.event_name)) {
            return None;
        }
        if event.event_name == "CreateAccessKey" && creates_own_key(event) {
            return None;
        }
        let key = event.identity.access_key_id.unwrap_or("?");
        Some(
            Hit::new(format!(
                "{} called {}:{} with long-term key {key}",
                who(event),
                event.service(),
                event.event_name
            ))
            .resource("AWS::IAM::AccessKey", key)
            .detail_text("api", &format!("{}:{}", event.service(), event.event_name)),
        )
    }
}
