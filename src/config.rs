//! Configuration: command-line flags and the optional TOML file, validated into one [`ScanConfig`]
//! before any work starts. Errors name the flag or key and the bad value.
//!
//! The file (every key optional, unknown keys rejected):
//! ```toml
//! trusted_cidrs = ["10.20.0.0/16"]      # ingress from here is not reported (default: none)
//! remote_admin_ports = [22, 3389, 5985, 5986]
//! public_ports = [80, 443]
//! lifecycle_max_days = 7
//!
//! [ssec]
//! allowlist = ["arn:aws:iam::123456789012:role/backup", "sse-c-bucket"]
//!
//! [baseline]                          # per-key baselines of long-term access keys
//! learning_days = 7
//! dormant_days = 30
//! max_keys = 1000000
//! max_values = 256                    # per feature per key (APIs need the most)
//!
//! [run]                               # trailhound run (flags and environment win)
//! queue_url = "https://sqs.us-east-1.amazonaws.com/111122223333/trail-notifications"
//! topic_arn = "arn:aws:sns:us-east-1:111122223333:trailhound-alerts"
//! publish_severity = "medium"
//! concurrency = 16
//! grace_seconds = 30
//! metrics_addr = "127.0.0.1:9898"
//!
//! [limits]
//! max_object_bytes = 1073741824
//! max_record_bytes = 8388608
//! max_depth = 64
//! max_rejected_records = 10000         # then the object is quarantined
//!
//! [rules."ecs.task_writable_root"]
//! enabled = false
//! [rules."ec2.remote_admin_port_open"]
//! severity = "critical"
//! allow_principals = ["arn:aws:iam::123456789012:role/bastion-admin"]
//! ```

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use std::time::Duration;

use crate::analyze::incidents::GroupBy;
use crate::aws::AwsOptions;
use crate::cli::{
    AwsArgs, BackfillArgs, ColorArg, CommonArgs, FormatArg, GroupByArg, IncidentArgs, LambdaArgs, MessageArgs,
    OutputArgs, ProgressArg, RemoteArgs, ReplayArgs, RunArgs, ScanArgs, SeverityArg,
};
use crate::decode::Limits;
use crate::detect::rules;
use crate::event::filter::EventFilter;
use crate::event::time::{parse_rfc3339, Millis};
use crate::finding::{clean, Severity};
use crate::net::Cidr;
use crate::settings::{RuleSettings, Settings};
use crate::sink::terminal::{Format, TableStyle};
use crate::sink::SinkSpec;

/// Objects fetched or downloaded at once (`run`, `backfill`, `replay s3://…`).
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Findings published at or above this severity.
pub const DEFAULT_PUBLISH_SEVERITY: Severity = Severity::Medium;
/// Time to finish work in progress after SIGTERM/SIGINT.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// How long the dedup record remembers a published finding (SPEC §4: at least 24 h).
pub const DEFAULT_DEDUP_TTL: Duration = Duration::from_secs(24 * 3600);
/// The SQS long-poll wait.
pub const DEFAULT_WAIT_SECONDS: i32 = 20;
/// Objects named up to this long outside the window are read, because CloudTrail delivers an
/// event's file minutes after the event.
pub const DEFAULT_SLACK: Millis = 60 * 60_000;

/// Where the state lives: a file (SQLite), or a DynamoDB table shared by a fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// `--state PATH`.
    File(PathBuf),
    /// `--state dynamodb://TABLE`.
    DynamoDb(String),
}

impl StateLocation {
    /// Reads `--state` (or `TRAILHOUND_STATE`): `dynamodb://TABLE` or a file path.
    pub fn parse(path: &Path) -> Result<StateLocation, ConfigError> {
        let text = path.to_string_lossy();
        let Some(table) = text.strip_prefix("dynamodb://") else { return Ok(StateLocation::File(path.to_owned())) };
        let valid = (3..=255).contains(&table.len())
            && table.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid {
            return Err(bad("--state", &text, "a DynamoDB table name is 3–255 letters, digits, `_`, `-` or `.`"));
        }
        Ok(StateLocation::DynamoDb(table.to_owned()))
    }

    /// How it is named in messages.
    pub fn describe(&self) -> String {
        match self {
            StateLocation::File(path) => format!("state file `{}`", path.display()),
            StateLocation::DynamoDb(table) => format!("DynamoDB table `{table}`"),
        }
    }
}

/// What `trailhound state` does.
#[derive(Debug, Clone)]
pub struct StateCommand {
    /// Create the state (`init`) rather than report on it.
    pub init: bool,
    /// Which state.
    pub location: StateLocation,
    /// Where AWS is.
    pub aws: AwsOptions,
}

/// Validates `trailhound state [init] [LOCATION]`.
pub fn state_command(args: &crate::cli::StateArgs) -> Result<StateCommand, ConfigError> {
    let (init, location) = match args.words.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => (false, None),
        ["init"] => (true, None),
        ["init", location] => (true, Some(PathBuf::from(location))),
        [location] => (false, Some(PathBuf::from(location))),
        [first, ..] => return Err(bad("state", first, "expected `state [init] [LOCATION]`")),
    };
    let location = match location.or_else(|| args.state.clone()) {
        Some(path) => StateLocation::parse(&path)?,
        None => state_or_default(&None)?,
    };
    Ok(StateCommand { init, location, aws: aws_options(&args.aws, None, None) })
}

/// `--state` or the default file.
fn state_or_default(state: &Option<PathBuf>) -> Result<StateLocation, ConfigError> {
    let path = state
        .clone()
        .or_else(default_state_path)
        .ok_or_else(|| bad("--state", "", "no home folder to keep the state in; pass --state FILE"))?;
    StateLocation::parse(&path)
}

