//! A worker thread: its loop, its idle protocol (yield, then sleep), and its thread-local state.

use std::{
    cell::RefCell,
    panic::AssertUnwindSafe,
    sync::{Arc, PoisonError, atomic::Ordering},
    time::Duration,
};

use crossbeam_deque::Worker;
use flowmem_alloc::Arena;
use flowmem_pool::BufferPool;

use crate::{
    ActionError, Value,
    action::Inputs,
    run::{NodeStatus, RunState},
};

use super::{
    RunRef, Task, WORKER_PANICS,
    attempt::{After, execute, panic_message, pay},
    shared::Shared,
};

/// Idle checks before a worker sleeps, each after yielding the CPU. Yielding rather than spinning: on a
/// machine with no core to spare, a spinning worker holds the core that the thread about to submit more
/// work (or to take a run's end) needs. Measured with `node_cost alone10` on 2 cores, a 10-node run
/// alone took 11 µs with 256 spins first and 3.6–4.6 µs without them.
const IDLE_ROUNDS: usize = 32;

thread_local! {
    /// The mutable state of the worker running on this thread (none on other threads), beside the
    /// [`Here`] handed down: the settle list, the retry jitter's state, and the actions' scratch arena
    /// (lent through [`NodeInputs`]).
    pub(super) static LOCAL: RefCell<Option<WorkerLocal>> = const { RefCell::new(None) };
}

/// The worker a node's attempt runs on, handed down from its loop to everything the attempt's end
/// decides: its deque (the dependents the node makes ready go there, no thread-local to look up per
/// dependent) and its number (its row of counters). Every attempt runs on a worker: wakers and timers
/// only queue their node from outside.
#[derive(Clone, Copy)]
pub(super) struct Here<'a> {
    pub(super) deque: &'a Worker<Task>,
    pub(super) me: usize,
}

/// A worker thread's own state, in its thread-local.
pub(super) struct WorkerLocal {
    /// Nodes whose fate is decided without running them (skipped, cancelled), processed in a loop
    /// rather than by recursion; kept across calls, so it stops allocating once grown.
    pub(super) settle: Vec<(u32, NodeStatus)>,
    pub(super) random: u64,
    /// The actions' scratch memory (`arena` option): reset after each node, so it keeps its blocks and
    /// serves every node this worker runs without allocating once warm. Boxed: it is lent to each node
    /// that asks, and a pointer moves cheaper than the arena.
    pub(super) scratch: Option<Box<Arena>>,
}

pub(super) fn worker_main(shared: &Arc<Shared>, deque: Worker<Task>, me: usize) {
    LOCAL.with(|l| {
        *l.borrow_mut() = Some(WorkerLocal {
            settle: Vec::new(),
            scratch: shared
                .memory
                .arena
                .then(|| Box::new(Arena::with_block_size(shared.memory.arena_block_size))),
            random: 0x9E37_79B9_7F4A_7C15 ^ (me as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
        })
    });
    let here = Here { deque: &deque, me };
    // Actions' panics are caught around the action; one here is the executor's own bug. It must not take
    // the worker down (the runs it would leave behind could never end): the worker counts it and goes
    // back to serving. Caught around the loop rather than each task: entering a catch costs on every
    // node (the task being executed is lost either way).
    while let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(|| serve(shared, here))) {
        shared.count(here, WORKER_PANICS, 1);
        eprintln!(
            "flowmem-engine: worker {me} caught a panic outside any action (an executor bug; please \
             report it): {}",
            panic_message(payload.as_ref())
        );
    }
    LOCAL.with(|l| *l.borrow_mut() = None);
}

/// Worker `here`'s loop: executes tasks until the executor shuts down with no run in flight; sleeps
/// when there is nothing to do.
fn serve(shared: &Arc<Shared>, here: Here<'_>) {
    // The task to run next: a dependent the last node made ready, run before anything queued.
    let mut next: Option<Task> = None;
    // Nodes of a run finished on this worker and not yet taken off the run's unfinished count (see
    // `After::Owed`): given to the next task if it is of the same run, else paid before it.
    let mut owed: Option<(RunRef, u32)> = None;
    loop {
        if let Some(mut task) = next
            .take()
            .or_else(|| shared.find_task(here.deque, here.me))
        {
            if let Some((run, finished)) = owed.take() {
                // The same run (its state cannot have been reused: the count owed keeps it unfinished).
                if run.ptr_eq(task.run) {
                    task.carried += finished;
                } else {
                    pay(shared, run, finished);
                }
            }
            match execute(shared, here, task) {
                After::Next(task) => next = Some(task),
                After::Owed(run, finished) => owed = Some((run, finished)),
                After::Nothing => {}
            }
            continue;
        }
        if let Some((run, finished)) = owed.take() {
            pay(shared, run, finished);
            continue;
        }
        if shared.shutdown.load(Ordering::Acquire)
            && shared.runs_in_flight.load(Ordering::Acquire) == 0
        {
            return;
        }
        // Nothing to do: look again for a while, yielding the CPU between looks, before going to sleep —
        // work often arrives within microseconds, and a sleep and wake-up cost two system calls.
        let mut found = false;
        for _ in 0..IDLE_ROUNDS {
            std::thread::yield_now();
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
}

/// The worker's scratch arena, lent to the node that asks for scratch memory first (none off the workers,
/// or while lent).
fn take_worker_scratch() -> Option<Box<Arena>> {
    LOCAL.with(|l| l.borrow_mut().as_mut().and_then(|w| w.scratch.take()))
}

/// What a sync node reaches while a worker runs it: its run (dependencies' outputs, the context) and the
/// memory the executor recycles (the worker's scratch arena, the buffer pool).
pub(super) struct NodeInputs<'a> {
    pub(super) run: &'a RunState,
    pub(super) node: u32,
    pub(super) buffers: Option<&'a BufferPool>,
    /// Whether scratch memory comes from the worker's arena (`arena` option).
    pub(super) worker_scratch: bool,
    /// The block size of a scratch arena made for the node (`arena` off).
    pub(super) arena_block_size: usize,
}

impl Inputs for NodeInputs<'_> {
    fn input(&self, name: &str) -> Option<&Value> {
        self.run.input(self.node, name)
    }

    fn for_each_input(&self, f: &mut dyn FnMut(&str, &Value)) {
        self.run.for_each_input(self.node, f);
    }

    fn put(&self, key: &str, value: Value) -> Result<Option<Value>, ActionError> {
        self.run.put(key, value)
    }

    fn fetch(&self, key: &str) -> Option<Value> {
        self.run.fetch(key)
    }

    fn scratch_arena(&self) -> Box<Arena> {
        self.worker_scratch
            .then(take_worker_scratch)
            .flatten()
            .unwrap_or_else(|| Box::new(Arena::with_block_size(self.arena_block_size)))
    }

    fn buffer_pool(&self) -> Option<&BufferPool> {
        self.buffers
    }
}
