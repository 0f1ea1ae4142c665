//! The envelope scanner: finds where each record starts, whatever the envelope.
//!
//! It walks the top-level values (one document, JSON lines, or concatenated documents), descends
//! into a `{"Records": [...]}` envelope, and hands each record's start to a record reader, which
//! returns where the record ends. A malformed record is the reader's business (it is rejected
//! alone), while damage to the envelope itself (a truncated file, stray bytes between records)
//! stops the scan with the records before it kept. [`value_end`] finds a value's end and depth by
//! tracking only strings and brackets, for records the reader could not read.
//! Strings such as `"}]},{"eventName":"CopyObject"` are skipped as strings, never split.

use super::walk::{self, skip_ws};
use super::window::View;

/// Damage to the envelope: the scan stops here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The document ends inside a value.
    #[error("document is truncated (ends inside a value at byte {offset})")]
    Truncated {
        /// Where the unfinished value started.
        offset: usize,
    },
    /// A byte that cannot appear there.
    #[error("unexpected byte {byte:#04x} at offset {offset}")]
    Unexpected {
        /// The offending byte.
        byte: u8,
        /// Its offset.
        offset: usize,
    },
    /// Arrays nested directly in the envelope (`[[...]]`): not a CloudTrail shape.
    #[error("nested arrays at offset {offset} are not a CloudTrail envelope")]
    NestedArrays {
        /// Where the nested array starts.
        offset: usize,
    },
    /// `Records` is present but is not an array.
    #[error("`Records` is not an array")]
    RecordsNotArray,
    /// A top-level object that is neither an event nor a `Records` envelope.
    #[error("top-level object has neither `Records` nor `eventName`")]
    NoRecords,
    /// A member name of a top-level object (with the space around it) longer than the record
    /// cap: not a CloudTrail envelope, and not worth holding to find out more.
    #[error("member name at offset {offset} is longer than the record cap")]
    Oversized {
        /// Where the member starts.
        offset: usize,
    },
}

/// Reads the records the scanner finds.
pub trait Records {
    /// How reading can stop the scan (such as too many rejected records).
    type Error: From<EnvelopeError>;

    /// Reads the record at `text[start]` and returns the offset just past it, or `None` when it
    /// runs past the end of `text` (nothing is read then: the scanner retries with more text).
    /// `utf8` is the prefix of `text` known to be valid UTF-8.
    fn record(&mut self, text: &[u8], utf8: &str, start: usize) -> Result<Option<usize>, Self::Error>;

    /// A record of `bytes` bytes, more than the record cap, was skipped without being held.
    fn oversized(&mut self, bytes: usize) -> Result<(), Self::Error>;

    /// A top-level object the scanner walked to its end but [`Records::record`] could not find
    /// the end of within it (its brackets or quotes do not pair up): `record` is its text, to be
    /// read as one record (and rejected).
    fn malformed(&mut self, record: &[u8]) -> Result<(), Self::Error>;
}

/// What [`Scanner::run`] needs to go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// The text is read to its end.
    Finished,
    /// More text is needed; the scanner still needs the text from this object offset on.
    NeedMore {
        /// The first offset still needed.
        keep_from: usize,
    },
}

/// The envelope scanner, resumable: it walks the top-level values of a text that arrives a
/// window at a time (one document, JSON lines, or concatenated documents), descends into a
/// `{"Records": [...]}` envelope, and hands each record to [`Records`], in order.
///
/// A lone top-level object that is neither an event nor an envelope (a digest file, a config
/// file) is [`EnvelopeError::NoRecords`]; among several top-level values (JSON lines) such an
/// object is passed on as a record, to be rejected on its own.
///
/// The text it holds on to is bounded by the record cap: a longer record is skipped as it
/// streams past and reported with [`Records::oversized`]; an enclosing object is held only while
/// it could still be one record.
pub struct Scanner {
    state: State,
    /// Offset where the next step starts.
    pos: usize,
    /// Top-level values seen.
    values: usize,
    /// A top-level object that is not an event, and the offset past it: a record to reject if
    /// others follow it.
    pending: Option<(Held, usize)>,
    record_cap: usize,
}

