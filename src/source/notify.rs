//! SQS message bodies → the S3 objects to inspect (SPEC §1.2). Pure: no I/O, no clock.
//!
//! Four envelopes are sniffed, never configured:
//! 1. an S3 event notification (`Records[].s3.bucket.name` / `object.key`), keys form-URL-encoded
//!    (`+` is a space, then percent-decoding);
//! 2. the same inside an SNS envelope (`{"Type":"Notification","Message":"<json>"}`);
//! 3. CloudTrail's own notification (`{"s3Bucket":…,"s3ObjectKey":[…]}`), possibly SNS-wrapped,
//!    keys not encoded;
//! 4. an EventBridge S3 event (`detail.bucket.name` / `detail.object.key`), keys not encoded.
//!
//! Outcomes follow TESTING.md §4: `s3:TestEvent` and empty notifications are acknowledged
//! ([`Notification::Ignore`]); removals and other non-creation events are skipped; digest and
//! Insight objects and keys that are not CloudTrail logs are skipped per key and counted; a key
//! whose encoding is broken is quarantined ([`Target::Unreadable`]); a body that is not JSON or
//! not one of the four shapes is an error, so the message stays on the queue and reaches the
//! dead-letter queue through its redrive policy — it is never deleted unread.

use percent_encoding::percent_decode;
use serde_json::Value;

/// An object named by a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// Bucket.
    pub bucket: String,
    /// Key, decoded.
    pub key: String,
}

/// What to do with one key of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Fetch and inspect it.
    Inspect(ObjectRef),
    /// Skip it by design (digest, Insight, not a CloudTrail log), with the reason; counted.
    Skip(ObjectRef, &'static str),
    /// The key cannot be decoded: quarantine (acknowledge, report) without fetching.
    Unreadable {
        /// Bucket.
        bucket: String,
        /// The key as received.
        raw_key: String,
        /// Why.
        reason: String,
    },
}

/// A parsed message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// Objects to handle, in the order named.
    Objects(Vec<Target>),
    /// Nothing to do (`s3:TestEvent`, empty `Records`, object removals): acknowledge.
    Ignore(&'static str),
}

/// A body that is not a notification this worker understands.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NotificationError {
    /// Not JSON at all.
    #[error("message body is not JSON: {0}")]
    NotJson(String),
    /// JSON, but none of the four envelopes.
    #[error("message body is not an S3, SNS, CloudTrail or EventBridge notification")]
    UnknownShape,
    /// An S3 notification of an event version this worker does not know.
    #[error("unsupported S3 event version `{0}`")]
    UnsupportedVersion(String),
}

/// Parses an SQS message body.
pub fn parse(body: &str) -> Result<Notification, NotificationError> {
    let value: Value = serde_json::from_str(body).map_err(|e| NotificationError::NotJson(e.to_string()))?;
    parse_value(&value, 0)
}

fn parse_value(value: &Value, depth: u8) -> Result<Notification, NotificationError> {
    // SNS envelope: the notification is the JSON text in `Message` (one level only).
    if value.get("Type").and_then(Value::as_str) == Some("Notification") && depth == 0 {
        let message = value.get("Message").and_then(Value::as_str).ok_or(NotificationError::UnknownShape)?;
        let inner: Value = serde_json::from_str(message).map_err(|e| NotificationError::NotJson(e.to_string()))?;
        return parse_value(&inner, depth + 1);
    }
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Notification::Ignore("s3:TestEvent"));
    }
    if let Some(records) = value.get("Records") {
        return s3_records(records);
    }
    if let Some(bucket) = value.get("s3Bucket").and_then(Value::as_str) {
        let keys = value.get("s3ObjectKey").and_then(Value::as_array).ok_or(NotificationError::UnknownShape)?;
        let targets: Vec<Target> =
            keys.iter().filter_map(Value::as_str).map(|key| classify(bucket, key.to_owned())).collect();
        return Ok(objects_or_ignore(targets));
    }
    if value.get("source").and_then(Value::as_str) == Some("aws.s3") {
        return event_bridge(value);
    }
    Err(NotificationError::UnknownShape)
}

