//! The header walker: reads the fields every rule dispatch needs straight from a record's bytes,
//! without building a parse tree.
//!
//! Most events match no rule, so parsing every record completely is wasted work. This walker
//! runs once over a record, picks the top-level string fields and the `userIdentity` members of
//! the [`Event`] view, and skips everything else (request and response bodies included) by
//! jumping from quote to bracket with 16-byte SSE2 compares, noting where `requestParameters`
//! and `additionalEventData` lie for the rules' cheap looks. A record is parsed completely
//! (simd-json) only when a rule needs its bodies, when one of its header strings has an escape
//! sequence, or when the walker cannot read it; that full parse is also the judge of malformed
//! records, so the outcome of a bad record is the same on every path.
//!
//! What the walker does not check in parts it skips (raw control characters or bad escapes
//! inside an unused body) is checked by the full parse when a rule needs that body. UTF-8 is
//! checked for the whole text a window at a time; the decoder sends a record with invalid UTF-8
//! anywhere to the full parse, which rejects it.

use crate::event::{Event, SESSION_ISSUER_NAME};

/// Why the walker gave up on a record (the full parse then decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkError {
    /// Not JSON the walker understands at this offset.
    Syntax(usize),
    /// Nested deeper than the limit.
    TooDeep,
}

/// A record read by the walker.
#[derive(Debug)]
pub struct Walked {
    /// Offset just past the record.
    pub end: usize,
    /// A header string had an escape, or the record wraps another (`detail`): parse it fully.
    pub needs_full_parse: bool,
}

/// Reads the record object starting at `start` (which must be `{`) into `event` (which should
/// be [`Event::empty`]: it is filled in place, as moving a whole event costs more than reading
/// a short record's header), setting its header fields (bodies stay `None`). `utf8` is a prefix
/// of `buf` known to be valid UTF-8 (possibly empty): strings inside it are sliced from it
/// unchecked.
pub fn walk_event<'a>(
    buf: &'a [u8],
    utf8: &'a str,
    start: usize,
    max_depth: usize,
    event: &mut Event<'a>,
) -> Result<Walked, WalkError> {
    let mut needs_full_parse = false;
    let (end, escaped_key) = walk_object(buf, start, max_depth, &mut |buf, key, at, depth| match (key, buf[at]) {
        (key, b'"') => match event.wanted(key) {
            Some(field) => {
                let (end, text) = header_string(buf, utf8, at, &mut needs_full_parse)?;
                if let Some(text) = text {
                    event.set(field, text);
                }
                Ok(end)
            }
            None => string_end(buf, at).map(|(end, _)| end),
        },
        (b"requestParameters" | b"additionalEventData", b'{') => {
            let end = skip_value(buf, at, depth)?;
            let body = if key == b"requestParameters" { &mut event.request_raw } else { &mut event.additional_raw };
            body.get_or_insert(&buf[at..end]);
            Ok(end)
        }
        (b"userIdentity", b'{') if !event.identity.is_set() => {
            let walked = walk_object(buf, at, depth, &mut |buf, key, at, depth| {
                if buf[at] == b'"' && event.identity.wants(key) {
                    let (end, text) = header_string(buf, utf8, at, &mut needs_full_parse)?;
                    if let Some(text) = text {
                        event.identity.set_text(key, text);
                    }
                    return Ok(end);
                }
                if key == b"sessionContext" && buf[at] == b'{' {
                    return walk_session_context(buf, utf8, at, depth, event, &mut needs_full_parse);
                }
                skip_value(buf, at, depth)
            });
            walked.map(|(end, _)| end)
        }
        (b"detail", b'{') => {
            needs_full_parse = true;
            skip_value(buf, at, depth)
        }
        _ => skip_value(buf, at, depth),
    })?;
    if escaped_key {
        // A key with an escape may spell either body's name: look at the whole record.
        event.request_raw = Some(&buf[start..end]);
        event.additional_raw = Some(&buf[start..end]);
    }
    Ok(Walked { end, needs_full_parse })
}

