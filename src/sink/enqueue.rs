//! Handing object keys to the worker fleet (`backfill --enqueue`): CloudTrail's own notification
//! format (`{"s3Bucket": …, "s3ObjectKey": [...]}`), [`KEYS_PER_MESSAGE`] keys per message, so a
//! failed object makes a worker retry only a few, and ten messages per `SendMessageBatch`.

use sha2::{Digest, Sha256};

use crate::aws::BoxError;
use crate::source::s3::Listed;

/// Keys per queue message.
pub const KEYS_PER_MESSAGE: usize = 10;

/// Sending failed; the messages of the call may or may not have arrived.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The call failed (after the SDK's retries).
    #[error("SendMessageBatch to `{queue}` failed")]
    Call {
        /// The queue URL.
        queue: String,
        /// The SDK's error.
        #[source]
        source: BoxError,
    },
    /// SQS refused some messages.
    #[error("SQS `{queue}` refused {refused} message(s): {code} {message}")]
    Refused {
        /// The queue URL.
        queue: String,
        /// Messages refused.
        refused: usize,
        /// The first refusal's code.
        code: String,
        /// Its message.
        message: String,
    },
}

/// Message bodies for a run of objects: consecutive keys of one bucket share a message.
pub fn notification_bodies<'a>(objects: impl IntoIterator<Item = &'a Listed>) -> Vec<String> {
    let mut bodies = Vec::new();
    let mut bucket: Option<&str> = None;
    let mut keys: Vec<&str> = Vec::new();
    let mut flush = |bucket: Option<&str>, keys: &mut Vec<&str>| {
        if let Some(bucket) = bucket.filter(|_| !keys.is_empty()) {
            bodies.push(serde_json::json!({ "s3Bucket": bucket, "s3ObjectKey": keys }).to_string());
        }
        keys.clear();
    };
    for object in objects {
        if bucket != Some(object.bucket.as_str()) || keys.len() == KEYS_PER_MESSAGE {
            flush(bucket, &mut keys);
            bucket = Some(&object.bucket);
        }
        keys.push(&object.key);
    }
    flush(bucket, &mut keys);
    bodies
}

/// Sends up to ten bodies in one `SendMessageBatch`; fails when SQS refuses any.
pub async fn send(sqs: &aws_sdk_sqs::Client, queue_url: &str, bodies: &[String]) -> Result<(), EnqueueError> {
    let fifo = queue_url.ends_with(".fifo");
    let call = |source: BoxError| EnqueueError::Call { queue: queue_url.to_owned(), source };
    let entries = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| message_entry(i, body, fifo))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| call(e.into()))?;
    let output = sqs
        .send_message_batch()
        .queue_url(queue_url)
        .set_entries(Some(entries))
        .send()
        .await
        .map_err(|e| call(e.into()))?;
    match output.failed().first() {
        Some(failed) => Err(EnqueueError::Refused {
            queue: queue_url.to_owned(),
            refused: output.failed().len(),
            code: failed.code().to_owned(),
            message: failed.message().unwrap_or("").to_owned(),
        }),
        None => Ok(()),
    }
}

/// One entry; on a FIFO queue the body's digest is the deduplication id.
fn message_entry(
    index: usize,
    body: &str,
    fifo: bool,
) -> Result<aws_sdk_sqs::types::SendMessageBatchRequestEntry, aws_sdk_sqs::error::BuildError> {
    let mut entry =
        aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder().id(format!("m{index}")).message_body(body);
    if fifo {
        let dedup = crate::hash::sha256_hex(Sha256::new_with_prefix(body.as_bytes()));
        entry = entry.message_group_id("trailhound-backfill").message_deduplication_id(dedup);
    }
    entry.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::notify::{self, Notification, Target};

    fn listed(bucket: &str, key: &str) -> Listed {
        Listed { bucket: bucket.into(), key: key.into(), name_time: None }
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
        let expected: Vec<String> = batch.iter().map(|o| format!("{}/{}", o.bucket, o.key)).collect();
        assert_eq!(keys, expected, "every key once, in order, unencoded");
    }
}
