//! Per-key baselines for long-term access keys (SPEC §2.3): what each `AKIA…` key normally does,
//! and the findings for when it does something new or wakes up after a long silence.
//!
//! For every key the model remembers, with first and last seen times, the source networks,
//! user-agent families, regions, services and APIs it was used with ([`crate::detect::features`]). A key is in
//! learning until it has been seen for `learning_days`; after that, a value never seen before is
//! a reason for `iam.long_term_key_anomaly` (one reason low, two medium, three or more high). A
//! key silent for `dormant_days` that is used again is `iam.dormant_key_used`.
//!
//! Updates are set-like, so observing the same event twice changes nothing (a replay or a
//! redelivered file adds no value and reports nothing new). Memory is bounded: at most
//! `max_values` values per feature per key (the least recently seen is forgotten) and at most
//! `max_keys` keys (the least recently seen key is forgotten). Time is event time only: the model
//! is fed in event-time order and never reads a clock.
//!
//! The model is a cache over a state store ([`crate::store::session`]): keys are loaded before
//! their observations run and changed keys are written back, so a backfill can warm the daemon.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::detect::observe::Observation;
use crate::detect::rules::{DORMANT_KEY_USED, LONG_TERM_KEY_ANOMALY};
use crate::event::time::Millis;
use crate::finding::RuleInfo;
use crate::finding::{clean, Finding, Severity};
use crate::settings::{BaselineSettings, PrincipalNames, Settings};

const DAY: Millis = 86_400_000;

/// The anomaly reason for a new value of each feature.
pub const REASONS: [&str; 5] = ["new_network", "new_user_agent", "new_region", "new_service", "new_api"];

/// What one observation showed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Days of silence before this use, when at least `dormant_days`.
    pub dormant_days: Option<i64>,
    /// New values of a key past learning: (reason, value).
    pub reasons: Vec<(&'static str, String)>,
}

/// One remembered value of a feature: when it was first used (and by which event) and last used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The value.
    pub value: String,
    /// Event time of its first use.
    pub first: Millis,
    /// `eventID` of its first use (ties at the same millisecond are broken by eventID).
    pub first_event: String,
    /// Event time of its last use.
    pub last: Millis,
}

/// A stretch of activity: uses less than `dormant_days` apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Active {
    /// First use.
    pub start: Millis,
    /// `eventID` of the first use.
    pub start_event: String,
    /// Last use.
    pub end: Millis,
}

/// Intervals of activity remembered per key (older ones are forgotten).
const ACTIVE_CAP: usize = 16;

/// What is remembered of one key. Every update is a set union or a min/max, so observing an
/// event again (a replayed or redelivered file) changes nothing and yields the same verdict: the
/// value's first use *is* that event, and so is the start of its stretch of activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyState {
    /// Earliest use.
    pub first_seen: Millis,
    /// Latest use.
    pub last_seen: Millis,
    /// Stretches of activity, oldest first.
    pub active: Vec<Active>,
    /// Values per feature, in [`crate::detect::observe::FEATURES`] order.
    pub features: [Vec<Seen>; 5],
}

impl KeyState {
    fn new(time: Millis) -> KeyState {
        KeyState { first_seen: time, last_seen: time, active: Vec::new(), features: Default::default() }
    }

