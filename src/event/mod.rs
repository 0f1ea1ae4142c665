//! The CloudTrail event view: a borrowed, typed look at one record.
//!
//! Built in one pass over the record's top-level keys, so detectors never search the record
//! again for the common fields. Every field CloudTrail may omit is an `Option`; free-form bodies
//! (`requestParameters`, `responseElements`, `additionalEventData`) stay as borrowed JSON and are
//! read through [`shape`], which absorbs the XML-rendering quirks. Strings borrow from the decode
//! buffer: nothing is copied unless a finding is made.

pub mod filter;
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

/// The pseudo-key under which [`UserIdentity::set_text`] stores
/// `sessionContext.sessionIssuer.userName`.
pub const SESSION_ISSUER_NAME: &str = "sessionContext.sessionIssuer.userName";

impl<'a> UserIdentity<'a> {
    /// Sets the string member named `key` of `userIdentity` (first one wins).
    pub fn set_text(&mut self, key: &[u8], value: &'a str) {
        if key == b"accessKeyId" && value.is_empty() {
            return;
        }
        if let Some(slot) = self.slot(key).filter(|slot| slot.is_none()) {
            *slot = Some(value);
        }
    }

    /// True when `key` is a member the view keeps and has not been set yet.
    pub fn wants(&mut self, key: &[u8]) -> bool {
        self.slot(key).is_some_and(|slot| slot.is_none())
    }

    /// The member's slot. Dispatched on the key's length first, as [`Field::named`] is: the
    /// walker asks this for every member of every `userIdentity`.
    fn slot(&mut self, key: &[u8]) -> Option<&mut Option<&'a str>> {
        Some(match key.len() {
            3 if key == b"arn" => &mut self.arn,
            4 if key == b"type" => &mut self.kind,
            8 if key == b"userName" => &mut self.user_name,
            9 if key == b"accountId" => &mut self.account_id,
            9 if key == b"invokedBy" => &mut self.invoked_by,
            11 if key == b"accessKeyId" => &mut self.access_key_id,
            _ if key == SESSION_ISSUER_NAME.as_bytes() => &mut self.session_issuer_name,
            _ => return None,
        })
    }

    /// True once any member was set (a later duplicate `userIdentity` is ignored).
    pub fn is_set(&self) -> bool {
        self.kind.is_some() || self.arn.is_some() || self.access_key_id.is_some()
    }
}

/// What kind of access key signed the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// The record's JSON text as stored (empty when unknown): for printing matched raw events.
    pub raw: &'a [u8],
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
    /// The raw text of `requestParameters` (its first object value) as the header walker
    /// passed it, for cheap looks into a body that is not parsed (a record with an escape in a
    /// key it reads is parsed fully instead). `None` on other paths.
    pub request_raw: Option<&'a [u8]>,
    /// The raw text of `additionalEventData`, as [`Event::request_raw`].
    pub additional_raw: Option<&'a [u8]>,
}

/// A top-level string field the [`Event`] view keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `eventName`.
    EventName,
    /// `eventID`.
    EventId,
    /// `eventTime`.
    EventTime,
    /// `eventSource`.
    EventSource,
    /// `eventType`.
    EventType,
    /// `eventCategory`.
    EventCategory,
    /// `awsRegion`.
    Region,
    /// `sourceIPAddress`.
    SourceIp,
    /// `userAgent`.
    UserAgent,
    /// `recipientAccountId`.
    RecipientAccount,
    /// `errorCode`.
    ErrorCode,
}

impl Field {
    /// The field named by a record's key. The header walker asks this for every top-level key
    /// of every record: dispatching on the length first leaves at most six keys of that length
    /// to compare, each as one fixed-size array.
    pub fn named(key: &[u8]) -> Option<Field> {
        match key.len() {
            7 => (key == b"eventID").then_some(Field::EventId),
            9 => match <&[u8; 9]>::try_from(key).ok()? {
                b"eventName" => Some(Field::EventName),
                b"eventTime" => Some(Field::EventTime),
                b"eventType" => Some(Field::EventType),
                b"awsRegion" => Some(Field::Region),
                b"userAgent" => Some(Field::UserAgent),
                b"errorCode" => Some(Field::ErrorCode),
                _ => None,
            },
            11 => (key == b"eventSource").then_some(Field::EventSource),
            13 => (key == b"eventCategory").then_some(Field::EventCategory),
            15 => (key == b"sourceIPAddress").then_some(Field::SourceIp),
            18 => (key == b"recipientAccountId").then_some(Field::RecipientAccount),
            _ => None,
        }
    }
}

