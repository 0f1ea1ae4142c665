//! The correlation pass: conclusions that need findings and facts from several events, in
//! event-time order, after aggregation.
//!
//! - **Instance roles** ([`Fact::InstanceRole`]): a role created with a trust policy for
//!   `ec2.amazonaws.com`, or added to an instance profile, is an instance role from then on; an
//!   `iam.admin_policy_attached` finding on it at or after that time becomes critical.
//! - **`s3.ransomware_chain`**: SSE-C write findings plus, by the same principal identity (a
//!   role, not its session) within 24 hours and **on a bucket it SSE-C-wrote**: a short-expiration
//!   lifecycle, suspended versioning, at least [`MASS_DELETE_OBJECTS`] deleted objects in that
//!   bucket ([`Fact::S3Deletes`]), the deletion of an encrypted copy's source or of a named prior
//!   version of an object it encrypted (`originals_deleted`), or ransom-note-like uploads
//!   ([`crate::detect::facts::is_ransom_note`]) to at least [`RANSOM_NOTE_PREFIXES`] prefixes of
//!   those buckets ([`Fact::NoteUploads`]). A pipeline role that writes with SSE-C to some
//!   buckets and cleans up others all day is not a chain.
//!
//! Facts are extracted per event ([`crate::detect::facts::extract`], pure) and compacted per object. Facts and findings
//! carried over from earlier input ([`crate::analyze::passes`]) take part like new ones, but a
//! conclusion resting only on carried evidence was reported before and is marked carried.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::json;

use crate::detect::facts::{DeletedKey, Fact, ID_CAP, MASS_DELETE_OBJECTS, RANSOM_NOTE_PREFIXES};
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

/// A piece of evidence for a chain: when, what, where, which events.
struct Step<'a> {
    time: Millis,
    what: &'static str,
    /// The bucket it happened in (`""` when unknown: facts stored by an older version).
    bucket: &'a str,
    event_ids: &'a [String],
    objects: u64,
    deleted: &'a [DeletedKey],
    prefixes: &'a [String],
    carried: bool,
}

fn detail<'a>(finding: &'a Finding, key: &str) -> &'a str {
    finding.evidence.details.get(key).and_then(|v| v.as_str()).unwrap_or("")
}

/// What a set of SSE-C write findings touched: buckets, `bucket/key` written, copy sources.
#[derive(Default)]
struct Written<'a> {
    buckets: Vec<&'a str>,
    objects: HashSet<String>,
    sources: HashSet<&'a str>,
}

