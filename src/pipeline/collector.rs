//! Gathering a run: each batch's outcomes are added to the run's totals and problems, folded
//! into the stateful passes through the [`Session`], and the findings they conclude are kept,
//! de-duplicated by id (a later batch's grown version of a finding replaces the earlier one).
//! Every command goes through [`merge`], which is also where a damaged object is logged.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use tracing::warn;

use crate::analyze::passes::Batch;
use crate::event::time::Millis;
use crate::finding::{clean, Finding, Severity};
use crate::pipeline::unit::ObjectOutcome;
use crate::source::local::{InputError, Skipped};
use crate::store::session::Session;
use crate::store::StateError;

/// A raw event matched by `--where`, secrets redacted.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchedEvent {
    /// Event time (ms).
    pub time: Option<Millis>,
    /// Where it came from.
    pub origin: String,
    /// The record.
    pub record: serde_json::Value,
}

/// The outcome of a run.
#[derive(Debug, Default)]
pub struct ScanResult {
    /// Findings, de-duplicated by id and ordered by time, then rule, then id.
    pub findings: Vec<Finding>,
    /// Totals for the summary.
    pub totals: Totals,
    /// Files that could not be read at all.
    pub input_errors: Vec<InputError>,
    /// Quarantined objects with their reason.
    pub quarantined: Vec<(String, String)>,
    /// Files with rejected records: path, count, first reason.
    pub rejected_records: Vec<(String, u64, String)>,
    /// Raw events matched by the plan's filter, in time order.
    pub events: Vec<MatchedEvent>,
    /// The eventIDs seen so far, to count duplicates.
    pub seen_events: SeenEvents,
    /// The first [`SKIPPED_SHOWN`] files a folder walk passed over, and why.
    pub skipped: Vec<(String, &'static str)>,
}

/// Skipped files the summary names; the rest are counted.
pub const SKIPPED_SHOWN: usize = 20;

/// Distinct eventIDs (64-bit hashes) counted by a run, at most this many; later new ones are not
/// remembered, so duplicates of them are not counted (the summary says so).
pub const SEEN_EVENTS_CAP: usize = 1_000_000;
/// Buckets remembered per kind for the coverage warning.
pub const BUCKET_CAP: usize = 10_000;

/// The eventIDs a run has seen, to count events delivered twice: organization and
/// multi-region trails deliver the same event in two files, and a responder should know
/// that the event count is inflated (the findings are not: their ids come from eventIDs).
#[derive(Debug, Default)]
pub struct SeenEvents {
    hashes: HashSet<u64, BuildHasherDefault<Prehashed>>,
    /// Whether the cap was reached.
    pub full: bool,
}

/// The hasher of a set of hashes: they are spread already, hashing them again (SipHash) took
/// 4 % of a single-thread scan.
#[derive(Debug, Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

impl SeenEvents {
    /// Adds an object's eventID hashes; returns how many were seen before.
    fn add(&mut self, hashes: &[u64]) -> u64 {
        // Grown once per object, not by doubling as the inserts come.
        self.hashes.reserve(hashes.len().min(SEEN_EVENTS_CAP.saturating_sub(self.hashes.len())));
        let mut repeated = 0;
        for hash in hashes {
            let seen = if self.hashes.len() < SEEN_EVENTS_CAP {
                !self.hashes.insert(*hash)
            } else if self.hashes.contains(hash) {
                true
            } else {
                self.full = true;
                false
            };
            repeated += u64::from(seen);
        }
        repeated
    }
}

/// Counters over the whole run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    /// Files decoded (quarantined ones included).
    pub files: u64,
    /// Bytes as stored.
    pub stored_bytes: u64,
    /// Bytes of JSON after decompression.
    pub json_bytes: u64,
    /// Events decoded.
    pub events: u64,
    /// Events inside the time window (all when there is none).
    pub events_in_window: u64,
    /// Events whose time could not be placed in the window.
    pub events_without_time: u64,
    /// S3 data events seen.
    pub s3_data_events: u64,
    /// Records rejected.
    pub rejected_records: u64,
    /// Files a folder walk passed over (digest and Insight files, names that are not logs).
    pub skipped_files: u64,
    /// Findings per rule (after de-duplication by id).
    pub findings_per_rule: BTreeMap<&'static str, u64>,
    /// Findings per severity (after de-duplication by id).
    pub findings_per_severity: BTreeMap<Severity, u64>,
    /// Events whose eventID an earlier object (or the same one) already had.
    pub duplicate_events: u64,
    /// Buckets that S3 data events named (at most [`BUCKET_CAP`]).
    pub data_event_buckets: BTreeSet<String>,
    /// Buckets that S3 management events (bucket configuration calls) named.
    pub configured_buckets: BTreeSet<String>,
    /// Raw events per actor (principal identity or source IP), when a run groups incidents.
    pub events_per_actor: BTreeMap<String, u64>,
    /// The latest event time seen.
    pub latest_event_time: Option<Millis>,
}

