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
//! does not depend on the thread count.

use std::sync::Arc;

use rayon::prelude::*;

use crate::pipeline::unit::{inspect_input, Input, Inspection, ObjectOutcome};

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

fn inspect_all(inputs: Vec<Input>, inspection: &Inspection) -> Vec<ObjectOutcome> {
    if inputs.len() == 1 {
        return inputs.into_iter().map(|input| inspect_input(input, inspection)).collect();
    }
    inputs.into_par_iter().map(|input| inspect_input(input, inspection)).collect()
}
