//! The executor: persistent worker threads with work stealing, running many workflow runs at once.

use std::{
    cell::RefCell,
    fmt,
    panic::AssertUnwindSafe,
    sync::{
        Arc, Condvar, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Wake, Waker},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use crossbeam_queue::ArrayQueue;
use flowmem_alloc::{Arena, CachePadded};
use flowmem_pool::BufferPool;

use crate::{
    ActionError, DurabilityError, MemoryOptions, NodeCtx, RunId, Store, Value, Workflow,
    run::{
        ContextPool, Durable, NodeInputs, NodeStatus, RunHandle, RunOptions, RunReport,
        RunSettings, RunState,
    },
};

/// The most run states kept per workflow (`pooled_node_state`): as many runs of one workflow as are
/// usually in flight at once.
const STATES_PER_WORKFLOW: usize = 64;
/// Idle checks before a worker sleeps: first spinning, then yielding.
const IDLE_SPINS: usize = 256;
const IDLE_ROUNDS: usize = IDLE_SPINS + 32;
/// How long a submission waits, at most, for a state whose ended run is still being let go of by a
/// worker (normally a few instructions; longer only when the OS preempted that worker).
const STATE_WAIT: Duration = Duration::from_millis(5);
/// The most run states kept in all.
const STATES_IN_ALL: usize = 4096;

#[derive(Default)]
struct RecycledStates {
    by_graph: std::collections::HashMap<usize, Vec<Arc<RunState>>, foldhash::fast::FixedState>,
    total: usize,
}

/// A node of a run, ready to execute.
struct Task {
    run: Arc<RunState>,
    node: u32,
}

/// The executor's counters, read with [`Executor::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
}

const ACTIVE: usize = 0;
const COMPLETED: usize = 1;
const FAILED: usize = 2;
const RETRIED: usize = 3;
const SKIPPED: usize = 4;
const WORKER_PANICS: usize = 5;
const COUNTERS: usize = 6;

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

struct Shared {
    /// Work from outside the workers (submissions, retries due): a preallocated ring first, so a steady
    /// stream of submissions allocates nothing; the growable injector when it is full.
    ring: ArrayQueue<Task>,
    overflow: Injector<Task>,
    stealers: Vec<Stealer<Task>>,
    sleeping: AtomicUsize,
    /// A wake-up was sent and its sleeper has not picked it up yet: further pushes need not send another.
    wake_pending: AtomicBool,
    sleep_lock: Mutex<()>,
    wake: Condvar,
    shutdown: AtomicBool,
    runs_in_flight: AtomicUsize,
    next_run: AtomicU64,
    /// Per-worker counters (one writer each, summed on read: no contended read-modify-write on the hot
    /// path), plus a last row for counts made off the workers.
    counters: Box<[CachePadded<[AtomicU64; COUNTERS]>]>,
    memory: MemoryOptions,
    buffers: BufferPool,
    /// Recycled run states by workflow graph (its address; a pooled state holds its graph, so the address
    /// cannot be reused while the entry lives) (`pooled_node_state`).
    states: Mutex<RecycledStates>,
    contexts: ContextPool,
}

thread_local! {
    /// The deque of the worker running on this thread (none on other threads), and its scratch list.
    static LOCAL: RefCell<Option<WorkerLocal>> = const { RefCell::new(None) };
}

struct WorkerLocal {
    id: usize,
    deque: Worker<Task>,
    /// Nodes whose fate is decided without running them (skipped, cancelled), processed in a loop
    /// rather than by recursion; kept across calls, so it stops allocating once grown.
    settle: Vec<(u32, NodeStatus)>,
    random: u64,
    /// The actions' scratch memory (`arena` option): reset after each node, so it keeps its blocks and
    /// serves every node this worker runs without allocating once warm.
    scratch: Option<Arena>,
}

impl Executor {
    /// An executor with `workers` threads (0: one per available CPU) and every memory option on.
    pub fn new(workers: usize) -> Self {
        Executor::with_memory(workers, MemoryOptions::ALL)
    }

