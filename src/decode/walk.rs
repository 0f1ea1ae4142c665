//! The header walker: reads the fields every rule dispatch needs straight from a record's bytes,
//! without building a parse tree.
//!
//! Most events match no rule, so parsing every record completely is wasted work. This walker
//! runs once over a record, picks the top-level string fields and the `userIdentity` members of
//! the [`Event`] view, and skips everything else (request and response bodies included) 64 bytes
//! a step as bit masks of quotes and brackets (16-byte SSE2 compares), noting where
//! `requestParameters` and `additionalEventData` lie for the rules' cheap looks. A record is
//! parsed completely (simd-json) only when a rule needs its bodies, when one of its header
//! strings or of the keys it reads has an escape sequence (JSON reads `"user\u0041gent"` as
//! `userAgent`), or when the walker cannot read it; that full parse is also the judge of
//! malformed records, so the outcome of a bad record is the same on every path.
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
    /// A header string or a walked key had an escape, or the record wraps another (`detail`):
    /// parse it fully.
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
            let (end, escaped_key) = walk_object(buf, at, depth, &mut |buf, key, at, depth| {
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
            })?;
            needs_full_parse |= escaped_key;
            Ok(end)
        }
        (b"detail", b'{') => {
            needs_full_parse = true;
            skip_value(buf, at, depth)
        }
        _ => skip_value(buf, at, depth),
    })?;
    // A key with an escape may spell a field the view keeps (or a body's name): only the full
    // parse reads it as JSON does.
    Ok(Walked { end, needs_full_parse: needs_full_parse || escaped_key })
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
    let (end, escaped_key) = walk_object(buf, at, depth, &mut |buf, key, at, depth| {
        if key != b"sessionIssuer" || buf[at] != b'{' {
            return skip_value(buf, at, depth);
        }
        let (end, escaped_key) = walk_object(buf, at, depth, &mut |buf, key, at, depth| {
            if key == b"userName" && buf[at] == b'"' && event.identity.session_issuer_name.is_none() {
                let (end, text) = header_string(buf, utf8, at, needs_full_parse)?;
                if let Some(text) = text {
                    event.identity.set_text(SESSION_ISSUER_NAME.as_bytes(), text);
                }
                return Ok(end);
            }
            skip_value(buf, at, depth)
        })?;
        *needs_full_parse |= escaped_key;
        Ok(end)
    })?;
    *needs_full_parse |= escaped_key;
    Ok(end)
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
/// of a record is strings, most of them short. On x86_64 it compares 16 bytes a step with SSE2
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
        Some(b'{' | b'[') => skip_container(buf, start, depth),
        Some(_) => skip_scalar(buf, start),
        None => Err(WalkError::Syntax(start)),
    }
}

/// Skips an object or array by counting brackets outside strings, both kinds alike: the
/// envelope scanner (`split::value_end`, and its streaming skipper for records over the cap)
/// counts them so, and a malformed record must end at the same byte whichever of them finds its
/// end, however the text is windowed. Whether the brackets pair up is the full parse's to judge
/// for bodies that rules read.
///
/// Bodies are most of a record's bytes and are short strings between punctuation, where a loop
/// that stops at every string mispredicts at every string. So this reads 64 bytes a step as bit
/// masks: a prefix XOR of the quote mask marks what lies inside strings, and only the brackets
/// outside them are visited (a body has few). Blocks with a backslash (an escape may hide a
/// quote) go byte by byte.
fn skip_container(buf: &[u8], start: usize, depth: usize) -> Result<usize, WalkError> {
    if depth == 0 {
        return Err(WalkError::TooDeep);
    }
    let mut scan = ContainerScan { depth, nesting: 1, in_string: false, escape_next: false };
    let mut tail = [0u8; BLOCK];
    let mut pos = start + 1;
    while pos < buf.len() {
        let block = match buf.get(pos..pos + BLOCK).and_then(|block| <&[u8; BLOCK]>::try_from(block).ok()) {
            Some(block) => block,
            None => {
                // The last bytes, padded with NULs: outside strings and inside them a NUL is
                // nothing the scan counts, and an unclosed container still ends in an error.
                let rest = &buf[pos..];
                tail[..rest.len()].copy_from_slice(rest);
                tail[rest.len()..].fill(0);
                &tail
            }
        };
        if let Some(at) = scan.block(block)? {
            return Ok(pos + at + 1);
        }
        pos += BLOCK;
    }
    Err(WalkError::Syntax(start))
}