/// How one notification is handled, wherever it came from (`run` receives it from SQS, `lambda`
/// is handed it by the event source mapping).
#[derive(Debug, Clone)]
pub struct MessageConfig {
    /// Where findings are published (at least one sink).
    pub sinks: Vec<SinkSpec>,
    /// Publish findings at or above this severity.
    pub publish_at: Severity,
    /// Objects fetched at once.
    pub fetch_concurrency: usize,
    /// How long a published finding is remembered.
    pub dedup_ttl: Duration,
    /// Decode limits.
    pub limits: Limits,
}

impl MessageConfig {
    /// The defaults for these sinks.
    pub fn new(sinks: Vec<SinkSpec>) -> MessageConfig {
        MessageConfig {
            sinks,
            publish_at: DEFAULT_PUBLISH_SEVERITY,
            fetch_concurrency: DEFAULT_CONCURRENCY,
            dedup_ttl: DEFAULT_DEDUP_TTL,
            limits: Limits::default(),
        }
    }
}

/// The worker's settings (`trailhound run`).
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The queue of notifications.
    pub queue_url: String,
    /// How each message is handled.
    pub message: MessageConfig,
    /// Long-poll wait (s), at most 20.
    pub wait_seconds: i32,
    /// Extend visibility while a message is in progress (off only to prove tests can see a
    /// redelivery).
    pub heartbeat: bool,
    /// Time to finish work in progress after a shutdown signal.
    pub grace: Duration,
}

impl WorkerConfig {
    /// The defaults for a queue and an SNS topic.
    pub fn new(queue_url: impl Into<String>, topic_arn: impl Into<String>) -> WorkerConfig {
        WorkerConfig::with_sinks(queue_url, vec![SinkSpec::Sns { topic_arn: topic_arn.into() }])
    }

    /// The defaults for a queue and any sinks.
    pub fn with_sinks(queue_url: impl Into<String>, sinks: Vec<SinkSpec>) -> WorkerConfig {
        WorkerConfig {
            queue_url: queue_url.into(),
            message: MessageConfig::new(sinks),
            wait_seconds: DEFAULT_WAIT_SECONDS,
            heartbeat: true,
            grace: DEFAULT_GRACE,
        }
    }
}

/// A configuration problem, naming the flag or key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file `{path}`")]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("invalid configuration file `{path}`: {message}")]
    Parse {
        /// The path.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is invalid.
    #[error("invalid value `{value}` for `{key}`{}: {reason}", .line.map_or(String::new(), |n| format!(" at line {n}")))]
    Value {
        /// Flag or key.
        key: String,
        /// The value.
        value: String,
        /// Why.
        reason: String,
        /// The line of the configuration file that holds it, when it came from the file.
        line: Option<usize>,
    },
}

/// A refused value. Key and value may come from the file or the command line, so both are
/// escaped ([`clean`]): an error message must not carry terminal control sequences either.
fn bad(key: &str, value: impl ToString, reason: &str) -> ConfigError {
    ConfigError::Value { key: clean(key), value: clean(&value.to_string()), reason: reason.to_owned(), line: None }
}

/// The 1-based line of the byte at `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The segments of a dotted key as the errors spell it: `rules."ec2.x".severity`.
fn key_segments(key: &str) -> Vec<&str> {
    let mut segments = Vec::new();
    let mut rest = key;
    while !rest.is_empty() {
        let (segment, tail) = match rest.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
            None => rest.split_once('.').map_or((rest, ""), |(head, tail)| (head, tail)),
        };
        segments.push(segment);
        rest = tail.strip_prefix('.').unwrap_or(tail);
    }
    segments
}

/// Where `key` (and, in an array, the element equal to `value`) is written in the TOML `text`.
fn key_line(text: &str, key: &str, value: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let document = DeTable::parse(text).ok()?;
    let mut table = document.get_ref();
    let mut found = None;
    for segment in key_segments(key) {
        let (name, item) = table.get_key_value(segment)?;
        found = Some((name.span().start, item));
        if let DeValue::Table(inner) = item.get_ref() {
            table = inner;
        }
    }
    let (key_start, item) = found?;
    let element = match item.get_ref() {
        DeValue::Array(items) => items.iter().find(|i| matches!(i.get_ref(), DeValue::String(s) if s == value)),
        _ => None,
    };
    Some(line_of(text, element.map_or(key_start, |e| e.span().start)))
}

/// The configuration file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    trusted_cidrs: Option<Vec<String>>,
    remote_admin_ports: Option<Vec<u16>>,
    public_ports: Option<Vec<u16>>,
    lifecycle_max_days: Option<i64>,
    #[serde(default)]
    ssec: SsecSection,
    #[serde(default)]
    limits: LimitsSection,
    #[serde(default)]
    baseline: BaselineSection,
    #[serde(default)]
    rules: HashMap<String, RuleSection>,
    #[serde(default)]
    run: RunSection,
    /// The file's text, to say on which line a refused value is.
    #[serde(skip)]
    text: Option<String>,
}