fn objects_or_ignore(targets: Vec<Target>) -> Notification {
    if targets.is_empty() {
        Notification::Ignore("no objects")
    } else {
        Notification::Objects(targets)
    }
}

fn s3_records(records: &Value) -> Result<Notification, NotificationError> {
    let records = records.as_array().ok_or(NotificationError::UnknownShape)?;
    let mut targets = Vec::new();
    for record in records {
        let source = record.get("eventSource").and_then(Value::as_str);
        if source != Some("aws:s3") {
            return Err(NotificationError::UnknownShape);
        }
        let version = record.get("eventVersion").and_then(Value::as_str).unwrap_or("2.1");
        if !version.starts_with("2.") {
            return Err(NotificationError::UnsupportedVersion(crate::finding::clean(version)));
        }
        let name = record.get("eventName").and_then(Value::as_str).unwrap_or("");
        if !name.starts_with("ObjectCreated:") {
            continue; // Removals, restores, replication: nothing new to read.
        }
        let s3 = record.get("s3").ok_or(NotificationError::UnknownShape)?;
        let bucket = s3.pointer("/bucket/name").and_then(Value::as_str).ok_or(NotificationError::UnknownShape)?;
        let raw_key = s3.pointer("/object/key").and_then(Value::as_str).ok_or(NotificationError::UnknownShape)?;
        targets.push(match decode_form_key(raw_key) {
            Ok(key) => classify(bucket, key),
            Err(reason) => Target::Unreadable {
                bucket: bucket.to_owned(),
                raw_key: raw_key.to_owned(),
                reason: reason.to_string(),
            },
        });
    }
    Ok(objects_or_ignore(targets))
}

fn event_bridge(value: &Value) -> Result<Notification, NotificationError> {
    let kind = value.get("detail-type").and_then(Value::as_str).unwrap_or("");
    if kind != "Object Created" {
        return Ok(Notification::Ignore("not an object creation"));
    }
    let detail = value.get("detail").ok_or(NotificationError::UnknownShape)?;
    let bucket = detail.pointer("/bucket/name").and_then(Value::as_str).ok_or(NotificationError::UnknownShape)?;
    let key = detail.pointer("/object/key").and_then(Value::as_str).ok_or(NotificationError::UnknownShape)?;
    Ok(Notification::Objects(vec![classify(bucket, key.to_owned())]))
}

/// Decodes an S3 notification key: `+` is a space, then percent-decoding; the result must be
/// UTF-8 and the escapes well formed.
pub fn decode_form_key(raw: &str) -> Result<String, KeyError> {
    let bytes = raw.as_bytes();
    for (i, byte) in bytes.iter().enumerate() {
        if *byte == b'%' {
            let hex = bytes.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return Err(KeyError::BadPercent { at: i });
            }
        }
    }
    let spaced = raw.replace('+', " ");
    percent_decode(spaced.as_bytes()).decode_utf8().map(|key| key.into_owned()).map_err(|_| KeyError::NotUtf8)
}

/// Why an encoded object key cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A `%` not followed by two hex digits.
    #[error("invalid percent-encoding at byte {at}")]
    BadPercent {
        /// Byte offset of the `%`.
        at: usize,
    },
    /// The decoded bytes are not UTF-8.
    #[error("key is not UTF-8 after percent-decoding")]
    NotUtf8,
}

