//! Command-line definitions (clap). Definitions only: validation happens in [`crate::config`].
//! Flags several commands share are flattened groups: [`CommonArgs`] (threads, configuration),
//! [`AwsArgs`] (region and endpoints), [`OutputArgs`] (format, file, severities), and
//! [`RemoteArgs`] (reading a trail bucket).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// CloudTrail log analyzer: S3 SSE-C ransomware, interactive access that bypasses Systems
/// Manager, unusual use of long-term access keys, and Security Hub exposure drift.
#[derive(Debug, Parser)]
#[command(name = "trailhound", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect local CloudTrail files or folders and print findings (no AWS account needed).
    #[command(
        after_help = "Examples:\n  trailhound scan testdata/\n  trailhound scan --since 7d --min-severity high logs/ | jq .\n  trailhound scan --fail-on high --format jsonl --output findings.jsonl AWSLogs/"
    )]
    Scan(ScanArgs),
    /// Replay a time window of local files or of a trail bucket (s3://bucket/prefix): learn
    /// baselines from a warm-up period before it,
    /// report the findings inside it, optionally print the matching raw events. Never changes the
    /// persistent state unless --update-state.
    #[command(
        after_help = "Examples:\n  trailhound replay --since 2026-11-01T10:00:00Z --until 2026-11-01T14:00:00Z --warmup 30d AWSLogs/\n  trailhound replay --since 2026-11-01T10:00:00Z --until 2026-11-01T14:00:00Z s3://trail-bucket/AWSLogs/ --account 111122223333\n  trailhound replay --since 6h --until 1h --events --where accessKeyId=AKIAEXAMPLE --where eventName=CopyObject logs/"
    )]
    Replay(ReplayArgs),
    /// Read a window of a trail bucket from S3: warm the state (baselines) so the worker starts
    /// warm, print findings, optionally publish them or hand the objects to the worker fleet.
    /// Resumable: the same command run again skips what it finished.
    #[command(
        after_help = "Examples:\n  trailhound backfill s3://trail-bucket/AWSLogs/ --since 90d\n  trailhound backfill s3://trail-bucket --since 2026-09-01T00:00:00Z --account 111122223333 --region us-east-1\n  trailhound backfill s3://trail-bucket --since 30d --enqueue https://sqs.us-east-1.amazonaws.com/111122223333/trail"
    )]
    Backfill(BackfillArgs),
    /// Run the always-on worker: consume S3/CloudTrail notifications from SQS, fetch and inspect
    /// each log object, publish alerts to SNS.
    #[command(
        after_help = "Examples:\n  trailhound run --queue-url https://sqs.us-east-1.amazonaws.com/111122223333/trail --topic-arn arn:aws:sns:us-east-1:111122223333:alerts\n  trailhound run --endpoint-url http://127.0.0.1:5000 --path-style --metrics-addr 127.0.0.1:9898 --log-format json ..."
    )]
    Run(RunArgs),
    /// Run as an AWS Lambda function behind an SQS event source mapping (the Lambda Runtime
    /// API): each invocation handles its batch as `run` would and returns `batchItemFailures`
    /// naming the messages to retry. Configured from environment variables; state in DynamoDB.
    #[command(
        after_help = "Environment:\n  TRAILHOUND_STATE=dynamodb://TABLE  TRAILHOUND_TOPIC_ARN=arn:aws:sns:...  TRAILHOUND_PUBLISH=securityhub,eventbridge:BUS\n  TRAILHOUND_PUBLISH_SEVERITY=medium  TRAILHOUND_CONCURRENCY=16  TRAILHOUND_CONFIG=/var/task/trailhound.toml\nA binary named `bootstrap` (the Lambda zip) runs this command without arguments."
    )]
    Lambda(LambdaArgs),
    /// List every rule with its severity, family and description.
    Rules(RulesArgs),
    /// Show what the state holds (items per table) and check it; `state init dynamodb://TABLE`
    /// creates a fleet's table.
    #[command(
        after_help = "Examples:\n  trailhound state\n  trailhound state init dynamodb://trailhound-state --aws-region eu-west-1\n  trailhound state dynamodb://trailhound-state"
    )]
    State(StateArgs),
    /// Print a shell completion script to standard output.
    #[command(
        after_help = "Examples:\n  trailhound completions bash > ~/.local/share/bash-completion/completions/trailhound\n  trailhound completions zsh > \"${fpath[1]}/_trailhound\"\n  trailhound completions fish > ~/.config/fish/completions/trailhound.fish"
    )]
    Completions(CompletionsArgs),
    /// Print the manual page (roff) to standard output, or write one page per command into a folder.
    #[command(after_help = "Examples:\n  trailhound man | man -l -\n  trailhound man --dir /usr/local/share/man/man1")]
    Man(ManArgs),
}