/// Where the scanner is in the envelope.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Between top-level values.
    Top { after_value: bool },
    /// Inside a top-level object, before a member.
    Member { object: Object },
    /// At the value of a member (not `Records`).
    Value { object: Object },
    /// After a member's value: `,` or `}`.
    AfterMember { object: Object },
    /// Inside an array of records, before an item (`first`: right after `[`).
    Item { list: List, first: bool },
    /// After an item: `,` or `]`.
    AfterItem { list: List },
    /// Passing over a value too large to hold.
    Skip { skip: Skipper, then: AfterSkip },
    /// The text is read.
    Finished,
}

/// A top-level object being walked.
#[derive(Debug, Clone, Copy)]
struct Object {
    /// Its offset, and whether its text is still held (it may yet be one record).
    held: Held,
    saw_records: bool,
    looks_like_event: bool,
}

/// A value the scanner may need whole later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// Held from this offset.
    At(usize),
    /// Longer than the record cap: let go; its start and, once known, its length.
    TooLong { start: usize, bytes: usize },
}

/// An array of records.
#[derive(Debug, Clone, Copy)]
struct List {
    items: Items,
    start: usize,
    /// The `Records` member's object, or none for a top-level array.
    within: Option<Object>,
}

/// What an array of records may hold besides records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Items {
    /// A top-level array: an array inside it (`[[...]]`) is not a CloudTrail shape at all.
    NoArrays,
    /// The `Records` member: every item is a record, and a bad item (an array among them) is
    /// the reader's to reject alone, so the valid records after it are still read.
    AnyValue,
}

/// What comes after a skipped value.
#[derive(Debug, Clone, Copy)]
enum AfterSkip {
    /// An oversized record in this list, starting at this offset.
    Record(List, usize),
    /// A member's value.
    Member(Object),
}

impl Scanner {
    /// A scanner at the start of a text; records longer than `record_cap` are skipped.
    pub fn new(record_cap: usize) -> Self {
        Scanner { state: State::Top { after_value: false }, pos: 0, values: 0, pending: None, record_cap }
    }

    /// Reads as far as `view` allows.
    pub fn run<R: Records>(&mut self, view: View<'_>, records: &mut R) -> Result<Run, R::Error> {
        loop {
            match self.step(view, records)? {
                Step::Next => {}
                Step::Finished => return Ok(Run::Finished),
                Step::NeedMore if view.eof => {
                    return Err(EnvelopeError::Truncated { offset: self.unit_start() }.into());
                }
                Step::NeedMore => return Ok(Run::NeedMore { keep_from: self.keep_from(view) }),
            }
        }
    }

    /// The offset of the value the scanner is inside (for a truncation's message).
    fn unit_start(&self) -> usize {
        match self.state {
            State::Member { object } | State::Value { object } | State::AfterMember { object } => {
                held_start(object.held)
            }
            State::Item { list, .. } | State::AfterItem { list } => list.start,
            State::Skip { then: AfterSkip::Record(_, start), .. } => start,
            State::Skip { then: AfterSkip::Member(object), .. } => held_start(object.held),
            _ => self.pos,
        }
    }

    /// The first offset still needed, letting go of a held object longer than the record cap.
    fn keep_from(&mut self, view: View<'_>) -> usize {
        let cap = self.record_cap;
        let release = |held: &mut Held| {
            if let Held::At(start) = *held {
                if view.end() - start > cap {
                    *held = Held::TooLong { start, bytes: 0 };
                }
            }
        };
        match &mut self.state {
            State::Member { object }
            | State::Value { object }
            | State::AfterMember { object }
            | State::Skip { then: AfterSkip::Member(object), .. } => release(&mut object.held),
            _ => {}
        }
        let object_start = match self.state {
            State::Member { object } | State::Value { object } | State::AfterMember { object } => Some(object.held),
            State::Skip { then: AfterSkip::Member(object), .. } => Some(object.held),
            _ => None,
        };
        [object_start, self.pending.map(|(held, _)| held)]
            .into_iter()
            .flatten()
            .filter_map(|held| match held {
                Held::At(start) => Some(start),
                Held::TooLong { .. } => None,
            })
            .fold(self.pos, usize::min)
    }