    /// Adds a use to the activity stretches; returns the silence (ms) before it when this use
    /// starts a stretch after an earlier one, and whether anything changed.
    fn record_activity(&mut self, time: Millis, event_id: &str, gap: Millis) -> (Option<Millis>, bool) {
        let touches = |a: &Active| a.start.saturating_sub(gap) < time && time < a.end.saturating_add(gap);
        // The common case: inside a known stretch, after its first use.
        let mut touching = self.active.iter().filter(|a| touches(a));
        if let (Some(only), None) = (touching.next(), touching.next()) {
            let first_use = (only.start, only.start_event.as_str());
            if first_use <= (time, event_id) && time <= only.end {
                // Seen before: nothing changes. If it is the stretch's first use (a replay), the
                // verdict is the same as when it was new.
                let starts_here = first_use == (time, event_id);
                let previous_end = self.active.iter().filter(|a| a.end < only.start).map(|a| a.end).max();
                return (previous_end.filter(|_| starts_here).map(|end| time - end), false);
            }
        }
        let mut merged = Active { start: time, start_event: event_id.to_owned(), end: time };
        self.active.retain(|a| {
            if !touches(a) {
                return true;
            }
            if (a.start, a.start_event.as_str()) < (merged.start, merged.start_event.as_str()) {
                merged.start = a.start;
                merged.start_event.clone_from(&a.start_event);
            }
            merged.end = merged.end.max(a.end);
            false
        });
        let starts_here = merged.start == time && merged.start_event == event_id;
        let previous_end = self.active.iter().filter(|a| a.end < merged.start).map(|a| a.end).max();
        let position = self.active.partition_point(|a| a.start < merged.start);
        self.active.insert(position, merged);
        if self.active.len() > ACTIVE_CAP {
            self.active.remove(0);
        }
        (previous_end.filter(|_| starts_here).map(|end| time - end), true)
    }
}

/// The baselines of the keys in memory: loaded from a state store, or built in one run.
#[derive(Debug, Default)]
pub struct Baselines {
    settings: BaselineSettings,
    keys: HashMap<String, KeyState>,
    /// (last seen, key), to forget the least recently seen key first.
    recency: BTreeSet<(Millis, String)>,
    /// Keys changed since [`Baselines::take_changed`].
    changed: HashSet<String>,
}

impl Baselines {
    /// Empty baselines.
    pub fn new(settings: BaselineSettings) -> Baselines {
        Baselines { settings, ..Baselines::default() }
    }

    /// Number of keys in memory.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is in memory.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// True when `key` is in memory.
    pub fn contains(&self, key: &str) -> bool {
        self.keys.contains_key(key)
    }

    /// The values `key` is known to have used for feature number `feature` (empty when unknown).
    pub fn values(&self, key: &str, feature: usize) -> Vec<&str> {
        let seen = self.keys.get(key).and_then(|state| state.features.get(feature));
        seen.map(|values| values.iter().map(|s| s.value.as_str()).collect()).unwrap_or_default()
    }

    /// The remembered state of `key`.
    pub fn get(&self, key: &str) -> Option<&KeyState> {
        self.keys.get(key)
    }

    /// Puts a key's state read from a store (not marked changed).
    pub fn load(&mut self, key: String, state: KeyState) {
        if let Some(old) = self.keys.get(&key) {
            self.recency.remove(&(old.last_seen, key.clone()));
        }
        self.recency.insert((state.last_seen, key.clone()));
        self.keys.insert(key, state);
    }

    /// The keys changed since the last call, with their state, in key order.
    pub fn take_changed(&mut self) -> Vec<(String, KeyState)> {
        let mut keys: Vec<String> = self.changed.drain().collect();
        keys.sort_unstable();
        keys.into_iter().filter_map(|k| self.keys.get(&k).cloned().map(|s| (k, s))).collect()
    }

    /// Forgets which keys changed (their state needs no saving).
    pub fn clear_changed(&mut self) {
        self.changed.clear();
    }

    /// Forgets the least recently seen keys beyond `max_keys` (changed keys are kept, so
    /// nothing unsaved is lost).
    pub fn shrink(&mut self) {
        let mut skipped = Vec::new();
        while self.keys.len() > self.settings.max_keys.max(1) {
            let Some((time, key)) = self.recency.pop_first() else { break };
            if self.changed.contains(&key) {
                skipped.push((time, key));
            } else {
                self.keys.remove(&key);
            }
        }
        self.recency.extend(skipped);
    }

