//! Reading a window of a trail bucket straight from S3: `backfill` (warm the state, optionally
//! publish), `replay s3://…` (an incident window, nothing changed), and `backfill --enqueue`
//! (hand the object list to the worker fleet). SPEC §5, §6.
//!
//! The objects of the window are listed a day at a time ([`list`]), ordered as `scan` orders
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

pub mod list;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use crate::aws::{error_text, get_object, FetchError};
use crate::decode::Decoder;
use crate::detect::{Engine, Finding, Mode};
use crate::event::time::Millis;
use crate::layout::{self, Filters, S3Location};
use crate::progress::{Progress, Snapshot};
use crate::scan::{inspect_planned, Collector, ObjectOutcome, ScanPlan, ScanResult, BATCH_FILES};
use crate::state::persist::Session;
use crate::state::{StateError, StateStore, Table, Write};
use list::{Listed, Lister, Root};

/// Attempts per object (each with the SDK's own retries) before a run stops.
pub const FETCH_ROUNDS: u32 = 3;

/// The default delivery slack: objects named up to this long outside the window are read,
/// because CloudTrail delivers an event's file minutes after the event.
pub const DEFAULT_SLACK: Millis = 60 * 60_000;

const NOT_TRIED: &str = "not tried";

/// Batches downloading ahead of the one being decoded.
pub const PREFETCH_BATCHES: usize = 2;

/// Keys per queue message with `--enqueue`: a failed object makes the worker retry only a few.
pub const KEYS_PER_MESSAGE: usize = 10;

/// Errors that stop a run.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// Listing failed.
    #[error("{0}")]
    List(String),
    /// An object could not be fetched after every retry.
    #[error(
        "cannot fetch {url}: {reason}; the run stopped after the last finished batch, and the same command resumes it"
    )]
    Fetch {
        /// The object.
        url: String,
        /// The last error.
        reason: String,
    },
    /// The state store failed.
    #[error("state: {0}")]
    State(#[from] StateError),
    /// Publishing failed.
    #[error("publishing: {0}; the same command resumes after the last finished batch")]
    Publish(String),
    /// SIGINT or SIGTERM.
    #[error("interrupted; the same command resumes after the last finished batch")]
    Interrupted,
    /// Sending to the queue failed.
    #[error("enqueueing: {0}; the same command resumes after the last message sent")]
    Enqueue(String),
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
    /// The runtime for downloads and listings.
    pub runtime: &'p Runtime,
    /// The S3 client.
    pub s3: &'p aws_sdk_s3::Client,
    /// Window, limits, report start, event listing.
    pub plan: &'p ScanPlan,
    /// The engine.
    pub engine: &'p Engine,
    /// `backfill` or `replay`.
    pub mode: Mode,
    /// Objects downloaded at once.
    pub concurrency: usize,
    /// Set when the run should stop after the batch in progress (SIGINT, SIGTERM).
    pub interrupted: &'p std::sync::atomic::AtomicBool,
}

/// A sorted stream of the selected objects, listed a day at a time by a task on `runtime`.
struct Stream {
    receiver: mpsc::Receiver<Result<(Position, Listed), String>>,
    lister: Lister,
    selected: Arc<std::sync::atomic::AtomicU64>,
    skipped: Arc<std::sync::atomic::AtomicU64>,
}

impl Stream {
    fn start(runtime: &Runtime, s3: &aws_sdk_s3::Client, selection: &Selection, after: Option<Position>) -> Stream {
        let (sender, receiver) = mpsc::channel(4 * BATCH_FILES);
        let lister = Lister::new(s3.clone());
        let stream = Stream { receiver, lister: lister.clone(), selected: Arc::default(), skipped: Arc::default() };
        let counters = (stream.selected.clone(), stream.skipped.clone());
        let selection = selection.clone();
        runtime.spawn(async move {
            if let Err(error) = produce(&lister, &selection, after, &sender, counters).await {
                let _ = sender.send(Err(error)).await;
            }
        });
        stream
    }

    /// The next batch (empty at the end). Call outside the runtime.
    fn next_batch(&mut self, size: usize) -> Result<Vec<(Position, Listed)>, BackfillError> {
        let mut batch = Vec::with_capacity(size);
        while batch.len() < size {
            match self.receiver.blocking_recv() {
                Some(Ok(item)) => batch.push(item),
                Some(Err(error)) => return Err(BackfillError::List(error)),
                None => break,
            }
        }
        Ok(batch)
    }

