//! Detection settings (SPEC §2 defaults unless configured) and the one [`RulePolicy`] that every
//! pass applies: per-rule enablement, principal allowlists and severity overrides. The per-event
//! engine, the aggregation and correlation passes and the baselines all ask the policy, so a
//! principal allowlisted for a rule is silent whichever pass would have reported it.

use std::collections::{HashMap, HashSet};

use crate::event::Event;
use crate::finding::RuleInfo;
use crate::finding::{Principal, Severity};
use crate::net::Cidr;

/// Per-rule overrides from configuration.
#[derive(Debug, Clone, Default)]
pub struct RuleSettings {
    /// Severity replacing the rule's (and the hit's) own.
    pub severity: Option<Severity>,
    /// Principals (ARN, access key id or user name) this rule never reports.
    pub allow_principals: Vec<String>,
}

/// Detection settings: the defaults of SPEC §2 unless configured.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Ports whose exposure is remote administration.
    pub remote_admin_ports: Vec<u16>,
    /// Ports allowed from the world without an `open_world` finding.
    pub public_ports: Vec<u16>,
    /// Source ranges whose ingress is not reported. Empty by default.
    pub trusted_cidrs: Vec<Cidr>,
    /// Principals (ARN, key id, user name) or bucket names that legitimately use SSE-C.
    pub ssec_allowlist: Vec<String>,
    /// Lifecycle expirations at or under this many days are short.
    pub lifecycle_max_days: i64,
    /// Rules switched off.
    pub disabled_rules: HashSet<String>,
    /// Per-rule overrides.
    pub rules: HashMap<String, RuleSettings>,
    /// Per-key baseline periods and bounds.
    pub baseline: BaselineSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            remote_admin_ports: vec![22, 3389],
            public_ports: vec![80, 443],
            trusted_cidrs: Vec::new(),
            ssec_allowlist: Vec::new(),
            lifecycle_max_days: 7,
            disabled_rules: HashSet::new(),
            rules: HashMap::new(),
            baseline: BaselineSettings::default(),
        }
    }
}

impl Settings {
    /// True when a source range is entirely inside a trusted range.
    pub fn is_trusted(&self, cidr: &Cidr) -> bool {
        self.trusted_cidrs.iter().any(|t| t.contains(cidr))
    }
}

/// Limits and periods of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaselineSettings {
    /// A key is in learning until seen for this many days.
    pub learning_days: i64,
    /// Silence of at least this many days makes the next use "dormant".
    pub dormant_days: i64,
    /// Keys remembered at most.
    pub max_keys: usize,
    /// Values remembered per feature per key at most.
    pub max_values: usize,
}

impl Default for BaselineSettings {
    fn default() -> Self {
        BaselineSettings { learning_days: 7, dormant_days: 30, max_keys: 1_000_000, max_values: 256 }
    }
}

impl Settings {
    /// The rule policy over these settings: what every pass asks before it reports.
    pub fn policy(&self) -> RulePolicy<'_> {
        RulePolicy { disabled: &self.disabled_rules, rules: &self.rules }
    }
}

/// The names a principal goes by, as allowlists match them: its ARN, access key id, user name
/// and, for a role session, the role (by name, or by role ARN in any path of its account: role
/// names are unique within an account).
#[derive(Debug, Clone, Copy, Default)]
pub struct PrincipalNames<'a> {
    /// The ARN (of the user, the role session, the root).
    pub arn: Option<&'a str>,
    /// The access key id.
    pub access_key_id: Option<&'a str>,
    /// The IAM user name.
    pub user_name: Option<&'a str>,
    /// The role's name: the session issuer of an assumed role.
    pub role_name: Option<&'a str>,
}

impl<'a> PrincipalNames<'a> {
    /// The names of the event's caller.
    pub fn of_event(event: &'a Event<'_>) -> PrincipalNames<'a> {
        let id = &event.identity;
        PrincipalNames {
            arn: id.arn,
            access_key_id: id.access_key_id,
            user_name: id.user_name,
            role_name: id.session_issuer_name.or_else(|| id.arn.and_then(session_role)),
        }
    }

    /// The names of a finding's principal (the role name comes from an assumed-role ARN).
    pub fn of_principal(principal: &'a Principal) -> PrincipalNames<'a> {
        let arn = principal.arn.as_deref();
        PrincipalNames {
            arn,
            access_key_id: principal.access_key_id.as_deref(),
            user_name: principal.user_name.as_deref(),
            role_name: arn.and_then(session_role),
        }
    }

    /// True when one of the names is in `list`.
    pub fn any_in(&self, list: &[String]) -> bool {
        let names = [self.arn, self.access_key_id, self.user_name, self.role_name];
        list.iter().any(|allowed| names.contains(&Some(allowed.as_str())) || self.is_role(allowed))
    }

    /// Whether `arn` is the ARN of the role this principal is a session of.
    fn is_role(&self, arn: &str) -> bool {
        let (Some(role), Some(session)) = (self.role_name, self.arn) else { return false };
        let Some((account, path)) = arn.strip_prefix("arn:").and_then(|rest| rest.split_once(":role/")) else {
            return false;
        };
        let (partition, account) = account.split_once(":iam::").unwrap_or(("", ""));
        let session_account = format!("arn:{partition}:sts::{account}:assumed-role/");
        path.rsplit('/').next() == Some(role) && session.starts_with(&session_account)
    }
}

