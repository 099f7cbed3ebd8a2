//! One attempt of a node, and everything its end decides: its output, a retry after a back-off, its final
//! status and what that settles downstream (dependents ready, skipped or cancelled), the run's end.

use std::{
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex, PoisonError, atomic::Ordering},
    task::{Wake, Waker},
    time::{Duration, Instant},
};

use crate::{
    ActionError, NodeCtx, Value,
    action::Work,
    run::{AttemptOutcome, NodeStatus},
    trace,
};

use super::{
    ACTIVE, COMPLETED, FAILED, RETRIED, RunRef, SKIPPED, Task,
    poll::poll_node,
    shared::Shared,
    worker::{Here, LOCAL, NodeInputs},
};

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

/// Runs one attempt of a node (a sync node's whole attempt; a step of an async node's), and everything its
/// end decides. Returns what that leaves the worker (see [`After`]).
pub(super) fn execute(shared: &Arc<Shared>, here: Here<'_>, task: Task) -> After {
    let Task { run, node, carried } = task;
    let def = &run.graph().nodes[node as usize];
    let action = match &def.work {
        Work::Sync(action) => action,
        Work::Async(action) => {
            // Not the last: this node is unfinished.
            run.finish_many(carried);
            let action = Arc::clone(action);
            poll_node(shared, here, run.to_arc(), node, &action);
            return After::Nothing;
        }
    };
    if let Some(status) = run.stopping() {
        return release_and_settle(shared, here, run, node, status, carried);
    }
    let attempt = run.begin_attempt(node);
    shared.count(here, ACTIVE, 1);
    // The clock is read only if the run times its nodes or this node has a timeout; the time spent is
    // two raw reads of the CPU's time-stamp counter, scaled once (`quanta`: calibrated against the OS
    // clock; the OS clock where the counter is not reliable), the deadline from the OS clock.
    let clock = &shared.clock;
    let started = (run.times_nodes() || def.timeout.is_some()).then(|| clock.raw());
    // A timeout too long for the clock (`Duration::MAX`) is no timeout.
    let deadline = def.timeout.and_then(|t| Instant::now().checked_add(t));
    let inputs = NodeInputs {
        run: &run,
        node,
        buffers: shared.memory.pooled_buffers.then_some(&shared.buffers),
        worker_scratch: shared.memory.arena,
        arena_block_size: shared.memory.arena_block_size,
    };
    let mut ctx = NodeCtx::new(&def.name, attempt, &inputs, run.stop_flag(), deadline);
    let span = trace::attempt_span(run.span(), &def.name, attempt, || Some(here.me));
    let entered = trace::enter(&span);
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| action.run(&mut ctx)));
    drop(entered);
    let span_end = started.map(|s| (s, clock.raw()));
    let (output, deferred, scratch) = ctx.into_parts();
    shared.count(here, ACTIVE, u64::MAX); // wrapping: minus one
    // The worker's scratch arena, if the action borrowed it: reset, and back to the worker.
    if let Some(mut arena) = scratch
        && shared.memory.arena
    {
        arena.reset();
        LOCAL.with(|l| {
            if let Some(w) = l.borrow_mut().as_mut() {
                w.scratch = Some(arena);
            }
        });
    }
    let result = match outcome {
        Ok(result) => result.and(deferred),
        Err(payload) => Err(ActionError::panicked(panic_message(payload.as_ref()))),
    };
    // The common case, decided here rather than in `conclude` (no `Ended` to build and hand over): a
    // success of a node without timeout, in a run that neither checkpoints nor records attempts.
    if result.is_ok() && def.timeout.is_none() && !run.is_durable() && !run.records_attempts() {
        if let Some((s, e)) = span_end {
            run.add_nanos(node, clock.delta_as_nanos(s, e));
        }
        run.set_output(node, output);
        return release_and_settle(shared, here, run, node, NodeStatus::Completed, carried);
    }
    let ended = Ended {
        attempt,
        took: span_end.map_or(Duration::ZERO, |(s, e)| clock.delta(s, e)),
        result,
        output,
    };
    conclude(shared, here, run, node, ended, carried)
}