impl FileConfig {
    /// The error with the line of its key added, when the key is one of this file's.
    fn locate(&self, error: ConfigError) -> ConfigError {
        match (error, &self.text) {
            (ConfigError::Value { key, value, reason, line: None }, Some(text)) if !key.starts_with('-') => {
                let line = key_line(text, &key, &value);
                ConfigError::Value { key, value, reason, line }
            }
            (error, _) => error,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunSection {
    queue_url: Option<String>,
    topic_arn: Option<String>,
    #[serde(default)]
    publish: Vec<String>,
    endpoint_url: Option<String>,
    s3_endpoint_url: Option<String>,
    region: Option<String>,
    path_style: Option<bool>,
    publish_severity: Option<String>,
    concurrency: Option<usize>,
    grace_seconds: Option<u64>,
    metrics_addr: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SsecSection {
    #[serde(default)]
    allowlist: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    max_object_bytes: Option<u64>,
    max_record_bytes: Option<usize>,
    max_depth: Option<usize>,
    max_rejected_records: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineSection {
    learning_days: Option<i64>,
    dormant_days: Option<i64>,
    max_keys: Option<usize>,
    max_values: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSection {
    enabled: Option<bool>,
    severity: Option<String>,
    #[serde(default)]
    allow_principals: Vec<String>,
}

/// Output choices, validated.
#[derive(Debug, Clone)]
pub struct OutputConfig {
    /// Format.
    pub format: Format,
    /// File to write, or standard output.
    pub path: Option<PathBuf>,
    /// Print findings at or above this.
    pub min_severity: Severity,
    /// Exit 1 when a finding at or above this exists.
    pub fail_on: Option<Severity>,
    /// Print incidents grouped this way instead of findings.
    pub group_by: Option<GroupBy>,
    /// No summary on stderr, only errors.
    pub quiet: bool,
    /// The table's width and colours.
    pub table: TableStyle,
}

/// Everything `scan` needs.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    /// Inputs.
    pub paths: Vec<PathBuf>,
    /// Output.
    pub output: OutputConfig,
    /// Window start.
    pub since: Option<Millis>,
    /// Window end.
    pub until: Option<Millis>,
    /// Threads (None: every core).
    pub threads: Option<usize>,
    /// Detection settings.
    pub settings: Settings,
    /// Decode limits.
    pub limits: Limits,
    /// The state (None: in memory).
    pub state: Option<StateLocation>,
}

/// Everything `replay` needs.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// Inputs, output and settings; `since` already includes the warm-up.
    pub scan: ScanConfig,
    /// The window start: findings before it are warm-up.
    pub report_since: Millis,
    /// Raw events to print.
    pub events: Option<EventFilter>,
    /// Write the learned state back.
    pub update_state: bool,
    /// The S3 side, when the sources are s3:// locations.
    pub remote: Option<RemoteConfig>,
    /// Whether the state location was given (`--state` or `TRAILHOUND_STATE`) rather than the
    /// default file.
    pub state_given: bool,
}

/// Reading a trail bucket (`backfill`, `replay s3://…`).
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// Locations.
    pub locations: Vec<crate::source::layout::S3Location>,
    /// Account and region filters.
    pub filters: crate::source::layout::Filters,
    /// Delivery slack (ms).
    pub slack: Millis,
    /// Objects downloaded at once.
    pub concurrency: usize,
    /// Where to publish (none: nowhere).
    pub publish: Vec<SinkSpec>,
    /// Publish at or above this severity.
    pub publish_at: Severity,
    /// Progress display.
    pub progress: crate::progress::Style,
    /// AWS wiring.
    pub aws: AwsOptions,
    /// Deprecated spellings used, to warn about.
    pub warnings: Vec<String>,
}

/// Everything `backfill` needs.
#[derive(Debug, Clone)]
pub struct BackfillConfig {
    /// Output, window, settings, limits, threads and the state file (always set).
    pub scan: ScanConfig,
    /// The bucket side.
    pub remote: RemoteConfig,
    /// Queue to hand the objects to instead.
    pub enqueue: Option<String>,
    /// Ignore an earlier checkpoint.
    pub restart: bool,
    /// The command's own words, naming its checkpoint.
    pub arguments: Vec<String>,
}

/// Validates the options for reading S3 `sources`.
pub fn remote_config(args: &RemoteArgs, sources: &[&str]) -> Result<RemoteConfig, ConfigError> {
    let locations = sources
        .iter()
        .map(|source| {
            crate::source::layout::S3Location::parse(source).map_err(|e| bad("SOURCE", source, &e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for account in &args.accounts {
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("--account", account, "expected a 12-digit account id"));
        }
    }
    let slack = match &args.slack {
        Some(text) => parse_duration("--slack", text)?,
        None => DEFAULT_SLACK,
    };
    let concurrency = concurrency(args.concurrency)?.unwrap_or(DEFAULT_CONCURRENCY);
    let publish = sinks("--publish", &args.publish)?;
    let publish_at = args.publish_severity.map(severity).unwrap_or(DEFAULT_PUBLISH_SEVERITY);
    let mut warnings = Vec::new();
    let mut regions = args.trail_regions.clone();
    if !args.regions_deprecated.is_empty() {
        warnings.push(deprecated("--region", "--trail-region"));
        regions.extend(args.regions_deprecated.iter().cloned());
    }
    let progress = match args.progress {
        ProgressArg::Auto if std::io::stderr().is_terminal() => crate::progress::Style::Bar,
        ProgressArg::Auto => crate::progress::Style::Final,
        ProgressArg::Off => crate::progress::Style::Off,
        ProgressArg::Bar => crate::progress::Style::Bar,
        ProgressArg::Jsonl => crate::progress::Style::Jsonl,
    };
    Ok(RemoteConfig {
        locations,
        filters: crate::source::layout::Filters { accounts: args.accounts.clone(), regions },
        slack,
        concurrency,
        publish,
        publish_at,
        progress,
        aws: aws_options(&args.aws, None, None),
        warnings,
    })
}

/// Parses sinks as written (`key` names the flag or file key in errors).
fn sinks(key: &str, texts: &[String]) -> Result<Vec<SinkSpec>, ConfigError> {
    texts.iter().map(|text| SinkSpec::parse(text).map_err(|e| bad(key, text, &e.to_string()))).collect()
}

/// The note printed when a deprecated flag spelling is used.
fn deprecated(old: &str, new: &str) -> String {
    format!("`{old}` is deprecated here and will be removed; use `{new}`")
}

/// The AWS wiring from the flags, over the `[run]` section's values when given.
fn aws_options(args: &AwsArgs, region: Option<String>, section: Option<&RunSection>) -> AwsOptions {
    AwsOptions {
        endpoint_url: args.endpoint_url.clone().or_else(|| section.and_then(|s| s.endpoint_url.clone())),
        s3_endpoint_url: args.s3_endpoint_url.clone().or_else(|| section.and_then(|s| s.s3_endpoint_url.clone())),
        region: args.aws_region.clone().or(region).or_else(|| section.and_then(|s| s.region.clone())),
        path_style: args.path_style || section.and_then(|s| s.path_style).unwrap_or(false),
        static_credentials: None,
    }
}

/// The documented ranges of every number trailhound takes (README "Configuration").
pub mod ranges {
    use std::ops::RangeInclusive;

    /// `--threads`: beyond a few hundred threads a run only thrashes (100,000 used to hang).
    pub const THREADS: RangeInclusive<u64> = 1..=512;
    /// `[baseline] learning_days`.
    pub const LEARNING_DAYS: RangeInclusive<u64> = 1..=365;
    /// `[baseline] dormant_days` (ten years; larger values overflowed into wrong findings).
    pub const DORMANT_DAYS: RangeInclusive<u64> = 1..=3_650;
    /// `[baseline] max_keys`.
    pub const MAX_KEYS: RangeInclusive<u64> = 1..=10_000_000;
    /// `[baseline] max_values`.
    pub const MAX_VALUES: RangeInclusive<u64> = 1..=65_536;
    /// `lifecycle_max_days`.
    pub const LIFECYCLE_MAX_DAYS: RangeInclusive<u64> = 0..=3_650;
    /// `[limits] max_object_bytes`: 1 KiB to 4 GiB (the decompression-bomb cap cannot be
    /// switched off by a huge value).
    pub const MAX_OBJECT_BYTES: RangeInclusive<u64> = 1 << 10..=4 << 30;
    /// `[limits] max_record_bytes`: 1 KiB to 256 MiB.
    pub const MAX_RECORD_BYTES: RangeInclusive<u64> = 1 << 10..=256 << 20;
    /// `[limits] max_depth`.
    pub const MAX_DEPTH: RangeInclusive<u64> = 2..=512;
    /// `[limits] max_rejected_records`: bad records one object may have before quarantine.
    pub const MAX_REJECTED_RECORDS: RangeInclusive<u64> = 0..=100_000_000;
    /// `--concurrency` / `[run] concurrency`: objects fetched at once.
    pub const CONCURRENCY: RangeInclusive<u64> = 1..=1_024;
}

/// A number checked against its documented range.
fn within<T>(key: &str, value: T, range: &std::ops::RangeInclusive<u64>) -> Result<T, ConfigError>
where
    T: Copy + std::fmt::Display + TryInto<u64>,
{
    match value.try_into() {
        Ok(n) if range.contains(&n) => Ok(value),
        _ => Err(bad(key, value, &format!("must be between {} and {}", range.start(), range.end()))),
    }
}

/// `--concurrency`, within its range when given.
fn concurrency(value: Option<usize>) -> Result<Option<usize>, ConfigError> {
    value.map(|n| within("--concurrency", n, &ranges::CONCURRENCY)).transpose()
}

/// `--threads`, within its range when given.
fn threads(value: Option<usize>) -> Result<Option<usize>, ConfigError> {
    value.map(|n| within("--threads", n, &ranges::THREADS)).transpose()
}

/// The configuration file (when given) and the validated thread count.
fn common(args: &CommonArgs) -> Result<(FileConfig, Option<usize>), ConfigError> {
    let file = match &args.config {
        Some(path) => load_file(path)?,
        None => FileConfig::default(),
    };
    Ok((file, threads(args.threads)?))
}

/// Splits replay sources into local paths and s3:// locations; mixing them is refused.
fn s3_sources(paths: &[PathBuf]) -> Result<Option<Vec<&str>>, ConfigError> {
    let remote: Vec<&str> = paths.iter().filter_map(|p| p.to_str()).filter(|p| p.starts_with("s3://")).collect();
    match remote.len() {
        0 => Ok(None),
        n if n == paths.len() => Ok(Some(remote)),
        _ => Err(bad("SOURCE", remote[0], "s3:// locations and local paths cannot be mixed in one replay")),
    }
}

/// Validates `backfill` flags and the configuration file.
pub fn backfill_config(args: &BackfillArgs, now: Millis) -> Result<BackfillConfig, ConfigError> {
    let (file, threads) = common(&args.common)?;
    // Conflicting flags first: what they say does not matter when they cannot go together.
    if args.enqueue.is_some() && !args.remote.publish.is_empty() {
        return Err(bad("--publish", "", "cannot be combined with --enqueue: the workers publish"));
    }
    let sources: Vec<&str> = args.sources.iter().map(String::as_str).collect();
    let remote = remote_config(&args.remote, &sources)?;
    let since = parse_time("--since", &args.since, now)?;
    let until = match &args.until {
        Some(text) => parse_time("--until", text, now)?,
        None => now,
    };
    if since >= until {
        return Err(bad("--until", args.until.as_deref().unwrap_or("now"), "must be later than --since"));
    }
    let state = state_or_default(&args.state)?;
    let output_is_terminal = args.output.output.is_none() && std::io::stdout().is_terminal();
    let scan = ScanConfig {
        paths: Vec::new(),
        output: output_config(&args.output, output_is_terminal, now),
        since: Some(since),
        until: Some(until),
        threads,
        settings: settings(&file)?,
        limits: limits(&file)?,
        state: Some(state),
    };
    let mut arguments: Vec<String> = args.sources.clone();
    arguments.extend(["--since".into(), args.since.clone(), "--until".into(), args.until.clone().unwrap_or_default()]);
    arguments.extend(args.remote.accounts.iter().map(|a| format!("--account={a}")));
    // The checkpoint key keeps the old spelling, so a resumed command finds its checkpoint.
    arguments.extend(remote.filters.regions.iter().map(|r| format!("--region={r}")));
    if let Some(queue) = &args.enqueue {
        arguments.push(format!("--enqueue={queue}"));
    }
    Ok(BackfillConfig { scan, remote, enqueue: args.enqueue.clone(), restart: args.restart, arguments })
}

/// Everything `run` needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Worker settings.
    pub worker: WorkerConfig,
    /// AWS wiring.
    pub aws: AwsOptions,
    /// Detection settings.
    pub settings: Settings,
    /// The state.
    pub state: StateLocation,
    /// Metrics address.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Decode threads.
    pub threads: Option<usize>,
    /// Deprecated spellings used, to warn about.
    pub warnings: Vec<String>,
}

/// Validates `run` flags, environment and the `[run]` section of the configuration file.
pub fn run_config(args: &RunArgs) -> Result<RunConfig, ConfigError> {
    let (file, threads) = common(&args.common)?;
    let section = &file.run;
    let queue_url = args.queue_url.clone().or_else(|| section.queue_url.clone()).filter(|v| !v.is_empty());
    let queue_url =
        queue_url.ok_or_else(|| bad("--queue-url", "", "required (flag, TRAILHOUND_QUEUE_URL or [run] queue_url)"))?;
    let mut worker = WorkerConfig::with_sinks(queue_url, Vec::new());
    worker.message = message_config(&args.message, &file)?;
    if let Some(seconds) = args.grace.or(section.grace_seconds) {
        worker.grace = std::time::Duration::from_secs(seconds);
    }
    let metrics_addr = match args.metrics_addr.clone().or_else(|| section.metrics_addr.clone()) {
        Some(text) => {
            Some(text.parse().map_err(|_| bad("--metrics-addr", &text, "expected HOST:PORT, e.g. 127.0.0.1:9898"))?)
        }
        None => None,
    };
    let state = state_or_default(&args.state)?;
    let mut warnings = Vec::new();
    if args.region_deprecated.is_some() {
        warnings.push(deprecated("--region", "--aws-region"));
    }
    let aws = aws_options(&args.aws, args.region_deprecated.clone(), Some(section));
    Ok(RunConfig { worker, aws, settings: settings(&file)?, state, metrics_addr, threads, warnings })
}

/// The sinks, threshold, fetch concurrency and limits from the flags over the `[run]` section.
fn message_config(flags: &MessageArgs, file: &FileConfig) -> Result<MessageConfig, ConfigError> {
    let section = &file.run;
    let topic_arn = flags.topic_arn.clone().or_else(|| section.topic_arn.clone()).filter(|v| !v.is_empty());
    let mut specs = Vec::new();
    if let Some(topic) = &topic_arn {
        match SinkSpec::parse(topic) {
            Ok(spec @ SinkSpec::Sns { .. }) => specs.push(spec),
            _ => return Err(bad("--topic-arn", topic, "not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)")),
        }
    }
    let publish: Vec<String> = flags.publish.iter().filter(|text| !text.trim().is_empty()).cloned().collect();
    specs.extend(sinks("--publish", &publish)?);
    specs.extend(sinks("run.publish", &section.publish).map_err(|e| file.locate(e))?);
    if specs.is_empty() {
        return Err(bad(
            "--topic-arn",
            "",
            "a sink is required (--topic-arn, TRAILHOUND_TOPIC_ARN, --publish, TRAILHOUND_PUBLISH or [run] topic_arn/publish)",
        ));
    }
    let mut message = MessageConfig::new(specs);
    message.publish_at = match (flags.publish_severity, &section.publish_severity) {
        (Some(flag), _) => severity(flag),
        (None, Some(text)) => Severity::parse(text).ok_or_else(|| {
            file.locate(bad("run.publish_severity", text, "expected info, low, medium, high or critical"))
        })?,
        (None, None) => DEFAULT_PUBLISH_SEVERITY,
    };
    let concurrency = match (flags.concurrency, section.concurrency) {
        (Some(n), _) => Some(within("--concurrency", n, &ranges::CONCURRENCY)?),
        (None, Some(n)) => Some(within("run.concurrency", n, &ranges::CONCURRENCY).map_err(|e| file.locate(e))?),
        (None, None) => None,
    };
    if let Some(n) = concurrency {
        message.fetch_concurrency = n;
    }
    message.limits = limits(file)?;
    Ok(message)
}

/// Everything `lambda` needs.
#[derive(Debug, Clone)]
pub struct LambdaConfig {
    /// How each message is handled.
    pub message: MessageConfig,
    /// AWS wiring.
    pub aws: AwsOptions,
    /// Rule settings.
    pub settings: Settings,
    /// The DynamoDB table.
    pub table: String,
    /// Decode threads.
    pub threads: Option<usize>,
}

/// Validates `lambda`'s settings (flags or, as deployed, the function's environment).
pub fn lambda_config(args: &LambdaArgs) -> Result<LambdaConfig, ConfigError> {
    let (file, threads) = common(&args.common)?;
    let message = message_config(&args.message, &file)?;
    let table = match args.state.as_deref().map(StateLocation::parse).transpose()? {
        Some(StateLocation::DynamoDb(table)) => table,
        Some(StateLocation::File(path)) => {
            let text = path.display().to_string();
            return Err(bad("--state", &text, "a Lambda keeps no disk between invocations: use dynamodb://TABLE"));
        }
        None => return Err(bad("--state", "", "required: TRAILHOUND_STATE=dynamodb://TABLE")),
    };
    let aws = aws_options(&args.aws, None, Some(&file.run));
    Ok(LambdaConfig { message, aws, settings: settings(&file)?, table, threads })
}

/// Where the state lives unless `--state` says: `$XDG_DATA_HOME/trailhound/state.db`, else
/// `~/.local/share/trailhound/state.db`.
pub fn default_state_path() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()).map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".local/share"))
    })?;
    Some(data.join("trailhound").join("state.db"))
}

