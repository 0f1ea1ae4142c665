//! The finding: schema `trailhound.finding/v1`, its deterministic id, and the escaping of
//! attacker-controlled strings.
//!
//! Findings own their strings (events borrow from a decode buffer that is reused). Every string
//! that came from an event passes through [`clean`] when the finding is built, so no output —
//! JSON lines, the terminal table, an SNS alert or a log line — can carry raw control characters,
//! ANSI escapes, bidi overrides or zero-width characters, and long values are truncated with a
//! marker. Request and response bodies are never copied wholesale: detectors pick named fields,
//! which is how task-definition environment values and SSH public keys stay out.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::KeyKind;

/// The schema id written in every finding.
pub const SCHEMA: &str = "trailhound.finding/v1";

/// Longest string copied from an event into a finding, in characters.
pub const MAX_FIELD_CHARS: usize = 512;

/// Severity, ordered from `info` to `critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Context only.
    Info,
    /// Worth a look.
    Low,
    /// Investigate.
    Medium,
    /// Investigate now.
    High,
    /// An attack in progress is likely.
    Critical,
}

impl Severity {
    /// All severities, lowest first.
    pub const ALL: [Severity; 5] =
        [Severity::Info, Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    /// One level lower (`info` stays `info`): the rule for failed calls.
    pub fn lowered(self) -> Severity {
        match self {
            Severity::Critical => Severity::High,
            Severity::High => Severity::Medium,
            Severity::Medium => Severity::Low,
            Severity::Low | Severity::Info => Severity::Info,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses a lowercase (or any-case) name.
    pub fn parse(text: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Detection family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Family {
    /// S3 ransomware with SSE-C (SPEC §2.1).
    #[serde(rename = "s3-ransomware")]
    S3Ransomware,
    /// Interactive access that bypasses Systems Manager (§2.2).
    #[serde(rename = "interactive-access")]
    InteractiveAccess,
    /// Unusual use of long-term access keys (§2.3).
    #[serde(rename = "access-keys")]
    AccessKeys,
    /// Exposure drift, as Security Hub flags it (§2.4).
    #[serde(rename = "exposure")]
    Exposure,
    /// The integrity of the log itself: trail tampering (§2.1) and unreadable log objects (§4).
    #[serde(rename = "log-integrity")]
    LogIntegrity,
}

impl Family {
    /// The name used in findings.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::S3Ransomware => "s3-ransomware",
            Family::InteractiveAccess => "interactive-access",
            Family::AccessKeys => "access-keys",
            Family::Exposure => "exposure",
            Family::LogIntegrity => "log-integrity",
        }
    }
}

/// Whether the call behind the finding succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The call succeeded.
    Success,
    /// The call failed (`errorCode` present); severity one level lower unless the rule says.
    Failure,
}

/// How the events reached trailhound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The daemon.
    Live,
    /// A backfill.
    Backfill,
    /// An incident replay.
    Replay,
    /// `trailhound scan`.
    Scan,
}

impl Mode {
    /// The name used in findings and alert attributes.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Backfill => "backfill",
            Mode::Replay => "replay",
            Mode::Scan => "scan",
        }
    }
}

/// The principal that made the call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// `userIdentity.type`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The principal ARN.
    pub arn: Option<String>,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// `long_term`, `temporary` or `none`.
    pub key_kind: Option<KeyKind>,
    /// The IAM user name.
    pub user_name: Option<String>,
}

impl Principal {
    /// The identity behind the principal, as [`crate::event::Event::principal_identity`] gives
    /// it for the event: a role, not its session (the ARN, else the key id, else the user name).
    pub fn identity(&self) -> Option<String> {
        let named = self.arn.as_ref().or(self.access_key_id.as_ref()).or(self.user_name.as_ref())?;
        Some(crate::event::principal_identity(named).into_owned())
    }
}

/// A resource the finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// CloudFormation-style type, e.g. `AWS::S3::Object`.
    #[serde(rename = "type")]
    pub kind: Cow<'static, str>,
    /// Id or ARN.
    pub id: String,
}