    fn stats(&self) -> RunStats {
        use std::sync::atomic::Ordering::Relaxed;
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
    sender: &mpsc::Sender<Result<(Position, Listed), String>>,
    (selected, skipped): (Arc<std::sync::atomic::AtomicU64>, Arc<std::sync::atomic::AtomicU64>),
) -> Result<(), String> {
    use std::sync::atomic::Ordering::Relaxed;
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

/// Downloads a batch, as many objects at once as `limit` allows, retrying transient failures.
async fn fetch_batch(
    s3: aws_sdk_s3::Client,
    batch: Vec<(Position, Listed)>,
    limit: Arc<Semaphore>,
    cap: u64,
) -> Result<Vec<(Position, Listed, Result<Vec<u8>, FetchError>)>, BackfillError> {
    // Once one object has failed for good the run stops, so the rest are not tried.
    let given_up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = JoinSet::new();
    for (index, (position, object)) in batch.into_iter().enumerate() {
        let (s3, limit, given_up) = (s3.clone(), limit.clone(), given_up.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire().await;
            let mut round = 1;
            let result = loop {
                if given_up.load(std::sync::atomic::Ordering::Relaxed) {
                    break Err(FetchError::Transient(format!("{NOT_TRIED}: another object of its batch failed")));
                }
                match get_object(&s3, &object.bucket, &object.key, cap).await {
                    Err(FetchError::Transient(_)) if round < FETCH_ROUNDS => {
                        tokio::time::sleep(Duration::from_secs(1 << (round - 1))).await;
                        round += 1;
                    }
                    Err(FetchError::Transient(reason)) => {
                        given_up.store(true, std::sync::atomic::Ordering::Relaxed);
                        break Err(FetchError::Transient(reason));
                    }
                    other => break other,
                }
            };
            (index, position, object, result)
        });
    }
    let mut fetched = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        // A task that died loses its object: stop rather than go on without it.
        let done = joined.map_err(|e| BackfillError::Fetch { url: "(a batch)".into(), reason: e.to_string() })?;
        fetched.push(done);
    }
    fetched.sort_by_key(|(index, ..)| *index);
    Ok(fetched.into_iter().map(|(_, position, object, result)| (position, object, result)).collect())
}

/// Reads the selection, runs the pipeline over it, and hands each batch's new or grown
/// findings to `publish`. Runs on the current rayon pool; the processing's runtime does the I/O.
/// A run that stops early still returns what its finished batches found, with the error.
pub fn process(
    selection: &Selection,
    processing: &Processing<'_>,
    session: &mut Session<'_>,
    resume: Option<&Resume>,
    progress: &mut Progress,
    publish: &mut dyn FnMut(&[Finding]) -> Result<u64, String>,
) -> (ScanResult, RunStats, Option<BackfillError>) {
    let from = resume.and_then(|r| r.from.clone());
    let done_before = from.as_ref().map_or(0, |c| c.objects);
    let mut run = Run {
        selection,
        resume,
        done_before,
        stream: Stream::start(processing.runtime, processing.s3, selection, from.map(|c| c.after)),
        collector: Collector::new(processing.plan.report_since),
        published: 0,
        snapshot: Snapshot::default(),
    };
    let error = run.all_batches(processing, session, progress, publish).err();
    progress.finish(&run.snapshot, error.is_none());
    let stats = RunStats { published: run.published, done_before, ..run.stream.stats() };
    (run.collector.finish(), stats, error)
}

/// A run in progress.
struct Run<'r> {
    selection: &'r Selection,
    resume: Option<&'r Resume>,
    /// Objects earlier runs of the command finished.
    done_before: u64,
    stream: Stream,
    collector: Collector,
    published: u64,
    snapshot: Snapshot,
}

