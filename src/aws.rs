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
//!
//! Audit: with `TRAILHOUND_AWS_CALL_LOG=FILE` every API call is appended to FILE as one line,
//! `service operation` (and, for a DynamoDB transaction, the kinds of its items, which are what
//! IAM authorizes). The deployment tests record the calls of their runs this way and check the
//! templates' policies against them; an operator can do the same to audit a policy.

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
    let audit = std::env::var_os(CALL_LOG_ENV).filter(|v| !v.is_empty()).map(|path| CallLog { path: path.into() });
    let mut s3_config = aws_sdk_s3::config::Builder::from(&shared).force_path_style(options.path_style);
    if let Some(url) = &options.s3_endpoint_url {
        s3_config = s3_config.endpoint_url(url);
    }
    // One macro arm per service: each SDK crate has its own config builder type.
    macro_rules! client {
        ($krate:ident, $builder:expr) => {{
            let mut builder = $builder;
            if let Some(audit) = &audit {
                builder = builder.interceptor(audit.clone());
            }
            $krate::Client::from_conf(builder.build())
        }};
    }
    Clients {
        s3: client!(aws_sdk_s3, s3_config),
        sqs: client!(aws_sdk_sqs, aws_sdk_sqs::config::Builder::from(&shared)),
        sns: client!(aws_sdk_sns, aws_sdk_sns::config::Builder::from(&shared)),
        securityhub: client!(aws_sdk_securityhub, aws_sdk_securityhub::config::Builder::from(&shared)),
        eventbridge: client!(aws_sdk_eventbridge, aws_sdk_eventbridge::config::Builder::from(&shared)),
        dynamodb: client!(aws_sdk_dynamodb, aws_sdk_dynamodb::config::Builder::from(&shared)),
        region: shared.region().map(ToString::to_string),
    }
}

/// The environment variable naming the call log.
pub const CALL_LOG_ENV: &str = "TRAILHOUND_AWS_CALL_LOG";

/// Appends `service operation[ item kinds]` to a file for every API call (see the module doc).
#[derive(Debug, Clone)]
struct CallLog {
    path: std::path::PathBuf,
}

impl aws_sdk_s3::config::Intercept for CallLog {
    fn name(&self) -> &'static str {
        "trailhound-call-log"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_s3::config::RuntimeComponents,
        cfg: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(operation) = cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>() else {
            return Ok(());
        };
        let mut line = format!("{} {}", operation.service(), operation.name());
        if operation.name() == "TransactWriteItems" {
            for kind in transaction_kinds(context.request().body().bytes().unwrap_or_default()) {
                line.push(' ');
                line.push_str(&kind);
            }
        }
        line.push('\n');
        use std::io::Write;
        // One short append per call: whole lines even from several processes.
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        file.write_all(line.as_bytes())?;
        Ok(())
    }
}

/// The item kinds (`Put`, `Update`, `Delete`, `ConditionCheck`) of a `TransactWriteItems` body.
fn transaction_kinds(body: &[u8]) -> std::collections::BTreeSet<String> {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let items = value.get("TransactItems").and_then(|items| items.as_array()).into_iter().flatten();
    items.filter_map(|item| item.as_object()).flat_map(|item| item.keys().cloned()).collect()
}