/// Parses a duration such as `30d`, `12h`, `90m` or `0` into milliseconds.
pub fn parse_duration(key: &str, text: &str) -> Result<Millis, ConfigError> {
    match text.trim() {
        "0" => Ok(0),
        other => parse_relative(other).ok_or_else(|| bad(key, text, "expected a duration such as 30d, 12h or 90m")),
    }
}

/// Validates `replay` flags and the configuration file.
pub fn replay_config(args: &ReplayArgs, now: Millis) -> Result<ReplayConfig, ConfigError> {
    let (file, threads) = common(&args.common)?;
    let since = parse_time("--since", &args.since, now)?;
    let until = parse_time("--until", &args.until, now)?;
    if since >= until {
        return Err(bad("--until", &args.until, "must be later than --since"));
    }
    let warmup = match &args.warmup {
        Some(text) => parse_duration("--warmup", text)?,
        None => 0,
    };
    let events = match args.events {
        true => Some(
            EventFilter::parse(&args.filters).map_err(|e| bad("--where", args.filters.join(" "), &e.to_string()))?,
        ),
        false => None,
    };
    let output_is_terminal = args.output.output.is_none() && std::io::stdout().is_terminal();
    let scan = ScanConfig {
        paths: args.paths.clone(),
        output: with_incidents(output_config(&args.output, output_is_terminal, now), &args.incidents)?,
        since: Some(since.saturating_sub(warmup)),
        until: Some(until),
        threads,
        settings: settings(&file)?,
        limits: limits(&file)?,
        state: args.state.clone().or_else(default_state_path).map(|p| StateLocation::parse(&p)).transpose()?,
    };
    let remote = match s3_sources(&args.paths)? {
        Some(sources) => Some(remote_config(&args.remote, &sources)?),
        None => {
            let remote = &args.remote;
            let regions = !remote.trail_regions.is_empty() || !remote.regions_deprecated.is_empty();
            if !remote.accounts.is_empty() || regions || remote.slack.is_some() {
                return Err(bad("--account/--trail-region/--slack", "", "apply to s3:// sources only"));
            }
            None
        }
    };
    if remote.as_ref().is_none() && !args.remote.publish.is_empty() {
        return Err(bad("--publish", "", "is supported for s3:// sources only"));
    }
    let state_given = args.state.is_some();
    Ok(ReplayConfig { scan, report_since: since, events, update_state: args.update_state, remote, state_given })
}

