//! Decode: the one entry point from the bytes of a log object to CloudTrail events.
//!
//! Content is sniffed, never trusted from a file name: gzip (any number of members, size-capped)
//! or plain text; then `{"Records":[...]}`, a bare array, a single event, an EventBridge-wrapped
//! event, or JSON lines. A UTF-8 byte-order mark is stripped.
//!
//! The text streams through a [`window`] (inflated or read a chunk at a time, never held whole:
//! a bomb or a 200 MB record costs the window, not its size), and the resumable [`split`]
//! scanner finds each record in the envelope as it passes; the [`walk`] header walker reads the
//! fields rule dispatch needs straight from the record's bytes; and only records that a rule needs
//! whole (their request/response bodies), or that the walker cannot read, are parsed completely
//! with simd-json. A bad record is rejected alone (REC); damage to the object itself (truncation,
//! bad gzip, not a CloudTrail envelope) quarantines the object (QRT) after the records read before
//! it were inspected. [`Decoder`] owns per-thread buffers reused across objects.

pub mod gzip;
pub mod split;
pub mod walk;
pub mod window;

use simd_json::tape::Tape;

use split::{Records, Run, Scanner};
pub use window::Source;
use window::Window;

use crate::event::{Event, Json, RecordError};
pub use gzip::GzipError;
pub use split::EnvelopeError;

/// Resource bounds for one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Cap on decompressed (or raw) bytes per object.
    pub max_object_bytes: u64,
    /// Cap on the bytes of one record.
    pub max_record_bytes: usize,
    /// Cap on the nesting depth of one record.
    pub max_depth: usize,
    /// Rejected records one object may have before it is quarantined. CloudTrail never writes
    /// a bad record, so many of them mean a hostile or foreign object: without a bound, a 4 MB
    /// gzip of `{},` repeated is 358 million records to reject one by one, minutes per object.
    pub max_rejected_records: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_object_bytes: 1 << 30, max_record_bytes: 8 << 20, max_depth: 64, max_rejected_records: 10_000 }
    }
}

/// Why the object as a whole is unreadable (outcome QRT).
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// Zero bytes: CloudTrail never delivers an empty object.
    #[error("object is empty (0 bytes)")]
    Empty,
    /// The raw object is larger than the cap.
    #[error("object exceeds the size cap of {cap} bytes")]
    TooLarge {
        /// The cap in bytes.
        cap: u64,
    },
    /// The gzip layer failed.
    #[error(transparent)]
    Gzip(#[from] GzipError),
    /// The JSON envelope is damaged or is not a CloudTrail shape.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The object could not be read to its end (a local file).
    #[error("object could not be read to its end: {0}")]
    Read(std::io::Error),
    /// More records were rejected than the bound allows; the rest were not read.
    #[error("more than {limit} records rejected: not a CloudTrail log, the rest was not read")]
    TooManyRejected {
        /// The bound ([`Limits::max_rejected_records`]).
        limit: u64,
    },
}

/// Why one record was rejected (outcome REC).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordReject {
    /// Not valid JSON (NaN, invalid UTF-8, lone surrogate, bad syntax …).
    #[error("invalid JSON: {0}")]
    Syntax(String),
    /// Larger than the record cap.
    #[error("record of {bytes} bytes exceeds the cap of {cap}")]
    TooLarge {
        /// The record's size.
        bytes: usize,
        /// The cap.
        cap: usize,
    },
    /// Nested deeper than the depth limit.
    #[error("record nesting depth {depth} exceeds the limit of {limit}")]
    TooDeep {
        /// The record's depth.
        depth: usize,
        /// The limit.
        limit: usize,
    },
    /// Valid JSON that is not an event.
    #[error(transparent)]
    NotAnEvent(#[from] RecordError),
}

/// How many rejected records are kept with their reasons; the rest are only counted.
const KEPT_REJECTS: usize = 16;

/// What decoding one object produced, besides the events handed to the visitor.
#[derive(Debug, Default)]
pub struct ObjectReport {
    /// Bytes of the object as stored.
    pub stored_bytes: u64,
    /// Bytes after decompression (equal to `stored_bytes` for plain JSON).
    pub json_bytes: u64,
    /// Whether the object was gzip.
    pub gzip: bool,
    /// Events handed to the visitor.
    pub events: u64,
    /// Records rejected.
    pub rejected: u64,
    /// The first few rejected records: index in the file and reason.
    pub rejects: Vec<(u64, RecordReject)>,
    /// Set when the object is unreadable as a whole (quarantine); events before it were visited.
    pub damage: Option<ObjectError>,
}

/// Per-thread decoding state: buffers reused from one object to the next.
pub struct Decoder {
    limits: Limits,
    buffers: window::Buffers,
    json_buffers: simd_json::Buffers,
    tape: Tape<'static>,
    record: Vec<u8>,
    chunk: usize,
}

