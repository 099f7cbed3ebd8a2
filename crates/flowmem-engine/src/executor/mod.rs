//! The executor: persistent worker threads with work stealing, running many workflow runs at once.
//!
//! Split by mechanism, as tokio's scheduler is: this file is the public API (making an executor,
//! submitting runs, its counters); `shared.rs` the state the workers share (queues, wake-ups, counters);
//! `worker.rs` a worker thread (its loop, its idle protocol, its thread-local); `attempt.rs` one attempt of
//! a node and everything its end decides (retries, settling dependents, completing the run); `task.rs` a
//! ready node and its pointer to its run; `poll.rs` async nodes' futures; `recycle.rs` the recycling of
//! run states.

mod attempt;
pub(crate) use attempt::panic_message;
mod poll;
mod recycle;
mod shared;
mod task;
mod worker;

use std::{
    fmt,
    sync::{
        Arc, Condvar, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    thread::JoinHandle,
};

use crossbeam_deque::{Injector, Worker};
use crossbeam_queue::ArrayQueue;
use flowmem_alloc::CachePadded;
use flowmem_pool::BufferPool;

use crate::{
    CheckpointStore, DurabilityError, MemoryOptions, RunId, Workflow,
    run::{Durable, RunHandle, RunOptions, RunReport, RunState},
};

pub(crate) use self::poll::AsyncSlot;
pub(crate) use self::recycle::StatePool;
pub(crate) use self::task::{RunRef, Task};
use self::{shared::Shared, worker::worker_main};

/// The executor's counters, read with [`Executor::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ExecutorStats {
    /// Actions running right now.
    pub active: u64,
    /// Nodes completed.
    pub completed: u64,
    /// Nodes failed (after their retries).
    pub failed: u64,
    /// Retries made.
    pub retried: u64,
    /// Nodes skipped or cancelled (never ran, or stopped).
    pub skipped: u64,
    /// Runs submitted.
    pub runs: u64,
    /// Panics caught outside any action: executor bugs, survived by the worker (always 0, unless there
    /// is a bug to report).
    pub worker_panics: u64,
    /// Run states kept for reuse (`pooled_node_state`), over all workflows.
    pub recycled_states: u64,
}

pub(crate) const ACTIVE: usize = 0;
pub(crate) const COMPLETED: usize = 1;
pub(crate) const FAILED: usize = 2;
pub(crate) const RETRIED: usize = 3;
pub(crate) const SKIPPED: usize = 4;
pub(crate) const WORKER_PANICS: usize = 5;
pub(crate) const COUNTERS: usize = 6;

/// Runs workflows on a fixed set of worker threads.
///
/// Each worker keeps its own deque of ready nodes and steals from the others when it runs dry
/// (crossbeam's work-stealing deque), so a node becomes ready the moment its last dependency finishes (an
/// atomic counter per node reaches zero), not level by level. Any number of runs can be in flight at once.
/// A panicking action fails its node only; the workers go on serving every run. Dropping the executor
/// waits for the runs in flight.
///
/// ```
/// use flowmem_engine::{ActionError, Executor, NodeCtx, RunStatus, Workflow};
///
/// let mut builder = Workflow::builder("sum");
/// builder.node("a", |ctx: &mut NodeCtx<'_>| {
///     ctx.set_output(2u64);
///     Ok::<(), ActionError>(())
/// });
/// builder.node("b", |ctx: &mut NodeCtx<'_>| {
///     ctx.set_output(3u64);
///     Ok::<(), ActionError>(())
/// });
/// builder
///     .node("total", |ctx: &mut NodeCtx<'_>| {
///         let sum = ctx.input_u64("a").unwrap_or(0) + ctx.input_u64("b").unwrap_or(0);
///         ctx.set_output(sum);
///         Ok::<(), ActionError>(())
///     })
///     .after(["a", "b"]);
/// let workflow = builder.build()?;
///
/// let executor = Executor::new(2);
/// let report = executor.run(&workflow);
/// assert_eq!(report.status, RunStatus::Completed);
/// assert_eq!(report.output("total").and_then(|v| v.as_u64()), Some(5));
/// # Ok::<(), flowmem_engine::DefinitionError>(())
/// ```
pub struct Executor {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Executor {
    /// An executor with `workers` threads (0: one per available CPU) and every memory option on.
    pub fn new(workers: usize) -> Self {
        Executor::with_memory(workers, MemoryOptions::ALL)
    }

