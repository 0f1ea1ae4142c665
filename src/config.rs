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
//! concurrency = 8
//! grace_seconds = 30
//! metrics_addr = "127.0.0.1:9898"
//!
//! [limits]
//! max_object_bytes = 1073741824
//! max_record_bytes = 8388608
//! max_depth = 64
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

use crate::cli::{
    BackfillArgs, FormatArg, OutputArgs, ProgressArg, RemoteArgs, ReplayArgs, RunArgs, ScanArgs, SeverityArg,
};
use crate::decode::Limits;
use crate::detect::net::Cidr;
use crate::detect::{rules, RuleSettings, Settings, Severity};
use crate::event::time::{parse_rfc3339, Millis};
use crate::filter::EventFilter;
use crate::output::Format;

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
    #[error("invalid value `{value}` for `{key}`: {reason}")]
    Value {
        /// Flag or key.
        key: String,
        /// The value.
        value: String,
        /// Why.
        reason: String,
    },
}

fn bad(key: &str, value: impl ToString, reason: &str) -> ConfigError {
    ConfigError::Value { key: key.to_owned(), value: value.to_string(), reason: reason.to_owned() }
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunSection {
    queue_url: Option<String>,
    topic_arn: Option<String>,
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
    /// State file (None: in memory).
    pub state: Option<PathBuf>,
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
}

/// Reading a trail bucket (`backfill`, `replay s3://…`).
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// Locations.
    pub locations: Vec<crate::layout::S3Location>,
    /// Account and region filters.
    pub filters: crate::layout::Filters,
    /// Delivery slack (ms).
    pub slack: Millis,
    /// Objects downloaded at once.
    pub concurrency: usize,
    /// Topic and severity to publish at.
    pub publish: Option<(String, Severity)>,
    /// Progress display.
    pub progress: crate::progress::Style,
    /// AWS wiring.
    pub aws: crate::aws::AwsOptions,
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
        .map(|source| crate::layout::S3Location::parse(source).map_err(|e| bad("SOURCE", source, &e)))
        .collect::<Result<Vec<_>, _>>()?;
    for account in &args.accounts {
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("--account", account, "expected a 12-digit account id"));
        }
    }
    let slack = match &args.slack {
        Some(text) => parse_duration("--slack", text)?,
        None => crate::backfill::DEFAULT_SLACK,
    };
    if args.concurrency == Some(0) {
        return Err(bad("--concurrency", 0, "must be at least 1"));
    }
    let publish = match &args.publish {
        Some(topic) if !topic.starts_with("arn:") => {
            return Err(bad("--publish", topic, "not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"))
        }
        Some(topic) => Some((topic.clone(), args.publish_severity.map(severity).unwrap_or(Severity::Medium))),
        None => None,
    };
    let progress = match args.progress {
        ProgressArg::Auto if std::io::stderr().is_terminal() => crate::progress::Style::Bar,
        ProgressArg::Auto => crate::progress::Style::Final,
        ProgressArg::Off => crate::progress::Style::Off,
        ProgressArg::Bar => crate::progress::Style::Bar,
        ProgressArg::Jsonl => crate::progress::Style::Jsonl,
    };
    Ok(RemoteConfig {
        locations,
        filters: crate::layout::Filters { accounts: args.accounts.clone(), regions: args.regions.clone() },
        slack,
        concurrency: args.concurrency.unwrap_or(16),
        publish,
        progress,
        aws: crate::aws::AwsOptions {
            endpoint_url: args.endpoints.endpoint_url.clone(),
            s3_endpoint_url: args.endpoints.s3_endpoint_url.clone(),
            region: args.aws_region.clone(),
            path_style: args.endpoints.path_style,
            static_credentials: None,
        },
    })
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
    let file = match &args.config {
        Some(path) => load_file(path)?,
        None => FileConfig::default(),
    };
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
    if args.threads == Some(0) {
        return Err(bad("--threads", 0, "must be at least 1"));
    }
    if args.enqueue.is_some() && remote.publish.is_some() {
        return Err(bad("--publish", "", "cannot be combined with --enqueue: the workers publish"));
    }
    let state = args
        .state
        .clone()
        .or_else(default_state_path)
        .ok_or_else(|| bad("--state", "", "no home folder to keep the state in; pass --state FILE"))?;
    let output_is_terminal = args.output.output.is_none() && std::io::stdout().is_terminal();
    let scan = ScanConfig {
        paths: Vec::new(),
        output: output_config(&args.output, output_is_terminal),
        since: Some(since),
        until: Some(until),
        threads: args.threads,
        settings: settings(&file)?,
        limits: limits(&file)?,
        state: Some(state),
    };
    let mut arguments: Vec<String> = args.sources.clone();
    arguments.extend(["--since".into(), args.since.clone(), "--until".into(), args.until.clone().unwrap_or_default()]);
    arguments.extend(args.remote.accounts.iter().map(|a| format!("--account={a}")));
    arguments.extend(args.remote.regions.iter().map(|r| format!("--region={r}")));
    if let Some(queue) = &args.enqueue {
        arguments.push(format!("--enqueue={queue}"));
    }
    Ok(BackfillConfig { scan, remote, enqueue: args.enqueue.clone(), restart: args.restart, arguments })
}