impl<'a> Written<'a> {
    /// The buckets the writes went to (the objects are read only when a delete needs them).
    fn of(writes: &[&&'a Finding]) -> Written<'a> {
        let mut buckets: Vec<&str> = writes.iter().map(|w| detail(w, "bucket")).collect();
        buckets.sort_unstable();
        buckets.dedup();
        Written { buckets, ..Written::default() }
    }

    /// Reads the objects and copy sources of the writes (and their samples).
    fn read_objects(&mut self, writes: &[&&'a Finding]) {
        for write in writes {
            let bucket = detail(write, "bucket");
            let sample = write.evidence.details.get("objects").and_then(|o| o.as_array());
            let entries = std::iter::once(&write.evidence.details)
                .chain(sample.into_iter().flatten().filter_map(|o| o.as_object()));
            for entry in entries {
                let field = |key: &str| entry.get(key).and_then(|v| v.as_str());
                if let Some(key) = field("key") {
                    self.objects.insert(format!("{bucket}/{key}"));
                }
                if let Some(source) = field("copy_source") {
                    self.sources.insert(source);
                }
            }
        }
    }

    fn has_bucket(&self, bucket: &str) -> bool {
        bucket.is_empty() || self.buckets.binary_search(&bucket).is_ok()
    }

    /// Deletes that destroy the way back: an encrypted copy's source, or a named prior version
    /// of an object the principal encrypted.
    fn originals_deleted(&self, step: &Step<'_>) -> bool {
        step.deleted.iter().any(|d| {
            let path = format!("{}/{}", step.bucket, d.key);
            self.sources.contains(path.as_str()) || (d.versioned && self.objects.contains(&path))
        })
    }
}

fn ransomware_chains(findings: &[Finding], facts: &[Fact]) -> Vec<Finding> {
    let mut encryptions: BTreeMap<String, Vec<&Finding>> = BTreeMap::new();
    let mut companions: HashMap<String, Vec<Step<'_>>> = HashMap::new();
    // Only calls that succeeded encrypted or destroyed anything.
    for finding in findings.iter().filter(|f| f.outcome == Outcome::Success) {
        let Some(principal) = finding.principal.identity() else { continue };
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
            bucket: detail(finding, "bucket"),
            event_ids: &finding.evidence.event_ids,
            objects: 0,
            deleted: &[],
            prefixes: &[],
            carried: finding.carried,
        };
        companions.entry(principal).or_default().push(step);
    }
    for fact in facts {
        let (principal, step) = match fact {
            Fact::S3Deletes { principal, bucket, objects, keys, last, event_ids, carried, .. } => {
                let step = Step {
                    time: *last,
                    what: "mass_delete",
                    bucket,
                    event_ids,
                    objects: *objects,
                    deleted: keys,
                    prefixes: &[],
                    carried: *carried,
                };
                (principal, step)
            }
            Fact::NoteUploads { principal, prefixes, last, event_ids, carried, .. } => {
                let step = Step {
                    time: *last,
                    what: "ransom_notes",
                    bucket: "",
                    event_ids,
                    objects: 0,
                    deleted: &[],
                    prefixes,
                    carried: *carried,
                };
                (principal, step)
            }
            Fact::InstanceRole { .. } | Fact::KeyMinted(_) => continue,
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
            let encrypted: Vec<&&Finding> = writes.iter().filter(|w| near(w.sort_time)).collect();
            let mut written = Written::of(&encrypted);
            let Some(conclusion) = conclude(&mut written, &encrypted, steps.iter().filter(|s| near(s.time))) else {
                continue;
            };
            episode_end = anchor.sort_time + CHAIN_WINDOW;
            chains.push(chain_finding(anchor, &encrypted, &written, &conclusion));
        }
    }
    chains
}

/// The steps that make a chain, and what they add up to.
struct Conclusion<'s, 'a> {
    steps: Vec<&'s Step<'a>>,
    components: Vec<&'static str>,
    deleted: u64,
    note_prefixes: usize,
}

/// Judges the steps near an episode against what the principal encrypted: only steps on the
/// buckets it SSE-C-wrote count. `None` when nothing makes it a chain.
fn conclude<'s, 'a, 'w>(
    written: &mut Written<'w>,
    writes: &[&&'w Finding],
    near: impl Iterator<Item = &'s Step<'a>>,
) -> Option<Conclusion<'s, 'a>> {
    let on_written: Vec<&Step<'_>> = near
        .filter(|s| match s.what {
            "ransom_notes" => s.prefixes.iter().any(|p| written.has_bucket(p.split('/').next().unwrap_or(""))),
            _ => written.has_bucket(s.bucket),
        })
        .collect();
    let mut per_bucket: BTreeMap<&str, u64> = BTreeMap::new();
    for step in on_written.iter().filter(|s| s.what == "mass_delete") {
        *per_bucket.entry(step.bucket).or_default() += step.objects;
    }
    let mass_buckets: Vec<&str> =
        per_bucket.iter().filter(|(_, n)| **n >= MASS_DELETE_OBJECTS).map(|(bucket, _)| *bucket).collect();
    let mut prefixes: Vec<&str> = on_written
        .iter()
        .flat_map(|s| s.prefixes.iter().map(String::as_str))
        .filter(|p| written.has_bucket(p.split('/').next().unwrap_or("")))
        .collect();
    prefixes.sort_unstable();
    prefixes.dedup();
    if on_written.iter().any(|s| !s.deleted.is_empty()) {
        written.read_objects(writes);
    }
    let mut steps = Vec::new();
    let mut components = Vec::new();
    for step in on_written {
        let component = match step.what {
            "mass_delete" if written.originals_deleted(step) => "originals_deleted",
            "mass_delete" if mass_buckets.contains(&step.bucket) => "mass_delete",
            "mass_delete" => continue,
            "ransom_notes" if prefixes.len() >= RANSOM_NOTE_PREFIXES => "ransom_notes",
            "ransom_notes" => continue,
            other => other,
        };
        components.push(component);
        steps.push(step);
    }
    components.sort_unstable();
    components.dedup();
    if components.is_empty() {
        return None;
    }
    let deleted = steps.iter().filter(|s| s.what == "mass_delete").map(|s| s.objects).sum();
    Some(Conclusion { steps, components, deleted, note_prefixes: prefixes.len() })
}

fn chain_finding(
    anchor: &Finding,
    writes: &[&&Finding],
    written: &Written<'_>,
    conclusion: &Conclusion<'_, '_>,
) -> Finding {
    let steps = &conclusion.steps;
    // The events that make it a chain come first: every step's, the first and the last write's.
    let last_write = writes.iter().max_by_key(|w| (w.sort_time, &w.id)).copied().unwrap_or(&anchor);
    let defining: Vec<String> = steps
        .iter()
        .flat_map(|s| s.event_ids.iter())
        .chain(&anchor.evidence.event_ids)
        .chain(&last_write.evidence.event_ids)
        .cloned()
        .collect();
    let rest = writes.iter().flat_map(|w| w.evidence.event_ids.iter().cloned());
    let objects: u64 = writes.iter().map(|w| w.evidence.count).sum();
    let mut chain = anchor.clone();
    // Named after the write that anchors the episode, so it keeps its id as evidence arrives.
    chain.restamp(&RANSOMWARE_CHAIN, &[&anchor.id]);
    chain.summary = clean(&format!(
        "{objects} SSE-C write(s) to {} with {} by the same principal within 24 h; first: {}",
        written.buckets.join(", "),
        conclusion.components.join(", "),
        anchor.summary
    ));
    let last = steps.iter().map(|s| s.time).chain(writes.iter().map(|w| w.sort_time)).max().unwrap_or(anchor.sort_time);
    chain.sort_time = last;
    chain.last_seen = Some(crate::event::time::format_rfc3339(last));
    let mut details = serde_json::Map::new();
    details.insert("components".into(), json!(conclusion.components));
    details.insert("buckets".into(), json!(written.buckets));
    details.insert("sse_c_writes".into(), json!(objects));
    details.insert("objects_deleted".into(), json!(conclusion.deleted));
    details.insert("ransom_note_prefixes".into(), json!(conclusion.note_prefixes));
    chain.carried = writes.iter().all(|w| w.carried) && steps.iter().all(|s| s.carried);
    chain.evidence.count = (objects as usize + steps.len()) as u64;
    chain.evidence.set_event_ids(defining, rest, ID_CAP * 20);
    chain.evidence.details = details;
    chain
}
