//! `iam.admin_policy_attached` — administrator rights given to a role, a user or a group.
//!
//! **What it catches.** `AttachRolePolicy`/`AttachUserPolicy`/`AttachGroupPolicy` with
//! `AdministratorAccess`, `IAMFullAccess` or another AWS-managed `*FullAccess` service-admin
//! policy; `PutRolePolicy`/`PutUserPolicy`/`PutGroupPolicy` whose inline document (URL-encoded in
//! CloudTrail) allows `"Action": "*"` (or `iam:*`) on `"Resource": "*"`; and `CreatePolicyVersion`
//! with `setAsDefault` whose new document does (every identity the policy is attached to gains
//! it at once). High by default; **critical** when a principal grants it to itself (an IAM user
//! to its own user name, a role session to its own role: the escalation step of an intrusion
//! with a stolen credential) and, through the correlation pass, when the role is known to be an
//! EC2 instance role (anything that can reach the instance's metadata service then owns the
//! account).
//!
//! **False positives.** Break-glass and pipeline admin roles; allowlist the principals that manage
//! them.
//!
//! **References.** Security Hub IAM.1 (no full "*:*" administrative privileges) and EC2-related
//! findings on instance profiles; IAM docs "Apply least-privilege permissions"; Rhino Security
//! Labs' IAM privilege-escalation methods (`iam:PutUserPolicy`, `iam:CreatePolicyVersion`);
//! MITRE ATT&CK T1098.003.

use percent_encoding::percent_decode_str;

use crate::detect::{who, Detector, Hit};
use crate::event::shape::{boolean, get_any, text_at};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

/// The `iam.admin_policy_attached` rule.
pub static ADMIN_POLICY_ATTACHED: RuleInfo = RuleInfo {
    id: "iam.admin_policy_attached",
    family: Family::Exposure,
    severity: Severity::High,
    title: "Administrator policy granted to an IAM identity",
    description: "Attach*Policy with AdministratorAccess/IAMFullAccess/*FullAccess, Put*Policy or a default CreatePolicyVersion allowing * on *; critical on oneself",
    remediation: "Replace the policy with least-privilege permissions for what the identity does \
        (IAM Access Analyzer can generate one from CloudTrail activity), especially on roles \
        used by EC2 instance profiles or ECS tasks. A principal that granted itself administrator \
        rights is the escalation step of an intrusion: disable its credentials first.",
    mitre: &["T1098.003"],
    controls: &["IAM.1"],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct AdminPolicyAttached;

/// Who receives the rights: the request field naming it, its resource type and detail key.
const TARGETS: [(&str, &str, &str); 3] = [
    ("roleName", "AWS::IAM::Role", "role"),
    ("userName", "AWS::IAM::User", "user"),
    ("groupName", "AWS::IAM::Group", "group"),
];

impl Detector for AdminPolicyAttached {
    fn info(&self) -> &'static RuleInfo {
        &ADMIN_POLICY_ATTACHED
    }

    fn event_names(&self) -> &'static [&'static str] {
        &[
            "AttachRolePolicy",
            "AttachUserPolicy",
            "AttachGroupPolicy",
            "PutRolePolicy",
            "PutUserPolicy",
            "PutGroupPolicy",
            "CreatePolicyVersion",
        ]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        if event.service() != "iam" {
            return None;
        }
        let request = event.request?;
        let policy = if event.event_name.starts_with("Attach") {
            let arn = text_at(request, &["policyArn"])?;
            is_admin_managed_policy(arn).then(|| arn.to_owned())?
        } else {
            if event.event_name == "CreatePolicyVersion" && boolean(get_any(request, &["setAsDefault"])) != Some(true) {
                return None;
            }
            let document = text_at(request, &["policyDocument"])?;
            let name = text_at(request, &["policyName", "policyArn"]).unwrap_or("inline policy");
            allows_everything(document).then(|| format!("{name} (Action * on Resource *)"))?
        };
        if event.event_name == "CreatePolicyVersion" {
            let arn = text_at(request, &["policyArn"]).unwrap_or("?");
            return Some(
                Hit::new(format!("{} made a version allowing * on * the default of managed policy {arn}", who(event)))
                    .resource("AWS::IAM::Policy", arn)
                    .detail_text("policy", &policy),
            );
        }
        let (field, kind, detail) = TARGETS.into_iter().find(|(field, ..)| text_at(request, &[field]).is_some())?;
        let target = text_at(request, &[field]).unwrap_or("?");
        let to_itself = grants_itself(event, detail, target);
        let whom = if to_itself { format!("itself ({detail} {target})") } else { format!("{detail} {target}") };
        let hit = Hit::new(format!("{} gave {whom} {policy}", who(event)))
            .resource(kind, target)
            .detail_text(detail, target)
            .detail_text("policy", &policy)
            .detail("self_grant", to_itself);
        Some(if to_itself { hit.severity(Severity::Critical) } else { hit })
    }
}

/// True when the caller is the grantee: an IAM user naming its own user, or a role session
/// naming its own role.
fn grants_itself(event: &Event<'_>, detail: &str, target: &str) -> bool {
    let identity = &event.identity;
    match detail {
        "user" => identity.kind == Some("IAMUser") && identity.user_name == Some(target),
        "role" => identity.kind == Some("AssumedRole") && identity.session_issuer_name == Some(target),
        _ => false,
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
            && (has_star(s.get("Action")) || has_value(s.get("Action"), "iam:*"))
            && has_star(s.get("Resource"))
    })
}

fn has_star(value: Option<&serde_json::Value>) -> bool {
    has_value(value, "*")
}

/// A policy element equal to `wanted`, alone or in a list.
fn has_value(value: Option<&serde_json::Value>, wanted: &str) -> bool {
    match value {
        Some(serde_json::Value::String(s)) => s == wanted,
        Some(serde_json::Value::Array(list)) => list.iter().any(|v| v.as_str() == Some(wanted)),
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