/// Reads a header string; one with an escape (or invalid UTF-8) is left to the full parse.
fn header_string<'a>(
    buf: &'a [u8],
    utf8: &'a str,
    at: usize,
    needs_full_parse: &mut bool,
) -> Result<(usize, Option<&'a str>), WalkError> {
    let (end, escaped) = string_end(buf, at)?;
    let text = match escaped {
        true => None,
        // Quotes are ASCII, so both ends are character boundaries of the checked prefix.
        false if end <= utf8.len() => utf8.get(at + 1..end - 1),
        false => std::str::from_utf8(&buf[at + 1..end - 1]).ok(),
    };
    *needs_full_parse |= text.is_none();
    Ok((end, text))
}

fn walk_session_context<'a>(
    buf: &'a [u8],
    utf8: &'a str,
    at: usize,
    depth: usize,
    event: &mut Event<'a>,
    needs_full_parse: &mut bool,
) -> Result<usize, WalkError> {
    let walked = walk_object(buf, at, depth, &mut |buf, key, at, depth| {
        if key != b"sessionIssuer" || buf[at] != b'{' {
            return skip_value(buf, at, depth);
        }
        let walked = walk_object(buf, at, depth, &mut |buf, key, at, depth| {
            if key == b"userName" && buf[at] == b'"' && event.identity.session_issuer_name.is_none() {
                let (end, text) = header_string(buf, utf8, at, needs_full_parse)?;
                if let Some(text) = text {
                    event.identity.set_text(SESSION_ISSUER_NAME.as_bytes(), text);
                }
                return Ok(end);
            }
            skip_value(buf, at, depth)
        });
        walked.map(|(end, _)| end)
    });
    walked.map(|(end, _)| end)
}

/// Walks the members of the object at `start`, calling `member` for each; returns the offset
/// past the closing `}` and whether a key had an escape. Keys are raw bytes: one with an escape
/// matches no field name.
/// `member` gets the buffer, the key, the offset of the value and the remaining depth budget, and
/// returns the offset just past the value. It is generic, not `dyn`: each call site gets its own
/// copy with the visitor inlined, which matters at one call per member of every record.
fn walk_object<'a, F>(buf: &'a [u8], start: usize, depth: usize, member: &mut F) -> Result<(usize, bool), WalkError>
where
    F: FnMut(&'a [u8], &[u8], usize, usize) -> Result<usize, WalkError>,
{
    let depth = depth.checked_sub(1).ok_or(WalkError::TooDeep)?;
    let mut pos = skip_ws(buf, start + 1);
    if buf.get(pos) == Some(&b'}') {
        return Ok((pos + 1, false));
    }
    let mut escaped_key = false;
    loop {
        if buf.get(pos) != Some(&b'"') {
            return Err(WalkError::Syntax(pos));
        }
        let (key_end, escaped) = string_end(buf, pos)?;
        escaped_key |= escaped;
        let key = &buf[pos + 1..key_end - 1];
        pos = skip_ws(buf, key_end);
        if buf.get(pos) != Some(&b':') {
            return Err(WalkError::Syntax(pos));
        }
        pos = skip_ws(buf, pos + 1);
        if pos >= buf.len() {
            return Err(WalkError::Syntax(pos));
        }
        pos = skip_ws(buf, member(buf, key, pos, depth)?);
        match buf.get(pos) {
            Some(b',') => pos = skip_ws(buf, pos + 1),
            Some(b'}') => return Ok((pos + 1, escaped_key)),
            _ => return Err(WalkError::Syntax(pos)),
        }
    }
}

/// The offset past the closing quote of the string at `start`, and whether it has escapes.
pub(super) fn string_end(buf: &[u8], start: usize) -> Result<(usize, bool), WalkError> {
    let mut pos = start + 1;
    let mut escaped = false;
    loop {
        match next_quote_or_backslash(buf, pos) {
            Some(at) if buf[at] == b'"' => return Ok((at + 1, escaped)),
            Some(at) => {
                escaped = true;
                pos = at + 2;
            }
            None => return Err(WalkError::Syntax(start)),
        }
    }
}

/// The first `"` or `\\` at or after `pos`. This is a third of all the work of a scan: most
/// of a record is strings, most of them short. On x86_64 it compares 32 bytes a step with SSE2
/// (part of the architecture) through `safe_arch`, inlined: one branch covers most strings,
/// where a library search first pays for its run-time dispatch or alignment.
#[inline]
fn next_quote_or_backslash(buf: &[u8], mut pos: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        use safe_arch::{
            bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
        };
        let (quote, backslash) = (set_splat_i8_m128i(b'"' as i8), set_splat_i8_m128i(b'\\' as i8));
        let hits = |chunk: &[u8; 16]| {
            let v = load_unaligned_m128i(chunk);
            move_mask_i8_m128i(bitor_m128i(cmp_eq_mask_i8_m128i(v, quote), cmp_eq_mask_i8_m128i(v, backslash))) as u32
        };
        while let Some(block) = buf.get(pos..pos + 16).and_then(|block| <&[u8; 16]>::try_from(block).ok()) {
            let mask = hits(block);
            if mask != 0 {
                return Some(pos + mask.trailing_zeros() as usize);
            }
            pos += 16;
        }
    }
    memchr::memchr2(b'"', b'\\', buf.get(pos..)?).map(|at| pos + at)
}

