//! Property: the fast path (the header walker, bodies parsed only when a rule needs them) and
//! the full parser (simd-json on every record) agree on every input either accepts: the same
//! events with the same header fields, the same rejected records and damage, and the same
//! findings. Inputs are the detector fixtures mutated at random (seeded, so a failure repeats):
//! values replaced by escaped, non-ASCII, empty, long, numeric, null or nested ones, keys
//! dropped, and the records wrapped in every envelope the decoder sniffs. The fuzz target
//! `decode_paths` (fuzz/) checks the same on arbitrary bytes.

use std::path::Path;

use serde_json::{json, Value};
use trailhound::decode::{Decoder, Limits, Source};
use trailhound::detect::rules::UNREADABLE_LOG_FILE;
use trailhound::detect::{Engine, EventOrigin};
use trailhound::event::Event;
use trailhound::finding::Mode;
use trailhound::pipeline::{inspect_object, Gather, Window};
use trailhound::settings::Settings;

/// xorshift64*: a small seeded generator, enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Every record of the positive and negative detector fixtures.
fn fixture_records() -> Vec<Value> {
    let mut records = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/events");
    let mut dirs: Vec<_> =
        std::fs::read_dir(&root).expect("fixtures").filter_map(|e| e.ok()).map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs {
        for kind in ["positive", "negative"] {
            let Ok(entries) = std::fs::read_dir(dir.join(kind)) else { continue };
            let mut files: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
            files.sort();
            for file in files {
                let text = std::fs::read_to_string(&file).expect("fixture");
                if let Ok(Value::Object(doc)) = serde_json::from_str::<Value>(&text) {
                    if let Some(Value::Array(items)) = doc.get("Records") {
                        records.extend(items.iter().cloned());
                    }
                }
            }
        }
    }
    records
}

/// A replacement value: the shapes that take the walker off its fast path or trip a rule.
fn odd_value(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => json!("quote \" and backslash \\ and slash /"),
        1 => json!("tab\tnew\nline\u{1}control"),
        2 => json!("é ü 漢字 😀"),
        3 => json!(""),
        4 => json!("x".repeat(5_000)),
        5 => json!(12345),
        6 => json!(-0.5e-3),
        7 => Value::Null,
        8 => json!(true),
        9 => json!([1, "two", {"three": 3}]),
        10 => json!({"nested": {"deeper": ["a", {"b": null}]}}),
        _ => json!("0.0.0.0/0"),
    }
}

/// Replaces or drops a random member somewhere in `value`.
fn mutate(value: &mut Value, rng: &mut Rng, depth: usize) {
    let Value::Object(map) = value else { return };
    if map.is_empty() {
        return;
    }
    let key = map.keys().nth(rng.below(map.len())).cloned().unwrap_or_default();
    let descend = depth < 4 && map.get(&key).is_some_and(Value::is_object) && rng.below(2) == 0;
    if descend {
        if let Some(inner) = map.get_mut(&key) {
            mutate(inner, rng, depth + 1);
        }
    } else if rng.below(5) == 0 {
        map.remove(&key);
    } else {
        map.insert(key, odd_value(rng));
    }
}