    fn step<R: Records>(&mut self, view: View<'_>, records: &mut R) -> Result<Step, R::Error> {
        if let State::Skip { .. } = self.state {
            return self.skip(view, records);
        }
        self.pos = skip_ws_at(view, self.pos);
        let Some(byte) = view.get(self.pos) else {
            return self.at_end_of_text(view, records);
        };
        match self.state {
            State::Top { after_value } => self.top(view, records, byte, after_value),
            State::Member { object } => Ok(self.member(view, byte, object)?),
            State::Value { object } => Ok(self.member_value(view, object)?),
            State::AfterMember { object } => self.after_member(view, records, byte, object),
            State::Item { list, first } => self.item(view, records, byte, list, first),
            State::AfterItem { list } => Ok(self.after_item(byte, list)?),
            State::Skip { .. } | State::Finished => Ok(Step::Finished),
        }
    }

    /// No byte at `pos`: the end of the text, or of the window.
    fn at_end_of_text<R: Records>(&mut self, view: View<'_>, records: &mut R) -> Result<Step, R::Error> {
        if !view.eof {
            return Ok(Step::NeedMore);
        }
        match self.state {
            State::Top { .. } => {
                self.state = State::Finished;
                match self.pending.take() {
                    Some(_) if self.values == 1 => Err(EnvelopeError::NoRecords.into()),
                    Some((held, end)) => self.flush(view, records, held, end).map(|()| Step::Finished),
                    None => Ok(Step::Finished),
                }
            }
            State::Finished => Ok(Step::Finished),
            _ => Ok(Step::NeedMore),
        }
    }

    fn top<R: Records>(
        &mut self,
        view: View<'_>,
        records: &mut R,
        byte: u8,
        after_value: bool,
    ) -> Result<Step, R::Error> {
        if byte == b',' && after_value {
            // JSON lines and concatenated documents: tolerate a separating comma.
            self.pos += 1;
            self.state = State::Top { after_value: false };
            return Ok(Step::Next);
        }
        if !matches!(byte, b'{' | b'[') {
            return Err(EnvelopeError::Unexpected { byte, offset: self.pos }.into());
        }
        self.values += 1;
        if let Some((held, end)) = self.pending.take() {
            self.flush(view, records, held, end)?;
        }
        let start = self.pos;
        self.pos += 1;
        self.state = if byte == b'{' {
            State::Member { object: Object { held: Held::At(start), saw_records: false, looks_like_event: false } }
        } else {
            State::Item { list: List { items: Items::NoArrays, start, within: None }, first: true }
        };
        Ok(Step::Next)
    }

    /// Hands on a top-level object that ends at `end` (walked member by member), as a record.
    /// It is read within those bounds: where a malformed object's own brackets say it ends must
    /// not depend on how much text follows it in the window.
    fn flush<R: Records>(&mut self, view: View<'_>, records: &mut R, held: Held, end: usize) -> Result<(), R::Error> {
        match held {
            Held::At(start) => {
                let (at, end) = (start - view.base, end - view.base);
                let text = &view.text[..end];
                // The object ends with `}`, so `end` is a character boundary of the checked prefix.
                let utf8 = view.utf8.get(..end).unwrap_or(view.utf8);
                match records.record(text, utf8, at)? {
                    Some(_) => Ok(()),
                    None => records.malformed(&text[at..]),
                }
            }
            Held::TooLong { bytes, .. } => records.oversized(bytes),
        }
    }

