//! The publish threshold and the dedup record, as one wrapper over any [`Sink`].
//!
//! Only findings at or above the threshold are published. The dedup record (`dedup/<finding
//! id>:<count>` in the state store, kept for a TTL) remembers what was published, so a
//! redelivered message, a second backfill or another worker on the same state does not page
//! twice; a finding that grew (more objects) has a new count and is new. Check, deliver and
//! record are serialized by one lock, so concurrent messages naming the same events page once.
//! Each chunk is recorded right after the sink accepted it: a failure later in the list leaves
//! the earlier chunks recorded and the rest to be retried (duplicates over losses).

use std::sync::Arc;
use std::time::Duration;

use super::{Sink, SinkError};
use crate::finding::{Finding, Severity};
use crate::pipeline::{Driver, DriverError};
use crate::store::{Evict, StateError, StateStore, Table, Write};

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
        Deduplicated { sink, record, threshold, ttl, clock, turn: tokio::sync::Mutex::new(()) }
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
        let fresh = self.not_recorded(wanted.clone()).await?;
        let mut published = Published { sent: 0, suppressed: (wanted.len() - fresh.len()) as u64 };
        for chunk in fresh.chunks(self.sink.batch_size().max(1)) {
            self.sink.deliver(chunk).await?;
            published.sent += chunk.len() as u64;
            if let Some(store) = self.record.clone() {
                let now = (self.clock)();
                let ttl = self.ttl.as_millis() as i64;
                let name = self.sink.name();
                let writes: Vec<Write> = chunk.iter().map(|f| record(&record_key(name, f), now, ttl)).collect();
                Driver::blocking(move || store.commit(writes)).await??;
            }
        }
        Ok(published)
    }

    async fn not_recorded<'f>(&self, wanted: Vec<&'f Finding>) -> Result<Vec<&'f Finding>, PublishError> {
        let Some(store) = self.record.clone() else { return Ok(wanted) };
        let keys: Vec<String> = wanted.iter().map(|f| record_key(self.sink.name(), f)).collect();
        let known = Driver::blocking(move || store.get_many(Table::Dedup, &keys)).await??;
        Ok(wanted.into_iter().zip(known).filter(|(_, k)| k.is_none()).map(|(f, _)| f).collect())
    }

    /// Drops the expired records (blocking; at start and at the end of a run).
    pub fn expire(&self) -> Result<u64, StateError> {
        match &self.record {
            Some(store) => store.evict(Table::Dedup, Evict::ExpiredBefore((self.clock)())),
            None => Ok(0),
        }
    }
}

/// The record of a published finding, kept `ttl_ms` from `now`.
fn record(key: &str, now: i64, ttl_ms: i64) -> Write {
    Write::put(Table::Dedup, key.to_owned(), "1".into(), Some(now + ttl_ms), now)
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
}
