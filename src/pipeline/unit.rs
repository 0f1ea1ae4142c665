//! The unit of work: one object in, one [`ObjectOutcome`] out. Every command inspects objects
//! through [`inspect_input`] (local files, S3 objects of a backfill or replay, S3 objects named
//! by a notification), so they decode, detect and account for damage the same way.
//!
//! Pure CPU apart from reading a local file: no tokio, no AWS SDK, no clock. The decoder and the
//! file buffer are per pool thread (a thread-local) and reused from one object to the next.

use std::cell::RefCell;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use crate::analyze::incidents::{GroupBy, ACTOR_CAP};
use crate::analyze::passes::{is_direct, Batch};
use crate::decode::{Decoder, Limits, ObjectReport, Source};
use crate::detect::facts::{self, Fact};
use crate::detect::observe::{ObjectObservations, Observation};
use crate::detect::rules::unreadable_log_file;
use crate::detect::{Engine, EventOrigin};
use crate::event::filter::{self, EventFilter};
use crate::event::time::Millis;
use crate::event::Event;
use crate::finding::{clean, Finding, Mode};
use crate::hash::stable_hash;
use crate::pipeline::collector::{MatchedEvent, Totals, BUCKET_CAP};
use crate::source::local::{open_capped, ReadError};

/// An event-time window; `None` bounds are open.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    /// Inclusive start (ms).
    pub since: Option<Millis>,
    /// Exclusive end (ms).
    pub until: Option<Millis>,
}

/// Which raw events to collect while inspecting.
#[derive(Debug, Clone, Copy)]
pub struct Listing<'a> {
    /// The filter.
    pub filter: &'a EventFilter,
    /// Only events at or after this time.
    pub since: Option<Millis>,
}

/// What a run gathers from the events besides findings.
#[derive(Clone, Copy, Default)]
pub struct Gather<'a> {
    /// Raw events to collect (`replay --events`).
    pub listing: Option<Listing<'a>>,
    /// Count raw events per actor for incidents, from a time on.
    pub actors: Option<(GroupBy, Option<Millis>)>,
}

/// How every object of a run is inspected: owned, so it can travel to the rayon pool.
#[derive(Clone)]
pub struct Inspection {
    /// The engine.
    pub engine: Arc<Engine>,
    /// `scan`, `replay`, `backfill` or `live` (for the findings the pipeline itself raises).
    pub mode: Mode,
    /// Decode limits.
    pub limits: Limits,
    /// Events outside this window are counted, not inspected.
    pub window: Window,
    /// Raw events to collect (`replay --events`), from a time on.
    pub listing: Option<(EventFilter, Option<Millis>)>,
    /// Count raw events per actor (`--group-by`), from a time on.
    pub actors: Option<(GroupBy, Option<Millis>)>,
}

impl Inspection {
    /// Every event of every object, no listing.
    pub fn new(engine: Arc<Engine>, mode: Mode, limits: Limits) -> Inspection {
        Inspection { engine, mode, limits, window: Window::default(), listing: None, actors: None }
    }
}

/// One object to inspect.
#[derive(Debug)]
pub enum Input {
    /// A local file, read on the pool thread that inspects it.
    File(PathBuf),
    /// Bytes already fetched (an S3 object), named by `origin` (`s3://bucket/key`).
    Bytes {
        /// The object's name.
        origin: String,
        /// Its bytes as stored.
        bytes: Vec<u8>,
    },
    /// A stored object that can never be read (missing, SSE-C encrypted, over the cap).
    Unreadable {
        /// The object's name.
        origin: String,
        /// Why.
        reason: String,
    },
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
    /// Hashes of the eventIDs decoded.
    pub event_hashes: Vec<u64>,
}

/// What one object produced: the input of [`crate::pipeline::Collector::add_batch`].
#[derive(Debug)]
pub struct ObjectOutcome {
    /// The object's name (path or `s3://bucket/key`).
    pub path: String,
    /// The decoder's report, when the object was decoded.
    pub report: Option<ObjectReport>,
    /// A local file that could not be read (an input error, not a finding).
    pub read_error: Option<String>,
    /// Why a stored object was quarantined without being decoded.
    pub quarantine: Option<String>,
    /// Per-event findings.
    pub findings: Vec<Finding>,
    /// Baseline observations.
    pub observations: Vec<Observation>,
    /// Correlation facts.
    pub facts: Vec<Fact>,
    /// Raw events matched by the listing.
    pub events: Vec<MatchedEvent>,
    /// Counters.
    pub totals: Totals,
    /// Hashes of the eventIDs decoded, to count duplicates across the run.
    pub event_hashes: Vec<u64>,
    /// A part of an object that made many findings, handed on while it is still being read
    /// (see [`Parts`]); the object's last outcome follows with `partial` false.
    pub partial: bool,
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
            event_hashes: inspected.event_hashes,
            partial: false,
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
            event_hashes: Vec::new(),
            partial: false,
        }
    }

    /// Why the object was quarantined (not decodable at all, or damaged part way), if it was.
    pub fn quarantine_reason(&self) -> Option<String> {
        self.quarantine.clone().or_else(|| self.report.as_ref()?.damage.as_ref().map(ToString::to_string))
    }

    /// Adds this object's stateful input to `batch`.
    pub fn add_to(self, batch: &mut Batch) {
        batch.latest = batch.latest.max(self.totals.latest_event_time);
        batch.observations.extend(self.observations);
        batch.facts.extend(self.facts);
        batch.findings.extend(self.findings);
    }
}