/// Validates `scan` flags and the configuration file. `now` is the wall clock, used only to
/// resolve relative times such as `7d`.
pub fn scan_config(args: &ScanArgs, now: Millis) -> Result<ScanConfig, ConfigError> {
    let (file, threads) = common(&args.common)?;
    let since = args.since.as_deref().map(|v| parse_time("--since", v, now)).transpose()?;
    let until = args.until.as_deref().map(|v| parse_time("--until", v, now)).transpose()?;
    if let (Some(s), Some(u)) = (since, until) {
        if s >= u {
            return Err(bad("--until", args.until.as_deref().unwrap_or(""), "must be later than --since"));
        }
    }
    let output_is_terminal = args.output.output.is_none() && std::io::stdout().is_terminal();
    Ok(ScanConfig {
        paths: args.paths.clone(),
        output: with_incidents(output_config(&args.output, output_is_terminal, now), &args.incidents)?,
        since,
        until,
        threads,
        settings: settings(&file)?,
        limits: limits(&file)?,
        state: args.state.as_deref().map(StateLocation::parse).transpose()?,
    })
}

/// The format to use: the flag, else table on a terminal and JSON lines otherwise.
pub fn choose_format(flag: Option<FormatArg>, terminal: bool, now: Millis) -> Format {
    match flag {
        Some(FormatArg::Table) => Format::Table,
        Some(FormatArg::Jsonl) => Format::Jsonl,
        Some(FormatArg::Ocsf) => Format::Ocsf { detected_at: now },
        None if terminal => Format::Table,
        None => Format::Jsonl,
    }
}

