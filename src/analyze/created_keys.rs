//! The pass behind `iam.created_key_used`: joins the keys minted by `CreateAccessKey`
//! ([`Fact::KeyMinted`]) with the uses of long-term keys ([`Observation`]) in event time.
//!
//! A mint fact is carried for 24 hours of event time like the chain's facts, so a key minted in
//! one object and used in another (or in another worker's message) is still joined. When a mint
//! is first seen, what the owner's keys are known to use is taken from the baseline of the key
//! that made the call (when the owner minted it with their own long-term key). The first use is
//! reported once: its eventID is kept in the fact and carried with it (a re-run of the same
//! input reports the same finding again; a later use never).

use serde_json::json;

use super::baseline::{self, Baselines};
use crate::detect::facts::{Fact, MintedKey, MINT_HISTORY_CAP};
use crate::detect::observe::Observation;
use crate::detect::rules::{CREATED_KEY_USED, CREATED_KEY_WINDOW};
use crate::finding::{Finding, Severity};
use crate::settings::Settings;

/// Feature indexes of an observation (see [`crate::detect::observe::FEATURES`]).
const NETWORK: usize = 0;
const AGENT: usize = 1;

/// Adds the history of the minting key (its baseline) to new mint facts.
pub fn enrich(minted: &mut MintedKey, baselines: &Baselines) {
    let Some(creator_key) = minted.creator_key.as_deref().filter(|_| minted.self_created) else { return };
    for (feature, values) in [(NETWORK, &mut minted.networks), (AGENT, &mut minted.agents)] {
        values.extend(baselines.values(creator_key, feature).into_iter().map(str::to_owned));
        values.sort_unstable();
        values.dedup();
        values.truncate(MINT_HISTORY_CAP);
    }
}

/// Merges mint facts of the same key (the same object delivered twice, or read again by a
/// re-run): one fact. `facts` holds the new ones before the carried ones, and the carried
/// record wins, as it was first judged (its history was taken from the baseline of that time;
/// taking it again now would change the record and rewrite the state for nothing), keeping the
/// first use if either knows it.
pub fn merge_duplicates(facts: &mut Vec<Fact>) {
    let mut kept: Vec<Fact> = Vec::with_capacity(facts.len());
    for fact in facts.drain(..) {
        if let Fact::KeyMinted(minted) = &fact {
            let same = kept.iter_mut().find_map(|k| match k {
                Fact::KeyMinted(other) if other.key_id == minted.key_id => Some(other),
                _ => None,
            });
            if let Some(earlier) = same {
                let first_use = minted.first_use.clone().or_else(|| earlier.first_use.take());
                *earlier = MintedKey { first_use, ..minted.clone() };
                continue;
            }
        }
        kept.push(fact);
    }
    *facts = kept;
}

/// Reports the first use of each minted key within [`CREATED_KEY_WINDOW`], remembering it.
pub fn run(facts: &mut [Fact], observations: &[Observation], settings: &Settings) -> Vec<Finding> {
    let mut uses: Vec<&Observation> = observations.iter().collect();
    uses.sort_by(|a, b| (a.time, &a.event_id).cmp(&(b.time, &b.event_id)));
    let mut findings = Vec::new();
    for fact in facts.iter_mut() {
        let Fact::KeyMinted(minted) = fact else { continue };
        let within = |o: &&&Observation| o.time >= minted.time && o.time - minted.time <= CREATED_KEY_WINDOW;
        let is_first = |o: &&&Observation| minted.first_use.as_ref().is_none_or(|id| o.event_id.as_ref() == Some(id));
        let Some(first) = uses.iter().filter(|o| o.key == minted.key_id).filter(within).find(is_first) else {
            continue;
        };
        minted.first_use = Some(first.event_id.clone().unwrap_or_default());
        let reasons = reasons(minted, first);
        let severity = if reasons.is_empty() { Severity::Medium } else { Severity::High };
        let minutes = (first.time - minted.time) / 60_000;
        let summary = format!(
            "access key {} of user {} created by {} was used {minutes} min later{}",
            minted.key_id,
            minted.owner,
            if minted.self_created { "its owner" } else { minted.creator.as_str() },
            if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join(", ")) }
        );
        let details = json!({
            "created_key": minted.key_id,
            "owner": minted.owner,
            "created_by": minted.creator,
            "self_created": minted.self_created,
            "minutes_after_creation": minutes,
            "reasons": reasons,
        });
        let before = findings.len();
        baseline::push(&mut findings, settings, &CREATED_KEY_USED, first, severity, summary, details);
        if let Some(finding) = findings.get_mut(before) {
            // The mint is evidence too: it says who made the key.
            finding.evidence.event_ids.extend(minted.event_ids.iter().cloned());
            finding.evidence.event_ids.sort_unstable();
            finding.evidence.event_ids.dedup();
            finding.evidence.count = finding.evidence.event_ids.len() as u64;
        }
    }
    findings
}

/// Why a first use is suspicious: minted by someone else, or from a network or client family
/// the owner's keys were not known to use.
fn reasons(minted: &MintedKey, first: &Observation) -> Vec<&'static str> {
    let mut reasons = Vec::new();
    if !minted.self_created {
        reasons.push("created_by_another_principal");
    }
    if !minted.networks.contains(&first.features[NETWORK]) {
        reasons.push("new_network");
    }
    if !minted.agents.is_empty() && !minted.agents.contains(&first.features[AGENT]) {
        reasons.push("new_user_agent");
    }
    reasons
}
