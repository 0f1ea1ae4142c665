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

pub mod metrics;

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::alert::{self, Alert};
use crate::aws::{error_text, get_object, publish_alerts, Clients, FetchError, PUBLISH_BATCH};
use crate::decode::{Decoder, Limits};
use crate::detect::rules::unreadable_log_file;
use crate::detect::{clean, Engine, Finding, Mode, Severity};
use crate::notify::{self, Notification, ObjectRef, Target};
use crate::scan::{inspect_object, Inspected, Window};
use crate::state::persist::Session;
use crate::state::{StateStore, Table, Write};
use crate::stateful::Batch;
use metrics::Metrics;

/// How long the dedup record remembers a published finding.
pub const DEDUP_TTL: Duration = Duration::from_secs(24 * 3600);

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The queue of notifications.
    pub queue_url: String,
    /// The topic alerts go to.
    pub topic_arn: String,
    /// Publish findings at or above this severity.
    pub publish_at: Severity,
    /// Objects fetched at once.
    pub fetch_concurrency: usize,
    /// Long-poll wait (s), at most 20.
    pub wait_seconds: i32,
    /// Extend visibility while a message is in progress (off only to prove tests can see a
    /// redelivery).
    pub heartbeat: bool,
    /// Time to finish work in progress after a shutdown signal.
    pub grace: Duration,
    /// Decode limits.
    pub limits: Limits,
}

impl WorkerConfig {
    /// Defaults for a queue and topic.
    pub fn new(queue_url: impl Into<String>, topic_arn: impl Into<String>) -> WorkerConfig {
        WorkerConfig {
            queue_url: queue_url.into(),
            topic_arn: topic_arn.into(),
            publish_at: Severity::Medium,
            fetch_concurrency: 8,
            wait_seconds: 20,
            heartbeat: true,
            grace: Duration::from_secs(30),
            limits: Limits::default(),
        }
    }
}

/// Why a message stays on the queue.
#[derive(Debug)]
enum Leave {
    /// Not a notification: left for the dead-letter queue.
    Poison(String),
    /// Worth retrying later.
    Transient(String),
}

/// What fetching one object gave.
enum Fetched {
    Inspected(Box<Inspected>),
    Quarantined(Box<Finding>),
}