fn output_config(args: &OutputArgs, terminal: bool, now: Millis) -> OutputConfig {
    OutputConfig {
        format: choose_format(args.format, terminal, now),
        path: args.output.clone(),
        min_severity: severity(args.min_severity),
        fail_on: args.fail_on.map(severity),
        group_by: None,
        quiet: args.quiet,
        table: table_style(args.color, terminal, |name| std::env::var(name).ok()),
    }
}

/// The table's width and colours. The width is `COLUMNS` when set (20 to 1000), else the
/// terminal's; not a terminal: not fitted. Colours follow `--color`; `auto` colours a terminal
/// unless `NO_COLOR` is set to anything but the empty string (no-color.org) or `TERM` is `dumb`.
pub fn table_style(color: ColorArg, terminal: bool, env: impl Fn(&str) -> Option<String>) -> TableStyle {
    let columns = env("COLUMNS").and_then(|c| c.trim().parse::<usize>().ok()).filter(|c| (20..=1000).contains(c));
    let width = columns.or_else(|| {
        terminal.then(|| terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| usize::from(w.0))).flatten()
    });
    let no_color = env("NO_COLOR").is_some_and(|v| !v.is_empty()) || env("TERM").as_deref() == Some("dumb");
    let color = match color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => terminal && !no_color,
    };
    TableStyle { width, color }
}

