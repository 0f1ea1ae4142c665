//! Where findings go. [`terminal`] prints them (table, JSON lines, [`ocsf`]) for the CLI; the
//! [`Sink`] trait is the seam for the services that receive them ([`sns`], [`securityhub`],
//! [`eventbridge`]); [`dedup::Deduplicated`] wraps any sink with the publish threshold and the
//! dedup record, and a [`Publisher`] holds every configured sink, so no command writes its own
//! publish loop. [`enqueue`] hands object keys (not findings) to the worker fleet's queue.

pub mod dedup;
pub mod enqueue;
pub mod eventbridge;
pub mod ocsf;
pub mod securityhub;
pub mod sns;
pub mod terminal;

use std::sync::Arc;
use std::time::Duration;

use crate::aws::Clients;
use crate::finding::Severity;
use crate::store::{StateError, StateStore};
use dedup::{Deduplicated, PublishError, Published};

use std::future::Future;
use std::pin::Pin;

use crate::finding::Finding;

pub use crate::aws::BoxError;

/// The future of one delivery.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// A service that receives findings.
pub trait Sink: Send + Sync {
    /// A short name for logs and errors (`sns`).
    fn name(&self) -> &'static str;
    /// Findings per [`Sink::deliver`] call at most.
    fn batch_size(&self) -> usize;
    /// Delivers every one of `findings` (at most [`Sink::batch_size`]), or fails; after a
    /// failure the caller retries them all (duplicates over losses).
    fn deliver<'a>(&'a self, findings: &'a [&'a Finding]) -> Delivery<'a>;
}

/// A delivery failed; nothing of it counts as delivered.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The call failed (after the SDK's retries).
    #[error("{sink}: the call to {target} failed")]
    Call {
        /// The sink.
        sink: &'static str,
        /// The topic, hub or bus.
        target: String,
        /// The SDK's error.
        #[source]
        source: BoxError,
    },
    /// The service accepted the call but refused some entries.
    #[error("{sink}: {target} refused {refused} of {sent} finding(s): {code} {message}")]
    Refused {
        /// The sink.
        sink: &'static str,
        /// The topic, hub or bus.
        target: String,
        /// Entries refused.
        refused: usize,
        /// Entries sent.
        sent: usize,
        /// The first refusal's code.
        code: String,
        /// Its message.
        message: String,
    },
    /// A request could not be built from a finding.
    #[error("{sink}: cannot build a request")]
    Build {
        /// The sink.
        sink: &'static str,
        /// The builder's error.
        #[source]
        source: BoxError,
    },
}

impl Sink for Box<dyn Sink> {
    fn name(&self) -> &'static str {
        self.as_ref().name()
    }

    fn batch_size(&self) -> usize {
        self.as_ref().batch_size()
    }

    fn deliver<'a>(&'a self, findings: &'a [&'a Finding]) -> Delivery<'a> {
        self.as_ref().deliver(findings)
    }
}

/// A sink as configured: `arn:aws:sns:…` (or `sns:ARN`), `securityhub[:ACCOUNT]`,
/// `eventbridge[:BUS]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkSpec {
    /// An SNS topic.
    Sns {
        /// Its ARN.
        topic_arn: String,
    },
    /// Security Hub in the clients' region.
    SecurityHub {
        /// The importing account (the product ARN's); each finding's own when `None`.
        account: Option<String>,
    },
    /// An EventBridge bus.
    EventBridge {
        /// Its name or ARN (`default` when not given).
        bus: String,
    },
}

/// A sink that cannot be configured as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkSpecError {
    /// Not one of the forms.
    #[error("expected an SNS topic ARN, `securityhub[:ACCOUNT]` or `eventbridge[:BUS]`")]
    Unknown,
    /// `securityhub:` with something other than a 12-digit account id.
    #[error("`securityhub:ACCOUNT` needs a 12-digit account id")]
    Account,
    /// Security Hub without a region to import into.
    #[error("Security Hub needs a region (--aws-region or AWS_REGION)")]
    NoRegion,
}

