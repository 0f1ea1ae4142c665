//! Decode: the one entry point from the bytes of a log object to CloudTrail events.
//!
//! Content is sniffed, never trusted from a file name: gzip (any number of members, size-capped)
//! or plain text; then `{"Records":[...]}`, a bare array, a single event, an EventBridge-wrapped
//! event, or JSON lines. A UTF-8 byte-order mark is stripped.
//!
//! Two paths give the same answer. The fast path parses the whole document into one simd-json
//! tape (the normal case: a well-formed CloudTrail delivery). When that fails, or the document is
//! larger than a record may be, or is nested too deeply, the [`split`] scanner finds each record's
//! bytes and every record is parsed on its own: a bad record is rejected alone (REC) and damage
//! to the file itself (truncation, bad gzip) quarantines the object (QRT) after the records read
//! before it were still inspected. [`Decoder`] owns per-thread buffers reused across objects.

pub mod gzip;
pub mod split;

use simd_json::prelude::*;
use simd_json::tape::{Node, Tape};

use crate::event::{Event, Json, RecordError};
pub use gzip::GzipError;
pub use split::EnvelopeError;

/// Resource bounds for one object.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Cap on decompressed (or raw) bytes per object.
    pub max_object_bytes: u64,
    /// Cap on the bytes of one record.
    pub max_record_bytes: usize,
    /// Cap on the nesting depth of one record.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_object_bytes: 1 << 30, max_record_bytes: 8 << 20, max_depth: 64 }
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
    text: Vec<u8>,
    json_buffers: simd_json::Buffers,
    tape: Tape<'static>,
    spans: Vec<split::RecordSpan>,
}

