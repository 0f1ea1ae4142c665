//! The correlation pass: conclusions that need findings and facts from several events, in
//! event-time order, after aggregation.
//!
//! - **Instance roles** ([`Fact::InstanceRole`]): a role created with a trust policy for
//!   `ec2.amazonaws.com`, or added to an instance profile, is an instance role from then on; an
//!   `iam.admin_policy_attached` finding on it at or after that time becomes critical.
//! - **`s3.ransomware_chain`**: SSE-C write findings plus, by the same principal within 24 hours,
//!   a short-expiration lifecycle, suspended versioning, at least [`MASS_DELETE_OBJECTS`]
//!   deleted objects ([`Fact::S3Deletes`]), or ransom-note-like uploads ([`crate::detect::facts::is_ransom_note`]) to
//!   at least [`RANSOM_NOTE_PREFIXES`] prefixes ([`Fact::NoteUploads`]).
//!
//! Facts are extracted per event ([`crate::detect::facts::extract`], pure) and compacted per object. Facts and findings
//! carried over from earlier input ([`crate::analyze::passes`]) take part like new ones, but a
//! conclusion resting only on carried evidence was reported before and is marked carried.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;

use crate::detect::facts::{Fact, ID_CAP, MASS_DELETE_OBJECTS, RANSOM_NOTE_PREFIXES};
use crate::detect::rules::{
    ADMIN_POLICY_ATTACHED, LIFECYCLE_SHORT_EXPIRATION, RANSOMWARE_CHAIN, SSEC_COPY_OVERWRITE, SSEC_WRITE,
    VERSIONING_SUSPENDED,
};
use crate::event::time::Millis;
use crate::finding::{clean, Finding, Outcome, Severity};
use crate::settings::{PrincipalNames, Settings};

/// The chain window.
pub const CHAIN_WINDOW: Millis = 24 * 3_600_000;

/// Applies the facts to the findings: instance-role upgrades in place, chain findings appended
/// (unless the rule is disabled; allowlisted principals get no chain).
pub fn correlate(findings: &mut Vec<Finding>, facts: &[Fact], settings: &Settings) {
    upgrade_instance_roles(findings, facts);
    let policy = settings.policy();
    if !policy.enabled(&RANSOMWARE_CHAIN) {
        return;
    }
    let chains = ransomware_chains(findings, facts)
        .into_iter()
        .filter(|chain| !policy.silences(&RANSOMWARE_CHAIN, &PrincipalNames::of_principal(&chain.principal)));
    let severity = policy.severity_override(&RANSOMWARE_CHAIN);
    findings.extend(chains.map(|mut chain| {
        chain.severity = severity.unwrap_or(chain.severity);
        chain
    }));
}

fn upgrade_instance_roles(findings: &mut [Finding], facts: &[Fact]) {
    let mut known: HashMap<&str, Millis> = HashMap::new();
    for fact in facts {
        if let Fact::InstanceRole { role, time } = fact {
            let entry = known.entry(role.as_str()).or_insert(*time);
            *entry = (*entry).min(*time);
        }
    }
    for finding in findings.iter_mut().filter(|f| f.rule == ADMIN_POLICY_ATTACHED.id) {
        let role = finding.evidence.details.get("role").and_then(|r| r.as_str()).unwrap_or("");
        if known.get(role).is_some_and(|since| *since <= finding.sort_time) {
            finding.severity = Severity::Critical;
            finding.evidence.details.insert("instance_role".into(), json!(true));
        }
    }
}

/// A piece of evidence for a chain: when, what, which events.
struct Step {
    time: Millis,
    what: &'static str,
    event_ids: Vec<String>,
    objects: u64,
    prefixes: Vec<String>,
    carried: bool,
}

fn principal_of(finding: &Finding) -> Option<String> {
    finding
        .principal
        .arn
        .clone()
        .or_else(|| finding.principal.access_key_id.clone())
        .or_else(|| finding.principal.user_name.clone())
}

