//! The always-on worker behind `trailhound run` (SPEC §4): SQS in, S3 fetch, SNS alerts out,
//! nothing lost.
//!
//! One loop long-polls the queue (20 s, up to 10 messages) and handles the batch concurrently;
//! object fetches are bounded by a semaphore, and decoding and detection run on the rayon pool,
//! never on tokio's workers. A message is deleted only after every object it names was
//! inspected (or skipped or quarantined by design), the stateful passes committed their state,
//! and every new finding at or above the publish severity reached SNS. Otherwise it stays:
//! - a body that is not a notification is left untouched, so the queue's redrive policy moves it
//!   to the dead-letter queue after `maxReceiveCount` receives, byte-identical;
//! - a transient failure (throttling, 5xx, timeouts, denied reads) after the SDK's retries makes
//!   the message visible again after a backoff that grows with its receive count;
//! - a permanently unreadable object (corrupt, not JSON, over the size cap, missing, encrypted
//!   with SSE-C) is quarantined: a `trail.unreadable_log_file` finding, and acknowledged.
//!
//! While a message is in progress a heartbeat extends its visibility every half timeout. The
//! dedup record (`dedup/<finding id>:<count>` in the state store, kept 24 h) stops a redelivered
//! message from paging twice; a finding that grew (an update with more objects) is new. On
//! shutdown the loop stops receiving, lets the batch in progress finish within the grace period,
//! and makes whatever is unfinished visible again at once (a long poll in progress is allowed to
//! return within the grace period, and what it brought is released too). Memory is bounded by one batch: at
//! most 10 messages, each with its objects. Bucket names, keys and error texts are escaped
//! ([`clean`]) before they reach a log line.
//!
//! The worker is the [`Queue`] (receive, delete, visibility) around the [`MessageHandler`] that
//! `lambda` shares (fetch, inspection on the rayon pool, the stateful passes, every sink behind
//! the threshold and the dedup record).

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::Message;
use tracing::{info, warn};

use super::message::{join_all, HandlerError, MessageError, MessageHandler};
use crate::aws::{Chain, Clients};
use crate::config::WorkerConfig;
use crate::detect::Engine;
use crate::finding::clean;
use crate::metrics::Metrics;
use crate::sink::dedup::{PublishError, CLAIM_LEASE};
use crate::source::sqs::{receive_count, Queue, QueueError};
use crate::store::StateStore;