impl<'a> Event<'a> {
    /// An event with no fields set yet.
    pub fn empty() -> Event<'a> {
        Event {
            raw: &[],
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
            request_raw: None,
            additional_raw: None,
        }
    }

    /// Reads the fields of one record. Values of the wrong type count as absent, so a
    /// `userIdentity: "x"` or `eventTime: 1700000000` record is still inspected on what it has.
    pub fn from_json(record: Json<'a>) -> Result<Self, RecordError> {
        let object = record.as_object().ok_or(RecordError::NotAnObject)?;
        let mut event = Event::empty();
        for (key, value) in object.iter() {
            if let Some(text) = value.into_string() {
                event.set_text(key.as_bytes(), text);
                continue;
            }
            if !value.is_object() {
                continue;
            }
            match key {
                "userIdentity" if !event.identity.is_set() => event.identity = identity(value),
                "requestParameters" => event.request = event.request.or(Some(value)),
                "responseElements" => event.response = event.response.or(Some(value)),
                "additionalEventData" => event.additional = event.additional.or(Some(value)),
                _ => {}
            }
        }
        event.finish()
    }

    /// Sets the top-level string field named `key`, if it is one the view keeps. With duplicate
    /// keys the first one wins, the same way on every decode path.
    pub fn set_text(&mut self, key: &[u8], value: &'a str) {
        if let Some(field) = Field::named(key) {
            self.set(field, value);
        }
    }

    /// The field `key` names, when the view keeps it and it is not set yet.
    pub fn wanted(&mut self, key: &[u8]) -> Option<Field> {
        let field = Field::named(key)?;
        let unset = match self.slot(field) {
            Some(slot) => slot.is_none(),
            None => self.event_name.is_empty(),
        };
        unset.then_some(field)
    }

    /// Sets `field` unless it is set already (the first duplicate wins); an empty `errorCode`
    /// is no error.
    pub fn set(&mut self, field: Field, value: &'a str) {
        match field {
            Field::EventName if self.event_name.is_empty() => self.event_name = value,
            Field::EventName => {}
            Field::ErrorCode if value.is_empty() => {}
            other => {
                if let Some(slot) = self.slot(other).filter(|slot| slot.is_none()) {
                    *slot = Some(value);
                }
            }
        }
    }

    /// The optional field's slot; `None` for `eventName`, which is required.
    fn slot(&mut self, field: Field) -> Option<&mut Option<&'a str>> {
        Some(match field {
            Field::EventId => &mut self.event_id,
            Field::EventTime => &mut self.event_time_raw,
            Field::EventSource => &mut self.event_source,
            Field::EventType => &mut self.event_type,
            Field::EventCategory => &mut self.event_category,
            Field::Region => &mut self.region,
            Field::SourceIp => &mut self.source_ip,
            Field::UserAgent => &mut self.user_agent,
            Field::RecipientAccount => &mut self.recipient_account,
            Field::ErrorCode => &mut self.error_code,
            Field::EventName => return None,
        })
    }

    /// Checks the required field and parses the time, once every field is set.
    pub fn finish(mut self) -> Result<Self, RecordError> {
        self.complete()?;
        Ok(self)
    }

    /// [`Event::finish`] in place.
    pub fn complete(&mut self) -> Result<(), RecordError> {
        if self.event_name.is_empty() {
            return Err(RecordError::MissingEventName);
        }
        self.event_time = self.event_time_raw.and_then(time::parse_rfc3339);
        Ok(())
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

    /// The identity behind the principal ([`principal_identity`]): a role, not its session.
    pub fn principal_identity(&self) -> Option<std::borrow::Cow<'a, str>> {
        self.principal().map(principal_identity)
    }
}

/// The header strings an [`Event`] keeps, in [`Event::header_strings`] order.
const HEADER_STRINGS: usize = 18;

impl<'a> Event<'a> {
    /// Every header string (top-level and identity), in one fixed order.
    fn header_strings(&self) -> [Option<&'a str>; HEADER_STRINGS] {
        let i = &self.identity;
        [
            self.event_id,
            self.event_time_raw,
            Some(self.event_name),
            self.event_source,
            self.event_type,
            self.event_category,
            self.region,
            self.source_ip,
            self.user_agent,
            self.error_code,
            self.recipient_account,
            i.kind,
            i.arn,
            i.access_key_id,
            i.user_name,
            i.account_id,
            i.invoked_by,
            i.session_issuer_name,
        ]
    }