/// How an attempt ended.
pub(super) struct Ended {
    attempt: u32,
    took: Duration,
    result: Result<(), ActionError>,
    output: Value,
}

impl Ended {
    pub(super) fn new(attempt: u32, took: Duration, result: Result<(), ActionError>) -> Self {
        Ended {
            attempt,
            took,
            result,
            output: Value::Unit,
        }
    }

    pub(super) fn with_output(mut self, output: Value) -> Self {
        self.output = output;
        self
    }
}

/// What an attempt's end leaves its worker.
pub(super) enum After {
    /// Nothing to run or to count: an async node waits, or a retry was queued (its finished count paid).
    Nothing,
    /// A dependent the node made ready, to be the worker's next task (run at once, where the run's memory
    /// is warm; never in a queue, so a chain does not hop between workers), carrying the count of the
    /// run's nodes finished before it on this worker.
    Next(Task),
    /// No dependent made ready: this many of the run's nodes finished here and are not yet taken off its
    /// count of unfinished nodes. The worker hands them to its next task if that is of the same run, and
    /// otherwise [`pay`]s them, before a task of another run or before it idles: one read-modify-write on
    /// the run's counter per switch of run, not per node.
    Owed(RunRef, u32),
}

/// What the end of an attempt decides, for sync and async nodes alike (a sync node's plain success is
/// decided in `execute` without coming here): a timeout or a cancellation overrides the result; a completed node's output is checkpointed (durable runs) before any dependent
/// can start, then it settles; a failure is retried after its back-off, or settles the node as failed.
pub(super) fn conclude(
    shared: &Arc<Shared>,
    here: Here<'_>,
    run: RunRef,
    node: u32,
    ended: Ended,
    carried: u32,
) -> After {
    let def = &run.graph().nodes[node as usize];
    run.add_time(node, ended.took);
    let result = match (ended.result, def.timeout) {
        (_, Some(limit)) if ended.took > limit => Err(ActionError::timed_out(limit)),
        (r, _) if run.is_cancelled() && r.is_err() => Err(ActionError::cancelled()),
        (r, _) => r,
    };
    let took = ended.took;
    let output = ended.output;
    let result = result.and_then(|()| run.checkpoint(node, &output).map(|()| output));
    let attempt = ended.attempt;
    let record = |outcome| {
        if run.records_attempts() {
            run.record_attempt(node, attempt, took, Some(here.me), outcome);
        }
    };
    match result {
        Ok(output) => {
            record(AttemptOutcome::Completed);
            run.set_output(node, output);
            release_and_settle(shared, here, run, node, NodeStatus::Completed, carried)
        }
        Err(error) => {
            let retries_left = attempt <= def.retry.max_retries();
            if error.is_retryable() && retries_left && run.stopping().is_none() {
                // Not the last: this node is unfinished.
                record(AttemptOutcome::Retried(error.kind()));
                run.finish_many(carried);
                shared.count(here, RETRIED, 1);
                let random = LOCAL.with(|l| {
                    l.borrow_mut().as_mut().map_or(attempt as u64, |local| {
                        local.random ^= local.random << 13;
                        local.random ^= local.random >> 7;
                        local.random ^= local.random << 17;
                        local.random
                    })
                });
                let delay = def.retry.delay(attempt, random);
                trace::retrying(run.span(), &def.name, attempt, &error, delay);
                let task = Task {
                    run,
                    node,
                    carried: 0,
                };
                if delay.is_zero() {
                    shared.push(here, task);
                } else {
                    RetryWake::arm(Arc::new(RetryWake {
                        shared: Arc::clone(shared),
                        task: Mutex::new(Some(task)),
                        due: retry_due(delay),
                    }));
                }
                return After::Nothing;
            }
            let status = if error.kind() == crate::ActionErrorKind::Cancelled {
                record(AttemptOutcome::Cancelled);
                trace::cancelled(run.span(), &def.name);
                NodeStatus::Cancelled
            } else {
                record(AttemptOutcome::Failed(error.kind()));
                trace::failed(run.span(), &def.name, attempt, &error);
                run.set_error(node, error);
                if run.fails_fast() {
                    run.halt();
                }
                NodeStatus::Failed
            };
            release_and_settle(shared, here, run, node, status, carried)
        }
    }
}

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_string())
}