/// The records in one of the envelopes the decoder sniffs, with `\u` escapes for some
/// non-ASCII text (serde_json writes it raw).
fn envelope(records: &[Value], rng: &mut Rng) -> Vec<u8> {
    let texts: Vec<String> = records.iter().map(|r| r.to_string()).collect();
    let text = match rng.below(4) {
        0 => format!(r#"{{"Records":[{}]}}"#, texts.join(",")),
        1 => format!("[{}]", texts.join(", ")),
        2 => texts.join("\n"),
        _ => format!("{{\"Records\":[\n  {}\n]}}", texts.join(",\n  ")),
    };
    // Keys spelled with an escape, at the top level and inside the identity: JSON reads them
    // as the plain names, so the walker must send such records to the full parse.
    let text = if rng.below(4) == 0 {
        [("userAgent", "user\\u0041gent"), ("userName", "user\\u004eame"), ("sessionIssuer", "session\\u0049ssuer")]
            .into_iter()
            .filter(|_| rng.below(2) == 0)
            .fold(text, |text, (plain, escaped)| text.replace(&format!("\"{plain}\":"), &format!("\"{escaped}\":")))
    } else {
        text
    };
    if rng.below(3) == 0 {
        text.replace('é', "\\u00e9").replace('😀', "\\ud83d\\ude00").into_bytes()
    } else {
        text.into_bytes()
    }
}

/// The fields both paths fill: everything but the bodies, which the fast path may leave out.
fn header(index: u64, event: &Event<'_>) -> String {
    let header =
        Event { request: None, response: None, additional: None, request_raw: None, additional_raw: None, ..*event };
    format!("{index} {header:?}")
}

#[test]
fn the_fast_path_and_the_full_parser_agree() {
    let fixtures = fixture_records();
    assert!(fixtures.len() > 200, "{} fixture records", fixtures.len());
    let engine = Engine::new(Settings::default(), Mode::Scan);
    let limits = Limits::default();
    let mut rng = Rng(0x7a11_0b0d_5eed_2026);
    let mut compared_findings = 0;
    for case in 0..400 {
        let mut records: Vec<Value> =
            (0..1 + rng.below(6)).map(|_| fixtures[rng.below(fixtures.len())].clone()).collect();
        for record in &mut records {
            for _ in 0..rng.below(4) {
                mutate(record, &mut rng, 0);
            }
        }
        let object = envelope(&records, &mut rng);
        let label = format!("case {case}: {}", String::from_utf8_lossy(&object[..object.len().min(300)]));

        // Events and their header fields, rejects and damage.
        let mut full = Vec::new();
        let full_report = Decoder::new(limits).decode(&object, &mut |i, e| full.push(header(i, e)));
        let mut fast = Vec::new();
        let fast_report = Decoder::new(limits).decode_with(&object, &|_| false, &mut |i, e| fast.push(header(i, e)));
        assert_eq!(fast, full, "{label}");
        assert_eq!((fast_report.events, fast_report.rejected), (full_report.events, full_report.rejected), "{label}");
        assert_eq!(format!("{:?}", fast_report.damage), format!("{:?}", full_report.damage), "{label}");

        // The same through a window a few bytes wide, so records straddle its edges.
        every_window_reads_the_same(&object, limits, [1 + rng.below(200)], &label);

        // Findings: every event parsed whole, against the scan's own path.
        let mut expected = Vec::new();
        Decoder::new(limits).decode(&object, &mut |index, event| {
            engine.inspect(event, EventOrigin { object: "o", index }, &mut expected);
        });
        let mut decoder = Decoder::new(limits);
        let scanned =
            inspect_object(&mut decoder, &object, "o", &engine, Window::default(), Mode::Scan, Gather::default());
        let as_json = |findings: &[trailhound::finding::Finding]| {
            findings.iter().map(|f| serde_json::to_string(f).expect("json")).collect::<Vec<_>>()
        };
        // A damaged object also makes an unreadable-object finding on the scan's path; the
        // damage itself is compared above.
        let mut scanned_findings = scanned.findings;
        scanned_findings.retain(|f| full_report.damage.is_none() || f.rule != UNREADABLE_LOG_FILE.id);
        assert_eq!(as_json(&scanned_findings), as_json(&expected), "{label}");
        compared_findings += expected.len();
    }
    assert!(compared_findings > 200, "the cases make findings to compare: {compared_findings}");
}

/// Reads `object` whole, then through windows of each width in `chunks`: the same events,
/// rejects and damage every time. `label` names the case in a failure.
fn every_window_reads_the_same(object: &[u8], limits: Limits, chunks: impl IntoIterator<Item = usize>, label: &str) {
    let mut whole = Vec::new();
    let whole_report = Decoder::new(limits).decode_with(object, &|_| false, &mut |i, e| whole.push(header(i, e)));
    for chunk in chunks {
        let mut streamed = Vec::new();
        let mut reader = object;
        let report = Decoder::new(limits).with_window_chunk(chunk).decode_from(
            Source::Reader(&mut reader),
            &|_| false,
            &mut |i, e| streamed.push(header(i, e)),
        );
        assert_eq!(streamed, whole, "{label} (window of {chunk})");
        assert_eq!(
            format!("{:?}", report.rejects),
            format!("{:?}", whole_report.rejects),
            "{label} (window of {chunk})"
        );
        assert_eq!(format!("{:?}", report.damage), format!("{:?}", whole_report.damage), "{label} (window of {chunk})");
    }
}

#[test]
fn a_record_with_crossed_brackets_ends_at_the_same_byte_on_every_path() {
    // Brackets that do not pair up (`[` closed by `}`), in records under and over the cap: the
    // header walker, the envelope scanner and its streaming skipper must agree on where each
    // record ends, or a window that cuts the record changes which records follow it.
    let pad = "p".repeat(600);
    let good = r#"{"eventName":"ListBuckets","eventSource":"s3.amazonaws.com","eventID":"g"}"#;
    let object = format!(
        r#"{{"Records":[{good},{{"eventName":"A","x":[}}}},{good},{{"eventName":"B","x":[{{"pad":"{pad}"]}},"y":"{pad}"}},{good}]}}"#
    );
    let limits = Limits { max_record_bytes: 256, ..Limits::default() };
    let mut whole = Vec::new();
    let whole_report =
        Decoder::new(limits).decode_with(object.as_bytes(), &|_| false, &mut |i, e| whole.push(header(i, e)));
    assert_eq!(whole.len(), 4, "the three good records and the short crossed one: {whole:?}");
    assert_eq!(format!("{:?}", whole_report.rejects), "[(3, TooLarge { bytes: 1241, cap: 256 })]");
    every_window_reads_the_same(object.as_bytes(), limits, [1, 7, 64, 200, 255, 256, 300, 1000], "crossed brackets");
}

#[test]
fn a_top_level_record_is_read_within_the_bounds_the_scanner_walked() {
    // JSON lines where one object's member value is a scalar with a stray quote: the scanner
    // walks it member by member to its `}`, while the record reader, counting from the
    // object's start, would take the quote as a string's start and read into the next lines,
    // as far as the window reaches. Read within its bounds, it is one rejected record whatever
    // the window.
    let good = |id: &str| format!(r#"{{"eventName":"ListBuckets","eventSource":"s3.amazonaws.com","eventID":"{id}"}}"#);
    let object = format!("{}\n{}\n{}\n{}\n", good("a"), r#"{"eventName":"B","n":1"x,"y":2}"#, good("b"), good("c"));
    let limits = Limits::default();
    let mut whole = Vec::new();
    let whole_report =
        Decoder::new(limits).decode_with(object.as_bytes(), &|_| false, &mut |i, e| whole.push(header(i, e)));
    assert_eq!(whole.len(), 3, "{whole:?}");
    assert!(whole_report.damage.is_none(), "{:?}", whole_report.damage);
    assert!(
        matches!(whole_report.rejects.as_slice(), [(1, trailhound::decode::RecordReject::Syntax(_))]),
        "{:?}",
        whole_report.rejects
    );
    every_window_reads_the_same(object.as_bytes(), limits, 1..=object.len(), "stray quote");
}
