//! The pipeline seam: the unit of work ([`mod@unit`]: one object in, one outcome out), the
//! [`Collector`] that folds each batch's outcomes into the stateful passes and the run's
//! result, and the [`Driver`] that hands CPU work from tokio to rayon. Every command goes
//! through these three; this module also runs them over local files (`scan`, `replay`).
//!
//! Objects go in batches of [`BATCH_FILES`], a constant, so the result does not depend on the
//! thread count: objects are inspected in parallel, in input order, and the stateful passes run
//! over each batch in event-time order. An object that makes many final findings hands them on
//! in parts of [`PART_FINDINGS`] while it is read, and each part closes a batch early, so `scan`
//! and `replay` can write findings as they come ([`scan_streaming`]). A local file is read whole
//! into a per-thread buffer (a CloudTrail object is at most a few tens of MB and decoding needs
//! it contiguous), so memory is bounded by threads × the largest object plus the carried state,
//! not by the number of files or findings. Findings are de-duplicated by id, so the same eventID
//! in two files is one finding.

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
use crate::finding::{Finding, Mode};
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

/// Scans local files through `session`'s state, inspecting on `driver`'s pool, and gathers the
/// result (findings kept in it).
pub fn scan_with_state(plan: &ScanPlan, driver: &Driver, session: &mut Session) -> Result<ScanResult, StateError> {
    scan_local(plan, driver, session, Collector::new(plan.report_since), &mut |_| {})
}

/// Like [`scan_with_state`], but each batch's new findings go to `write` as soon as the
/// stateful passes have concluded them (ordered by time, rule and id within the batch; a
/// window that grows in a later batch comes again with the same id and a larger count), and
/// the result keeps none: memory does not grow with the number of findings.
pub fn scan_streaming(
    plan: &ScanPlan,
    driver: &Driver,
    session: &mut Session,
    write: &mut dyn FnMut(&[Finding]),
) -> Result<ScanResult, StateError> {
    scan_local(plan, driver, session, Collector::streaming(plan.report_since), write)
}

/// Findings an object hands on in one part while it is read ([`unit::Parts`]).
pub const PART_FINDINGS: usize = 1_024;

fn scan_local(
    plan: &ScanPlan,
    driver: &Driver,
    session: &mut Session,
    mut collector: Collector,
    write: &mut dyn FnMut(&[Finding]),
) -> Result<ScanResult, StateError> {
    let mut skipped = Vec::new();
    let (stdin, paths): (Vec<PathBuf>, Vec<PathBuf>) =
        plan.paths.iter().cloned().partition(|p| p.as_os_str() == local::STDIN);
    let mut inputs = Vec::new();
    if !stdin.is_empty() {
        // `-`: standard input, read once (however often it is named), before the files.
        let origin = "(stdin)".to_owned();
        inputs.push(match local::read_stdin(plan.limits.max_object_bytes) {
            Ok(bytes) => Input::Bytes { origin, bytes },
            Err(error) => Input::Unreadable { origin, reason: error.to_string() },
        });
    }
    let files = collect_files(&paths, &mut collector.result.input_errors, &mut skipped);
    collector.note_skipped(&skipped);
    inputs.extend(files.into_iter().map(Input::File));

    // Batches of BATCH_FILES objects, or less when an object hands on a part: the boundaries
    // depend on the input only, never on the thread count.
    let mut batch: Vec<ObjectOutcome> = Vec::new();
    let mut objects = 0;
    let mut failed: Option<StateError> = None;
    let mut add = |batch: Vec<ObjectOutcome>, collector: &mut Collector, failed: &mut Option<StateError>| {
        if failed.is_some() {
            return;
        }
        match collector.add_batch(batch, session) {
            Ok(findings) if !findings.is_empty() => write(&findings),
            Ok(_) => {}
            Err(error) => *failed = Some(error),
        }
    };
    driver.inspect_in_order(inputs, PART_FINDINGS, |outcome| {
        objects += usize::from(!outcome.partial);
        let partial = outcome.partial;
        batch.push(outcome);
        if partial || objects == BATCH_FILES {
            add(std::mem::take(&mut batch), &mut collector, &mut failed);
            objects = 0;
        }
    });
    if !batch.is_empty() {
        add(batch, &mut collector, &mut failed);
    }
    match failed {
        Some(error) => Err(error),
        None => Ok(collector.finish()),
    }
}
