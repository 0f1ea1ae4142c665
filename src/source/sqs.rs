//! The queue of notifications: receive (long poll), delete, and change visibility (heartbeat,
//! release, backoff), each failure typed with the queue and the message it concerns.

use std::time::Duration;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};

use crate::aws::BoxError;

/// Messages per receive, SQS's maximum.
pub const RECEIVE_BATCH: i32 = 10;

/// An SQS call failed (after the SDK's retries).
#[derive(Debug, thiserror::Error)]
#[error("SQS {operation} on `{queue}`{} failed", message_id.as_deref().map(|id| format!(" (message {id})")).unwrap_or_default())]
pub struct QueueError {
    /// `ReceiveMessage`, `DeleteMessage`, …
    pub operation: &'static str,
    /// The queue URL.
    pub queue: String,
    /// The message concerned, if one.
    pub message_id: Option<String>,
    /// The SDK's error.
    #[source]
    pub source: BoxError,
}

/// One queue.
#[derive(Debug, Clone)]
pub struct Queue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl Queue {
    /// The queue at `url`.
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Queue {
        Queue { client, url: url.into() }
    }

    /// The queue URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn error(&self, operation: &'static str, message_id: Option<&str>, source: impl Into<BoxError>) -> QueueError {
        QueueError {
            operation,
            queue: self.url.clone(),
            message_id: message_id.map(str::to_owned),
            source: source.into(),
        }
    }

    /// The queue's visibility timeout (30 s when the queue does not say).
    pub async fn visibility_timeout(&self) -> Result<Duration, QueueError> {
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await
            .map_err(|e| self.error("GetQueueAttributes", None, e))?;
        let seconds = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(30);
        Ok(Duration::from_secs(seconds.max(1)))
    }

    /// Up to [`RECEIVE_BATCH`] messages, waiting up to `wait` (at most 20 s) for the first.
    pub async fn receive(&self, wait: Duration) -> Result<Vec<Message>, QueueError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(RECEIVE_BATCH)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| self.error("ReceiveMessage", None, e))?;
        Ok(output.messages.unwrap_or_default())
    }

    /// Deletes a message (acknowledges it).
    pub async fn delete(&self, message_id: &str, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error("DeleteMessage", Some(message_id), e))
    }

    /// Makes a message invisible for `timeout` from now (zero: visible at once).
    pub async fn set_visibility(&self, message_id: &str, receipt: &str, timeout: Duration) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(timeout.as_secs().min(43_200) as i32)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error("ChangeMessageVisibility", Some(message_id), e))
    }
}

/// How many times SQS has handed out the message (1 on the first receive).
pub fn receive_count(message: &Message) -> u32 {
    message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}
