//! One notification, start to finish, wherever it came from: `run` receives it from SQS, the
//! Lambda is handed it by the event source mapping. The body names objects
//! ([`notify::parse`]); each is fetched (at most `fetch_concurrency` at once) and inspected on the
//! rayon pool; the stateful passes take the batch of outcomes and commit their state; the new
//! findings at or above the threshold are published through every sink behind the dedup record.
//! [`MessageHandler::handle`] answers `Ok` only when all of that is done, so the caller may
//! acknowledge the message; a [`MessageError`] says why it must come back (or, for
//! [`MessageError::Poison`], reach the dead-letter queue).
//!
//! A permanently unreadable object (corrupt, not JSON, over the size cap, missing, encrypted with
//! SSE-C) is quarantined: a `trail.unreadable_log_file` finding, and the message is done.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use tracing::debug;

use crate::aws::Clients;
use crate::config::MessageConfig;
use crate::detect::Engine;
use crate::finding::{clean, Finding, Mode};
use crate::metrics::Metrics;
use crate::pipeline::{Collector, Driver, DriverError, Input, Inspection, ObjectOutcome};
use crate::sink::dedup::PublishError;
use crate::sink::{Publisher, SinkSpecError};
use crate::source::notify::{self, Notification, NotificationError, Target};
use crate::source::s3::{get_object, FetchError};
use crate::source::ObjectRef;
use crate::store::session::Session;
use crate::store::{StateError, StateStore};

