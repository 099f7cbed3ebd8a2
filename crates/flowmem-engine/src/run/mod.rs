//! One run of a workflow: its shared state (a cache line of atomic counters per node, `slot.rs`), its
//! handle, and its report.

mod report;
#[allow(
    unsafe_code,
    reason = "the write-once output cell of a node (one CAS to write, one load to read): see its SAFETY comments"
)]
mod slot;

use std::{
    collections::VecDeque,
    fmt,
    sync::{
        Arc, Condvar, Mutex, OnceLock, PoisonError,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{
    ActionError, CheckpointStore, Checkpoints, DurabilityError, MemoryOptions, RunId, Value,
    Workflow, definition::Graph, durable::Ticket, executor::AsyncSlot, memory::ContextMap, trace,
};

pub use self::report::{AttemptOutcome, AttemptRecord, NodeReport, RunReport};
use self::slot::NodeSlot;
use flowmem_alloc::CachePadded;

/// Where contexts of runs that are not themselves recycled go back to (`pooled_contexts` without
/// `pooled_node_state`).
pub(crate) type ContextPool = Arc<Mutex<Vec<ContextMap>>>;

/// The most contexts kept idle.
const IDLE_CONTEXTS: usize = 256;

/// What happens to the rest of a run when a node fails (after its retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Stop the run: nodes not started yet are skipped, running ones are told through
    /// [`NodeCtx::is_cancelled`](crate::NodeCtx::is_cancelled). The default.
    #[default]
    FailFast,
    /// Skip only what depends on the failed node; independent branches run to the end.
    ContinueIndependent,
}

/// Options of one run: its failure policy, its concurrency limit and its inputs.
///
/// ```
/// use flowmem_engine::{Executor, RunOptions, Workflow};
///
/// let mut builder = Workflow::builder("greet");
/// builder.node("greet", |ctx| {
///     let who = ctx.fetch("who").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
///     ctx.set_output(format!("hello, {who}"));
///     Ok(())
/// });
/// let report = Executor::new(1).run_with(&builder.build()?, RunOptions::new().input("who", "world"));
/// assert_eq!(report.output("greet").and_then(|v| v.as_str()), Some("hello, world"));
/// assert_eq!(report.context_value("who").and_then(|v| v.as_str()), Some("world"));
/// # Ok::<(), flowmem_engine::DefinitionError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub(crate) settings: RunSettings,
    /// Context values the run starts with.
    pub(crate) inputs: Vec<(String, Value)>,
}

/// The options a run's state keeps (its inputs go into its context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunSettings {
    pub(crate) policy: FailurePolicy,
    pub(crate) max_concurrency: Option<usize>,
    /// Whether each node's time in its action is measured (`NodeReport::duration`).
    pub(crate) node_timings: bool,
    /// Whether every attempt is recorded (`RunReport::attempts`).
    pub(crate) record_attempts: bool,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            policy: FailurePolicy::default(),
            max_concurrency: None,
            node_timings: true,
            record_attempts: false,
        }
    }
}

impl RunOptions {
    /// The defaults: fail fast, no limit beyond the executor's workers, no inputs.
    pub fn new() -> Self {
        Self::default()
    }

    /// The failure policy.
    pub fn policy(mut self, policy: FailurePolicy) -> Self {
        self.settings.policy = policy;
        self
    }

    /// At most `limit` nodes of this run execute at the same time (0 is taken as 1).
    pub fn max_concurrency(mut self, limit: usize) -> Self {
        self.settings.max_concurrency = Some(limit.max(1));
        self
    }

    /// Whether each node's time in its action is measured, for [`NodeReport::duration`] (default: on).
    /// Off, the executor reads no clock around a node that has no timeout — two clock reads fewer per
    /// node, which shows on workflows of tiny nodes (`cargo xtask bench` reports both ways:
    /// `flowmem` and `flowmem_untimed` in the engine's DAG groups) — and durations are zero.
    pub fn node_timings(mut self, on: bool) -> Self {
        self.settings.node_timings = on;
        self
    }

