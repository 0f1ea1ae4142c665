//! Detection: the rule catalogue, the detector interface, and the engine that turns events into
//! findings.
//!
//! A detector looks at one event and the detection settings and returns at most one [`Hit`]; the
//! [`Engine`] dispatches each event only to the detectors registered for its `eventName`, applies
//! per-rule enablement, principal allowlists, severity overrides and the failed-call rule (one
//! level lower, `outcome: failure`), and builds the owned [`Finding`]. Detectors never read the
//! clock or the environment, never log and never do I/O, which is what makes a replay give the
//! same answer as live detection.
//!
//! Besides findings, the per-event pass emits what the cross-event passes of [`crate::analyze`]
//! need: baseline [`observe::Observation`]s of long-term keys and correlation [`facts::Fact`]s.
//! Per-rule enablement, allowlists and severity overrides come from the one
//! [`crate::settings::RulePolicy`], which those passes ask too. `detect` never imports
//! `analyze`.

pub mod facts;
pub mod features;
pub mod ingress;
pub mod observe;
pub mod rules;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::event::{time::format_rfc3339, Event, KeyKind};
use crate::finding::{
    clean, clean_opt, finding_id, Finding, Mode, OnFailure, Outcome, Pending, PendingKind, Principal, Resource,
    RuleInfo, Severity,
};
use crate::hash::StableHasher;
use crate::settings::{PrincipalNames, Settings};
use observe::{ObjectObservations, Observation};

/// What a detector found in one event.
#[derive(Debug, Clone, Default)]
pub struct Hit {
    /// Severity for this hit when it differs from the rule default.
    pub severity: Option<Severity>,
    /// One sentence naming who did what to which resource (cleaned when the finding is built).
    pub summary: String,
    /// Resources.
    pub resources: Vec<Resource>,
    /// Rule-specific evidence; strings must already be cleaned (use [`Hit::detail_text`]).
    pub details: serde_json::Map<String, serde_json::Value>,
    /// Aggregation group for merged or burst rules (default: the principal).
    pub group: Option<String>,
    /// The call failed although it carries no `errorCode` (a console sign-in answered
    /// `Failure`); treated like a failed call.
    pub failed: bool,
}

impl Hit {
    /// A hit with a summary.
    pub fn new(summary: String) -> Hit {
        Hit { summary, ..Hit::default() }
    }

    /// Sets this hit's severity.
    pub fn severity(mut self, severity: Severity) -> Hit {
        self.severity = Some(severity);
        self
    }

    /// Adds a resource (the id is cleaned).
    pub fn resource(mut self, kind: &'static str, id: &str) -> Hit {
        self.resources.push(Resource { kind: kind.into(), id: clean(id) });
        self
    }

    /// Adds a detail value built by the detector from trusted parts (numbers, fixed words).
    pub fn detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Hit {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// Marks the hit as a failed attempt (see [`Hit::failed`]).
    pub fn failure(mut self) -> Hit {
        self.failed = true;
        self
    }

    /// Sets the aggregation group.
    pub fn group(mut self, group: String) -> Hit {
        self.group = Some(group);
        self
    }

    /// Adds a detail string taken from the event (cleaned).
    pub fn detail_text(self, key: &str, value: &str) -> Hit {
        let value = clean(value);
        self.detail(key, value)
    }
}

/// A per-event detector.
pub trait Detector: Send + Sync {
    /// The rule it implements.
    fn info(&self) -> &'static RuleInfo;
    /// The `eventName`s it needs to see.
    fn event_names(&self) -> &'static [&'static str];
    /// Looks at one event.
    fn inspect(&self, event: &Event<'_>, settings: &Settings) -> Option<Hit>;
    /// Whether it reads request/response bodies. Events no body-reading detector needs are
    /// decoded from their header fields only, which is most of the decoding speed.
    fn reads_bodies(&self) -> bool {
        true
    }
    /// A cheap look at a record it would inspect, before its bodies are parsed (their raw text
    /// is [`Event::request_raw`] and [`Event::additional_raw`]): false when the record cannot
    /// match, so it need not be parsed completely (e.g. no SSE-C header in its bodies).
    fn may_match(&self, _event: &Event<'_>) -> bool {
        true
    }
}

/// Where an event came from: the object and the record's index in it.
#[derive(Debug, Clone, Copy)]
pub struct EventOrigin<'a> {
    /// File path or `s3://bucket/key`.
    pub object: &'a str,
    /// Index of the record in the object.
    pub index: u64,
}