/// Everything `run` needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Worker settings.
    pub worker: crate::worker::WorkerConfig,
    /// AWS wiring.
    pub aws: crate::aws::AwsOptions,
    /// Detection settings.
    pub settings: Settings,
    /// State file.
    pub state: PathBuf,
    /// Metrics address.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Decode threads.
    pub threads: Option<usize>,
}

/// Validates `run` flags, environment and the `[run]` section of the configuration file.
pub fn run_config(args: &RunArgs) -> Result<RunConfig, ConfigError> {
    let file = match &args.config {
        Some(path) => load_file(path)?,
        None => FileConfig::default(),
    };
    let section = &file.run;
    let queue_url = args.queue_url.clone().or_else(|| section.queue_url.clone()).filter(|v| !v.is_empty());
    let queue_url =
        queue_url.ok_or_else(|| bad("--queue-url", "", "required (flag, TRAILHOUND_QUEUE_URL or [run] queue_url)"))?;
    let topic_arn = args.topic_arn.clone().or_else(|| section.topic_arn.clone()).filter(|v| !v.is_empty());
    let topic_arn =
        topic_arn.ok_or_else(|| bad("--topic-arn", "", "required (flag, TRAILHOUND_TOPIC_ARN or [run] topic_arn)"))?;
    if !topic_arn.starts_with("arn:") {
        return Err(bad("--topic-arn", &topic_arn, "not an ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"));
    }
    let mut worker = crate::worker::WorkerConfig::new(queue_url, topic_arn);
    worker.publish_at = match (args.publish_severity, &section.publish_severity) {
        (Some(flag), _) => severity(flag),
        (None, Some(text)) => Severity::parse(text)
            .ok_or_else(|| bad("run.publish_severity", text, "expected info, low, medium, high or critical"))?,
        (None, None) => Severity::Medium,
    };
    if let Some(n) = args.concurrency.or(section.concurrency) {
        if n == 0 {
            return Err(bad("--concurrency", 0, "must be at least 1"));
        }
        worker.fetch_concurrency = n;
    }
    if let Some(seconds) = args.grace.or(section.grace_seconds) {
        worker.grace = std::time::Duration::from_secs(seconds);
    }
    worker.limits = limits(&file)?;
    let metrics_addr = match args.metrics_addr.clone().or_else(|| section.metrics_addr.clone()) {
        Some(text) => {
            Some(text.parse().map_err(|_| bad("--metrics-addr", &text, "expected HOST:PORT, e.g. 127.0.0.1:9898"))?)
        }
        None => None,
    };
    if args.threads == Some(0) {
        return Err(bad("--threads", 0, "must be at least 1"));
    }
    let state = args
        .state
        .clone()
        .or_else(default_state_path)
        .ok_or_else(|| bad("--state", "", "no home folder to keep the state in; pass --state FILE"))?;
    let aws = crate::aws::AwsOptions {
        endpoint_url: args.endpoints.endpoint_url.clone().or_else(|| section.endpoint_url.clone()),
        s3_endpoint_url: args.endpoints.s3_endpoint_url.clone().or_else(|| section.s3_endpoint_url.clone()),
        region: args.region.clone().or_else(|| section.region.clone()),
        path_style: args.endpoints.path_style || section.path_style.unwrap_or(false),
        static_credentials: None,
    };
    Ok(RunConfig { worker, aws, settings: settings(&file)?, state, metrics_addr, threads: args.threads })
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
    let file = match &args.config {
        Some(path) => load_file(path)?,
        None => FileConfig::default(),
    };
    let since = parse_time("--since", &args.since, now)?;
    let until = parse_time("--until", &args.until, now)?;
    if since >= until {
        return Err(bad("--until", &args.until, "must be later than --since"));
    }
    let warmup = match &args.warmup {
        Some(text) => parse_duration("--warmup", text)?,
        None => 0,
    };
    if args.threads == Some(0) {
        return Err(bad("--threads", 0, "must be at least 1"));
    }
    let events = match args.events {
        true => Some(
            EventFilter::parse(&args.filters).map_err(|e| bad("--where", args.filters.join(" "), &e.to_string()))?,
        ),
        false => None,
    };
    let output_is_terminal = args.output.output.is_none() && std::io::stdout().is_terminal();
    let scan = ScanConfig {
        paths: args.paths.clone(),
        output: output_config(&args.output, output_is_terminal),
        since: Some(since.saturating_sub(warmup)),
        until: Some(until),
        threads: args.threads,
        settings: settings(&file)?,
        limits: limits(&file)?,
        state: args.state.clone().or_else(default_state_path),
    };
    let remote = match s3_sources(&args.paths)? {
        Some(sources) => Some(remote_config(&args.remote, &sources)?),
        None => {
            let remote = &args.remote;
            if !remote.accounts.is_empty() || !remote.regions.is_empty() || remote.slack.is_some() {
                return Err(bad("--account/--region/--slack", "", "apply to s3:// sources only"));
            }
            None
        }
    };
    if remote.as_ref().is_none() && args.remote.publish.is_some() {
        return Err(bad("--publish", "", "is supported for s3:// sources only"));
    }
    Ok(ReplayConfig { scan, report_since: since, events, update_state: args.update_state, remote })
}

