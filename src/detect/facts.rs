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
        /// Some of the eventIDs.
        event_ids: Vec<String>,
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
        /// Some of the eventIDs.
        event_ids: Vec<String>,
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

    /// Whether two facts rest on the same evidence, wherever each came from: the same object
    /// delivered twice (organization and multi-region trails do) yields the same fact, which
    /// must count once.
    pub fn same_evidence(&self, other: &Fact) -> bool {
        // Field by field rather than on clones with `carried` cleared: a run compares every new
        // fact with every carried one, and delete facts carry their keys.
        match (self, other) {
            (Fact::InstanceRole { role: a, time: t }, Fact::InstanceRole { role: b, time: u }) => a == b && t == u,
            (
                Fact::S3Deletes { principal, bucket, objects, keys, first, last, event_ids, .. },
                Fact::S3Deletes {
                    principal: p, bucket: b, objects: o, keys: k, first: f, last: l, event_ids: e, ..
                },
            ) => (principal, bucket, objects, first, last) == (p, b, o, f, l) && event_ids == e && keys == k,
            (
                Fact::NoteUploads { principal, prefixes, first, last, event_ids, .. },
                Fact::NoteUploads { principal: p, prefixes: x, first: f, last: l, event_ids: e, .. },
            ) => (principal, first, last) == (p, f, l) && event_ids == e && prefixes == x,
            (Fact::KeyMinted(a), Fact::KeyMinted(b)) => a == b,
            _ => false,
        }
    }

    /// Marks a fact as coming from earlier input.
    pub fn mark_carried(&mut self) {
        match self {
            Fact::InstanceRole { .. } | Fact::KeyMinted(_) => {}
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

/// Adds `fact` into `into` (the same kind and principal).
fn fold(into: &mut Fact, fact: &Fact) {
    match (into, fact) {
        (
            Fact::S3Deletes { objects: o, keys: k, first: f, last: l, event_ids: ids, .. },
            Fact::S3Deletes { objects, keys, first, last, event_ids, .. },
        ) => {
            *o += objects;
            k.extend(keys.iter().cloned());
            k.sort_unstable();
            k.dedup();
            k.truncate(DELETED_KEY_CAP);
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
