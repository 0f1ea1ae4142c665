//! Facts: what single events teach the correlation pass ([`crate::analyze::correlate`]), extracted
//! per event during the parallel pass and compacted per object. Pure.
//!
//! - [`Fact::InstanceRole`]: a role created with a trust policy for `ec2.amazonaws.com`, or added
//!   to an instance profile.
//! - [`Fact::S3Deletes`]: objects deleted by one principal in one bucket, with a sample of
//!   the keys (whether a version was named).
//! - [`Fact::NoteUploads`]: ransom-note-like uploads ([`is_ransom_note`]) by one principal.
//! - [`Fact::KeyMinted`]: an access key created by `CreateAccessKey`, for
//!   `iam.created_key_used`.
//!
//! The principal of a fact is its identity ([`crate::event::principal_identity`]): a role, not
//! one of its sessions, as for the SSE-C writes the chain joins them with.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;

use crate::event::shape::{elements, get_any, text_at};
use crate::event::time::Millis;
use crate::event::Event;
use crate::finding::clean;

/// Deleted objects by one principal within the window that count as mass deletes.
pub const MASS_DELETE_OBJECTS: u64 = 100;
/// EventIDs a fact or a chain keeps.
pub const ID_CAP: usize = 50;

/// Distinct `bucket/prefix` folders that ransom-note-like uploads must reach to count.
pub const RANSOM_NOTE_PREFIXES: usize = 5;
/// Prefixes a note fact keeps.
const PREFIX_CAP: usize = 100;
/// Deleted keys a delete fact keeps (the chain looks for the sources and prior versions of what
/// the principal encrypted among them).
pub const DELETED_KEY_CAP: usize = 200;
/// Bytes of deleted keys (or note prefixes) a fact keeps: a carried fact is one item of a
/// DynamoDB table (at most 400 KB), and an attacker chooses key names (up to 1 KB each, more
/// once escaped).
const SAMPLE_BYTES: usize = 64 * 1024;
/// Delete and note facts carried from object to object are folded into one per principal (and
/// bucket) and hour of their last event: how many a busy pipeline leaves in the chain window is
/// bounded by the window, not by the number of objects.
pub const FACT_SLOT: Millis = 3_600_000;

/// One deleted object of a [`Fact::S3Deletes`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct DeletedKey {
    /// Object key (cleaned).
    pub key: String,
    /// Whether the delete named a version (removing it for good, not adding a delete marker).
    pub versioned: bool,
}

/// The events whose request bodies facts are read from.
pub const FACT_EVENTS: &[&str] =
    &["CreateRole", "AddRoleToInstanceProfile", "DeleteObject", "DeleteObjects", "CreateAccessKey"];
/// Networks and client families a mint fact keeps.
pub const MINT_HISTORY_CAP: usize = 32;

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
    /// Objects deleted by a principal in a bucket (compacted per object, principal and bucket).
    S3Deletes {
        /// Principal identity (cleaned).
        principal: String,
        /// Bucket (cleaned); empty in state written before buckets were recorded.
        #[serde(default)]
        bucket: String,
        /// Objects deleted.
        objects: u64,
        /// Some of the deleted keys, sorted, at most [`DELETED_KEY_CAP`].
        #[serde(default)]
        keys: Vec<DeletedKey>,
        /// First delete.
        first: Millis,
        /// Last delete.
        last: Millis,
        /// Some of the eventIDs: the smallest [`ID_CAP`], sorted.
        event_ids: Vec<String>,
        /// Digests of the per-object facts folded into this one ([`Fact::digest`]): the same
        /// object delivered twice adds nothing the second time.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sources: Vec<String>,
        /// From earlier input.
        #[serde(skip)]
        carried: bool,
    },
    /// Ransom-note-like objects uploaded by a principal (compacted per object and principal).
    NoteUploads {
        /// Principal identity (cleaned).
        principal: String,
        /// Distinct `bucket/prefix` folders written to, sorted, capped.
        prefixes: Vec<String>,
        /// First upload.
        first: Millis,
        /// Last upload.
        last: Millis,
        /// Some of the eventIDs: the smallest [`ID_CAP`], sorted.
        event_ids: Vec<String>,
        /// Digests of the per-object facts folded into this one, as for deletes.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sources: Vec<String>,
        /// From earlier input.
        #[serde(skip)]
        carried: bool,
    },
    /// An access key minted by `CreateAccessKey`.
    KeyMinted(MintedKey),
}