/// The events a finding rests on, plus rule-specific details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The eventIDs, sorted.
    pub event_ids: Vec<String>,
    /// How many events the finding covers.
    pub count: u64,
    /// True when `event_ids` was cut at the cap of an aggregated finding (`count` is exact).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub event_ids_truncated: bool,
    /// Rule-specific details (ports, CIDRs, keys, reasons …), every string cleaned.
    #[serde(flatten)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl Evidence {
    /// Sets the cited eventIDs, at most `cap`: the `defining` ones (a chain's components, a
    /// burst's first and last event) are always kept, then as many of `rest` as fit; the list
    /// is sorted and `event_ids_truncated` says whether some were left out.
    pub fn set_event_ids(&mut self, defining: Vec<String>, rest: impl IntoIterator<Item = String>, cap: usize) {
        let mut kept: Vec<String> = defining;
        kept.sort_unstable();
        kept.dedup();
        kept.truncate(cap);
        let mut others: Vec<String> = rest.into_iter().filter(|id| kept.binary_search(id).is_err()).collect();
        others.sort_unstable();
        others.dedup();
        self.event_ids_truncated = kept.len() + others.len() > cap;
        others.truncate(cap - kept.len());
        kept.extend(others);
        kept.sort_unstable();
        self.event_ids = kept;
    }
}

/// One finding, schema `trailhound.finding/v1`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// Deterministic: a hash of the rule id and the sorted eventIDs.
    pub id: String,
    /// Rule id, e.g. `s3.ssec_copy_overwrite`.
    pub rule: &'static str,
    /// Family.
    pub family: Family,
    /// Severity after failure lowering and configuration overrides.
    pub severity: Severity,
    /// Rule title.
    pub title: &'static str,
    /// One sentence: who did what to which resource.
    pub summary: String,
    /// Success or failure of the call.
    pub outcome: Outcome,
    /// Event time of the first event (RFC 3339).
    pub first_seen: Option<String>,
    /// Event time of the last event (RFC 3339).
    pub last_seen: Option<String>,
    /// Account id.
    pub account: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Who.
    pub principal: Principal,
    /// `sourceIPAddress`.
    pub source_ip: Option<String>,
    /// `userAgent`, cleaned and truncated.
    pub user_agent: Option<String>,
    /// What it was done to.
    pub resources: Vec<Resource>,
    /// The proof.
    pub evidence: Evidence,
    /// Security Hub control ids.
    pub controls: &'static [&'static str],
    /// MITRE ATT&CK technique ids.
    pub mitre: &'static [&'static str],
    /// What to do, from AWS guidance.
    pub remediation: &'static str,
    /// The file or S3 object the events came from.
    pub origin: String,
    /// How the events reached trailhound.
    pub mode: Mode,
    /// The API call of the finding's first event; not part of schema v1 (the OCSF and ASFF
    /// renderings use it).
    #[serde(skip)]
    pub api: Option<Api>,
    /// Event time in milliseconds, for ordering; not serialized.
    #[serde(skip)]
    pub sort_time: i64,
    /// Set while the finding waits for the aggregation pass; not serialized.
    #[serde(skip)]
    pub pending: Option<Pending>,
    /// True when the finding was carried over from earlier input (reported then, not again);
    /// not serialized.
    #[serde(skip)]
    pub carried: bool,
}

/// The API call behind a finding: `eventName` at `eventSource`, both cleaned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Api {
    /// `eventName`, e.g. `CopyObject`.
    pub operation: String,
    /// `eventSource`, e.g. `s3.amazonaws.com`.
    pub service: String,
}

/// A finding as the state store keeps it between runs: every owned field, the rule by id (its
/// static fields come from the catalogue again), and the pass-internal fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredFinding {
    rule: String,
    id: String,
    severity: Severity,
    summary: String,
    outcome: Outcome,
    first_seen: Option<String>,
    last_seen: Option<String>,
    account: Option<String>,
    region: Option<String>,
    principal: Principal,
    source_ip: Option<String>,
    user_agent: Option<String>,
    resources: Vec<Resource>,
    evidence: Evidence,
    origin: String,
    mode: Mode,
    sort_time: i64,
    pending: Option<Pending>,
    /// Absent in state written before it existed.
    #[serde(default)]
    api: Option<Api>,
}

