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
}

/// Walks every top-level value of `buf` and calls `on_record(start)` for each record, in order;
/// `on_record` reads the record and returns the offset just past it (see [`value_end`] for a
/// reader that only finds the end).
///
/// A lone top-level object that is neither an event nor an envelope (a digest file, a config
/// file) is [`EnvelopeError::NoRecords`]; among several top-level values (JSON lines) such an
/// object is passed on as a record, to be rejected on its own.
///
/// `on_record` may stop the scan with an error of its own (`E`), such as too many rejected records.
pub fn scan_records<E: From<EnvelopeError>>(
    buf: &[u8],
    mut on_record: impl FnMut(usize) -> Result<usize, E>,
) -> Result<(), E> {
    let mut pos = skip_ws(buf, 0);
    let mut values = 0usize;
    let mut pending_non_event: Option<usize> = None;
    while pos < buf.len() {
        values += 1;
        if let Some(start) = pending_non_event.take() {
            on_record(start)?;
        }
        pos = match buf[pos] {
            b'{' => match scan_top_object(buf, pos, &mut on_record)? {
                TopObject::Done(end) => end,
                TopObject::NotAnEvent { start, end } => {
                    pending_non_event = Some(start);
                    end
                }
            },
            b'[' => scan_array_of_records(buf, pos, Items::NoArrays, &mut on_record)?,
            byte => return Err(EnvelopeError::Unexpected { byte, offset: pos }.into()),
        };
        pos = skip_ws(buf, pos);
        // JSON lines and concatenated documents: tolerate a separating comma.
        if buf.get(pos) == Some(&b',') {
            pos = skip_ws(buf, pos + 1);
        }
    }
    match pending_non_event {
        Some(_) if values == 1 => Err(EnvelopeError::NoRecords.into()),
        Some(start) => on_record(start).map(|_| ()),
        None => Ok(()),
    }
}

/// How a top-level object was handled.
enum TopObject {
    /// Its records (or itself, as an event) were reported; the offset past it.
    Done(usize),
    /// Neither an envelope nor event-like; the caller decides.
    NotAnEvent {
        /// Where it starts.
        start: usize,
        /// Offset past it.
        end: usize,
    },
}

/// A top-level object is either `{"Records": [...], ...}` or one event (possibly wrapped in an
/// EventBridge `detail`). One walk over its members decides which.
fn scan_top_object<E: From<EnvelopeError>>(
    buf: &[u8],
    start: usize,
    on_record: &mut impl FnMut(usize) -> Result<usize, E>,
) -> Result<TopObject, E> {
    let mut pos = skip_ws(buf, start + 1);
    let mut saw_records = false;
    let mut looks_like_event = false;
    loop {
        match buf.get(pos) {
            Some(b'}') => break,
            Some(b'"') => {}
            Some(&byte) => return Err(EnvelopeError::Unexpected { byte, offset: pos }.into()),
            None => return Err(EnvelopeError::Truncated { offset: start }.into()),
        }
        let key_end = string_end(buf, pos)?;
        let key = &buf[pos + 1..key_end - 1];
        pos = skip_ws(buf, key_end);
        if buf.get(pos) != Some(&b':') {
            return Err(unexpected_or_truncated(buf, pos, start).into());
        }
        pos = skip_ws(buf, pos + 1);
        looks_like_event |= key == b"eventName" || key == b"detail";
        if key == b"Records" && !saw_records {
            if buf.get(pos) != Some(&b'[') {
                return Err(EnvelopeError::RecordsNotArray.into());
            }
            saw_records = true;
            pos = scan_array_of_records(buf, pos, Items::AnyValue, on_record)?;
        } else {
            pos = value_end(buf, pos)?.0;
        }
        pos = skip_ws(buf, pos);
        match buf.get(pos) {
            Some(b',') => pos = skip_ws(buf, pos + 1),
            Some(b'}') => break,
            _ => return Err(unexpected_or_truncated(buf, pos, start).into()),
        }
    }
    let end = pos + 1;
    if saw_records {
        return Ok(TopObject::Done(end));
    }
    if !looks_like_event {
        return Ok(TopObject::NotAnEvent { start, end });
    }
    on_record(start)?;
    Ok(TopObject::Done(end))
}

fn unexpected_or_truncated(buf: &[u8], pos: usize, start: usize) -> EnvelopeError {
    match buf.get(pos) {
        Some(&byte) => EnvelopeError::Unexpected { byte, offset: pos },
        None => EnvelopeError::Truncated { offset: start },
    }
}

/// What an array of records may hold besides records.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Items {
    /// A top-level array: an array inside it (`[[...]]`) is not a CloudTrail shape at all.
    NoArrays,
    /// The `Records` member: every item is a record, and a bad item (an array among them) is
    /// the reader's to reject alone, so the valid records after it are still read.
    AnyValue,
}

/// Reports each element of the array at `start` as a record; returns the offset past `]`.
fn scan_array_of_records<E: From<EnvelopeError>>(
    buf: &[u8],
    start: usize,
    items: Items,
    on_record: &mut impl FnMut(usize) -> Result<usize, E>,
) -> Result<usize, E> {
    let mut pos = skip_ws(buf, start + 1);
    if buf.get(pos) == Some(&b']') {
        return Ok(pos + 1);
    }
    loop {
        match buf.get(pos) {
            None => return Err(EnvelopeError::Truncated { offset: pos }.into()),
            Some(b'[') if items == Items::NoArrays => return Err(EnvelopeError::NestedArrays { offset: pos }.into()),
            Some(_) => {}
        }
        let end = on_record(pos)?;
        pos = skip_ws(buf, end);
        match buf.get(pos) {
            Some(b',') => pos = skip_ws(buf, pos + 1),
            Some(b']') => return Ok(pos + 1),
            _ => return Err(unexpected_or_truncated(buf, pos, start).into()),
        }
    }
}

/// The end (exclusive) and bracket depth of the JSON value starting at `start`.
pub fn value_end(buf: &[u8], start: usize) -> Result<(usize, usize), EnvelopeError> {
    match buf.get(start) {
        None => Err(EnvelopeError::Truncated { offset: start }),
        Some(b'"') => Ok((string_end(buf, start)?, 0)),
        Some(b'{' | b'[') => container_end(buf, start),
        Some(_) => {
            // A scalar: runs until a delimiter.
            let len = buf[start..]
                .iter()
                .position(|b| matches!(b, b',' | b']' | b'}' | b' ' | b'\n' | b'\r' | b'\t'))
                .unwrap_or(buf.len() - start);
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

    fn spans(doc: &str) -> (Vec<String>, Result<(), EnvelopeError>) {
        let mut out = Vec::new();
        let result = scan_records(doc.as_bytes(), |start| {
            let (end, _) = value_end(doc.as_bytes(), start)?;
            out.push(doc[start..end].to_string());
            Ok(end)
        });
        (out, result)
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
