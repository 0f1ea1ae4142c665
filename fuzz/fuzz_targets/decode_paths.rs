//! Differential: the fast path (header walker, bodies left unparsed) and the full parser
//! (simd-json on every record) agree on every record both accept: the same events with the
//! same header fields, in the same order, and the same damage. The one documented difference
//! (README, "Strictness has a limit for speed"): damage inside a body no rule reads (invalid
//! UTF-8, a bad escape) rejects the record in the full parser only, so a record only the fast
//! path accepts must be one the full parser rejected as bad syntax. A record only the full
//! parser accepts is always a bug. And the fast path streamed through a narrow window (as every
//! gzip object and local file is read) agrees with it on the whole buffer, exactly.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use trailhound::decode::{Decoder, Limits, RecordReject, Source};
use trailhound::event::Event;

/// The fields both paths fill: everything but the bodies, which the fast path leaves out (and
/// their raw spans, which only it keeps).
fn header(event: &Event<'_>) -> String {
    let bodies = Event { request: None, response: None, additional: None, request_raw: None, additional_raw: None, ..*event };
    format!("{bodies:?}")
}

fuzz_target!(|data: &[u8]| {
    let limits =
        Limits { max_object_bytes: 1 << 20, max_record_bytes: 64 << 10, max_depth: 64, max_rejected_records: 256 };
    let mut full = BTreeMap::new();
    let full_report = Decoder::new(limits).decode(data, &mut |i, e| {
        full.insert(i, header(e));
    });
    let mut fast = BTreeMap::new();
    let fast_report = Decoder::new(limits).decode_with(data, &|_| false, &mut |i, e| {
        fast.insert(i, header(e));
    });
    assert_eq!(format!("{:?}", fast_report.damage), format!("{:?}", full_report.damage));
    // Streamed through a narrow window (its width from the input), the fast path reads exactly
    // what it reads from the whole buffer: records cut by the window, oversized ones skipped.
    let chunk = 1 + usize::from(data.first().copied().unwrap_or(0)) * 7;
    let mut streamed = BTreeMap::new();
    let mut reader = data;
    let streamed_report = Decoder::new(limits).with_window_chunk(chunk).decode_from(
        Source::Reader(&mut reader),
        &|_| false,
        &mut |i, e| {
            streamed.insert(i, header(e));
        },
    );
    assert_eq!(streamed, fast, "window of {chunk}: the events differ");
    assert_eq!(format!("{:?}", streamed_report.rejects), format!("{:?}", fast_report.rejects));
    // The same damage at the same offset. Not the decompressor's own wording: zlib-rs words
    // one corrupt stream differently with more output room ("repeated call with bad state"
    // where a narrow window gets "invalid distance too far back").
    let damage = |report: &trailhound::decode::ObjectReport| report.damage.as_ref().map(ToString::to_string);
    assert_eq!(damage(&streamed_report), damage(&fast_report));
    assert_eq!(streamed_report.rejected, fast_report.rejected);
    if fast_report.damage.is_none() {
        assert_eq!(streamed_report.json_bytes, fast_report.json_bytes);
    }
    for (index, event) in &full {
        assert_eq!(fast.get(index), Some(event), "record {index}: the full parser's event differs on the fast path");
    }
    let all_rejects_kept = full_report.rejects.len() as u64 == full_report.rejected;
    for index in fast.keys().filter(|i| !full.contains_key(i)) {
        let reason = full_report.rejects.iter().find(|(i, _)| i == index).map(|(_, r)| r);
        assert!(
            matches!(reason, Some(RecordReject::Syntax(_))) || (reason.is_none() && !all_rejects_kept),
            "record {index}: only the fast path accepts it, and not for body syntax: {reason:?}"
        );
    }
    assert!(fast_report.rejected <= full_report.rejected);
});
