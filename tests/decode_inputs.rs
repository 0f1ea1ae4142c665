//! The object-level bad-input catalogue (TESTING.md §4), each case with its stated outcome:
//! OK, REC (that record rejected, the rest of the file continues) or QRT (the object is
//! quarantined, and the records read before the damage are still inspected).

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use trailhound::decode::{Decoder, EnvelopeError, GzipError, Limits, ObjectError, ObjectReport, RecordReject, Source};

/// Decodes `bytes` twice, once parsing every record completely and once through the header
/// walker (no rule needs bodies), checks that both paths agree, and returns the eventNames seen
/// (in order) and the report.
fn decode_with(bytes: &[u8], limits: Limits) -> (Vec<String>, ObjectReport) {
    let mut full_names = Vec::new();
    let full = Decoder::new(limits).decode(bytes, &mut |_, event| full_names.push(event.event_name.to_owned()));
    let mut names = Vec::new();
    let walked =
        Decoder::new(limits).decode_with(bytes, &|_| false, &mut |_, event| names.push(event.event_name.to_owned()));
    assert_eq!(names, full_names, "both decode paths see the same events");
    assert_eq!(
        (walked.events, walked.rejected),
        (full.events, full.rejected),
        "{:?} vs {:?}",
        walked.rejects,
        full.rejects
    );
    assert_eq!(format!("{:?}", walked.damage), format!("{:?}", full.damage));
    let mut streamed_names = Vec::new();
    let mut reader = Trickle { rest: bytes, step: 4093 };
    let streamed = Decoder::new(limits).with_window_chunk(65_521).decode_from(
        Source::Reader(&mut reader),
        &|_| false,
        &mut |_, event| streamed_names.push(event.event_name.to_owned()),
    );
    assert_eq!(streamed_names, names, "read as a stream, the same events");
    assert_eq!((streamed.events, streamed.rejected, streamed.gzip), (walked.events, walked.rejected, walked.gzip));
    if walked.damage.is_none() {
        // A scan stopped early has read as far as its window reached, no further.
        assert_eq!(streamed.json_bytes, walked.json_bytes);
    }
    assert_eq!(format!("{:?}", streamed.rejects), format!("{:?}", walked.rejects));
    assert_eq!(format!("{:?}", streamed.damage), format!("{:?}", walked.damage));
    (names, walked)
}

/// A reader that hands out at most `step` bytes per read, as a file or pipe may.
struct Trickle<'a> {
    rest: &'a [u8],
    step: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step).min(self.rest.len());
        buf[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Ok(n)
    }
}

fn decode(bytes: &[u8]) -> (Vec<String>, ObjectReport) {
    decode_with(bytes, Limits::default())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::new(6));
    encoder.write_all(bytes).expect("in memory");
    encoder.finish().expect("in memory")
}

fn event(name: &str, id: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.09","eventTime":"2026-11-01T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"{name}","eventID":"{id}","awsRegion":"us-east-1"}}"#
    )
}

