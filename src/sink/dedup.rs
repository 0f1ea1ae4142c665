//! The publish threshold and the dedup record, as one wrapper over any [`Sink`].
//!
//! Only findings at or above the threshold are published. The dedup record (`dedup/<finding
//! id>:<count>` in the state store, kept for a TTL) remembers what was published, so a
//! redelivered message, a second backfill or another worker on the same state does not page
//! twice; a finding that grew (more objects) has a new count and is new.
//!
//! Workers that share a store (a fleet on DynamoDB) may conclude the same finding at the same
//! time (the same event in two objects). So a finding is first **claimed**: a conditional put of
//! its record (`claim <worker>`, expiring after [`CLAIM_LEASE`]) that only one worker wins; the
//! winner delivers and then marks the record sent (`1`, kept for the TTL). A worker that finds
//! another's live claim delivers the rest and reports [`PublishError::Claimed`], so its message
//! is retried later rather than acknowledged: if the claimant dies before delivering, its
//! claim expires and the retry publishes (duplicates over losses). A failed delivery releases
//! its claims. Within one process the same steps are also serialized by a lock.

use std::sync::Arc;
use std::time::Duration;

use super::{Sink, SinkError};
use crate::finding::{Finding, Severity};
use crate::pipeline::{Driver, DriverError};
use crate::store::{Evict, Expect, StateError, StateStore, Table, Write};

/// What a publication did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Findings delivered to the sink.
    pub sent: u64,
    /// Findings at or above the threshold that the dedup record already had.
    pub suppressed: u64,
}

