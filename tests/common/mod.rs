//! Helpers shared by the tests against the moto server (`scripts/moto.sh`).
#![allow(dead_code)] // each test crate uses its own subset

pub mod function;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use trailhound::aws::{AwsOptions, Clients};

/// The moto endpoint; `None` (tests skip) when unset, unless `TRAILHOUND_REQUIRE_MOTO` is set.
pub fn endpoint() -> Option<String> {
    match std::env::var("TRAILHOUND_MOTO_ENDPOINT") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("TRAILHOUND_REQUIRE_MOTO").is_some() => {
            panic!("TRAILHOUND_REQUIRE_MOTO is set but TRAILHOUND_MOTO_ENDPOINT is not")
        }
        _ => {
            eprintln!("NOTICE: TRAILHOUND_MOTO_ENDPOINT not set (scripts/test.sh starts moto); moto tests skipped");
            None
        }
    }
}

/// A tool named by an environment variable, or `None` (skip).
pub fn tool(variable: &str) -> Option<PathBuf> {
    match std::env::var_os(variable) {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ if std::env::var_os("TRAILHOUND_REQUIRE_MOTO").is_some() => {
            panic!("TRAILHOUND_REQUIRE_MOTO is set but {variable} is not (scripts/test.sh sets it)")
        }
        _ => {
            eprintln!("NOTICE: {variable} not set (scripts/test.sh sets it); test skipped");
            None
        }
    }
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{}-{n}", std::process::id(), now_millis() % 1_000_000_000)
}

pub async fn queue(clients: &Clients, name: &str, attributes: &[(QueueAttributeName, String)]) -> String {
    let mut request = clients.sqs.create_queue().queue_name(name);
    for (key, value) in attributes {
        request = request.attributes(key.clone(), value);
    }
    request.send().await.expect("create queue").queue_url.expect("queue url")
}

pub async fn queue_arn(clients: &Clients, url: &str) -> String {
    let attributes =
        clients.sqs.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::QueueArn).send().await;
    attributes.expect("attributes").attributes.expect("map")[&QueueAttributeName::QueueArn].clone()
}

/// Subscribes a queue to a topic with raw delivery (the alert JSON as the message body).
pub async fn subscribe(clients: &Clients, topic_arn: &str, queue_arn: String) {
    let subscription = clients.sns.subscribe().topic_arn(topic_arn).protocol("sqs").endpoint(queue_arn);
    subscription.attributes("RawMessageDelivery", "true").send().await.expect("subscribe");
}

/// Clients for the moto endpoint, with its test credentials.
pub fn options(endpoint: &str) -> AwsOptions {
    AwsOptions {
        endpoint_url: Some(endpoint.to_owned()),
        s3_endpoint_url: None,
        region: Some("us-east-1".into()),
        path_style: true,
        static_credentials: Some(("testing".into(), "testing".into())),
    }
}

/// A loopback proxy to `endpoint` that holds every chunk the client sends for `delay`: each
/// request takes at least that long, however fast the machine. Returns its URL.
pub async fn slow_proxy(endpoint: &str, delay: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target = endpoint.trim_start_matches("http://").to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(&target).await else { return };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let upstream = async move {
                    let mut buffer = vec![0u8; 64 * 1024];
                    while let Ok(n) = client_read.read(&mut buffer).await {
                        if n == 0
                            || {
                                tokio::time::sleep(delay).await;
                                false
                            }
                            || server_write.write_all(&buffer[..n]).await.is_err()
                        {
                            break;
                        }
                    }
                    let _ = server_write.shutdown().await;
                };
                let downstream = async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                    let _ = client_write.shutdown().await;
                };
                tokio::join!(upstream, downstream);
            });
        }
    });
    url
}

/// A loopback HTTP server that answers every request with 503 (S3 "Slow Down"-like trouble).
pub async fn failing_endpoint() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 64 * 1024];
                while let Ok(n) = stream.read(&mut buffer).await {
                    if n == 0 {
                        break;
                    }
                    let body = "<Error><Code>ServiceUnavailable</Code><Message>try again</Message></Error>";
                    let response = format!(
                        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(response.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    url
}

/// The `trailhound` binary, run from the project root against the moto endpoint with its test
/// credentials (`AWS_ENDPOINT_URL`, region us-east-1) and no configuration file of the user's.
pub fn trailhound_on(endpoint: &str) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_trailhound"));
    command
        .current_dir(root())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("TRAILHOUND_CONFIG")
        .env_remove("TRAILHOUND_STATE");
    command
}
