//! Known SSE-C writers (SPEC §2.1): a (principal identity, bucket) pair becomes known with its
//! first `s3.ssec_write` finding, and its later SSE-C writes are `info` (kept in the output, not
//! published). Since April 2026 S3 blocks SSE-C by default, so the few workloads that still use
//! it are deliberate: a new writer is worth one alert, not one per 15-minute window forever.
//! In-place overwrites (`s3.ssec_copy_overwrite`) and chains are never lowered: they are what
//! ransomware does, whoever does it.
//!
//! The principal identity is the user ARN or, for a role session, the role ARN
//! ([`crate::event::principal_identity`]), the same pair the SSE-C aggregation groups by. The set
//! is a cache over the store (loaded per batch for the pairs it writes, like the baselines),
//! bounded at [`MAX_KNOWN_WRITERS`] pairs: the least recently seen are forgotten first.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::detect::rules::SSEC_WRITE;
use crate::event::time::Millis;
use crate::finding::{Finding, Outcome, Severity};

/// Pairs remembered at most.
pub const MAX_KNOWN_WRITERS: usize = 10_000;

/// What is remembered of a known pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownWriter {
    /// Event time of the finding that made it known.
    pub since: Millis,
    /// That finding's id: re-running the same input reports it again at full severity.
    pub first_id: String,
    /// The latest SSE-C write seen.
    pub last_seen: Millis,
}

/// The known pairs, with the ones changed since the last save.
#[derive(Debug, Default)]
pub struct KnownWriters {
    known: HashMap<String, KnownWriter>,
    changed: BTreeSet<String>,
}

/// The (identity, bucket) pair of a successful SSE-C write finding, as the store keys it.
pub fn pair_of(finding: &Finding) -> Option<String> {
    if finding.rule != SSEC_WRITE.id || finding.outcome != Outcome::Success {
        return None;
    }
    let bucket = finding.evidence.details.get("bucket")?.as_str()?;
    Some(format!("{}|{bucket}", finding.principal.identity()?))
}

impl KnownWriters {
    /// Whether the pair is in memory (loaded or learned).
    pub fn contains(&self, pair: &str) -> bool {
        self.known.contains_key(pair)
    }

    /// Adds a pair read from the store.
    pub fn load(&mut self, pair: String, writer: KnownWriter) {
        self.known.insert(pair, writer);
    }

    /// The pairs learned or seen again since the last call, to save.
    pub fn take_changed(&mut self) -> Vec<(String, KnownWriter)> {
        let changed = std::mem::take(&mut self.changed);
        changed.into_iter().filter_map(|pair| self.known.get(&pair).map(|w| (pair, w.clone()))).collect()
    }

    /// Forgets the least recently seen pairs beyond [`MAX_KNOWN_WRITERS`] (unsaved ones stay).
    pub fn shrink(&mut self) {
        if self.known.len() <= MAX_KNOWN_WRITERS {
            return;
        }
        let mut by_age: Vec<(Millis, String)> = self
            .known
            .iter()
            .filter(|(pair, _)| !self.changed.contains(*pair))
            .map(|(pair, w)| (w.last_seen, pair.clone()))
            .collect();
        by_age.sort_unstable();
        let excess = self.known.len() - MAX_KNOWN_WRITERS;
        for (_, pair) in by_age.into_iter().take(excess) {
            self.known.remove(&pair);
        }
    }

    /// Lowers the SSE-C write findings of known pairs to `info` and learns new pairs, in
    /// event-time order (`findings` as the aggregation pass sorts them). Carried findings were
    /// judged by the batch that brought them (their pair was learned then) and are not reported
    /// again, so they are skipped: only the batch's own pairs need to be in memory.
    pub fn apply(&mut self, findings: &mut [Finding]) {
        for finding in findings.iter_mut().filter(|f| !f.carried) {
            let Some(pair) = pair_of(finding) else { continue };
            let time = finding.sort_time;
            match self.known.get_mut(&pair) {
                Some(known) => {
                    if known.first_id != finding.id && time >= known.since {
                        finding.severity = Severity::Info;
                        finding.evidence.details.insert("known_writer".into(), json!(true));
                    }
                    if time > known.last_seen {
                        // Rewritten at most once a day of event time: recency, not a write per batch.
                        if time - known.last_seen >= 86_400_000 {
                            self.changed.insert(pair.clone());
                        }
                        known.last_seen = time;
                    }
                }
                None => {
                    let writer = KnownWriter { since: time, first_id: finding.id.clone(), last_seen: time };
                    self.known.insert(pair.clone(), writer);
                    self.changed.insert(pair);
                }
            }
        }
    }
}
