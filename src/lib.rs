//! trailhound: a CloudTrail log stream analyzer.
//!
//! It catches S3 ransomware that re-encrypts objects in place with SSE-C, interactive access that
//! bypasses Systems Manager, unusual use of long-term access keys, and the exposure changes that
//! Security Hub flags — from CloudTrail log files, in seconds.
//!
//! # Layout
//! Data flows one way: source → decode → detect → sink.
//! - [`event`]: the borrowed CloudTrail event view, shape-tolerant body access, event time.
//! - [`decode`]: bytes of a log object → events (capped gzip, envelope sniffing, per-record
//!   isolation). Pure CPU.
//! - [`detect`]: the rule catalogue, one file per rule, the engine, and the finding schema.
//!   Pure CPU: no clock, no environment, no I/O.
//! - [`baseline`]: per-key baselines of long-term access keys (learning, new values, dormancy),
//!   fed in event-time order. Pure CPU.
//! - [`stateful`]: aggregation, correlation and baselines over a stream of batches, with the
//!   state carried from one batch to the next. Pure CPU.
//! - [`state`]: the state store interface, its SQLite and in-memory implementations, and the
//!   session that loads and saves [`stateful`] state through it.
//! - [`scan`]: the parallel pipeline over local files (rayon, per-thread buffers, time-ordered
//!   batches) and the run summary; `scan` and `replay` share it.
//! - [`filter`]: `replay --events --where` filters and secret redaction of printed events.
//! - [`layout`]: the CloudTrail key layout, to list a trail bucket no more than a window needs.
//!   Pure CPU.
//! - [`notify`] and [`alert`]: SQS bodies → objects, findings → SNS alerts. Pure CPU.
//! - [`aws`] and [`worker`]: the SDK clients and `trailhound run`.
//! - [`output`]: findings as JSON lines or a terminal table.
//! - [`synth`]: the seeded synthetic corpus generator used by benches and tests.
//! - [`config`]: CLI flags and the TOML file validated into one configuration before any work.
//! - [`cli`] and [`app`]: argument definitions and one function per subcommand.

pub mod alert;
pub mod app;
pub mod aws;
pub mod backfill;
pub mod baseline;
pub mod cli;
pub mod config;
pub mod decode;
pub mod detect;
pub mod event;
pub mod filter;
pub mod layout;
pub mod notify;
pub mod output;
pub mod progress;
pub mod scan;
pub mod state;
pub mod stateful;
pub mod synth;
pub mod worker;
