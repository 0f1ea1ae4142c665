//! `trailhound lambda`: the worker as an AWS Lambda function behind an SQS event source mapping
//! (SPEC §6).
//!
//! Each invocation is handed up to the mapping's batch of messages. Every message goes through the
//! same [`MessageHandler`] as `run` (same envelopes, quarantine, stateful passes, publish before
//! acknowledge): the messages are inspected concurrently, then every message whose objects were
//! all inspected is concluded together (one state commit and one publish per invocation, not one
//! per message), and the answer is the `batchItemFailures` list
//! (`ReportBatchItemFailures`): exactly the messages that must come back. The event source mapping
//! deletes the others. A poison body is reported failed too, so the queue's redrive policy moves it
//! to the dead-letter queue untouched. The function gives up on a message whose objects are still
//! being read three quarters of the way to [`DEADLINE_RESERVE`] before the invocation's deadline
//! and reports it alone, so one slow object never costs its neighbours their acknowledgement; the
//! rest of the time is for the commit and the publish.
//!
//! The handler, the DynamoDB store and the decode pool are set up once per execution environment
//! (the cold start) and reused by every invocation it serves. Logs are JSON lines: one per message
//! that must come back (its id and why) and one per invocation (messages, failures, objects,
//! bytes, duration), which is what the cost figures in the README are computed from.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use tracing::{info, warn};

use super::message::{join_all, MessageError, MessageHandler};
use crate::aws::Chain;
use crate::finding::clean;
use crate::metrics::Metrics;

/// How long before the invocation's deadline a message still running is given up (reported
/// failed) so that the response reaches Lambda in time.
pub const DEADLINE_RESERVE: Duration = Duration::from_millis(1500);

/// The function: the message handler (whose counters the invocation log lines report).
pub struct LambdaWorker {
    handler: MessageHandler,
}

/// A batch Lambda cannot be answered per message: the whole batch comes back.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A record without a message id cannot be named in `batchItemFailures`.
    #[error("record {index} of the batch has no messageId; the whole batch will be retried")]
    NoMessageId {
        /// Its position in the batch.
        index: usize,
    },
}

/// What the Lambda service sets in a function's environment; the runtime crate cannot start
/// without it.
const RUNTIME_ENVIRONMENT: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
];

/// Not inside a Lambda execution environment.
#[derive(Debug, thiserror::Error)]
#[error(
    "`trailhound lambda` runs inside AWS Lambda, and {variable} is not set (the Lambda service sets it); \
     elsewhere use `trailhound run`, or `cargo lambda watch` to emulate the Runtime API"
)]
pub struct NotInLambda {
    /// The first variable missing or malformed.
    pub variable: &'static str,
}

/// Checks that the Lambda service's variables are there (the runtime crate would panic without them).
pub fn check_environment(lookup: impl Fn(&str) -> Option<String>) -> Result<(), NotInLambda> {
    for variable in RUNTIME_ENVIRONMENT {
        let value = lookup(variable).filter(|value| !value.is_empty());
        let valid = match variable {
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => value.is_some_and(|v| v.parse::<i32>().is_ok()),
            _ => value.is_some(),
        };
        if !valid {
            return Err(NotInLambda { variable });
        }
    }
    Ok(())
}

impl LambdaWorker {
    /// The function around a handler.
    pub fn new(handler: MessageHandler) -> LambdaWorker {
        LambdaWorker { handler }
    }

