//! What the per-event pass hands the baseline pass ([`crate::analyze::baseline`]): one
//! [`Observation`] per use of a long-term key by a person, with the [`super::features`] the baseline
//! remembers, compacted per object. Pure.

use crate::event::time::Millis;
use crate::finding::Finding;

/// The remembered features, in this order everywhere.
pub const FEATURES: [&str; 5] = ["network", "user_agent", "region", "service", "api"];
/// One use of a long-term key, as the baseline needs it.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Event time.
    pub time: Millis,
    /// `eventID` (observations with the same one are one event).
    pub event_id: Option<String>,
    /// The access key id.
    pub key: String,
    /// Feature values, in [`FEATURES`] order.
    pub features: [String; 5],
    /// A finding describing the event (principal, source, origin …), completed when a rule fires.
    pub template: Finding,
}

/// Shrinks the observations of one object to what the baseline can tell apart: for each key and
/// combination of feature values, the earliest and the latest use. The uses in between bring no
/// new value (the earliest already did) and, lying between two uses of the same object, cannot
/// end a silence of `dormant_days` unless the object itself spans that long, which delivered
/// objects (minutes) never do. Keeps a run's memory proportional to distinct behaviour, not to
/// the number of events.
pub fn compact(observations: &mut Vec<Observation>) {
    if observations.len() < 3 {
        return;
    }
    observations
        .sort_by(|a, b| (&a.key, &a.features, a.time, &a.event_id).cmp(&(&b.key, &b.features, b.time, &b.event_id)));
    let same = |a: &Observation, b: &Observation| a.key == b.key && a.features == b.features;
    let mut kept: Vec<Observation> = Vec::with_capacity(observations.len().min(64));
    let mut run_last: Option<Observation> = None;
    for observation in observations.drain(..) {
        match kept.last() {
            Some(first) if same(first, &observation) => run_last = Some(observation),
            _ => {
                kept.extend(run_last.take());
                kept.push(observation);
            }
        }
    }
    kept.extend(run_last);
    *observations = kept;
}