impl Run<'_> {
    fn all_batches(
        &mut self,
        processing: &Processing<'_>,
        session: &mut Session<'_>,
        progress: &mut Progress,
        publish: &mut dyn FnMut(&[Finding]) -> Result<u64, String>,
    ) -> Result<(), BackfillError> {
        let (runtime, s3) = (processing.runtime, processing.s3);
        let cap = processing.plan.limits.max_object_bytes;
        // One limit across batches: the next batches' downloads take over connections as soon
        // as this batch's slowest objects release them.
        let limit = Arc::new(Semaphore::new(processing.concurrency.max(1)));
        let mut pending = VecDeque::new();
        loop {
            // Keep the batch being decoded plus PREFETCH_BATCHES downloading.
            while pending.len() <= PREFETCH_BATCHES {
                let batch = self.stream.next_batch(BATCH_FILES)?;
                if batch.is_empty() {
                    break;
                }
                pending.push_back(runtime.spawn(fetch_batch(s3.clone(), batch, limit.clone(), cap)));
            }
            let Some(handle) = pending.pop_front() else { break };
            if processing.interrupted.load(std::sync::atomic::Ordering::Relaxed) {
                pending.iter().chain([&handle]).for_each(|h| h.abort());
                return Err(BackfillError::Interrupted);
            }
            let fetched = runtime.block_on(handle).map_err(|e| BackfillError::Fetch {
                url: "(a batch)".into(),
                reason: format!("download task failed: {e}"),
            })??;
            let failures = fetched.iter().filter_map(|(_, object, result)| match result {
                Err(FetchError::Transient(reason)) => Some((object, reason)),
                _ => None,
            });
            // Report the object that failed, not one left untried because of it.
            if let Some((object, reason)) = failures.min_by_key(|(_, reason)| reason.starts_with(NOT_TRIED)) {
                pending.iter().for_each(|h| h.abort());
                return Err(BackfillError::Fetch { url: object.url(), reason: reason.clone() });
            }
            let Some(last) = fetched.last().map(|(position, ..)| position.clone()) else { continue };
            let outcomes = inspect_batch(fetched, processing);
            let changed = self.collector.add_batch(outcomes, session)?;
            self.published += publish(&changed).map_err(BackfillError::Publish)?;
            if let Some((store, resume)) = session.store().zip(self.resume).filter(|_| session.writes()) {
                let objects = self.done_before + self.collector.result.totals.files;
                store.commit(vec![resume.write(self.selection, last.clone(), objects)])?;
            }
            let totals = &self.collector.result.totals;
            self.snapshot = Snapshot {
                listed: self.stream.selected.load(std::sync::atomic::Ordering::Relaxed),
                done: totals.files,
                json_bytes: totals.json_bytes,
                events: totals.events,
                findings: self.collector.result.findings.len() as u64,
                reached: last.name_time.and_then(layout::name_millis),
            };
            progress.update(&self.snapshot);
        }
        Ok(())
    }
}

/// Decodes and inspects a downloaded batch on the rayon pool.
fn inspect_batch(
    fetched: Vec<(Position, Listed, Result<Vec<u8>, FetchError>)>,
    processing: &Processing<'_>,
) -> Vec<ObjectOutcome> {
    let Processing { plan, engine, mode, .. } = *processing;
    fetched
        .into_par_iter()
        .map_init(
            || Decoder::new(plan.limits),
            |decoder, (_, object, result)| {
                let url = object.url();
                match result {
                    Ok(bytes) => ObjectOutcome::inspected(
                        url.clone(),
                        inspect_planned(decoder, &bytes, &url, plan, engine, mode),
                    ),
                    Err(FetchError::Unreadable(reason) | FetchError::Transient(reason)) => {
                        ObjectOutcome::quarantined(url, reason, mode)
                    }
                }
            },
        )
        .collect()
}

