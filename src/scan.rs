//! The local-file pipeline behind `scan` and `replay`: find files, order them by time, decode and
//! detect them in parallel on a rayon pool with per-thread buffers, batch by batch, and run the
//! stateful passes over each batch in turn ([`crate::state::persist::Session`]).
//!
//! Files are ordered by the delivery time in their CloudTrail name (`…_20261101T1005Z_…`), then
//! by path; files without one come first in path order. Batches are [`BATCH_FILES`] files, a
//! constant, so the result does not depend on the thread count. Files are read whole into a
//! reused buffer (a CloudTrail object is at most a few tens of MB and decoding needs it
//! contiguous), so memory is bounded by threads × the largest object plus the carried state,
//! not by the number of files. Findings are de-duplicated by id, so the same eventID in two
//! files is one finding. A file that cannot be read is reported and the run goes on.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::baseline::{self, Observation};
use crate::decode::{Decoder, Limits, ObjectReport};
use crate::detect::correlate::{self, Fact};
use crate::detect::rules::unreadable_log_file;
use crate::detect::{Engine, EventOrigin, Finding, Mode};
use crate::event::time::Millis;
use crate::filter::{self, EventFilter};
use crate::state::persist::Session;
use crate::state::StateError;
use crate::stateful::Batch;

/// Files per batch of the stateful passes.
pub const BATCH_FILES: usize = 64;

/// What to scan and how.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    /// Files or folders (searched recursively).
    pub paths: Vec<PathBuf>,
    /// Only events at or after this time (ms).
    pub since: Option<Millis>,
    /// Only events before this time (ms).
    pub until: Option<Millis>,
    /// Decode limits.
    pub limits: Limits,
    /// Findings before this time are not reported (a replay's warm-up learns from them).
    pub report_since: Option<Millis>,
    /// Collect the raw events at or after `report_since` that match this filter.
    pub events: Option<EventFilter>,
}

impl ScanPlan {
    /// A plan over `paths` with no window, default limits, no event listing.
    pub fn new(paths: Vec<PathBuf>) -> ScanPlan {
        ScanPlan { paths, since: None, until: None, limits: Limits::default(), report_since: None, events: None }
    }
}

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

/// Per-file problems that are not quarantines: the file could not be opened or is not a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The path.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// The outcome of a scan.
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
    /// Digest and Insight files skipped.
    pub skipped_files: u64,
    /// Findings per rule (after de-duplication by id).
    pub findings_per_rule: BTreeMap<&'static str, u64>,
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
        self.latest_event_time = self.latest_event_time.max(other.latest_event_time);
    }

    /// True when management events were seen but no S3 data events: SSE-C is invisible.
    pub fn lacks_s3_data_events(&self) -> bool {
        self.events > 0 && self.s3_data_events == 0
    }
}

/// Expands folders (recursively, sorted, not following symlinked folders) into files. Paths
/// that do not exist or are not regular files become input errors; digest and Insight files are
/// counted and skipped.
pub fn collect_files(paths: &[PathBuf], errors: &mut Vec<InputError>, skipped: &mut u64) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => walk(path, path, &mut files, errors),
            Ok(meta) if meta.is_file() => files.push(path.clone()),
            Ok(_) => errors.push(input_error(path, "not a regular file or folder")),
            Err(error) => errors.push(input_error(path, &error.to_string())),
        }
    }
    let before = files.len();
    files.retain(|f| !is_digest_or_insight(f));
    *skipped += (before - files.len()) as u64;
    files
        .sort_by_cached_key(|f| (f.file_name().and_then(|n| n.to_str()).and_then(crate::layout::name_time), f.clone()));
    files
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<InputError>) {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(error) => return errors.push(input_error(dir, &error.to_string())),
    };
    entries.sort();
    for path in entries {
        let Ok(link_meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let file_type = link_meta.file_type();
        if file_type.is_dir() {
            walk(root, &path, files, errors);
        } else if file_type.is_file() {
            if has_log_extension(&path) {
                files.push(path);
            }
        } else if file_type.is_symlink() {
            match symlink_target_inside(root, &path) {
                Ok(true) if has_log_extension(&path) => files.push(path),
                Ok(true) => {}
                Ok(false) => {
                    errors.push(input_error(&path, "symlink points outside the scanned folder or is not a file"))
                }
                Err(error) => errors.push(input_error(&path, &error)),
            }
        } else {
            errors.push(input_error(&path, "not a regular file (FIFO, socket or device)"));
        }
    }
}