/// `trailhound completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `trailhound man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write trailhound.1 and a page per subcommand (trailhound-scan.1 …) into this folder.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// A readable table (the default on a terminal).
    Table,
    /// One JSON finding per line (the default when piped).
    Jsonl,
    /// One OCSF 1.3.0 Detection Finding per line (AWS Security Lake, SIEMs).
    Ocsf,
}

/// A severity on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SeverityArg {
    /// info
    Info,
    /// low
    Low,
    /// medium
    Medium,
    /// high
    High,
    /// critical
    Critical,
}

/// `trailhound scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files (.json.gz, .json, .jsonl; content is sniffed) or folders, searched recursively.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Output options.
    #[command(flatten)]
    pub output: OutputArgs,
    /// Incidents.
    #[command(flatten)]
    pub incidents: IncidentArgs,
    /// Only events at or after this time: RFC 3339 (2026-11-01T10:00:00Z) or relative (2h, 7d).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events before this time: RFC 3339 or relative.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Threads and configuration.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Keep baselines and aggregation state in this file (read before, updated after). Without
    /// it, scan keeps its state in memory for this run only.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
}

/// `trailhound replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Files or folders (searched recursively), or s3://bucket[/prefix] locations (not both).
    #[arg(required = true, value_name = "SOURCE")]
    pub paths: Vec<PathBuf>,
    /// Options for s3:// sources.
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Output options.
    #[command(flatten)]
    pub output: OutputArgs,
    /// Incidents.
    #[command(flatten)]
    pub incidents: IncidentArgs,
    /// Window start: RFC 3339 or relative (2h, 7d).
    #[arg(long, value_name = "TIME")]
    pub since: String,
    /// Window end: RFC 3339 or relative.
    #[arg(long, value_name = "TIME")]
    pub until: String,
    /// Learn from this long before --since without reporting it (e.g. 30d, 12h; default none).
    #[arg(long, value_name = "DURATION")]
    pub warmup: Option<String>,
    /// Also print the raw events in the window that match --where (secrets redacted).
    #[arg(long)]
    pub events: bool,
    /// Event filter KEY=VALUE (accessKeyId, principal, sourceIPAddress [IP or CIDR],
    /// eventName); repeat a key for either value, different keys must all match.
    #[arg(long = "where", value_name = "KEY=VALUE", requires = "events")]
    pub filters: Vec<String>,
    /// State file to read baselines from (default: the user's state file, when it exists).
    #[arg(long, value_name = "FILE", env = "TRAILHOUND_STATE")]
    pub state: Option<PathBuf>,
    /// Write what the replay learned back to the state file.
    #[arg(long)]
    pub update_state: bool,
    /// Threads and configuration.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `trailhound backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Trail bucket locations: s3://bucket[/prefix], at or above AWSLogs/ or any level below.
    #[arg(required = true, value_name = "S3_URL")]
    pub sources: Vec<String>,
    /// Output options.
    #[command(flatten)]
    pub output: OutputArgs,
    /// Options for reading S3.
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Window start: RFC 3339 or relative (90d).
    #[arg(long, value_name = "TIME")]
    pub since: String,
    /// Window end: RFC 3339 or relative (default: now).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Send the selected object keys to this SQS queue (CloudTrail's notification format) for
    /// the `trailhound run` fleet, instead of processing them here.
    #[arg(long, value_name = "QUEUE_URL")]
    pub enqueue: Option<String>,
    /// Start over, ignoring the checkpoint of an earlier run of the same command.
    #[arg(long)]
    pub restart: bool,
    /// State file to warm (default: the user's state file).
    #[arg(long, value_name = "FILE", env = "TRAILHOUND_STATE")]
    pub state: Option<PathBuf>,
    /// Threads and configuration.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// How progress is shown on standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    /// A bar when standard error is a terminal, else one JSON object at the end.
    Auto,
    /// A bar.
    Bar,
    /// A JSON object per line, every 2 s.
    Jsonl,
    /// Nothing.
    Off,
}

