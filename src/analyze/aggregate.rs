//! The aggregation pass: merges the findings of aggregating rules in event-time order.
//!
//! Two kinds (see [`PendingKind`]), both keyed by rule and group:
//! - **Merge** (SSE-C writes, SPEC §2.1): the first event of a window alerts at once; every
//!   later event within `window` of it is folded into one update finding carrying the count,
//!   first/last time and a capped sample of the objects with their overwritten version ids. Ten
//!   thousand in-place overwrites in a quarter of an hour make two findings, not ten thousand.
//! - **Burst** (failed `GetPasswordData`, errors from one long-term key): a finding only when
//!   `threshold` events fall within `window`; it then grows with every event that follows within
//!   `window` of the previous one, and is reported once.
//!
//! Pure and deterministic: input order does not matter (findings are sorted by event time, then
//! eventID, first), and time is event time only. The id of an update or a burst is the hash of
//! the rule and its first member, so a re-run yields the same ids and a window that grows across
//! batches keeps its id (its evidence lists every eventID up to the cap).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::finding::{finding_id, Finding, Outcome, Pending, PendingKind};

/// Objects kept in an update's `objects` sample.
pub const SAMPLE_CAP: usize = 100;
/// EventIDs listed in one aggregated finding (the id still covers all of them).
pub const EVENT_ID_CAP: usize = 1_000;

const MINUTE: i64 = 60_000;

