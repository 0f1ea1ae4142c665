//! The long-running commands with their own control loop: [`run`] (the SQS worker), [`lambda`]
//! (the worker as a Lambda function) and [`backfill`] (the S3 walk with checkpoints, also behind
//! `replay s3://…`). [`message`] is the handling of one notification that `run` and `lambda`
//! share. `scan`, `replay`
//! of local files, `rules` and `state` are a few lines each in [`crate::app`].

pub mod backfill;
pub mod lambda;
pub mod message;
pub mod run;