    /// Whether the run records every attempt of every node — its worker, start, end and outcome — in
    /// [`RunReport::attempts`], for a [`Timeline`](crate::Timeline) of the run (default: off). On, each
    /// attempt reads the clock twice (as [`node_timings`](Self::node_timings) does, which it implies) and
    /// appends a record under the run's lock for them: a run that records allocates for its records
    /// (the list doubles as it grows), so it is not for the zero-allocation steady state.
    ///
    /// ```
    /// use flowmem_engine::{AttemptOutcome, Executor, RunOptions, Workflow};
    ///
    /// let mut b = Workflow::builder("recorded");
    /// b.node("a", |_| Ok(()));
    /// b.node("b", |_| Ok(())).after(["a"]);
    /// let report = Executor::new(2).run_with(&b.build()?, RunOptions::new().record_attempts(true));
    /// assert_eq!(report.attempts.len(), 2);
    /// assert!(report.attempts.iter().all(|a| a.outcome == AttemptOutcome::Completed));
    /// # Ok::<(), flowmem_engine::DefinitionError>(())
    /// ```
    pub fn record_attempts(mut self, on: bool) -> Self {
        self.settings.record_attempts = on;
        self
    }

    /// Puts `value` under `key` in the run's context before any node starts (nodes read it with
    /// [`NodeCtx::fetch`](crate::NodeCtx::fetch)); a later `input` of the same key replaces it. A durable
    /// run records its inputs in its store like any context value, so a resumed run has the same ones: on
    /// resumption the stored value of a key wins over the one given again.
    pub fn input(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let key = key.into();
        let value = value.into();
        match self.inputs.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.inputs.push((key, value)),
        }
        self
    }
}

/// Where a node is in its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(u8)]
pub enum NodeStatus {
    /// Waiting for its dependencies (or for a worker).
    Pending = 0,
    /// Its action is running (or waiting to retry).
    Running = 1,
    /// Done, with its output.
    Completed = 2,
    /// Its action failed (after its retries).
    Failed = 3,
    /// Not run: a dependency failed or was skipped, or the run stopped after a failure.
    Skipped = 4,
    /// Not run, or stopped: the run was cancelled.
    Cancelled = 5,
}

/// The raw status of a node completed in an earlier attempt of a durable run (reads as `Completed`).
const RESTORED: u8 = 6;

impl NodeStatus {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => NodeStatus::Running,
            2 | RESTORED => NodeStatus::Completed,
            3 => NodeStatus::Failed,
            4 => NodeStatus::Skipped,
            5 => NodeStatus::Cancelled,
            _ => NodeStatus::Pending,
        }
    }

    /// Whether the node has finished (completed, failed, skipped or cancelled).
    pub fn is_finished(self) -> bool {
        !matches!(self, NodeStatus::Pending | NodeStatus::Running)
    }
}

/// Looks at a run's end, each after yielding the CPU, before a waiter sleeps: a small run ends within
/// microseconds, and a sleep and its wake-up cost two system calls and two context switches (a 10-node
/// run alone took 19 µs with a waiter that slept at once, 3.6–4.6 µs with these looks; `node_cost
/// alone10`, 2 cores).
const WAIT_YIELDS: usize = 16;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RunStatus {
    /// Every node completed.
    Completed,
    /// A node failed.
    Failed,
    /// The run was cancelled before it could complete.
    Cancelled,
}