/// Adds `--group-by` to an output: incidents print as a table or JSON lines, not OCSF (which
/// has no incident class trailhound fills).
fn with_incidents(mut output: OutputConfig, args: &IncidentArgs) -> Result<OutputConfig, ConfigError> {
    output.group_by = args.group_by.map(|by| match by {
        GroupByArg::Principal => GroupBy::Principal,
        GroupByArg::Ip => GroupBy::Ip,
    });
    if output.group_by.is_some() && matches!(output.format, Format::Ocsf { .. }) {
        return Err(bad("--group-by", "", "prints incidents as a table or JSON lines; use --format table or jsonl"));
    }
    Ok(output)
}

/// Maps the CLI enum to the domain one.
pub fn severity(arg: SeverityArg) -> Severity {
    match arg {
        SeverityArg::Info => Severity::Info,
        SeverityArg::Low => Severity::Low,
        SeverityArg::Medium => Severity::Medium,
        SeverityArg::High => Severity::High,
        SeverityArg::Critical => Severity::Critical,
    }
}

/// Reads and parses the TOML file.
pub fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    parse_file(path, text)
}

/// Parses the text of the configuration file at `path` (named in errors).
pub fn parse_file(path: &Path, text: String) -> Result<FileConfig, ConfigError> {
    let file: FileConfig = toml::from_str(&text).map_err(|e| {
        // Where: line and column of the error's start (1-based), as editors count.
        let at = e.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: ")
        });
        // The parser quotes keys and values from the file: escaped like any input.
        ConfigError::Parse {
            path: path.to_owned(),
            message: format!("{}{}", at.unwrap_or_default(), clean(e.message())),
        }
    })?;
    Ok(FileConfig { text: Some(text), ..file })
}

/// Detection settings from the file, over the SPEC defaults; a refused value names its line.
pub fn settings(file: &FileConfig) -> Result<Settings, ConfigError> {
    file_settings(file).map_err(|e| file.locate(e))
}