    /// An executor with `workers` threads (0: one per available CPU) and the given memory options.
    pub fn with_memory(workers: usize, memory: MemoryOptions) -> Self {
        Executor::builder().workers(workers).memory(memory).build()
    }

    /// A builder, for the options beyond the number of workers.
    ///
    /// ```
    /// use flowmem_engine::{Executor, MemoryOptions};
    ///
    /// let executor = Executor::builder().workers(2).memory(MemoryOptions::NONE).build();
    /// assert_eq!(executor.workers(), 2);
    /// ```
    pub fn builder() -> ExecutorBuilder {
        ExecutorBuilder::default()
    }

    fn from_builder(builder: ExecutorBuilder) -> Self {
        let ExecutorBuilder {
            workers,
            memory,
            #[cfg(feature = "tokio")]
            tokio,
        } = builder;
        let workers = if workers == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            workers
        };
        let deques: Vec<Worker<Task>> = (0..workers).map(|_| Worker::new_lifo()).collect();
        let shared = Arc::new(Shared {
            ring: ArrayQueue::new(4096),
            overflow: Injector::new(),
            stealers: deques.iter().map(Worker::stealer).collect(),
            sleeping: AtomicUsize::new(0),
            wake_pending: AtomicBool::new(false),
            sleep_lock: Mutex::new(()),
            wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
            runs_in_flight: AtomicUsize::new(0),
            next_run: AtomicU64::new(1),
            run_id_base: crate::RunId::random().as_u128(),
            clock: quanta::Clock::new(),
            counters: (0..workers)
                .map(|_| CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
            memory,
            buffers: BufferPool::new(),
            states: Arc::new(StatePool::default()),
            contexts: Arc::new(Mutex::new(Vec::new())),
            #[cfg(feature = "tokio")]
            tokio,
        });
        let handles = deques
            .into_iter()
            .enumerate()
            .map(|(i, deque)| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("flowmem-worker-{i}"))
                    .spawn(move || worker_main(&shared, deque, i))
                    .expect("spawning an executor worker thread")
            })
            .collect();
        Executor {
            shared,
            workers: handles,
        }
    }

    /// The number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Starts a run of `workflow` with default options and returns at once.
    pub fn submit(&self, workflow: &Workflow) -> RunHandle {
        self.submit_with(workflow, RunOptions::default())
    }

    /// The memory options this executor was made with.
    pub fn memory(&self) -> MemoryOptions {
        self.shared.memory
    }

    /// Starts a run of `workflow` with `options` and returns at once.
    pub fn submit_with(&self, workflow: &Workflow, options: RunOptions) -> RunHandle {
        let id = self.shared.next_run_id();
        let run = self.acquire_state(id, workflow, options.settings);
        run.seed(options.inputs);
        self.launch(run, &workflow.graph.roots)
    }

    /// Starts `run` at the nodes `start` (every node not restored whose dependencies are).
    fn launch(&self, run: Arc<RunState>, start: &[u32]) -> RunHandle {
        // The handle first: a run that ends before `submit` returns is not taken for recyclable.
        let handle = RunHandle::new(Arc::clone(&run));
        if start.is_empty() {
            // A durable run whose every node was restored.
            run.complete();
            return handle;
        }
        self.shared.runs_in_flight.fetch_add(1, Ordering::AcqRel);
        let in_flight = RunRef::launch(&run);
        for node in start {
            if run.take_slot(*node) {
                self.shared.push_external(Task {
                    run: in_flight,
                    node: *node,
                    carried: 0,
                });
            }
        }
        handle
    }

    /// Starts durable run `run` of `workflow`, checkpointing into `store`, and returns at once. If `store`
    /// has checkpoints of `run` (an earlier attempt crashed, failed or was cancelled), the run resumes:
    /// completed nodes are not run again and their outputs and the run's context are restored; nodes
    /// that were running when the earlier attempt stopped run again (at-least-once).
    ///
    /// Each node's output is checkpointed when it completes, before its dependents start; with a durable
    /// store an output or context value that cannot be persisted ([`Value::Opaque`](crate::Value::Opaque)) fails its node with an
    /// [`ActionErrorKind::Persistence`](crate::ActionErrorKind::Persistence) error. The handle's `wait`
    /// returns once every checkpoint of the run is durable. Submit a run id once at a time.
    ///
    /// # Errors
    /// What the store's [`begin`](CheckpointStore::begin) returns: the run id was started with another workflow, the
    /// store cannot be read, its records are inconsistent.
    pub fn submit_durable(
        &self,
        workflow: &Workflow,
        store: Arc<dyn CheckpointStore>,
        run: RunId,
        options: RunOptions,
    ) -> Result<RunHandle, DurabilityError> {
        let mut checkpoints = store.begin(run, workflow)?;
        // Inputs are recorded like context values: a key the store already has (a resumed run) keeps
        // its stored value.
        for (key, value) in options.inputs {
            if checkpoints.context.iter().all(|(k, _)| *k != key) {
                let ticket = store.put_context(run, &key, &value)?;
                // Durable before any node of the run can depend on it.
                store.wait_durable(ticket)?;
                checkpoints.context.push((key, value));
            }
        }
        if let Some((node, _)) = checkpoints
            .nodes
            .iter()
            .find(|(node, _)| *node as usize >= workflow.len())
        {
            return Err(DurabilityError::Inconsistent {
                run,
                problem: format!(
                    "a checkpoint of node {node}, but workflow `{}` has {} nodes",
                    workflow.name(),
                    workflow.len()
                ),
            });
        }
        self.shared.next_run.fetch_add(1, Ordering::Relaxed);
        // Not from the recycled states: a recycled state would keep the store (and its file lock) alive
        // after the run. A durable run's cost is its I/O, not this allocation.
        let state = self.new_state(run, workflow, options.settings);
        let start = state.make_durable(Durable::new(store), checkpoints);
        Ok(self.launch(state, &start))
    }

    /// Runs durable run `run` of `workflow` with default options (see
    /// [`submit_durable`](Self::submit_durable)) and waits until it ends and its checkpoints are durable.
    ///
    /// # Errors
    /// As [`submit_durable`](Self::submit_durable). Failures during the run are in the report.
    pub fn run_durable(
        &self,
        workflow: &Workflow,
        store: Arc<dyn CheckpointStore>,
        run: RunId,
    ) -> Result<RunReport, DurabilityError> {
        Ok(self
            .submit_durable(workflow, store, run, RunOptions::default())?
            .wait())
    }

    /// Runs `workflow` and waits for the end.
    pub fn run(&self, workflow: &Workflow) -> RunReport {
        self.submit(workflow).wait()
    }

    /// Runs `workflow` with `options` and waits for the end.
    pub fn run_with(&self, workflow: &Workflow, options: RunOptions) -> RunReport {
        self.submit_with(workflow, options).wait()
    }

    /// The executor's counters.
    pub fn stats(&self) -> ExecutorStats {
        let sum = |i: usize| {
            self.shared
                .counters
                .iter()
                .map(|row| row[i].load(Ordering::Relaxed))
                .fold(0u64, u64::wrapping_add)
        };
        ExecutorStats {
            active: sum(ACTIVE),
            completed: sum(COMPLETED),
            failed: sum(FAILED),
            retried: sum(RETRIED),
            skipped: sum(SKIPPED),
            worker_panics: sum(WORKER_PANICS),
            runs: self.shared.next_run.load(Ordering::Relaxed) - 1,
            recycled_states: self.shared.states.len() as u64,
        }
    }
}

