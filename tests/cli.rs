//! End-to-end tests of the `trailhound` binary: golden outputs over `testdata/`, exit codes,
//! escaping of attacker-controlled strings, secrets, de-duplication, bad local inputs, and
//! a closed pipe. Set `UPDATE_GOLDEN=1` to rewrite the golden files after an intended change.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn trailhound(args: &[&str]) -> Output {
    trailhound_with_env(args, &[])
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_golden(name: &str, actual: &str) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("golden dir");
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing golden file {}", path.display()));
    assert!(expected == actual, "output differs from {} (UPDATE_GOLDEN=1 to accept):\n{actual}", path.display());
}

#[test]
fn golden_jsonl_over_the_detector_fixtures() {
    let output = trailhound(&["scan", "--format", "jsonl", "testdata/events"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_golden("scan_events.jsonl", &stdout(&output));
}

#[test]
fn golden_jsonl_over_the_bundled_delivered_sample() {
    // testdata/sample: two gzip objects in the CloudTrail key layout, from `examples/gen_corpus`
    // (seed 2026, 250 events per object), with one planted SSE-C overwrite and one look-alike.
    let output = trailhound(&["scan", "--format", "jsonl", "testdata/sample"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_golden("scan_sample.jsonl", &stdout(&output));
    assert!(stderr(&output).contains("scanned 2 files"), "{}", stderr(&output));
}

#[test]
fn the_same_input_gives_the_same_output_whatever_the_thread_count() {
    let corpus = root().join("../shared/corpus");
    let mut inputs = vec!["testdata".to_owned()];
    if corpus.is_dir() {
        inputs.push(corpus.display().to_string());
    }
    for input in inputs {
        let one = trailhound(&["scan", "--format", "jsonl", "--threads", "1", &input]);
        let two = trailhound(&["scan", "--format", "jsonl", "--threads", "2", &input]);
        let four = trailhound(&["scan", "--format", "jsonl", "--threads", "4", &input]);
        assert!(!one.stdout.is_empty());
        assert_eq!(one.stdout, two.stdout, "{input}");
        assert_eq!(one.stdout, four.stdout, "{input}");
    }
}

/// Runs the binary with `env` set and nothing the tests' shell exported that changes output:
/// no configuration file, and the table's width and colours not taken from the terminal.
fn trailhound_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trailhound"));
    command.args(args).current_dir(root()).env_remove("TRAILHOUND_CONFIG").env_remove("COLUMNS").env_remove("NO_COLOR");
    command.envs(env.iter().copied()).output().expect("the binary runs")
}

/// Issue 16: the table fits the terminal's width (here `COLUMNS`): it drops the id, account and
/// source IP columns, then narrows the principal (dropped below about 120 columns: the summary
/// names who too), and cuts the summary at a word, never wider than the terminal. Golden files
/// at 100, 120 and 180 columns.
#[test]
fn the_table_fits_the_terminal_width() {
    for columns in [100, 120, 180] {
        let output = trailhound_with_env(
            &["scan", "--format", "table", "--min-severity", "high", "testdata/events"],
            &[("COLUMNS", &columns.to_string())],
        );
        let table = stdout(&output);
        assert_golden(&format!("scan_events_high.{columns}cols.table.txt"), &table);
        for line in table.lines() {
            assert!(line.chars().count() <= columns, "wider than {columns}: {line}");
            if let Some(cut) = line.strip_suffix('…') {
                assert!(!cut.ends_with(' '), "cut after a space: {line}");
            }
        }
        let header = table.lines().next().expect("a header");
        assert_eq!(header.contains("PRINCIPAL"), columns >= 120, "{header}");
        assert_eq!(header.contains("SOURCE IP"), columns == 180, "{header}");
    }
    let narrow = stdout(&trailhound_with_env(&["scan", "--format", "table", "testdata/events"], &[("COLUMNS", "100")]));
    assert!(narrow.lines().any(|l| l.ends_with('…')), "long summaries are cut: {narrow}");
}

/// Issue 16: severities are coloured on a terminal, and `NO_COLOR`, `--color never` and a
/// pipe switch the colours off (the terminal is a pseudo-terminal made by `script`).
#[cfg(unix)]
#[test]
fn severities_are_coloured_on_a_terminal_unless_no_color() {
    let on_a_terminal = |no_color: Option<&str>, flag: &str| {
        let binary = env!("CARGO_BIN_EXE_trailhound");
        let command = format!("{binary} scan --quiet --format table {flag} --min-severity high testdata/events");
        let mut script = Command::new("script");
        script.args(["-qec", &command, "/dev/null"]).current_dir(root()).env_remove("NO_COLOR").env("COLUMNS", "160");
        if let Some(value) = no_color {
            script.env("NO_COLOR", value);
        }
        String::from_utf8_lossy(&script.output().expect("script runs").stdout).into_owned()
    };
    let coloured = on_a_terminal(None, "");
    assert!(coloured.contains("\u{1b}[31mhigh") && coloured.contains("\u{1b}[0m"), "{coloured:?}");
    assert!(coloured.contains("\u{1b}[1;31mcritical"), "{coloured:?}");
    assert!(!on_a_terminal(Some("1"), "").contains('\u{1b}'), "NO_COLOR=1");
    assert!(on_a_terminal(Some(""), "").contains('\u{1b}'), "an empty NO_COLOR does not count");
    assert!(!on_a_terminal(None, "--color never").contains('\u{1b}'), "--color never");
    let piped = trailhound(&["scan", "--format", "table", "testdata/events"]);
    assert!(!stdout(&piped).contains('\u{1b}'), "a pipe is not coloured");
    let forced = trailhound(&["scan", "--format", "table", "--color", "always", "testdata/events"]);
    assert!(stdout(&forced).contains("\u{1b}[33mmedium"), "--color always");
}

#[test]
fn golden_table_of_high_and_critical_findings() {
    let output = trailhound(&["scan", "--format", "table", "--min-severity", "high", "testdata/events"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_golden("scan_events_high.table.txt", &stdout(&output));
}

#[test]
fn golden_rules_listing() {
    let output = trailhound(&["rules", "--format", "table"]);
    assert_eq!(output.status.code(), Some(0));
    assert_golden("rules.table.txt", &stdout(&output));
    let jsonl = trailhound(&["rules", "--format", "jsonl"]);
    let table = stdout(&output);
    assert!(table.starts_with("RULE "), "a header line");
    assert_eq!(stdout(&jsonl).lines().count() + 1, table.lines().count(), "one line per rule below the header");
}

#[test]
fn exit_codes() {
    let critical = trailhound(&["scan", "--format", "jsonl", "--fail-on", "critical", "testdata/events"]);
    assert_eq!(critical.status.code(), Some(1));
    let clean = trailhound(&["scan", "--format", "jsonl", "--fail-on", "low", "testdata/duplicates"]);
    assert_eq!(clean.status.code(), Some(1), "a medium finding is at or above low");
    let quiet = trailhound(&["scan", "--format", "jsonl", "--fail-on", "high", "testdata/duplicates"]);
    assert_eq!(quiet.status.code(), Some(0));
    let bad_flag = trailhound(&["scan", "--min-severity", "extreme", "testdata"]);
    assert_eq!(bad_flag.status.code(), Some(2));
    let bad_time = trailhound(&["scan", "--since", "yesterday", "testdata"]);
    assert_eq!(bad_time.status.code(), Some(2));
    assert!(stderr(&bad_time).contains("`--since`"), "{}", stderr(&bad_time));
    let no_paths = trailhound(&["scan"]);
    assert_eq!(no_paths.status.code(), Some(2));
}

#[test]
fn configuration_file_is_validated_and_applied() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "trusted_cidr = [\"10.0.0.0/8\"]\n").expect("write");
    let output = trailhound(&["scan", "--config", bad.to_str().expect("utf-8"), "testdata"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("trusted_cidr"), "{}", stderr(&output));

    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "trusted_cidrs = [\"10.0.0.0/8\"]\n[rules.\"ec2.serial_console_enabled\"]\nseverity = \"critical\"\n[rules.\"ecs.task_writable_root\"]\nenabled = false\n",
    )
    .expect("write");
    let output =
        trailhound(&["scan", "--format", "jsonl", "--config", good.to_str().expect("utf-8"), "testdata/events"]);
    let text = stdout(&output);
    assert!(!text.contains("\"rule\":\"ecs.task_writable_root\""));
    assert!(!text.contains("low_private_range_is_still_reported"), "10.0.0.0/8 is trusted now");
    let serial: Vec<&str> = text.lines().filter(|l| l.contains("\"rule\":\"ec2.serial_console_enabled\"")).collect();
    assert!(!serial.is_empty() && serial.iter().all(|l| l.contains("\"severity\":\"critical\"")));
}

#[test]
fn attacker_controlled_strings_are_escaped_in_every_format() {
    for format in ["jsonl", "table"] {
        let output = trailhound(&["scan", "--format", format, "testdata/hostile"]);
        let text = stdout(&output);
        assert!(text.contains("ec2.remote_admin_port_open"), "{text}");
        for forbidden in ['\u{1b}', '\r', '\u{7}', '\u{202e}', '\u{200b}', '\u{2066}'] {
            assert!(!text.contains(forbidden), "{format}: raw {forbidden:?} in output");
        }
        // Two remote-admin findings and the flood of empty records quarantined.
        assert_eq!(text.lines().count(), if format == "table" { 4 } else { 3 }, "{format}: one line per finding");
    }
    let jsonl = stdout(&trailhound(&["scan", "--format", "jsonl", "testdata/hostile"]));
    assert!(jsonl.contains("…[truncated"), "long user agent is truncated: {jsonl}");
}

/// Issue 16: an array among the `Records` used to quarantine the whole file and lose the valid
/// record after it; now it is one rejected record.
#[test]
fn an_array_among_the_records_is_rejected_alone() {
    let file = "testdata/hostile/records_item_is_an_array.json";
    let window = ["--since", "2000-01-01T00:00:00Z", "--until", "2100-01-01T00:00:00Z"];
    let output = trailhound(
        &[&["replay", "--format", "jsonl", "--events", "--state", "/nonexistent/none.db"][..], &window, &[file]]
            .concat(),
    );
    assert!(stdout(&output).contains("\"eventID\":\"hostile-array-after\""), "{}", stdout(&output));
    let err = stderr(&output);
    assert!(err.contains("rejected 1 records") && err.contains("not a JSON object"), "{err}");
    assert!(!err.contains("quarantined"), "{err}");
}

/// Issue 16: 6 KB of gzip holding `{},` two million times is quarantined at the bound on rejected
/// records (10,000 by default) instead of tying a worker up rejecting each one.
#[test]
fn a_flood_of_rejected_records_is_quarantined_at_the_bound() {
    let file = "testdata/hostile/records_of_empty_objects.json.gz";
    let output = trailhound(&["scan", "--format", "jsonl", file]);
    let text = stdout(&output);
    assert!(
        text.contains("\"rule\":\"trail.unreadable_log_file\"") && text.contains("more than 10000 records"),
        "{text}"
    );
    assert!(stderr(&output).contains("rejected 10001 records"), "{}", stderr(&output));
    let config = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(config.path(), "[limits]\nmax_rejected_records = 100\n").expect("write");
    let output = trailhound(&["scan", "--format", "jsonl", "--config", config.path().to_str().expect("utf-8"), file]);
    assert!(stderr(&output).contains("rejected 101 records"), "{}", stderr(&output));
}

/// Issue 16: invisible and line-breaking characters (C1 controls, DEL, RLO, ZWSP, U+2028/2029,
/// soft hyphen, U+180E, tag characters) are escaped in findings of every format and in the raw
/// events `replay --events` prints; the JSON stays the same value.
#[test]
fn invisible_characters_are_escaped_in_findings_and_printed_events() {
    let forbidden = [
        '\u{85}',
        '\u{9b}',
        '\u{7f}',
        '\u{202e}',
        '\u{200b}',
        '\u{2028}',
        '\u{2029}',
        '\u{ad}',
        '\u{180e}',
        '\u{e0041}',
    ];
    let file = "testdata/hostile/invisible_characters_in_attacker_strings.json";
    let window = ["--since", "2000-01-01T00:00:00Z", "--until", "2100-01-01T00:00:00Z"];
    let runs = [
        trailhound(&["scan", "--format", "jsonl", file]),
        trailhound(&["scan", "--format", "table", file]),
        trailhound(&["scan", "--format", "ocsf", file]),
        trailhound(
            &[&["replay", "--format", "jsonl", "--events", "--state", "/nonexistent/none.db"][..], &window, &[file]]
                .concat(),
        ),
        trailhound(
            &[&["replay", "--format", "table", "--events", "--state", "/nonexistent/none.db"][..], &window, &[file]]
                .concat(),
        ),
    ];
    for output in &runs {
        let text = format!("{}{}", stdout(output), stderr(output));
        assert!(text.contains("remote_admin_port_open"), "{text}");
        for c in forbidden {
            assert!(!text.contains(c), "raw {c:?} in {text}");
        }
    }
    let events = stdout(&runs[3]);
    let record = events.lines().find(|l| !l.contains("\"schema\"")).expect("the raw event");
    let value: serde_json::Value = serde_json::from_str(record).expect("still JSON");
    assert!(value["userAgent"].as_str().is_some_and(|ua| ua.contains('\u{202e}')), "the same value, escaped in JSON");
}

/// Issue 16: file names are escaped where the summary prints them (a shared folder's names are
/// anyone's).
#[cfg(unix)]
#[test]
fn file_names_are_escaped_in_the_summary() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("evil\u{1b}[31mred\u{202e}.json"), b"not json").expect("write");
    let output = trailhound(&["scan", "--format", "jsonl", dir.path().to_str().expect("utf-8")]);
    let err = stderr(&output);
    assert!(err.contains("quarantined 1 files"), "{err}");
    assert!(!err.contains('\u{1b}') && !err.contains('\u{202e}'), "{err}");
    assert!(err.contains("evil\\u{1b}[31mred"), "{err}");
}

/// Issue 16: a folder walk lists what it passed over (it said only "digest/Insight files", and
/// a name that is not UTF-8 was skipped without a word; it is read now, by its lossy name).
#[cfg(unix)]
#[test]
fn skipped_files_are_listed_and_non_utf8_names_are_read() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let log = std::fs::read(root().join("testdata/duplicates/delivered_once.json")).expect("fixture");
    std::fs::write(dir.path().join(std::ffi::OsStr::from_bytes(b"bad\xffname.json")), &log).expect("write");
    std::fs::write(dir.path().join("notes.txt"), b"hello").expect("write");
    std::fs::write(dir.path().join("upload.json.tmp"), b"{}").expect("write");
    let digest = dir.path().join("CloudTrail-Digest");
    std::fs::create_dir(&digest).expect("mkdir");
    std::fs::write(digest.join("d.json.gz"), b"x").expect("write");
    let output = trailhound(&["scan", "--format", "jsonl", dir.path().to_str().expect("utf-8")]);
    let err = stderr(&output);
    assert!(err.contains("scanned 1 files"), "the non-UTF-8 name is read: {err}");
    assert!(err.contains("skipped 3 files:"), "{err}");
    assert!(
        err.contains("notes.txt: not a log file name") && err.contains("upload.json.tmp: not a log file name"),
        "{err}"
    );
    assert!(err.contains("d.json.gz: digest or Insight file"), "{err}");
    assert_eq!(stdout(&output).lines().count(), 1, "{}", stdout(&output));
}