/// Why a message must come back (or, when poison, go to the dead-letter queue).
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// Not a notification: left for the dead-letter queue.
    #[error("not a notification")]
    Poison(#[source] NotificationError),
    /// An object could not be fetched for now.
    #[error(transparent)]
    Fetch(FetchError),
    /// The state could not be read or committed.
    #[error("state")]
    State(#[source] StateError),
    /// Publishing failed (or another worker is publishing the same findings).
    #[error("publishing")]
    Publish(#[source] PublishError),
    /// A decode or state task ended without an answer.
    #[error(transparent)]
    Task(DriverError),
    /// A fetch task ended without an answer.
    #[error("a fetch task failed")]
    Join(#[source] tokio::task::JoinError),
}

/// The handler could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
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

/// Fetch, inspection, the stateful passes and the sinks, for one message at a time (several may
/// be in progress at once: they share the fetch budget and the session).
pub struct MessageHandler {
    s3: aws_sdk_s3::Client,
    driver: Driver,
    cap: u64,
    /// The stateful passes; a `std` mutex, held only inside a blocking task.
    session: Arc<Mutex<Session>>,
    /// Every configured sink, behind the threshold and the dedup record.
    sink: Publisher,
    metrics: Arc<Metrics>,
    fetches: Arc<Semaphore>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MessageHandler {
    /// Prepares a handler on rayon's global pool and restores the state from `store`.
    pub async fn new(
        clients: &Clients,
        config: &MessageConfig,
        engine: Engine,
        store: Arc<dyn StateStore>,
        metrics: Arc<Metrics>,
        clock: fn() -> i64,
    ) -> Result<MessageHandler, HandlerError> {
        let settings = engine.settings().clone();
        let restore = store.clone();
        let session = Driver::blocking(move || Session::open(restore, settings)).await??;
        let sink = Publisher::new(&config.sinks, clients, Some(store), config.publish_at, config.dedup_ttl, clock)?;
        let inspection = Inspection::new(Arc::new(engine), Mode::Live, config.limits);
        Ok(MessageHandler {
            s3: clients.s3.clone(),
            driver: Driver::on_global_pool(inspection),
            cap: config.limits.max_object_bytes,
            session: Arc::new(Mutex::new(session)),
            sink,
            metrics,
            fetches: Arc::new(Semaphore::new(config.fetch_concurrency.max(1))),
        })
    }

    /// Handles one message body: `Ok` when it may be acknowledged.
    pub async fn handle(&self, body: &str) -> Result<(), MessageError> {
        match self.inspect_body(body).await? {
            Some(outcomes) => self.conclude(outcomes).await,
            None => Ok(()),
        }
    }

    /// The first half of [`MessageHandler::handle`]: the outcomes of the objects a body names,
    /// fetched and inspected, or `None` when it names nothing to do (`s3:TestEvent`, removals).
    /// Several messages' outcomes may be concluded together (the Lambda does, one commit per
    /// invocation).
    pub async fn inspect_body(&self, body: &str) -> Result<Option<Vec<ObjectOutcome>>, MessageError> {
        match notify::parse(body).map_err(MessageError::Poison)? {
            Notification::Ignore(reason) => {
                debug!(reason, "notification acknowledged without work");
                Ok(None)
            }
            Notification::Objects(targets) => {
                let started = std::time::Instant::now();
                let outcomes = self.inspect(targets).await?;
                debug!(fetch_ms = started.elapsed().as_millis() as u64, objects = outcomes.len(), "message inspected");
                Ok(Some(outcomes))
            }
        }
    }

    /// The second half: the stateful passes over the outcomes (their state committed), then the
    /// new findings published. `Ok` means every message the outcomes came from may be
    /// acknowledged.
    pub async fn conclude(&self, outcomes: Vec<ObjectOutcome>) -> Result<(), MessageError> {
        let started = std::time::Instant::now();
        let session = self.session.clone();
        let findings = Driver::blocking(move || Collector::new(None).add_batch(outcomes, &mut lock(&session)))
            .await
            .map_err(MessageError::Task)?
            .map_err(MessageError::State)?;
        let advanced = started.elapsed();
        self.publish(&findings).await?;
        debug!(
            state_ms = advanced.as_millis() as u64,
            publish_ms = (started.elapsed() - advanced).as_millis() as u64,
            "state committed and findings published"
        );
        Ok(())
    }

    /// Every named object's outcome, in the order named.
    async fn inspect(&self, targets: Vec<Target>) -> Result<Vec<ObjectOutcome>, MessageError> {
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
            let (index, outcome) = joined.map_err(MessageError::Join)?;
            outcomes.push((index, outcome?));
        }
        outcomes.sort_by_key(|(index, _)| *index);
        Ok(outcomes.into_iter().map(|(_, outcome)| outcome).collect())
    }

    fn fetch_context(&self) -> FetchContext {
        FetchContext {
            s3: self.s3.clone(),
            driver: self.driver.clone(),
            cap: self.cap,
            fetches: self.fetches.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Publishes the findings at or above the threshold that the dedup record does not have.
    async fn publish(&self, findings: &[Finding]) -> Result<(), MessageError> {
        for finding in findings {
            self.metrics.finding(finding.rule, finding.severity.as_str());
        }
        let published = self.sink.publish(findings).await.map_err(MessageError::Publish)?;
        Metrics::add(&self.metrics.alerts_published, published.sent);
        Metrics::add(&self.metrics.alerts_suppressed, published.suppressed);
        Ok(())
    }

    /// The counters this handler keeps.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Evicts expired dedup records (call now and then; blocking).
    pub fn expire_dedup(&self) -> Result<u64, StateError> {
        self.sink.expire()
    }
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
    async fn fetch_and_inspect(self, object: ObjectRef) -> Result<ObjectOutcome, MessageError> {
        let origin = format!("s3://{}/{}", object.bucket, object.key);
        let input = {
            let _permit = self.fetches.acquire().await;
            match get_object(&self.s3, &object.bucket, &object.key, self.cap).await {
                Ok(bytes) => Input::Bytes { origin, bytes },
                Err(error) if error.is_transient() => return Err(MessageError::Fetch(error)),
                Err(error) => {
                    Metrics::add(&self.metrics.objects_quarantined, 1);
                    Input::Unreadable { origin, reason: error.problem.to_string() }
                }
            }
        };
        let unreadable = matches!(input, Input::Unreadable { .. });
        let outcome = self.driver.inspect(vec![input]).await.map_err(MessageError::Task)?.pop();
        let outcome = outcome.ok_or(MessageError::Task(DriverError::Lost))?;
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

/// Waits for every future and returns their outputs in order (a small join-all, to avoid a
/// dependency for one function).
pub async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
