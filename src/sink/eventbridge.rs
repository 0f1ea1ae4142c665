//! The Amazon EventBridge sink: one event per finding on a bus, `source` `trailhound`,
//! `detail-type` `trailhound finding`, `detail` the finding JSON (trimmed as for SNS, so an
//! entry stays under EventBridge's 256 KB), through `PutEvents`. Rules on the bus route findings
//! by any field (`detail.severity`, `detail.rule`, `detail.account` …).
//!
//! At most 10 entries per call, and a call's entries together under 256 KB (a call is split
//! when larger). Entries EventBridge reports as failed are retried (three rounds); what still
//! fails makes the delivery fail, so the caller keeps its message and retries.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::{sns, Delivery, Sink, SinkError};
use crate::finding::Finding;

/// Entries per `PutEvents` call (the API's maximum).
pub const PUT_BATCH: usize = 10;
/// The size of a call's entries together, at most (EventBridge's limit is 256 KB).
const MAX_CALL_BYTES: usize = 250 * 1024;
/// Attempts for entries EventBridge reports as failed.
const ROUNDS: usize = 3;
/// The `source` of every event.
pub const SOURCE: &str = "trailhound";
/// The `detail-type` of every event.
pub const DETAIL_TYPE: &str = "trailhound finding";

/// An event bus as a [`Sink`].
#[derive(Debug, Clone)]
pub struct EventBridgeSink {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeSink {
    /// Puts events on `bus` (a name or an ARN; `default` is the account's default bus).
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> EventBridgeSink {
        EventBridgeSink { client, bus: bus.into() }
    }

    fn entry(&self, finding: &Finding) -> (usize, PutEventsRequestEntry) {
        // EventBridge counts source, detail-type, detail and resources against 256 KB; the
        // message is cut to SNS's 256 KiB less a margin for the rest.
        let detail = sns::message_within(finding, MAX_CALL_BYTES - 1024);
        let size = detail.len() + SOURCE.len() + DETAIL_TYPE.len();
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(DETAIL_TYPE)
            .detail(detail)
            .build();
        (size, entry)
    }

    async fn put(&self, findings: &[&Finding]) -> Result<(), SinkError> {
        let entries: Vec<(usize, PutEventsRequestEntry)> = findings.iter().map(|f| self.entry(f)).collect();
        // Calls of at most PUT_BATCH entries and MAX_CALL_BYTES together.
        let mut call: Vec<PutEventsRequestEntry> = Vec::new();
        let mut bytes = 0;
        for (size, entry) in entries {
            if !call.is_empty() && (call.len() == PUT_BATCH || bytes + size > MAX_CALL_BYTES) {
                self.put_call(std::mem::take(&mut call)).await?;
                bytes = 0;
            }
            bytes += size;
            call.push(entry);
        }
        if !call.is_empty() {
            self.put_call(call).await?;
        }
        Ok(())
    }

    async fn put_call(&self, mut pending: Vec<PutEventsRequestEntry>) -> Result<(), SinkError> {
        for round in 1..=ROUNDS {
            let output = self
                .client
                .put_events()
                .set_entries(Some(pending.clone()))
                .send()
                .await
                .map_err(|e| SinkError::Call { sink: "eventbridge", target: self.bus.clone(), source: e.into() })?;
            if output.failed_entry_count() == 0 {
                return Ok(());
            }
            // Result entries are in request order; the failed ones carry an error code.
            let results = output.entries();
            let first_error = results.iter().find(|r| r.error_code().is_some());
            if round == ROUNDS {
                return Err(SinkError::Refused {
                    sink: "eventbridge",
                    target: self.bus.clone(),
                    refused: output.failed_entry_count() as usize,
                    sent: pending.len(),
                    code: first_error.and_then(|r| r.error_code()).unwrap_or("").to_owned(),
                    message: first_error.and_then(|r| r.error_message()).unwrap_or("").to_owned(),
                });
            }
            let mut failed = results.iter().map(|r| r.error_code().is_some());
            pending.retain(|_| failed.next().unwrap_or(true));
            tokio::time::sleep(std::time::Duration::from_millis(200 << round)).await;
        }
        Ok(())
    }
}

impl Sink for EventBridgeSink {
    fn name(&self) -> &'static str {
        "eventbridge"
    }

    fn batch_size(&self) -> usize {
        PUT_BATCH
    }

    fn deliver<'a>(&'a self, findings: &'a [&'a Finding]) -> Delivery<'a> {
        Box::pin(self.put(findings))
    }
}