fn ransomware_chains(findings: &[Finding], facts: &[Fact]) -> Vec<Finding> {
    let mut encryptions: BTreeMap<String, Vec<&Finding>> = BTreeMap::new();
    let mut companions: HashMap<String, Vec<Step>> = HashMap::new();
    // Only calls that succeeded encrypted or destroyed anything.
    for finding in findings.iter().filter(|f| f.outcome == Outcome::Success) {
        let Some(principal) = principal_of(finding) else { continue };
        let rule = finding.rule;
        let what = if rule == SSEC_COPY_OVERWRITE.id || rule == SSEC_WRITE.id {
            encryptions.entry(principal).or_default().push(finding);
            continue;
        } else if rule == LIFECYCLE_SHORT_EXPIRATION.id {
            "short_expiration"
        } else if rule == VERSIONING_SUSPENDED.id {
            "versioning_suspended"
        } else {
            continue;
        };
        let step = Step {
            time: finding.sort_time,
            what,
            event_ids: finding.evidence.event_ids.clone(),
            objects: 0,
            prefixes: Vec::new(),
            carried: finding.carried,
        };
        companions.entry(principal).or_default().push(step);
    }
    for fact in facts {
        let (principal, step) = match fact {
            Fact::S3Deletes { principal, objects, last, event_ids, carried, .. } => {
                let step = Step {
                    time: *last,
                    what: "mass_delete",
                    event_ids: event_ids.clone(),
                    objects: *objects,
                    prefixes: Vec::new(),
                    carried: *carried,
                };
                (principal, step)
            }
            Fact::NoteUploads { principal, prefixes, last, event_ids, carried, .. } => {
                let step = Step {
                    time: *last,
                    what: "ransom_notes",
                    event_ids: event_ids.clone(),
                    objects: 0,
                    prefixes: prefixes.clone(),
                    carried: *carried,
                };
                (principal, step)
            }
            Fact::InstanceRole { .. } => continue,
        };
        companions.entry(principal.clone()).or_default().push(step);
    }
    let mut chains = Vec::new();
    for (principal, mut writes) in encryptions {
        writes.sort_by_key(|f| (f.sort_time, f.id.clone()));
        let steps = companions.get(&principal).map(Vec::as_slice).unwrap_or_default();
        let mut episode_end = Millis::MIN;
        for anchor in &writes {
            if anchor.sort_time <= episode_end {
                continue;
            }
            let near = |t: Millis| (t - anchor.sort_time).abs() <= CHAIN_WINDOW;
            let near_steps: Vec<&Step> = steps.iter().filter(|s| near(s.time)).collect();
            let deleted: u64 = near_steps.iter().filter(|s| s.what == "mass_delete").map(|s| s.objects).sum();
            let mut prefixes: Vec<&str> =
                near_steps.iter().flat_map(|s| s.prefixes.iter().map(String::as_str)).collect();
            prefixes.sort_unstable();
            prefixes.dedup();
            let counts = |what: &str| match what {
                "mass_delete" => deleted >= MASS_DELETE_OBJECTS,
                "ransom_notes" => prefixes.len() >= RANSOM_NOTE_PREFIXES,
                _ => true,
            };
            // Only the steps that count are evidence (a few deletes are not).
            let found: Vec<&Step> = near_steps.into_iter().filter(|s| counts(s.what)).collect();
            let mut components: Vec<&str> = found.iter().map(|s| s.what).collect();
            components.sort_unstable();
            components.dedup();
            if components.is_empty() {
                continue;
            }
            episode_end = anchor.sort_time + CHAIN_WINDOW;
            let encrypted: Vec<&&Finding> = writes.iter().filter(|w| near(w.sort_time)).collect();
            chains.push(chain_finding(anchor, &encrypted, &found, &components, deleted, prefixes.len()));
        }
    }
    chains
}

fn chain_finding(
    anchor: &Finding,
    writes: &[&&Finding],
    steps: &[&Step],
    components: &[&str],
    deleted: u64,
    note_prefixes: usize,
) -> Finding {
    let mut ids: Vec<String> = writes.iter().flat_map(|w| w.evidence.event_ids.iter().cloned()).collect();
    for step in steps {
        ids.extend(step.event_ids.iter().cloned());
    }
    ids.sort_unstable();
    ids.dedup();
    let objects: u64 = writes.iter().map(|w| w.evidence.count).sum();
    let mut chain = anchor.clone();
    // Named after the write that anchors the episode, so it keeps its id as evidence arrives.
    chain.restamp(&RANSOMWARE_CHAIN, &[&anchor.id]);
    chain.summary = clean(&format!(
        "{objects} SSE-C write(s) with {} by the same principal within 24 h; first: {}",
        components.join(", "),
        anchor.summary
    ));
    let last = steps.iter().map(|s| s.time).chain(writes.iter().map(|w| w.sort_time)).max().unwrap_or(anchor.sort_time);
    chain.sort_time = last;
    chain.last_seen = Some(crate::event::time::format_rfc3339(last));
    let mut details = serde_json::Map::new();
    details.insert("components".into(), json!(components));
    details.insert("sse_c_writes".into(), json!(objects));
    details.insert("objects_deleted".into(), json!(deleted));
    details.insert("ransom_note_prefixes".into(), json!(note_prefixes));
    chain.carried = writes.iter().all(|w| w.carried) && steps.iter().all(|s| s.carried);
    chain.evidence.count = (objects as usize + steps.len()) as u64;
    chain.evidence.event_ids_truncated = ids.len() > ID_CAP * 20;
    ids.truncate(ID_CAP * 20);
    chain.evidence.event_ids = ids;
    chain.evidence.details = details;
    chain
}
