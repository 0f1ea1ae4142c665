//! `replay --events --where KEY=VALUE`: which raw events to print, and how they are printed.
//!
//! Filters read header fields only (the walker has them without a full parse). The same key
//! given twice matches either value; different keys must all match. `sourceIPAddress` also takes
//! a CIDR. Printed events are the stored record with its secrets redacted: SSH public keys,
//! session tokens, secret keys and passwords, and the values of task-definition environment
//! variables (SPEC: secrets never leave the event).

use serde_json::Value;

use crate::event::Event;
use crate::net::Cidr;

/// The keys `--where` accepts.
pub const KEYS: [&str; 4] = ["accessKeyId", "principal", "sourceIPAddress", "eventName"];

/// A bad `--where` term.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    /// Not `KEY=VALUE`.
    #[error("`{0}` is not KEY=VALUE (keys: accessKeyId, principal, sourceIPAddress, eventName)")]
    Shape(String),
    /// An unknown key.
    #[error("unknown key `{0}` (keys: accessKeyId, principal, sourceIPAddress, eventName)")]
    Key(String),
    /// An empty value.
    #[error("empty value for `{0}`")]
    Empty(String),
}

/// The `--where` terms, grouped by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    access_key_ids: Vec<String>,
    principals: Vec<String>,
    source_ips: Vec<String>,
    source_cidrs: Vec<Cidr>,
    event_names: Vec<String>,
}

impl EventFilter {
    /// Parses the terms (none: every event matches).
    pub fn parse(terms: &[String]) -> Result<EventFilter, FilterError> {
        let mut filter = EventFilter::default();
        for term in terms {
            let (key, value) = term.split_once('=').ok_or_else(|| FilterError::Shape(term.clone()))?;
            let (key, value) = (key.trim(), value.trim());
            if value.is_empty() {
                return Err(FilterError::Empty(key.to_owned()));
            }
            let value = value.to_owned();
            match key {
                "accessKeyId" => filter.access_key_ids.push(value),
                "principal" => filter.principals.push(value),
                "sourceIPAddress" => match value.contains('/').then(|| Cidr::parse(&value)).flatten() {
                    Some(cidr) => filter.source_cidrs.push(cidr),
                    None => filter.source_ips.push(value),
                },
                "eventName" => filter.event_names.push(value),
                other => return Err(FilterError::Key(other.to_owned())),
            }
        }
        Ok(filter)
    }

    /// True when the event satisfies every key given.
    pub fn matches(&self, event: &Event<'_>) -> bool {
        let any = |wanted: &[String], value: Option<&str>| {
            wanted.is_empty() || value.is_some_and(|v| wanted.iter().any(|w| w == v))
        };
        let identity = &event.identity;
        let principal_matches = self.principals.is_empty()
            || [identity.arn, identity.user_name, identity.access_key_id]
                .into_iter()
                .flatten()
                .any(|v| self.principals.iter().any(|w| w == v));
        let source = event.source_ip;
        let source_matches = (self.source_ips.is_empty() && self.source_cidrs.is_empty())
            || source.is_some_and(|s| self.source_ips.iter().any(|w| w == s))
            || source.and_then(Cidr::parse).is_some_and(|ip| self.source_cidrs.iter().any(|c| c.contains(&ip)));
        any(&self.access_key_ids, identity.access_key_id)
            && principal_matches
            && source_matches
            && any(&self.event_names, Some(event.event_name))
    }
}

/// Field names whose values are secrets wherever they appear (compared case-insensitively).
const SECRET_FIELDS: &[&str] =
    &["sshpublickey", "sessiontoken", "secretaccesskey", "password", "passworddata", "privatekey"];
const REDACTED: &str = "[redacted]";

/// The record as printable JSON with secrets replaced by `[redacted]`; `None` when the stored
/// text does not parse (it then is not printed).
pub fn redacted(raw: &[u8]) -> Option<Value> {
    let mut value: Value = serde_json::from_slice(raw).ok()?;
    redact(&mut value);
    Some(value)
}

fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let lower = key.to_ascii_lowercase();
                if SECRET_FIELDS.contains(&lower.as_str()) {
                    *child = Value::String(REDACTED.into());
                } else if lower == "environment" {
                    redact_environment(child);
                } else {
                    redact(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// `environment: [{name, value}]` (ECS) or `{NAME: value}` (Lambda): keep names, drop values.
fn redact_environment(value: &mut Value) {
    match value {
        Value::Array(items) => {
            for item in items {
                if let Some(v) = item.get_mut("value") {
                    *v = Value::String(REDACTED.into());
                }
            }
        }
        Value::Object(map) => map.values_mut().for_each(|v| *v = Value::String(REDACTED.into())),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_parse_and_bad_terms_are_named() {
        let terms = |t: &[&str]| EventFilter::parse(&t.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(terms(&["eventName=CopyObject", "sourceIPAddress=203.0.113.0/24"]).is_ok());
        assert_eq!(terms(&["eventName"]), Err(FilterError::Shape("eventName".into())));
        assert_eq!(terms(&["user=bob"]), Err(FilterError::Key("user".into())));
        assert_eq!(terms(&["principal="]), Err(FilterError::Empty("principal".into())));
    }

    #[test]
    fn secrets_are_redacted_anywhere() {
        let raw = br#"{"requestParameters":{"sSHPublicKey":"ssh-ed25519 AAAA","containerDefinitions":[{"environment":[{"name":"DB","value":"hunter2"}]}]},"responseElements":{"credentials":{"sessionToken":"IQo","accessKeyId":"ASIA1"}}}"#;
        let text = redacted(raw).expect("json").to_string();
        for secret in ["AAAA", "hunter2", "IQo"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(text.contains("\"DB\"") && text.contains("ASIA1"), "{text}");
    }
}