    /// The event with exactly these header strings (as [`Event::header_strings`] lists them),
    /// no bodies and no raw text.
    fn from_header_strings(strings: [Option<&'a str>; HEADER_STRINGS]) -> Event<'a> {
        let [event_id, event_time_raw, event_name, event_source, event_type, event_category, region, source_ip, user_agent, error_code, recipient_account, kind, arn, access_key_id, user_name, account_id, invoked_by, session_issuer_name] =
            strings;
        Event {
            event_id,
            event_time_raw,
            event_name: event_name.unwrap_or(""),
            event_source,
            event_type,
            event_category,
            region,
            source_ip,
            user_agent,
            error_code,
            recipient_account,
            identity: UserIdentity { kind, arn, access_key_id, user_name, account_id, invoked_by, session_issuer_name },
            ..Event::empty()
        }
    }
}

/// An owned copy of an event's header (its strings and parsed time; not its bodies or raw
/// text) in one buffer that is reused from copy to copy: what outlives the decode buffer when an
/// event may be reported after the object is read (the baseline's first and last uses).
#[derive(Debug, Clone, Default)]
pub struct HeaderCopy {
    text: String,
    spans: [Option<(usize, usize)>; HEADER_STRINGS],
    event_time: Option<Millis>,
}

impl HeaderCopy {
    /// A copy of `event`'s header.
    pub fn of(event: &Event<'_>) -> Self {
        let mut copy = HeaderCopy::default();
        copy.copy_from(event);
        copy
    }

    /// Replaces the copy with `event`'s header, reusing the buffer.
    pub fn copy_from(&mut self, event: &Event<'_>) {
        self.text.clear();
        for (span, value) in self.spans.iter_mut().zip(event.header_strings()) {
            *span = value.map(|value| {
                let start = self.text.len();
                self.text.push_str(value);
                (start, self.text.len())
            });
        }
        self.event_time = event.event_time;
    }

    /// The copied event's time and `eventID`, without making the whole event (the order of
    /// copies is asked far more often than the event).
    pub fn time_and_id(&self) -> (Option<Millis>, Option<&str>) {
        // `eventID` is the first of the header strings.
        (self.event_time, self.spans[0].map(|(s, e)| &self.text[s..e]))
    }

    /// The copied event: its header fields as they were, bodies absent.
    pub fn event(&self) -> Event<'_> {
        let mut event = Event::from_header_strings(self.spans.map(|span| span.map(|(s, e)| &self.text[s..e])));
        event.event_time = self.event_time;
        event
    }
}

/// The identity a behaviour belongs to: an IAM user's ARN as is, and for an assumed-role session
/// (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`) the role's ARN
/// (`arn:aws:iam::ACCOUNT:role/ROLE`), never the session: every EC2 instance or Lambda
/// invocation of one role has its own session name, and they are one writer.
pub fn principal_identity(principal: &str) -> std::borrow::Cow<'_, str> {
    let Some((head, rest)) = principal.split_once(":assumed-role/") else { return principal.into() };
    let role = rest.split_once('/').map_or(rest, |(role, _)| role);
    match head.strip_prefix("arn:").and_then(|h| h.split_once(":sts::")) {
        Some((partition, account)) => format!("arn:{partition}:iam::{account}:role/{role}").into(),
        None => principal.into(),
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
        if let Some(text) = field.into_string() {
            identity.set_text(key.as_bytes(), text);
        } else if key == "sessionContext" {
            let issuer = shape::path(field, &[&["sessionIssuer"], &["userName"]]);
            if let Some(name) = shape::text(issuer) {
                identity.set_text(SESSION_ISSUER_NAME.as_bytes(), name);
            }
        }
    }
    identity
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_copy_is_the_event_without_its_bodies() {
        let names = ["id", "time", "Name", "src", "type", "cat", "region", "ip", "ua", "err", "acct"];
        let who = ["kind", "arn", "AKIA1", "user", "acct2", "invoker", "issuer"];
        let mut event = Event::empty();
        for (field, value) in [
            Field::EventId,
            Field::EventTime,
            Field::EventName,
            Field::EventSource,
            Field::EventType,
            Field::EventCategory,
            Field::Region,
            Field::SourceIp,
            Field::UserAgent,
            Field::ErrorCode,
            Field::RecipientAccount,
        ]
        .into_iter()
        .zip(names)
        {
            event.set(field, value);
        }
        let keys = ["type", "arn", "accessKeyId", "userName", "accountId", "invokedBy", SESSION_ISSUER_NAME];
        for (key, value) in keys.into_iter().zip(who) {
            event.identity.set_text(key.as_bytes(), value);
        }
        event.event_time = Some(42);
        let mut copy = HeaderCopy::of(&Event::empty());
        copy.copy_from(&event);
        assert_eq!(format!("{:?}", copy.event()), format!("{event:?}"));
        assert_eq!(copy.time_and_id(), (Some(42), Some("id")));
        // Every string set above survives the copy.
        let debug = format!("{:?}", copy.event());
        for value in names.iter().chain(&who) {
            assert!(debug.contains(&format!("\"{value}\"")), "{value} missing from {debug}");
        }
    }