/// The options of an [`Executor`]: [`Executor::builder`].
#[derive(Debug, Clone, Default)]
pub struct ExecutorBuilder {
    workers: usize,
    memory: MemoryOptions,
    #[cfg(feature = "tokio")]
    tokio: Option<tokio::runtime::Handle>,
}

impl ExecutorBuilder {
    /// Worker threads (default 0: one per available CPU).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Memory options (default: all on).
    pub fn memory(mut self, memory: MemoryOptions) -> Self {
        self.memory = memory;
        self
    }

    /// The tokio runtime async nodes run in (feature `tokio`): their futures are made and polled inside
    /// its context, so tokio's timers and I/O work in them (the runtime's own threads drive those and
    /// wake the nodes). Without it, a future that uses them panics on its first poll, and the node fails
    /// with that message and a word on this option. The runtime must be a multi-thread one, or one whose
    /// thread awaits the run (a current-thread runtime's thread blocked elsewhere drives nothing).
    #[cfg(feature = "tokio")]
    pub fn tokio(mut self, handle: tokio::runtime::Handle) -> Self {
        self.tokio = Some(handle);
        self
    }

    /// Starts the executor's workers.
    pub fn build(self) -> Executor {
        Executor::from_builder(self)
    }
}

impl Default for Executor {
    /// One worker per available CPU.
    fn default() -> Self {
        Executor::new(0)
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        {
            let _g = self
                .shared
                .sleep_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.shared.wake.notify_all();
        }
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("workers", &self.workers.len())
            .field("stats", &self.stats())
            .finish()
    }
}