/// What `iam.created_key_used` remembers of a minted key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MintedKey {
    /// The new key's id.
    pub key_id: String,
    /// The user it belongs to.
    pub owner: String,
    /// Who created it (principal identity).
    pub creator: String,
    /// Whether the owner created it for themselves.
    pub self_created: bool,
    /// The long-term key the creator called with, if any (its history is the owner's).
    pub creator_key: Option<String>,
    /// When.
    pub time: Millis,
    /// Networks the owner's keys are known to use (sorted, capped at [`MINT_HISTORY_CAP`]).
    pub networks: Vec<String>,
    /// Client families the owner's keys are known to use; empty when unknown (console).
    pub agents: Vec<String>,
    /// The `CreateAccessKey` eventID.
    pub event_ids: Vec<String>,
    /// The eventID of its first use, once reported (a re-run of that input reports it again,
    /// with the same id; later uses never).
    #[serde(default)]
    pub first_use: Option<String>,
}

impl Fact {
    /// The latest event time the fact rests on.
    pub fn time(&self) -> Millis {
        match self {
            Fact::InstanceRole { time, .. } => *time,
            Fact::KeyMinted(minted) => minted.time,
            Fact::S3Deletes { last, .. } | Fact::NoteUploads { last, .. } => *last,
        }
    }