    /// Learns one use of `key` at `time` by event `event_id` and says what was unusual about it.
    pub fn observe(&mut self, key: &str, time: Millis, event_id: &str, values: &[String; 5]) -> Verdict {
        let settings = self.settings;
        let mut verdict = Verdict::default();
        let state = match self.keys.get_mut(key) {
            Some(state) => {
                self.recency.remove(&(state.last_seen, key.to_owned()));
                state
            }
            None => self.keys.entry(key.to_owned()).or_insert_with(|| KeyState::new(time)),
        };
        let (silence, mut changed) = state.record_activity(time, event_id, settings.dormant_days * DAY);
        if let Some(silence) = silence {
            verdict.dormant_days = Some(silence / DAY);
        }
        let first_seen = state.first_seen.min(time);
        let learning = time < first_seen.saturating_add(settings.learning_days * DAY);
        for (index, value) in values.iter().enumerate() {
            let seen = &mut state.features[index];
            match seen.iter_mut().find(|s| s.value == *value) {
                Some(existing) => {
                    // This event is (again) the first use of the value unless an earlier one is known.
                    if (time, event_id) <= (existing.first, existing.first_event.as_str()) {
                        if (time, event_id) != (existing.first, existing.first_event.as_str()) {
                            existing.first = time;
                            existing.first_event = event_id.to_owned();
                            changed = true;
                        }
                        if !learning {
                            verdict.reasons.push((REASONS[index], value.clone()));
                        }
                    }
                    if time > existing.last {
                        existing.last = time;
                        changed = true;
                    }
                }
                None => {
                    if !learning {
                        verdict.reasons.push((REASONS[index], value.clone()));
                    }
                    if seen.len() >= settings.max_values {
                        let oldest = seen.iter().enumerate().min_by_key(|(_, s)| (s.last, &s.value)).map(|(i, _)| i);
                        if let Some(i) = oldest {
                            seen.swap_remove(i);
                        }
                    }
                    seen.push(Seen { value: value.clone(), first: time, first_event: event_id.to_owned(), last: time });
                    changed = true;
                }
            }
        }
        changed |= first_seen != state.first_seen || time > state.last_seen;
        state.first_seen = first_seen;
        state.last_seen = state.last_seen.max(time);
        if changed && !self.changed.contains(key) {
            self.changed.insert(key.to_owned());
        }
        self.recency.insert((state.last_seen, key.to_owned()));
        verdict
    }
}

/// Runs the baseline rules over observations in event-time order (each eventID once), learning
/// into `baselines`, and returns their findings. Keys whose state lives in a store must be
/// loaded first ([`Baselines::load`]); the rest start empty.
pub fn run(baselines: &mut Baselines, mut observations: Vec<Observation>, settings: &Settings) -> Vec<Finding> {
    observations.sort_by(|a, b| (a.time, &a.event_id, &a.key).cmp(&(b.time, &b.event_id, &b.key)));
    let mut seen_ids = HashSet::new();
    let mut findings = Vec::new();
    for observation in observations {
        if let Some(id) = &observation.event_id {
            if !seen_ids.insert(id.clone()) {
                continue;
            }
        }
        let event_id = observation.event_id.as_deref().unwrap_or("");
        let verdict = baselines.observe(&observation.key, observation.time, event_id, &observation.features);
        if let Some(days) = verdict.dormant_days {
            let summary = format!("long-term key {} was used again after {days} days of silence", observation.key);
            let details = json!({ "silent_days": days });
            push(&mut findings, settings, &DORMANT_KEY_USED, &observation, Severity::High, summary, details);
        }
        if !verdict.reasons.is_empty() {
            let severity = match verdict.reasons.len() {
                1 => Severity::Low,
                2 => Severity::Medium,
                _ => Severity::High,
            };
            let names: Vec<&str> = verdict.reasons.iter().map(|(reason, _)| *reason).collect();
            let summary = format!("long-term key {} used with {}", observation.key, names.join(", "));
            let new_values: serde_json::Map<String, serde_json::Value> =
                verdict.reasons.iter().map(|(reason, value)| (reason.to_string(), json!(clean(value)))).collect();
            let details = json!({ "reasons": names, "new_values": new_values });
            push(&mut findings, settings, &LONG_TERM_KEY_ANOMALY, &observation, severity, summary, details);
        }
    }
    findings
}