/// The worker: the queue around the message handler.
pub struct Worker {
    queue: Queue,
    config: WorkerConfig,
    handler: MessageHandler,
    metrics: Arc<Metrics>,
    /// Message id → receipt handle, for the messages in progress (never held across an await).
    in_flight: Mutex<HashMap<String, String>>,
    visibility: Duration,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Worker {
    /// Prepares a worker on rayon's global pool; reads the queue's visibility timeout for the
    /// heartbeat and restores the state from `store`.
    pub async fn new(
        clients: Clients,
        config: WorkerConfig,
        engine: Engine,
        store: Arc<dyn StateStore>,
        metrics: Arc<Metrics>,
        clock: fn() -> i64,
    ) -> Result<Worker, WorkerError> {
        let handler = MessageHandler::new(&clients, &config.message, engine, store, metrics.clone(), clock).await?;
        let queue = Queue::new(clients.sqs.clone(), &config.queue_url);
        let visibility = queue.visibility_timeout().await?;
        Ok(Worker { queue, config, handler, metrics, in_flight: Mutex::default(), visibility })
    }

    /// Runs until `shutdown` completes, then drains within the grace period.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = pin!(shutdown);
        info!(queue = %self.config.queue_url, visibility_s = self.visibility.as_secs(), "worker started");
        let mut failures = 0u32;
        loop {
            let mut receive = pin!(self.receive());
            let received = tokio::select! {
                _ = &mut shutdown => {
                    // A long poll in flight may still hand out messages (the server does not see
                    // the client leave): let it finish within the grace period, then release
                    // what it brought, so nothing waits out a visibility timeout.
                    let _ = tokio::time::timeout(self.config.grace, &mut receive).await;
                    break;
                }
                received = &mut receive => received,
            };
            let messages = match received {
                Ok(messages) => {
                    failures = 0;
                    messages
                }
                Err(error) => {
                    failures += 1;
                    self.metrics.error("receive");
                    warn!(error = %Chain(&error), "receiving failed; backing off");
                    let pause = backoff(failures);
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(pause) => continue,
                    }
                }
            };
            if messages.is_empty() {
                continue;
            }
            let mut batch = pin!(join_all(messages.into_iter().map(|m| self.handle(m)).collect()));
            tokio::select! {
                _ = &mut batch => {}
                _ = &mut shutdown => {
                    info!(grace_s = self.config.grace.as_secs(), "shutting down: finishing work in progress");
                    if tokio::time::timeout(self.config.grace, &mut batch).await.is_err() {
                        warn!("grace period over; releasing unfinished messages");
                    }
                    break;
                }
            }
        }
        self.release_unfinished().await;
        info!("worker stopped");
    }

    async fn receive(&self) -> Result<Vec<Message>, QueueError> {
        let messages = self.queue.receive(Duration::from_secs(self.config.wait_seconds.clamp(0, 20) as u64)).await?;
        Metrics::add(&self.metrics.messages_received, messages.len() as u64);
        let mut in_flight = lock(&self.in_flight);
        for message in &messages {
            if let (Some(id), Some(receipt)) = (&message.message_id, &message.receipt_handle) {
                in_flight.insert(id.clone(), receipt.clone());
            }
        }
        Ok(messages)
    }

    /// Handles one message: process, then delete or leave it.
    async fn handle(&self, message: Message) {
        let id = message.message_id.clone().unwrap_or_default();
        let receipt = message.receipt_handle.clone().unwrap_or_default();
        self.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        let outcome = {
            let heartbeat = self.heartbeat(&id, &receipt);
            let work = self.handler.handle(message.body.as_deref().unwrap_or(""));
            match heartbeat {
                Some(heartbeat) => {
                    tokio::select! {
                        outcome = work => outcome,
                        never = heartbeat => match never {},
                    }
                }
                None => work.await,
            }
        };
        match outcome {
            Ok(()) => match self.queue.delete(&id, &receipt).await {
                Ok(()) => Metrics::add(&self.metrics.messages_deleted, 1),
                Err(error) => {
                    // The work is done and recorded; a redelivery repeats it without new alerts.
                    self.metrics.error("delete");
                    warn!(message_id = %id, error = %Chain(&error), "deleting a processed message failed");
                }
            },
            Err(MessageError::Poison(reason)) => {
                self.metrics.error("poison_message");
                let reason = clean(&Chain(&reason).to_string());
                warn!(message_id = %id, %reason, "not a notification; left for the dead-letter queue");
            }
            Err(transient) => {
                self.metrics.error("transient");
                let pause = match &transient {
                    // Another worker is publishing these findings: nothing failed, so look again
                    // once its claim would have expired, without a growing backoff.
                    MessageError::Publish(PublishError::Claimed { .. }) => CLAIM_LEASE,
                    _ => backoff(receive_count(&message)),
                };
                let reason = clean(&Chain(&transient).to_string());
                warn!(message_id = %id, %reason, retry_in_s = pause.as_secs(), "will retry");
                let _ = self.queue.set_visibility(&id, &receipt, pause).await;
            }
        }
        lock(&self.in_flight).remove(&id);
        self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// A task that extends the message's visibility every half timeout; never completes.
    fn heartbeat<'a>(
        &'a self,
        id: &'a str,
        receipt: &'a str,
    ) -> Option<impl Future<Output = std::convert::Infallible> + 'a> {
        self.config.heartbeat.then_some(async move {
            let period = self.visibility / 2;
            loop {
                tokio::time::sleep(period.max(Duration::from_millis(500))).await;
                if let Err(error) = self.queue.set_visibility(id, receipt, self.visibility).await {
                    self.metrics.error("heartbeat");
                    warn!(error = %Chain(&error), "visibility heartbeat failed");
                }
            }
        })
    }

    /// Makes every message still in progress visible again at once.
    async fn release_unfinished(&self) {
        let unfinished: Vec<(String, String)> = lock(&self.in_flight).drain().collect();
        for (id, receipt) in unfinished {
            match self.queue.set_visibility(&id, &receipt, Duration::ZERO).await {
                Ok(()) => info!(message_id = %id, "released unfinished message"),
                Err(error) => {
                    warn!(message_id = %id, error = %Chain(&error), "could not release a message; it returns after its timeout")
                }
            }
        }
    }

    /// Evicts expired dedup records (call now and then; blocking).
    pub fn expire_dedup(&self) {
        if let Err(error) = self.handler.expire_dedup() {
            warn!(error = %Chain(&error), "expiring old dedup records failed");
        }
    }
}

/// The worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The queue could not be read.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The message handler could not be set up.
    #[error(transparent)]
    Handler(#[from] HandlerError),
}

/// 5 s doubling per attempt, at most 5 min.
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(5u64.saturating_mul(1 << attempt.saturating_sub(1).min(6)).min(300))
}