/// Options for reading a trail bucket (`backfill`, `replay s3://…`).
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// Only these accounts (repeat the flag).
    #[arg(long = "account", value_name = "ID")]
    pub accounts: Vec<String>,
    /// Only these regions of the trail (repeat the flag); the clients' region is --aws-region.
    #[arg(long = "trail-region", value_name = "REGION")]
    pub trail_regions: Vec<String>,
    /// Deprecated spelling of --trail-region.
    #[arg(long = "region", value_name = "REGION", hide = true)]
    pub regions_deprecated: Vec<String>,
    /// Read objects whose names are this far outside the window (CloudTrail delivers late);
    /// default 1h.
    #[arg(long, value_name = "DURATION")]
    pub slack: Option<String>,
    /// Objects downloaded at once (default 16).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Publish findings, tagged with the mode (backfill or replay), to this sink: an SNS topic
    /// ARN, `securityhub[:ACCOUNT]` or `eventbridge[:BUS]` (repeat the flag for several).
    #[arg(long, value_name = "SINK")]
    pub publish: Vec<String>,
    /// Publish findings at or above this severity (default medium).
    #[arg(long, value_enum, ignore_case = true, value_name = "SEVERITY")]
    pub publish_severity: Option<SeverityArg>,
    /// Progress on standard error.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressArg,
    /// Where AWS is.
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// Flags of every command that inspects logs.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Worker threads for decoding (default: every core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Configuration file (TOML): trusted CIDRs, ports, allowlists, severities, rule enablement.
    #[arg(long, value_name = "FILE", env = "TRAILHOUND_CONFIG")]
    pub config: Option<PathBuf>,
}

/// How to reach AWS: endpoints other than AWS's own (S3-compatible stores, emulators) and the
/// clients' region.
#[derive(Debug, Args)]
pub struct AwsArgs {
    /// AWS region for the clients (default: the SDK's chain, e.g. AWS_REGION).
    #[arg(long, value_name = "REGION")]
    pub aws_region: Option<String>,
    /// Endpoint URL for S3, SQS and SNS; the SDK also reads AWS_ENDPOINT_URL.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Endpoint URL for S3 only (an S3-compatible store), overriding --endpoint-url for S3.
    #[arg(long, value_name = "URL")]
    pub s3_endpoint_url: Option<String>,
    /// Path-style S3 addressing.
    #[arg(long)]
    pub path_style: bool,
}

/// `trailhound state`.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// `init LOCATION` creates the state (a DynamoDB table: on-demand, TTL on); `LOCATION`
    /// alone reports on it. LOCATION is a file or `dynamodb://TABLE` (default: --state).
    #[arg(value_name = "[init] LOCATION", num_args = 0..=2)]
    pub words: Vec<String>,
    /// State file or `dynamodb://TABLE` (default: the user's state file).
    #[arg(long, value_name = "FILE", env = "TRAILHOUND_STATE")]
    pub state: Option<PathBuf>,
    /// Where AWS is (for `dynamodb://`).
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// `--group-by`, for the commands that can fold findings into incidents (SPEC §8).
#[derive(Debug, Args)]
pub struct IncidentArgs {
    /// Print incidents (`trailhound.incident/v1`): the findings folded per principal identity
    /// (a user or role ARN) or per source IP, each with its findings in time order, highest
    /// severity, first/last seen, source IPs, user agents and raw event count.
    #[arg(long, value_enum, value_name = "ACTOR")]
    pub group_by: Option<GroupByArg>,
}

