//! Issue 16: findings are streamed to the output as the run concludes them, so memory does not
//! grow with their number: a file of 200,000 finding-making events peaks within a few tens of
//! MB of the same file whose events make none (it took 1.8 GB before, 7 KB per finding).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::write::GzEncoder;
use flate2::Compression;

const EVENTS: usize = 200_000;

/// A gzip CloudTrail file of `EVENTS` ECS ExecuteCommand events (interactive: each is a
/// finding) or DescribeTasks events (none) of the same shape.
fn write_log(path: &Path, event_name: &str) {
    let mut gz = GzEncoder::new(std::fs::File::create(path).expect("create"), Compression::fast());
    gz.write_all(b"{\"Records\":[").expect("write");
    for i in 0..EVENTS {
        let record = format!(
            r#"{}{{"eventVersion":"1.10","userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/ops/s{}","accountId":"111122223333","accessKeyId":"ASIAEXAMPLE{:09}"}},"eventTime":"2026-11-01T{:02}:{:02}:{:02}Z","eventSource":"ecs.amazonaws.com","eventName":"{event_name}","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2.15.30","requestParameters":{{"cluster":"prod","container":"web","command":"/bin/sh","interactive":true,"task":"arn:aws:ecs:us-east-1:111122223333:task/prod/{i:016x}"}},"eventID":"ev-{i:08}","eventType":"AwsApiCall","recipientAccountId":"111122223333"}}"#,
            if i == 0 { "" } else { "," },
            i % 1000,
            i,
            10 + i / 36_000,
            i / 600 % 60,
            i / 10 % 60,
        );
        gz.write_all(record.as_bytes()).expect("write");
    }
    gz.write_all(b"]}").expect("write");
    gz.finish().expect("finish");
}

/// Runs a scan of `path` into a file; returns (findings written, peak memory in MB).
fn scan(path: &Path, out: &Path) -> (usize, u64) {
    let output = Command::new(env!("CARGO_BIN_EXE_trailhound"))
        .args(["scan", "--format", "jsonl", "--threads", "1", "-o"])
        .arg(out)
        .arg(path)
        .env_remove("TRAILHOUND_CONFIG")
        .output()
        .expect("the binary runs");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    let peak = err
        .lines()
        .find_map(|l| l.strip_prefix("peak memory: "))
        .and_then(|l| l.trim_end_matches(" MB").parse().ok())
        .unwrap_or_else(|| panic!("no peak memory in the summary: {err}"));
    let findings = std::fs::read_to_string(out).expect("output").lines().count();
    (findings, peak)
}

#[cfg(target_os = "linux")]
#[test]
fn memory_does_not_grow_with_the_number_of_findings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = |name: &str| -> PathBuf { dir.path().join(name) };
    write_log(&file("findings.json.gz"), "ExecuteCommand");
    write_log(&file("quiet.json.gz"), "DescribeTasks");
    let (findings, with_findings) = scan(&file("findings.json.gz"), &file("findings.jsonl"));
    let (none, without) = scan(&file("quiet.json.gz"), &file("quiet.jsonl"));
    assert_eq!((findings, none), (EVENTS, 0), "every ExecuteCommand is a finding, no DescribeTasks is");
    assert!(
        with_findings <= without + 64,
        "200,000 findings cost {} MB over the same events without findings ({with_findings} vs {without} MB)",
        with_findings.saturating_sub(without)
    );
}

/// Issue 15: objects stream through the decoder's window, so a decompression bomb and a huge
/// record cost the window, not their size (the whole inflated object was held before: 1 GiB a
/// thread for a bomb, 200 MB for a 200 MB record).
#[cfg(target_os = "linux")]
#[test]
fn hostile_objects_cost_a_window_not_their_size() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = |name: &str| -> PathBuf { dir.path().join(name) };
    let event = |name: &str| {
        format!(
            r#"{{"eventVersion":"1.10","eventTime":"2026-11-01T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","eventID":"{name}"}}"#
        )
    };
    // 300 MB of whitespace inside `{"Records":[`, after one event, in ~0.3 MB of gzip.
    let mut bomb = GzEncoder::new(std::fs::File::create(file("bomb.json.gz")).expect("create"), Compression::fast());
    write!(bomb, r#"{{"Records":[{},"#, event("Before")).expect("write");
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..300 {
        bomb.write_all(&spaces).expect("write");
    }
    bomb.finish().expect("finish");
    // A 120 MB record between two events, in plain JSON.
    let record = format!(r#"{{"eventName":"Huge","userAgent":"{}"}}"#, "a".repeat(120 << 20));
    let text = format!(r#"{{"Records":[{},{record},{}]}}"#, event("First"), event("Last"));
    std::fs::write(file("record.json"), text).expect("write");
    std::fs::write(file("small.json"), format!(r#"{{"Records":[{}]}}"#, event("Small"))).expect("write");

    let (_, small) = scan(&file("small.json"), &file("small.jsonl"));
    let (quarantined, bomb) = scan(&file("bomb.json.gz"), &file("bomb.jsonl"));
    let (_, record) = scan(&file("record.json"), &file("record.jsonl"));
    assert_eq!(quarantined, 1, "the bomb is quarantined (a truncated envelope), as before");
    for (case, peak) in [("300 MB of whitespace in gzip", bomb), ("a 120 MB record", record)] {
        assert!(peak <= small + 48, "{case} peaked at {peak} MB, a small file at {small} MB");
    }
}
