//! The correlation pass: conclusions that need findings and facts from several events, in
//! event-time order, after aggregation.
//!
//! - **Instance roles** ([`Fact::InstanceRole`]): a role created with a trust policy for
//!   `ec2.amazonaws.com`, or added to an instance profile, is an instance role from then on; an
//!   `iam.admin_policy_attached` finding on it at or after that time becomes critical.
//! - **`s3.ransomware_chain`**: SSE-C write findings plus, by the same principal within 24 hours,
//!   a short-expiration lifecycle, suspended versioning, at least [`MASS_DELETE_OBJECTS`]
//!   deleted objects ([`Fact::S3Deletes`]), or ransom-note-like uploads ([`is_ransom_note`]) to
//!   at least [`RANSOM_NOTE_PREFIXES`] prefixes ([`Fact::NoteUploads`]).
//!
//! Facts are extracted per event ([`extract`], pure) and compacted per object. Facts and findings
//! carried over from earlier input ([`crate::stateful`]) take part like new ones, but a
//! conclusion resting only on carried evidence was reported before and is marked carried.

use std::collections::{BTreeMap, HashMap};

use percent_encoding::percent_decode_str;
use serde_json::json;

use super::finding::{clean, Finding, Outcome, Severity};
use super::rules::RANSOMWARE_CHAIN;
use super::Settings;
use crate::event::shape::{elements, get_any, text_at};
use crate::event::time::Millis;
use crate::event::Event;

/// Deleted objects by one principal within the window that count as mass deletes.
pub const MASS_DELETE_OBJECTS: u64 = 100;
/// The chain window.
pub const CHAIN_WINDOW: Millis = 24 * 3_600_000;
/// EventIDs a fact or a chain keeps.
const ID_CAP: usize = 50;

/// Distinct `bucket/prefix` folders that ransom-note-like uploads must reach to count.
pub const RANSOM_NOTE_PREFIXES: usize = 5;
/// Prefixes a note fact keeps.
const PREFIX_CAP: usize = 100;

/// The events whose request bodies facts are read from.
pub const FACT_EVENTS: &[&str] = &["CreateRole", "AddRoleToInstanceProfile", "DeleteObject", "DeleteObjects"];

/// Something learned from an event that later conclusions use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Fact {
    /// A role that EC2 instances use.
    InstanceRole {
        /// Role name.
        role: String,
        /// When it became known.
        time: Millis,
    },
    /// Objects deleted by a principal (compacted per object and principal).
    S3Deletes {
        /// Principal (cleaned, as in findings).
        principal: String,
        /// Objects deleted.
        objects: u64,
        /// First delete.
        first: Millis,
        /// Last delete.
        last: Millis,
        /// Some of the eventIDs.
        event_ids: Vec<String>,
        /// From earlier input.
        #[serde(skip)]
        carried: bool,
    },
    /// Ransom-note-like objects uploaded by a principal (compacted per object and principal).
    NoteUploads {
        /// Principal (cleaned, as in findings).
        principal: String,
        /// Distinct `bucket/prefix` folders written to, sorted, capped.
        prefixes: Vec<String>,
        /// First upload.
        first: Millis,
        /// Last upload.
        last: Millis,
        /// Some of the eventIDs.
        event_ids: Vec<String>,
        /// From earlier input.
        #[serde(skip)]
        carried: bool,
    },
}

impl Fact {
    /// The latest event time the fact rests on.
    pub fn time(&self) -> Millis {
        match self {
            Fact::InstanceRole { time, .. } => *time,
            Fact::S3Deletes { last, .. } | Fact::NoteUploads { last, .. } => *last,
        }
    }

    /// Marks a fact as coming from earlier input.
    pub fn mark_carried(&mut self) {
        match self {
            Fact::InstanceRole { .. } => {}
            Fact::S3Deletes { carried, .. } | Fact::NoteUploads { carried, .. } => *carried = true,
        }
    }
}

/// Words that ransom notes are named with (`README_TO_DECRYPT.txt`, `HOW_TO_RECOVER_FILES.html`).
const NOTE_WORDS: &[&str] =
    &["readme", "read_me", "read-me", "decrypt", "ransom", "recover", "restore", "how_to", "how-to", "your_files"];
const NOTE_EXTENSIONS: &[&str] = &[".txt", ".html", ".htm", ".hta", ".md", ".rtf"];

/// True when an object key's file name looks like a ransom note: a note word and a text or
/// HTML extension. A single README is common; the chain asks for many prefixes.
pub fn is_ransom_note(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key).to_ascii_lowercase();
    NOTE_EXTENSIONS.iter().any(|ext| name.ends_with(ext)) && NOTE_WORDS.iter().any(|word| name.contains(word))
}

/// A cheap look at a raw `PutObject` record: does its `key` look like a ransom note? Only such
/// uploads are parsed whole (plain writes are by far the most common data event).
pub fn raw_may_be_note(raw: &[u8]) -> bool {
    let Some(at) = memchr::memmem::find(raw, b"\"key\"") else { return false };
    let rest = &raw[at + 5..];
    let Some(open) = memchr::memchr(b'"', rest) else { return false };
    let value = &rest[open + 1..];
    let end = memchr::memchr(b'"', value).unwrap_or(value.len());
    std::str::from_utf8(&value[..end]).is_ok_and(is_ransom_note)
}