impl Decoder {
    /// A decoder with the given limits.
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            text: Vec::new(),
            json_buffers: simd_json::Buffers::default(),
            tape: Tape::null(),
            spans: Vec::new(),
        }
    }

    /// Decodes one object and calls `visit(record_index, event)` for every event, in file order.
    pub fn decode(&mut self, object: &[u8], visit: &mut dyn FnMut(u64, &Event<'_>)) -> ObjectReport {
        let mut report = ObjectReport { stored_bytes: object.len() as u64, ..ObjectReport::default() };
        let mut loaded = self.load_text(object, &mut report);
        if loaded.is_ok() && self.text.len() <= self.limits.max_record_bytes && !has_surrogate_escape(&self.text) {
            if self.try_fast_path(&mut report, visit) {
                return report;
            }
            // simd-json unescapes strings in place, so the scanner needs the text afresh.
            loaded = self.load_text(object, &mut report);
        }
        let envelope =
            if self.text.is_empty() && loaded.is_err() { Ok(()) } else { self.slow_path(&mut report, visit) };
        report.damage = loaded.err().or(envelope.err().map(ObjectError::from));
        report
    }

    /// Fills `self.text` with the JSON text (inflated if gzip), BOM stripped.
    fn load_text(&mut self, object: &[u8], report: &mut ObjectReport) -> Result<(), ObjectError> {
        self.text.clear();
        if object.is_empty() {
            return Err(ObjectError::Empty);
        }
        let result = if gzip::is_gzip(object) {
            report.gzip = true;
            gzip::inflate_capped(object, self.limits.max_object_bytes, &mut self.text).map_err(ObjectError::from)
        } else if object.len() as u64 > self.limits.max_object_bytes {
            return Err(ObjectError::TooLarge { cap: self.limits.max_object_bytes });
        } else {
            self.text.extend_from_slice(object);
            Ok(())
        };
        if self.text.starts_with(b"\xEF\xBB\xBF") {
            self.text.drain(..3);
        }
        report.json_bytes = self.text.len() as u64;
        result
    }

    /// Parses the whole document at once; false (having visited nothing) when the slow path
    /// must decide.
    fn try_fast_path(&mut self, report: &mut ObjectReport, visit: &mut dyn FnMut(u64, &Event<'_>)) -> bool {
        let mut tape = std::mem::replace(&mut self.tape, Tape::null()).reset();
        let handled = simd_json::fill_tape(&mut self.text, &mut self.json_buffers, &mut tape).is_ok()
            && tape_depth(&tape.0) <= self.limits.max_depth
            && visit_document(tape.as_value(), report, visit);
        self.tape = tape.reset();
        handled
    }

    /// Checks that need the record's bytes before parsing: size, depth, lone surrogates.
    fn record_problem(&self, span: &split::RecordSpan) -> Option<RecordReject> {
        let (bytes, cap) = (span.range.len(), self.limits.max_record_bytes);
        if bytes > cap {
            return Some(RecordReject::TooLarge { bytes, cap });
        }
        let limit = self.limits.max_depth;
        if span.depth > limit {
            return Some(RecordReject::TooDeep { depth: span.depth, limit });
        }
        let record = &self.text[span.range.clone()];
        if has_surrogate_escape(record) {
            if let Err(error) = serde_json::from_slice::<serde_json::Value>(record) {
                return Some(RecordReject::Syntax(error.to_string()));
            }
        }
        None
    }

    /// Finds record boundaries with the scanner and parses each record alone.
    fn slow_path(
        &mut self,
        report: &mut ObjectReport,
        visit: &mut dyn FnMut(u64, &Event<'_>),
    ) -> Result<(), EnvelopeError> {
        self.spans.clear();
        let spans = &mut self.spans;
        let envelope = split::scan_records(&self.text, |span| spans.push(span));
        for (index, span) in self.spans.iter().enumerate() {
            let index = index as u64;
            if let Some(problem) = self.record_problem(span) {
                reject(report, index, problem);
                continue;
            }
            let mut tape = std::mem::replace(&mut self.tape, Tape::null()).reset();
            match simd_json::fill_tape(&mut self.text[span.range.clone()], &mut self.json_buffers, &mut tape) {
                Ok(()) => visit_record(index, tape.as_value(), report, visit),
                Err(error) => reject(report, index, RecordReject::Syntax(error.to_string())),
            }
            self.tape = tape.reset();
        }
        envelope
    }
}

/// Walks a fully parsed document; false when its shape needs the scanner's judgement.
fn visit_document(root: Json<'_>, report: &mut ObjectReport, visit: &mut dyn FnMut(u64, &Event<'_>)) -> bool {
    let records = if let Some(object) = root.as_object() {
        match object.get("Records") {
            Some(records) => match records.as_array() {
                Some(array) => array,
                None => return false,
            },
            None if object.get("eventName").is_some() || object.get("detail").is_some() => {
                visit_record(0, root, report, visit);
                return true;
            }
            None => return false,
        }
    } else if let Some(array) = root.as_array() {
        array
    } else {
        return false;
    };
    if records.iter().any(|r| r.is_array()) {
        return false;
    }
    for (index, record) in records.iter().enumerate() {
        visit_record(index as u64, record, report, visit);
    }
    true
}

/// Turns one parsed record into an event (unwrapping an EventBridge `detail` when the record
/// itself has no `eventName`) and visits it.
fn visit_record(index: u64, record: Json<'_>, report: &mut ObjectReport, visit: &mut dyn FnMut(u64, &Event<'_>)) {
    let event = match Event::from_json(record) {
        Err(RecordError::MissingEventName) => match record.get("detail") {
            Some(detail) if detail.is_object() => Event::from_json(detail),
            _ => Err(RecordError::MissingEventName),
        },
        other => other,
    };
    match event {
        Ok(event) => {
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

/// Maximum container nesting of a tape, in one pass.
fn tape_depth(nodes: &[Node<'_>]) -> usize {
    let mut open_ends: Vec<usize> = Vec::new();
    let mut max = 0;
    for (i, node) in nodes.iter().enumerate() {
        while open_ends.last().is_some_and(|&end| end <= i) {
            open_ends.pop();
        }
        if let Node::Object { count, .. } | Node::Array { count, .. } = node {
            open_ends.push(i + count);
            max = max.max(open_ends.len());
        }
    }
    max
}