impl Decoder {
    /// A decoder with the given limits.
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            buffers: window::Buffers::default(),
            json_buffers: simd_json::Buffers::default(),
            tape: Tape::null(),
            record: Vec::new(),
            chunk: window::CHUNK,
        }
    }

    /// The same decoder adding text to its window `bytes` at a time instead of
    /// [`window::CHUNK`]: tests and fuzzing use tiny windows so that records straddle them.
    #[doc(hidden)]
    pub fn with_window_chunk(mut self, bytes: usize) -> Self {
        self.chunk = bytes;
        self
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Decodes one object and calls `visit(record_index, event)` for every event, in file order,
    /// with every event parsed completely (bodies included).
    pub fn decode(&mut self, object: &[u8], visit: &mut dyn FnMut(u64, &Event<'_>)) -> ObjectReport {
        self.decode_with(object, &|_| true, visit)
    }

    /// Like [`Decoder::decode`], but events are first read by the header walker and parsed
    /// completely only when `needs_bodies` says so for their header (its `raw`, `request_raw` and
    /// `additional_raw` are set for a look at the text; the others are
    /// visited with `request`, `response` and `additional` set to `None`).
    pub fn decode_with(
        &mut self,
        object: &[u8],
        needs_bodies: &dyn Fn(&Event<'_>) -> bool,
        visit: &mut dyn FnMut(u64, &Event<'_>),
    ) -> ObjectReport {
        self.decode_from(Source::Bytes(object), needs_bodies, visit)
    }

    /// [`Decoder::decode_with`] over any [`Source`]: a reader (a local file) is read as it is
    /// decoded, so that neither the stored nor the decompressed object is ever held whole.
    pub fn decode_from(
        &mut self,
        source: Source<'_>,
        needs_bodies: &dyn Fn(&Event<'_>) -> bool,
        visit: &mut dyn FnMut(u64, &Event<'_>),
    ) -> ObjectReport {
        let Decoder { limits, buffers, json_buffers, tape, record, chunk } = self;
        let mut report = ObjectReport::default();
        let mut window = Window::open(source, buffers, limits.max_object_bytes, *chunk);
        let mut parser = RecordParser {
            limits: *limits,
            json_buffers,
            tape,
            record,
            report: &mut report,
            visit,
            needs_bodies,
            index: 0,
        };
        let mut scanner = Scanner::new(limits.max_record_bytes);
        let scanned = loop {
            match scanner.run(window.view(), &mut parser) {
                Ok(Run::Finished) => break Ok(()),
                // At the end (or damage) the next run sees the end of the text and says why.
                Ok(Run::NeedMore { keep_from }) => _ = window.refill(keep_from),
                Err(error) => break Err(error),
            }
        };
        report.stored_bytes = window.stored_bytes();
        report.json_bytes = window.text_bytes();
        report.gzip = window.is_gzip();
        report.damage = first_damage(window.take_damage(), scanned.err());
        window.finish();
        report
    }
}

/// The damage that comes first in the text, whatever the window's size: the window's (gzip,
/// read, cap) is at the end of the text it produced, so a scan that ran out of text reports it,
/// while any other scan error lies before that end and is reported instead.
fn first_damage(window: Option<ObjectError>, scan: Option<ObjectError>) -> Option<ObjectError> {
    match (window, scan) {
        (Some(window), None | Some(ObjectError::Envelope(EnvelopeError::Truncated { .. }))) => Some(window),
        (_, scan) => scan,
    }
}

/// Reads records for [`Decoder::decode_with`]: the header walker first, a full parse when needed.
struct RecordParser<'d, 'v> {
    limits: Limits,
    json_buffers: &'d mut simd_json::Buffers,
    tape: &'d mut Tape<'static>,
    record: &'d mut Vec<u8>,
    report: &'d mut ObjectReport,
    visit: &'v mut dyn FnMut(u64, &Event<'_>),
    needs_bodies: &'v dyn Fn(&Event<'_>) -> bool,
    /// The next record's index in the object.
    index: u64,
}

impl Records for RecordParser<'_, '_> {
    type Error = ObjectError;

    fn record(&mut self, text: &[u8], utf8: &str, start: usize) -> Result<Option<usize>, ObjectError> {
        let Some(end) = self.read(text, utf8, start)? else { return Ok(None) };
        self.next_record()?;
        Ok(Some(end))
    }

    fn oversized(&mut self, bytes: usize) -> Result<(), ObjectError> {
        let cap = self.limits.max_record_bytes;
        reject(self.report, self.index, RecordReject::TooLarge { bytes, cap });
        self.next_record()
    }

    fn malformed(&mut self, record: &[u8]) -> Result<(), ObjectError> {
        // Its brackets do not pair up, so its depth is not measured: the parser rejects it.
        self.parse_fully(record, 0, self.index);
        self.next_record()
    }
}

impl RecordParser<'_, '_> {
    /// Counts a record read, stopping the scan once too many were rejected.
    fn next_record(&mut self) -> Result<(), ObjectError> {
        self.index += 1;
        let limit = self.limits.max_rejected_records;
        if self.report.rejected > limit {
            return Err(ObjectError::TooManyRejected { limit });
        }
        Ok(())
    }

    /// Reads the record at `start` of `text`; returns the offset past it, or `None` when it
    /// runs past the end of `text` (then nothing was visited or rejected).
    fn read(&mut self, text: &[u8], utf8: &str, start: usize) -> Result<Option<usize>, EnvelopeError> {
        let index = self.index;
        if text[start] == b'{' {
            let mut event = Event::empty();
            if let Ok(walked) = walk::walk_event(text, utf8, start, self.limits.max_depth, &mut event) {
                let small = walked.end - start <= self.limits.max_record_bytes;
                // A record with invalid UTF-8 anywhere, bodies included, is the full parser's
                // to reject, on every path. Most records lie in the window's valid prefix.
                let valid = walked.end <= utf8.len() || simdutf8::basic::from_utf8(&text[start..walked.end]).is_ok();
                if small && valid && !walked.needs_full_parse && event.complete().is_ok() {
                    event.raw = &text[start..walked.end];
                    if !(self.needs_bodies)(&event) {
                        self.report.events += 1;
                        (self.visit)(index, &event);
                        return Ok(Some(walked.end));
                    }
                }
                self.parse_fully(&text[start..walked.end], 0, index);
                return Ok(Some(walked.end));
            }
        }
        let (end, depth) = match split::value_end(text, start) {
            Err(EnvelopeError::Truncated { .. }) => return Ok(None),
            other => other?,
        };
        self.parse_fully(&text[start..end], depth, index);
        Ok(Some(end))
    }

    /// Parses one record completely (simd-json) and visits it, or rejects it.
    fn parse_fully(&mut self, bytes: &[u8], depth: usize, index: u64) {
        if let Some(problem) = record_problem(bytes, depth, &self.limits) {
            return reject(self.report, index, problem);
        }
        // simd-json parses in place: work on a copy so the object text stays intact.
        self.record.clear();
        self.record.extend_from_slice(bytes);
        let mut tape = std::mem::replace(self.tape, Tape::null()).reset();
        match simd_json::fill_tape(self.record, self.json_buffers, &mut tape) {
            Ok(()) => visit_record(index, tape.as_value(), bytes, self.report, self.visit),
            Err(error) => reject(self.report, index, RecordReject::Syntax(error.to_string())),
        }
        *self.tape = tape.reset();
    }
}

/// Checks that need the record's bytes before parsing: size, depth, lone surrogates.
fn record_problem(bytes: &[u8], depth: usize, limits: &Limits) -> Option<RecordReject> {
    let cap = limits.max_record_bytes;
    if bytes.len() > cap {
        return Some(RecordReject::TooLarge { bytes: bytes.len(), cap });
    }
    if depth > limits.max_depth {
        return Some(RecordReject::TooDeep { depth, limit: limits.max_depth });
    }
    if has_surrogate_escape(bytes) {
        if let Err(error) = serde_json::from_slice::<serde_json::Value>(bytes) {
            return Some(RecordReject::Syntax(error.to_string()));
        }
    }
    None
}

/// Turns one parsed record into an event (unwrapping an EventBridge `detail` when the record
/// itself has no `eventName`) and visits it.
fn visit_record<'r>(
    index: u64,
    record: Json<'r>,
    raw: &'r [u8],
    report: &mut ObjectReport,
    visit: &mut dyn FnMut(u64, &Event<'_>),
) {
    let event = match Event::from_json(record) {
        Err(RecordError::MissingEventName) => match record.get("detail") {
            Some(detail) if detail.is_object() => Event::from_json(detail),
            _ => Err(RecordError::MissingEventName),
        },
        other => other,
    };
    match event {
        Ok(mut event) => {
            event.raw = raw;
            report.events += 1;
            visit(index, &event);
        }
        Err(error) => reject(report, index, error.into()),
    }
}

fn reject(report: &mut ObjectReport, index: u64, reason: RecordReject) {
    report.rejected += 1;
    if report.rejects.len() < KEPT_REJECTS {
        report.rejects.push((index, reason));
    }
}

/// True when the text has a `\uD800`–`\uDFFF` escape. simd-json turns a lone surrogate into
/// a wrong character instead of an error, so such records are checked by serde_json first; real
/// CloudTrail carries non-ASCII text as UTF-8, so this path is rare.
fn has_surrogate_escape(text: &[u8]) -> bool {
    memchr::memmem::find_iter(text, b"\\u").any(|at| {
        let hex = &text[at + 2..text.len().min(at + 4)];
        hex.len() == 2
            && hex[0].eq_ignore_ascii_case(&b'd')
            && matches!(hex[1].to_ascii_lowercase(), b'8'..=b'9' | b'a'..=b'f')
    })
}