    /// A member: its key, `:` and the start of its value, taken together (`NeedMore` retries
    /// from the key, so that much must fit the window).
    fn member(&mut self, view: View<'_>, byte: u8, mut object: Object) -> Result<Step, EnvelopeError> {
        if byte == b'}' {
            // `{}` (and, leniently, a trailing comma): the object ends.
            self.state = State::AfterMember { object };
            return Ok(Step::Next);
        }
        if byte != b'"' {
            return Err(EnvelopeError::Unexpected { byte, offset: self.pos });
        }
        let rel = self.pos - view.base;
        let Ok(key_end) = string_end(view.text, rel) else { return self.need_more_within(view, self.pos) };
        let key = &view.text[rel + 1..key_end - 1];
        let colon = walk::skip_ws(view.text, key_end);
        match view.text.get(colon) {
            Some(b':') => {}
            Some(&byte) => return Err(EnvelopeError::Unexpected { byte, offset: view.base + colon }),
            None => return self.need_more_within(view, self.pos),
        }
        let value = walk::skip_ws(view.text, colon + 1);
        let Some(&first_byte) = view.text.get(value) else { return self.need_more_within(view, self.pos) };
        if value - rel > self.record_cap {
            // Refused however the text arrives, so a window never changes the outcome.
            return Err(EnvelopeError::Oversized { offset: self.pos });
        }
        object.looks_like_event |= key == b"eventName" || key == b"detail";
        if key == b"Records" && !object.saw_records {
            if first_byte != b'[' {
                return Err(EnvelopeError::RecordsNotArray);
            }
            object.saw_records = true;
            // An envelope is never one record: nothing of it needs holding.
            object.held = Held::TooLong { start: held_start(object.held), bytes: 0 };
            let start = view.base + value;
            self.pos = start + 1;
            self.state =
                State::Item { list: List { items: Items::AnyValue, start, within: Some(object) }, first: true };
            return Ok(Step::Next);
        }
        self.pos = view.base + value;
        self.state = State::Value { object };
        Ok(Step::Next)
    }

    /// Passes over a member's value (not `Records`).
    fn member_value(&mut self, view: View<'_>, object: Object) -> Result<Step, EnvelopeError> {
        let rel = self.pos - view.base;
        match value_end(view.text, rel) {
            Ok((end, _)) => {
                self.pos = view.base + end;
                self.state = State::AfterMember { object };
                Ok(Step::Next)
            }
            Err(EnvelopeError::Truncated { .. }) if view.end() - self.pos > self.record_cap => {
                let mut object = object;
                object.held = Held::TooLong { start: held_start(object.held), bytes: 0 };
                self.state = State::Skip { skip: Skipper::new(view.text[rel]), then: AfterSkip::Member(object) };
                Ok(Step::Next)
            }
            // Retried alone once more text comes: the key is behind us.
            Err(EnvelopeError::Truncated { .. }) => Ok(Step::NeedMore),
            Err(error) => Err(error),
        }
    }

    /// `NeedMore` for a unit starting at `start`, or an error once it outgrows the record cap.
    fn need_more_within(&self, view: View<'_>, start: usize) -> Result<Step, EnvelopeError> {
        if view.end() - start > self.record_cap {
            return Err(EnvelopeError::Oversized { offset: start });
        }
        Ok(Step::NeedMore)
    }

    fn after_member<R: Records>(
        &mut self,
        view: View<'_>,
        records: &mut R,
        byte: u8,
        object: Object,
    ) -> Result<Step, R::Error> {
        match byte {
            b',' => {
                self.pos += 1;
                self.state = State::Member { object };
                Ok(Step::Next)
            }
            b'}' => {
                self.pos += 1;
                self.state = State::Top { after_value: true };
                self.end_object(view, records, object)?;
                Ok(Step::Next)
            }
            byte => Err(EnvelopeError::Unexpected { byte, offset: self.pos }.into()),
        }
    }

    /// A top-level object ended at `pos`: an envelope is done, an event is a record, anything
    /// else waits to see whether it is alone.
    fn end_object<R: Records>(&mut self, view: View<'_>, records: &mut R, object: Object) -> Result<(), R::Error> {
        if object.saw_records {
            return Ok(());
        }
        let held = match object.held {
            Held::TooLong { start, .. } => Held::TooLong { start, bytes: self.pos - start },
            held => held,
        };
        if object.looks_like_event {
            self.flush(view, records, held, self.pos)
        } else {
            self.pending = Some((held, self.pos));
            Ok(())
        }
    }

    fn item<R: Records>(
        &mut self,
        view: View<'_>,
        records: &mut R,
        byte: u8,
        list: List,
        first: bool,
    ) -> Result<Step, R::Error> {
        if byte == b']' && first {
            return Ok(self.end_list(list));
        }
        if byte == b'[' && list.items == Items::NoArrays {
            return Err(EnvelopeError::NestedArrays { offset: self.pos }.into());
        }
        let rel = self.pos - view.base;
        if !matches!(byte, b'{' | b'[' | b'"') {
            // A scalar's end is only known once a delimiter follows it.
            if let Err(error) = value_end(view.text, rel) {
                return self.incomplete_item(view, list, error);
            }
        }
        match records.record(view.text, view.utf8, rel)? {
            Some(end) => {
                self.pos = view.base + end;
                self.state = State::AfterItem { list };
                Ok(Step::Next)
            }
            None => self.incomplete_item(view, list, EnvelopeError::Truncated { offset: self.pos }),
        }
    }