/// Decides whether a key is a CloudTrail log object to inspect.
pub fn classify(bucket: &str, key: String) -> Target {
    let object = ObjectRef { bucket: bucket.to_owned(), key };
    let key = object.key.as_str();
    if key.contains("/CloudTrail-Digest/") || key.starts_with("CloudTrail-Digest/") {
        return Target::Skip(object, "digest");
    }
    if key.contains("/CloudTrail-Insight/") || key.starts_with("CloudTrail-Insight/") {
        return Target::Skip(object, "insight");
    }
    if key.ends_with('/') || !(key.ends_with(".json.gz") || key.ends_with(".json") || key.ends_with(".gz")) {
        return Target::Skip(object, "not a CloudTrail log object");
    }
    Target::Inspect(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/01/111122223333_CloudTrail_us-east-1_20261101T1005Z_abc.json.gz";

    fn inspect(bucket: &str, key: &str) -> Target {
        Target::Inspect(ObjectRef { bucket: bucket.into(), key: key.into() })
    }

    #[test]
    fn all_four_envelopes() {
        let s3 = format!(
            r#"{{"Records":[{{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{{"bucket":{{"name":"trail"}},"object":{{"key":"{}"}}}}}}]}}"#,
            KEY.replace('/', "%2F")
        );
        assert_eq!(parse(&s3), Ok(Notification::Objects(vec![inspect("trail", KEY)])));
        let sns = serde_json::json!({"Type": "Notification", "Message": s3}).to_string();
        assert_eq!(parse(&sns), Ok(Notification::Objects(vec![inspect("trail", KEY)])));
        let native = serde_json::json!({"s3Bucket": "trail", "s3ObjectKey": [KEY, KEY.replace("abc", "def")]});
        let Ok(Notification::Objects(targets)) = parse(&native.to_string()) else { panic!("native") };
        assert_eq!(targets.len(), 2);
        let native_in_sns = serde_json::json!({"Type": "Notification", "Message": native.to_string()}).to_string();
        assert!(matches!(parse(&native_in_sns), Ok(Notification::Objects(t)) if t.len() == 2));
        let bridge = serde_json::json!({"detail-type": "Object Created", "source": "aws.s3",
            "detail": {"bucket": {"name": "trail"}, "object": {"key": KEY}}});
        assert_eq!(parse(&bridge.to_string()), Ok(Notification::Objects(vec![inspect("trail", KEY)])));
    }

    #[test]
    fn keys_are_form_decoded_and_bad_encodings_quarantined() {
        assert_eq!(decode_form_key("a+b%2Bc+%C3%BC%3D%25.json.gz").as_deref(), Ok("a b+c ü=%.json.gz"));
        assert!(decode_form_key("bad%zz.json.gz").is_err());
        assert!(decode_form_key("trail%").is_err());
        assert!(decode_form_key("%FF%FE.json.gz").is_err());
        let body = r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"x%G1.json.gz"}}}]}"#;
        assert!(matches!(parse(body), Ok(Notification::Objects(t)) if matches!(t[0], Target::Unreadable { .. })));
    }

    #[test]
    fn outcomes_of_odd_bodies() {
        assert!(matches!(parse("not json"), Err(NotificationError::NotJson(_))));
        assert_eq!(parse(r#"{"hello":"world"}"#), Err(NotificationError::UnknownShape));
        assert_eq!(
            parse(r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#),
            Ok(Notification::Ignore("s3:TestEvent"))
        );
        assert_eq!(parse(r#"{"Records":[]}"#), Ok(Notification::Ignore("no objects")));
        let removed = r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"k.json.gz"}}}]}"#;
        assert_eq!(parse(removed), Ok(Notification::Ignore("no objects")));
        let future =
            r#"{"Records":[{"eventVersion":"3.0","eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{}}]}"#;
        assert_eq!(parse(future), Err(NotificationError::UnsupportedVersion("3.0".into())));
        let digest = "AWSLogs/1/CloudTrail-Digest/us-east-1/2026/11/01/x.json.gz";
        assert!(matches!(classify("b", digest.into()), Target::Skip(_, "digest")));
        assert!(matches!(classify("b", "AWSLogs/1/CloudTrail-Insight/x.json.gz".into()), Target::Skip(_, "insight")));
        assert!(matches!(classify("b", "readme.txt".into()), Target::Skip(_, "not a CloudTrail log object")));
    }
}