/// Completes the observation's template as a finding of `rule`, honouring rule settings.
pub(crate) fn push(
    findings: &mut Vec<Finding>,
    settings: &Settings,
    rule: &'static RuleInfo,
    observation: &Observation,
    severity: Severity,
    summary: String,
    details: serde_json::Value,
) {
    let policy = settings.policy();
    if !policy.reports(rule, &PrincipalNames::of_principal(&observation.template.principal)) {
        return;
    }
    let mut finding = observation.template.clone();
    let key = observation.event_id.clone().unwrap_or_else(|| finding.id.clone());
    finding.restamp(rule, &[&key]);
    finding.severity = policy.severity_override(rule).unwrap_or(severity);
    finding.summary = clean(&summary);
    if let serde_json::Value::Object(map) = details {
        finding.evidence.details.extend(map);
    }
    findings.push(finding);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(network: &str, agent: &str) -> [String; 5] {
        [network, agent, "us-east-1", "s3.amazonaws.com", "ListBuckets"].map(str::to_owned)
    }

    #[test]
    fn learns_first_then_reports_new_values_with_reasons() {
        let mut b = Baselines::new(BaselineSettings::default());
        for day in 0..8 {
            assert_eq!(
                b.observe("AKIA1", day * DAY, &format!("d{day}"), &values("10.0.0.0/24", "aws-cli/2")),
                Verdict::default()
            );
        }
        // During learning a new value is learned silently.
        let mut fresh = Baselines::new(BaselineSettings::default());
        fresh.observe("AKIA2", 0, "x0", &values("10.0.0.0/24", "aws-cli/2"));
        assert!(fresh.observe("AKIA2", DAY, "x1", &values("203.0.113.0/24", "Boto3/1")).reasons.is_empty());
        let verdict = b.observe("AKIA1", 9 * DAY, "n1", &values("203.0.113.0/24", "Boto3/1"));
        let reasons: Vec<&str> = verdict.reasons.iter().map(|(r, _)| *r).collect();
        assert_eq!(reasons, ["new_network", "new_user_agent"]);
        // The same event again: the same verdict, and nothing changes.
        b.take_changed();
        let again = b.observe("AKIA1", 9 * DAY, "n1", &values("203.0.113.0/24", "Boto3/1"));
        assert_eq!(again.reasons.len(), 2, "a replayed event is judged the same");
        assert!(b.take_changed().is_empty(), "and adds nothing");
        // A later event with the same values is not new.
        assert!(b.observe("AKIA1", 9 * DAY, "n2", &values("203.0.113.0/24", "Boto3/1")).reasons.is_empty());
    }

    #[test]
    fn dormant_after_thirty_days() {
        let mut b = Baselines::new(BaselineSettings::default());
        let v = values("10.0.0.0/24", "aws-cli/2");
        b.observe("AKIA1", 0, "a", &v);
        assert_eq!(b.observe("AKIA1", 29 * DAY, "b", &v).dormant_days, None);
        assert_eq!(b.observe("AKIA1", 60 * DAY, "c", &v).dormant_days, Some(31));
        assert_eq!(b.observe("AKIA1", 60 * DAY, "d", &v).dormant_days, None, "the wake-up is one event");
        assert_eq!(b.observe("AKIA1", 60 * DAY, "c", &v).dormant_days, Some(31), "replayed: the same verdict");
        // An old file arriving late: a use on day 45 shortens the silence before day 60.
        assert_eq!(b.observe("AKIA1", 45 * DAY, "e", &v).dormant_days, None);
        assert_eq!(b.observe("AKIA1", 60 * DAY, "c", &v).dormant_days, None);
    }

    #[test]
    fn memory_is_bounded() {
        let settings = BaselineSettings { max_keys: 100, max_values: 4, ..BaselineSettings::default() };
        let mut b = Baselines::new(settings);
        for i in 0..1_000i64 {
            b.observe(&format!("AKIA{i}"), i, "", &values(&format!("10.0.{}.0/24", i % 7), "aws-cli/2"));
            b.observe("AKIAHOT", i, "", &values(&format!("10.1.{i}.0/24"), "aws-cli/2"));
            if i % 10 == 0 {
                b.take_changed();
                b.shrink();
            }
        }
        b.take_changed();
        b.shrink();
        assert_eq!(b.len(), 100);
        assert!(b.keys.get("AKIAHOT").is_some_and(|s| s.features[0].len() == 4), "the busy key is kept, capped");
        assert_eq!(b.recency.len(), b.keys.len());
    }
}