    /// An item runs past the window: wait for more, or pass over it once it outgrows the cap.
    fn incomplete_item<E: From<EnvelopeError>>(
        &mut self,
        view: View<'_>,
        list: List,
        error: EnvelopeError,
    ) -> Result<Step, E> {
        if !matches!(error, EnvelopeError::Truncated { .. }) {
            return Err(error.into());
        }
        if view.end() - self.pos > self.record_cap {
            let first = view.get(self.pos).unwrap_or(b'"');
            self.state = State::Skip { skip: Skipper::new(first), then: AfterSkip::Record(list, self.pos) };
            return Ok(Step::Next);
        }
        Ok(Step::NeedMore)
    }

    fn after_item(&mut self, byte: u8, list: List) -> Result<Step, EnvelopeError> {
        match byte {
            b',' => {
                self.pos += 1;
                self.state = State::Item { list, first: false };
                Ok(Step::Next)
            }
            b']' => Ok(self.end_list(list)),
            byte => Err(EnvelopeError::Unexpected { byte, offset: self.pos }),
        }
    }

    fn end_list(&mut self, list: List) -> Step {
        self.pos += 1;
        self.state = match list.within {
            Some(object) => State::AfterMember { object },
            None => State::Top { after_value: true },
        };
        Step::Next
    }

    /// Passes over an oversized value as it streams by.
    fn skip<R: Records>(&mut self, view: View<'_>, records: &mut R) -> Result<Step, R::Error> {
        let State::Skip { mut skip, then } = self.state else { return Ok(Step::Next) };
        let rel = self.pos - view.base;
        match skip.feed(&view.text[rel..]) {
            None => {
                self.pos = view.end();
                self.state = State::Skip { skip, then };
                Ok(Step::NeedMore)
            }
            Some(used) => {
                self.pos += used;
                match then {
                    AfterSkip::Member(object) => self.state = State::AfterMember { object },
                    AfterSkip::Record(list, start) => {
                        self.state = State::AfterItem { list };
                        records.oversized(self.pos - start)?;
                    }
                }
                Ok(Step::Next)
            }
        }
    }
}

fn held_start(held: Held) -> usize {
    match held {
        Held::At(start) | Held::TooLong { start, .. } => start,
    }
}

/// One step's result.
enum Step {
    Next,
    NeedMore,
    Finished,
}

fn skip_ws_at(view: View<'_>, pos: usize) -> usize {
    view.base + skip_ws(view.text, pos - view.base)
}

/// Finds the end of a JSON value fed to it in pieces, holding only its place: inside a string
/// or not, after a backslash or not, and the bracket depth (brackets of both kinds count alike,
/// as in [`value_end`]).
#[derive(Debug, Clone, Copy)]
struct Skipper {
    depth: usize,
    in_string: bool,
    escaped: bool,
    scalar: bool,
    started: bool,
}

impl Skipper {
    fn new(first: u8) -> Self {
        Skipper {
            depth: 0,
            in_string: false,
            escaped: false,
            scalar: !matches!(first, b'{' | b'[' | b'"'),
            started: false,
        }
    }

    /// Consumes `bytes`; `Some(n)` when the value ends after its first `n` bytes.
    fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < bytes.len() {
            let byte = bytes[i];
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if let Some(at) = memchr::memchr2(b'"', b'\\', &bytes[i..]) {
                    i += at;
                    if bytes[i] == b'\\' {
                        self.escaped = true;
                    } else {
                        self.in_string = false;
                        if self.depth == 0 {
                            return Some(i + 1);
                        }
                    }
                } else {
                    return None;
                }
                i += 1;
                continue;
            }
            if self.scalar {
                if self.started && matches!(byte, b',' | b']' | b'}' | b' ' | b'\n' | b'\r' | b'\t') {
                    return Some(i);
                }
                self.started = true;
                i += 1;
                continue;
            }
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        None
    }
}