/// The state of one run, shared by the workers executing its nodes. Its fields are its own: the executor
/// moves a run along through its named transitions (`begin_attempt`, `release`, `halt`, `cancel`,
/// `complete`, ...).
pub(crate) struct RunState {
    id: RunId,
    graph: Arc<Graph>,
    options: RunSettings,
    /// Per node: its counters, status and output, a cache line each.
    nodes: Box<[NodeSlot]>,
    /// Per node: the error of its last attempt (apart: read only for reports).
    errors: Box<[OnceLock<ActionError>]>,
    /// Nodes not finished yet: written by every worker as nodes end, so on a line of its own (128 bytes,
    /// with the neighbour the CPU prefetches). Its alignment also keeps the `Arc`'s reference counts off
    /// the line of the fields read on every node (`graph`, `nodes`, `options`, the stop flags).
    unfinished: CachePadded<AtomicUsize>,
    /// Cancelled by the user.
    cancelled: AtomicBool,
    /// Stopped by a failure under fail-fast (also read by actions, through `NodeCtx::is_cancelled`).
    halted: AtomicBool,
    failed: AtomicBool,
    /// Some node settled other than completed (failed, skipped, cancelled): only then must a node whose
    /// dependencies all finished look at their statuses before it runs.
    unsuccessful: AtomicBool,
    slots: Mutex<Slots>,
    /// Threads blocked in `wait` (the end wakes them only if there are any: a wake-up is a system call).
    sleepers: Mutex<usize>,
    ended_cv: Condvar,
    started: Instant,
    ended_ns: AtomicU64,
    /// Set once when the run has ended (then `ended_cv` wakes the sleepers): what `wait` waits for, and
    /// what the state pool reads.
    ended: AtomicBool,
    /// Live `RunHandle`s of this run: while there are any, the state is not recycled (and the pool does
    /// not wait for it).
    handles: AtomicUsize,
    /// Values by key, shared by the run's nodes.
    context: Mutex<ContextMap>,
    /// Where the context goes when this state is dropped (`pooled_contexts` without `pooled_node_state`).
    context_home: Option<ContextPool>,
    /// The store of a durable run.
    durable: OnceLock<Durable>,
    /// Per async node (none if the workflow has none, so sync workflows pay nothing): its attempt in
    /// flight, its output, its waker. Kept when the state is recycled.
    async_slots: Box<[AsyncSlot]>,
    /// Who awaits the run as a future (`RunHandle` is one), woken when it ends.
    done_waker: Mutex<Option<std::task::Waker>>,
    /// Every attempt, if the run records them (`RunOptions::record_attempts`).
    attempt_log: Mutex<Vec<AttemptRecord>>,
    /// The run's `tracing` span (nothing without the feature).
    span: trace::RunSpan,
}

/// What a durable run keeps: its store, the last ticket of its checkpoints.
pub(crate) struct Durable {
    store: Arc<dyn CheckpointStore>,
    /// The highest ticket of the run's records: `wait` waits until it is durable.
    ticket: AtomicU64,
    /// Why the run's checkpoints could not be made durable.
    error: OnceLock<Arc<DurabilityError>>,
}

impl Durable {
    pub(crate) fn new(store: Arc<dyn CheckpointStore>) -> Self {
        Durable {
            store,
            ticket: AtomicU64::new(0),
            error: OnceLock::new(),
        }
    }

    /// Records the outcome of a checkpoint. A value that cannot be persisted fails its node only; any
    /// other error is the store's, and fails the run (`store_error`) as a failed sync does.
    fn record(&self, outcome: Result<Ticket, DurabilityError>) -> Result<(), ActionError> {
        match outcome {
            Ok(ticket) => {
                self.ticket.fetch_max(ticket, Ordering::AcqRel);
                Ok(())
            }
            Err(e) => {
                let error = ActionError::persistence(&e);
                if !matches!(e, DurabilityError::Unpersistable { .. }) {
                    let _ = self.error.set(Arc::new(e));
                }
                Err(error)
            }
        }
    }
}

impl Drop for RunState {
    fn drop(&mut self) {
        if let Some(home) = &self.context_home {
            let mut context = std::mem::take(
                self.context
                    .get_mut()
                    .unwrap_or_else(PoisonError::into_inner),
            );
            context.clear();
            let mut idle = home.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < IDLE_CONTEXTS {
                idle.push(context);
            }
        }
    }
}

/// The per-run concurrency limit: nodes executing, and ready nodes waiting for a slot.
struct Slots {
    running: usize,
    waiting: VecDeque<u32>,
}