/// The worker: clients, settings, the engine and the state.
pub struct Worker {
    clients: Clients,
    config: WorkerConfig,
    engine: Arc<Engine>,
    session: Arc<Mutex<Session<'static>>>,
    store: &'static dyn StateStore,
    metrics: Arc<Metrics>,
    fetches: Arc<Semaphore>,
    /// Message id → receipt handle, for the messages in progress.
    in_flight: Mutex<HashMap<String, String>>,
    /// Serializes check-dedup → publish → record, so concurrent messages naming the same events
    /// page once.
    publishing: tokio::sync::Mutex<()>,
    visibility: Duration,
    clock: fn() -> i64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Worker {
    /// Prepares a worker; reads the queue's visibility timeout for the heartbeat.
    pub async fn new(
        clients: Clients,
        config: WorkerConfig,
        engine: Engine,
        store: &'static dyn StateStore,
        metrics: Arc<Metrics>,
        clock: fn() -> i64,
    ) -> Result<Worker, String> {
        let session = Session::open(store, engine.settings().clone()).map_err(|e| e.to_string())?;
        let attributes = clients
            .sqs
            .get_queue_attributes()
            .queue_url(&config.queue_url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await
            .map_err(|e| format!("cannot read the queue `{}`: {}", config.queue_url, error_text(&e)))?;
        let seconds = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(30);
        Ok(Worker {
            fetches: Arc::new(Semaphore::new(config.fetch_concurrency.max(1))),
            clients,
            config,
            engine: Arc::new(engine),
            session: Arc::new(Mutex::new(session)),
            store,
            metrics,
            in_flight: Mutex::default(),
            publishing: tokio::sync::Mutex::new(()),
            visibility: Duration::from_secs(seconds.max(1)),
            clock,
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
                    warn!(%error, "receiving failed; backing off");
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

    async fn receive(&self) -> Result<Vec<Message>, String> {
        let output = self
            .clients
            .sqs
            .receive_message()
            .queue_url(&self.config.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(self.config.wait_seconds.clamp(0, 20))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| error_text(&e))?;
        let messages = output.messages.unwrap_or_default();
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
            let heartbeat = self.heartbeat(&receipt);
            let work = self.process(&message);
            match heartbeat {
                Some(heartbeat) => {
                    tokio::select! {
                        outcome = work => outcome,
                        _ = heartbeat => unreachable_heartbeat(),
                    }
                }
                None => work.await,
            }
        };
        match outcome {
            Ok(()) => match self.delete(&receipt).await {
                Ok(()) => Metrics::add(&self.metrics.messages_deleted, 1),
                Err(error) => {
                    // The work is done and recorded; a redelivery repeats it without new alerts.
                    self.metrics.error("delete");
                    warn!(message_id = %id, %error, "deleting a processed message failed");
                }
            },
            Err(Leave::Poison(reason)) => {
                self.metrics.error("poison_message");
                warn!(message_id = %id, reason = %clean(&reason), "not a notification; left for the dead-letter queue");
            }
            Err(Leave::Transient(reason)) => {
                self.metrics.error("transient");
                let count = receive_count(&message);
                let pause = backoff(count);
                warn!(message_id = %id, reason = %clean(&reason), retry_in_s = pause.as_secs(), "will retry");
                let _ = self.set_visibility(&receipt, pause).await;
            }
        }
        lock(&self.in_flight).remove(&id);
        self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// A task that extends the message's visibility every half timeout; never completes.
    fn heartbeat<'a>(&'a self, receipt: &'a str) -> Option<impl Future<Output = ()> + 'a> {
        self.config.heartbeat.then_some(async move {
            let period = self.visibility / 2;
            loop {
                tokio::time::sleep(period.max(Duration::from_millis(500))).await;
                if let Err(error) = self.set_visibility(receipt, self.visibility).await {
                    self.metrics.error("heartbeat");
                    warn!(%error, "visibility heartbeat failed");
                }
            }
        })
    }

    async fn process(&self, message: &Message) -> Result<(), Leave> {
        let body = message.body.as_deref().unwrap_or("");
        let targets = match notify::parse(body).map_err(|e| Leave::Poison(e.to_string()))? {
            Notification::Ignore(reason) => {
                debug!(reason, "notification acknowledged without work");
                return Ok(());
            }
            Notification::Objects(targets) => targets,
        };
        let mut batch = Batch::default();
        let mut fetches = tokio::task::JoinSet::new();
        for (index, target) in targets.into_iter().enumerate() {
            match target {
                Target::Inspect(object) => {
                    let worker = self.fetch_context();
                    fetches.spawn(async move { (index, worker.fetch_and_inspect(object).await) });
                }
                Target::Skip(object, reason) => {
                    Metrics::add(&self.metrics.objects_skipped, 1);
                    debug!(bucket = %clean(&object.bucket), key = %clean(&object.key), reason, "skipped");
                }
                Target::Unreadable { bucket, raw_key, reason } => {
                    let origin = format!("s3://{bucket}/{raw_key}");
                    self.quarantined(&origin, &reason);
                    batch.findings.push(unreadable_log_file(&origin, &reason, 0, Mode::Live));
                }
            }
        }
        let started = std::time::Instant::now();
        let mut results = Vec::new();
        while let Some(joined) = fetches.join_next().await {
            results.push(joined.map_err(|e| Leave::Transient(format!("fetch task failed: {e}")))?);
        }
        results.sort_by_key(|(index, _)| *index);
        for (_, result) in results {
            match result? {
                Fetched::Inspected(inspected) => self.add_inspected(&mut batch, *inspected),
                Fetched::Quarantined(finding) => batch.findings.push(*finding),
            }
        }
        let fetched = started.elapsed();
        let session = self.session.clone();
        let findings = tokio::task::spawn_blocking(move || lock(&session).advance(batch))
            .await
            .map_err(|e| Leave::Transient(format!("state task failed: {e}")))?
            .map_err(|e| Leave::Transient(format!("state: {e}")))?;
        let advanced = started.elapsed();
        self.publish(findings).await.map_err(Leave::Transient)?;
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
            s3: self.clients.s3.clone(),
            engine: self.engine.clone(),
            limits: self.config.limits,
            fetches: self.fetches.clone(),
            metrics: self.metrics.clone(),
        }
    }

    fn add_inspected(&self, batch: &mut Batch, inspected: Inspected) {
        let totals = &inspected.totals;
        batch.latest = batch.latest.max(totals.latest_event_time);
        batch.findings.extend(inspected.findings);
        batch.observations.extend(inspected.observations);
        batch.facts.extend(inspected.facts);
    }

    fn quarantined(&self, origin: &str, reason: &str) {
        Metrics::add(&self.metrics.objects_quarantined, 1);
        warn!(object = %clean(origin), reason = %clean(reason), "object quarantined");
    }

    /// Publishes the findings at or above the threshold that the dedup record does not have.
    async fn publish(&self, findings: Vec<Finding>) -> Result<(), String> {
        for finding in &findings {
            self.metrics.finding(finding.rule, finding.severity.as_str());
        }
        let alerts = alert::alerts_at(&findings, self.config.publish_at);
        if alerts.is_empty() {
            return Ok(());
        }
        let _turn = self.publishing.lock().await;
        let keys: Vec<String> = alerts.iter().map(|(key, _)| key.clone()).collect();
        let store = self.store;
        let known = tokio::task::spawn_blocking(move || store.get_many(Table::Dedup, &keys))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let fresh: Vec<&(String, Alert)> =
            alerts.iter().zip(known).filter(|(_, k)| k.is_none()).map(|(a, _)| a).collect();
        Metrics::add(&self.metrics.alerts_suppressed, (alerts.len() - fresh.len()) as u64);
        for chunk in fresh.chunks(PUBLISH_BATCH) {
            publish_alerts(&self.clients.sns, &self.config.topic_arn, chunk).await?;
            Metrics::add(&self.metrics.alerts_published, chunk.len() as u64);
            let now = (self.clock)();
            let writes: Vec<Write> =
                chunk.iter().map(|(key, _)| alert::dedup_record(key, now, DEDUP_TTL.as_millis() as i64)).collect();
            let store = self.store;
            tokio::task::spawn_blocking(move || store.commit(writes))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn delete(&self, receipt: &str) -> Result<(), String> {
        self.clients
            .sqs
            .delete_message()
            .queue_url(&self.config.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| error_text(&e))
    }

    async fn set_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), String> {
        self.clients
            .sqs
            .change_message_visibility()
            .queue_url(&self.config.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(timeout.as_secs().min(43_200) as i32)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| error_text(&e))
    }

    /// Makes every message still in progress visible again at once.
    async fn release_unfinished(&self) {
        let unfinished: Vec<(String, String)> = lock(&self.in_flight).drain().collect();
        for (id, receipt) in unfinished {
            match self.set_visibility(&receipt, Duration::ZERO).await {
                Ok(()) => info!(message_id = %id, "released unfinished message"),
                Err(error) => {
                    warn!(message_id = %id, %error, "could not release a message; it returns after its timeout")
                }
            }
        }
    }

    /// Evicts expired dedup records (call now and then).
    pub fn expire_dedup(&self) {
        let _ = self.store.evict(Table::Dedup, crate::state::Evict::ExpiredBefore((self.clock)()));
    }
}

fn unreachable_heartbeat() -> Result<(), Leave> {
    Err(Leave::Transient("heartbeat ended".into()))
}

/// What a fetch task needs (owned, so the task is `'static`).
struct FetchContext {
    s3: aws_sdk_s3::Client,
    engine: Arc<Engine>,
    limits: Limits,
    fetches: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl FetchContext {
    async fn fetch_and_inspect(self, object: ObjectRef) -> Result<Fetched, Leave> {
        let origin = format!("s3://{}/{}", object.bucket, object.key);
        let bytes = {
            let _permit = self.fetches.acquire().await.map_err(|e| Leave::Transient(e.to_string()))?;
            match self.fetch(&object).await? {
                Ok(bytes) => bytes,
                Err(reason) => {
                    Metrics::add(&self.metrics.objects_quarantined, 1);
                    warn!(object = %clean(&origin), reason = %clean(&reason), "object quarantined");
                    return Ok(Fetched::Quarantined(Box::new(unreadable_log_file(&origin, &reason, 0, Mode::Live))));
                }
            }
        };
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let engine = self.engine.clone();
        let limits = self.limits;
        rayon::spawn(move || {
            let inspected = with_decoder(limits, |decoder| {
                inspect_object(decoder, &bytes, &origin, &engine, Window::default(), Mode::Live, None)
            });
            let _ = sender.send(inspected);
        });
        let inspected = receiver.await.map_err(|_| Leave::Transient("decode task ended".into()))?;
        self.count(&inspected);
        Ok(Fetched::Inspected(Box::new(inspected)))
    }

    /// Counts an inspected object as soon as it is done (not when its whole message is).
    fn count(&self, inspected: &Inspected) {
        let totals = &inspected.totals;
        Metrics::add(&self.metrics.objects_inspected, 1);
        Metrics::add(&self.metrics.bytes_stored, totals.stored_bytes);
        Metrics::add(&self.metrics.bytes_json, totals.json_bytes);
        Metrics::add(&self.metrics.events, totals.events);
        if let Some(latest) = totals.latest_event_time {
            self.metrics.newest_event_time.fetch_max(latest, Ordering::Relaxed);
        }
        if inspected.report.damage.is_some() {
            Metrics::add(&self.metrics.objects_quarantined, 1);
        }
    }

    /// The object's bytes; `Ok(Err(reason))` when it is permanently unreadable.
    async fn fetch(&self, object: &ObjectRef) -> Result<Result<Vec<u8>, String>, Leave> {
        match get_object(&self.s3, &object.bucket, &object.key, self.limits.max_object_bytes).await {
            Ok(bytes) => Ok(Ok(bytes)),
            Err(FetchError::Unreadable(reason)) => Ok(Err(reason)),
            Err(FetchError::Transient(reason)) => Err(Leave::Transient(reason)),
        }
    }
}

thread_local! {
    /// One decoder (and its buffers) per rayon thread.
    static DECODER: RefCell<Option<Decoder>> = const { RefCell::new(None) };
}

fn with_decoder<T>(limits: Limits, work: impl FnOnce(&mut Decoder) -> T) -> T {
    DECODER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let decoder = slot.get_or_insert_with(|| Decoder::new(limits));
        work(decoder)
    })
}

fn receive_count(message: &Message) -> u32 {
    message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
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