/// Applies every pending aggregation; findings of other rules pass through unchanged.
pub fn aggregate(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out = Vec::with_capacity(findings.len());
    let mut groups: BTreeMap<(&'static str, String), Vec<Finding>> = BTreeMap::new();
    for finding in findings {
        match &finding.pending {
            Some(pending) => groups.entry((finding.rule, pending.group.clone())).or_default().push(finding),
            None => out.push(finding),
        }
    }
    for (_, mut members) in groups {
        // Event time, then eventID: the order in which CloudTrail recorded them.
        members.sort_by(|a, b| {
            (a.sort_time, a.evidence.event_ids.first(), &a.id).cmp(&(b.sort_time, b.evidence.event_ids.first(), &b.id))
        });
        let Some(Pending { kind, .. }) = members[0].pending.clone() else { continue };
        match kind {
            PendingKind::Merge { window_minutes } => merge_windows(members, window_minutes * MINUTE, &mut out),
            PendingKind::Burst { threshold, window_minutes } => {
                bursts(members, threshold, window_minutes * MINUTE, &mut out)
            }
        }
    }
    for finding in &mut out {
        finding.pending = None;
    }
    out.sort_by(|a, b| (a.sort_time, a.rule, &a.id).cmp(&(b.sort_time, b.rule, &b.id)));
    out
}

/// Merge: first of each window as is, the rest of the window as one update.
fn merge_windows(members: Vec<Finding>, window: i64, out: &mut Vec<Finding>) {
    let mut rest: Vec<Finding> = Vec::new();
    let mut window_start = i64::MIN;
    for finding in members {
        if rest.is_empty() && window_start == i64::MIN || finding.sort_time >= window_start.saturating_add(window) {
            if !rest.is_empty() {
                out.push(combine(std::mem::take(&mut rest), window, Kind::Update));
            }
            window_start = finding.sort_time;
            out.push(finding);
        } else {
            rest.push(finding);
        }
    }
    if !rest.is_empty() {
        out.push(combine(rest, window, Kind::Update));
    }
}

/// Burst: a run reaches `threshold` events within `window`; it continues while each event comes
/// within `window` of the previous one.
fn bursts(members: Vec<Finding>, threshold: usize, window: i64, out: &mut Vec<Finding>) {
    let mut recent: Vec<Finding> = Vec::new();
    let mut active = false;
    for finding in members {
        let last = recent.last().map(|f| f.sort_time);
        if active && last.is_some_and(|t| finding.sort_time >= t.saturating_add(window)) {
            out.push(combine(std::mem::take(&mut recent), window, Kind::Burst));
            active = false;
        }
        if !active {
            recent.retain(|f| finding.sort_time < f.sort_time.saturating_add(window));
        }
        recent.push(finding);
        active |= recent.len() >= threshold;
    }
    if active {
        out.push(combine(recent, window, Kind::Burst));
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Update,
    Burst,
}

/// One finding standing for `members` (sorted by time, non-empty).
fn combine(members: Vec<Finding>, window: i64, kind: Kind) -> Finding {
    let count = members.len();
    // The first and the last event define the window; they are kept whatever the cap.
    let defining: Vec<String> =
        [&members[0], &members[count - 1]].iter().flat_map(|f| f.evidence.event_ids.iter().cloned()).collect();
    let rest: Vec<String> = members.iter().flat_map(|f| f.evidence.event_ids.iter().cloned()).collect();
    let mut combined = members[0].clone();
    // Named after its first member, not all of them: the same window or burst keeps its id
    // while it grows across batches, so the latest version supersedes the earlier ones.
    let tag = if kind == Kind::Update { "update" } else { "burst" };
    combined.id = finding_id(combined.rule, &[tag, &members[0].id]);
    // Reported before unless some member is new.
    combined.carried = members.iter().all(|f| f.carried);
    combined.last_seen = members[count - 1].last_seen.clone();
    // Ordered as of its last event, which is when the update or burst is complete.
    combined.sort_time = members[count - 1].sort_time;
    combined.severity = members.iter().map(|f| f.severity).max().unwrap_or(combined.severity);
    if members.iter().any(|f| f.outcome == Outcome::Success) {
        combined.outcome = Outcome::Success;
    }
    let minutes = window / MINUTE;
    combined.summary = match kind {
        Kind::Update => format!("{count} more like this within {minutes} min: {}", members[0].summary),
        Kind::Burst if count == 1 => format!("failed attempt: {}", members[0].summary),
        Kind::Burst => format!("{count} failed attempts within {minutes} min: {}", members[0].summary),
    };
    let details = &mut combined.evidence.details;
    details.insert("aggregation".into(), json!(if kind == Kind::Update { "update" } else { "burst" }));
    details.insert("window_minutes".into(), json!(minutes));
    let sample: Vec<Value> = members.iter().take(SAMPLE_CAP).map(sample_entry).collect();
    details.insert("objects".into(), Value::Array(sample));
    details.insert("objects_truncated".into(), json!(count > SAMPLE_CAP));
    combined.evidence.count = count as u64;
    combined.evidence.set_event_ids(defining, rest, EVENT_ID_CAP);
    combined
}

/// What a sample keeps of one member: the target (bucket/key/version, instance …) and its time.
fn sample_entry(finding: &Finding) -> Value {
    let mut entry = serde_json::Map::new();
    for key in
        ["bucket", "key", "copy_source", "overwritten_version_id", "new_version_id", "instance_id", "error_code", "api"]
    {
        if let Some(value) = finding.evidence.details.get(key) {
            entry.insert(key.into(), value.clone());
        }
    }
    entry.insert("time".into(), json!(finding.first_seen));
    Value::Object(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Evidence, Family, Mode, Principal, Severity, SCHEMA};

    fn pending(minute: i64, kind: PendingKind) -> Finding {
        let id = format!("e{minute:05}");
        Finding {
            schema: SCHEMA,
            id: finding_id("r", &[&id]),
            rule: "r",
            family: Family::S3Ransomware,
            severity: Severity::High,
            title: "t",
            summary: "s".into(),
            outcome: Outcome::Success,
            first_seen: Some(format!("{minute}")),
            last_seen: Some(format!("{minute}")),
            account: None,
            region: None,
            principal: Principal::default(),
            source_ip: None,
            user_agent: None,
            resources: Vec::new(),
            evidence: Evidence {
                event_ids: vec![id],
                count: 1,
                event_ids_truncated: false,
                details: serde_json::Map::new(),
            },
            controls: &[],
            mitre: &[],
            remediation: "",
            origin: String::new(),
            mode: Mode::Scan,
            api: None,
            sort_time: minute * MINUTE,
            pending: Some(Pending { group: "g".into(), kind }),
            carried: false,
        }
    }

    #[test]
    fn merge_reports_the_first_at_once_and_the_rest_as_one_update_per_window() {
        let kind = PendingKind::Merge { window_minutes: 15 };
        let findings: Vec<Finding> = (0..40).map(|m| pending(m, kind)).collect();
        let out = aggregate(findings);
        let counts: Vec<u64> = out.iter().map(|f| f.evidence.count).collect();
        assert_eq!(counts, [1, 14, 1, 14, 1, 9]);
        assert!(out.iter().all(|f| f.pending.is_none()));
    }

    #[test]
    fn a_cut_evidence_list_keeps_the_first_and_the_last_event() {
        let kind = PendingKind::Merge { window_minutes: 100_000 };
        let out = aggregate((0..3_000).map(|m| pending(m, kind)).collect());
        let update = &out[1];
        assert_eq!(update.evidence.count, 2_999);
        assert!(update.evidence.event_ids_truncated);
        assert_eq!(update.evidence.event_ids.len(), EVENT_ID_CAP);
        for defining in ["e00001", "e02999"] {
            assert!(update.evidence.event_ids.iter().any(|id| id == defining), "{defining} was cut");
        }
    }

    #[test]
    fn merge_is_order_independent() {
        let kind = PendingKind::Merge { window_minutes: 15 };
        let forward = aggregate((0..40).map(|m| pending(m, kind)).collect());
        let backward = aggregate((0..40).rev().map(|m| pending(m, kind)).collect());
        assert_eq!(forward, backward);
    }

    #[test]
    fn bursts_need_the_threshold_within_the_window() {
        let kind = PendingKind::Burst { threshold: 10, window_minutes: 60 };
        assert!(aggregate((0..9).map(|m| pending(m, kind)).collect()).is_empty());
        let spread: Vec<Finding> = (0..10).map(|m| pending(m * 61, kind)).collect();
        assert!(aggregate(spread).is_empty(), "ten failures, but never ten within an hour");
        let out = aggregate((0..30).map(|m| pending(m, kind)).collect());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].evidence.count, 30);
        assert_eq!(out[0].evidence.event_ids.len(), 30);
    }
}
