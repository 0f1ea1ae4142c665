//! AWS wiring, in one place: the SDK clients for S3, SQS and SNS with one TLS stack (rustls with
//! ring, passed explicitly as the HTTP client), the default credential chain, an optional
//! endpoint URL (S3-compatible stores, local emulators), path-style addressing, and the retry
//! and timeout policy.
//!
//! Retries: the SDK's standard mode (exponential backoff with jitter, throttling and 5xx and
//! timeouts are retried) with at most [`MAX_ATTEMPTS`] attempts per call; what still fails is
//! left to the queue's redelivery. Timeouts: connecting takes at most 5 s and one attempt at most
//! 60 s (an SQS long poll waits 20 s); stalled downloads are cut by the SDK's stalled-stream
//! protection.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use crate::alert::Alert;

/// Attempts per call, the first included.
pub const MAX_ATTEMPTS: u32 = 4;

/// How to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// Endpoint URL for every service (else `AWS_ENDPOINT_URL` or AWS itself).
    pub endpoint_url: Option<String>,
    /// Region (else the default chain: `AWS_REGION`, profile …).
    pub region: Option<String>,
    /// Endpoint URL for S3 alone (an S3-compatible store beside AWS's SQS and SNS).
    pub s3_endpoint_url: Option<String>,
    /// Path-style S3 addressing (`http://host/bucket/key`), for S3-compatible stores.
    pub path_style: bool,
    /// Static credentials (tests against an emulator); else the default chain.
    pub static_credentials: Option<(String, String)>,
}

/// The service clients.
#[derive(Debug, Clone)]
pub struct Clients {
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// SNS.
    pub sns: aws_sdk_sns::Client,
}

/// Builds the clients.
pub async fn clients(options: &AwsOptions) -> Clients {
    let http =
        aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(60))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(timeouts);
    if let Some(url) = &options.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some((key, secret)) = &options.static_credentials {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(key, secret, None, None, "static"));
    }
    let shared = loader.load().await;
    let mut s3_config = aws_sdk_s3::config::Builder::from(&shared).force_path_style(options.path_style);
    if let Some(url) = &options.s3_endpoint_url {
        s3_config = s3_config.endpoint_url(url);
    }
    let s3_config = s3_config.build();
    Clients {
        s3: aws_sdk_s3::Client::from_conf(s3_config),
        sqs: aws_sdk_sqs::Client::new(&shared),
        sns: aws_sdk_sns::Client::new(&shared),
    }
}

/// Why an object could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// Worth retrying later (throttling, 5xx, timeouts, denied reads, a cut body).
    Transient(String),
    /// Never readable: missing, encrypted with a customer key, over the size cap.
    Unreadable(String),
}

/// Reads an object whole, refusing one over `cap` bytes before downloading it.
pub async fn get_object(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, cap: u64) -> Result<Vec<u8>, FetchError> {
    let output = match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(output) => output,
        Err(error) => {
            let service = error.as_service_error();
            if service.is_some_and(|e| e.is_no_such_key()) {
                return Err(FetchError::Unreadable(
                    "log object not found (deleted after it was listed or notified?)".into(),
                ));
            }
            let code = service.and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(e)).unwrap_or("");
            let message = service.and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::message(e)).unwrap_or("");
            if code == "InvalidRequest" && message.to_ascii_lowercase().contains("encrypt") {
                return Err(FetchError::Unreadable(format!(
                    "log object is encrypted with a customer key (SSE-C): {message}"
                )));
            }
            return Err(FetchError::Transient(format!("GET {key}: {}", error_text(&error))));
        }
    };
    let too_big =
        |size: u64| FetchError::Unreadable(format!("object of {size} bytes exceeds the size cap of {cap} bytes"));
    if let Some(length) = output.content_length().filter(|&n| n as u64 > cap) {
        return Err(too_big(length as u64));
    }
    let body = output.body.collect().await.map_err(|e| FetchError::Transient(format!("reading {key}: {e}")))?;
    let bytes = body.into_bytes();
    if bytes.len() as u64 > cap {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes.to_vec())
}

/// Entries per SNS `PublishBatch` call.
pub const PUBLISH_BATCH: usize = 10;

/// Publishes at most [`PUBLISH_BATCH`] alerts in one call; `key` (finding id and count) is the
/// FIFO deduplication id. Fails if SNS rejects any entry.
pub async fn publish_alerts(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    alerts: &[&(String, Alert)],
) -> Result<(), String> {
    let fifo = topic_arn.ends_with(".fifo");
    let entries = alerts
        .iter()
        .enumerate()
        .map(|(i, (key, alert))| batch_entry(i, key, alert, fifo))
        .collect::<Result<Vec<_>, String>>()?;
    let output = sns
        .publish_batch()
        .topic_arn(topic_arn)
        .set_publish_batch_request_entries(Some(entries))
        .send()
        .await
        .map_err(|e| format!("SNS publish: {}", error_text(&e)))?;
    match output.failed.as_ref().filter(|f| !f.is_empty()) {
        Some(failed) => Err(format!(
            "SNS rejected {} alert(s): {} {}",
            failed.len(),
            failed[0].code,
            failed[0].message.as_deref().unwrap_or("")
        )),
        None => Ok(()),
    }
}

fn batch_entry(index: usize, key: &str, alert: &Alert, fifo: bool) -> Result<PublishBatchRequestEntry, String> {
    let mut entry =
        PublishBatchRequestEntry::builder().id(format!("a{index}")).subject(&alert.subject).message(&alert.message);
    for (name, value) in &alert.attributes {
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| e.to_string())?;
        entry = entry.message_attributes(*name, attribute);
    }
    if fifo {
        entry = entry.message_group_id(&alert.group_id).message_deduplication_id(dedup_id(key));
    }
    entry.build().map_err(|e| e.to_string())
}

/// A FIFO deduplication id: at most 128 characters of `[A-Za-z0-9!-~]`.
fn dedup_id(key: &str) -> String {
    key.chars().filter(|c| c.is_ascii_graphic()).take(128).collect()
}

/// An SDK error with its causes (the service code and message are among them).
pub fn error_text<E: std::error::Error + 'static>(error: &E) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
