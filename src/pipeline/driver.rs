//! The one hand-off of CPU work from tokio to rayon, used by every command.
//!
//! Decoding and detection are CPU work: they run on a rayon pool, never on tokio's worker
//! threads. [`Driver::inspect`] sends a batch of objects to the pool and awaits the outcomes
//! through a channel, so the runtime thread is free while the pool works; `scan` and `replay`
//! of local files, which have no runtime, call [`Driver::inspect_blocking`], the same work
//! from an ordinary thread. The stateful passes and the store commit that follows them may
//! block on the store, which a rayon thread must not do: [`Driver::blocking`] runs such work
//! on tokio's blocking threads.
//!
//! Objects of a batch are inspected in parallel and returned in input order, so the result
//! does not depend on the thread count. [`Driver::inspect_in_order`] does the same for a whole
//! run without batch barriers: outcomes (and the parts of big objects) reach the caller in input
//! order as soon as the objects before them are done.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::pipeline::unit::{inspect_input, inspect_input_in_parts, Input, Inspection, ObjectOutcome, Parts};

/// The hand-off failed: the pool or the blocking task ended without an answer (a panic).
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The rayon task ended without sending its outcome.
    #[error("the decode task ended without an outcome")]
    Lost,
    /// A blocking task panicked or was cancelled.
    #[error("a blocking task failed")]
    Blocking(#[source] tokio::task::JoinError),
}

/// Inspection on a rayon pool, shared by clones.
#[derive(Clone)]
pub struct Driver {
    /// The pool; `None` is rayon's global pool.
    pool: Option<Arc<rayon::ThreadPool>>,
    inspection: Arc<Inspection>,
}

impl Driver {
    /// A driver with its own pool of `threads` (every core when `None`).
    pub fn new(inspection: Inspection, threads: Option<usize>) -> Result<Driver, rayon::ThreadPoolBuildError> {
        let mut builder = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("trailhound-decode-{i}"));
        if let Some(threads) = threads {
            builder = builder.num_threads(threads);
        }
        Ok(Driver { pool: Some(Arc::new(builder.build()?)), inspection: Arc::new(inspection) })
    }

    /// A driver on rayon's global pool (tests, benches, library callers).
    pub fn on_global_pool(inspection: Inspection) -> Driver {
        Driver { pool: None, inspection: Arc::new(inspection) }
    }

    /// How objects are inspected.
    pub fn inspection(&self) -> &Inspection {
        &self.inspection
    }

    /// Threads of the pool.
    pub fn threads(&self) -> usize {
        match &self.pool {
            Some(pool) => pool.current_num_threads(),
            None => rayon::current_num_threads(),
        }
    }

    /// Inspects a batch from a thread outside the async runtime; blocks until it is done.
    pub fn inspect_blocking(&self, inputs: Vec<Input>) -> Vec<ObjectOutcome> {
        let inspection = &self.inspection;
        let work = || inspect_all(inputs, inspection);
        match &self.pool {
            Some(pool) => pool.install(work),
            None => work(),
        }
    }

    /// Inspects `inputs` on the pool and hands every outcome to `consume` on the calling
    /// thread, in input order, as soon as the objects before it are done: an object that makes
    /// many findings is handed on in parts of `part_findings` while it is read (see
    /// [`Parts`]), so neither many objects nor one big one are held whole. Blocks until done;
    /// call it from a thread outside the pool (`scan`, `replay` of local files).
    ///
    /// Objects are taken in input order from a queue that runs at most [`LOOK_AHEAD`] objects
    /// ahead of `consume`; each has a channel of one outcome. The object `consume` waits for
    /// was always taken before any later one whose thread may be blocked on a full channel, so
    /// it always makes progress.
    pub fn inspect_in_order(&self, inputs: Vec<Input>, part_findings: usize, mut consume: impl FnMut(ObjectOutcome)) {
        let workers = self.threads().min(inputs.len());
        let (job_sender, jobs) = mpsc::channel::<Job>();
        let shared = InOrder { jobs: Mutex::new(jobs), inspection: &self.inspection, part_findings };
        let consume_all = move || {
            // A channel per object in flight only: a run of 100,000 files made 100,000 up front.
            let mut inputs = inputs.into_iter();
            let mut in_flight = VecDeque::with_capacity(LOOK_AHEAD);
            let mut issue = |in_flight: &mut VecDeque<Receiver<ObjectOutcome>>| {
                if let Some(input) = inputs.next() {
                    let (sender, receiver) = mpsc::sync_channel(1);
                    if job_sender.send((input, sender)).is_ok() {
                        in_flight.push_back(receiver);
                    }
                }
            };
            for _ in 0..LOOK_AHEAD {
                issue(&mut in_flight);
            }
            while let Some(receiver) = in_flight.pop_front() {
                for outcome in receiver {
                    consume(outcome);
                }
                issue(&mut in_flight);
            }
        };
        match &self.pool {
            Some(pool) => pool.in_place_scope(|scope| {
                (0..workers).for_each(|_| scope.spawn(|_| shared.work()));
                consume_all();
            }),
            None => rayon::in_place_scope(|scope| {
                (0..workers).for_each(|_| scope.spawn(|_| shared.work()));
                consume_all();
            }),
        }
    }

    /// Inspects a batch on the pool and awaits it without holding a runtime thread.
    pub async fn inspect(&self, inputs: Vec<Input>) -> Result<Vec<ObjectOutcome>, DriverError> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let inspection = self.inspection.clone();
        let work = move || {
            let _ = sender.send(inspect_all(inputs, &inspection));
        };
        match &self.pool {
            Some(pool) => pool.spawn(work),
            None => rayon::spawn(work),
        }
        receiver.await.map_err(|_| DriverError::Lost)
    }

    /// Runs work that may block on the store (the stateful passes and their commit) on tokio's
    /// blocking threads.
    pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, DriverError> {
        tokio::task::spawn_blocking(work).await.map_err(DriverError::Blocking)
    }
}

/// Objects [`Driver::inspect_in_order`] inspects ahead of the one it waits for, at most.
pub const LOOK_AHEAD: usize = 64;

/// An object to inspect, with the sender of the channel its outcomes go to.
type Job = (Input, SyncSender<ObjectOutcome>);

/// What the pool threads of [`Driver::inspect_in_order`] share.
struct InOrder<'a> {
    /// Objects in input order, at most [`LOOK_AHEAD`] ahead of the consumer.
    jobs: Mutex<Receiver<Job>>,
    inspection: &'a Inspection,
    part_findings: usize,
}

impl InOrder<'_> {
    /// A pool thread's loop: the next object, until the consumer has issued every one.
    fn work(&self) {
        while let Some((input, sender)) = self.next_job() {
            // A send fails only when the consumer is gone (it panicked): nothing to keep then.
            let mut spill = |part: ObjectOutcome| {
                let _ = sender.send(part);
            };
            let parts = Parts { every: self.part_findings, spill: &mut spill };
            let outcome = inspect_input_in_parts(input, self.inspection, Some(parts));
            let _ = sender.send(outcome);
        }
    }

    fn next_job(&self) -> Option<Job> {
        self.jobs.lock().ok()?.recv().ok()
    }
}

fn inspect_all(inputs: Vec<Input>, inspection: &Inspection) -> Vec<ObjectOutcome> {
    if inputs.len() == 1 {
        return inputs.into_iter().map(|input| inspect_input(input, inspection)).collect();
    }
    inputs.into_par_iter().map(|input| inspect_input(input, inspection)).collect()
}