    /// The digest of the events a fact rests on: the same object delivered twice
    /// (organization and multi-region trails do) yields the same per-object fact, which must
    /// count once. Its principal, place, times, count and eventIDs (CloudTrail's, not the
    /// caller's) name those events; the key sample follows from them and is left out. SHA-256,
    /// as callers choose principal and bucket names.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        let mut feed = |bytes: &[u8]| {
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        };
        match self {
            Fact::S3Deletes { principal, bucket, objects, first, last, event_ids, .. } => {
                for part in [b"deletes".as_slice(), principal.as_bytes(), bucket.as_bytes()] {
                    feed(part);
                }
                for number in [*objects as i64, *first, *last] {
                    feed(&number.to_le_bytes());
                }
                event_ids.iter().for_each(|id| feed(id.as_bytes()));
            }
            Fact::NoteUploads { principal, prefixes, first, last, event_ids, .. } => {
                feed(b"notes");
                feed(principal.as_bytes());
                prefixes.iter().for_each(|p| feed(p.as_bytes()));
                feed(&first.to_le_bytes());
                feed(&last.to_le_bytes());
                event_ids.iter().for_each(|id| feed(id.as_bytes()));
            }
            // Serializing plain data (strings, numbers) cannot fail.
            other => feed(&serde_json::to_vec(other).unwrap_or_default()),
        }
        crate::hash::sha256_hex(hasher)
    }

    /// The slot a carried fact is kept in: delete facts per principal, bucket and hour, note
    /// facts per principal and hour, mint facts per key. `None` for instance roles (kept apart).
    pub fn slot(&self) -> Option<String> {
        match self {
            Fact::InstanceRole { .. } => None,
            Fact::S3Deletes { principal, bucket, last, .. } => {
                Some(format!("deletes\u{0}{principal}\u{0}{bucket}\u{0}{}", last.div_euclid(FACT_SLOT)))
            }
            Fact::NoteUploads { principal, last, .. } => {
                Some(format!("notes\u{0}{principal}\u{0}{}", last.div_euclid(FACT_SLOT)))
            }
            Fact::KeyMinted(minted) => Some(format!("minted\u{0}{}", minted.key_id)),
        }
    }

    /// Marks a fact as coming from earlier input.
    pub fn mark_carried(&mut self) {
        self.set_carried(true);
    }

    fn set_carried(&mut self, value: bool) {
        match self {
            Fact::InstanceRole { .. } | Fact::KeyMinted(_) => {}
            Fact::S3Deletes { carried, .. } | Fact::NoteUploads { carried, .. } => *carried = value,
        }
    }

    /// Whether the fact comes from earlier input only.
    pub fn is_carried(&self) -> bool {
        match self {
            Fact::InstanceRole { .. } | Fact::KeyMinted(_) => false,
            Fact::S3Deletes { carried, .. } | Fact::NoteUploads { carried, .. } => *carried,
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

/// A cheap look at a `PutObject` record not parsed yet: does the `key` in the raw text of its
/// request look like a ransom note (or have an escape, which could spell one)? Only such uploads
/// are parsed whole (plain writes are by far the most common data event).
pub fn raw_may_be_note(event: &Event<'_>) -> bool {
    // Built once: building a searcher per event cost as much as the search.
    static KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"key\""));
    let Some(raw) = event.request_raw else { return false };
    let Some(at) = KEY.find(raw) else { return false };
    let rest = &raw[at + 5..];
    let Some(open) = memchr::memchr(b'"', rest) else { return false };
    let value = &rest[open + 1..];
    let end = memchr::memchr2(b'"', b'\\', value).unwrap_or(value.len());
    value.get(end) == Some(&b'\\') || std::str::from_utf8(&value[..end]).is_ok_and(is_ransom_note)
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
            let keys = deleted_keys(event);
            Some(Fact::S3Deletes {
                principal: clean(&event.principal_identity()?),
                bucket: clean(request.and_then(|r| text_at(r, &["bucketName"])).unwrap_or("?")),
                objects: match event.event_name {
                    "DeleteObject" => 1,
                    _ => request
                        .and_then(|r| get_any(r, &["delete", "Delete"]))
                        .map(|d| elements(get_any(d, &["Object", "Objects"])).len() as u64)
                        .unwrap_or(1)
                        .max(1),
                },
                keys,
                first: time,
                last: time,
                event_ids: event.event_id.map(clean).into_iter().collect(),
                sources: Vec::new(),
                carried: false,
            })
        }
        ("iam", "CreateAccessKey") => key_minted(event, time).map(Fact::KeyMinted),
        ("s3", "PutObject") => {
            let request = request?;
            let key = text_at(request, &["key"])?;
            if !is_ransom_note(key) {
                return None;
            }
            let bucket = text_at(request, &["bucketName"]).unwrap_or("?");
            let folder = key.rsplit_once('/').map_or("", |(folder, _)| folder);
            Some(Fact::NoteUploads {
                principal: clean(&event.principal_identity()?),
                prefixes: vec![clean(&format!("{bucket}/{folder}"))],
                first: time,
                last: time,
                event_ids: event.event_id.map(clean).into_iter().collect(),
                sources: Vec::new(),
                carried: false,
            })
        }
        _ => None,
    }
}

/// The mint fact of a successful `CreateAccessKey`.
fn key_minted(event: &Event<'_>, time: Millis) -> Option<MintedKey> {
    let created = event.response.and_then(|r| get_any(r, &["accessKey"]))?;
    let key_id = text_at(created, &["accessKeyId"])?;
    let caller = event.identity.user_name.filter(|_| event.identity.kind == Some("IAMUser"));
    let owner =
        text_at(created, &["userName"]).or_else(|| event.request.and_then(|r| text_at(r, &["userName"]))).or(caller)?;
    let long_term = crate::detect::is_long_term_key_use(event);
    let network = crate::detect::features::network(event.source_ip.unwrap_or(""));
    let agent = crate::detect::features::user_agent_family(event.user_agent.unwrap_or(""));
    Some(MintedKey {
        key_id: clean(key_id),
        owner: clean(owner),
        creator: clean(&event.principal_identity()?),
        self_created: caller == Some(owner),
        creator_key: event.identity.access_key_id.filter(|_| long_term).map(clean),
        time,
        networks: vec![clean(&network)],
        agents: if long_term { vec![clean(&agent)] } else { Vec::new() },
        event_ids: event.event_id.map(clean).into_iter().collect(),
        first_use: None,
    })
}