/// Per-thread scratch: the decoder's buffers and a small file's bytes.
struct Scratch {
    decoder: Decoder,
    file: Vec<u8>,
}

/// Files up to this size are read whole (one read; a gzip one can then be inflated whole, see
/// [`crate::decode::window::WHOLE_MEMBER_LIMIT`]); larger ones are read as they are decoded.
const WHOLE_FILE_BYTES: u64 = 16 << 20;

thread_local! {
    /// One decoder (and its buffers) per pool thread, reused from one object to the next.
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

/// Runs `work` with this thread's decoder (made for `limits`).
fn with_scratch<T>(limits: Limits, work: impl FnOnce(&mut Scratch) -> T) -> T {
    SCRATCH.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_some_and(|s| s.decoder.limits() != limits) {
            *slot = None;
        }
        let scratch = slot.get_or_insert_with(|| Scratch { decoder: Decoder::new(limits), file: Vec::new() });
        work(scratch)
    })
}

/// Inspects one object: the unit of work of every command.
pub fn inspect_input(input: Input, inspection: &Inspection) -> ObjectOutcome {
    inspect_input_in_parts(input, inspection, None)
}

/// Where an object that makes many findings hands them on while it is still being read, so
/// that memory does not grow with their number (a 250 MB file of 200,000 findings took 1.8 GB).
/// Only final findings ([`is_direct`]) leave in parts; observations, facts, aggregated findings
/// and the chain's inputs stay with the object's last outcome.
pub struct Parts<'p> {
    /// Hand on a part once it holds this many final findings.
    pub every: usize,
    /// Takes each part (an [`ObjectOutcome`] with `partial` set), in order.
    pub spill: &'p mut dyn FnMut(ObjectOutcome),
}

/// [`inspect_input`], handing parts of a big object to `parts` as they fill.
pub fn inspect_input_in_parts(input: Input, inspection: &Inspection, parts: Option<Parts<'_>>) -> ObjectOutcome {
    let listing = inspection.listing.as_ref().map(|(filter, since)| Listing { filter, since: *since });
    let gather = Gather { listing, actors: inspection.actors };
    let Inspection { engine, mode, limits, window, .. } = inspection;
    match input {
        Input::File(path) => with_scratch(*limits, |scratch| {
            let name = path.display().to_string();
            let (mut file, size) = match open_capped(&path, limits.max_object_bytes) {
                // Too large to read: the same outcome as a gzip object that inflates past the
                // cap (quarantined, a finding), not a mere error line.
                Err(error @ ReadError::TooLarge { .. }) => {
                    return ObjectOutcome::quarantined(name, error.to_string(), *mode);
                }
                Err(error) => return ObjectOutcome::unreadable_file(name, error.to_string()),
                Ok(opened) => opened,
            };
            let object = ObjectRun { origin: &name, engine, window: *window, mode: *mode, gather };
            let source = if size <= WHOLE_FILE_BYTES {
                scratch.file.clear();
                // Bounded as the size was: a file that grows while read stops at the cap.
                if let Err(error) = (&mut file).take(limits.max_object_bytes + 1).read_to_end(&mut scratch.file) {
                    return ObjectOutcome::unreadable_file(name, error.to_string());
                }
                Source::Bytes(&scratch.file)
            } else {
                Source::Reader(&mut file)
            };
            let inspected = inspect_object_in_parts(&mut scratch.decoder, source, object, parts);
            ObjectOutcome::inspected(name, inspected)
        }),
        Input::Bytes { origin, bytes } => with_scratch(*limits, |scratch| {
            let object = ObjectRun { origin: &origin, engine, window: *window, mode: *mode, gather };
            let inspected = inspect_object_in_parts(&mut scratch.decoder, Source::Bytes(&bytes), object, parts);
            ObjectOutcome::inspected(origin, inspected)
        }),
        Input::Unreadable { origin, reason } => ObjectOutcome::quarantined(origin, reason, *mode),
    }
}

/// Decodes one object and runs the engine over the events inside `window`.
pub fn inspect_object(
    decoder: &mut Decoder,
    object: &[u8],
    origin: &str,
    engine: &Engine,
    window: Window,
    mode: Mode,
    gather: Gather<'_>,
) -> Inspected {
    inspect_object_in_parts(decoder, Source::Bytes(object), ObjectRun { origin, engine, window, mode, gather }, None)
}

