//! The long-running commands with their own control loop: [`run`] (the SQS worker) and
//! [`backfill`] (the S3 walk with checkpoints, also behind `replay s3://…`). `scan`, `replay`
//! of local files, `rules` and `state` are a few lines each in [`crate::app`].

pub mod backfill;
pub mod lambda;
pub mod message;
pub mod run;