/// The end (exclusive) and bracket depth of the JSON value starting at `start`.
pub fn value_end(buf: &[u8], start: usize) -> Result<(usize, usize), EnvelopeError> {
    match buf.get(start) {
        None => Err(EnvelopeError::Truncated { offset: start }),
        Some(b'"') => Ok((string_end(buf, start)?, 0)),
        Some(b'{' | b'[') => container_end(buf, start),
        Some(_) => {
            // A scalar runs until a delimiter; in a JSON document one always follows it.
            let len = buf[start..]
                .iter()
                .position(|b| matches!(b, b',' | b']' | b'}' | b' ' | b'\n' | b'\r' | b'\t'))
                .ok_or(EnvelopeError::Truncated { offset: start })?;
            Ok((start + len, 0))
        }
    }
}

fn container_end(buf: &[u8], start: usize) -> Result<(usize, usize), EnvelopeError> {
    let mut depth = 0usize;
    let mut max_depth = 0usize;
    let mut pos = start;
    while pos < buf.len() {
        match buf[pos] {
            b'"' => {
                pos = string_end(buf, pos)?;
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                max_depth = max_depth.max(depth);
            }
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Ok((pos + 1, max_depth));
                }
            }
            _ => {}
        }
        pos += 1;
    }
    Err(EnvelopeError::Truncated { offset: start })
}