impl Totals {
    fn add(&mut self, other: &Totals) {
        self.files += other.files;
        self.stored_bytes += other.stored_bytes;
        self.json_bytes += other.json_bytes;
        self.events += other.events;
        self.events_in_window += other.events_in_window;
        self.events_without_time += other.events_without_time;
        self.s3_data_events += other.s3_data_events;
        self.rejected_records += other.rejected_records;
        self.skipped_files += other.skipped_files;
        self.duplicate_events += other.duplicate_events;
        self.latest_event_time = self.latest_event_time.max(other.latest_event_time);
        for (actor, count) in &other.events_per_actor {
            if let Some(mine) = self.events_per_actor.get_mut(actor) {
                *mine += count;
            } else if self.events_per_actor.len() < crate::analyze::incidents::ACTOR_CAP {
                self.events_per_actor.insert(actor.clone(), *count);
            }
        }
        for (mine, theirs) in [
            (&mut self.data_event_buckets, &other.data_event_buckets),
            (&mut self.configured_buckets, &other.configured_buckets),
        ] {
            for bucket in theirs {
                if mine.len() >= BUCKET_CAP {
                    break;
                }
                mine.insert(bucket.clone());
            }
        }
    }

    /// Buckets configured in this input for which it held no S3 data events: SSE-C overwrites
    /// there would be invisible.
    pub fn buckets_without_data_events(&self) -> Vec<&str> {
        self.configured_buckets.difference(&self.data_event_buckets).map(String::as_str).collect()
    }

    /// True when management events were seen but no S3 data events: SSE-C is invisible.
    pub fn lacks_s3_data_events(&self) -> bool {
        self.events > 0 && self.s3_data_events == 0
    }
}

/// Runs the stateful passes batch by batch and gathers a run's result.
#[derive(Debug)]
pub struct Collector {
    /// The result so far.
    pub result: ScanResult,
    report_since: Option<Millis>,
    /// Keep the findings in `result.findings` (else they are only counted: the caller streams
    /// what [`Collector::add_batch`] returns).
    keep: bool,
    /// Finding id → what was reported: a later batch's version of a finding (a window or chain
    /// that grew) replaces the earlier one. Keyed by the id's 128 bits, not its text: this map
    /// is what a streamed run keeps per finding (40 bytes instead of about 100).
    reported: HashMap<u128, Reported>,
}

/// A finding id (32 hex digits) as a number; any other text, hashed.
fn id_key(id: &str) -> u128 {
    u128::from_str_radix(id, 16).unwrap_or_else(|_| {
        use std::hash::{BuildHasher, BuildHasherDefault};
        u128::from(BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(id))
    })
}

/// A finding already reported.
#[derive(Debug, Clone, Copy)]
struct Reported {
    /// Its place in `result.findings`, when they are kept.
    at: Option<usize>,
    count: u64,
    severity: Severity,
}

impl Collector {
    /// An empty run that keeps its findings; findings before `report_since` are learned from
    /// but not reported.
    pub fn new(report_since: Option<Millis>) -> Collector {
        Collector { result: ScanResult::default(), report_since, keep: true, reported: HashMap::new() }
    }

    /// An empty run that only counts its findings: the caller writes what each batch returns,
    /// so memory does not grow with their number (an id per finding is remembered).
    pub fn streaming(report_since: Option<Millis>) -> Collector {
        Collector { keep: false, ..Collector::new(report_since) }
    }

    /// Adds one batch (objects in time order) and advances the state. Returns the findings
    /// this batch reported or grew, ordered by time, rule and id. Blocking (the session may
    /// write to its store).
    pub fn add_batch(
        &mut self,
        outcomes: Vec<ObjectOutcome>,
        session: &mut Session,
    ) -> Result<Vec<Finding>, StateError> {
        let batch = merge(outcomes, &mut self.result);
        let mut changed = Vec::new();
        for finding in session.advance(batch)? {
            if self.report_since.is_some_and(|since| finding.sort_time < since) {
                continue;
            }
            let totals = &mut self.result.totals;
            match self.reported.get_mut(&id_key(&finding.id)) {
                Some(known) if finding.evidence.count > known.count => {
                    *totals.findings_per_severity.entry(known.severity).or_default() -= 1;
                    *totals.findings_per_severity.entry(finding.severity).or_default() += 1;
                    known.count = finding.evidence.count;
                    known.severity = finding.severity;
                    if let Some(at) = known.at {
                        self.result.findings[at] = finding.clone();
                    }
                    changed.push(finding);
                }
                Some(_) => {}
                None => {
                    *totals.findings_per_rule.entry(finding.rule).or_default() += 1;
                    *totals.findings_per_severity.entry(finding.severity).or_default() += 1;
                    let at = self.keep.then_some(self.result.findings.len());
                    let known = Reported { at, count: finding.evidence.count, severity: finding.severity };
                    self.reported.insert(id_key(&finding.id), known);
                    if self.keep {
                        self.result.findings.push(finding.clone());
                    }
                    changed.push(finding);
                }
            }
        }
        self.result.totals.findings_per_severity.retain(|_, count| *count > 0);
        changed.sort_by(|a, b| (a.sort_time, a.rule, &a.id).cmp(&(b.sort_time, b.rule, &b.id)));
        Ok(changed)
    }