impl StoredFinding {
    /// The rule id.
    pub fn rule(&self) -> &str {
        &self.rule
    }
}

impl Finding {
    /// The stored form.
    pub fn to_stored(&self) -> StoredFinding {
        StoredFinding {
            rule: self.rule.to_owned(),
            id: self.id.clone(),
            severity: self.severity,
            summary: self.summary.clone(),
            outcome: self.outcome,
            first_seen: self.first_seen.clone(),
            last_seen: self.last_seen.clone(),
            account: self.account.clone(),
            region: self.region.clone(),
            principal: self.principal.clone(),
            source_ip: self.source_ip.clone(),
            user_agent: self.user_agent.clone(),
            resources: self.resources.clone(),
            evidence: self.evidence.clone(),
            origin: self.origin.clone(),
            mode: self.mode,
            sort_time: self.sort_time,
            pending: self.pending.clone(),
            api: self.api.clone(),
        }
    }

    /// Back from the stored form, with the static fields of `rule` (which must be its rule),
    /// marked as carried.
    pub fn from_stored(stored: StoredFinding, rule: &'static RuleInfo) -> Finding {
        Finding {
            schema: SCHEMA,
            id: stored.id,
            rule: rule.id,
            family: rule.family,
            severity: stored.severity,
            title: rule.title,
            summary: stored.summary,
            outcome: stored.outcome,
            first_seen: stored.first_seen,
            last_seen: stored.last_seen,
            account: stored.account,
            region: stored.region,
            principal: stored.principal,
            source_ip: stored.source_ip,
            user_agent: stored.user_agent,
            resources: stored.resources,
            evidence: stored.evidence,
            controls: rule.controls,
            mitre: rule.mitre,
            remediation: rule.remediation,
            origin: stored.origin,
            mode: stored.mode,
            api: stored.api,
            sort_time: stored.sort_time,
            pending: stored.pending,
            carried: true,
        }
    }
}

/// A finding of an aggregating rule, before [`crate::analyze::aggregate`] runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Events of one group aggregate together (principal, or principal and bucket …).
    pub group: String,
    /// How.
    pub kind: PendingKind,
}

/// The aggregation a pending finding waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PendingKind {
    /// The first alerts at once; the rest within the window become one update.
    Merge {
        /// Event-time window.
        window_minutes: i64,
    },
    /// `threshold` within the window make one finding; fewer make none.
    Burst {
        /// Events needed.
        threshold: usize,
        /// Event-time window.
        window_minutes: i64,
    },
}

/// The deterministic finding id: SHA-256 over the rule id and the sorted, de-duplicated eventIDs
/// (or, for findings without events, another stable key such as the object name), 32 hex digits.
pub fn finding_id(rule: &str, keys: &[&str]) -> String {
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut hasher = Sha256::new();
    hasher.update(rule.as_bytes());
    for key in sorted {
        hasher.update(b"\n");
        hasher.update(key.as_bytes());
    }
    crate::hash::sha256_hex(hasher)
}

/// Makes an attacker-controlled string safe for any output: control characters, ANSI escapes
/// (their ESC), bidi controls and zero-width characters become visible `\u{…}` escapes, and text
/// past [`MAX_FIELD_CHARS`] characters is cut with a `…[truncated N chars]` marker.
pub fn clean(text: &str) -> String {
    // Fast path: short printable ASCII, the shape of nearly every CloudTrail value.
    if text.len() <= MAX_FIELD_CHARS && text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return text.to_owned();
    }
    let total = text.chars().count();
    if total <= MAX_FIELD_CHARS && !text.chars().any(is_unsafe_char) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len().min(MAX_FIELD_CHARS * 4));
    for c in text.chars().take(MAX_FIELD_CHARS) {
        if is_unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    if total > MAX_FIELD_CHARS {
        out.push_str(&format!("…[truncated {} chars]", total - MAX_FIELD_CHARS));
    }
    out
}

/// [`clean`] over an optional string.
pub fn clean_opt(text: Option<&str>) -> Option<String> {
    text.map(clean)
}