/// Issue 16: findings below `--min-severity` are counted in the summary as not printed.
#[test]
fn the_summary_says_how_many_findings_were_not_printed() {
    let all = trailhound(&["scan", "--format", "jsonl", "testdata/events"]);
    let high = trailhound(&["scan", "--format", "jsonl", "--min-severity", "high", "testdata/events"]);
    let (printed_all, printed_high) = (stdout(&all).lines().count(), stdout(&high).lines().count());
    assert!(printed_high < printed_all, "{printed_high} < {printed_all}");
    let err = stderr(&high);
    let expected = format!("  {} below --min-severity high not printed", printed_all - printed_high);
    assert!(err.contains(&expected), "{expected} in {err}");
    assert!(!stderr(&all).contains("not printed"), "{}", stderr(&all));
}

#[test]
fn secrets_never_reach_the_output() {
    let output = trailhound(&["scan", "--format", "jsonl", "testdata"]);
    let all = format!("{}{}", stdout(&output), stderr(&output));
    for secret in ["FIXTURESECRETMARKER", "AKIAFIXTURESECRETKEY1", "PUBLICKEYMARKER"] {
        assert!(!all.contains(secret), "{secret} leaked");
    }
    assert!(all.contains("ecs.task_secrets_in_env"));
}

#[test]
fn the_same_event_in_two_files_is_one_finding() {
    let output = trailhound(&["scan", "--format", "jsonl", "testdata/duplicates"]);
    assert_eq!(stdout(&output).lines().count(), 1, "{}", stdout(&output));
    assert!(stderr(&output).contains("scanned 2 files"), "{}", stderr(&output));
}

