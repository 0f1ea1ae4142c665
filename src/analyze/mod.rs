//! The cross-event passes, run in event-time order after the parallel per-event pass: merging
//! the hits of counting rules ([`aggregate`]), conclusions from findings and facts
//! ([`correlate`]: the ransomware chain, instance roles), per-key baselines ([`baseline`]), known SSE-C writers
//! ([`writers`]), and
//! the driver of all three over a stream of batches with the state carried between them
//! ([`passes`]). Pure CPU: no clock, no I/O; the store is reached through
//! [`crate::store::session`]. Every pass asks the one [`crate::settings::RulePolicy`].

pub mod aggregate;
pub mod baseline;
pub mod correlate;
pub mod created_keys;
pub mod incidents;
pub mod passes;
pub mod writers;
