//! Incidents (SPEC §8): findings folded per actor, so that a responder reads the story
//! (enumeration → self-escalation → a new key → its use) in one place instead of as unrelated
//! rule hits.
//!
//! The actor is the principal identity ([`crate::event::principal_identity`]: an IAM user's ARN,
//! a role's ARN rather than one of its sessions, the root ARN, or a bare access key id when the
//! event had nothing else), so that an intruder's stolen key and the key it minted for the same
//! user are one incident; or the source IP address. Each incident lists its findings in time
//! order with the highest severity, first and last seen, the source IPs, user agents and keys
//! used, and how many raw events the actor made in the window (counted during decoding).
//! Pure: no clock, no I/O.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::event::Event;
use crate::finding::{clean, finding_id, Finding, Severity};

/// Schema id of an incident.
pub const INCIDENT_SCHEMA: &str = "trailhound.incident/v1";
/// Distinct actors whose raw events a run counts (more are not counted).
pub const ACTOR_CAP: usize = 100_000;
/// Source IPs, user agents and keys an incident lists at most.
const LIST_CAP: usize = 50;

/// What findings are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// The principal identity.
    Principal,
    /// The source IP address.
    Ip,
}

impl GroupBy {
    /// The word used on the command line and in the output.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Principal => "principal",
            GroupBy::Ip => "ip",
        }
    }

    /// The actor of an event (cleaned), for counting raw events.
    pub fn actor_of_event(self, event: &Event<'_>) -> Option<String> {
        match self {
            GroupBy::Principal => event.principal_identity().map(|p| clean(&p)),
            GroupBy::Ip => event.source_ip.map(clean),
        }
    }

    /// The actor of a finding (its strings are already cleaned).
    pub fn actor_of_finding(self, finding: &Finding) -> Option<String> {
        match self {
            GroupBy::Principal => finding.principal.identity(),
            GroupBy::Ip => finding.source_ip.clone(),
        }
    }
}

/// One finding as an incident cites it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncidentFinding {
    /// Finding id (the full finding is in the findings output).
    pub id: String,
    /// Rule id.
    pub rule: &'static str,
    /// Severity.
    pub severity: Severity,
    /// First event time.
    pub first_seen: Option<String>,
    /// Last event time.
    pub last_seen: Option<String>,
    /// The finding's summary.
    pub summary: String,
    /// Events it covers.
    pub count: u64,
}

/// Findings of one actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    /// `trailhound.incident/v1`.
    pub schema: &'static str,
    /// Deterministic: a hash of the grouping and the actor.
    pub id: String,
    /// `principal` or `ip`.
    pub group_by: GroupBy,
    /// The principal identity or the IP address.
    pub actor: String,
    /// The highest severity among its findings.
    pub severity: Severity,
    /// Earliest event time of its findings.
    pub first_seen: Option<String>,
    /// Latest event time of its findings.
    pub last_seen: Option<String>,
    /// Source IP addresses its findings came from (sorted, at most 50).
    pub source_ips: Vec<String>,
    /// User agents its findings came with (sorted, at most 50).
    pub user_agents: Vec<String>,
    /// Access keys its findings were signed with (sorted, at most 50).
    pub access_key_ids: Vec<String>,
    /// Raw events of the actor in the window, when counted.
    pub raw_events: Option<u64>,
    /// Its findings in event-time order.
    pub findings: Vec<IncidentFinding>,
}

/// Folds `findings` into incidents, highest severity first, then earliest; `raw_events` is the
/// per-actor event count of the run.
pub fn group(findings: &[Finding], by: GroupBy, raw_events: &BTreeMap<String, u64>) -> Vec<Incident> {
    let mut actors: BTreeMap<String, Vec<&Finding>> = BTreeMap::new();
    for finding in findings {
        let actor = by.actor_of_finding(finding).unwrap_or_else(|| "unknown".to_owned());
        actors.entry(actor).or_default().push(finding);
    }
    let mut incidents: Vec<Incident> =
        actors.into_iter().map(|(actor, members)| incident(by, actor, members, raw_events)).collect();
    incidents.sort_by(|a, b| (b.severity, &a.first_seen, &a.actor).cmp(&(a.severity, &b.first_seen, &b.actor)));
    incidents
}

fn incident(by: GroupBy, actor: String, mut members: Vec<&Finding>, raw_events: &BTreeMap<String, u64>) -> Incident {
    // In the order they began: a burst is placed at its first failure, not its last.
    members
        .sort_by(|a, b| (&a.first_seen, a.sort_time, a.rule, &a.id).cmp(&(&b.first_seen, b.sort_time, b.rule, &b.id)));
    let distinct = |values: Vec<Option<&String>>| {
        let mut values: Vec<String> = values.into_iter().flatten().cloned().collect();
        values.sort_unstable();
        values.dedup();
        values.truncate(LIST_CAP);
        values
    };
    let first_seen = members.iter().filter_map(|f| f.first_seen.clone()).min();
    let last_seen = members.iter().filter_map(|f| f.last_seen.clone()).max();
    Incident {
        schema: INCIDENT_SCHEMA,
        id: finding_id("incident", &[by.as_str(), &actor]),
        group_by: by,
        severity: members.iter().map(|f| f.severity).max().unwrap_or(Severity::Info),
        first_seen,
        last_seen,
        source_ips: distinct(members.iter().map(|f| f.source_ip.as_ref()).collect()),
        user_agents: distinct(members.iter().map(|f| f.user_agent.as_ref()).collect()),
        access_key_ids: distinct(members.iter().map(|f| f.principal.access_key_id.as_ref()).collect()),
        raw_events: raw_events.get(&actor).copied(),
        findings: members
            .iter()
            .map(|f| IncidentFinding {
                id: f.id.clone(),
                rule: f.rule,
                severity: f.severity,
                first_seen: f.first_seen.clone(),
                last_seen: f.last_seen.clone(),
                summary: f.summary.clone(),
                count: f.evidence.count,
            })
            .collect(),
        actor,
    }
}