#[test]
fn time_window_filters_events() {
    // An unreadable object has no event time: it is reported whatever the window.
    let timed = |output: &Output| stdout(output).lines().filter(|l| !l.contains("unreadable_log_file")).count();
    let inside = trailhound(&["scan", "--format", "jsonl", "--since", "2026-11-03T00:00Z", "testdata"]);
    assert_eq!(timed(&inside), 1, "only the 2026-11-03 duplicate event");
    let outside = trailhound(&["scan", "--format", "jsonl", "--until", "2020-01-01", "testdata"]);
    assert_eq!(timed(&outside), 0);
}

#[test]
fn output_file_and_summary() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("findings.jsonl");
    let output = trailhound(&["scan", "--output", out.to_str().expect("utf-8"), "testdata/events"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty());
    let written = std::fs::read_to_string(&out).expect("output written");
    assert_golden("scan_events.jsonl", &written);
    let summary = stderr(&output);
    let files = format!("scanned {} files", count_files(&root().join("testdata/events")));
    for part in [files.as_str(), "MB/s", "events/s", "findings: ", "S3 data events: "] {
        assert!(summary.contains(part), "summary lacks {part:?}: {summary}");
    }
}

fn count_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .expect("fixture folder")
        .map(|entry| entry.expect("entry").path())
        .map(|path| if path.is_dir() { count_files(&path) } else { 1 })
        .sum()
}