/// The rules by the event names they inspect, asked twice for every event: hashed with
/// [`StableHasher`], not SipHash (2 % of a single-thread scan). Built from the rules, never from
/// input, so an unkeyed hash is safe here.
type NameTable = HashMap<&'static str, Named, BuildHasherDefault<StableHasher>>;

/// What one event name is to the engine, decided once so that each event costs one lookup.
#[derive(Debug, Default)]
struct Named {
    /// The detectors that inspect it.
    detectors: Vec<usize>,
    /// Those of them that read bodies.
    body_readers: Vec<usize>,
    /// A correlation fact is read from its bodies ([`facts::FACT_EVENTS`]).
    fact: bool,
    /// An upload whose key may name a ransom note (a fact when it does).
    may_be_note: bool,
}

/// Runs every enabled per-event detector over events.
pub struct Engine {
    detectors: Vec<Box<dyn Detector>>,
    by_event_name: NameTable,
    every_event: Vec<usize>,
    every_event_reads_bodies: bool,
    /// Whether a rule over uses of long-term keys is enabled (decided once, asked for every event).
    baseline_on: bool,
    settings: Settings,
    mode: Mode,
}

impl Engine {
    /// An engine over the whole catalogue with these settings.
    pub fn new(settings: Settings, mode: Mode) -> Engine {
        let detectors: Vec<Box<dyn Detector>> =
            rules::all().into_iter().filter(|d| settings.policy().enabled(d.info())).collect();
        let mut by_event_name = NameTable::default();
        let mut every_event = Vec::new();
        for (index, detector) in detectors.iter().enumerate() {
            if detector.event_names().is_empty() {
                every_event.push(index);
            }
            for name in detector.event_names() {
                let named = by_event_name.entry(name).or_default();
                named.detectors.push(index);
                if detector.reads_bodies() {
                    named.body_readers.push(index);
                }
            }
        }
        for name in facts::FACT_EVENTS {
            by_event_name.entry(name).or_default().fact = true;
        }
        by_event_name.entry("PutObject").or_default().may_be_note = true;
        let every_event_reads_bodies = every_event.iter().any(|&i| detectors[i].reads_bodies());
        let baseline_on = [&rules::LONG_TERM_KEY_ANOMALY, &rules::DORMANT_KEY_USED, &rules::CREATED_KEY_USED]
            .into_iter()
            .any(|r| settings.policy().enabled(r));
        Engine { detectors, by_event_name, every_event, every_event_reads_bodies, baseline_on, settings, mode }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The mode its findings are tagged with.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether some detector will read this event's bodies (else its header fields suffice),
    /// asked before they are parsed: the rules' looks see only their raw text.
    pub fn needs_bodies(&self, event: &Event<'_>) -> bool {
        if self.every_event_reads_bodies {
            return true;
        }
        let Some(named) = self.by_event_name.get(event.event_name) else { return false };
        named.fact
            || (named.may_be_note && facts::raw_may_be_note(event))
            || named.body_readers.iter().any(|&i| self.detectors[i].may_match(event))
    }

    /// Adds the baseline's view of an event made with a long-term key by a person (not a
    /// service) to `into`; other events are not the baseline's.
    pub fn observe(&self, event: &Event<'_>, index: u64, into: &mut ObjectObservations) {
        if !self.baseline_on || !is_long_term_key_use(event) {
            return;
        }
        if let Some(key) = event.identity.access_key_id {
            into.add(key, event, index);
        }
    }

    /// The object's observations, each with a template finding that carries who, where and
    /// whence for the baseline rules.
    pub fn observations(&self, observed: ObjectObservations, object: &str) -> Vec<Observation> {
        observed.finish(|event, index| {
            let origin = EventOrigin { object, index };
            build_finding(&rules::LONG_TERM_KEY_ANOMALY, Hit::new(String::new()), event, origin, None, self.mode)
        })
    }

    /// Inspects one event, appending findings to `out`.
    pub fn inspect(&self, event: &Event<'_>, origin: EventOrigin<'_>, out: &mut Vec<Finding>) {
        let named =
            self.by_event_name.get(event.event_name).map(|named| named.detectors.as_slice()).unwrap_or_default();
        for &index in named.iter().chain(&self.every_event) {
            let detector = &self.detectors[index];
            let info = detector.info();
            // The policy is asked only for hits: most events hit nothing.
            if let Some(hit) = detector.inspect(event, &self.settings) {
                let policy = self.settings.policy();
                if policy.silences(info, &PrincipalNames::of_event(event)) {
                    continue;
                }
                let configured = policy.severity_override(info);
                let pending = pending_aggregation(info, &hit, event);
                let chosen = hit.severity;
                let mut finding = build_finding(info, hit, event, origin, configured, self.mode);
                if matches!(info.on_failure, OnFailure::Burst { .. }) && pending.is_some() {
                    // A burst is reported at the rule's (or the hit's) severity, not lowered:
                    // the failures are the point.
                    finding.severity = configured.or(chosen).unwrap_or(info.severity);
                }
                finding.pending = pending;
                out.push(finding);
            }
        }
    }
}

/// How a hit waits for the aggregation pass, if its rule aggregates.
fn pending_aggregation(info: &RuleInfo, hit: &Hit, event: &Event<'_>) -> Option<Pending> {
    let kind = match (event.failed() || hit.failed, info.on_failure, info.merge_window_minutes) {
        (true, OnFailure::Burst { threshold, window_minutes }, _) => PendingKind::Burst { threshold, window_minutes },
        (true, OnFailure::LowerGrouped { window_minutes }, _) => PendingKind::Burst { threshold: 1, window_minutes },
        (_, _, Some(window_minutes)) => PendingKind::Merge { window_minutes },
        _ => return None,
    };
    let group = hit.group.clone().or_else(|| event.principal().map(str::to_owned)).unwrap_or_default();
    Some(Pending { group, kind })
}

/// True when the event's principal (ARN, key id, user name or role name) is in `list`.
pub fn is_allowlisted(event: &Event<'_>, list: &[String]) -> bool {
    PrincipalNames::of_event(event).any_in(list)
}

fn build_finding(
    info: &'static RuleInfo,
    hit: Hit,
    event: &Event<'_>,
    origin: EventOrigin<'_>,
    configured: Option<Severity>,
    mode: Mode,
) -> Finding {
    let failed = event.failed() || hit.failed;
    let base = configured.or(hit.severity).unwrap_or(info.severity);
    let severity = if failed { base.lowered() } else { base };
    let event_ids: Vec<String> = event.event_id.map(clean).into_iter().collect();
    // Without an eventID the event is named by where it lies (made only then: this runs for
    // every baseline observation).
    let fallback_key;
    let id_key = match event.event_id {
        Some(id) => id,
        None => {
            fallback_key = format!("{}#{}", origin.object, origin.index);
            &fallback_key
        }
    };
    let time = event.event_time.map(format_rfc3339);
    let mut details = hit.details;
    if let Some(code) = event.error_code {
        details.insert("error_code".into(), clean(code).into());
    }
    Finding {
        schema: crate::finding::SCHEMA,
        id: finding_id(info.id, &[id_key]),
        rule: info.id,
        family: info.family,
        severity,
        title: info.title,
        summary: clean(&hit.summary),
        outcome: if failed { Outcome::Failure } else { Outcome::Success },
        first_seen: time.clone(),
        last_seen: time,
        account: clean_opt(event.account()),
        region: clean_opt(event.region),
        principal: Principal {
            kind: clean_opt(event.identity.kind),
            arn: clean_opt(event.identity.arn),
            access_key_id: clean_opt(event.identity.access_key_id),
            key_kind: Some(event.key_kind()),
            user_name: clean_opt(event.identity.user_name),
        },
        source_ip: clean_opt(event.source_ip),
        user_agent: clean_opt(event.user_agent),
        resources: hit.resources,
        evidence: crate::finding::Evidence { event_ids, count: 1, event_ids_truncated: false, details },
        controls: info.controls,
        mitre: info.mitre,
        remediation: info.remediation,
        origin: clean(origin.object),
        mode,
        api: Some(crate::finding::Api {
            operation: clean(event.event_name),
            service: clean(event.event_source.unwrap_or("")),
        }),
        sort_time: event.event_time.unwrap_or(i64::MIN),
        pending: None,
        carried: false,
    }
}

/// The distinct items, in first-seen order (lists here are a handful long).
pub fn unique<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// A short, human name for who made the call, for summaries.
pub fn who(event: &Event<'_>) -> String {
    let id = &event.identity;
    let name = match id.kind {
        Some("Root") => Some("the root user".to_owned()),
        Some("AssumedRole") => {
            id.arn.and_then(|arn| arn.rsplit_once(":assumed-role/").map(|(_, rest)| format!("role session {rest}")))
        }
        _ => None,
    };
    name.or_else(|| id.user_name.map(|u| format!("user {u}")))
        .or_else(|| id.arn.map(str::to_owned))
        .or_else(|| id.access_key_id.map(|k| format!("key {k}")))
        .unwrap_or_else(|| "an unknown principal".to_owned())
}

/// Whether the key that signed the event is long-term and used by a person (not a service).
pub fn is_long_term_key_use(event: &Event<'_>) -> bool {
    event.key_kind() == KeyKind::LongTerm && !event.is_service_call()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header-only `PutObject` whose request names `key`.
    fn upload(request: &[u8]) -> Event<'_> {
        let mut event = Event::empty();
        event.event_name = "PutObject";
        event.event_source = Some("s3.amazonaws.com");
        event.request_raw = Some(request);
        event
    }

