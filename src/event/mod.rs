//! The CloudTrail event view: a borrowed, typed look at one record.
//!
//! Built in one pass over the record's top-level keys, so detectors never search the record
//! again for the common fields. Every field CloudTrail may omit is an `Option`; free-form bodies
//! (`requestParameters`, `responseElements`, `additionalEventData`) stay as borrowed JSON and are
//! read through [`shape`], which absorbs the XML-rendering quirks. Strings borrow from the decode
//! buffer: nothing is copied unless a finding is made.

pub mod shape;
pub mod time;

use simd_json::prelude::*;

pub use shape::Json;
use time::Millis;

/// Why a record could not become an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The record is not a JSON object (a number, string, null or array).
    #[error("record is not a JSON object")]
    NotAnObject,
    /// `eventName` is missing or not a string.
    #[error("record has no string `eventName`")]
    MissingEventName,
}

/// Who made the call (`userIdentity`).
#[derive(Debug, Clone, Copy, Default)]
pub struct UserIdentity<'a> {
    /// `Root`, `IAMUser`, `AssumedRole`, `FederatedUser`, `AWSService`, …
    pub kind: Option<&'a str>,
    /// The principal ARN.
    pub arn: Option<&'a str>,
    /// `AKIA…` (long-term) or `ASIA…` (temporary) key id.
    pub access_key_id: Option<&'a str>,
    /// IAM user name (for `IAMUser`/`Root`).
    pub user_name: Option<&'a str>,
    /// Account of the principal.
    pub account_id: Option<&'a str>,
    /// Set when an AWS service made the call on the principal's behalf.
    pub invoked_by: Option<&'a str>,
    /// For roles: the issuing role's name (`sessionContext.sessionIssuer.userName`).
    pub session_issuer_name: Option<&'a str>,
}

/// What kind of access key signed the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// `AKIA…`: an IAM user's or the root user's long-term key.
    LongTerm,
    /// `ASIA…`: STS temporary credentials.
    Temporary,
    /// No key, or a placeholder that is neither.
    None,
}

/// One CloudTrail record.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// `eventID`, the identity of an event.
    pub event_id: Option<&'a str>,
    /// `eventTime` as written.
    pub event_time_raw: Option<&'a str>,
    /// `eventTime` parsed, when it parses.
    pub event_time: Option<Millis>,
    /// `eventName`, e.g. `CopyObject`.
    pub event_name: &'a str,
    /// `eventSource`, e.g. `s3.amazonaws.com`.
    pub event_source: Option<&'a str>,
    /// `eventType`: `AwsApiCall`, `AwsServiceEvent`, …
    pub event_type: Option<&'a str>,
    /// `eventCategory`: `Management`, `Data`, `Insight`.
    pub event_category: Option<&'a str>,
    /// `awsRegion`.
    pub region: Option<&'a str>,
    /// `sourceIPAddress` (an IP, or a service name such as `ec2.amazonaws.com`).
    pub source_ip: Option<&'a str>,
    /// `userAgent` (attacker-controlled).
    pub user_agent: Option<&'a str>,
    /// `errorCode`; a failed call when present.
    pub error_code: Option<&'a str>,
    /// `recipientAccountId`.
    pub recipient_account: Option<&'a str>,
    /// `userIdentity`.
    pub identity: UserIdentity<'a>,
    /// `requestParameters`.
    pub request: Option<Json<'a>>,
    /// `responseElements`.
    pub response: Option<Json<'a>>,
    /// `additionalEventData`.
    pub additional: Option<Json<'a>>,
}