#[test]
fn coverage_warning_without_s3_data_events() {
    let output = trailhound(&["scan", "--format", "jsonl", "testdata/duplicates"]);
    assert!(stderr(&output).contains("no S3 data events"), "{}", stderr(&output));
    let output = trailhound(&["scan", "--format", "jsonl", "testdata/events/s3.ssec_copy_overwrite"]);
    assert!(!stderr(&output).contains("no S3 data events"));
}

#[cfg(unix)]
#[test]
fn bad_local_inputs_are_reported_and_the_run_continues() {
    let outside = tempfile::tempdir().expect("temp dir");
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = outside.path().join("elsewhere.json");
    std::fs::copy(root().join("testdata/duplicates/delivered_once.json"), &secret).expect("copy");
    std::fs::copy(root().join("testdata/duplicates/delivered_once.json"), dir.path().join("good.json")).expect("copy");
    std::fs::write(dir.path().join("empty.json"), b"").expect("write");
    std::os::unix::fs::symlink(&secret, dir.path().join("escape.json")).expect("symlink");
    let fifo = dir.path().join("pipe.json");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());
    let missing = dir.path().join("missing.json");
    let output = trailhound(&[
        "scan",
        "--format",
        "jsonl",
        dir.path().to_str().expect("utf-8"),
        missing.to_str().expect("utf-8"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let summary = stderr(&output);
    assert!(summary.contains("escape.json: symlink points outside"), "{summary}");
    assert!(summary.contains("pipe.json: not a regular file"), "{summary}");
    assert!(summary.contains("empty.json: object is empty"), "{summary}");
    assert!(summary.contains("missing.json"), "{summary}");
    let findings = stdout(&output);
    assert!(findings.contains("ec2.serial_console_enabled"), "the good file is still scanned");
    assert!(findings.contains("trail.unreadable_log_file"), "the empty file is quarantined");
}

#[cfg(unix)]
#[test]
fn a_closed_pipe_is_not_an_error() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trailhound"))
        .args(["scan", "--format", "jsonl", "testdata/events"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn bad_s3_flags_are_refused_before_any_request() {
    // Each is refused by validation, with the flag or value named, before AWS is contacted
    // (the endpoint below does not exist: reaching it would be a different error).
    let cases: [(&[&str], &str); 8] = [
        (&["backfill", "trail-bucket/AWSLogs", "--since", "7d"], "s3://bucket"),
        (&["backfill", "s3://Bad_Bucket", "--since", "7d"], "not an S3 bucket name"),
        (&["backfill", "s3://trail-bucket", "--since", "7d", "--account", "1234"], "12-digit"),
        (&["backfill", "s3://trail-bucket", "--since", "1d", "--until", "2d"], "later than --since"),
        (&["backfill", "s3://trail-bucket", "--since", "7d", "--publish", "alerts"], "topic ARN"),
        (&["backfill", "s3://trail-bucket", "--since", "7d", "--concurrency", "0"], "between 1 and 1024"),
        (&["replay", "s3://trail-bucket", "testdata", "--since", "2d", "--until", "1d"], "cannot be mixed"),
        (&["replay", "testdata", "--since", "2d", "--until", "1d", "--region", "us-east-1"], "s3:// sources only"),
    ];
    for (args, expected) in cases {
        let mut args = args.to_vec();
        args.extend(["--endpoint-url", "http://127.0.0.1:9", "--state", "/nonexistent/state.db"]);
        let output = trailhound(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(stderr(&output).contains(expected), "{args:?}: {}", stderr(&output));
    }
    let both = trailhound(&["backfill", "s3://trail-bucket", "--since", "7d", "--enqueue", "q", "--publish", "arn:x"]);
    assert!(stderr(&both).contains("cannot be combined with --enqueue"), "{}", stderr(&both));
}

/// SPEC §2.1 and issue 14: the summary counts findings per severity and events delivered twice
/// (the same eventID in two files), and names the buckets configured in the input that no S3
/// data event covered.
#[test]
fn summary_counts_severities_duplicates_and_uncovered_buckets() {
    let output =
        trailhound(&["scan", "--format", "jsonl", "testdata/duplicates", "testdata/events/s3.versioning_suspended"]);
    let summary = stderr(&output);
    assert!(summary.contains("duplicate events: 1 "), "{summary}");
    let findings = summary.lines().find(|l| l.starts_with("findings: ")).expect("findings line");
    assert!(findings.contains(" medium") && findings.contains(" low"), "{findings}");
    let warning = summary.lines().find(|l| l.contains("bucket(s) configured")).expect("coverage line");
    assert!(warning.contains("victim-data"), "{warning}");
    let covered = trailhound(&["scan", "--format", "jsonl", "testdata/sequences/ransomware"]);
    assert!(!stderr(&covered).contains("bucket(s) configured"), "{}", stderr(&covered));
}

/// SPEC §8: `--group-by principal` folds the intrusion sequence (enumeration with a stolen key,
/// a self-granted admin policy, a new key, its use from elsewhere) into one incident of the user,
/// with both keys, both source IPs, the findings in the order they began and the user's raw
/// event count; `--group-by ip` splits it by address; OCSF has no incident form.
#[test]
fn group_by_principal_tells_the_intrusion_as_one_incident() {
    let output = trailhound(&["scan", "--group-by", "principal", "--format", "jsonl", "testdata/sequences/intrusion"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let incidents: Vec<serde_json::Value> =
        stdout(&output).lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(incidents.len(), 1);
    let incident = &incidents[0];
    assert_eq!(incident["schema"], "trailhound.incident/v1");
    assert_eq!(incident["actor"], "arn:aws:iam::111122223333:user/ci-legacy");
    assert_eq!(incident["severity"], "critical");
    assert_eq!(incident["access_key_ids"], serde_json::json!(["AKIAEXAMPLECILEGACY1", "AKIAEXAMPLENEWKEY001"]));
    assert_eq!(incident["source_ips"], serde_json::json!(["192.0.2.77", "203.0.113.50"]));
    let raw: usize = [
        "01_owner_uses_the_key_for_a_week.json",
        "02_stolen_key_enumerates_escalates_and_mints_a_key.json",
        "03_the_new_key_is_used_elsewhere.json",
    ]
    .iter()
    .map(|f| {
        let text = std::fs::read_to_string(root().join("testdata/sequences/intrusion").join(f)).expect("fixture");
        let records: serde_json::Value = serde_json::from_str(&text).expect("json");
        let records = records["Records"].as_array().expect("records").clone();
        records.iter().filter(|r| r["userIdentity"]["userName"] == "ci-legacy").count()
    })
    .sum();
    assert_eq!(incident["raw_events"], raw as u64);
    let findings = incident["findings"].as_array().expect("findings");
    let times: Vec<&str> = findings.iter().map(|f| f["first_seen"].as_str().unwrap_or_default()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order: {times:?}");
    let story: Vec<&str> = findings
        .iter()
        .map(|f| f["rule"].as_str().unwrap_or_default())
        .filter(|r| {
            ["iam.key_error_burst", "iam.admin_policy_attached", "iam.access_key_created", "iam.created_key_used"]
                .contains(r)
        })
        .collect();
    assert_eq!(
        story,
        ["iam.key_error_burst", "iam.admin_policy_attached", "iam.access_key_created", "iam.created_key_used"]
    );

    let table = trailhound(&[
        "scan",
        "--group-by",
        "principal",
        "--format",
        "table",
        "--min-severity",
        "medium",
        "testdata/sequences/intrusion",
    ]);
    assert_golden("incidents_intrusion.table.txt", &stdout(&table));

    let by_ip = trailhound(&["scan", "--group-by", "ip", "--format", "jsonl", "testdata/sequences/intrusion"]);
    let actors: Vec<String> = stdout(&by_ip)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["actor"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert!(actors.contains(&"203.0.113.50".to_owned()) && actors.contains(&"192.0.2.77".to_owned()), "{actors:?}");

    let ocsf = trailhound(&["scan", "--group-by", "principal", "--format", "ocsf", "testdata/sequences/intrusion"]);
    assert_eq!(ocsf.status.code(), Some(2));
    assert!(stderr(&ocsf).contains("--group-by"), "{}", stderr(&ocsf));
}

/// Issue 16: a CI gate with a typo must not pass. Nothing readable given on the command line is
/// an error (exit 2), whatever `--fail-on` says; one readable path among unreadable ones is a run
/// (the unreadable ones are reported).
#[test]
fn nothing_readable_exits_2() {
    let output = trailhound(&["scan", "--fail-on", "info", "/nonexistent/path"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("nothing given on the command line could be read"), "{}", stderr(&output));
    let partly = trailhound(&["scan", "--format", "jsonl", "testdata/duplicates", "/nonexistent/path"]);
    assert_eq!(partly.status.code(), Some(0), "{}", stderr(&partly));
    assert!(stderr(&partly).contains("error: /nonexistent/path"), "{}", stderr(&partly));
}

/// Issue 16: `-o` is created before any work, so an unwritable path fails at once and loses
/// nothing (the run never started).
#[test]
fn an_unwritable_output_fails_before_the_run() {
    let output = trailhound(&["scan", "-o", "/nonexistent-dir/findings.jsonl", "testdata/events"]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("cannot create output file"), "{err}");
    assert!(!err.contains("scanned "), "no work was done: {err}");
}

/// Issue 16: every number has a documented range, enforced with an error naming the key and its
/// line; a TOML syntax error names its line and column.
#[test]
fn config_numbers_out_of_range_are_refused_by_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: &[(&str, &str)] = &[
        ("[baseline]\ndormant_days = 9223372036854775807\n", "`baseline.dormant_days` at line 2"),
        ("[baseline]\nlearning_days = 0\n", "`baseline.learning_days` at line 2"),
        ("[limits]\nmax_object_bytes = 9223372036854775807\n", "`limits.max_object_bytes` at line 2"),
        ("[limits]\nmax_record_bytes = 0\n", "`limits.max_record_bytes` at line 2"),
        ("# limits\n\n[limits]\nmax_depth = 64\n\nmax_depth_x = 1\n", "unknown field `max_depth_x`"),
        ("[limits]\nmax_depth = 64\n\n\nmax_rejected_records = 100000001\n", "`limits.max_rejected_records` at line 5"),
        ("lifecycle_max_days = -1\n", "`lifecycle_max_days` at line 1"),
        ("trusted_cidrs = [\n  \"10.0.0.0/8\",\n  \"10.0.0.1/8\",\n]\n", "`trusted_cidrs` at line 3"),
        ("[rules.\"ec2.serial_console_enabled\"]\n\nseverity = \"loud\"\n", "severity` at line 3"),
        ("[rules.\"no.such_rule\"]\nenabled = false\n", "at line 1"),
        ("# a comment\n[baseline\nlearning_days = 3\n", "line 2, column"),
    ];
    for (n, (text, expected)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("{n}.toml"));
        std::fs::write(&path, text).expect("write");
        let output = trailhound(&["scan", "--config", path.to_str().expect("utf-8"), "testdata/duplicates"]);
        assert_eq!(output.status.code(), Some(2), "{text}");
        let err = stderr(&output);
        assert!(err.contains(expected), "{text}: {err}");
        assert!(!err.contains("Limits {"), "no debug structs: {err}");
    }
    let run_section = dir.path().join("run.toml");
    std::fs::write(&run_section, "[run]\ntopic_arn = \"arn:aws:sns:us-east-1:111122223333:t\"\nconcurrency = 0\n")
        .expect("write");
    let run = trailhound(&[
        "run",
        "--queue-url",
        "http://127.0.0.1:9/111122223333/q",
        "--config",
        run_section.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.status.code(), Some(2));
    assert!(stderr(&run).contains("`run.concurrency` at line 3"), "{}", stderr(&run));
    let threads = trailhound(&["scan", "--threads", "100000", "testdata/duplicates"]);
    assert_eq!(threads.status.code(), Some(2));
    assert!(stderr(&threads).contains("--threads") && stderr(&threads).contains("between 1 and 512"));
}

/// Issue 16: `replay` says which state it reads: an explicit `--state` that does not exist is a
/// warning (the replay starts from nothing), the default file is named when it is used.
#[test]
fn replay_says_which_state_it_reads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.db");
    let window = ["--since", "2026-09-01T00:00:00Z", "--until", "2026-10-01T00:00:00Z"];
    let mut args = vec!["replay", "--format", "jsonl", "--state", missing.to_str().expect("utf-8")];
    args.extend(window);
    args.push("testdata/duplicates");
    let output = trailhound(&args);
    assert_eq!(output.status.code(), Some(0));
    assert!(stderr(&output).contains("does not exist"), "{}", stderr(&output));
    assert!(!missing.exists());

    let home = tempfile::tempdir().expect("home");
    let state_dir = home.path().join(".local/share/trailhound");
    std::fs::create_dir_all(&state_dir).expect("mkdir");
    let default = state_dir.join("state.db");
    let mut scan = Command::new(env!("CARGO_BIN_EXE_trailhound"));
    scan.args(["scan", "--format", "jsonl", "--state", default.to_str().expect("utf-8"), "testdata/duplicates"]);
    assert!(scan.current_dir(root()).output().expect("scan").status.success());
    let mut replay = Command::new(env!("CARGO_BIN_EXE_trailhound"));
    replay.args(["replay", "--format", "jsonl"]).args(window).arg("testdata/duplicates");
    let replay = replay
        .current_dir(root())
        .env("HOME", home.path())
        .env_remove("XDG_DATA_HOME")
        .env_remove("TRAILHOUND_STATE")
        .output()
        .expect("replay");
    assert!(stderr(&replay).contains("note: reading the state in"), "{}", stderr(&replay));
}

/// Issue 16: `--quiet` leaves stderr to errors.
#[test]
fn quiet_prints_only_errors() {
    let quiet = trailhound(&["scan", "--quiet", "--format", "jsonl", "testdata/duplicates"]);
    assert_eq!(quiet.status.code(), Some(0));
    assert!(stderr(&quiet).is_empty(), "{}", stderr(&quiet));
    assert_eq!(stdout(&quiet).lines().count(), 1, "findings still printed");
    let missing = trailhound(&["scan", "-q", "--format", "jsonl", "testdata/duplicates", "/nonexistent/path"]);
    assert_eq!(stderr(&missing).trim(), "error: /nonexistent/path: No such file or directory (os error 2)");
}

/// Issue 16: `-` reads standard input, gzip or JSON (sniffed by content).
#[test]
fn dash_reads_standard_input_gzip_or_json() {
    use std::io::Write as _;
    let json = std::fs::read(root().join("testdata/duplicates/delivered_once.json")).expect("fixture");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&json).expect("gzip");
    let gzip = encoder.finish().expect("gzip");
    for input in [json, gzip] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trailhound"))
            .args(["scan", "--format", "jsonl", "-"])
            .current_dir(root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child.stdin.take().expect("stdin").write_all(&input).expect("write");
        let output = child.wait_with_output().expect("wait");
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let findings: Vec<serde_json::Value> =
            stdout(&output).lines().map(|l| serde_json::from_str(l).expect("json")).collect();
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0]["origin"], "(stdin)");
    }
}

/// Issue 16: severities are case-insensitive on the command line as in the configuration; a
/// trusted range with host bits set is refused; a plain JSON file over the size cap is
/// quarantined with a `trail.unreadable_log_file` finding, as the same bytes gzipped are.
#[test]
fn severities_cidrs_and_oversized_plain_json() {
    let upper = trailhound(&["scan", "--format", "jsonl", "--min-severity", "HIGH", "testdata/events/trail.tampering"]);
    assert_eq!(upper.status.code(), Some(0), "{}", stderr(&upper));
    assert!(stdout(&upper)
        .lines()
        .all(|l| l.contains("\"severity\":\"high\"") || l.contains("\"severity\":\"critical\"")));

    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "trusted_cidrs = [\"10.0.0.1/8\"]\n").expect("write");
    let cidr = trailhound(&["scan", "--config", config.to_str().expect("utf-8"), "testdata/duplicates"]);
    assert_eq!(cidr.status.code(), Some(2));
    assert!(stderr(&cidr).contains("host bits"), "{}", stderr(&cidr));

    std::fs::write(&config, "[limits]\nmax_object_bytes = 2048\n").expect("write");
    let big = dir.path().join("big.json");
    let record = std::fs::read_to_string(root().join("testdata/duplicates/delivered_once.json")).expect("fixture");
    std::fs::write(&big, format!("{record}{}", " ".repeat(4096))).expect("write");
    let output = trailhound(&[
        "scan",
        "--format",
        "jsonl",
        "--config",
        config.to_str().expect("utf-8"),
        big.to_str().expect("utf-8"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("trail.unreadable_log_file"), "{}", stdout(&output));
    assert!(stderr(&output).contains("quarantined 1 files"), "{}", stderr(&output));
}

/// Issue 16: shell completions and manual pages come from the clap definitions, so every
/// subcommand and flag is in them; the bash script parses.
#[test]
fn completions_and_man_pages_come_from_the_definitions() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let output = trailhound(&["completions", shell]);
        assert_eq!(output.status.code(), Some(0), "{shell}");
        let script = stdout(&output);
        for word in ["replay", "backfill", "min-severity", "group-by"] {
            assert!(script.contains(word), "{shell}: {word} missing");
        }
    }
    let bash = stdout(&trailhound(&["completions", "bash"]));
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("trailhound.bash");
    std::fs::write(&script, &bash).expect("write");
    let check = Command::new("bash").arg("-n").arg(&script).status().expect("bash runs");
    assert!(check.success(), "bash -n rejects the completion script");
    let unknown = trailhound(&["completions", "tcsh"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("possible values"), "{}", stderr(&unknown));

    let page = stdout(&trailhound(&["man"]));
    assert!(page.starts_with(".ie") && page.contains(".TH trailhound 1"), "{page}");
    assert!(page.contains("trailhound\\-scan(1)") && page.contains("trailhound\\-completions(1)"), "{page}");
    let pages = dir.path().join("man1");
    std::fs::create_dir(&pages).expect("mkdir");
    let output = trailhound(&["man", "--dir", pages.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let scan = std::fs::read_to_string(pages.join("trailhound-scan.1")).expect("a page per subcommand");
    assert!(scan.contains("min\\-severity") && scan.contains("fail\\-on"), "{scan}");
    let missing = trailhound(&["man", "--dir", "/nonexistent/man1"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("cannot write manual pages"), "{}", stderr(&missing));
}