    /// Handles one invocation's batch and names the messages that must come back. `deadline`
    /// is the invocation's deadline in epoch milliseconds (the runtime's `Lambda-Runtime-Deadline-Ms`).
    pub async fn handle_batch(
        &self,
        event: SqsEvent,
        deadline_ms: Option<u64>,
    ) -> Result<SqsBatchResponse, BatchError> {
        let started = Instant::now();
        let before = Snapshot::of(self.handler.metrics());
        // Lambda never starts an invocation past its deadline: a deadline already gone is not a
        // real one (local emulators send a relative value) and is not enforced.
        let time_left = deadline_ms.map(remaining).filter(|left| !left.is_zero());
        let budget = time_left.map(|left| left.saturating_sub(DEADLINE_RESERVE));
        let give_up = budget.map(|budget| started + budget);
        // Inspection stops at three quarters of the budget, so the commit and publish of what
        // was inspected still fit before the deadline.
        let stop_inspecting = budget.map(|budget| started + budget * 3 / 4);
        let mut work = Vec::with_capacity(event.records.len());
        for (index, record) in event.records.into_iter().enumerate() {
            let id = record.message_id.clone().ok_or(BatchError::NoMessageId { index })?;
            let body = record.body.unwrap_or_default();
            work.push(async move { (id, before_deadline(stop_inspecting, self.handler.inspect_body(&body)).await) });
        }
        let messages = work.len();
        // Every message whose objects were all inspected is concluded in one commit and one
        // publish for the whole batch; the others come back now, each with its reason.
        let mut response = SqsBatchResponse::default();
        let (mut inspected, mut outcomes) = (Vec::new(), Vec::new());
        for (id, result) in join_all(work).await {
            match result {
                Ok(Some(objects)) => {
                    inspected.push(id);
                    outcomes.extend(objects);
                }
                Ok(None) => {}
                Err(reason) => fail(&mut response, id, &reason),
            }
        }
        if !inspected.is_empty() {
            if let Err(reason) = before_deadline(give_up, self.handler.conclude(outcomes)).await {
                for id in inspected {
                    fail(&mut response, id, &reason);
                }
            }
        }
        let after = Snapshot::of(self.handler.metrics());
        info!(
            messages,
            failed = response.batch_item_failures.len(),
            objects = after.objects - before.objects,
            bytes_stored = after.bytes_stored - before.bytes_stored,
            bytes_json = after.bytes_json - before.bytes_json,
            events = after.events - before.events,
            duration_ms = started.elapsed().as_millis() as u64,
            time_left_ms = time_left.map(|left| left.as_millis() as u64),
            "batch handled"
        );
        Ok(response)
    }
}

/// Runs `work` until `give_up` (if any), with the reason a message must come back as its error.
async fn before_deadline<T>(
    give_up: Option<Instant>,
    work: impl std::future::Future<Output = Result<T, MessageError>>,
) -> Result<T, String> {
    let outcome = match give_up {
        Some(at) => tokio::time::timeout_at(at.into(), work).await,
        None => Ok(work.await),
    };
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(describe(&error)),
        Err(_elapsed) => Err("still running near the invocation deadline".to_owned()),
    }
}

/// Names a message in the response and logs why.
fn fail(response: &mut SqsBatchResponse, id: String, reason: &str) {
    warn!(message_id = %clean(&id), %reason, "message will come back");
    response.add_failure(id);
}

/// Why a message must come back, on one escaped line.
fn describe(error: &MessageError) -> String {
    let kind = match error {
        MessageError::Poison(_) => "not a notification (for the dead-letter queue)",
        _ => "transient",
    };
    format!("{kind}: {}", clean(&Chain(error).to_string()))
}

/// Time left until an epoch-millisecond deadline.
fn remaining(deadline_ms: u64) -> Duration {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
    Duration::from_millis(deadline_ms.saturating_sub(now))
}

/// The counters one invocation line reports, before and after.
struct Snapshot {
    objects: u64,
    bytes_stored: u64,
    bytes_json: u64,
    events: u64,
}

impl Snapshot {
    fn of(metrics: &Metrics) -> Snapshot {
        Snapshot {
            objects: metrics.objects_inspected.load(Ordering::Relaxed),
            bytes_stored: metrics.bytes_stored.load(Ordering::Relaxed),
            bytes_json: metrics.bytes_json.load(Ordering::Relaxed),
            events: metrics.events.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_environment_is_checked_before_the_runtime_starts() {
        let full = |name: &str| Some(if name.ends_with("MEMORY_SIZE") { "1024".into() } else { "x".into() });
        assert!(check_environment(full).is_ok());
        let without_api = |name: &str| if name == "AWS_LAMBDA_RUNTIME_API" { None } else { full(name) };
        assert_eq!(check_environment(without_api).map_err(|e| e.variable).err(), Some("AWS_LAMBDA_RUNTIME_API"));
        let bad_memory = |name: &str| if name.ends_with("MEMORY_SIZE") { Some("lots".into()) } else { full(name) };
        let error = check_environment(bad_memory).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") && error.contains("trailhound run"), "{error}");
    }
}