/// The bytes [`skip_container`] reads a step.
const BLOCK: usize = 64;

/// Where [`skip_container`] is, carried from one block to the next.
struct ContainerScan {
    depth: usize,
    nesting: usize,
    in_string: bool,
    /// The last byte was a backslash inside a string: the next byte is escaped.
    escape_next: bool,
}

impl ContainerScan {
    /// Reads one block; `Some(offset)` of the bracket that closes the container.
    fn block(&mut self, bytes: &[u8; BLOCK]) -> Result<Option<usize>, WalkError> {
        let masks = BlockMasks::of(bytes);
        if masks.backslash != 0 || self.escape_next {
            return self.bytes(bytes);
        }
        // Bit i is set when byte i is inside a string (an opening quote counts as inside, a
        // closing one as outside: neither is a bracket).
        let inside = prefix_xor(masks.quote) ^ if self.in_string { u64::MAX } else { 0 };
        self.in_string = inside >> (BLOCK - 1) == 1;
        let (opens, closes) = (masks.open & !inside, masks.close & !inside);
        let mut brackets = opens | closes;
        while brackets != 0 {
            let at = brackets.trailing_zeros() as usize;
            if self.bracket(opens >> at & 1 == 1)? {
                return Ok(Some(at));
            }
            brackets &= brackets - 1;
        }
        Ok(None)
    }

    /// [`ContainerScan::block`] a byte at a time, for blocks where escapes matter.
    fn bytes(&mut self, bytes: &[u8; BLOCK]) -> Result<Option<usize>, WalkError> {
        for (at, &byte) in bytes.iter().enumerate() {
            if self.in_string {
                if self.escape_next {
                    self.escape_next = false;
                } else if byte == b'\\' {
                    self.escape_next = true;
                } else if byte == b'"' {
                    self.in_string = false;
                }
            } else if byte == b'"' {
                self.in_string = true;
            } else if matches!(byte, b'{' | b'[' | b'}' | b']') && self.bracket(matches!(byte, b'{' | b'['))? {
                return Ok(Some(at));
            }
        }
        Ok(None)
    }

    /// Counts a bracket outside strings; true when it closed the container.
    fn bracket(&mut self, opens: bool) -> Result<bool, WalkError> {
        if opens {
            self.nesting += 1;
            return if self.nesting > self.depth { Err(WalkError::TooDeep) } else { Ok(false) };
        }
        self.nesting -= 1;
        Ok(self.nesting == 0)
    }
}

/// A block's quotes, backslashes, opening and closing brackets, as bit masks (bit i is byte i).
#[derive(Debug, PartialEq, Eq)]
struct BlockMasks {
    quote: u64,
    backslash: u64,
    open: u64,
    close: u64,
}

impl BlockMasks {
    /// 16 bytes a compare with SSE2 on x86_64, a byte at a time elsewhere.
    #[inline]
    fn of(bytes: &[u8; BLOCK]) -> BlockMasks {
        #[cfg(target_arch = "x86_64")]
        return BlockMasks::of_sse2(bytes);
        #[cfg(not(target_arch = "x86_64"))]
        return BlockMasks::of_bytes(bytes);
    }

    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn of_sse2(bytes: &[u8; BLOCK]) -> BlockMasks {
        use safe_arch::{
            bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, m128i, move_mask_i8_m128i, set_splat_i8_m128i,
        };
        let splat = |byte: u8| set_splat_i8_m128i(byte as i8);
        let (quote, backslash) = (splat(b'"'), splat(b'\\'));
        let (brace, bracket, close_brace, close_bracket) = (splat(b'{'), splat(b'['), splat(b'}'), splat(b']'));
        let mut masks = BlockMasks { quote: 0, backslash: 0, open: 0, close: 0 };
        for (index, chunk) in bytes.as_chunks::<16>().0.iter().enumerate() {
            let v = load_unaligned_m128i(chunk);
            let bits = |found: m128i| (move_mask_i8_m128i(found) as u32 as u64) << (16 * index);
            let equal = |needle: m128i| cmp_eq_mask_i8_m128i(v, needle);
            masks.quote |= bits(equal(quote));
            masks.backslash |= bits(equal(backslash));
            masks.open |= bits(bitor_m128i(equal(brace), equal(bracket)));
            masks.close |= bits(bitor_m128i(equal(close_brace), equal(close_bracket)));
        }
        masks
    }