    /// Counts the files a folder walk passed over and keeps the first names for the summary.
    pub fn note_skipped(&mut self, skipped: &[Skipped]) {
        let result = &mut self.result;
        result.totals.skipped_files += skipped.len() as u64;
        let room = SKIPPED_SHOWN.saturating_sub(result.skipped.len());
        result.skipped.extend(skipped.iter().take(room).map(|s| (s.path.display().to_string(), s.reason.as_str())));
    }

    /// Orders the findings and events.
    pub fn finish(mut self) -> ScanResult {
        let result = &mut self.result;
        result.findings.sort_by(|a, b| (a.sort_time, a.rule, &a.id).cmp(&(b.sort_time, b.rule, &b.id)));
        result.events.sort_by(|a, b| (a.time, &a.origin).cmp(&(b.time, &b.origin)));
        self.result
    }
}

/// Adds a batch's outcomes to the run's totals and problems and returns their stateful input.
/// A quarantined object is logged here, once, whichever command read it (bucket and key, or
/// path, and the reason).
pub fn merge(outcomes: Vec<ObjectOutcome>, result: &mut ScanResult) -> Batch {
    let mut batch = Batch::default();
    for mut outcome in outcomes {
        if let Some(error) = outcome.read_error.take() {
            result.input_errors.push(InputError { path: outcome.path, reason: error });
            continue;
        }
        if let Some(reason) = outcome.quarantine_reason() {
            warn!(object = %clean(&outcome.path), reason = %clean(&reason), "object quarantined");
            result.quarantined.push((outcome.path.clone(), reason));
        }
        if outcome.quarantine.is_some() {
            result.totals.files += 1;
        }
        result.totals.add(&outcome.totals);
        result.totals.duplicate_events += result.seen_events.add(&outcome.event_hashes);
        if let Some(report) = &outcome.report {
            if let Some((_, first)) = report.rejects.first() {
                result.rejected_records.push((outcome.path.clone(), report.rejected, first.to_string()));
            }
        }
        result.events.append(&mut outcome.events);
        outcome.add_to(&mut batch);
    }
    batch
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::detect::Engine;
    use crate::finding::Mode;
    use crate::pipeline::unit::{inspect_input, Input, Inspection};
    use crate::settings::Settings;

    /// Log lines written by the code under test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().map_err(|_| io::Error::other("poisoned"))?.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn issue_10_a_damaged_object_is_logged_with_its_name_and_reason_like_a_failed_download() {
        let inspection =
            Inspection::new(Arc::new(Engine::new(Settings::default(), Mode::Live)), Mode::Live, Default::default());
        let truncated =
            Input::Bytes { origin: "s3://trail/AWSLogs/cut.json.gz".into(), bytes: vec![0x1f, 0x8b, 8, 0, 0] };
        let missing = Input::Unreadable {
            origin: "s3://trail/AWSLogs/gone.json.gz".into(),
            reason: "log object not found".into(),
        };
        let outcomes = vec![inspect_input(truncated, &inspection), inspect_input(missing, &inspection)];
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        let mut result = ScanResult::default();
        let batch = tracing::subscriber::with_default(subscriber, || merge(outcomes, &mut result));
        let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
        let lines: Vec<&str> = logs.lines().filter(|l| l.contains("object quarantined")).collect();
        assert_eq!(lines.len(), 2, "{logs}");
        assert!(lines[0].contains("s3://trail/AWSLogs/cut.json.gz") && lines[0].contains("gzip"), "{logs}");
        assert!(lines[1].contains("s3://trail/AWSLogs/gone.json.gz") && lines[1].contains("not found"), "{logs}");
        assert!(lines.iter().all(|l| l.contains("WARN")), "{logs}");
        assert_eq!(result.quarantined.len(), 2);
        assert_eq!(batch.findings.len(), 2, "each is a trail.unreadable_log_file finding");
    }
}
