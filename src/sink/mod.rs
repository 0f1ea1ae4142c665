//! Where findings go. [`terminal`] prints them (table, JSON lines) for the CLI; the [`Sink`]
//! trait is the seam for services that receive them (SNS today; Security Hub and EventBridge
//! fit the same trait), and [`dedup::Deduplicated`] wraps any sink with the publish threshold
//! and the dedup record, so no command writes its own publish loop. [`enqueue`] hands object
//! keys (not findings) to the worker fleet's queue.

pub mod dedup;
pub mod enqueue;
pub mod ocsf;
pub mod sns;
pub mod terminal;

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