/// The keys a delete names: `key` (with `versionId`) of `DeleteObject`, the `Object` list of
/// `DeleteObjects` when CloudTrail recorded it.
fn deleted_keys(event: &Event<'_>) -> Vec<DeletedKey> {
    let Some(request) = event.request else { return Vec::new() };
    let mut keys: Vec<DeletedKey> = if event.event_name == "DeleteObject" {
        text_at(request, &["key"])
            .map(|key| DeletedKey { key: clean(key), versioned: text_at(request, &["versionId"]).is_some() })
            .into_iter()
            .collect()
    } else {
        let objects = get_any(request, &["delete", "Delete"]).and_then(|d| get_any(d, &["Object", "Objects"]));
        elements(objects)
            .iter()
            .filter_map(|o| {
                let key = text_at(*o, &["Key", "key"])?;
                Some(DeletedKey { key: clean(key), versioned: text_at(*o, &["VersionId", "versionId"]).is_some() })
            })
            .collect()
    };
    keys.sort_unstable();
    keys.dedup();
    keys.truncate(DELETED_KEY_CAP);
    truncate_to_bytes(&mut keys, |d| d.key.len());
    keys
}

/// Folds the deletes (per bucket) and the note uploads of one object into one fact per
/// principal each.
pub fn compact(facts: &mut Vec<Fact>) {
    let mut folded: BTreeMap<(u8, String, String), Fact> = BTreeMap::new();
    facts.retain(|fact| {
        let key = match fact {
            Fact::InstanceRole { .. } | Fact::KeyMinted(_) => return true,
            Fact::S3Deletes { principal, bucket, .. } => (0, principal.clone(), bucket.clone()),
            Fact::NoteUploads { principal, .. } => (1, principal.clone(), String::new()),
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

/// Folds delete and note facts from any number of objects, new and carried, into one per
/// [`Fact::slot`], each object counted once however often it was delivered. The result does
/// not depend on how the objects were batched or ordered: counts add, samples are the smallest
/// of the union, times the extremes. A folded fact is carried only when all of its parts were.
/// Other facts pass through in their order.
pub fn fold_slots(facts: Vec<Fact>) -> Vec<Fact> {
    let mut out: Vec<Fact> = Vec::with_capacity(facts.len());
    let mut slots: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    // Facts already folded from several objects first: one per slot (the carried one), so each
    // per-object fact after it is either one it counts or a new one.
    let (folded, single): (Vec<Fact>, Vec<Fact>) = facts.into_iter().partition(|f| sources(f).len() > 1);
    for mut fact in folded.into_iter().chain(single) {
        let folds = matches!(fact, Fact::S3Deletes { .. } | Fact::NoteUploads { .. });
        let Some(slot) = folds.then(|| fact.slot()).flatten() else {
            out.push(fact);
            continue;
        };
        name_sources(&mut fact);
        match slots.get(&slot) {
            Some(&at) => merge(&mut out[at], fact),
            None => {
                slots.insert(slot, out.len());
                out.push(fact);
            }
        }
    }
    out
}

/// Adds `fact` into `into` (the same slot), unless one already counts every object of the other
/// (the same object delivered again). Parts overlap only that way: [`fold_slots`] meets a slot's
/// one folded fact before its per-object facts.
fn merge(into: &mut Fact, fact: Fact) {
    let carried = into.is_carried() && fact.is_carried();
    if !sources(&fact).iter().all(|s| sources(into).binary_search(s).is_ok()) {
        fold(into, &fact);
    }
    into.set_carried(carried);
}

/// A per-object fact (no sources yet) is its own source.
fn name_sources(fact: &mut Fact) {
    if !sources(fact).is_empty() {
        return;
    }
    let digest = fact.digest();
    if let Fact::S3Deletes { sources, .. } | Fact::NoteUploads { sources, .. } = fact {
        sources.push(digest);
    }
}

fn sources(fact: &Fact) -> &[String] {
    match fact {
        Fact::S3Deletes { sources, .. } | Fact::NoteUploads { sources, .. } => sources,
        Fact::InstanceRole { .. } | Fact::KeyMinted(_) => &[],
    }
}

/// Adds `fact` into `into` (the same kind and principal).
fn fold(into: &mut Fact, fact: &Fact) {
    match (into, fact) {
        (
            Fact::S3Deletes { objects: o, keys: k, first: f, last: l, event_ids: ids, sources: s, .. },
            Fact::S3Deletes { objects, keys, first, last, event_ids, sources, .. },
        ) => {
            *o += objects;
            union_sorted(k, keys, DELETED_KEY_CAP);
            truncate_to_bytes(k, |d| d.key.len());
            *f = (*f).min(*first);
            *l = (*l).max(*last);
            union_sorted(ids, event_ids, ID_CAP);
            union_sorted(s, sources, usize::MAX);
        }
        (
            Fact::NoteUploads { prefixes: p, first: f, last: l, event_ids: ids, sources: s, .. },
            Fact::NoteUploads { prefixes, first, last, event_ids, sources, .. },
        ) => {
            union_sorted(p, prefixes, PREFIX_CAP);
            truncate_to_bytes(p, String::len);
            *f = (*f).min(*first);
            *l = (*l).max(*last);
            union_sorted(ids, event_ids, ID_CAP);
            union_sorted(s, sources, usize::MAX);
        }
        _ => {}
    }
}

/// Adds `more` into the sorted `sample`, keeping its smallest `cap` distinct items: the same
/// whatever order the parts come in. Inserts one at a time (an object's deletes fold in one
/// event at a time, into a sample that is full after the first few hundred).
fn union_sorted<T: Ord + Clone>(sample: &mut Vec<T>, more: &[T], cap: usize) {
    // State written before samples were kept sorted.
    if !sample.is_sorted() {
        sample.sort_unstable();
        sample.dedup();
    }
    for item in more {
        if let Err(at) = sample.binary_search(item) {
            if at < cap {
                sample.insert(at, item.clone());
                sample.truncate(cap);
            }
        }
    }
}

/// Keeps the longest prefix of a sorted sample within [`SAMPLE_BYTES`].
fn truncate_to_bytes<T>(sample: &mut Vec<T>, bytes: impl Fn(&T) -> usize) {
    let mut total = 0;
    let keep = sample
        .iter()
        .position(|item| {
            total += bytes(item);
            total > SAMPLE_BYTES
        })
        .unwrap_or(sample.len());
    sample.truncate(keep);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One object's delete fact: `objects` deletes of keys `<tag>-<n>` at `minute`.
    fn deletes(tag: &str, minute: Millis, objects: u64) -> Fact {
        let keys = (0..objects).map(|n| DeletedKey { key: format!("{tag}-{n:03}"), versioned: n % 7 == 0 }).collect();
        Fact::S3Deletes {
            principal: "arn:aws:iam::111122223333:role/pipeline".into(),
            bucket: "staging".into(),
            objects,
            keys,
            first: minute * 60_000,
            last: minute * 60_000 + 30_000,
            event_ids: (0..objects).map(|n| format!("{tag}-event-{n}")).collect(),
            sources: Vec::new(),
            carried: false,
        }
    }

    fn objects_of(fact: &Fact) -> u64 {
        match fact {
            Fact::S3Deletes { objects, .. } => *objects,
            _ => 0,
        }
    }

    fn carried(mut facts: Vec<Fact>) -> Vec<Fact> {
        facts.iter_mut().for_each(Fact::mark_carried);
        facts
    }

    #[test]
    fn deletes_of_one_hour_from_many_objects_fold_into_one_fact() {
        let folded = fold_slots(vec![deletes("a", 0, 40), deletes("b", 10, 50), deletes("c", 59, 20)]);
        assert_eq!(folded.len(), 1);
        assert_eq!(objects_of(&folded[0]), 110);
        let Fact::S3Deletes { keys, event_ids, sources, first, last, .. } = &folded[0] else { unreachable!() };
        assert_eq!((keys.len(), event_ids.len(), sources.len()), (110, ID_CAP, 3));
        assert_eq!((*first, *last), (0, 59 * 60_000 + 30_000));
        // The next hour is another slot.
        assert_eq!(fold_slots(vec![deletes("a", 0, 40), deletes("d", 61, 5)]).len(), 2);
    }

    #[test]
    fn an_object_delivered_again_counts_once_in_a_batch_or_after() {
        let (a, b) = (deletes("a", 0, 40), deletes("b", 10, 50));
        assert_eq!(objects_of(&fold_slots(vec![a.clone(), a.clone()])[0]), 40);
        // The carried slot already counts `a`: `a` delivered again adds nothing, but the slot
        // rests on new input again (as a re-run reports the same conclusions again).
        let slot = carried(fold_slots(vec![a.clone(), b.clone()]));
        let again = fold_slots([vec![a.clone()], slot.clone()].concat());
        assert_eq!((again.len(), objects_of(&again[0]), again[0].is_carried()), (1, 90, false));
        let nothing_new = fold_slots(slot.clone());
        assert!(nothing_new[0].is_carried());
        // A new object adds to it, also in a batch that delivers `a` again.
        assert_eq!(objects_of(&fold_slots([vec![deletes("c", 20, 5)], slot.clone()].concat())[0]), 95);
        assert_eq!(objects_of(&fold_slots([vec![a, deletes("c", 20, 5)], slot].concat())[0]), 95);
    }

    #[test]
    fn the_folded_fact_does_not_depend_on_how_objects_were_batched() {
        let objects: Vec<Fact> =
            (0..8).map(|n| deletes(&format!("o{}", (n * 5) % 8), n * 7, 30 + n as u64 * 11)).collect();
        let all_at_once = carried(fold_slots(objects.clone()));
        let mut reversed = objects.clone();
        reversed.reverse();
        assert_eq!(carried(fold_slots(reversed)), all_at_once);
        // One object per batch, the slot carried between batches (a fleet's deliveries).
        let mut state: Vec<Fact> = Vec::new();
        for object in &objects {
            state = carried(fold_slots([vec![object.clone()], state].concat()));
        }
        assert_eq!(state, all_at_once);
        // Batches of three, one delivered twice.
        let mut state: Vec<Fact> = Vec::new();
        for batch in objects.chunks(3).chain(std::iter::once(&objects[2..5])) {
            state = carried(fold_slots([batch.to_vec(), state].concat()));
        }
        assert_eq!(state, all_at_once);
    }

    #[test]
    fn a_day_of_deletes_every_five_minutes_is_one_fact_per_hour() {
        let objects = (0..288).map(|n| deletes(&format!("o{n}"), n * 5, 3)).collect();
        let folded = fold_slots(objects);
        assert_eq!(folded.len(), 24);
        assert_eq!(folded.iter().map(objects_of).sum::<u64>(), 288 * 3);
    }

    #[test]
    fn samples_stay_within_their_byte_budget() {
        let long = |tag: &str| {
            let mut fact = deletes(tag, 0, 150);
            if let Fact::S3Deletes { keys, .. } = &mut fact {
                keys.iter_mut().for_each(|k| k.key.push_str(&"x".repeat(1_000)));
            }
            fact
        };
        let folded = fold_slots(vec![long("a"), long("b")]);
        let Fact::S3Deletes { keys, objects, .. } = &folded[0] else { unreachable!() };
        assert_eq!(*objects, 300);
        let bytes: usize = keys.iter().map(|k| k.key.len()).sum();
        assert!(bytes <= SAMPLE_BYTES && keys.len() == SAMPLE_BYTES / 1_005, "{} keys, {bytes} bytes", keys.len());
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "the smallest keys, sorted");
    }
}
