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
//! The worker is built from the seams: [`Queue`] (receive, delete, visibility), [`get_object`]
//! (fetch), the pipeline's [`Driver`] (inspection on the rayon pool) and [`Collector`] (the
//! stateful passes), and a [`Publisher`] (every configured sink, behind the threshold and the
//! dedup record).

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::Message;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::aws::{Chain, Clients};
use crate::config::WorkerConfig;
use crate::detect::Engine;
use crate::finding::{clean, Finding, Mode};
use crate::metrics::Metrics;
use crate::pipeline::{Collector, Driver, DriverError, Input, Inspection, ObjectOutcome};
use crate::sink::dedup::{PublishError, CLAIM_LEASE};
use crate::sink::{Publisher, SinkSpecError};
use crate::source::notify::{self, Notification, NotificationError, Target};
use crate::source::s3::{get_object, FetchError};
use crate::source::sqs::{receive_count, Queue, QueueError};
use crate::source::ObjectRef;
use crate::store::session::Session;
use crate::store::{StateError, StateStore};

/// Why a message stays on the queue.
#[derive(Debug, thiserror::Error)]
enum Leave {
    /// Not a notification: left for the dead-letter queue.
    #[error("not a notification")]
    Poison(#[source] NotificationError),
    /// An object could not be fetched for now.
    #[error(transparent)]
    Fetch(FetchError),
    /// The state could not be read or committed.
    #[error("state")]
    State(#[source] StateError),
    /// Publishing failed.
    #[error("publishing")]
    Publish(#[source] PublishError),
    /// A decode or state task ended without an answer.
    #[error(transparent)]
    Task(DriverError),
    /// A fetch task ended without an answer.
    #[error("a fetch task failed")]
    Join(#[source] tokio::task::JoinError),
}

/// The worker: the queue, the pipeline, the state and the sink.
pub struct Worker {
    queue: Queue,
    s3: aws_sdk_s3::Client,
    config: WorkerConfig,
    driver: Driver,
    /// The stateful passes; a `std` mutex, held only inside a blocking task.
    session: Arc<Mutex<Session>>,
    /// Every configured sink, behind the threshold and the dedup record.
    sink: Publisher,
    metrics: Arc<Metrics>,
    fetches: Arc<Semaphore>,
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
        let settings = engine.settings().clone();
        let restore = store.clone();
        let session = Driver::blocking(move || Session::open(restore, settings)).await??;
        let queue = Queue::new(clients.sqs.clone(), &config.queue_url);
        let visibility = queue.visibility_timeout().await?;
        let ttl = config.dedup_ttl;
        let sink = Publisher::new(&config.sinks, &clients, Some(store), config.publish_at, ttl, clock)?;
        let inspection = Inspection::new(Arc::new(engine), Mode::Live, config.limits);
        Ok(Worker {
            fetches: Arc::new(Semaphore::new(config.fetch_concurrency.max(1))),
            queue,
            s3: clients.s3,
            driver: Driver::on_global_pool(inspection),
            session: Arc::new(Mutex::new(session)),
            sink,
            config,
            metrics,
            in_flight: Mutex::default(),
            visibility,
        })
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
            let mut batch = pin!(futures_join_all(messages.into_iter().map(|m| self.handle(m)).collect()));
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
            let work = self.process(&message);
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
            Err(Leave::Poison(reason)) => {
                self.metrics.error("poison_message");
                let reason = clean(&Chain(&reason).to_string());
                warn!(message_id = %id, %reason, "not a notification; left for the dead-letter queue");
            }
            Err(transient) => {
                self.metrics.error("transient");
                let pause = match &transient {
                    // Another worker is publishing these findings: nothing failed, so look again
                    // once its claim would have expired, without a growing backoff.
                    Leave::Publish(PublishError::Claimed { .. }) => CLAIM_LEASE,
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

    async fn process(&self, message: &Message) -> Result<(), Leave> {
        let body = message.body.as_deref().unwrap_or("");
        let targets = match notify::parse(body).map_err(Leave::Poison)? {
            Notification::Ignore(reason) => {
                debug!(reason, "notification acknowledged without work");
                return Ok(());
            }
            Notification::Objects(targets) => targets,
        };
        let started = std::time::Instant::now();
        let mut fetches = tokio::task::JoinSet::new();
        let mut outcomes = Vec::new();
        for (index, target) in targets.into_iter().enumerate() {
            match target {
                Target::Inspect(object) => {
                    let fetch = self.fetch_context();
                    fetches.spawn(async move { (index, fetch.fetch_and_inspect(object).await) });
                }
                Target::Skip(object, reason) => {
                    Metrics::add(&self.metrics.objects_skipped, 1);
                    debug!(bucket = %clean(&object.bucket), key = %clean(&object.key), reason, "skipped");
                }
                Target::Unreadable { bucket, raw_key, reason } => {
                    Metrics::add(&self.metrics.objects_quarantined, 1);
                    let origin = format!("s3://{bucket}/{raw_key}");
                    outcomes.push((index, ObjectOutcome::quarantined(origin, reason, Mode::Live)));
                }
            }
        }
        while let Some(joined) = fetches.join_next().await {
            let (index, outcome) = joined.map_err(Leave::Join)?;
            outcomes.push((index, outcome?));
        }
        outcomes.sort_by_key(|(index, _)| *index);
        let outcomes: Vec<ObjectOutcome> = outcomes.into_iter().map(|(_, outcome)| outcome).collect();
        let fetched = started.elapsed();
        let session = self.session.clone();
        let findings = Driver::blocking(move || Collector::new(None).add_batch(outcomes, &mut lock(&session)))
            .await
            .map_err(Leave::Task)?
            .map_err(Leave::State)?;
        let advanced = started.elapsed();
        self.publish(&findings).await?;
        debug!(
            fetch_ms = fetched.as_millis() as u64,
            state_ms = (advanced - fetched).as_millis() as u64,
            publish_ms = (started.elapsed() - advanced).as_millis() as u64,
            "message processed"
        );
        Ok(())
    }

    fn fetch_context(&self) -> FetchContext {
        FetchContext {
            s3: self.s3.clone(),
            driver: self.driver.clone(),
            cap: self.config.limits.max_object_bytes,
            fetches: self.fetches.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Publishes the findings at or above the threshold that the dedup record does not have.
    async fn publish(&self, findings: &[Finding]) -> Result<(), Leave> {
        for finding in findings {
            self.metrics.finding(finding.rule, finding.severity.as_str());
        }
        let published = self.sink.publish(findings).await.map_err(Leave::Publish)?;
        Metrics::add(&self.metrics.alerts_published, published.sent);
        Metrics::add(&self.metrics.alerts_suppressed, published.suppressed);
        Ok(())
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
        if let Err(error) = self.sink.expire() {
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
    /// The state could not be restored.
    #[error("cannot load the state")]
    State(#[from] StateError),
    /// The restore task failed.
    #[error(transparent)]
    Task(#[from] DriverError),
    /// A sink cannot be set up.
    #[error("cannot set up a sink")]
    Sink(#[from] SinkSpecError),
}

/// What a fetch task needs (owned, so the task is `'static`).
struct FetchContext {
    s3: aws_sdk_s3::Client,
    driver: Driver,
    cap: u64,
    fetches: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl FetchContext {
    /// Fetches one object (at most `fetches` at once) and inspects it on the pool; a
    /// permanently unreadable object becomes a quarantine outcome, a transient failure leaves
    /// the message.
    async fn fetch_and_inspect(self, object: ObjectRef) -> Result<ObjectOutcome, Leave> {
        let origin = format!("s3://{}/{}", object.bucket, object.key);
        let input = {
            let _permit = self.fetches.acquire().await;
            match get_object(&self.s3, &object.bucket, &object.key, self.cap).await {
                Ok(bytes) => Input::Bytes { origin, bytes },
                Err(error) if error.is_transient() => return Err(Leave::Fetch(error)),
                Err(error) => {
                    Metrics::add(&self.metrics.objects_quarantined, 1);
                    Input::Unreadable { origin, reason: error.problem.to_string() }
                }
            }
        };
        let unreadable = matches!(input, Input::Unreadable { .. });
        let outcome = self.driver.inspect(vec![input]).await.map_err(Leave::Task)?.pop();
        let outcome = outcome.ok_or(Leave::Task(DriverError::Lost))?;
        if !unreadable {
            self.count(&outcome);
        }
        Ok(outcome)
    }

    /// Counts an inspected object as soon as it is done (not when its whole message is).
    fn count(&self, outcome: &ObjectOutcome) {
        let totals = &outcome.totals;
        Metrics::add(&self.metrics.objects_inspected, 1);
        Metrics::add(&self.metrics.bytes_stored, totals.stored_bytes);
        Metrics::add(&self.metrics.bytes_json, totals.json_bytes);
        Metrics::add(&self.metrics.events, totals.events);
        if let Some(latest) = totals.latest_event_time {
            self.metrics.newest_event_time.fetch_max(latest, Ordering::Relaxed);
        }
        if outcome.report.as_ref().is_some_and(|r| r.damage.is_some()) {
            Metrics::add(&self.metrics.objects_quarantined, 1);
        }
    }
}

/// 5 s doubling per attempt, at most 5 min.
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(5u64.saturating_mul(1 << attempt.saturating_sub(1).min(6)).min(300))
}

/// Waits for every future (a small join-all, to avoid a dependency for one function).
async fn futures_join_all<F: Future<Output = ()>>(futures: Vec<F>) {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}