/// Skips the value at `start`; returns the offset past it.
pub fn skip_value(buf: &[u8], start: usize, depth: usize) -> Result<usize, WalkError> {
    match buf.get(start) {
        Some(b'"') => string_end(buf, start).map(|(end, _)| end),
        Some(b'{') => skip_container(buf, start, b'{', b'}', depth),
        Some(b'[') => skip_container(buf, start, b'[', b']', depth),
        Some(_) => skip_scalar(buf, start),
        None => Err(WalkError::Syntax(start)),
    }
}

/// Skips an object or array by counting its own bracket kind, jumping over strings. Brackets of
/// the other kind are not matched here (the full parse validates bodies that rules read). Outside
/// strings a body holds only punctuation, numbers and literals, so a byte loop is cheapest.
fn skip_container(buf: &[u8], start: usize, open: u8, close: u8, depth: usize) -> Result<usize, WalkError> {
    let mut nesting = 0usize;
    let mut pos = start;
    while let Some(&byte) = buf.get(pos) {
        if byte == b'"' {
            pos = string_end(buf, pos)?.0;
            continue;
        }
        if byte == open {
            nesting += 1;
            if nesting > depth {
                return Err(WalkError::TooDeep);
            }
        } else if byte == close {
            nesting -= 1;
            if nesting == 0 {
                return Ok(pos + 1);
            }
        }
        pos += 1;
    }
    Err(WalkError::Syntax(start))
}

/// Skips `true`, `false`, `null` or a number; anything else (`NaN`, `Infinity`, a bare word) is
/// an error, as is an exponent no `f64` can hold.
fn skip_scalar(buf: &[u8], start: usize) -> Result<usize, WalkError> {
    let rest = &buf[start..];
    for literal in [&b"true"[..], b"false", b"null"] {
        if rest.starts_with(literal) {
            return Ok(start + literal.len());
        }
    }
    let len = rest.iter().take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')).count();
    let number = &rest[..len];
    let digits_start = usize::from(number.first() == Some(&b'-'));
    if !number.get(digits_start).is_some_and(u8::is_ascii_digit) {
        return Err(WalkError::Syntax(start));
    }
    if let Some(e) = number.iter().position(|b| matches!(b, b'e' | b'E')) {
        let exponent: String = number[e + 1..].iter().filter(|b| b.is_ascii_digit()).map(|&b| b as char).collect();
        if exponent.len() > 3 || exponent.parse::<u32>().map_or(true, |x| x > 308) {
            return Err(WalkError::Syntax(start));
        }
    }
    Ok(start + len)
}