/// Names a folder walk picks up; other files (READMEs, scripts) in a log folder are ignored.
/// Files named on the command line are always read, whatever their name: content is sniffed.
fn has_log_extension(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    [".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".gz"].iter().any(|ext| name.ends_with(ext))
}

fn symlink_target_inside(root: &Path, link: &Path) -> Result<bool, String> {
    let target = std::fs::canonicalize(link).map_err(|e| format!("broken symlink: {e}"))?;
    let root = std::fs::canonicalize(root).map_err(|e| e.to_string())?;
    Ok(target.starts_with(root) && target.is_file())
}

fn is_digest_or_insight(path: &Path) -> bool {
    path.components().any(|c| matches!(c.as_os_str().to_str(), Some("CloudTrail-Digest" | "CloudTrail-Insight")))
}

fn input_error(path: &Path, reason: &str) -> InputError {
    InputError { path: path.display().to_string(), reason: reason.to_owned() }
}

/// What one object (a file or an S3 object) produced: the input of [`Collector::add_batch`].
pub struct ObjectOutcome {
    path: String,
    report: Option<ObjectReport>,
    read_error: Option<String>,
    quarantine: Option<String>,
    findings: Vec<Finding>,
    observations: Vec<Observation>,
    facts: Vec<Fact>,
    events: Vec<MatchedEvent>,
    totals: Totals,
}

impl ObjectOutcome {
    /// An object that was read and inspected.
    pub fn inspected(path: String, inspected: Inspected) -> ObjectOutcome {
        ObjectOutcome {
            path,
            report: Some(inspected.report),
            read_error: None,
            quarantine: None,
            findings: inspected.findings,
            observations: inspected.observations,
            facts: inspected.facts,
            events: inspected.events,
            totals: inspected.totals,
        }
    }

    /// A local file that could not be read (an input error, not a finding).
    pub fn unreadable_file(path: String, error: String) -> ObjectOutcome {
        ObjectOutcome { read_error: Some(error), ..ObjectOutcome::empty(path) }
    }

    /// A stored object that can never be read (missing, encrypted, over the cap): quarantined
    /// with a `trail.unreadable_log_file` finding.
    pub fn quarantined(path: String, reason: String, mode: Mode) -> ObjectOutcome {
        let finding = unreadable_log_file(&path, &reason, 0, mode);
        ObjectOutcome { quarantine: Some(reason), findings: vec![finding], ..ObjectOutcome::empty(path) }
    }

    fn empty(path: String) -> ObjectOutcome {
        ObjectOutcome {
            path,
            report: None,
            read_error: None,
            quarantine: None,
            findings: Vec::new(),
            observations: Vec::new(),
            facts: Vec::new(),
            events: Vec::new(),
            totals: Totals::default(),
        }
    }
}

/// Per-thread scratch: the decoder's buffers and the file buffer.
struct Scratch {
    decoder: Decoder,
    file: Vec<u8>,
}

/// Scans files on the current rayon pool with state that lives for this call only.
pub fn scan(plan: &ScanPlan, engine: &Engine, mode: Mode) -> ScanResult {
    let mut session = Session::in_memory(engine.settings().clone());
    scan_with_state(plan, engine, mode, &mut session).unwrap_or_else(|error| ScanResult {
        // Without a store nothing can fail; say so plainly if it ever does.
        input_errors: vec![InputError { path: "(state)".into(), reason: error.to_string() }],
        ..ScanResult::default()
    })
}

/// Scans files on the current rayon pool, batch by batch, through `session`'s state.
pub fn scan_with_state(
    plan: &ScanPlan,
    engine: &Engine,
    mode: Mode,
    session: &mut Session<'_>,
) -> Result<ScanResult, StateError> {
    let mut collector = Collector::new(plan.report_since);
    let mut skipped = 0;
    let files = collect_files(&plan.paths, &mut collector.result.input_errors, &mut skipped);
    collector.result.totals.skipped_files = skipped;
    for batch_files in files.chunks(BATCH_FILES) {
        let outcomes: Vec<ObjectOutcome> = batch_files
            .par_iter()
            .map_init(
                || Scratch { decoder: Decoder::new(plan.limits), file: Vec::new() },
                |scratch, path| scan_file(path, plan, engine, mode, scratch),
            )
            .collect();
        collector.add_batch(outcomes, session)?;
    }
    Ok(collector.finish())
}

/// Runs the stateful passes batch by batch and gathers a run's result: the part of the
/// pipeline shared by local files and S3 objects.
pub struct Collector {
    /// The result so far.
    pub result: ScanResult,
    report_since: Option<Millis>,
    /// Finding id → position: a later batch's version of a finding (a window or chain that
    /// grew) replaces the earlier one.
    reported: HashMap<String, usize>,
}

impl Collector {
    /// An empty run; findings before `report_since` are learned from but not reported.
    pub fn new(report_since: Option<Millis>) -> Collector {
        Collector { result: ScanResult::default(), report_since, reported: HashMap::new() }
    }

    /// Adds one batch (objects in time order) and advances the state. Returns the findings
    /// this batch reported or grew.
    pub fn add_batch(
        &mut self,
        outcomes: Vec<ObjectOutcome>,
        session: &mut Session<'_>,
    ) -> Result<Vec<Finding>, StateError> {
        let batch = merge(outcomes, &mut self.result);
        let mut changed = Vec::new();
        for finding in session.advance(batch)? {
            if self.report_since.is_some_and(|since| finding.sort_time < since) {
                continue;
            }
            let findings = &mut self.result.findings;
            match self.reported.get(&finding.id) {
                Some(&at) if finding.evidence.count > findings[at].evidence.count => {
                    findings[at] = finding.clone();
                    changed.push(finding);
                }
                Some(_) => {}
                None => {
                    self.reported.insert(finding.id.clone(), findings.len());
                    findings.push(finding.clone());
                    changed.push(finding);
                }
            }
        }
        Ok(changed)
    }

    /// Orders the findings and events and counts findings per rule.
    pub fn finish(mut self) -> ScanResult {
        let result = &mut self.result;
        result.findings.sort_by(|a, b| (a.sort_time, a.rule, &a.id).cmp(&(b.sort_time, b.rule, &b.id)));
        for finding in &result.findings {
            *result.totals.findings_per_rule.entry(finding.rule).or_default() += 1;
        }
        result.events.sort_by(|a, b| (a.time, &a.origin).cmp(&(b.time, &b.origin)));
        self.result
    }
}

fn scan_file(path: &Path, plan: &ScanPlan, engine: &Engine, mode: Mode, scratch: &mut Scratch) -> ObjectOutcome {
    let name = path.display().to_string();
    if let Err(error) = read_capped(path, plan.limits.max_object_bytes, &mut scratch.file) {
        return ObjectOutcome::unreadable_file(name, error);
    }
    let inspected = inspect_planned(&mut scratch.decoder, &scratch.file, &name, plan, engine, mode);
    ObjectOutcome::inspected(name, inspected)
}

/// [`inspect_object`] with the plan's window and event listing.
pub fn inspect_planned(
    decoder: &mut Decoder,
    object: &[u8],
    origin: &str,
    plan: &ScanPlan,
    engine: &Engine,
    mode: Mode,
) -> Inspected {
    let window = Window { since: plan.since, until: plan.until };
    let listing = plan.events.as_ref().map(|filter| Listing { filter, since: plan.report_since });
    inspect_object(decoder, object, origin, engine, window, mode, listing)
}

/// Which raw events to collect while inspecting.
#[derive(Debug, Clone, Copy)]
pub struct Listing<'a> {
    /// The filter.
    pub filter: &'a EventFilter,
    /// Only events at or after this time.
    pub since: Option<Millis>,
}

