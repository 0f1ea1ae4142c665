//! AWS wiring, in one place: the SDK clients for S3, SQS, SNS, Security Hub and EventBridge with one TLS stack (rustls with
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
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// An SDK error kept as the cause of a typed error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An error and its causes on one line, for log fields (`a: b: c`).
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

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
    /// Security Hub.
    pub securityhub: aws_sdk_securityhub::Client,
    /// EventBridge.
    pub eventbridge: aws_sdk_eventbridge::Client,
    /// DynamoDB (the fleet's state).
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// The clients' region, when the configuration names one.
    pub region: Option<String>,
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
        securityhub: aws_sdk_securityhub::Client::new(&shared),
        eventbridge: aws_sdk_eventbridge::Client::new(&shared),
        dynamodb: aws_sdk_dynamodb::Client::new(&shared),
        region: shared.region().map(ToString::to_string),
    }
}
