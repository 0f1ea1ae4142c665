//! The SNS sink: findings as SNS alerts (SPEC §3), published with `PublishBatch`. The rendering
//! is pure; [`SnsSink`] does the calls.
//!
//! - The message is the finding JSON, at most [`MAX_MESSAGE_BYTES`] (SNS's limit). A larger one
//!   is trimmed — the object sample first, then the eventID list — and marked
//!   `"truncated": true`; `count` stays exact, so nothing is hidden, only shortened.
//! - The subject is one printable-ASCII line under 100 characters (SNS rejects anything else):
//!   `[CRITICAL] s3.ssec_copy_overwrite: 1,204 objects in my-bucket`.
//! - Message attributes `severity`, `rule`, `family` and `account` let subscriptions filter.
//! - FIFO topics get `MessageGroupId` = rule and `MessageDeduplicationId` = finding id.

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};

use super::{dedup, Delivery, Sink, SinkError};
use crate::finding::Finding;

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
    message_within(finding, MAX_MESSAGE_BYTES)
}

/// The finding JSON in at most `max` bytes: sample lists and eventIDs are halved until it fits
/// (marked `truncated`, counts exact).
pub fn message_within(finding: &Finding, max: usize) -> String {
    let text = to_json(finding);
    if text.len() <= max {
        return text;
    }
    let mut trimmed = finding.clone();
    trimmed.evidence.details.insert("truncated".into(), serde_json::Value::Bool(true));
    // Halve the longest lists until the message fits; the counts stay exact.
    loop {
        let text = to_json(&trimmed);
        if text.len() <= max {
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

/// Entries per `PublishBatch` call.
pub const PUBLISH_BATCH: usize = 10;

/// An SNS topic as a [`Sink`].
#[derive(Debug, Clone)]
pub struct SnsSink {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsSink {
    /// Publishes to `topic_arn` (a FIFO topic when it ends in `.fifo`).
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> SnsSink {
        SnsSink { client, topic_arn: topic_arn.into() }
    }

    /// The topic.
    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }

    async fn publish(&self, findings: &[&Finding]) -> Result<(), SinkError> {
        let fifo = self.topic_arn.ends_with(".fifo");
        let entries = findings
            .iter()
            .enumerate()
            .map(|(i, finding)| batch_entry(i, finding, fifo))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| SinkError::Build { sink: "sns", source: Box::new(source) })?;
        let output = self
            .client
            .publish_batch()
            .topic_arn(&self.topic_arn)
            .set_publish_batch_request_entries(Some(entries))
            .send()
            .await
            .map_err(|source| SinkError::Call { sink: "sns", target: self.topic_arn.clone(), source: source.into() })?;
        match output.failed.as_ref().filter(|f| !f.is_empty()) {
            Some(failed) => Err(SinkError::Refused {
                sink: "sns",
                target: self.topic_arn.clone(),
                refused: failed.len(),
                sent: findings.len(),
                code: failed[0].code.clone(),
                message: failed[0].message.clone().unwrap_or_default(),
            }),
            None => Ok(()),
        }
    }
}

impl Sink for SnsSink {
    fn name(&self) -> &'static str {
        "sns"
    }

    fn batch_size(&self) -> usize {
        PUBLISH_BATCH
    }

    fn deliver<'a>(&'a self, findings: &'a [&'a Finding]) -> Delivery<'a> {
        Box::pin(self.publish(findings))
    }
}

/// One entry: the rendered alert; on a FIFO topic the dedup key (finding id and count) is the
/// deduplication id.
fn batch_entry(
    index: usize,
    finding: &Finding,
    fifo: bool,
) -> Result<PublishBatchRequestEntry, aws_sdk_sns::error::BuildError> {
    let alert = render(finding);
    let mut entry =
        PublishBatchRequestEntry::builder().id(format!("a{index}")).subject(&alert.subject).message(&alert.message);
    for (name, value) in &alert.attributes {
        let attribute = MessageAttributeValue::builder().data_type("String").string_value(value).build()?;
        entry = entry.message_attributes(*name, attribute);
    }
    if fifo {
        entry = entry.message_group_id(&alert.group_id).message_deduplication_id(fifo_dedup_id(&dedup::key(finding)));
    }
    entry.build()
}

/// A FIFO deduplication id: at most 128 characters of `[A-Za-z0-9!-~]`.
fn fifo_dedup_id(key: &str) -> String {
    key.chars().filter(|c| c.is_ascii_graphic()).take(128).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rules::unreadable_log_file;
    use crate::finding::Mode;

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