/// An event-time window; `None` bounds are open.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    /// Inclusive start (ms).
    pub since: Option<Millis>,
    /// Exclusive end (ms).
    pub until: Option<Millis>,
}

/// What inspecting one object produced.
#[derive(Debug)]
pub struct Inspected {
    /// The decoder's report.
    pub report: ObjectReport,
    /// Findings, including `trail.unreadable_log_file` when the object was quarantined.
    pub findings: Vec<Finding>,
    /// Counters for this object.
    pub totals: Totals,
    /// Uses of long-term keys, for the baseline pass.
    pub observations: Vec<Observation>,
    /// Facts for the correlation pass.
    pub facts: Vec<Fact>,
    /// Raw events matched by the listing filter.
    pub events: Vec<MatchedEvent>,
}

/// Decodes one object and runs the engine over the events inside `window`: the unit of work
/// shared by every source: local files (`scan`, `replay`) and S3 objects (the worker).
pub fn inspect_object(
    decoder: &mut Decoder,
    object: &[u8],
    origin: &str,
    engine: &Engine,
    window: Window,
    mode: Mode,
    listing: Option<Listing<'_>>,
) -> Inspected {
    let mut totals = Totals::default();
    let mut findings = Vec::new();
    let mut observations = Vec::new();
    let mut facts = Vec::new();
    let mut events = Vec::new();
    let report = decoder.decode_with(object, &|event, raw| engine.needs_bodies(event, raw), &mut |index, event| {
        if event.is_s3_data_event() {
            totals.s3_data_events += 1;
        }
        if window.since.is_some() || window.until.is_some() {
            let Some(time) = event.event_time else {
                totals.events_without_time += 1;
                return;
            };
            if window.since.is_some_and(|s| time < s) || window.until.is_some_and(|u| time >= u) {
                return;
            }
        }
        totals.events_in_window += 1;
        totals.latest_event_time = totals.latest_event_time.max(event.event_time);
        if let Some(listing) = listing {
            let listed = listing.since.is_none_or(|s| event.event_time.is_some_and(|t| t >= s));
            if listed && listing.filter.matches(event) {
                if let Some(record) = filter::redacted(event.raw) {
                    events.push(MatchedEvent { time: event.event_time, origin: origin.to_owned(), record });
                }
            }
        }
        let origin = EventOrigin { object: origin, index };
        engine.inspect(event, origin, &mut findings);
        observations.extend(engine.observe(event, origin));
        facts.extend(correlate::extract(event));
    });
    baseline::compact(&mut observations);
    correlate::compact(&mut facts);
    totals.files = 1;
    totals.stored_bytes = report.stored_bytes;
    totals.json_bytes = report.json_bytes;
    totals.events = report.events;
    totals.rejected_records = report.rejected;
    if let Some(damage) = &report.damage {
        findings.push(unreadable_log_file(origin, &damage.to_string(), report.events, mode));
    }
    Inspected { report, findings, totals, observations, facts, events }
}

