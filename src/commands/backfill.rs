//! Reading a window of a trail bucket straight from S3: `backfill` (warm the state, optionally
//! publish), `replay s3://…` (an incident window, nothing changed), and `backfill --enqueue`
//! (hand the object list to the worker fleet). SPEC §5, §6.
//!
//! The objects of the window are listed a day at a time ([`crate::source::s3::Lister`]), ordered as `scan` orders
//! local files (by the delivery time in their name, then by name), and processed in batches of
//! [`BATCH_FILES`] like `scan`'s: the next [`PREFETCH_BATCHES`] batches download (at most
//! `concurrency` objects at once, across batches) while the rayon pool decodes this one, then
//! the stateful passes run and commit. So a backfill of a bucket gives the findings `scan` gives
//! on a copy of the same files, and memory holds three batches of objects, however long the
//! window.
//!
//! **Resuming.** When the state is written, a checkpoint follows each batch once its state is
//! committed and its alerts are published: the position of the last object of the batch, under
//! a key derived from the command's arguments. The same command run again skips every day
//! folder before that position without listing it, and every object up to it. A crash between
//! the state commit and the checkpoint makes the next run redo that batch, which is harmless:
//! baselines are idempotent and findings keep their ids, so it only publishes them again. A
//! transient failure that outlasts the SDK's retries and this module's own ([`FETCH_ROUNDS`]),
//! or an interrupt (SIGINT/SIGTERM, checked between batches), stops the run with the checkpoint
//! intact; a permanently unreadable object (missing, SSE-C, over the cap) is quarantined and the
//! run goes on.
//!
//! Built from the seams: the listing and fetch of [`crate::source::s3`], the pipeline's [`Driver`]
//! (decoding on the rayon pool, awaited from tokio) and [`Collector`] (the stateful passes, on
//! tokio's blocking threads because they commit to the store), a [`Publisher`] for
//! `--publish`, and [`crate::sink::enqueue`] for `--enqueue`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use crate::event::time::Millis;
use crate::finding::Finding;
use crate::pipeline::{Collector, Driver, DriverError, Input, ScanResult, BATCH_FILES};
use crate::progress::{Progress, Snapshot};
use crate::sink::dedup::{PublishError, Published};
use crate::sink::enqueue::{self, EnqueueError, KEYS_PER_MESSAGE};
use crate::sink::Publisher;
use crate::source::layout::{self, Filters, S3Location};
use crate::source::s3::{get_object, FetchError, FetchProblem, ListError, Listed, Lister, Root};
use crate::store::session::Session;
use crate::store::{StateError, StateStore, Table, Write};

/// Attempts per object (each with the SDK's own retries) before a run stops.
pub const FETCH_ROUNDS: u32 = 3;

/// Batches downloading ahead of the one being decoded.
pub const PREFETCH_BATCHES: usize = 2;