/// Characters escaped in every output: controls (C0, DEL, C1), bidi controls and overrides,
/// zero-width and invisible formatting characters (soft hyphen, Mongolian vowel separator, word
/// joiners, BOM), line and paragraph separators (U+2028/2029 end a line in JavaScript and some
/// log viewers), and tag characters (U+E0000-E007F, invisible text smuggled into a string).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// What happens when the call behind a matching event failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Report one severity level lower, tagged `outcome: failure` (SPEC §2 default).
    Lower,
    /// Not a finding on its own: `threshold` failures by one group (principal by default) within
    /// `window_minutes` of event time make one finding, at the rule's severity (e.g. password
    /// spraying with `GetPasswordData`, enumeration with a stolen key).
    Burst {
        /// Failures needed.
        threshold: usize,
        /// Event-time window.
        window_minutes: i64,
    },
    /// One level lower like [`OnFailure::Lower`], and every failure by one group within
    /// `window_minutes` of the previous one folds into one finding (retries of a refused trail
    /// change are one attempt, not one finding each).
    LowerGrouped {
        /// Event-time window.
        window_minutes: i64,
    },
}

/// A rule's fixed description.
#[derive(Debug)]
pub struct RuleInfo {
    /// Rule id, e.g. `ec2.remote_admin_port_open`.
    pub id: &'static str,
    /// Family.
    pub family: Family,
    /// Default severity (a detector may choose another per hit, e.g. world vs private CIDR).
    pub severity: Severity,
    /// Short title.
    pub title: &'static str,
    /// One line: when it fires.
    pub description: &'static str,
    /// One paragraph from AWS guidance.
    pub remediation: &'static str,
    /// MITRE ATT&CK technique ids.
    pub mitre: &'static [&'static str],
    /// Security Hub control ids.
    pub controls: &'static [&'static str],
    /// Failed-call policy.
    pub on_failure: OnFailure,
    /// When set, hits are aggregated per group over this event-time window: the first alerts at
    /// once and the rest of the burst becomes one update finding (SSE-C writes, SPEC §2.1).
    pub merge_window_minutes: Option<i64>,
}

impl Finding {
    /// Turns this finding into one of `rule`, resting on the events `keys` identify: the rule's
    /// fields, severity and a fresh deterministic id. Used by the passes that derive findings
    /// from others (baselines, the ransomware chain).
    pub fn restamp(&mut self, rule: &'static RuleInfo, keys: &[&str]) {
        self.id = finding_id(rule.id, keys);
        self.rule = rule.id;
        self.family = rule.family;
        self.severity = rule.severity;
        self.title = rule.title;
        self.remediation = rule.remediation;
        self.mitre = rule.mitre;
        self.controls = rule.controls;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_order_independent_and_rule_specific() {
        let a = finding_id("r", &["e2", "e1", "e1"]);
        assert_eq!(a, finding_id("r", &["e1", "e2"]));
        assert_ne!(a, finding_id("s", &["e1", "e2"]));
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn clean_escapes_terminal_tricks_and_truncates() {
        assert_eq!(clean("aws-cli/2.0"), "aws-cli/2.0");
        assert_eq!(clean("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(clean("x\r\ny"), "x\\u{d}\\u{a}y");
        assert_eq!(clean("evil\u{202E}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(clean("zero\u{200B}width"), "zero\\u{200b}width");
        // Issue 16: these passed raw into findings.
        for (raw, escaped) in [
            ("a\u{2028}b", "a\\u{2028}b"),
            ("a\u{2029}b", "a\\u{2029}b"),
            ("soft\u{AD}hyphen", "soft\\u{ad}hyphen"),
            ("mongolian\u{180E}sep", "mongolian\\u{180e}sep"),
            ("tag\u{E0041}s", "tag\\u{e0041}s"),
            ("c1\u{85}\u{9b}", "c1\\u{85}\\u{9b}"),
            ("del\u{7f}", "del\\u{7f}"),
        ] {
            assert_eq!(clean(raw), escaped);
        }
        let long = "a".repeat(MAX_FIELD_CHARS + 10);
        let cleaned = clean(&long);
        assert!(cleaned.starts_with(&"a".repeat(MAX_FIELD_CHARS)));
        assert!(cleaned.ends_with("…[truncated 10 chars]"), "{cleaned}");
    }
}