/// Reads a file into `buf`, refusing files over the cap without reading them.
fn read_capped(path: &Path, cap: u64, buf: &mut Vec<u8>) -> Result<(), String> {
    buf.clear();
    let file = File::open(path).map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > cap {
        return Err(format!("file of {} bytes exceeds the size cap of {cap} bytes", meta.len()));
    }
    file.take(cap + 1).read_to_end(buf).map_err(|e| e.to_string())?;
    Ok(())
}

/// Adds a batch's outcomes to the run's totals and problems and returns their stateful input.
fn merge(outcomes: Vec<ObjectOutcome>, result: &mut ScanResult) -> Batch {
    let mut batch = Batch::default();
    for outcome in outcomes {
        if let Some(error) = outcome.read_error {
            result.input_errors.push(InputError { path: outcome.path, reason: error });
            continue;
        }
        if let Some(reason) = outcome.quarantine {
            result.totals.files += 1;
            result.quarantined.push((outcome.path.clone(), reason));
        }
        result.totals.add(&outcome.totals);
        batch.latest = batch.latest.max(outcome.totals.latest_event_time);
        if let Some(report) = &outcome.report {
            if let Some(damage) = &report.damage {
                result.quarantined.push((outcome.path.clone(), damage.to_string()));
            }
            if let Some((_, first)) = report.rejects.first() {
                result.rejected_records.push((outcome.path.clone(), report.rejected, first.to_string()));
            }
        }
        batch.observations.extend(outcome.observations);
        batch.facts.extend(outcome.facts);
        batch.findings.extend(outcome.findings);
        result.events.extend(outcome.events);
    }
    batch
}