impl RunState {
    pub(crate) fn new(
        id: RunId,
        workflow: &Workflow,
        options: RunSettings,
        memory: &MemoryOptions,
        contexts: &ContextPool,
    ) -> Self {
        let g = &workflow.graph;
        let n = g.nodes.len();
        let recycled_context = if memory.pooled_contexts {
            contexts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()
        } else {
            None
        };
        let mut context = recycled_context.unwrap_or_default();
        context.intern_known_keys(memory.interned_names);
        let context_home =
            (memory.pooled_contexts && !memory.pooled_node_state).then(|| Arc::clone(contexts));
        RunState {
            id,
            graph: Arc::clone(g),
            options,
            nodes: (0..n as u32)
                .map(|i| NodeSlot::new(g.deps(i).len() as u32))
                .collect(),
            errors: (0..n).map(|_| OnceLock::new()).collect(),
            unfinished: CachePadded::new(AtomicUsize::new(n)),
            cancelled: AtomicBool::new(false),
            halted: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            unsuccessful: AtomicBool::new(false),
            slots: Mutex::new(Slots {
                running: 0,
                waiting: VecDeque::new(),
            }),
            sleepers: Mutex::new(0),
            ended_cv: Condvar::new(),
            started: Instant::now(),
            ended_ns: AtomicU64::new(0),
            ended: AtomicBool::new(false),
            handles: AtomicUsize::new(0),
            context: Mutex::new(context),
            context_home,
            durable: OnceLock::new(),
            async_slots: if g.nodes.iter().any(|d| d.work.is_async()) {
                (0..n).map(|_| AsyncSlot::default()).collect()
            } else {
                Box::new([])
            },
            done_waker: Mutex::new(None),
            attempt_log: Mutex::new(Vec::new()),
            span: trace::run_span(&g.name, id),
        }
    }

    /// The run's `tracing` span.
    #[inline]
    pub(crate) fn span(&self) -> &trace::RunSpan {
        &self.span
    }

    /// The workflow's graph.
    pub(crate) fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The flag an action of this run reads as "cancelled": under fail-fast, set by a failure elsewhere
    /// or by `cancel`; otherwise by `cancel` only.
    pub(crate) fn stop_flag(&self) -> &AtomicBool {
        if self.options.policy == FailurePolicy::FailFast {
            &self.halted
        } else {
            &self.cancelled
        }
    }

    /// Whether the user cancelled the run.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Whether the run measures each node's time in its action.
    #[inline]
    pub(crate) fn times_nodes(&self) -> bool {
        self.options.node_timings || self.options.record_attempts
    }

    /// Whether the run records its attempts.
    #[inline]
    pub(crate) fn records_attempts(&self) -> bool {
        self.options.record_attempts
    }