/// What `--group-by` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupByArg {
    /// The principal identity (IAM user ARN, role ARN, root).
    Principal,
    /// The source IP address.
    Ip,
}

/// Output options shared by commands that print findings.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Write findings to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only print findings at or above this severity.
    #[arg(long, value_enum, ignore_case = true, default_value = "info", value_name = "SEVERITY")]
    pub min_severity: SeverityArg,
    /// Exit with status 1 when a finding at or above this severity is found.
    #[arg(long, value_enum, ignore_case = true, value_name = "SEVERITY")]
    pub fail_on: Option<SeverityArg>,
    /// No run summary on stderr (errors are still printed).
    #[arg(long, short)]
    pub quiet: bool,
    /// Severity colours in the table: auto (on a terminal, unless NO_COLOR is set), always or never.
    #[arg(long, value_enum, default_value = "auto", value_name = "WHEN")]
    pub color: ColorArg,
}

/// When the table is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    /// On a terminal, unless `NO_COLOR` is set (to anything but the empty string) or `TERM=dumb`.
    Auto,
    /// Always (even into a file or a pipe).
    Always,
    /// Never.
    Never,
}

/// `trailhound rules`.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How `run` and `lambda` handle a message: where findings go, from which severity, and how
/// many objects are fetched at once (flags, else the environment, else `[run]` in the config).
#[derive(Debug, Args)]
pub struct MessageArgs {
    /// The SNS topic for alerts (or `[run] topic_arn`).
    #[arg(long, value_name = "ARN", env = "TRAILHOUND_TOPIC_ARN")]
    pub topic_arn: Option<String>,
    /// Another sink for findings: an SNS topic ARN, `securityhub[:ACCOUNT]` or
    /// `eventbridge[:BUS]` (repeat the flag, or separate with commas; or `[run] publish = [...]`).
    #[arg(long, value_name = "SINK", env = "TRAILHOUND_PUBLISH", value_delimiter = ',')]
    pub publish: Vec<String>,
    /// Publish findings at or above this severity (default medium).
    #[arg(long, value_enum, ignore_case = true, value_name = "SEVERITY", env = "TRAILHOUND_PUBLISH_SEVERITY")]
    pub publish_severity: Option<SeverityArg>,
    /// Objects fetched at once (default 16).
    #[arg(long, value_name = "N", env = "TRAILHOUND_CONCURRENCY")]
    pub concurrency: Option<usize>,
}

/// `trailhound lambda`: every setting also comes from the function's environment.
#[derive(Debug, Args)]
pub struct LambdaArgs {
    /// Sinks, threshold and fetch concurrency.
    #[command(flatten)]
    pub message: MessageArgs,
    /// The state: `dynamodb://TABLE` (a Lambda keeps no disk between invocations).
    #[arg(long, value_name = "LOCATION", env = "TRAILHOUND_STATE")]
    pub state: Option<PathBuf>,
    /// Where AWS is.
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Threads and configuration.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `trailhound run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The SQS queue of notifications (or `[run] queue_url` in the config file).
    #[arg(long, value_name = "URL", env = "TRAILHOUND_QUEUE_URL")]
    pub queue_url: Option<String>,
    /// Sinks, threshold and fetch concurrency.
    #[command(flatten)]
    pub message: MessageArgs,
    /// Where AWS is.
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Deprecated spelling of --aws-region.
    #[arg(long = "region", value_name = "REGION", hide = true)]
    pub region_deprecated: Option<String>,
    /// Serve Prometheus metrics (/metrics) and a health check (/healthz) here, e.g. 127.0.0.1:9898.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormatArg,
    /// Seconds to finish work in progress after SIGTERM/SIGINT (default 30).
    #[arg(long, value_name = "SECONDS")]
    pub grace: Option<u64>,
    /// State file (default: the user's state file).
    #[arg(long, value_name = "FILE", env = "TRAILHOUND_STATE")]
    pub state: Option<PathBuf>,
    /// Threads and configuration.
    #[command(flatten)]
    pub common: CommonArgs,
}