/// The offset of the first non-whitespace byte at or after `pos`.
pub(super) fn skip_ws(buf: &[u8], mut pos: usize) -> usize {
    // CloudTrail writes no whitespace between tokens: one comparison answers nearly every call.
    if buf.get(pos).is_some_and(|&b| b > b' ') {
        return pos;
    }
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = buf.get(pos) {
        pos += 1;
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_header_fields_and_skips_bodies() {
        let record = br#"{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","arn":"arn:x","sessionContext":{"attributes":{"a":"b"},"sessionIssuer":{"type":"Role","userName":"ops"}},"accessKeyId":"ASIA1"},"eventTime":"2026-11-01T10:00:00Z","eventName":"CopyObject","requestParameters":{"k":["}{", {"n": [1, 2.5e3, -3]}], "x": "\"]}"},"responseElements":null,"readOnly":false,"eventID":"e1"} tail"#;
        let utf8 = std::str::from_utf8(record).expect("UTF-8");
        // Strings sliced from the checked prefix or checked one by one: the same event.
        let mut unchecked = Event::empty();
        walk_event(record, "", 0, 64, &mut unchecked).expect("walks");
        let mut e = Event::empty();
        let walked = walk_event(record, utf8, 0, 64, &mut e).expect("walks");
        assert_eq!(format!("{e:?}"), format!("{unchecked:?}"));
        assert_eq!(&record[walked.end..], b" tail");
        assert_eq!(e.event_name, "CopyObject");
        assert_eq!(e.event_id, Some("e1"));
        assert_eq!(e.identity.kind, Some("AssumedRole"));
        assert_eq!(e.identity.access_key_id, Some("ASIA1"));
        assert_eq!(e.identity.session_issuer_name, Some("ops"));
        assert_eq!(e.request_raw, Some(&br#"{"k":["}{", {"n": [1, 2.5e3, -3]}], "x": "\"]}"}"#[..]));
        assert_eq!(e.additional_raw, None);
        assert!(e.event_time.is_some() || e.event_time_raw.is_some());
        assert!(!walked.needs_full_parse);
    }

    #[test]
    fn the_vector_search_finds_what_a_byte_search_finds() {
        // Quotes and backslashes at every distance from the start and the end of the buffer.
        for len in 0..80 {
            for hit in 0..=len {
                for needle in [b'"', b'\\'] {
                    let mut buf = vec![b'a'; len];
                    if hit < len {
                        buf[hit] = needle;
                    }
                    for pos in 0..=len {
                        let expected = buf[pos.min(len)..].iter().position(|&b| b == needle).map(|at| pos + at);
                        assert_eq!(next_quote_or_backslash(&buf, pos), expected, "len {len}, hit {hit}, pos {pos}");
                    }
                }
            }
        }
        assert_eq!(next_quote_or_backslash(b"abc", 7), None, "past the end");
    }

    #[test]
    fn escapes_in_header_fields_ask_for_the_full_parse() {
        let walked =
            walk_event(br#"{"eventName":"A","userAgent":"x\"y"}"#, "", 0, 64, &mut Event::empty()).expect("walks");
        assert!(walked.needs_full_parse);
        let walked =
            walk_event(br#"{"eventName":"A","requestParameters":{"p":"x\"y"}}"#, "", 0, 64, &mut Event::empty())
                .expect("walks");
        assert!(!walked.needs_full_parse, "escapes in skipped bodies do not matter");
    }

    #[test]
    fn refuses_what_json_refuses() {
        for bad in [
            &br#"{"eventName":"A","n":NaN}"#[..],
            br#"{"eventName":"A","n":1e400}"#,
            br#"{"eventName":"A""#,
            br#"{"eventName" "A"}"#,
        ] {
            assert!(walk_event(bad, "", 0, 64, &mut Event::empty()).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let deep = format!("{{\"eventName\":\"A\",\"x\":{}1{}}}", "{\"a\":".repeat(100), "}".repeat(100));
        assert_eq!(walk_event(deep.as_bytes(), &deep, 0, 64, &mut Event::empty()).err(), Some(WalkError::TooDeep));
    }
}