/// The fact an event carries, if any.
pub fn extract(event: &Event<'_>) -> Option<Fact> {
    let time = event.event_time?;
    if event.failed() {
        return None;
    }
    let request = event.request;
    match (event.service(), event.event_name) {
        ("iam", "AddRoleToInstanceProfile") => {
            Some(Fact::InstanceRole { role: clean(text_at(request?, &["roleName"])?), time })
        }
        ("iam", "CreateRole") => {
            let request = request?;
            let document = text_at(request, &["assumeRolePolicyDocument"])?;
            let trusts_ec2 = percent_decode_str(document).decode_utf8_lossy().contains("ec2.amazonaws.com");
            let role = text_at(request, &["roleName"])?;
            trusts_ec2.then(|| Fact::InstanceRole { role: clean(role), time })
        }
        ("s3", "DeleteObject" | "DeleteObjects") => {
            let objects = match event.event_name {
                "DeleteObject" => 1,
                _ => request
                    .and_then(|r| get_any(r, &["delete", "Delete"]))
                    .map(|d| elements(get_any(d, &["Object", "Objects"])).len() as u64)
                    .unwrap_or(1)
                    .max(1),
            };
            Some(Fact::S3Deletes {
                principal: clean(event.principal()?),
                objects,
                first: time,
                last: time,
                event_ids: event.event_id.map(clean).into_iter().collect(),
                carried: false,
            })
        }
        ("s3", "PutObject") => {
            let request = request?;
            let key = text_at(request, &["key"])?;
            if !is_ransom_note(key) {
                return None;
            }
            let bucket = text_at(request, &["bucketName"]).unwrap_or("?");
            let folder = key.rsplit_once('/').map_or("", |(folder, _)| folder);
            Some(Fact::NoteUploads {
                principal: clean(event.principal()?),
                prefixes: vec![clean(&format!("{bucket}/{folder}"))],
                first: time,
                last: time,
                event_ids: event.event_id.map(clean).into_iter().collect(),
                carried: false,
            })
        }
        _ => None,
    }
}

/// Folds the deletes and the note uploads of one object into one fact per principal each.
pub fn compact(facts: &mut Vec<Fact>) {
    let mut folded: BTreeMap<(u8, String), Fact> = BTreeMap::new();
    facts.retain(|fact| {
        let key = match fact {
            Fact::InstanceRole { .. } => return true,
            Fact::S3Deletes { principal, .. } => (0, principal.clone()),
            Fact::NoteUploads { principal, .. } => (1, principal.clone()),
        };
        match folded.get_mut(&key) {
            Some(existing) => fold(existing, fact),
            None => {
                folded.insert(key, fact.clone());
            }
        }
        false
    });
    facts.extend(folded.into_values());
}

/// Adds `fact` into `into` (the same kind and principal).
fn fold(into: &mut Fact, fact: &Fact) {
    match (into, fact) {
        (
            Fact::S3Deletes { objects: o, first: f, last: l, event_ids: ids, .. },
            Fact::S3Deletes { objects, first, last, event_ids, .. },
        ) => {
            *o += objects;
            *f = (*f).min(*first);
            *l = (*l).max(*last);
            ids.extend(event_ids.iter().cloned());
            ids.truncate(ID_CAP);
        }
        (
            Fact::NoteUploads { prefixes: p, first: f, last: l, event_ids: ids, .. },
            Fact::NoteUploads { prefixes, first, last, event_ids, .. },
        ) => {
            p.extend(prefixes.iter().cloned());
            p.sort_unstable();
            p.dedup();
            p.truncate(PREFIX_CAP);
            *f = (*f).min(*first);
            *l = (*l).max(*last);
            ids.extend(event_ids.iter().cloned());
            ids.truncate(ID_CAP);
        }
        _ => {}
    }
}

/// Applies the facts to the findings: instance-role upgrades in place, chain findings appended
/// (unless the rule is disabled; allowlisted principals get no chain).
pub fn correlate(findings: &mut Vec<Finding>, facts: &[Fact], settings: &Settings) {
    upgrade_instance_roles(findings, facts);
    if settings.disabled_rules.contains(RANSOMWARE_CHAIN.id) {
        return;
    }
    let overrides = settings.rules.get(RANSOMWARE_CHAIN.id);
    let chains = ransomware_chains(findings, facts)
        .into_iter()
        .filter(|chain| !overrides.is_some_and(|o| o.allows(&chain.principal)));
    let severity = overrides.and_then(|o| o.severity);
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
    for finding in findings.iter_mut().filter(|f| f.rule == "iam.admin_policy_attached") {
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
        let what = match finding.rule {
            "s3.ssec_copy_overwrite" | "s3.ssec_write" => {
                encryptions.entry(principal).or_default().push(finding);
                continue;
            }
            "s3.lifecycle_short_expiration" => "short_expiration",
            "s3.versioning_suspended" => "versioning_suspended",
            _ => continue,
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
