//! Where log objects come from: local files and folders ([`local`]), a trail bucket's key layout
//! ([`layout`], pure) and its listing and fetch ([`s3`]), the SQS queue of notifications
//! ([`sqs`]) and the notification envelopes it carries ([`notify`], pure).

pub mod layout;
pub mod local;
pub mod notify;
pub mod s3;
pub mod sqs;

pub use notify::ObjectRef;