    #[test]
    fn each_kept_key_names_its_field_and_nothing_else_does() {
        let kept = [
            ("eventName", Field::EventName),
            ("eventID", Field::EventId),
            ("eventTime", Field::EventTime),
            ("eventSource", Field::EventSource),
            ("eventType", Field::EventType),
            ("eventCategory", Field::EventCategory),
            ("awsRegion", Field::Region),
            ("sourceIPAddress", Field::SourceIp),
            ("userAgent", Field::UserAgent),
            ("recipientAccountId", Field::RecipientAccount),
            ("errorCode", Field::ErrorCode),
        ];
        for (key, field) in kept {
            assert_eq!(Field::named(key.as_bytes()), Some(field), "{key}");
            // The same length, one byte off, at either end or in the middle.
            for at in [0, key.len() / 2, key.len() - 1] {
                let mut near = key.as_bytes().to_vec();
                near[at] ^= 0x20;
                assert_eq!(Field::named(&near), None, "{}", String::from_utf8_lossy(&near));
            }
            assert_eq!(Field::named(&key.as_bytes()[1..]), None);
        }
        for other in ["eventVersion", "requestID", "readOnly", "errorMessage", "", "userIdentity"] {
            assert_eq!(Field::named(other.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn identity_members_are_kept_by_their_exact_key() {
        let mut identity = UserIdentity::default();
        for key in ["type", "arn", "userName", "accountId", "invokedBy", "accessKeyId", SESSION_ISSUER_NAME] {
            assert!(identity.wants(key.as_bytes()), "{key}");
            identity.set_text(key.as_bytes(), key);
            assert!(!identity.wants(key.as_bytes()), "{key} is set");
        }
        for other in ["Type", "arm", "principalId", "accountID", "invokedby", "accessKeyID", "sessionContext", ""] {
            assert!(!identity.wants(other.as_bytes()), "{other}");
        }
        let UserIdentity { kind, arn, access_key_id, user_name, account_id, invoked_by, session_issuer_name } =
            identity;
        assert_eq!(
            [kind, arn, access_key_id, user_name, account_id, invoked_by, session_issuer_name],
            [
                Some("type"),
                Some("arn"),
                Some("accessKeyId"),
                Some("userName"),
                Some("accountId"),
                Some("invokedBy"),
                Some(SESSION_ISSUER_NAME)
            ]
        );
    }

    #[test]
    fn the_first_of_duplicate_fields_wins_and_an_empty_error_code_is_none() {
        let mut event = Event::empty();
        for (key, value) in [("eventName", "A"), ("eventName", "B"), ("errorCode", ""), ("awsRegion", "r1")] {
            event.set_text(key.as_bytes(), value);
        }
        assert_eq!(event.wanted(b"eventName"), None);
        assert_eq!(event.wanted(b"errorCode"), Some(Field::ErrorCode));
        assert_eq!(event.wanted(b"awsRegion"), None);
        event.set(Field::Region, "r2");
        assert_eq!((event.event_name, event.error_code, event.region), ("A", None, Some("r1")));
    }

    #[test]
    fn a_role_session_belongs_to_its_role() {
        assert_eq!(
            principal_identity("arn:aws:sts::111122223333:assumed-role/data-pipeline/i-0abc"),
            "arn:aws:iam::111122223333:role/data-pipeline"
        );
        assert_eq!(
            principal_identity("arn:aws-us-gov:sts::111122223333:assumed-role/r/s"),
            "arn:aws-us-gov:iam::111122223333:role/r"
        );
        assert_eq!(principal_identity("arn:aws:iam::111122223333:user/alice"), "arn:aws:iam::111122223333:user/alice");
        assert_eq!(principal_identity("AKIAEXAMPLE"), "AKIAEXAMPLE");
    }
}