    #[test]
    fn bodies_are_asked_for_by_rules_and_facts_with_one_lookup() {
        let note = upload(br#"{"bucketName":"b","key":"docs/README-RESTORE.txt"}"#);
        let plain = upload(br#"{"bucketName":"b","key":"docs/report.pdf"}"#);
        let sse_c =
            upload(br#"{"bucketName":"b","key":"a","x-amz-server-side-encryption-customer-algorithm":"AES256"}"#);
        let mut fact = Event::empty();
        fact.event_name = "CreateAccessKey";
        let mut other = Event::empty();
        other.event_name = "DescribeInstances";
        let everything = Engine::new(Settings::default(), Mode::Scan);
        // Every S3 write rule off: a ransom note is still a fact the chain needs.
        let mut settings = Settings::default();
        for detector in rules::all() {
            if detector.event_names().contains(&"PutObject") {
                settings.disabled_rules.insert(detector.info().id.into());
            }
        }
        let no_write_rules = Engine::new(settings, Mode::Scan);
        for (engine, sse_c_parsed) in [(&everything, true), (&no_write_rules, false)] {
            assert!(engine.needs_bodies(&note), "a ransom note's upload");
            assert!(!engine.needs_bodies(&plain), "a plain upload");
            assert_eq!(engine.needs_bodies(&sse_c), sse_c_parsed, "an SSE-C upload");
            assert!(engine.needs_bodies(&fact), "a fact's event");
            assert!(!engine.needs_bodies(&other), "an event no rule reads");
        }
    }
}