/// The role name of an assumed-role session ARN, `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`.
fn session_role(arn: &str) -> Option<&str> {
    let (_, rest) = arn.split_once(":assumed-role/")?;
    rest.split('/').next().filter(|name| !name.is_empty())
}

/// The one rule policy: per-rule enablement, principal allowlists and severity overrides.
/// The engine, the correlation pass and the baselines all decide through it.
#[derive(Debug, Clone, Copy)]
pub struct RulePolicy<'s> {
    disabled: &'s HashSet<String>,
    rules: &'s HashMap<String, RuleSettings>,
}

impl RulePolicy<'_> {
    /// Whether the rule is switched on.
    pub fn enabled(&self, rule: &RuleInfo) -> bool {
        !self.disabled.contains(rule.id)
    }

    /// The configured severity replacing the rule's own, if any.
    pub fn severity_override(&self, rule: &RuleInfo) -> Option<Severity> {
        self.rules.get(rule.id).and_then(|r| r.severity)
    }

    /// Whether the rule never reports this principal (it is in the rule's `allow_principals`
    /// by ARN, key id, user name or role name).
    pub fn silences(&self, rule: &RuleInfo, names: &PrincipalNames<'_>) -> bool {
        self.rules.get(rule.id).is_some_and(|r| names.any_in(&r.allow_principals))
    }

    /// Whether a finding of `rule` about `names` is reported at all: the rule is on and the
    /// principal not allowlisted for it.
    pub fn reports(&self, rule: &RuleInfo, names: &PrincipalNames<'_>) -> bool {
        self.enabled(rule) && !self.silences(rule, names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rules::{RANSOMWARE_CHAIN, SSEC_WRITE};

    #[test]
    fn a_role_session_is_named_by_its_role_name_and_role_arn() {
        let session = Principal {
            arn: Some("arn:aws:sts::111122223333:assumed-role/pipeline/i-0abc".into()),
            ..Principal::default()
        };
        let names = PrincipalNames::of_principal(&session);
        assert_eq!(names.role_name, Some("pipeline"));
        for allowed in
            ["pipeline", "arn:aws:iam::111122223333:role/pipeline", "arn:aws:iam::111122223333:role/svc/pipeline"]
        {
            assert!(names.any_in(&[allowed.to_owned()]), "{allowed}");
        }
        for other in ["pipe", "arn:aws:iam::444455556666:role/pipeline", "arn:aws:iam::111122223333:role/pipeline2"] {
            assert!(!names.any_in(&[other.to_owned()]), "{other}");
        }
        let user = Principal { arn: Some("arn:aws:iam::111122223333:user/pipeline".into()), ..Principal::default() };
        assert!(!PrincipalNames::of_principal(&user).any_in(&["arn:aws:iam::111122223333:role/pipeline".into()]));
    }

    #[test]
    fn one_allowlist_entry_silences_a_rule_by_any_name() {
        let mut settings = Settings::default();
        let allow = RuleSettings { severity: Some(Severity::Low), allow_principals: vec!["pipeline".into()] };
        settings.rules.insert(RANSOMWARE_CHAIN.id.into(), allow);
        settings.disabled_rules.insert(SSEC_WRITE.id.into());
        let policy = settings.policy();
        let session = Principal {
            arn: Some("arn:aws:sts::111122223333:assumed-role/pipeline/s1".into()),
            ..Principal::default()
        };
        let other = Principal { arn: Some("arn:aws:iam::111122223333:user/pipeline-admin".into()), ..session.clone() };
        assert!(!policy.reports(&RANSOMWARE_CHAIN, &PrincipalNames::of_principal(&session)));
        assert!(policy.reports(&RANSOMWARE_CHAIN, &PrincipalNames::of_principal(&other)));
        assert!(!policy.reports(&SSEC_WRITE, &PrincipalNames::of_principal(&other)), "disabled");
        assert_eq!(policy.severity_override(&RANSOMWARE_CHAIN), Some(Severity::Low));
    }
}