    /// An executor with `workers` threads (0: one per available CPU) and the given memory options.
    pub fn with_memory(workers: usize, memory: MemoryOptions) -> Self {
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
            counters: (0..=workers)
                .map(|_| CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
            memory,
            buffers: BufferPool::new(),
            states: Mutex::new(RecycledStates::default()),
            contexts: Arc::new(Mutex::new(Vec::new())),
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

    /// A run state for `workflow`: a recycled one whose last run is over and unreferenced
    /// (`pooled_node_state`), or a new one.
    fn acquire_state(&self, id: u64, workflow: &Workflow, options: RunSettings) -> Arc<RunState> {
        let shared = &self.shared;
        let fresh = || self.new_state(id, workflow, options);
        if !shared.memory.pooled_node_state {
            return fresh();
        }
        let mut states = shared.states.lock().unwrap_or_else(PoisonError::into_inner);
        let RecycledStates { by_graph, total } = &mut *states;
        let key = Arc::as_ptr(&workflow.graph) as usize;
        if let Some(list) = by_graph.get_mut(&key) {
            // A run that has just ended may still be referenced by a worker that settled one of its nodes,
            // for a few instructions (or a time slice, if the OS preempted it there): wait for that, up to
            // STATE_WAIT, rather than allocate a duplicate state.
            let mut waited_since = None;
            for round in 0.. {
                let mut lingering = false;
                for state in list.iter_mut() {
                    if let Some(idle) = Arc::get_mut(state) {
                        debug_assert!(idle.is_for(workflow));
                        idle.reset(id, options, &shared.memory);
                        return Arc::clone(state);
                    }
                    lingering |= state.is_being_let_go();
                }
                if !lingering
                    || waited_since.get_or_insert_with(Instant::now).elapsed() >= STATE_WAIT
                {
                    break;
                }
                if round > 16 {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
        }
        let state = fresh();
        if *total < STATES_IN_ALL {
            let list = by_graph.entry(key).or_default();
            if list.len() < STATES_PER_WORKFLOW {
                list.push(Arc::clone(&state));
                *total += 1;
            }
        }
        state
    }

    /// A new run state (not recycled).
    fn new_state(&self, id: u64, workflow: &Workflow, options: RunSettings) -> Arc<RunState> {
        Arc::new(RunState::new(
            id,
            workflow,
            options,
            &self.shared.memory,
            &self.shared.contexts,
        ))
    }

    /// Drops the recycled run states of workflows (all of them: they are made again on demand), freeing
    /// their memory and the workflows they hold.
    pub fn clear_recycled(&self) {
        let mut states = self
            .shared
            .states
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        states.by_graph.clear();
        states.total = 0;
    }

    /// Starts a run of `workflow` with `options` and returns at once.
    pub fn submit_with(&self, workflow: &Workflow, options: RunOptions) -> RunHandle {
        let id = self.shared.next_run.fetch_add(1, Ordering::Relaxed);
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
        for node in start {
            if run.take_slot(*node) {
                self.shared.push_external(Task {
                    run: Arc::clone(&run),
                    node: *node,
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
    /// store an output or context value that cannot be persisted ([`Value::Opaque`]) fails its node with an
    /// [`ActionErrorKind::Persistence`](crate::ActionErrorKind::Persistence) error. The handle's `wait`
    /// returns once every checkpoint of the run is durable. Submit a run id once at a time.
    ///
    /// # Errors
    /// What the store's [`begin`](Store::begin) returns: the run id was started with another workflow, the
    /// store cannot be read, its records are inconsistent.
    pub fn submit_durable(
        &self,
        workflow: &Workflow,
        store: Arc<dyn Store>,
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
        let id = self.shared.next_run.fetch_add(1, Ordering::Relaxed);
        // Not from the recycled states: a recycled state would keep the store (and its file lock) alive
        // after the run. A durable run's cost is its I/O, not this allocation.
        let state = self.new_state(id, workflow, options.settings);
        let start = state.make_durable(Durable::new(store, run), checkpoints);
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
        store: Arc<dyn Store>,
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
        }
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

impl Shared {
    /// Adds `n` (wrapping) to counter `i` of this worker's row; off the workers, to the shared last row.
    fn count(&self, i: usize, n: u64) {
        let worker = LOCAL.with(|l| l.borrow().as_ref().map(|local| local.id));
        match worker {
            // Single writer: a plain load and store.
            Some(w) => {
                let c = &self.counters[w][i];
                c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
            }
            None => {
                self.counters[self.counters.len() - 1][i].fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Queues work from outside a worker (or for any worker), and wakes one if some sleep.
    fn push_external(&self, task: Task) {
        if let Err(task) = self.ring.push(task) {
            self.overflow.push(task);
        }
        self.notify();
    }

    fn notify(&self) {
        if self.sleeping.load(Ordering::SeqCst) > 0 {
            let _g = self
                .sleep_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.wake.notify_one();
        }
    }

    /// Queues a ready node: on this worker's own deque when called from a worker, else from outside.
    ///
    /// A worker pushing onto an empty deque will pop the task itself next, so nobody is woken for it; a
    /// second task waiting there is work to share, and wakes a sleeper.
    fn push(&self, task: Task) {
        let rejected = LOCAL.with(|l| match l.borrow().as_ref() {
            Some(local) => {
                let surplus = !local.deque.is_empty();
                local.deque.push(task);
                Ok(surplus)
            }
            None => Err(task),
        });
        match rejected {
            Ok(true) => self.notify(),
            Ok(false) => {}
            Err(task) => self.push_external(task),
        }
    }

    fn find_task(&self, local: &Worker<Task>, me: usize) -> Option<Task> {
        if let Some(t) = local.pop() {
            return Some(t);
        }
        if let Some(t) = self.ring.pop() {
            return Some(t);
        }
        loop {
            let mut retry = false;
            match self.overflow.steal_batch_and_pop(local) {
                Steal::Success(t) => return Some(t),
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
            let n = self.stealers.len();
            for k in 1..n {
                match self.stealers[(me + k) % n].steal_batch_and_pop(local) {
                    Steal::Success(t) => return Some(t),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry {
                return None;
            }
        }
    }

    fn has_external_work(&self) -> bool {
        !self.ring.is_empty()
            || !self.overflow.is_empty()
            || self.stealers.iter().any(|s| !s.is_empty())
    }
}

fn worker_main(shared: &Arc<Shared>, deque: Worker<Task>, me: usize) {
    LOCAL.with(|l| {
        *l.borrow_mut() = Some(WorkerLocal {
            id: me,
            deque,
            settle: Vec::new(),
            scratch: shared.memory.arena.then(Arena::new),
            random: 0x9E37_79B9_7F4A_7C15 ^ (me as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
        })
    });
    loop {
        let task = LOCAL.with(|l| {
            let l = l.borrow();
            let local = l.as_ref().expect("set above");
            shared.find_task(&local.deque, me)
        });
        if let Some(task) = task {
            // Actions' panics are caught around the action; one here is the executor's own bug. It must
            // not take the worker down (the runs it would leave behind could never end).
            if let Err(payload) =
                std::panic::catch_unwind(AssertUnwindSafe(|| execute(shared, task)))
            {
                shared.count(WORKER_PANICS, 1);
                eprintln!(
                    "flowmem-engine: worker {me} caught a panic outside any action (an executor bug; please \
                     report it): {}",
                    panic_message(payload.as_ref())
                );
            }
            continue;
        }
        if shared.shutdown.load(Ordering::Acquire)
            && shared.runs_in_flight.load(Ordering::Acquire) == 0
        {
            break;
        }
        // Nothing to do: look again for a while (spinning, then yielding the CPU) before going to sleep —
        // work often arrives within microseconds, and a sleep and wake-up cost two system calls.
        let mut found = false;
        for round in 0..IDLE_ROUNDS {
            if round < IDLE_SPINS {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
            if shared.has_external_work() {
                found = true;
                break;
            }
        }
        if found {
            continue;
        }
        let guard = shared
            .sleep_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        shared.sleeping.fetch_add(1, Ordering::SeqCst);
        if !shared.has_external_work() && !shared.shutdown.load(Ordering::Acquire) {
            // The timeout is a safety net only; wake-ups come from `notify`.
            let _ = shared
                .wake
                .wait_timeout(guard, Duration::from_millis(50))
                .unwrap_or_else(PoisonError::into_inner);
        }
        shared.sleeping.fetch_sub(1, Ordering::SeqCst);
        shared.wake_pending.store(false, Ordering::Release);
    }
    LOCAL.with(|l| *l.borrow_mut() = None);
}

/// The worker's scratch arena, lent to the node that asks for scratch memory first (none off the workers,
/// or while lent).
pub(crate) fn take_worker_scratch() -> Option<Arena> {
    LOCAL.with(|l| l.borrow_mut().as_mut().and_then(|w| w.scratch.take()))
}

/// When a retry after `delay` is due. A delay too long for the clock (a policy whose delays grow to
/// `Duration::MAX`) waits as long as the clock can say: about a century.
fn retry_due(delay: Duration) -> Instant {
    let now = Instant::now();
    [
        delay,
        Duration::from_secs(100 * 365 * 86_400),
        Duration::from_secs(86_400),
    ]
    .into_iter()
    .find_map(|d| now.checked_add(d))
    .unwrap_or(now)
}

/// A retry waiting out its backoff on `flowmem_pool`'s timer thread: woken at the due time, it queues the
/// node again.
/// A wait longer than [`RETRY_POLL`] is taken in steps of it, so that a cancelled run does not wait out a
/// long back-off before it ends.
struct RetryWake {
    shared: Arc<Shared>,
    task: Mutex<Option<Task>>,
    due: Instant,
}

/// The longest a retry waits on the timer before it looks whether its run was cancelled.
const RETRY_POLL: Duration = Duration::from_millis(50);

impl RetryWake {
    /// Sets the timer for the next look: the due time, or one poll step from now if that is sooner.
    fn arm(self: Arc<Self>) {
        let next = Instant::now()
            .checked_add(RETRY_POLL)
            .map_or(self.due, |step| step.min(self.due));
        flowmem_pool::wake_at(next, Waker::from(self));
    }
}

impl Wake for RetryWake {
    fn wake(self: Arc<Self>) {
        let mut slot = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(task) = slot.take() else { return };
        if Instant::now() >= self.due || task.run.stopping().is_some() {
            drop(slot);
            self.shared.push_external(task);
            return;
        }
        *slot = Some(task);
        drop(slot);
        self.arm();
    }
}

/// Runs one attempt of a node, and everything its end decides.
fn execute(shared: &Arc<Shared>, task: Task) {
    let Task { run, node } = task;
    if let Some(status) = run.stopping() {
        release_and_settle(shared, &run, node, status);
        return;
    }
    let def = &run.workflow.graph.nodes[node as usize];
    let attempt = run.attempts[node as usize].fetch_add(1, Ordering::AcqRel) + 1;
    run.set_status(node, NodeStatus::Running);
    shared.count(ACTIVE, 1);
    let started = Instant::now();
    // A timeout too long for the clock (`Duration::MAX`) is no timeout.
    let deadline = def.timeout.and_then(|t| started.checked_add(t));
    let inputs = NodeInputs {
        run: &run,
        node,
        buffers: shared.memory.pooled_buffers.then_some(&shared.buffers),
        worker_scratch: shared.memory.arena,
    };
    let stop_flag = if run.options.policy == crate::FailurePolicy::FailFast {
        &run.halted
    } else {
        &run.cancelled
    };
    let mut ctx = NodeCtx::new(def.name, attempt, &inputs, stop_flag, deadline);
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| def.action.run(&mut ctx)));
    let took = started.elapsed();
    shared.count(ACTIVE, u64::MAX); // wrapping: minus one
    run.add_time(node, took);
    let result = match outcome {
        Ok(result) => result,
        Err(payload) => Err(ActionError::panicked(panic_message(payload.as_ref()))),
    };
    let result = match (result, def.timeout) {
        (_, Some(limit)) if took > limit => Err(ActionError::timed_out(limit)),
        (r, _) if run.cancelled.load(Ordering::Acquire) && r.is_err() => {
            Err(ActionError::cancelled())
        }
        (r, _) => r,
    };
    // A completed node's output is checkpointed (durable runs) before any dependent can start.
    let result = result.and_then(|()| ctx.take_deferred()).and_then(|()| {
        let output: Value = ctx.take_output();
        run.checkpoint(node, &output).map(|()| output)
    });
    // The worker's scratch arena, if the action borrowed it: reset, and back to the worker.
    if let Some(mut arena) = ctx.take_scratch()
        && shared.memory.arena
    {
        arena.reset();
        LOCAL.with(|l| {
            if let Some(w) = l.borrow_mut().as_mut() {
                w.scratch = Some(arena);
            }
        });
    }
    match result {
        Ok(output) => {
            run.set_output(node, output);
            release_and_settle(shared, &run, node, NodeStatus::Completed);
        }
        Err(error) => {
            let retries_left = attempt <= def.retry.max_retries();
            if error.is_retryable() && retries_left && run.stopping().is_none() {
                shared.count(RETRIED, 1);
                let random = LOCAL.with(|l| {
                    l.borrow_mut().as_mut().map_or(attempt as u64, |local| {
                        local.random ^= local.random << 13;
                        local.random ^= local.random >> 7;
                        local.random ^= local.random << 17;
                        local.random
                    })
                });
                let delay = def.retry.delay(attempt, random);
                let task = Task {
                    run: Arc::clone(&run),
                    node,
                };
                if delay.is_zero() {
                    shared.push(task);
                } else {
                    RetryWake::arm(Arc::new(RetryWake {
                        shared: Arc::clone(shared),
                        task: Mutex::new(Some(task)),
                        due: retry_due(delay),
                    }));
                }
                return;
            }
            let status = if error.kind() == crate::ActionErrorKind::Cancelled {
                NodeStatus::Cancelled
            } else {
                run.set_error(node, error);
                if run.options.policy == crate::FailurePolicy::FailFast {
                    run.halted.store(true, Ordering::Release);
                }
                NodeStatus::Failed
            };
            release_and_settle(shared, &run, node, status);
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_string())
}

/// Frees the node's concurrency slot (starting a node that waited for it), then settles the node.
fn release_and_settle(shared: &Shared, run: &Arc<RunState>, node: u32, status: NodeStatus) {
    if let Some(next) = run.release_slot() {
        shared.push(Task {
            run: Arc::clone(run),
            node: next,
        });
    }
    settle(shared, run, node, status);
}

/// Records a node's final status and walks what it decides: dependents whose last dependency this was
/// become ready, or are settled at once as skipped or cancelled (iteratively, so a long chain of skips uses
/// no stack). Completes the run when its last node settles.
fn settle(shared: &Shared, run: &Arc<RunState>, node: u32, status: NodeStatus) {
    let mut scratch = LOCAL
        .with(|l| {
            l.borrow_mut()
                .as_mut()
                .map(|local| std::mem::take(&mut local.settle))
        })
        .unwrap_or_default();
    scratch.push((node, status));
    while let Some((node, status)) = scratch.pop() {
        run.set_status(node, status);
        let counter = match status {
            NodeStatus::Completed => COMPLETED,
            NodeStatus::Failed => FAILED,
            _ => SKIPPED,
        };
        shared.count(counter, 1);
        let g = &run.workflow.graph;
        for &d in g.dependents(node) {
            if run.remaining[d as usize].fetch_sub(1, Ordering::AcqRel) != 1 {
                continue;
            }
            // `d`'s last dependency just settled.
            let fate = run.stopping().or_else(|| {
                g.deps(d)
                    .iter()
                    .any(|x| run.status(*x) != NodeStatus::Completed)
                    .then_some(NodeStatus::Skipped)
            });
            match fate {
                Some(fate) => scratch.push((d, fate)),
                None => {
                    if run.take_slot(d) {
                        shared.push(Task {
                            run: Arc::clone(run),
                            node: d,
                        });
                    }
                }
            }
        }
        if run.finish_one() {
            run.complete();
            shared.runs_in_flight.fetch_sub(1, Ordering::AcqRel);
            // Wake sleepers, so that a shutting-down executor sees the last run end.
            let _g = shared
                .sleep_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            shared.wake.notify_all();
        }
    }
    LOCAL.with(|l| {
        if let Some(local) = l.borrow_mut().as_mut() {
            local.settle = scratch;
        }
    });
}