fn file_settings(file: &FileConfig) -> Result<Settings, ConfigError> {
    let mut settings = Settings::default();
    if let Some(cidrs) = &file.trusted_cidrs {
        settings.trusted_cidrs = cidrs
            .iter()
            .map(|c| match Cidr::parse(c) {
                Some(cidr) if cidr.is_network_address() => Ok(cidr),
                Some(_) => Err(bad("trusted_cidrs", c, "has host bits set; write the network address (10.0.0.0/8)")),
                None => Err(bad("trusted_cidrs", c, "not an IPv4/IPv6 CIDR")),
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(ports) = &file.remote_admin_ports {
        settings.remote_admin_ports = ports.clone();
    }
    if let Some(ports) = &file.public_ports {
        settings.public_ports = ports.clone();
    }
    if let Some(days) = file.lifecycle_max_days {
        settings.lifecycle_max_days = within("lifecycle_max_days", days, &ranges::LIFECYCLE_MAX_DAYS)?;
    }
    settings.ssec_allowlist = file.ssec.allowlist.clone();
    let section = &file.baseline;
    let baseline = &mut settings.baseline;
    set_within("baseline.learning_days", section.learning_days, &ranges::LEARNING_DAYS, &mut baseline.learning_days)?;
    set_within("baseline.dormant_days", section.dormant_days, &ranges::DORMANT_DAYS, &mut baseline.dormant_days)?;
    set_within("baseline.max_keys", section.max_keys, &ranges::MAX_KEYS, &mut baseline.max_keys)?;
    set_within("baseline.max_values", section.max_values, &ranges::MAX_VALUES, &mut baseline.max_values)?;
    let known: HashSet<&str> = rules::catalogue().iter().map(|r| r.id).collect();
    for (id, section) in &file.rules {
        if !known.contains(id.as_str()) {
            return Err(bad(&format!("rules.\"{id}\""), id, "no such rule (see `trailhound rules`)"));
        }
        if section.enabled == Some(false) {
            settings.disabled_rules.insert(id.clone());
        }
        let severity = match &section.severity {
            Some(text) => Some(Severity::parse(text).ok_or_else(|| {
                bad(&format!("rules.\"{id}\".severity"), text, "expected info, low, medium, high or critical")
            })?),
            None => None,
        };
        settings
            .rules
            .insert(id.clone(), RuleSettings { severity, allow_principals: section.allow_principals.clone() });
    }
    Ok(settings)
}

/// Stores a configured number after checking it against its range.
fn set_within<T>(
    key: &str,
    value: Option<T>,
    range: &std::ops::RangeInclusive<u64>,
    slot: &mut T,
) -> Result<(), ConfigError>
where
    T: Copy + std::fmt::Display + TryInto<u64>,
{
    if let Some(value) = value {
        *slot = within(key, value, range)?;
    }
    Ok(())
}

/// Decode limits from the file's `[limits]`; a refused value names its line.
pub fn limits(file: &FileConfig) -> Result<Limits, ConfigError> {
    file_limits(file).map_err(|e| file.locate(e))
}

fn file_limits(file: &FileConfig) -> Result<Limits, ConfigError> {
    let mut limits = Limits::default();
    let section = &file.limits;
    set_within(
        "limits.max_object_bytes",
        section.max_object_bytes,
        &ranges::MAX_OBJECT_BYTES,
        &mut limits.max_object_bytes,
    )?;
    set_within(
        "limits.max_record_bytes",
        section.max_record_bytes,
        &ranges::MAX_RECORD_BYTES,
        &mut limits.max_record_bytes,
    )?;
    set_within("limits.max_depth", section.max_depth, &ranges::MAX_DEPTH, &mut limits.max_depth)?;
    set_within(
        "limits.max_rejected_records",
        section.max_rejected_records,
        &ranges::MAX_REJECTED_RECORDS,
        &mut limits.max_rejected_records,
    )?;
    Ok(limits)
}

/// Parses an absolute (RFC 3339, also `2026-11-01T10:00Z` and `2026-11-01`) or relative (`90s`,
/// `30m`, `2h`, `7d`, `1w`, counted back from `now`) time.
pub fn parse_time(flag: &str, value: &str, now: Millis) -> Result<Millis, ConfigError> {
    let value = value.trim();
    if let Some(millis) = parse_relative(value) {
        return Ok(now - millis);
    }
    let candidates = [value.to_owned(), insert_seconds(value), format!("{value}T00:00:00Z")];
    candidates
        .iter()
        .find_map(|c| parse_rfc3339(c))
        .ok_or_else(|| bad(flag, value, "expected RFC 3339 (2026-11-01T10:00:00Z) or a duration like 2h or 7d"))
}

fn parse_relative(value: &str) -> Option<Millis> {
    let unit_at = value.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = value.split_at(unit_at);
    let number: i64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    number.checked_mul(seconds * 1_000)
}

/// `2026-11-01T10:00Z` → `2026-11-01T10:00:00Z`.
fn insert_seconds(value: &str) -> String {
    if value.len() >= 16 && value.as_bytes().get(13) == Some(&b':') && value.as_bytes().get(16) != Some(&b':') {
        format!("{}:00{}", &value[..16], &value[16..])
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_absolute_and_relative() {
        let now = parse_rfc3339("2026-11-23T00:00:00Z").expect("valid");
        assert_eq!(parse_time("--since", "2h", now).ok(), Some(now - 7_200_000));
        assert_eq!(parse_time("--since", "7d", now).ok(), Some(now - 7 * 86_400_000));
        assert_eq!(parse_time("--since", "2026-11-01T10:00Z", now).ok(), parse_rfc3339("2026-11-01T10:00:00Z"));
        assert_eq!(parse_time("--since", "2026-11-01", now).ok(), parse_rfc3339("2026-11-01T00:00:00Z"));
        let error = parse_time("--since", "yesterday", now).expect_err("invalid");
        assert!(error.to_string().contains("`--since`"), "{error}");
    }

    #[test]
    fn file_rejects_unknown_keys_and_rules() {
        let unknown: Result<FileConfig, _> = toml::from_str("trusted_cidr = []");
        assert!(unknown.is_err());
        let file: FileConfig = toml::from_str("[rules.\"no.such_rule\"]\nenabled = false").expect("parses");
        let error = settings(&file).expect_err("unknown rule");
        assert!(error.to_string().contains("no.such_rule"), "{error}");
        let file: FileConfig = toml::from_str("trusted_cidrs = [\"10.0.0.0/33\"]").expect("parses");
        assert!(settings(&file).is_err());
        let file: FileConfig = toml::from_str("[baseline]\nlearning_days = 0").expect("parses");
        assert!(settings(&file).expect_err("zero days").to_string().contains("baseline.learning_days"));
        let file: FileConfig = toml::from_str("[baseline]\nlearning_days = 14\nmax_keys = 10").expect("parses");
        let parsed = settings(&file).expect("valid");
        assert_eq!((parsed.baseline.learning_days, parsed.baseline.max_keys), (14, 10));
    }

    fn parsed(args: &[&str]) -> crate::cli::Command {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(std::iter::once("trailhound").chain(args.iter().copied()));
        cli.expect("parses").command
    }

    #[test]
    fn issue_10_trail_and_aws_regions_are_distinct_and_the_old_spelling_still_works() {
        let now = parse_rfc3339("2026-11-23T00:00:00Z").expect("valid");
        let backfill = |extra: &[&str]| {
            let mut args = vec!["backfill", "s3://trail-bucket", "--since", "7d", "--state", "/tmp/x.db"];
            args.extend_from_slice(extra);
            let crate::cli::Command::Backfill(args) = parsed(&args) else { panic!("not backfill") };
            backfill_config(&args, now).expect("valid")
        };
        let new = backfill(&["--trail-region", "eu-west-1", "--aws-region", "us-east-1"]);
        assert_eq!(new.remote.filters.regions, ["eu-west-1"]);
        assert_eq!(new.remote.aws.region.as_deref(), Some("us-east-1"));
        assert!(new.remote.warnings.is_empty());
        let old = backfill(&["--region", "eu-west-1", "--aws-region", "us-east-1"]);
        assert_eq!(old.remote.filters.regions, ["eu-west-1"]);
        assert_eq!(old.remote.aws.region.as_deref(), Some("us-east-1"));
        assert!(
            old.remote.warnings[0].contains("`--region` is deprecated")
                && old.remote.warnings[0].contains("--trail-region")
        );
        assert_eq!(old.arguments, new.arguments, "the same checkpoint either way");

        let run = |extra: &[&str]| {
            let mut args = vec!["run", "--queue-url", "https://q", "--topic-arn", "arn:aws:sns:us-east-1:1:t"];
            args.extend_from_slice(extra);
            let crate::cli::Command::Run(args) = parsed(&args) else { panic!("not run") };
            run_config(&args).expect("valid")
        };
        assert_eq!(run(&["--aws-region", "eu-central-1"]).aws.region.as_deref(), Some("eu-central-1"));
        let old = run(&["--region", "eu-central-1"]);
        assert_eq!(old.aws.region.as_deref(), Some("eu-central-1"));
        assert!(old.warnings[0].contains("--aws-region"), "{:?}", old.warnings);
        assert_eq!(old.worker.message.fetch_concurrency, DEFAULT_CONCURRENCY);
    }
}
