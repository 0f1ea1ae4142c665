//! trailhound: a CloudTrail log stream analyzer.
//!
//! It catches S3 ransomware that re-encrypts objects in place with SSE-C, interactive access that
//! bypasses Systems Manager, unusual use of long-term access keys, and the exposure changes that
//! Security Hub flags — from CloudTrail log files, in seconds.
//!
//! # Layout
//! Data flows one way: source → pipeline (decode → detect → analyze) → sink, with the store on
//! the side.
//!
//! Entry and wiring:
//! - [`cli`]: clap definitions only; shared flags in flattened groups.
//! - [`config`]: flags and the TOML file validated into one configuration before any work; owns
//!   every default; imports nothing from [`commands`].
//! - [`app`]: per subcommand, build the source, store and sinks, call the pipeline, map the
//!   result to an exit status.
//! - [`commands`]: the commands with their own loop: `run` (the SQS worker), `lambda` (the same
//!   message handling as a Lambda function answering `batchItemFailures`) and `backfill` (the S3
//!   walk with checkpoints, also behind `replay s3://…`).
//!
//! The pure core (no tokio, no AWS SDK, no clock):
//! - [`event`]: the borrowed CloudTrail event view, shape-tolerant body access, event time,
//!   `--where` filters and redaction of printed events.
//! - [`decode`]: the one entry from bytes to events (capped gzip, envelope sniffing, per-record
//!   isolation).
//! - [`finding`]: the finding schema v1: `Finding`, `Severity`, ids, escaping.
//! - [`settings`]: detection settings and the one `RulePolicy` every pass asks.
//! - [`detect`]: the engine, the detector interface and the rule catalogue (one file per rule);
//!   emits findings, baseline observations and correlation facts per event.
//! - [`analyze`]: the cross-event passes over event time: aggregation, correlation (the
//!   ransomware chain), per-key baselines, newly minted keys, known SSE-C writers, incidents,
//!   and the carried state between batches.
//! - [`net`]: CIDR and port-range arithmetic.
//! - [`hash`]: the stable hash of eventIDs and of the rules' event-name table.
//!
//! The seams (one per edge):
//! - [`pipeline`]: the unit of work (one object → outcome), the collector, and the one driver
//!   that hands CPU work from tokio to rayon.
//! - [`source`]: local files, the trail bucket's key layout, S3 listing and fetch, the SQS queue
//!   and the notification envelopes.
//! - [`sink`]: the `Sink` trait and the `Publisher` of every configured sink (SNS, Security
//!   Hub, EventBridge), the terminal (table, JSON lines, OCSF, summary), the enqueue of object
//!   keys, and the dedup wrapper (threshold, claims, record) over any sink.
//! - [`store`]: the `StateStore` interface (owned as `Arc<dyn StateStore>`, backend-neutral
//!   errors, blocking), its SQLite, memory and DynamoDB (a fleet's shared table)
//!   implementations, and the session that keeps the passes' state in it (conditional commits
//!   and retries on a shared store).
//! - [`aws`]: the SDK clients, retries and timeouts, and the optional call log the
//!   least-privilege test reads — no business logic.
//! - [`progress`] and [`metrics`]: progress of long S3 runs, the worker's Prometheus metrics.
//!
//! Behind the `synth` feature (tests, benches, examples): `synth`, the seeded synthetic corpus
//! generator; behind `testkit`: `store::contract`, the assertions every store passes.

pub mod analyze;
pub mod app;
pub mod aws;
pub mod cli;
pub mod commands;
pub mod config;
pub mod decode;
pub mod detect;
pub mod event;
pub mod finding;
pub mod hash;
pub mod metrics;
pub mod net;
pub mod pipeline;
pub mod progress;
pub mod settings;
pub mod sink;
pub mod source;
pub mod store;
#[cfg(feature = "synth")]
pub mod synth;