/// Errors that stop a run.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// Listing failed.
    #[error("listing the trail bucket failed")]
    List(#[from] ListError),
    /// An object could not be fetched after every retry.
    #[error("cannot fetch an object; the run stopped after the last finished batch, and the same command resumes it")]
    Fetch(#[source] FetchError),
    /// A download task died (its object would be lost, so the run stops).
    #[error("a download task failed; the same command resumes after the last finished batch")]
    Download(#[source] tokio::task::JoinError),
    /// The state store failed.
    #[error("state")]
    State(#[from] StateError),
    /// A decode or state task ended without an answer.
    #[error(transparent)]
    Task(#[from] DriverError),
    /// Publishing failed.
    #[error("publishing; the same command resumes after the last finished batch")]
    Publish(#[source] PublishError),
    /// SIGINT or SIGTERM.
    #[error("interrupted; the same command resumes after the last finished batch")]
    Interrupted,
    /// Sending to the queue failed.
    #[error("enqueueing; the same command resumes after the last message sent")]
    Enqueue(#[source] EnqueueError),
}

/// What to read.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Where.
    pub locations: Vec<S3Location>,
    /// Account and region filters.
    pub filters: Filters,
    /// Events at or after this time (ms), a replay's warm-up included.
    pub since: Millis,
    /// Events before this time (ms).
    pub until: Millis,
    /// Delivery slack around the window for object names.
    pub slack: Millis,
}

/// A position in the run's order: day folder, delivery time in the name, object URL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    /// Days since 1970-01-01 of the folder the object was listed from.
    pub day: i64,
    /// The delivery time in its name.
    pub name_time: Option<u64>,
    /// `s3://bucket/key`.
    pub object: String,
}

/// A saved checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// What the run reads (for people reading the state file).
    pub source: String,
    /// Everything up to here is done.
    pub after: Position,
    /// Objects done so far, over every resumed run.
    pub objects: u64,
}

/// Where a run keeps its checkpoint.
#[derive(Debug, Clone)]
pub struct Resume {
    /// The key in [`Table::Checkpoint`].
    pub key: String,
    /// The checkpoint found when the run started.
    pub from: Option<Checkpoint>,
}

impl Resume {
    /// Reads the checkpoint for `arguments` (the command's own words, so that the same
    /// command resumes even with relative times).
    pub fn load(store: &dyn StateStore, command: &str, arguments: &[String]) -> Result<Resume, StateError> {
        let mut hasher = Sha256::new();
        for argument in arguments {
            hasher.update(argument.as_bytes());
            hasher.update([0]);
        }
        let digest = hasher.finalize();
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let key = format!("{command}/{hex}");
        let from = match store.get_many(Table::Checkpoint, std::slice::from_ref(&key))?.pop().flatten() {
            Some(item) => Some(serde_json::from_str(&item.value).map_err(|e| StateError::Corrupt {
                table: Table::Checkpoint.name(),
                key: key.clone(),
                reason: e.to_string(),
            })?),
            None => None,
        };
        Ok(Resume { key, from })
    }

    /// The checkpoint write: everything of `selection` up to `after` is done, `objects` in all.
    fn write(&self, selection: &Selection, after: Position, objects: u64) -> Write {
        let day = after.day;
        let source = selection.locations.iter().map(S3Location::url).collect::<Vec<_>>().join(" ");
        let value = serde_json::to_string(&Checkpoint { source, after, objects }).unwrap_or_default();
        Write::put(Table::Checkpoint, self.key.clone(), value, None, day)
    }
}

/// What a run did besides its findings.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunStats {
    /// `ListObjectsV2` requests (pages).
    pub list_requests: u64,
    /// Log objects listed.
    pub listed: u64,
    /// Objects of the listed day folders selected for the window (after the name-time filter).
    pub selected: u64,
    /// Of those, objects skipped because an earlier run finished them.
    pub skipped: u64,
    /// Objects an earlier run of the same command finished (from its checkpoint).
    pub done_before: u64,
    /// Alerts published.
    pub published: u64,
    /// Alerts the dedup record already had.
    pub suppressed: u64,
    /// Queue messages sent (`--enqueue`).
    pub messages: u64,
}

impl RunStats {
    /// Objects of the window this run had to do (selected, less those done before).
    pub fn to_do(&self) -> u64 {
        self.selected - self.skipped
    }
}

/// How to process.
pub struct Processing<'p> {
    /// The S3 client.
    pub s3: &'p aws_sdk_s3::Client,
    /// Inspection on the rayon pool.
    pub driver: &'p Driver,
    /// Findings before this time are warm-up (a replay's).
    pub report_since: Option<Millis>,
    /// Objects downloaded at once.
    pub concurrency: usize,
    /// Where new findings are published (`--publish`), if anywhere.
    pub sink: Option<&'p Publisher>,
    /// Set when the run should stop after the batch in progress (SIGINT, SIGTERM).
    pub interrupted: &'p AtomicBool,
}

/// What a run gives back: what its finished batches found, its counters, the error that
/// stopped it (if one did), and the session for the caller to close.
pub struct Processed {
    /// Findings and totals of the finished batches.
    pub result: ScanResult,
    /// Listing and publishing counters.
    pub stats: RunStats,
    /// Why the run stopped early.
    pub stopped: Option<BackfillError>,
    /// The state after the last finished batch.
    pub session: Session,
}

/// A sorted stream of the selected objects, listed a day at a time by a task.
struct Stream {
    receiver: mpsc::Receiver<Result<(Position, Listed), ListError>>,
    lister: Lister,
    selected: Arc<AtomicU64>,
    skipped: Arc<AtomicU64>,
}

impl Stream {
    /// Starts listing on the current runtime.
    fn start(s3: &aws_sdk_s3::Client, selection: &Selection, after: Option<Position>) -> Stream {
        let (sender, receiver) = mpsc::channel(4 * BATCH_FILES);
        let lister = Lister::new(s3.clone());
        let stream = Stream { receiver, lister: lister.clone(), selected: Arc::default(), skipped: Arc::default() };
        let counters = (stream.selected.clone(), stream.skipped.clone());
        let selection = selection.clone();
        tokio::spawn(async move {
            if let Err(error) = produce(&lister, &selection, after, &sender, counters).await {
                let _ = sender.send(Err(error)).await;
            }
        });
        stream
    }

    /// The next batch (empty at the end).
    async fn next_batch(&mut self, size: usize) -> Result<Vec<(Position, Listed)>, BackfillError> {
        let mut batch = Vec::with_capacity(size);
        while batch.len() < size {
            match self.receiver.recv().await {
                Some(item) => batch.push(item?),
                None => break,
            }
        }
        Ok(batch)
    }

    fn stats(&self) -> RunStats {
        RunStats {
            list_requests: self.lister.requests(),
            listed: self.lister.listed(),
            selected: self.selected.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            ..RunStats::default()
        }
    }
}

/// Lists the selection day by day and sends its objects in order.
async fn produce(
    lister: &Lister,
    selection: &Selection,
    after: Option<Position>,
    sender: &mpsc::Sender<Result<(Position, Listed), ListError>>,
    (selected, skipped): (Arc<AtomicU64>, Arc<AtomicU64>),
) -> Result<(), ListError> {
    let Selection { since, until, slack, .. } = *selection;
    let roots = lister.roots(&selection.locations, &selection.filters).await?;
    let days = layout::days(since, until, slack);
    let first_day = days.first().map(|(day, _)| *day).unwrap_or(0);
    // Whole prefixes are listed at once and their objects filed under the day of their name.
    let mut whole: BTreeMap<i64, Vec<Listed>> = BTreeMap::new();
    for root in &roots {
        if let Root::Whole { bucket, prefix } = root {
            for object in lister.objects(bucket, prefix).await? {
                let day = object.name_time.and_then(layout::name_day).unwrap_or(first_day).max(first_day);
                whole.entry(day).or_default().push(object);
            }
        }
    }
    for (day, folder) in days {
        if after.as_ref().is_some_and(|a| day < a.day) {
            continue;
        }
        let mut objects = lister.day(&roots, &folder).await?;
        objects.extend(whole.remove(&day).unwrap_or_default());
        let mut positioned: Vec<(Position, Listed)> = objects
            .into_iter()
            .filter(|o| layout::in_window(&o.key, since, until, slack))
            .map(|o| (Position { day, name_time: o.name_time, object: o.url() }, o))
            .collect();
        positioned.sort_by(|a, b| a.0.cmp(&b.0));
        positioned.dedup_by(|a, b| a.0 == b.0);
        selected.fetch_add(positioned.len() as u64, Relaxed);
        for (position, object) in positioned {
            if after.as_ref().is_some_and(|a| position <= *a) {
                skipped.fetch_add(1, Relaxed);
                continue;
            }
            if sender.send(Ok((position, object))).await.is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// An object of a batch and what downloading it gave.
type Fetched = (Position, Listed, Result<Vec<u8>, FetchError>);

/// Downloads a batch, as many objects at once as `limit` allows, retrying transient failures
/// [`FETCH_ROUNDS`] times. Once one object has failed for good the run stops, so the rest of
/// its batch are not tried ([`FetchProblem::NotTried`]).
async fn fetch_batch(
    s3: aws_sdk_s3::Client,
    batch: Vec<(Position, Listed)>,
    limit: Arc<Semaphore>,
    cap: u64,
) -> Result<Vec<Fetched>, BackfillError> {
    let given_up = Arc::new(AtomicBool::new(false));
    let mut tasks = JoinSet::new();
    for (index, (position, object)) in batch.into_iter().enumerate() {
        let (s3, limit, given_up) = (s3.clone(), limit.clone(), given_up.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire().await;
            let mut round = 1;
            let result = loop {
                if given_up.load(Relaxed) {
                    break Err(FetchError::new(&object.bucket, &object.key, FetchProblem::NotTried, None));
                }
                match get_object(&s3, &object.bucket, &object.key, cap).await {
                    Err(error) if error.is_transient() && round < FETCH_ROUNDS => {
                        tokio::time::sleep(Duration::from_secs(1 << (round - 1))).await;
                        round += 1;
                    }
                    Err(error) if error.is_transient() => {
                        given_up.store(true, Relaxed);
                        break Err(error);
                    }
                    other => break other,
                }
            };
            (index, (position, object, result))
        });
    }
    let mut fetched = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        // A task that died loses its object: stop rather than go on without it.
        fetched.push(joined.map_err(BackfillError::Download)?);
    }
    fetched.sort_by_key(|(index, _)| *index);
    Ok(fetched.into_iter().map(|(_, fetched)| fetched).collect())
}

/// Reads the selection, runs the pipeline over it batch by batch, and publishes each batch's
/// new or grown findings. A run that stops early still returns what its finished batches
/// found, with the error.
pub async fn process(
    selection: &Selection,
    processing: &Processing<'_>,
    session: Session,
    resume: Option<&Resume>,
    progress: &mut Progress,
) -> Processed {
    let from = resume.and_then(|r| r.from.clone());
    let done_before = from.as_ref().map_or(0, |c| c.objects);
    let mut run = Run {
        selection,
        resume,
        done_before,
        stream: Stream::start(processing.s3, selection, from.map(|c| c.after)),
        collector: Some(Collector::new(processing.report_since)),
        session: Some(session),
        published: Published::default(),
        snapshot: Snapshot::default(),
    };
    let stopped = run.all_batches(processing, progress).await.err();
    progress.finish(&run.snapshot, stopped.is_none());
    let stats = RunStats {
        published: run.published.sent,
        suppressed: run.published.suppressed,
        done_before,
        ..run.stream.stats()
    };
    // Both are put back after every batch; only a panic in a blocking task loses them.
    let session = run.session.take().unwrap_or_else(|| Session::in_memory(Default::default()));
    let result = run.collector.take().map(Collector::finish).unwrap_or_default();
    Processed { result, stats, stopped, session }
}

/// A run in progress.
struct Run<'r> {
    selection: &'r Selection,
    resume: Option<&'r Resume>,
    /// Objects earlier runs of the command finished.
    done_before: u64,
    stream: Stream,
    /// Moved into the blocking task of each batch and back.
    collector: Option<Collector>,
    /// Moved into the blocking task of each batch and back.
    session: Option<Session>,
    published: Published,
    snapshot: Snapshot,
}

impl Run<'_> {
    async fn all_batches(&mut self, processing: &Processing<'_>, progress: &mut Progress) -> Result<(), BackfillError> {
        let cap = processing.driver.inspection().limits.max_object_bytes;
        // One limit across batches: the next batches' downloads take over connections as soon
        // as this batch's slowest objects release them.
        let limit = Arc::new(Semaphore::new(processing.concurrency.max(1)));
        let mut pending: VecDeque<JoinHandle<Result<Vec<Fetched>, BackfillError>>> = VecDeque::new();
        let abort_all = |pending: &VecDeque<JoinHandle<_>>| pending.iter().for_each(JoinHandle::abort);
        loop {
            // Keep the batch being decoded plus PREFETCH_BATCHES downloading.
            while pending.len() <= PREFETCH_BATCHES {
                let batch = self.stream.next_batch(BATCH_FILES).await?;
                if batch.is_empty() {
                    break;
                }
                pending.push_back(tokio::spawn(fetch_batch(processing.s3.clone(), batch, limit.clone(), cap)));
            }
            let Some(handle) = pending.pop_front() else { break };
            if processing.interrupted.load(Relaxed) {
                handle.abort();
                abort_all(&pending);
                return Err(BackfillError::Interrupted);
            }
            let fetched = handle.await.map_err(BackfillError::Download)??;
            let inputs = match inputs(fetched) {
                Ok(inputs) => inputs,
                Err(error) => {
                    abort_all(&pending);
                    return Err(BackfillError::Fetch(error));
                }
            };
            let Some(last) = inputs.last().map(|(position, _)| position.clone()) else { continue };
            let outcomes = processing.driver.inspect(inputs.into_iter().map(|(_, input)| input).collect()).await?;
            let changed = self.advance(outcomes).await?;
            if let Some(sink) = processing.sink {
                let published = sink.publish(&changed).await.map_err(BackfillError::Publish)?;
                self.published.sent += published.sent;
                self.published.suppressed += published.suppressed;
            }
            self.checkpoint(&last).await?;
            let collector = self.collector.as_ref().map(|c| &c.result);
            let (totals, findings) = collector.map(|r| (r.totals.clone(), r.findings.len())).unwrap_or_default();
            self.snapshot = Snapshot {
                listed: self.stream.selected.load(Relaxed),
                done: totals.files,
                json_bytes: totals.json_bytes,
                events: totals.events,
                findings: findings as u64,
                reached: last.name_time.and_then(layout::name_millis),
            };
            progress.update(&self.snapshot);
        }
        Ok(())
    }

    /// Runs the stateful passes over a batch (they may commit to the store, so off the
    /// runtime's threads) and returns the findings it reported or grew.
    async fn advance(&mut self, outcomes: Vec<crate::pipeline::ObjectOutcome>) -> Result<Vec<Finding>, BackfillError> {
        let (Some(mut collector), Some(mut session)) = (self.collector.take(), self.session.take()) else {
            return Ok(Vec::new());
        };
        let (collector, session, changed) = Driver::blocking(move || {
            let changed = collector.add_batch(outcomes, &mut session);
            (collector, session, changed)
        })
        .await?;
        self.collector = Some(collector);
        self.session = Some(session);
        Ok(changed?)
    }

    /// After a batch's state commit and publish: everything up to `last` is done.
    async fn checkpoint(&self, last: &Position) -> Result<(), BackfillError> {
        let Some(session) = self.session.as_ref().filter(|s| s.writes()) else { return Ok(()) };
        let (Some(store), Some(resume)) = (session.store().cloned(), self.resume) else { return Ok(()) };
        let files = self.collector.as_ref().map_or(0, |c| c.result.totals.files);
        let write = resume.write(self.selection, last.clone(), self.done_before + files);
        Driver::blocking(move || store.commit(vec![write])).await??;
        Ok(())
    }
}

