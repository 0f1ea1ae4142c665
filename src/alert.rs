//! Findings as SNS alerts (SPEC §3). Pure: no I/O.
//!
//! - The message is the finding JSON, at most [`MAX_MESSAGE_BYTES`] (SNS's limit). A larger one
//!   is trimmed — the object sample first, then the eventID list — and marked
//!   `"truncated": true`; `count` stays exact, so nothing is hidden, only shortened.
//! - The subject is one printable-ASCII line under 100 characters (SNS rejects anything else):
//!   `[CRITICAL] s3.ssec_copy_overwrite: 1,204 objects in my-bucket`.
//! - Message attributes `severity`, `rule`, `family` and `account` let subscriptions filter.
//! - FIFO topics get `MessageGroupId` = rule and `MessageDeduplicationId` = finding id.

use crate::detect::{Finding, Severity};

/// SNS's message size limit.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// SNS subjects must be shorter than 100 characters.
pub const MAX_SUBJECT_CHARS: usize = 99;

/// One SNS publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The finding's id.
    pub finding_id: String,
    /// One line, printable ASCII, under 100 characters.
    pub subject: String,
    /// The finding JSON, at most [`MAX_MESSAGE_BYTES`].
    pub message: String,
    /// `severity`, `rule`, `family`, `account`, `mode` (String attributes).
    pub attributes: Vec<(&'static str, String)>,
    /// FIFO message group (the rule).
    pub group_id: String,
}

/// Renders a finding as an alert.
pub fn render(finding: &Finding) -> Alert {
    Alert {
        finding_id: finding.id.clone(),
        subject: subject(finding),
        message: message(finding),
        attributes: vec![
            ("severity", finding.severity.as_str().to_owned()),
            ("rule", finding.rule.to_owned()),
            ("family", finding.family.as_str().to_owned()),
            ("account", finding.account.clone().filter(|a| !a.is_empty()).unwrap_or_else(|| "unknown".into())),
            ("mode", finding.mode.as_str().to_owned()),
        ],
        group_id: finding.rule.to_owned(),
    }
}

/// The alerts for the findings at or above `at`, each with its dedup key `<finding id>:<count>`
/// (a finding that grew is a new alert).
pub fn alerts_at(findings: &[Finding], at: Severity) -> Vec<(String, Alert)> {
    findings
        .iter()
        .filter(|f| f.severity >= at)
        .map(|f| (format!("{}:{}", f.id, f.evidence.count), render(f)))
        .collect()
}

/// The dedup record of a published alert, kept `ttl_ms` from `now`.
pub fn dedup_record(key: &str, now: i64, ttl_ms: i64) -> crate::state::Write {
    crate::state::Write::put(crate::state::Table::Dedup, key.to_owned(), "1".into(), Some(now + ttl_ms), now)
}

/// `[SEVERITY] rule: summary`, as printable ASCII on one line, cut to fit.
pub fn subject(finding: &Finding) -> String {
    let raw = format!("[{}] {}: {}", finding.severity.as_str().to_ascii_uppercase(), finding.rule, finding.summary);
    let mut line: String = raw
        .chars()
        .map(|c| match c {
            c if c.is_whitespace() => ' ',
            c if c.is_ascii_graphic() => c,
            _ => '?',
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if line.len() > MAX_SUBJECT_CHARS {
        line.truncate(MAX_SUBJECT_CHARS - 3);
        line.push_str("...");
    }
    line
}

/// The finding JSON, trimmed to fit SNS.
pub fn message(finding: &Finding) -> String {
    let text = to_json(finding);
    if text.len() <= MAX_MESSAGE_BYTES {
        return text;
    }
    let mut trimmed = finding.clone();
    trimmed.evidence.details.insert("truncated".into(), serde_json::Value::Bool(true));
    // Halve the longest lists until the message fits; the counts stay exact.
    loop {
        let text = to_json(&trimmed);
        if text.len() <= MAX_MESSAGE_BYTES {
            return text;
        }
        let details = &mut trimmed.evidence.details;
        let sample = details.get_mut("objects").and_then(|o| o.as_array_mut()).filter(|a| !a.is_empty());
        if let Some(sample) = sample {
            sample.truncate(sample.len() / 2);
            details.insert("objects_truncated".into(), serde_json::Value::Bool(true));
        } else if !trimmed.evidence.event_ids.is_empty() {
            let half = trimmed.evidence.event_ids.len() / 2;
            trimmed.evidence.event_ids.truncate(half);
            trimmed.evidence.event_ids_truncated = true;
        } else {
            // Only long scalar details are left (every string is capped at 512 characters, so
            // this needs hundreds of them): drop the details, keep the finding.
            trimmed.evidence.details.retain(|k, _| k == "truncated");
            return to_json(&trimmed);
        }
    }
}

fn to_json(finding: &Finding) -> String {
    // A finding is plain data (strings, numbers, maps with string keys): serializing cannot fail.
    serde_json::to_string(finding).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rules::unreadable_log_file;
    use crate::detect::Mode;

    #[test]
    fn subjects_are_one_short_ascii_line() {
        let mut finding = unreadable_log_file("bucket/key.json.gz", "truncated gzip", 3, Mode::Live);
        finding.summary = "line one\nline two \u{202e} ü ".repeat(20);
        let subject = subject(&finding);
        assert!(subject.starts_with("[MEDIUM] trail.unreadable_log_file: line one line two ? ? line one"), "{subject}");
        assert!(subject.len() <= MAX_SUBJECT_CHARS && subject.chars().all(|c| c.is_ascii_graphic() || c == ' '));
    }

    #[test]
    fn oversize_findings_are_trimmed_and_marked_with_exact_counts() {
        let mut finding = unreadable_log_file("bucket/key.json.gz", "truncated gzip", 3, Mode::Live);
        finding.evidence.event_ids = (0..20_000).map(|i| format!("{i:036}")).collect();
        finding.evidence.count = 20_000;
        let sample: Vec<serde_json::Value> =
            (0..2_000).map(|i| serde_json::json!({"key": format!("{i:0200}"), "bucket": "b"})).collect();
        finding.evidence.details.insert("objects".into(), serde_json::Value::Array(sample));
        let message = message(&finding);
        assert!(message.len() <= MAX_MESSAGE_BYTES, "{}", message.len());
        let value: serde_json::Value = serde_json::from_str(&message).expect("json");
        assert_eq!(value["evidence"]["truncated"], true);
        assert_eq!(value["evidence"]["count"], 20_000);
        let alert = render(&finding);
        assert_eq!(alert.attributes[0], ("severity", "medium".to_owned()));
        assert_eq!(alert.attributes[3], ("account", "unknown".to_owned()));
    }
}