/// The offset just past the closing quote of the string starting at `start`.
fn string_end(buf: &[u8], start: usize) -> Result<usize, EnvelopeError> {
    walk::string_end(buf, start).map(|(end, _)| end).map_err(|_| EnvelopeError::Truncated { offset: start })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects each record's text, found by [`value_end`].
    #[derive(Default)]
    struct Spans(Vec<String>);

    impl Records for Spans {
        type Error = EnvelopeError;

        fn record(&mut self, text: &[u8], _: &str, start: usize) -> Result<Option<usize>, EnvelopeError> {
            match value_end(text, start) {
                Ok((end, _)) => {
                    self.0.push(String::from_utf8_lossy(&text[start..end]).into_owned());
                    Ok(Some(end))
                }
                Err(EnvelopeError::Truncated { .. }) => Ok(None),
                Err(error) => Err(error),
            }
        }

        fn oversized(&mut self, bytes: usize) -> Result<(), EnvelopeError> {
            self.0.push(format!("<{bytes} bytes>"));
            Ok(())
        }

        fn malformed(&mut self, record: &[u8]) -> Result<(), EnvelopeError> {
            self.0.push(format!("<malformed {}>", String::from_utf8_lossy(record)));
            Ok(())
        }
    }

    /// Scans `doc` whole.
    fn spans(doc: &str) -> (Vec<String>, Result<(), EnvelopeError>) {
        spans_in_windows(doc, doc.len(), usize::MAX)
    }

    /// Scans `doc` as if it arrived `window` bytes at a time, with the given record cap; the
    /// text before the offset the scanner asks to keep is really dropped.
    fn spans_in_windows(doc: &str, window: usize, cap: usize) -> (Vec<String>, Result<(), EnvelopeError>) {
        let mut records = Spans::default();
        let mut scanner = Scanner::new(cap);
        let (mut base, mut end) = (0, window.min(doc.len()));
        loop {
            let text = &doc.as_bytes()[base..end];
            let view = View { text, base, eof: end == doc.len(), utf8: super::super::window::utf8_prefix(text) };
            match scanner.run(view, &mut records) {
                Ok(Run::Finished) => return (records.0, Ok(())),
                Ok(Run::NeedMore { keep_from }) => {
                    assert!(keep_from >= base && keep_from <= end, "keeps {keep_from} of {base}..{end}");
                    base = keep_from;
                    end = (end + window).min(doc.len());
                }
                Err(error) => return (records.0, Err(error)),
            }
        }
    }

    #[test]
    fn splits_every_envelope_shape() {
        let cases: [(&str, &[&str]); 5] = [
            (r#"{"Records":[{"eventName":"A"},{"eventName":"B"}]}"#, &[r#"{"eventName":"A"}"#, r#"{"eventName":"B"}"#]),
            (r#"[{"eventName":"A"}, 5 ,{"eventName":"B"}]"#, &[r#"{"eventName":"A"}"#, "5", r#"{"eventName":"B"}"#]),
            ("{\"eventName\":\"A\"}\n{\"eventName\":\"B\"}\n", &[r#"{"eventName":"A"}"#, r#"{"eventName":"B"}"#]),
            (r#"{"x":{"Records":1},"Records":[]}"#, &[]),
            (
                r#"[{"eventName":"}]},{\"eventName\":\"CopyObject\""}]"#,
                &[r#"{"eventName":"}]},{\"eventName\":\"CopyObject\""}"#],
            ),
        ];
        for (doc, want) in cases {
            let (got, result) = spans(doc);
            assert_eq!(result, Ok(()), "{doc}");
            assert_eq!(got, want, "{doc}");
        }
    }

    #[test]
    fn any_window_finds_the_same_records() {
        let docs = [
            r#"{"Records":[{"eventName":"A","x":[1,2,{"y":"]}"}]},{"eventName":"B"} , 17 ,"s"]}"#,
            "{\"eventName\":\"A\"}\n{\"eventName\":\"B\"}\n",
            r#"{"a":1}{"eventName":"B"}"#,
            r#"{"Records":[{"eventName":"A"},{"eventName":"B"#,
            r#"[{"eventName":"A"}, 5 ,{"eventName":"B"}]"#,
        ];
        for doc in docs {
            let whole = spans(doc);
            for window in 1..doc.len() {
                assert_eq!(spans_in_windows(doc, window, usize::MAX), whole, "{doc} in windows of {window}");
            }
        }
    }

    #[test]
    fn records_over_the_cap_are_skipped_without_being_held() {
        let big = format!(r#"{{"eventName":"A","pad":"{}","n":[[1],{{"k":"\"}}"}}]}}"#, "x".repeat(100));
        let doc = format!(r#"{{"Records":[{{"eventName":"B"}},{big},7,{{"eventName":"C"}}]}}"#);
        for window in [1, 7, 16, 40] {
            let (got, result) = spans_in_windows(&doc, window, 48);
            assert_eq!(result, Ok(()), "window {window}");
            let want = [
                r#"{"eventName":"B"}"#.to_owned(),
                format!("<{} bytes>", big.len()),
                "7".to_owned(),
                r#"{"eventName":"C"}"#.to_owned(),
            ];
            assert_eq!(got, want, "window {window}");
        }
        // A lone top-level event over the cap is one oversized record; a top-level object that
        // is not an event is still refused.
        let (got, result) = spans_in_windows(&big, 8, 48);
        assert_eq!((got, result), (vec![format!("<{} bytes>", big.len())], Ok(())));
        let not_an_event = format!(r#"{{"pad":"{}"}}"#, "x".repeat(100));
        assert_eq!(spans_in_windows(&not_an_event, 8, 48).1, Err(EnvelopeError::NoRecords));
    }

    #[test]
    fn keeps_records_before_damage() {
        let (got, result) = spans(r#"{"Records":[{"eventName":"A"},{"eventName":"B"#);
        assert_eq!(got, [r#"{"eventName":"A"}"#]);
        assert!(matches!(result, Err(EnvelopeError::Truncated { .. })));
    }

    #[test]
    fn refuses_non_envelopes() {
        assert_eq!(spans(r#"{"Records":null}"#).1, Err(EnvelopeError::RecordsNotArray));
        assert_eq!(spans(r#"{"foo":1}"#).1, Err(EnvelopeError::NoRecords));
        assert!(matches!(spans("[[[[1]]]]").1, Err(EnvelopeError::NestedArrays { .. })));
        // Inside `Records` an array is one bad record, not a broken envelope.
        let (got, result) = spans(r#"{"Records":[[3],{"eventName":"A"}]}"#);
        assert_eq!((got, result), (vec!["[3]".to_owned(), r#"{"eventName":"A"}"#.to_owned()], Ok(())));
        assert!(matches!(spans("\"x\"").1, Err(EnvelopeError::Unexpected { .. })));
    }
}