/// Validates `scan` flags and the configuration file. `now` is the wall clock, used only to
/// resolve relative times such as `7d`.
pub fn scan_config(args: &ScanArgs, now: Millis) -> Result<ScanConfig, ConfigError> {
    let file = match &args.config {
        Some(path) => load_file(path)?,
        None => FileConfig::default(),
    };
    let since = args.since.as_deref().map(|v| parse_time("--since", v, now)).transpose()?;
    let until = args.until.as_deref().map(|v| parse_time("--until", v, now)).transpose()?;
    if let (Some(s), Some(u)) = (since, until) {
        if s >= u {
            return Err(bad("--until", args.until.as_deref().unwrap_or(""), "must be later than --since"));
        }
    }
    if args.threads == Some(0) {
        return Err(bad("--threads", 0, "must be at least 1"));
    }
    let output_is_terminal = args.output.output.is_none() && std::io::stdout().is_terminal();
    Ok(ScanConfig {
        paths: args.paths.clone(),
        output: output_config(&args.output, output_is_terminal),
        since,
        until,
        threads: args.threads,
        settings: settings(&file)?,
        limits: limits(&file)?,
        state: args.state.clone(),
    })
}

/// The format to use: the flag, else table on a terminal and JSON lines otherwise.
pub fn choose_format(flag: Option<FormatArg>, terminal: bool) -> Format {
    match flag {
        Some(FormatArg::Table) => Format::Table,
        Some(FormatArg::Jsonl) => Format::Jsonl,
        None if terminal => Format::Table,
        None => Format::Jsonl,
    }
}

fn output_config(args: &OutputArgs, terminal: bool) -> OutputConfig {
    OutputConfig {
        format: choose_format(args.format, terminal),
        path: args.output.clone(),
        min_severity: severity(args.min_severity),
        fail_on: args.fail_on.map(severity),
    }
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
    toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.message().to_owned() })
}

/// Detection settings from the file, over the SPEC defaults.
pub fn settings(file: &FileConfig) -> Result<Settings, ConfigError> {
    let mut settings = Settings::default();
    if let Some(cidrs) = &file.trusted_cidrs {
        settings.trusted_cidrs = cidrs
            .iter()
            .map(|c| Cidr::parse(c).ok_or_else(|| bad("trusted_cidrs", c, "not an IPv4/IPv6 CIDR")))
            .collect::<Result<_, _>>()?;
    }
    if let Some(ports) = &file.remote_admin_ports {
        settings.remote_admin_ports = ports.clone();
    }
    if let Some(ports) = &file.public_ports {
        settings.public_ports = ports.clone();
    }
    if let Some(days) = file.lifecycle_max_days {
        if days < 0 {
            return Err(bad("lifecycle_max_days", days, "must not be negative"));
        }
        settings.lifecycle_max_days = days;
    }
    settings.ssec_allowlist = file.ssec.allowlist.clone();
    let section = &file.baseline;
    let baseline = &mut settings.baseline;
    set_at_least_one("baseline.learning_days", section.learning_days, &mut baseline.learning_days)?;
    set_at_least_one("baseline.dormant_days", section.dormant_days, &mut baseline.dormant_days)?;
    set_at_least_one("baseline.max_keys", section.max_keys, &mut baseline.max_keys)?;
    set_at_least_one("baseline.max_values", section.max_values, &mut baseline.max_values)?;
    let known: HashSet<&str> = rules::catalogue().iter().map(|r| r.id).collect();
    for (id, section) in &file.rules {
        if !known.contains(id.as_str()) {
            return Err(bad("rules", id, "no such rule (see `trailhound rules`)"));
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

/// Stores a configured count or period, which must be at least 1.
fn set_at_least_one<T>(key: &str, value: Option<T>, slot: &mut T) -> Result<(), ConfigError>
where
    T: PartialOrd + From<u8> + std::fmt::Display,
{
    match value {
        Some(value) if value < T::from(1) => Err(bad(key, value, "must be at least 1")),
        Some(value) => {
            *slot = value;
            Ok(())
        }
        None => Ok(()),
    }
}

fn limits(file: &FileConfig) -> Result<Limits, ConfigError> {
    let mut limits = Limits::default();
    let section = &file.limits;
    if let Some(v) = section.max_object_bytes {
        limits.max_object_bytes = v;
    }
    if let Some(v) = section.max_record_bytes {
        limits.max_record_bytes = v;
    }
    if let Some(v) = section.max_depth {
        limits.max_depth = v;
    }
    if limits.max_object_bytes == 0 || limits.max_record_bytes == 0 || limits.max_depth < 2 {
        return Err(bad("limits", format!("{limits:?}"), "limits must be positive (max_depth at least 2)"));
    }
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
}