impl<'a> Event<'a> {
    /// Reads the fields of one record. Values of the wrong type count as absent, so a
    /// `userIdentity: "x"` or `eventTime: 1700000000` record is still inspected on what it has.
    pub fn from_json(record: Json<'a>) -> Result<Self, RecordError> {
        let object = record.as_object().ok_or(RecordError::NotAnObject)?;
        let mut event = Event {
            event_id: None,
            event_time_raw: None,
            event_time: None,
            event_name: "",
            event_source: None,
            event_type: None,
            event_category: None,
            region: None,
            source_ip: None,
            user_agent: None,
            error_code: None,
            recipient_account: None,
            identity: UserIdentity::default(),
            request: None,
            response: None,
            additional: None,
        };
        let mut name = None;
        // Duplicate keys: the first one wins, consistently for every field.
        for (key, value) in object.iter() {
            let s = || value.into_string();
            match key {
                "eventID" => event.event_id = event.event_id.or(s()),
                "eventTime" => event.event_time_raw = event.event_time_raw.or(s()),
                "eventName" => name = name.or(s()),
                "eventSource" => event.event_source = event.event_source.or(s()),
                "eventType" => event.event_type = event.event_type.or(s()),
                "eventCategory" => event.event_category = event.event_category.or(s()),
                "awsRegion" => event.region = event.region.or(s()),
                "sourceIPAddress" => event.source_ip = event.source_ip.or(s()),
                "userAgent" => event.user_agent = event.user_agent.or(s()),
                "errorCode" => event.error_code = event.error_code.or(s()).filter(|c| !c.is_empty()),
                "recipientAccountId" => event.recipient_account = event.recipient_account.or(s()),
                "userIdentity" if value.is_object() && event.identity.kind.is_none() => {
                    event.identity = identity(value)
                }
                "requestParameters" if value.is_object() => event.request = event.request.or(Some(value)),
                "responseElements" if value.is_object() => event.response = event.response.or(Some(value)),
                "additionalEventData" if value.is_object() => event.additional = event.additional.or(Some(value)),
                _ => {}
            }
        }
        event.event_name = name.ok_or(RecordError::MissingEventName)?;
        event.event_time = event.event_time_raw.and_then(time::parse_rfc3339);
        Ok(event)
    }

    /// The service part of `eventSource` (`s3` for `s3.amazonaws.com`).
    pub fn service(&self) -> &'a str {
        let source = self.event_source.unwrap_or("");
        source.strip_suffix(".amazonaws.com").unwrap_or(source)
    }

    /// True when the call failed (`errorCode` present).
    pub fn failed(&self) -> bool {
        self.error_code.is_some()
    }

    /// Long-term, temporary or no key, by prefix together with the identity type.
    pub fn key_kind(&self) -> KeyKind {
        match self.identity.access_key_id {
            Some(k) if k.starts_with("AKIA") && self.identity.kind != Some("AssumedRole") => KeyKind::LongTerm,
            Some(k) if k.starts_with("ASIA") => KeyKind::Temporary,
            _ => KeyKind::None,
        }
    }

    /// Made by an AWS service on the principal's behalf (not key usage by a person).
    pub fn is_service_call(&self) -> bool {
        self.identity.invoked_by.is_some()
            || self.event_type == Some("AwsServiceEvent")
            || self.identity.kind == Some("AWSService")
    }

    /// An S3 object-level (data) event: `eventCategory: Data`, or, in records that predate that
    /// field, an object-level API name.
    pub fn is_s3_data_event(&self) -> bool {
        if self.service() != "s3" {
            return false;
        }
        match self.event_category {
            Some(category) => category == "Data",
            None => S3_OBJECT_APIS.contains(&self.event_name),
        }
    }

    /// The account the event belongs to.
    pub fn account(&self) -> Option<&'a str> {
        self.recipient_account.or(self.identity.account_id)
    }

    /// The principal as one string: the ARN, else the key id, else the user name.
    pub fn principal(&self) -> Option<&'a str> {
        self.identity.arn.or(self.identity.access_key_id).or(self.identity.user_name)
    }
}

/// S3 object-level API names (data events).
const S3_OBJECT_APIS: &[&str] = &[
    "GetObject",
    "PutObject",
    "CopyObject",
    "DeleteObject",
    "DeleteObjects",
    "HeadObject",
    "CreateMultipartUpload",
    "UploadPart",
    "UploadPartCopy",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "RestoreObject",
    "GetObjectAcl",
    "PutObjectAcl",
    "GetObjectTagging",
    "PutObjectTagging",
    "DeleteObjectTagging",
];

fn identity(value: Json<'_>) -> UserIdentity<'_> {
    let mut identity = UserIdentity::default();
    let Some(object) = value.as_object() else { return identity };
    for (key, field) in object.iter() {
        let text = || field.into_string();
        match key {
            "type" => identity.kind = identity.kind.or(text()),
            "arn" => identity.arn = identity.arn.or(text()),
            "accessKeyId" => identity.access_key_id = identity.access_key_id.or(text().filter(|k| !k.is_empty())),
            "userName" => identity.user_name = identity.user_name.or(text()),
            "accountId" => identity.account_id = identity.account_id.or(text()),
            "invokedBy" => identity.invoked_by = identity.invoked_by.or(text()),
            "sessionContext" => {
                let issuer = shape::path(field, &[&["sessionIssuer"], &["userName"]]);
                identity.session_issuer_name = identity.session_issuer_name.or(shape::text(issuer));
            }
            _ => {}
        }
    }
    identity
}