    #[cfg(any(test, not(target_arch = "x86_64")))]
    fn of_bytes(bytes: &[u8; BLOCK]) -> BlockMasks {
        let mut masks = BlockMasks { quote: 0, backslash: 0, open: 0, close: 0 };
        for (at, &byte) in bytes.iter().enumerate() {
            let bit = 1u64 << at;
            match byte {
                b'"' => masks.quote |= bit,
                b'\\' => masks.backslash |= bit,
                b'{' | b'[' => masks.open |= bit,
                b'}' | b']' => masks.close |= bit,
                _ => {}
            }
        }
        masks
    }
}

/// Bit i of the result is the XOR of bits 0..=i of `bits`.
fn prefix_xor(mut bits: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        bits ^= bits << shift;
    }
    bits
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

    /// A byte-at-a-time skip: strings jumped over by `string_end`, brackets of both kinds
    /// counted outside them.
    fn skip_container_bytewise(buf: &[u8], start: usize, depth: usize) -> Result<usize, WalkError> {
        let mut nesting = 0usize;
        let mut pos = start;
        while let Some(&byte) = buf.get(pos) {
            if byte == b'"' {
                pos = string_end(buf, pos).map_err(|_| WalkError::Syntax(start))?.0;
                continue;
            }
            if matches!(byte, b'{' | b'[') {
                nesting += 1;
                if nesting > depth {
                    return Err(WalkError::TooDeep);
                }
            } else if matches!(byte, b'}' | b']') {
                nesting -= 1;
                if nesting == 0 {
                    return Ok(pos + 1);
                }
            }
            pos += 1;
        }
        Err(WalkError::Syntax(start))
    }

    #[test]
    fn the_block_scan_skips_what_the_byte_scan_skips() {
        // Random texts of brackets, quotes, backslashes and letters, long enough to cross block
        // boundaries with a string, an escape or a nesting level open, at several depth limits.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // An escape whose backslash ends one block and whose quote starts the next.
        let split_escape = format!("{{\"{}\\\"a}}\"}}", "a".repeat(62));
        assert_eq!(split_escape.as_bytes()[BLOCK], b'\\');
        assert_eq!(skip_container(split_escape.as_bytes(), 0, 8), Ok(split_escape.len()));
        // Half the texts have no backslash, so that whole blocks take the bit-mask path.
        let alphabets = [&br#"{}[]"\abcdef,:"#[..], br#"{}[]"abcdefgh,:"#];
        let (mut compared, mut crossed) = (0, 0);
        for _ in 0..20_000 {
            let len = 1 + (next() % 300) as usize;
            let alphabet = alphabets[(next() % 2) as usize];
            let mut buf: Vec<u8> = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            buf[0] = if next() % 2 == 0 { b'{' } else { b'[' };
            let depth = [1, 2, 3, 64][(next() % 4) as usize];
            let expected = skip_container_bytewise(&buf, 0, depth);
            assert_eq!(skip_container(&buf, 0, depth), expected, "{}", String::from_utf8_lossy(&buf));
            compared += usize::from(expected.is_ok());
            crossed += usize::from(expected.is_ok_and(|end| end > BLOCK));
        }
        // The inputs close their container often enough, and often past the first block.
        assert!(compared > 1_000 && crossed > 500, "closed {compared}, past a block {crossed}");
    }

    #[test]
    fn the_vector_masks_are_the_byte_masks() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2_000 {
            let mut block = [0u8; BLOCK];
            for byte in &mut block {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = br#"{}[]"\ab"#[(state % 8) as usize];
            }
            assert_eq!(BlockMasks::of(&block), BlockMasks::of_bytes(&block), "{}", String::from_utf8_lossy(&block));
        }
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
        // A key with an escape may spell a kept field, at every level the walker reads.
        for record in [
            &br#"{"eventName":"A","user\u0041gent":"x"}"#[..],
            br#"{"eventName":"A","userIdentity":{"user\u004eame":"bob"}}"#,
            br#"{"eventName":"A","userIdentity":{"sessionContext":{"session\u0049ssuer":{"userName":"r"}}}}"#,
            br#"{"eventName":"A","userIdentity":{"sessionContext":{"sessionIssuer":{"user\u004eame":"r"}}}}"#,
        ] {
            let walked = walk_event(record, "", 0, 64, &mut Event::empty()).expect("walks");
            assert!(walked.needs_full_parse, "{}", String::from_utf8_lossy(record));
        }
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