/// The pipeline's inputs for a downloaded batch, in order. A transient failure stops the run;
/// the error reported is the object that failed, not one left untried because of it.
fn inputs(fetched: Vec<Fetched>) -> Result<Vec<(Position, Input)>, FetchError> {
    let mut inputs = Vec::with_capacity(fetched.len());
    let mut failure: Option<FetchError> = None;
    for (position, object, result) in fetched {
        let origin = object.url();
        match result {
            Ok(bytes) => inputs.push((position, Input::Bytes { origin, bytes })),
            Err(error) if error.is_transient() => {
                if failure.as_ref().is_none_or(|f| f.problem == FetchProblem::NotTried) {
                    failure = Some(error);
                }
            }
            Err(error) => inputs.push((position, Input::Unreadable { origin, reason: error.problem.to_string() })),
        }
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(inputs),
    }
}

/// Sends the selection's object keys to `queue_url` in CloudTrail's own notification format,
/// in order. With `resume`, each call records a checkpoint.
pub async fn enqueue(
    clients: &crate::aws::Clients,
    selection: &Selection,
    queue_url: &str,
    store_and_resume: Option<(Arc<dyn StateStore>, &Resume)>,
    progress: &mut Progress,
) -> Result<RunStats, BackfillError> {
    let from = store_and_resume.as_ref().and_then(|(_, r)| r.from.clone());
    let done_before = from.as_ref().map_or(0, |c| c.objects);
    let mut stream = Stream::start(&clients.s3, selection, from.map(|c| c.after));
    let mut messages = 0;
    let mut snapshot = Snapshot::default();
    loop {
        let batch = stream.next_batch(KEYS_PER_MESSAGE * 10).await?;
        let Some(last) = batch.last().map(|(position, _)| position.clone()) else { break };
        let bodies = enqueue::notification_bodies(batch.iter().map(|(_, object)| object));
        enqueue::send(&clients.sqs, queue_url, &bodies).await.map_err(BackfillError::Enqueue)?;
        messages += bodies.len() as u64;
        snapshot = Snapshot {
            listed: stream.selected.load(Relaxed),
            done: snapshot.done + batch.len() as u64,
            reached: last.name_time.and_then(layout::name_millis),
            ..snapshot
        };
        if let Some((store, resume)) = &store_and_resume {
            let (store, write) = (store.clone(), resume.write(selection, last, done_before + snapshot.done));
            Driver::blocking(move || store.commit(vec![write])).await??;
        }
        progress.update(&snapshot);
    }
    progress.finish(&snapshot, true);
    Ok(RunStats { messages, done_before, ..stream.stats() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_by_day_then_name_time_then_object() {
        let at = |day, name_time, object: &str| Position { day, name_time, object: object.into() };
        let mut positions = vec![
            at(2, Some(1), "s3://b/a"),
            at(1, Some(9), "s3://b/z"),
            at(1, Some(9), "s3://b/a"),
            at(1, None, "s3://b/q"),
        ];
        positions.sort();
        assert_eq!(
            positions,
            [
                at(1, None, "s3://b/q"),
                at(1, Some(9), "s3://b/a"),
                at(1, Some(9), "s3://b/z"),
                at(2, Some(1), "s3://b/a")
            ]
        );
    }
}
