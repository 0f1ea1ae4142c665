//! Command-line definitions (clap). Definitions only: validation happens in [`crate::config`].

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
    /// List every rule with its severity, family and description.
    Rules(RulesArgs),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// A readable table (the default on a terminal).
    Table,
    /// One JSON finding per line (the default when piped).
    Jsonl,
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
    /// Only events at or after this time: RFC 3339 (2026-11-01T10:00:00Z) or relative (2h, 7d).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events before this time: RFC 3339 or relative.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Worker threads (default: every core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Configuration file (TOML): trusted CIDRs, ports, allowlists, severities, rule enablement.
    #[arg(long, value_name = "FILE", env = "TRAILHOUND_CONFIG")]
    pub config: Option<PathBuf>,
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
    #[arg(long, value_enum, default_value = "info", value_name = "SEVERITY")]
    pub min_severity: SeverityArg,
    /// Exit with status 1 when a finding at or above this severity is found.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<SeverityArg>,
}

/// `trailhound rules`.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
}