    /// Records an attempt of `node` that took `took` and ends now, if the run records attempts.
    pub(crate) fn record_attempt(
        &self,
        node: u32,
        attempt: u32,
        took: Duration,
        worker: Option<usize>,
        outcome: AttemptOutcome,
    ) {
        if !self.options.record_attempts {
            return;
        }
        let end = self.started.elapsed();
        let record = AttemptRecord {
            node: node as usize,
            attempt,
            worker,
            start: end.saturating_sub(took),
            end,
            outcome,
            is_async: self.graph.nodes[node as usize].work.is_async(),
        };
        self.attempt_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record);
    }

    /// Nodes finished (completed, failed, skipped, cancelled or restored) so far.
    fn finished_nodes(&self) -> usize {
        self.nodes.len()
            - self
                .unfinished
                .load(Ordering::Acquire)
                .min(self.nodes.len())
    }

    /// Whether the run fails fast (a failure stops it).
    pub(crate) fn fails_fast(&self) -> bool {
        self.options.policy == FailurePolicy::FailFast
    }

    /// Counts one finished dependency of `node`; `true` if it was the last (the node is ready).
    pub(crate) fn release(&self, node: u32) -> bool {
        self.nodes[node as usize]
            .remaining
            .fetch_sub(1, Ordering::AcqRel)
            == 1
    }

    /// Starts an attempt of `node`: its number (1 for the first), and the node marked running.
    pub(crate) fn begin_attempt(&self, node: u32) -> u32 {
        // One attempt of a node runs at a time (the next is queued only after this one ended), so
        // its counter has one writer: a load and a store, not a read-modify-write.
        let attempts = &self.nodes[node as usize].attempts;
        let attempt = attempts.load(Ordering::Relaxed) + 1;
        attempts.store(attempt, Ordering::Release);
        self.set_status(node, NodeStatus::Running);
        attempt
    }

    /// Stops the run after a failure (fail-fast): nodes not started are skipped, running actions are
    /// told, parked async nodes are woken to be dropped.
    pub(crate) fn halt(&self) {
        self.halted.store(true, Ordering::Release);
        self.wake_parked();
    }

    /// Cancels the run (see [`RunHandle::cancel`]).
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.halted.store(true, Ordering::Release);
        self.wake_parked();
    }

    fn wake_parked(&self) {
        self.async_slots.iter().for_each(AsyncSlot::wake_parked);
    }

    /// The async slot of `node` (an async node of this state's workflow).
    pub(crate) fn async_slot(&self, node: u32) -> &AsyncSlot {
        &self.async_slots[node as usize]
    }

    /// Where the async attempt of `node` puts its output.
    pub(crate) fn async_output(&self, node: u32) -> &Mutex<Value> {
        &self.async_slots[node as usize].output
    }

    /// Makes a finished state ready for another run of the same workflow, keeping its memory (the
    /// `pooled_node_state` option; the context follows its own option).
    pub(crate) fn reset(&mut self, id: RunId, options: RunSettings, memory: &MemoryOptions) {
        let g = &self.graph;
        self.id = id;
        self.span = trace::run_span(&g.name, id);
        self.options = options;
        for (i, slot) in self.nodes.iter_mut().enumerate() {
            slot.reset(g.deps(i as u32).len() as u32);
        }
        self.errors.iter_mut().for_each(|e| drop(e.take()));
        *self.unfinished.get_mut() = g.nodes.len();
        *self.cancelled.get_mut() = false;
        *self.halted.get_mut() = false;
        *self.failed.get_mut() = false;
        *self.unsuccessful.get_mut() = false;
        let slots = self.slots.get_mut().unwrap_or_else(PoisonError::into_inner);
        slots.running = 0;
        slots.waiting.clear();
        *self
            .done_waker
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.started = Instant::now();
        self.attempt_log
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        *self.ended_ns.get_mut() = 0;
        *self.ended.get_mut() = false;
        let context = self
            .context
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if memory.pooled_contexts {
            context.clear();
        } else {
            *context = ContextMap::default();
        }
        context.intern_known_keys(memory.interned_names);
        drop(self.durable.take());
    }

    /// Makes this (fresh or reset) state a durable run with `checkpoints` restored: restored nodes count
    /// as completed with their outputs, and the context is filled. A checkpointed node is restored only if
    /// all its dependencies are (else it runs again). Returns the nodes to start with (none if every node
    /// was restored).
    pub(crate) fn make_durable(&self, durable: Durable, checkpoints: Checkpoints) -> Vec<u32> {
        let _ = self.durable.set(durable);
        let g = &self.graph;
        let n = g.nodes.len();
        let mut outputs: Vec<Option<Value>> = vec![None; n];
        for (node, value) in checkpoints.nodes {
            outputs[node as usize] = Some(value);
        }
        let mut restored = vec![false; n];
        for &i in g.order.iter() {
            let i = i as usize;
            if outputs[i].is_some() && g.deps(i as u32).iter().all(|d| restored[*d as usize]) {
                restored[i] = true;
                if let Some(v) = outputs[i].take() {
                    self.set_output(i as u32, v);
                }
                self.nodes[i].status.store(RESTORED, Ordering::Release);
            }
        }
        let mut start = Vec::new();
        for i in 0..n {
            if restored[i] {
                continue;
            }
            let waiting = g
                .deps(i as u32)
                .iter()
                .filter(|d| !restored[**d as usize])
                .count();
            self.nodes[i]
                .remaining
                .store(waiting as u32, Ordering::Release);
            if waiting == 0 {
                start.push(i as u32);
            }
        }
        let count = restored.iter().filter(|r| **r).count();
        self.unfinished.fetch_sub(count, Ordering::AcqRel);
        let mut context = self.context.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, value) in checkpoints.context {
            context.put(&key, value);
        }
        start
    }

    /// Puts a run's inputs into its context, before any node starts.
    pub(crate) fn seed(&self, inputs: Vec<(String, Value)>) {
        if inputs.is_empty() {
            return;
        }
        let mut context = self.context.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, value) in inputs {
            context.put(&key, value);
        }
    }

    /// Records node `node`'s completion with `output` in the run's store (durable runs).
    /// Whether the run checkpoints into a store.
    #[inline]
    pub(crate) fn is_durable(&self) -> bool {
        self.durable.get().is_some()
    }

    pub(crate) fn checkpoint(&self, node: u32, output: &Value) -> Result<(), ActionError> {
        let Some(d) = self.durable.get() else {
            return Ok(());
        };
        let name = &self.graph.nodes[node as usize].name;
        d.record(d.store.checkpoint(self.id, node, name, output))
    }

    /// For a durable run, waits until its checkpoints are durable (recording the error if they cannot
    /// be made so).
    fn await_durability(&self) {
        let Some(d) = self.durable.get() else {
            return;
        };
        if d.error.get().is_some() {
            return;
        }
        if let Err(e) = d.store.wait_durable(d.ticket.load(Ordering::Acquire)) {
            let _ = d.error.set(Arc::new(e));
        }
    }

    /// Whether a node was restored from the store rather than run.
    fn is_restored(&self, node: u32) -> bool {
        self.nodes[node as usize].status.load(Ordering::Acquire) == RESTORED
    }

    /// Whether the run has ended and no handle refers to it: any reference left is a worker's, about to be
    /// dropped.
    pub(crate) fn is_being_let_go(&self) -> bool {
        self.ended.load(Ordering::Acquire) && self.handles.load(Ordering::Acquire) == 0
    }

    /// Whether this state's workflow is `workflow` (the same graph).
    pub(crate) fn is_for(&self, workflow: &Workflow) -> bool {
        Arc::ptr_eq(&self.graph, &workflow.graph)
    }

    pub(crate) fn status(&self, node: u32) -> NodeStatus {
        NodeStatus::from_u8(self.nodes[node as usize].status.load(Ordering::Acquire))
    }

    pub(crate) fn set_status(&self, node: u32, status: NodeStatus) {
        if matches!(
            status,
            NodeStatus::Failed | NodeStatus::Skipped | NodeStatus::Cancelled
        ) {
            // Ordered before the settling node's decrements of its dependents' counters (AcqRel), so
            // the worker that finds a dependent ready sees it.
            self.unsuccessful.store(true, Ordering::Relaxed);
        }
        self.nodes[node as usize]
            .status
            .store(status as u8, Ordering::Release);
    }

    /// Whether every dependency of `node`, all of them finished, completed.
    #[inline]
    pub(crate) fn dependencies_completed(&self, node: u32) -> bool {
        !self.unsuccessful.load(Ordering::Relaxed)
            || self
                .graph
                .deps(node)
                .iter()
                .all(|d| self.status(*d) == NodeStatus::Completed)
    }

    pub(crate) fn add_time(&self, node: u32, took: Duration) {
        self.add_nanos(node, took.as_nanos() as u64);
    }

    /// Adds `nanos` to the time `node` spent in its action.
    #[inline]
    pub(crate) fn add_nanos(&self, node: u32, nanos: u64) {
        if nanos != 0 {
            // One attempt of a node at a time, each begun after the last one's end was queued: one
            // writer at a time, so a load and a store, not a read-modify-write.
            let sum = &self.nodes[node as usize].nanos;
            sum.store(
                sum.load(Ordering::Relaxed).wrapping_add(nanos),
                Ordering::Relaxed,
            );
        }
    }

    pub(crate) fn set_output(&self, node: u32, value: Value) {
        let _ = self.nodes[node as usize].output.set(value);
    }

    pub(crate) fn set_error(&self, node: u32, error: ActionError) {
        self.failed.store(true, Ordering::Release);
        let _ = self.errors[node as usize].set(error);
    }

    /// Whether nodes not yet started should not start.
    pub(crate) fn stopping(&self) -> Option<NodeStatus> {
        if self.cancelled.load(Ordering::Acquire) {
            Some(NodeStatus::Cancelled)
        } else if self.halted.load(Ordering::Acquire) {
            Some(NodeStatus::Skipped)
        } else {
            None
        }
    }

    /// Takes a concurrency slot for `node`: `true` if it may run now, `false` if it was queued to run when
    /// a slot frees.
    #[inline]
    pub(crate) fn take_slot(&self, node: u32) -> bool {
        let Some(limit) = self.options.max_concurrency else {
            return true;
        };
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if slots.running < limit {
            slots.running += 1;
            true
        } else {
            slots.waiting.push_back(node);
            false
        }
    }

    /// Gives back a slot; returns a waiting node that takes it over, if any.
    #[inline]
    pub(crate) fn release_slot(&self) -> Option<u32> {
        self.options.max_concurrency?;
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let next = slots.waiting.pop_front();
        if next.is_none() {
            slots.running -= 1;
        }
        next
    }

    /// Counts `n` finished nodes; `true` if they were the last.
    #[inline]
    pub(crate) fn finish_many(&self, n: u32) -> bool {
        n > 0 && self.unfinished.fetch_sub(n as usize, Ordering::AcqRel) == n as usize
    }

    pub(crate) fn complete(&self) {
        let elapsed = self.started.elapsed();
        trace::run_ended(&self.span, || self.run_status(), elapsed);
        self.ended_ns
            .store(elapsed.as_nanos() as u64, Ordering::Release);
        self.ended.store(true, Ordering::Release);
        // A sleeper counts itself under this lock before it sleeps and looks at `ended` after: either it
        // sees the store above, or this sees it counted.
        let sleepers = self.sleepers.lock().unwrap_or_else(PoisonError::into_inner);
        if *sleepers > 0 {
            self.ended_cv.notify_all();
        }
        drop(sleepers);
        if let Some(waker) = self
            .done_waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            waker.wake();
        }
    }

    fn is_done(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    fn wait(&self, limit: Option<Duration>) -> bool {
        // A limit too long for the clock (`Duration::MAX`) is no limit.
        let deadline = limit.and_then(|l| Instant::now().checked_add(l));
        if limit.is_none_or(|l| !l.is_zero()) {
            for _ in 0..WAIT_YIELDS {
                if self.is_done() {
                    return true;
                }
                std::thread::yield_now();
            }
        }
        let mut sleepers = self.sleepers.lock().unwrap_or_else(PoisonError::into_inner);
        while !self.is_done() {
            let left = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return false,
                },
            };
            *sleepers += 1;
            sleepers = match left {
                None => self
                    .ended_cv
                    .wait(sleepers)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(left) => {
                    self.ended_cv
                        .wait_timeout(sleepers, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
            *sleepers -= 1;
        }
        true
    }

    fn run_status(&self) -> RunStatus {
        let store_failed = self.durable.get().is_some_and(|d| d.error.get().is_some());
        if self.failed.load(Ordering::Acquire) || store_failed {
            RunStatus::Failed
        } else if self.cancelled.load(Ordering::Acquire)
            && (0..self.nodes.len() as u32).any(|i| self.status(i) != NodeStatus::Completed)
        {
            RunStatus::Cancelled
        } else {
            RunStatus::Completed
        }
    }

    fn report(&self) -> RunReport {
        let g = &self.graph;
        let durable = self.durable.get();
        RunReport {
            id: self.id,
            durable: durable.is_some(),
            store_error: durable.and_then(|d| d.error.get().cloned()),
            workflow: Arc::clone(&g.name),
            status: self.run_status(),
            duration: Duration::from_nanos(self.ended_ns.load(Ordering::Acquire)),
            context: self
                .context
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entries(),
            nodes: (0..g.nodes.len() as u32)
                .map(|i| NodeReport {
                    name: Arc::clone(&g.nodes[i as usize].name),
                    status: self.status(i),
                    attempts: self.nodes[i as usize].attempts.load(Ordering::Acquire),
                    duration: Duration::from_nanos(
                        self.nodes[i as usize].nanos.load(Ordering::Acquire),
                    ),
                    error: self.errors[i as usize].get().cloned(),
                    output: self.nodes[i as usize].output.get().cloned(),
                    restored: self.is_restored(i),
                })
                .collect(),
            attempts: self
                .attempt_log
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}

impl RunState {
    /// The output of `node`'s dependency `name`, if `name` is one and it produced one.
    pub(crate) fn input(&self, node: u32, name: &str) -> Option<&Value> {
        let g = &self.graph;
        let dep = g.index_of(name)?;
        if !g.deps(node).contains(&dep) {
            return None;
        }
        self.nodes[dep as usize].output.get()
    }

    /// Calls `f` with each of `node`'s dependencies' names and outputs, in the order it lists them.
    pub(crate) fn for_each_input(&self, node: u32, f: &mut dyn FnMut(&str, &Value)) {
        let g = &self.graph;
        for dep in g.deps(node) {
            if let Some(v) = self.nodes[*dep as usize].output.get() {
                f(&g.nodes[*dep as usize].name, v);
            }
        }
    }

    /// Stores `value` under `key` in the run's context (and in a durable run's store).
    pub(crate) fn put(&self, key: &str, value: Value) -> Result<Option<Value>, ActionError> {
        let mut context = self.context.lock().unwrap_or_else(PoisonError::into_inner);
        // Recorded under the context's lock, so the store sees puts of one key in the map's order.
        if let Some(d) = self.durable.get() {
            d.record(d.store.put_context(self.id, key, &value))?;
        }
        Ok(context.put(key, value))
    }

    /// A clone of the context's value under `key`.
    pub(crate) fn fetch(&self, key: &str) -> Option<Value> {
        self.context
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }
}

/// A run in flight: wait for it, cancel it.
pub struct RunHandle {
    run: Arc<RunState>,
}

impl Clone for RunHandle {
    fn clone(&self) -> Self {
        RunHandle::new(Arc::clone(&self.run))
    }
}

impl Drop for RunHandle {
    fn drop(&mut self) {
        self.run.handles.fetch_sub(1, Ordering::AcqRel);
    }
}

impl RunHandle {
    pub(crate) fn new(run: Arc<RunState>) -> Self {
        run.handles.fetch_add(1, Ordering::AcqRel);
        RunHandle { run }
    }

    /// The run's id: the one it was submitted with for a durable run, else one the executor made (see
    /// [`RunReport::id`]).
    pub fn id(&self) -> RunId {
        self.run.id
    }

    /// Waits for the run to end (for a durable run, until its checkpoints are durable), and reports.
    pub fn wait(&self) -> RunReport {
        self.run.wait(None);
        self.run.await_durability();
        self.run.report()
    }

    /// Waits at most `limit` for the run to end; `None` if it is still going. (A durable run's final
    /// sync is waited for in full.)
    pub fn wait_timeout(&self, limit: Duration) -> Option<RunReport> {
        self.run.wait(Some(limit)).then(|| {
            self.run.await_durability();
            self.run.report()
        })
    }

    /// The number of values in the run's context (see [`NodeCtx::put`](crate::NodeCtx::put)).
    pub fn context_len(&self) -> usize {
        self.run
            .context
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// How far the run is: nodes finished (completed, failed, skipped, cancelled or restored) and nodes
    /// in all. Cheap (one atomic load): for a progress bar.
    pub fn progress(&self) -> (usize, usize) {
        (self.run.finished_nodes(), self.run.nodes.len())
    }

    /// Waits for the run to end and returns only its status (builds no report, allocates nothing).
    pub fn wait_status(&self) -> RunStatus {
        self.run.wait(None);
        self.run.await_durability();
        self.run.run_status()
    }

    /// Whether the run has ended (its last checkpoints may still be on their way to durability: `wait`
    /// for that).
    pub fn is_finished(&self) -> bool {
        self.run.is_done()
    }

    /// Cancels the run: nodes not started are cancelled, running actions see
    /// [`NodeCtx::is_cancelled`](crate::NodeCtx::is_cancelled). Returns at once; `wait` for the end.
    pub fn cancel(&self) {
        self.run.cancel();
    }
}

/// Awaiting a handle waits for the run's end without holding a thread, and gives its report (for a
/// durable run, the report comes once its checkpoints are durable: that last wait, for one commit of the
/// store, blocks the polling thread).
///
/// ```
/// use flowmem_engine::{Executor, RunStatus, Workflow};
///
/// let mut b = Workflow::builder("awaited");
/// b.node("a", |ctx| {
///     ctx.set_output(1u64);
///     Ok(())
/// });
/// let workflow = b.build()?;
/// let executor = Executor::new(1);
/// let report = futures::executor::block_on(executor.submit(&workflow));
/// assert_eq!(report.status, RunStatus::Completed);
/// # Ok::<(), flowmem_engine::DefinitionError>(())
/// ```
impl std::future::Future for RunHandle {
    type Output = RunReport;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<RunReport> {
        if !self.run.is_done() {
            *self
                .run
                .done_waker
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
            // The run may have ended between the look and the registration.
            if !self.run.is_done() {
                return std::task::Poll::Pending;
            }
        }
        self.run.await_durability();
        std::task::Poll::Ready(self.run.report())
    }
}

impl fmt::Debug for RunHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunHandle")
            .field("id", &self.run.id)
            .field("workflow", &self.run.graph.name)
            .field("finished", &self.is_finished())
            .finish()
    }
}