/// Frees the node's concurrency slot (starting a node that waited for it), then settles the node (see
/// `settle`).
pub(super) fn release_and_settle(
    shared: &Shared,
    here: Here<'_>,
    run: RunRef,
    node: u32,
    status: NodeStatus,
    carried: u32,
) -> After {
    if let Some(next) = run.release_slot() {
        shared.push(
            here,
            Task {
                run,
                node: next,
                carried: 0,
            },
        );
    }
    settle(shared, here, run, node, status, carried)
}

/// Records a node's final status and walks what it decides: dependents whose last dependency this was
/// become ready, or are settled at once as skipped or cancelled (iteratively, so a long chain of skips uses
/// no stack). The first dependent made ready is not queued but returned, to be worker `here`'s next task,
/// with the count of finished nodes it carries (`carried` and those settled here); with none, that count
/// is returned as owed (see [`After`]).
fn settle(
    shared: &Shared,
    here: Here<'_>,
    run: RunRef,
    node: u32,
    status: NodeStatus,
    carried: u32,
) -> After {
    let mut next = None;
    let mut finished = carried;
    // Nodes settled without running (skipped, cancelled), in the worker's kept list once there is one.
    let mut scratch: Option<Vec<(u32, NodeStatus)>> = None;
    let mut current = Some((node, status));
    while let Some((node, status)) = current
        .take()
        .or_else(|| scratch.as_mut().and_then(Vec::pop))
    {
        run.set_status(node, status);
        let counter = match status {
            NodeStatus::Completed => COMPLETED,
            NodeStatus::Failed => FAILED,
            _ => SKIPPED,
        };
        shared.count(here, counter, 1);
        let g = run.graph();
        for &d in g.dependents(node) {
            if !run.release(d) {
                continue;
            }
            // `d`'s last dependency just settled.
            let fate = run
                .stopping()
                .or_else(|| (!run.dependencies_completed(d)).then_some(NodeStatus::Skipped));
            match fate {
                Some(fate) => scratch
                    .get_or_insert_with(|| {
                        LOCAL
                            .with(|l| {
                                l.borrow_mut()
                                    .as_mut()
                                    .map(|local| std::mem::take(&mut local.settle))
                            })
                            .unwrap_or_default()
                    })
                    .push((d, fate)),
                None if !run.take_slot(d) => {}
                None if next.is_none() => next = Some(d),
                // With a next task kept, a node queued now is work to share: a sleeper is woken.
                None => shared.push_to_share(
                    here,
                    Task {
                        run,
                        node: d,
                        carried: 0,
                    },
                ),
            }
        }
        finished += 1;
    }
    if let Some(scratch) = scratch {
        LOCAL.with(|l| {
            if let Some(local) = l.borrow_mut().as_mut() {
                local.settle = scratch;
            }
        });
    }
    match next {
        Some(next) => After::Next(Task {
            run,
            node: next,
            carried: finished,
        }),
        None => After::Owed(run, finished),
    }
}

/// Takes `finished` nodes off `run`'s count of unfinished nodes; if they were the last, the run ends
/// here: it completes, and its in-flight reference is given back.
pub(super) fn pay(shared: &Shared, run: RunRef, finished: u32) {
    if !run.finish_many(finished) {
        return;
    }
    run.complete();
    // No worker needs waking for this: a shutting-down executor wakes its sleepers once, and from then on
    // they look for the last run's end without sleeping. (A wake-up here cost a system call per run, and
    // kept the run's state from its next run for as long: a submission right after the end would find it
    // still referenced.)
    shared.runs_in_flight.fetch_sub(1, Ordering::AcqRel);
    #[allow(
        unsafe_code,
        reason = "the run's in-flight reference, given back by the worker that ends the run"
    )]
    // SAFETY: this thread counted the run's last node finished, once (`finish_many` is true for one
    // caller): no task of the run is left, and nothing after this uses the run.
    unsafe {
        run.release_in_flight();
    }
}
