//! `iam.admin_policy_attached` — administrator rights given to a role.
//!
//! **What it catches.** `AttachRolePolicy` with `AdministratorAccess`, `IAMFullAccess` or another
//! AWS-managed `*FullAccess` service-admin policy, and `PutRolePolicy` whose inline document (URL-
//! encoded in CloudTrail) allows `"Action": "*"` on `"Resource": "*"`. On an instance role this
//! hands full control of the account to anything that can reach the instance's metadata service
//! (critical once the stateful layer knows the role is an instance role).
//!
//! **False positives.** Break-glass and pipeline admin roles; allowlist the principals that manage
//! them.
//!
//! **References.** Security Hub IAM.1 (no full "*:*" administrative privileges) and EC2-related
//! findings on instance profiles; IAM docs "Apply least-privilege permissions"; MITRE ATT&CK
//! T1098.003.

use percent_encoding::percent_decode_str;

use crate::detect::{who, Detector, Hit};
use crate::event::shape::text_at;
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

/// The `iam.admin_policy_attached` rule.
pub static ADMIN_POLICY_ATTACHED: RuleInfo = RuleInfo {
    id: "iam.admin_policy_attached",
    family: Family::Exposure,
    severity: Severity::High,
    title: "Administrator policy attached to a role",
    description:
        "AttachRolePolicy with AdministratorAccess/IAMFullAccess/*FullAccess, or PutRolePolicy allowing * on *",
    remediation: "Replace the policy with least-privilege permissions for what the role's workload \
        does (IAM Access Analyzer can generate one from CloudTrail activity), especially on roles \
        used by EC2 instance profiles or ECS tasks.",
    mitre: &["T1098.003"],
    controls: &["IAM.1"],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct AdminPolicyAttached;

impl Detector for AdminPolicyAttached {
    fn info(&self) -> &'static RuleInfo {
        &ADMIN_POLICY_ATTACHED
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["AttachRolePolicy", "PutRolePolicy"]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        if event.service() != "iam" {
            return None;
        }
        let request = event.request?;
        let role = text_at(request, &["roleName"]).unwrap_or("?");
        let policy = if event.event_name == "AttachRolePolicy" {
            let arn = text_at(request, &["policyArn"])?;
            is_admin_managed_policy(arn).then(|| arn.to_owned())?
        } else {
            let document = text_at(request, &["policyDocument"])?;
            let name = text_at(request, &["policyName"]).unwrap_or("inline policy");
            allows_everything(document).then(|| format!("{name} (Action * on Resource *)"))?
        };
        Some(
            Hit::new(format!("{} gave role {role} {policy}", who(event)))
                .resource("AWS::IAM::Role", role)
                .detail_text("role", role)
                .detail_text("policy", &policy),
        )
    }
}

/// AWS-managed administrator policies: `AdministratorAccess`, `IAMFullAccess`, `*FullAccess`.
fn is_admin_managed_policy(arn: &str) -> bool {
    let Some(name) = arn.strip_prefix("arn:").and_then(|rest| rest.split_once(":iam::aws:policy/")).map(|(_, n)| n)
    else {
        return false;
    };
    let name = name.rsplit('/').next().unwrap_or(name);
    name == "AdministratorAccess" || name.ends_with("FullAccess")
}

/// True when a policy document (URL-encoded or plain JSON) has an `Allow` statement with
/// `Action: "*"` and `Resource: "*"`.
fn allows_everything(document: &str) -> bool {
    let decoded = percent_decode_str(document).decode_utf8_lossy();
    let Ok(policy) = serde_json::from_str::<serde_json::Value>(&decoded) else {
        return false;
    };
    let statements = match policy.get("Statement") {
        Some(serde_json::Value::Array(list)) => list.iter().collect::<Vec<_>>(),
        Some(single) => vec![single],
        None => return false,
    };
    statements.iter().any(|s| {
        s.get("Effect").and_then(|e| e.as_str()) == Some("Allow")
            && has_star(s.get("Action"))
            && has_star(s.get("Resource"))
    })
}

fn has_star(value: Option<&serde_json::Value>) -> bool {
    match value {
        Some(serde_json::Value::String(s)) => s == "*",
        Some(serde_json::Value::Array(list)) => list.iter().any(|v| v.as_str() == Some("*")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_admin_policies() {
        assert!(is_admin_managed_policy("arn:aws:iam::aws:policy/AdministratorAccess"));
        assert!(is_admin_managed_policy("arn:aws-us-gov:iam::aws:policy/AmazonS3FullAccess"));
        assert!(is_admin_managed_policy("arn:aws:iam::aws:policy/IAMFullAccess"));
        assert!(!is_admin_managed_policy("arn:aws:iam::aws:policy/ReadOnlyAccess"));
        assert!(!is_admin_managed_policy("arn:aws:iam::123456789012:policy/MyFullAccess"));
    }

    #[test]
    fn reads_url_encoded_documents() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22*%22%2C%22Resource%22%3A%22*%22%7D%7D";
        assert!(allows_everything(encoded));
        assert!(!allows_everything(r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#));
        assert!(!allows_everything("not json"));
    }
}