/// A publication failed; what was recorded before the failure stays recorded.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The sink refused or failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The dedup record could not be read or written.
    #[error("dedup record")]
    Store(#[from] StateError),
    /// The store task failed.
    #[error("dedup record")]
    Task(#[from] DriverError),
    /// Another worker holds a live claim on some findings: retry later.
    #[error("{count} finding(s) are being published by another worker; retry later")]
    Claimed {
        /// How many.
        count: usize,
    },
}

/// How long a claim keeps other workers from publishing a finding (delivery takes seconds).
pub const CLAIM_LEASE: Duration = Duration::from_secs(30);
/// The record of a finding that was delivered.
const SENT: &str = "1";

/// Where a finding stands in the dedup record.
enum Standing {
    /// Delivered already.
    Sent,
    /// Nobody has it: claim it expecting this.
    Free(Expect),
    /// Claimed by another worker, and the claim is live.
    Theirs,
}

/// The dedup key of a finding: its id and evidence count.
pub fn key(finding: &Finding) -> String {
    format!("{}:{}", finding.id, finding.evidence.count)
}

/// The record of a finding delivered to the sink named `sink`. SNS keeps the unscoped key it
/// has always used, so state written by earlier versions still suppresses; every other sink has
/// its own (`securityhub/<id>:<count>`), so each sink gets each finding at least once.
pub fn record_key(sink: &str, finding: &Finding) -> String {
    match sink {
        "sns" => key(finding),
        other => format!("{other}/{}", key(finding)),
    }
}

/// A sink behind the publish threshold and (when a store is given) the dedup record.
pub struct Deduplicated<S> {
    sink: S,
    record: Option<Arc<dyn StateStore>>,
    threshold: Severity,
    ttl: Duration,
    clock: fn() -> i64,
    /// Serializes check → deliver → record (held across awaits, hence tokio's mutex).
    turn: tokio::sync::Mutex<()>,
    /// This publisher's name in its claims.
    owner: String,
}

impl<S: Sink> Deduplicated<S> {
    /// Wraps `sink`: findings at or above `threshold`, remembered in `record` for `ttl` of
    /// `clock` time. Without a record every finding at the threshold is delivered.
    pub fn new(
        sink: S,
        record: Option<Arc<dyn StateStore>>,
        threshold: Severity,
        ttl: Duration,
        clock: fn() -> i64,
    ) -> Deduplicated<S> {
        // Unique per publisher: the process, the time, and a counter within the process.
        static PUBLISHERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = PUBLISHERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let owner = format!("{}-{}-{n}", std::process::id(), clock());
        Deduplicated { sink, record, threshold, ttl, clock, turn: tokio::sync::Mutex::new(()), owner }
    }

    /// The wrapped sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Delivers the findings at or above the threshold that the record does not have, and
    /// records them.
    pub async fn publish(&self, findings: &[Finding]) -> Result<Published, PublishError> {
        let wanted: Vec<&Finding> = findings.iter().filter(|f| f.severity >= self.threshold).collect();
        if wanted.is_empty() {
            return Ok(Published::default());
        }
        let _turn = self.turn.lock().await;
        let Some(store) = self.record.clone() else {
            for chunk in wanted.chunks(self.sink.batch_size().max(1)) {
                self.sink.deliver(chunk).await?;
            }
            return Ok(Published { sent: wanted.len() as u64, suppressed: 0 });
        };
        let (claimed, suppressed, theirs) = self.claim(&store, wanted).await?;
        let mut published = Published { sent: 0, suppressed };
        for chunk in claimed.chunks(self.sink.batch_size().max(1)) {
            let findings: Vec<&Finding> = chunk.iter().map(|(f, _)| *f).collect();
            if let Err(error) = self.sink.deliver(&findings).await {
                self.release(&store, &claimed[published.sent as usize..]).await;
                return Err(error.into());
            }
            published.sent += chunk.len() as u64;
            self.mark_sent(&store, chunk).await?;
        }
        match theirs {
            0 => Ok(published),
            count => Err(PublishError::Claimed { count }),
        }
    }

    /// Claims the findings nobody has delivered or claimed; returns them with their claim's
    /// version, how many were delivered before, and how many another worker holds.
    async fn claim<'f>(
        &self,
        store: &Arc<dyn StateStore>,
        mut wanted: Vec<&'f Finding>,
    ) -> Result<(Vec<(&'f Finding, u64)>, u64, usize), PublishError> {
        let name = self.sink.name();
        let mut suppressed = 0;
        let mut theirs = 0;
        // One commit claims them all; a conflict (another worker got there first) means
        // re-reading, which settles the contested ones, and trying again with the rest.
        for _ in 0..8 {
            let keys: Vec<String> = wanted.iter().map(|f| record_key(name, f)).collect();
            let reader = store.clone();
            let read_keys = keys.clone();
            let records = Driver::blocking(move || reader.get_many(Table::Dedup, &read_keys)).await??;
            let now = (self.clock)();
            let mut free = Vec::new();
            for ((finding, key), item) in wanted.iter().zip(keys).zip(records) {
                match self.standing(item.as_ref(), now) {
                    Standing::Sent => suppressed += 1,
                    Standing::Theirs => theirs += 1,
                    Standing::Free(expect) => free.push((*finding, key, expect)),
                }
            }
            let writes: Vec<Write> = free
                .iter()
                .map(|(_, key, expect)| Write::Put {
                    table: Table::Dedup,
                    key: key.clone(),
                    value: format!("claim {}", self.owner),
                    expires_at: Some(now + CLAIM_LEASE.as_millis() as i64),
                    recency: now,
                    expect: *expect,
                })
                .collect();
            if writes.is_empty() {
                return Ok((Vec::new(), suppressed, theirs));
            }
            let writer = store.clone();
            match Driver::blocking(move || writer.commit(writes)).await? {
                Ok(()) => {
                    // Read the claims back and keep those that are still ours: a store whose
                    // conditional writes are not atomic under contention (the emulator in
                    // tests) may have let another worker's claim overwrite one of ours.
                    let reader = store.clone();
                    let keys: Vec<String> = free.iter().map(|(_, key, _)| key.clone()).collect();
                    let now_held = Driver::blocking(move || reader.get_many(Table::Dedup, &keys)).await??;
                    let mine = format!("claim {}", self.owner);
                    let mut claimed = Vec::with_capacity(free.len());
                    for ((finding, _, _), item) in free.into_iter().zip(now_held) {
                        match item {
                            Some(item) if item.value == mine => claimed.push((finding, item.version)),
                            _ => theirs += 1,
                        }
                    }
                    return Ok((claimed, suppressed, theirs));
                }
                Err(StateError::Conflict { .. }) => {
                    wanted = free.into_iter().map(|(f, _, _)| f).collect();
                    suppressed = 0;
                    theirs = 0;
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(PublishError::Claimed { count: wanted.len() })
    }

    fn standing(&self, item: Option<&crate::store::Item>, now: i64) -> Standing {
        let Some(item) = item else { return Standing::Free(Expect::Absent) };
        let live = item.expires_at.is_none_or(|at| at >= now);
        let ours = item.value == format!("claim {}", self.owner);
        match (item.value.as_str(), live) {
            (SENT, true) => Standing::Sent,
            (_, true) if !ours => Standing::Theirs,
            // Expired, or our own claim from an earlier attempt: take it over.
            _ => Standing::Free(Expect::Version(item.version)),
        }
    }

    /// Marks delivered findings sent, for the TTL. A claim lost meanwhile (it expired and
    /// another worker took it) only means that worker delivers again: a duplicate, not a loss.
    async fn mark_sent(&self, store: &Arc<dyn StateStore>, chunk: &[(&Finding, u64)]) -> Result<(), PublishError> {
        let now = (self.clock)();
        let ttl = self.ttl.as_millis() as i64;
        let name = self.sink.name();
        let writes: Vec<Write> = chunk
            .iter()
            .map(|(f, version)| Write::Put {
                table: Table::Dedup,
                key: record_key(name, f),
                value: SENT.into(),
                expires_at: Some(now + ttl),
                recency: now,
                expect: Expect::Version(*version),
            })
            .collect();
        let writer = store.clone();
        match Driver::blocking(move || writer.commit(writes)).await? {
            Ok(()) | Err(StateError::Conflict { .. }) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }

    /// Gives up claims after a failed delivery, so a retry (by anyone) can take them at once.
    async fn release(&self, store: &Arc<dyn StateStore>, claimed: &[(&Finding, u64)]) {
        let name = self.sink.name();
        let writes: Vec<Write> = claimed
            .iter()
            .map(|(f, version)| Write::Delete {
                table: Table::Dedup,
                key: record_key(name, f),
                expect: Expect::Version(*version),
            })
            .collect();
        let writer = store.clone();
        // Best effort: a claim left behind expires after the lease.
        let _ = Driver::blocking(move || writer.commit(writes)).await;
    }

    /// Drops the expired records (blocking; at start and at the end of a run).
    pub fn expire(&self) -> Result<u64, StateError> {
        match &self.record {
            Some(store) => store.evict(Table::Dedup, Evict::ExpiredBefore((self.clock)())),
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::detect::rules::unreadable_log_file;
    use crate::finding::Mode;
    use crate::sink::Delivery;
    use crate::store::MemoryStore;

    /// Remembers what it was given; refuses the first call when told to.
    #[derive(Default)]
    struct Recording {
        delivered: Mutex<Vec<String>>,
        fail_first: Mutex<bool>,
    }

    impl Sink for Recording {
        fn name(&self) -> &'static str {
            "recording"
        }
        fn batch_size(&self) -> usize {
            2
        }
        fn deliver<'a>(&'a self, findings: &'a [&'a Finding]) -> Delivery<'a> {
            Box::pin(async move {
                if std::mem::take(&mut *self.fail_first.lock().expect("lock")) {
                    return Err(SinkError::Build { sink: "recording", source: "refused".into() });
                }
                self.delivered.lock().expect("lock").extend(findings.iter().map(|f| f.id.clone()));
                Ok(())
            })
        }
    }

    fn findings(n: usize) -> Vec<Finding> {
        (0..n).map(|i| unreadable_log_file(&format!("s3://b/{i}"), "damaged", 0, Mode::Live)).collect()
    }

    #[tokio::test]
    async fn publishes_above_the_threshold_once_and_retries_only_what_failed() {
        let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let sink = Deduplicated::new(
            Recording { fail_first: Mutex::new(false), ..Recording::default() },
            Some(store),
            Severity::Medium,
            Duration::from_secs(60),
            || 1_000,
        );
        let mut batch = findings(3);
        batch[2].severity = Severity::Low;
        assert_eq!(sink.publish(&batch).await.expect("published"), Published { sent: 2, suppressed: 0 });
        assert_eq!(sink.publish(&batch).await.expect("again"), Published { sent: 0, suppressed: 2 });
        // A finding that grew is new.
        batch[0].evidence.count = 5;
        assert_eq!(sink.publish(&batch).await.expect("grown"), Published { sent: 1, suppressed: 1 });
        assert_eq!(sink.sink().delivered.lock().expect("lock").len(), 3);

        *sink.sink().fail_first.lock().expect("lock") = true;
        let more = findings(5).split_off(3);
        assert!(sink.publish(&more).await.is_err(), "a refused delivery is an error");
        assert_eq!(sink.publish(&more).await.expect("retried"), Published { sent: 2, suppressed: 0 });
        assert_eq!(sink.expire().expect("expire"), 0, "nothing expired yet at the same clock");
    }

    static CLOCK: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(10_000);

    fn clock() -> i64 {
        CLOCK.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[tokio::test]
    async fn another_workers_live_claim_defers_the_finding_until_it_is_sent_or_expires() {
        let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let sink = Deduplicated::new(
            Recording::default(),
            Some(store.clone()),
            Severity::Info,
            Duration::from_secs(3600),
            clock,
        );
        let batch = findings(2);
        // Another worker claimed the first finding a moment ago.
        let foreign = Write::Put {
            table: Table::Dedup,
            key: record_key("recording", &batch[0]),
            value: "claim 1-2-3".into(),
            expires_at: Some(clock() + CLAIM_LEASE.as_millis() as i64),
            recency: clock(),
            expect: Expect::Absent,
        };
        store.commit(vec![foreign]).expect("claim");
        let deferred = sink.publish(&batch).await;
        assert!(matches!(deferred, Err(PublishError::Claimed { count: 1 })), "{deferred:?}");
        assert_eq!(sink.sink().delivered.lock().expect("lock").as_slice(), [batch[1].id.clone()]);
        // The claimant never finished: after the lease the finding is published by the retry.
        CLOCK.fetch_add(CLAIM_LEASE.as_millis() as i64 + 1, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(sink.publish(&batch).await.expect("retry"), Published { sent: 1, suppressed: 1 });
        let record = store.get_many(Table::Dedup, &[record_key("recording", &batch[0])]).expect("get");
        assert_eq!(record[0].as_ref().map(|r| r.value.as_str()), Some(SENT));
    }
}