/// Sends the selection's object keys to `queue_url` in CloudTrail's own notification format
/// (`{"s3Bucket": …, "s3ObjectKey": [...]}`), [`KEYS_PER_MESSAGE`] keys per message and ten
/// messages per `SendMessageBatch`, in order. With `resume`, each call records a checkpoint.
pub fn enqueue(
    runtime: &Runtime,
    clients: &crate::aws::Clients,
    selection: &Selection,
    queue_url: &str,
    store_and_resume: Option<(&dyn StateStore, &Resume)>,
    progress: &mut Progress,
) -> Result<RunStats, BackfillError> {
    let from = store_and_resume.and_then(|(_, r)| r.from.clone());
    let done_before = from.as_ref().map_or(0, |c| c.objects);
    let mut stream = Stream::start(runtime, &clients.s3, selection, from.map(|c| c.after));
    let fifo = queue_url.ends_with(".fifo");
    let mut messages = 0;
    let mut snapshot = Snapshot::default();
    loop {
        let batch = stream.next_batch(KEYS_PER_MESSAGE * 10)?;
        let Some(last) = batch.last().map(|(position, _)| position.clone()) else { break };
        let bodies = notification_bodies(&batch);
        let entries = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| message_entry(i, body, fifo))
            .collect::<Result<Vec<_>, String>>()
            .map_err(BackfillError::Enqueue)?;
        let sent =
            runtime.block_on(clients.sqs.send_message_batch().queue_url(queue_url).set_entries(Some(entries)).send());
        let output = sent.map_err(|e| BackfillError::Enqueue(error_text(&e)))?;
        if let Some(failed) = output.failed().first() {
            return Err(BackfillError::Enqueue(format!(
                "SQS refused {} message(s): {} {}",
                output.failed().len(),
                failed.code(),
                failed.message().unwrap_or("")
            )));
        }
        messages += bodies.len() as u64;
        snapshot = Snapshot {
            listed: stream.selected.load(std::sync::atomic::Ordering::Relaxed),
            done: snapshot.done + batch.len() as u64,
            reached: last.name_time.and_then(layout::name_millis),
            ..snapshot
        };
        if let Some((store, resume)) = store_and_resume {
            store.commit(vec![resume.write(selection, last, done_before + snapshot.done)])?;
        }
        progress.update(&snapshot);
    }
    progress.finish(&snapshot, true);
    Ok(RunStats { messages, done_before, ..stream.stats() })
}

/// Message bodies for a run of objects: consecutive keys of one bucket share a message.
pub fn notification_bodies(batch: &[(Position, Listed)]) -> Vec<String> {
    let mut bodies = Vec::new();
    let mut start = 0;
    while start < batch.len() {
        let bucket = &batch[start].1.bucket;
        let mut end = start;
        while end < batch.len() && end - start < KEYS_PER_MESSAGE && batch[end].1.bucket == *bucket {
            end += 1;
        }
        let keys: Vec<&str> = batch[start..end].iter().map(|(_, o)| o.key.as_str()).collect();
        bodies.push(serde_json::json!({ "s3Bucket": bucket, "s3ObjectKey": keys }).to_string());
        start = end;
    }
    bodies
}

fn message_entry(
    index: usize,
    body: &str,
    fifo: bool,
) -> Result<aws_sdk_sqs::types::SendMessageBatchRequestEntry, String> {
    let mut entry =
        aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder().id(format!("m{index}")).message_body(body);
    if fifo {
        let digest = Sha256::digest(body.as_bytes());
        let dedup: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        entry = entry.message_group_id("trailhound-backfill").message_deduplication_id(dedup);
    }
    entry.build().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{self, Notification, Target};

    fn listed(bucket: &str, key: &str) -> (Position, Listed) {
        let object = Listed { bucket: bucket.into(), key: key.into(), name_time: None };
        (Position { day: 0, name_time: None, object: object.url() }, object)
    }

    #[test]
    fn enqueued_bodies_are_notifications_the_worker_understands() {
        let mut batch: Vec<_> = (0..12).map(|i| listed("trail-a", &format!("AWSLogs/k{i}.json.gz"))).collect();
        batch.push(listed("trail-b", "AWSLogs/x y+ü.json.gz"));
        let bodies = notification_bodies(&batch);
        assert_eq!(bodies.len(), 3, "10 + 2 keys of one bucket, then the other bucket");
        let mut keys = Vec::new();
        for body in &bodies {
            let Ok(Notification::Objects(targets)) = notify::parse(body) else { panic!("not understood: {body}") };
            for target in targets {
                let Target::Inspect(object) = target else { panic!("not inspected: {target:?}") };
                keys.push(format!("{}/{}", object.bucket, object.key));
            }
        }
        let expected: Vec<String> = batch.iter().map(|(_, o)| format!("{}/{}", o.bucket, o.key)).collect();
        assert_eq!(keys, expected, "every key once, in order, unencoded");
    }

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