fn records(events: &[String]) -> String {
    format!(r#"{{"Records":[{}]}}"#, events.join(","))
}

fn two_events() -> String {
    records(&[event("A", "1"), event("B", "2")])
}

fn is_ok(report: &ObjectReport) -> bool {
    report.damage.is_none() && report.rejected == 0
}

#[test]
fn ok_every_envelope_shape_is_sniffed() {
    let a = event("A", "1");
    let b = event("B", "2");
    let cases = [
        ("records", two_events()),
        ("array", format!("[{a},{b}]")),
        ("single object", a.clone()),
        ("json lines", format!("{a}\n{b}\n")),
        ("json lines with CRLF", format!("{a}\r\n{b}\r\n")),
        ("bom", format!("\u{feff}{}", two_events())),
        (
            "eventbridge",
            format!(r#"{{"version":"0","detail-type":"AWS API Call via CloudTrail","source":"aws.s3","detail":{a}}}"#),
        ),
    ];
    for (label, text) in cases {
        for bytes in [text.as_bytes().to_vec(), gzip(text.as_bytes())] {
            let (names, report) = decode(&bytes);
            assert!(is_ok(&report), "{label}: {report:?}");
            let want = if text.matches("eventName").count() == 2 { vec!["A", "B"] } else { vec!["A"] };
            assert_eq!(names, want, "{label}");
        }
    }
}

#[test]
fn ok_plain_json_named_gz_and_empty_array() {
    // The file name is never trusted: a ".json.gz" that is plain JSON decodes.
    let (names, report) = decode(two_events().as_bytes());
    assert!(is_ok(&report) && !report.gzip && names.len() == 2);
    let (names, report) = decode(b"[]");
    assert!(is_ok(&report) && names.is_empty());
    let (names, report) = decode(br#"{"Records":[]}"#);
    assert!(is_ok(&report) && names.is_empty());
}

#[test]
fn ok_concatenated_gzip_members_form_one_document() {
    let text = two_events();
    let (first, second) = text.split_at(text.len() / 2);
    let mut bytes = gzip(first.as_bytes());
    bytes.extend(gzip(second.as_bytes()));
    let (names, report) = decode(&bytes);
    assert!(is_ok(&report), "{report:?}");
    assert_eq!(names, ["A", "B"]);
}

#[test]
fn qrt_empty_object() {
    let (names, report) = decode(b"");
    assert!(matches!(report.damage, Some(ObjectError::Empty)));
    assert!(names.is_empty());
}

#[test]
fn qrt_truncated_gzip_keeps_records_before_the_damage() {
    let many: Vec<String> = (0..200).map(|i| event("E", &i.to_string())).collect();
    let bytes = gzip(records(&many).as_bytes());
    let (names, report) = decode(&bytes[..bytes.len() * 3 / 4]);
    assert!(matches!(report.damage, Some(ObjectError::Gzip(GzipError::Truncated { .. }))), "{:?}", report.damage);
    assert!(!names.is_empty() && names.len() < 200, "read {} events before the damage", names.len());
}

#[test]
fn qrt_a_gzip_trailer_that_lies_about_the_size() {
    // The size in the trailer picks the whole-member inflater; a wrong one must not change the
    // outcome: the member's own length check fails either way, after the whole document.
    let good = gzip(two_events().as_bytes());
    for size in [1u32, 100, 1 << 20, u32::MAX] {
        let mut bytes = good.clone();
        let at = bytes.len() - 4;
        bytes[at..].copy_from_slice(&size.to_le_bytes());
        let (names, report) = decode(&bytes);
        assert!(matches!(report.damage, Some(ObjectError::Gzip(GzipError::Damaged { .. }))), "{:?}", report.damage);
        assert_eq!(names, ["A", "B"], "trailer size {size}");
    }
}

#[test]
fn qrt_bad_crc_after_a_complete_document() {
    let mut bytes = gzip(two_events().as_bytes());
    let crc_at = bytes.len() - 8;
    bytes[crc_at] ^= 0xff;
    let (names, report) = decode(&bytes);
    assert!(matches!(report.damage, Some(ObjectError::Gzip(_))), "{:?}", report.damage);
    assert_eq!(names, ["A", "B"], "the content before the bad checksum is still inspected");
}

#[test]
fn qrt_trailing_garbage_after_gzip_and_after_json() {
    let mut bytes = gzip(two_events().as_bytes());
    bytes.extend_from_slice(b"garbage that is not a gzip member");
    let (names, report) = decode(&bytes);
    assert!(matches!(report.damage, Some(ObjectError::Gzip(_))), "{:?}", report.damage);
    assert_eq!(names, ["A", "B"]);
    let (names, report) = decode(format!("{}xyz", two_events()).as_bytes());
    assert!(matches!(report.damage, Some(ObjectError::Envelope(EnvelopeError::Unexpected { byte: b'x', .. }))));
    assert_eq!(names, ["A", "B"]);
}

/// `count` gzip members of `unit` each: a large stream with a small file.
fn repeated_members(unit: &[u8], count: usize) -> Vec<u8> {
    let member = gzip(unit);
    member.repeat(count)
}

#[test]
fn qrt_decompression_bomb_of_zeros_stops_at_the_first_chunk() {
    // 2 GiB of zeros in ~2 MB of gzip.
    let bomb = repeated_members(&vec![0u8; 1 << 20], 2048);
    assert!(bomb.len() < 4 << 20);
    let (names, report) = decode(&bomb);
    assert!(matches!(report.damage, Some(ObjectError::Gzip(GzipError::NotText { .. }))), "{:?}", report.damage);
    assert!(names.is_empty());
    assert!(report.json_bytes <= 1 << 20, "stopped after {} bytes", report.json_bytes);
}

#[test]
fn qrt_bomb_of_json_whitespace_stops_at_the_cap() {
    let mut bomb = gzip(br#"{"Records":["#);
    bomb.extend(repeated_members(&vec![b' '; 1 << 20], 512));
    let cap = 16 << 20;
    let (_, report) = decode_with(&bomb, Limits { max_object_bytes: cap, ..Limits::default() });
    assert!(matches!(report.damage, Some(ObjectError::Gzip(GzipError::TooLarge { .. }))), "{:?}", report.damage);
    assert!(report.json_bytes <= cap);
}

#[test]
fn qrt_not_a_cloudtrail_envelope() {
    let cases: [&[u8]; 9] = [
        b"\x00\x01\x02random bytes\xff\xfe",
        br#""x""#,
        b"null",
        b"42",
        br#"{"digestStartTime":"2026-11-01T00:00:00Z","awsAccountId":"1"}"#,
        br#"{"Records":null}"#,
        br#"{"Records":{"eventName":"A"}}"#,
        b"# a README\n",
        br#"{"Records":[{"eventName":"A"}"#,
    ];
    for bytes in cases {
        let (_, report) = decode(bytes);
        assert!(report.damage.is_some(), "{:?} should be quarantined", String::from_utf8_lossy(bytes));
    }
}

#[test]
fn qrt_deep_nesting_around_records() {
    let depth = 10_000;
    let text = format!("{}{}{}", "[".repeat(depth), records(&[event("A", "1")]), "]".repeat(depth));
    let (names, report) = decode(text.as_bytes());
    assert!(matches!(report.damage, Some(ObjectError::Envelope(_))), "{:?}", report.damage);
    assert!(names.is_empty());
    let text = format!("{}{}", r#"{"a":"#.repeat(depth), "1".to_owned() + &"}".repeat(depth));
    let (_, report) = decode(text.as_bytes());
    assert!(report.damage.is_some());
}

/// A file whose middle record is `bad`: the records around it must survive.
fn with_bad_middle(bad: &str) -> (Vec<String>, ObjectReport) {
    let text = format!(r#"{{"Records":[{},{bad},{}]}}"#, event("A", "1"), event("B", "2"));
    decode(text.as_bytes())
}

#[test]
fn rec_bad_records_are_rejected_alone() {
    let deep = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let cases: Vec<(&str, String)> = vec![
        ("number", "5".into()),
        ("string", r#""x""#.into()),
        ("null", "null".into()),
        ("no eventName", r#"{"eventID":"x"}"#.into()),
        ("NaN", r#"{"eventName":"C","n":NaN}"#.into()),
        ("Infinity", r#"{"eventName":"C","n":Infinity}"#.into()),
        ("huge exponent", r#"{"eventName":"C","n":1e400}"#.into()),
        ("10,000-deep nesting", format!(r#"{{"eventName":"C","x":{deep}}}"#)),
        ("lone surrogate", r#"{"eventName":"C\ud800"}"#.into()),
        ("lone low surrogate", r#"{"eventName":"C\uDC00x"}"#.into()),
        ("bad escape", r#"{"eventName":"C\q"}"#.into()),
        // Issue 16: an array among the records is one bad record; it used to end the file.
        ("array item", "[3]".into()),
        ("array holding an event", format!("[{}]", event("C", "3"))),
        ("deep array item", format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000))),
    ];
    for (label, bad) in cases {
        let (names, report) = with_bad_middle(&bad);
        assert_eq!(names, ["A", "B"], "{label}");
        assert_eq!(report.rejected, 1, "{label}: {:?}", report.rejects);
        assert!(report.damage.is_none(), "{label}: {:?}", report.damage);
    }
}

/// Issue 16: a few MB of gzip holding `{},` millions of times stalled a worker for minutes; past
/// the bound on rejected records the object is quarantined and the rest left unread.
#[test]
fn qrt_past_the_bound_on_rejected_records() {
    let flood = format!(r#"{{"Records":[{},{}{{}}]}}"#, event("A", "1"), "{},".repeat(2_000_000));
    let (names, report) = decode(&gzip(flood.as_bytes()));
    let limit = Limits::default().max_rejected_records;
    assert_eq!(names, ["A"], "the record before the flood is still read");
    assert_eq!(report.rejected, limit + 1, "stops at the bound, not after two million");
    assert!(matches!(report.damage, Some(ObjectError::TooManyRejected { .. })), "{:?}", report.damage);

    let few = format!(r#"{{"Records":[{}{}]}}"#, "{},".repeat(50), event("B", "2"));
    let (names, report) = decode_with(few.as_bytes(), Limits { max_rejected_records: 50, ..Limits::default() });
    assert_eq!((names, report.rejected), (vec!["B".to_owned()], 50), "at the bound is still read");
    assert!(report.damage.is_none(), "{:?}", report.damage);
}

#[test]
fn rec_invalid_utf8_in_a_record() {
    let mut text = format!(r#"{{"Records":[{},"#, event("A", "1")).into_bytes();
    text.extend_from_slice(b"{\"eventName\":\"C\xff\xfe\"},");
    text.extend_from_slice(format!("{}]}}", event("B", "2")).as_bytes());
    let (names, report) = decode(&text);
    assert_eq!(names, ["A", "B"]);
    assert_eq!(report.rejected, 1);
}

#[test]
fn rec_record_over_the_record_cap() {
    let huge = format!(r#"{{"eventName":"C","userAgent":"{}"}}"#, "a".repeat(100 << 20));
    let (names, report) = with_bad_middle(&huge);
    assert_eq!(names, ["A", "B"]);
    assert!(matches!(report.rejects.first(), Some((1, RecordReject::TooLarge { .. }))), "{:?}", report.rejects);
}

#[test]
fn ok_records_cut_by_the_window_are_read_whole() {
    // Several megabytes of records of every size, so that records straddle the window's edges
    // (512 KiB of text at a time), some of them bigger than a window.
    let events: Vec<String> = (0..3000)
        .map(|i| {
            let pad = "p".repeat((i * 7919) % 4000 + if i % 500 == 7 { 700_000 } else { 0 });
            format!(
                r#"{{"eventName":"E{i}","eventID":"{i}","userAgent":"{pad}","requestParameters":{{"k":["}}]",{i}]}}}}"#
            )
        })
        .collect();
    let text = records(&events);
    assert!(text.len() > 8 << 20);
    let want: Vec<String> = (0..3000).map(|i| format!("E{i}")).collect();
    for bytes in [text.clone().into_bytes(), gzip(text.as_bytes())] {
        let (names, report) = decode(&bytes);
        assert!(is_ok(&report), "{report:?}");
        assert_eq!(names, want);
        assert_eq!(report.json_bytes, text.len() as u64);
    }
}

/// A reader that fails after handing out `good` bytes, as a disk or network file system may.
struct Failing<'a> {
    good: &'a [u8],
}

impl std::io::Read for Failing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.good.is_empty() {
            return Err(std::io::Error::other("device went away"));
        }
        let n = buf.len().min(self.good.len()).min(1000);
        buf[..n].copy_from_slice(&self.good[..n]);
        self.good = &self.good[n..];
        Ok(n)
    }
}

#[test]
fn qrt_a_read_error_keeps_the_records_before_it() {
    let many: Vec<String> = (0..400).map(|i| event("E", &i.to_string())).collect();
    let text = records(&many);
    for bytes in [text.clone().into_bytes(), gzip(text.as_bytes())] {
        let mut reader = Failing { good: &bytes[..bytes.len() / 2] };
        let mut names = Vec::new();
        let report = Decoder::new(Limits::default()).with_window_chunk(4096).decode_from(
            Source::Reader(&mut reader),
            &|_| false,
            &mut |_, event| names.push(event.event_name.to_owned()),
        );
        let damage = report.damage.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(matches!(report.damage, Some(ObjectError::Read(_))), "{damage}");
        assert!(damage.contains("device went away"), "{damage}");
        assert!(!names.is_empty() && names.len() < 400, "{} events read before the error", names.len());
    }
}

#[test]
fn ok_odd_but_valid_records() {
    let cases: Vec<(&str, String)> = vec![
        ("missing eventID and eventTime", r#"{"eventName":"C"}"#.into()),
        (
            "wrong types",
            r#"{"eventName":"C","eventTime":1700000000,"userIdentity":"x","requestParameters":[1]}"#.into(),
        ),
        ("duplicate keys", r#"{"eventName":"C","eventName":"D"}"#.into()),
        ("year 9999", r#"{"eventName":"C","eventTime":"9999-12-31T23:59:59Z"}"#.into()),
        ("year 1970", r#"{"eventName":"C","eventTime":"1970-01-01T00:00:00Z"}"#.into()),
        ("splitter bait", r#"{"eventName":"C","userAgent":"}]},{\"eventName\":\"CopyObject\""}"#.into()),
        ("surrogate pair", r#"{"eventName":"C","userAgent":"\ud83d\ude00"}"#.into()),
        ("1 MiB user agent", format!(r#"{{"eventName":"C","userAgent":"{}"}}"#, "u".repeat(1 << 20))),
    ];
    for (label, record) in cases {
        let (names, report) = with_bad_middle(&record);
        assert!(report.damage.is_none(), "{label}: {:?}", report.damage);
        assert_eq!(names, ["A", "C", "B"], "{label}: {:?}", report.rejects);
    }
}