/// How one object is inspected: its name and the run's engine, window, mode and gathering.
#[derive(Clone, Copy)]
pub struct ObjectRun<'r> {
    /// The object's name.
    pub origin: &'r str,
    /// The rules.
    pub engine: &'r Engine,
    /// Events outside are counted, not inspected.
    pub window: Window,
    /// For the findings the pipeline itself raises.
    pub mode: Mode,
    /// What else to gather.
    pub gather: Gather<'r>,
}

/// [`inspect_object`], handing parts to `parts` as they fill; the returned rest completes them.
pub fn inspect_object_in_parts(
    decoder: &mut Decoder,
    object: Source<'_>,
    run: ObjectRun<'_>,
    mut parts: Option<Parts<'_>>,
) -> Inspected {
    let ObjectRun { origin, engine, window, mode, gather } = run;
    let mut totals = Totals::default();
    let mut findings = Vec::new();
    let mut observed = ObjectObservations::default();
    let mut facts = Vec::new();
    let mut events = Vec::new();
    let mut event_hashes = Vec::new();
    let mut direct = 0;
    let report = decoder.decode_from(object, &|event| engine.needs_bodies(event), &mut |index, event| {
        event_hashes.extend(event.event_id.map(|id| stable_hash(id.as_bytes())));
        let data_event = event.is_s3_data_event();
        if data_event {
            totals.s3_data_events += 1;
        }
        note_bucket(event, data_event, &mut totals);
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
        if let Some((by, since)) = gather.actors {
            if since.is_none_or(|s| event.event_time.is_some_and(|t| t >= s)) {
                count_actor(&mut totals, by.actor_of_event(event));
            }
        }
        if let Some(listing) = gather.listing {
            let listed = listing.since.is_none_or(|s| event.event_time.is_some_and(|t| t >= s));
            if listed && listing.filter.matches(event) {
                if let Some(record) = filter::redacted(event.raw) {
                    events.push(MatchedEvent { time: event.event_time, origin: origin.to_owned(), record });
                }
            }
        }
        let at = EventOrigin { object: origin, index };
        let before = findings.len();
        engine.inspect(event, at, &mut findings);
        direct += findings[before..].iter().filter(|f| is_direct(f)).count();
        engine.observe(event, index, &mut observed);
        facts.extend(facts::extract(event));
        if let Some(parts) = parts.as_mut().filter(|p| direct >= p.every) {
            // Only final findings leave early: aggregated ones and the chain's inputs stay with
            // the object, so the stateful passes see them together as before.
            let (part, kept): (Vec<Finding>, Vec<Finding>) =
                std::mem::take(&mut findings).into_iter().partition(is_direct);
            findings = kept;
            direct = 0;
            (parts.spill)(ObjectOutcome {
                findings: part,
                events: std::mem::take(&mut events),
                totals: std::mem::take(&mut totals),
                event_hashes: std::mem::take(&mut event_hashes),
                partial: true,
                ..ObjectOutcome::empty(origin.to_owned())
            });
        }
    });
    let observations = engine.observations(observed, origin);
    facts::compact(&mut facts);
    totals.files = 1;
    totals.stored_bytes = report.stored_bytes;
    totals.json_bytes = report.json_bytes;
    totals.events = report.events;
    totals.rejected_records = report.rejected;
    if let Some(damage) = &report.damage {
        findings.push(unreadable_log_file(origin, &damage.to_string(), report.events, mode));
    }
    Inspected { report, findings, totals, observations, facts, events, event_hashes }
}

/// Counts one raw event of `actor` (new actors only while under [`ACTOR_CAP`]).
fn count_actor(totals: &mut Totals, actor: Option<String>) {
    let Some(actor) = actor else { return };
    let counts = &mut totals.events_per_actor;
    if let Some(count) = counts.get_mut(&actor) {
        *count += 1;
    } else if counts.len() < ACTOR_CAP {
        counts.insert(actor, 1);
    }
}

/// Records the bucket an S3 event names, as a data-event bucket or a configured one.
fn note_bucket(event: &Event<'_>, data_event: bool, totals: &mut Totals) {
    if event.service() != "s3" {
        return;
    }
    let Some(bucket) = bucket_name(event) else { return };
    let set = if data_event { &mut totals.data_event_buckets } else { &mut totals.configured_buckets };
    if set.len() < BUCKET_CAP && !set.contains(bucket) {
        set.insert(clean(bucket));
    }
}

/// `requestParameters.bucketName`, from the parsed body or, when the body was skipped, from its
/// raw text (bucket names have no characters JSON escapes, so the raw text is the name).
fn bucket_name<'a>(event: &Event<'a>) -> Option<&'a str> {
    if let Some(request) = event.request {
        return crate::event::shape::text_at(request, &["bucketName"]);
    }
    const FIELD: &[u8] = b"\"bucketName\":\"";
    // Built once: building a searcher per event cost as much as the search.
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(FIELD));
    let raw = event.request_raw?;
    let at = FINDER.find(raw)? + FIELD.len();
    let rest = &raw[at..];
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    (rest[end] == b'"' && end > 0).then(|| std::str::from_utf8(&rest[..end]).ok()).flatten()
}
