//! The pipeline seam: the unit of work ([`mod@unit`]: one object in, one outcome out), the
//! [`Collector`] that folds each batch's outcomes into the stateful passes and the run's
//! result, and the [`Driver`] that hands CPU work from tokio to rayon. Every command goes
//! through these three; this module also runs them over local files (`scan`, `replay`).
//!
//! Objects go in batches of [`BATCH_FILES`], a constant, so the result does not depend on the
//! thread count: within a batch objects are inspected in parallel, then the stateful passes run
//! over the batch in event-time order. A local file is read whole into a per-thread buffer (a
//! CloudTrail object is at most a few tens of MB and decoding needs it contiguous), so memory
//! is bounded by threads × the largest object plus the carried state, not by the number of
//! files. Findings are de-duplicated by id, so the same eventID in two files is one finding.

pub mod collector;
pub mod driver;
pub mod unit;

use std::path::PathBuf;
use std::sync::Arc;

pub use collector::{merge, Collector, MatchedEvent, ScanResult, Totals};
pub use driver::{Driver, DriverError};
pub use unit::{inspect_input, inspect_object, Gather, Input, Inspected, Inspection, Listing, ObjectOutcome, Window};

use crate::analyze::incidents::GroupBy;
use crate::decode::Limits;
use crate::detect::Engine;
use crate::event::filter::EventFilter;
use crate::event::time::Millis;
use crate::finding::Mode;
use crate::source::local::{self, collect_files, InputError};
use crate::store::session::Session;
use crate::store::StateError;

/// Objects per batch of the stateful passes.
pub const BATCH_FILES: usize = 64;

/// What to scan and how.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    /// Files or folders (searched recursively).
    pub paths: Vec<PathBuf>,
    /// Only events at or after this time (ms).
    pub since: Option<Millis>,
    /// Only events before this time (ms).
    pub until: Option<Millis>,
    /// Decode limits.
    pub limits: Limits,
    /// Findings before this time are not reported (a replay's warm-up learns from them).
    pub report_since: Option<Millis>,
    /// Collect the raw events at or after `report_since` that match this filter.
    pub events: Option<EventFilter>,
    /// Count raw events per actor (at or after `report_since`) for incidents.
    pub group_by: Option<GroupBy>,
}

impl ScanPlan {
    /// A plan over `paths` with no window, default limits, no event listing.
    pub fn new(paths: Vec<PathBuf>) -> ScanPlan {
        ScanPlan {
            paths,
            since: None,
            until: None,
            limits: Limits::default(),
            report_since: None,
            events: None,
            group_by: None,
        }
    }

    /// How this plan inspects each object.
    pub fn inspection(&self, engine: Arc<Engine>, mode: Mode) -> Inspection {
        Inspection {
            engine,
            mode,
            limits: self.limits,
            window: Window { since: self.since, until: self.until },
            listing: self.events.clone().map(|filter| (filter, self.report_since)),
            actors: self.group_by.map(|by| (by, self.report_since)),
        }
    }
}

/// Scans local files on rayon's global pool with state that lives for this call only (the
/// entry for tests and benches).
pub fn scan(plan: &ScanPlan, engine: &Engine, mode: Mode) -> ScanResult {
    let engine = Arc::new(Engine::new(engine.settings().clone(), engine.mode()));
    let driver = Driver::on_global_pool(plan.inspection(engine.clone(), mode));
    let mut session = Session::in_memory(engine.settings().clone());
    scan_with_state(plan, &driver, &mut session).unwrap_or_else(|error| ScanResult {
        // Without a store nothing can fail; say so plainly if it ever does.
        input_errors: vec![InputError { path: "(state)".into(), reason: error.to_string() }],
        ..ScanResult::default()
    })
}

/// Scans local files batch by batch through `session`'s state, inspecting on `driver`'s pool.
pub fn scan_with_state(plan: &ScanPlan, driver: &Driver, session: &mut Session) -> Result<ScanResult, StateError> {
    let mut collector = Collector::new(plan.report_since);
    let mut skipped = Vec::new();
    let (stdin, paths): (Vec<PathBuf>, Vec<PathBuf>) =
        plan.paths.iter().cloned().partition(|p| p.as_os_str() == local::STDIN);
    if !stdin.is_empty() {
        // `-`: standard input, read once (however often it is named), before the files.
        let origin = "(stdin)".to_owned();
        let input = match local::read_stdin(plan.limits.max_object_bytes) {
            Ok(bytes) => Input::Bytes { origin, bytes },
            Err(error) => Input::Unreadable { origin, reason: error.to_string() },
        };
        collector.add_batch(driver.inspect_blocking(vec![input]), session)?;
    }
    let files = collect_files(&paths, &mut collector.result.input_errors, &mut skipped);
    collector.note_skipped(&skipped);
    for batch in files.chunks(BATCH_FILES) {
        let outcomes = driver.inspect_blocking(batch.iter().cloned().map(Input::File).collect());
        collector.add_batch(outcomes, session)?;
    }
    Ok(collector.finish())
}