impl SinkSpec {
    /// Parses one sink as written on the command line or in the configuration file.
    pub fn parse(text: &str) -> Result<SinkSpec, SinkSpecError> {
        let text = text.trim();
        if let Some(arn) = text.strip_prefix("sns:").or(Some(text).filter(|t| t.starts_with("arn:"))) {
            let is_topic =
                arn.starts_with("arn:") && arn.split(':').nth(2) == Some("sns") && arn.split(':').count() == 6;
            return if is_topic {
                Ok(SinkSpec::Sns { topic_arn: arn.to_owned() })
            } else {
                Err(SinkSpecError::Unknown)
            };
        }
        match text.split_once(':') {
            None if text == "securityhub" => Ok(SinkSpec::SecurityHub { account: None }),
            None if text == "eventbridge" => Ok(SinkSpec::EventBridge { bus: "default".into() }),
            Some(("securityhub", account)) if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(SinkSpec::SecurityHub { account: Some(account.to_owned()) })
            }
            Some(("securityhub", _)) => Err(SinkSpecError::Account),
            Some(("eventbridge", bus)) if !bus.is_empty() => Ok(SinkSpec::EventBridge { bus: bus.to_owned() }),
            _ => Err(SinkSpecError::Unknown),
        }
    }

    /// How it is named in summaries.
    pub fn describe(&self) -> String {
        match self {
            SinkSpec::Sns { topic_arn } => topic_arn.clone(),
            SinkSpec::SecurityHub { account: Some(account) } => format!("Security Hub ({account})"),
            SinkSpec::SecurityHub { account: None } => "Security Hub".into(),
            SinkSpec::EventBridge { bus } => format!("EventBridge bus {bus}"),
        }
    }

    fn build(&self, clients: &Clients) -> Result<Box<dyn Sink>, SinkSpecError> {
        Ok(match self {
            SinkSpec::Sns { topic_arn } => Box::new(sns::SnsSink::new(clients.sns.clone(), topic_arn)),
            SinkSpec::SecurityHub { account } => {
                let region = clients.region.clone().ok_or(SinkSpecError::NoRegion)?;
                Box::new(securityhub::SecurityHubSink::new(clients.securityhub.clone(), region, account.clone()))
            }
            SinkSpec::EventBridge { bus } => {
                Box::new(eventbridge::EventBridgeSink::new(clients.eventbridge.clone(), bus))
            }
        })
    }
}

/// Every configured sink, each behind the same publish threshold and its own dedup records in
/// one store: a finding is delivered at least once to each sink, and a sink that accepted it is
/// not sent it again when another sink's failure makes the caller retry.
pub struct Publisher {
    sinks: Vec<Deduplicated<Box<dyn Sink>>>,
    record: Option<Arc<dyn StateStore>>,
    clock: fn() -> i64,
}

impl Publisher {
    /// The sinks of `specs`, remembering publications in `record` (when given) for `ttl`.
    pub fn new(
        specs: &[SinkSpec],
        clients: &Clients,
        record: Option<Arc<dyn StateStore>>,
        threshold: Severity,
        ttl: Duration,
        clock: fn() -> i64,
    ) -> Result<Publisher, SinkSpecError> {
        let sinks = specs
            .iter()
            .map(|spec| Ok(Deduplicated::new(spec.build(clients)?, record.clone(), threshold, ttl, clock)))
            .collect::<Result<_, SinkSpecError>>()?;
        Ok(Publisher { sinks, record, clock })
    }

    /// Publishes to every sink. Each sink is tried even when another fails; the first failure
    /// is returned, after what the others accepted was recorded.
    pub async fn publish(&self, findings: &[Finding]) -> Result<Published, PublishError> {
        let mut total = Published::default();
        let mut first_error = None;
        for sink in &self.sinks {
            match sink.publish(findings).await {
                Ok(published) => {
                    total.sent += published.sent;
                    total.suppressed += published.suppressed;
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(total),
        }
    }

    /// Drops the expired dedup records (blocking; at start and at the end of a run).
    pub fn expire(&self) -> Result<u64, StateError> {
        match &self.record {
            Some(store) => store.evict(crate::store::Table::Dedup, crate::store::Evict::ExpiredBefore((self.clock)())),
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinks_parse_in_every_documented_form() {
        let topic = "arn:aws:sns:us-east-1:111122223333:alerts";
        assert_eq!(SinkSpec::parse(topic), Ok(SinkSpec::Sns { topic_arn: topic.into() }));
        assert_eq!(SinkSpec::parse(&format!("sns:{topic}")), Ok(SinkSpec::Sns { topic_arn: topic.into() }));
        assert_eq!(SinkSpec::parse("securityhub"), Ok(SinkSpec::SecurityHub { account: None }));
        assert_eq!(
            SinkSpec::parse("securityhub:111122223333"),
            Ok(SinkSpec::SecurityHub { account: Some("111122223333".into()) })
        );
        assert_eq!(SinkSpec::parse("eventbridge"), Ok(SinkSpec::EventBridge { bus: "default".into() }));
        assert_eq!(SinkSpec::parse("eventbridge:security"), Ok(SinkSpec::EventBridge { bus: "security".into() }));
        assert_eq!(SinkSpec::parse("securityhub:42"), Err(SinkSpecError::Account));
        for bad in ["slack", "arn:aws:sqs:us-east-1:111122223333:q", "eventbridge:", "sns:topic"] {
            assert_eq!(SinkSpec::parse(bad), Err(SinkSpecError::Unknown), "{bad}");
        }
    }
}
