//! Async nodes on the workers: polling an attempt's future, parking it while it waits, and the waker that
//! queues the node again.
//!
//! A node's future is polled by whichever worker takes its task. Pending, it is put back in the node's
//! slot and the worker moves on: the future holds no thread. Its waker (one per node of a run state, made
//! once and reused by every attempt and every run of a recycled state: no allocation per poll) queues the
//! node on the executor when woken. A wake that comes while the future is being polled is remembered and
//! acted on when the poll returns, so none is lost.
//!
//! The attempt ends when the future is ready, or, checked before each poll, when its timeout has passed
//! or its run was cancelled or stopped: then the future is dropped there (a timer wakes it at its
//! deadline, and a cancellation wakes every parked node of the run), so what it holds is released.

use std::{
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex, OnceLock, PoisonError, Weak},
    task::{Context, Poll, Wake, Waker},
    time::Instant,
};

use crate::{
    ActionError, AsyncAction, AsyncCtx, BoxFuture, Value,
    run::{AttemptOutcome, RunState},
    trace,
};

use super::{
    ACTIVE, RunRef, Task,
    attempt::{After, Ended, conclude, panic_message, pay, release_and_settle},
    shared::Shared,
    worker::Here,
};

/// The async attempt in flight of one node of a run state.
#[derive(Default)]
pub(crate) struct AsyncSlot {
    /// The attempt while its future waits (taken by the worker that polls it).
    in_flight: Mutex<Option<InFlight>>,
    /// The output the attempt's `AsyncCtx` set.
    pub(crate) output: Mutex<Value>,
    /// The node's waker, made on first use.
    waker: OnceLock<Arc<NodeWaker>>,
}

/// An attempt whose future has not finished: the future, when the attempt started, its deadline, its
/// number.
struct InFlight {
    future: BoxFuture,
    started: Instant,
    deadline: Option<Instant>,
    attempt: u32,
    /// The attempt's `tracing` span, entered at each poll.
    span: trace::AttemptSpan,
}

impl AsyncSlot {
    /// Wakes the node if its future is parked (a cancellation or a stop: the next poll drops it).
    pub(crate) fn wake_parked(&self) {
        if let Some(w) = self.waker.get() {
            w.wake_by_ref();
        }
    }
}

/// The waker of one node of a run state.
pub(crate) struct NodeWaker {
    shared: Weak<Shared>,
    node: u32,
    state: Mutex<WakeState>,
}

#[derive(Default)]
struct WakeState {
    /// A worker is polling the future now.
    polling: bool,
    /// Woken while being polled: poll again.
    notified: bool,
    /// The run, while the future is parked waiting for a wake (the only strong reference the waker takes).
    parked: Option<Arc<RunState>>,
}

impl Wake for NodeWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.polling {
            state.notified = true;
            return;
        }
        // Not parked: the attempt is over (a late or spurious wake), nothing to do.
        let Some(run) = state.parked.take() else {
            return;
        };
        drop(state);
        if let Some(shared) = self.shared.upgrade() {
            // The node is unfinished while it is parked: the run's in-flight reference is held, and the
            // parked `Arc` can go.
            shared.push_external(Task {
                run: RunRef::of(&run),
                node: self.node,
                carried: 0,
            });
        }
    }
}

/// Runs (a step of) an attempt of async node `node`: starts it if none is in flight, then polls it once.
pub(super) fn poll_node(
    shared: &Arc<Shared>,
    here: Here<'_>,
    run: Arc<RunState>,
    node: u32,
    action: &Arc<dyn AsyncAction>,
) {
    let slot = run.async_slot(node);
    let waker = Arc::clone(slot.waker.get_or_init(|| {
        Arc::new(NodeWaker {
            shared: Arc::downgrade(shared),
            node,
            state: Mutex::new(WakeState::default()),
        })
    }));
    // Polling from here on: a wake from now is remembered (a cancellation included).
    {
        let mut state = waker.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.polling = true;
        state.notified = false;
        state.parked = None;
    }
    let parked = slot
        .in_flight
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    let mut flight = match parked {
        Some(flight) => flight,
        None => {
            if let Some(status) = run.stopping() {
                end_polling(&waker);
                queue_next(
                    shared,
                    here,
                    release_and_settle(shared, here, RunRef::of(&run), node, status, 0),
                );
                return;
            }
            let attempt = run.begin_attempt(node);
            shared.count(here, ACTIVE, 1);
            let started = Instant::now();
            let def = &run.graph().nodes[node as usize];
            let deadline = def.timeout.and_then(|t| started.checked_add(t));
            *slot.output.lock().unwrap_or_else(PoisonError::into_inner) = Value::Unit;
            let ctx = AsyncCtx::new(Arc::clone(&run), node, attempt, deadline);
            let span = trace::attempt_span(run.span(), &def.name, attempt, || Some(here.me));
            let entered = trace::enter(&span);
            let made = shared
                .in_runtime(|| std::panic::catch_unwind(AssertUnwindSafe(|| action.call(ctx))));
            drop(entered);
            let future = match made {
                Ok(f) => f,
                Err(payload) => {
                    end_polling(&waker);
                    let ended =
                        Ended::new(attempt, started.elapsed(), Err(panicked(payload.as_ref())));
                    finish(shared, here, &run, node, slot, ended);
                    return;
                }
            };
            if let Some(d) = deadline {
                // Wakes the node at its deadline, so that a future waiting on something slower is dropped.
                flowmem_pool::wake_at(d, Waker::from(Arc::clone(&waker)));
            }
            InFlight {
                future,
                started,
                deadline,
                attempt,
                span,
            }
        }
    };
    // Stopped or out of time: drop the future here, before it runs again.
    if let Some(status) = run.stopping() {
        drop(flight.future);
        end_polling(&waker);
        shared.count(here, ACTIVE, u64::MAX);
        let took = flight.started.elapsed();
        run.add_time(node, took);
        if run.records_attempts() {
            run.record_attempt(
                node,
                flight.attempt,
                took,
                Some(here.me),
                AttemptOutcome::Cancelled,
            );
        }
        trace::cancelled(run.span(), &run.graph().nodes[node as usize].name);
        queue_next(
            shared,
            here,
            release_and_settle(shared, here, RunRef::of(&run), node, status, 0),
        );
        return;
    }
    if flight.deadline.is_some_and(|d| Instant::now() >= d) {
        drop(flight.future);
        end_polling(&waker);
        let limit = run.graph().nodes[node as usize].timeout.unwrap_or_default();
        let timed_out = Err(ActionError::timed_out(limit));
        let ended = Ended::new(flight.attempt, flight.started.elapsed(), timed_out);
        finish(shared, here, &run, node, slot, ended);
        return;
    }
    let std_waker = Waker::from(Arc::clone(&waker));
    let mut cx = Context::from_waker(&std_waker);
    let entered = trace::enter(&flight.span);
    let polled = shared.in_runtime(|| {
        std::panic::catch_unwind(AssertUnwindSafe(|| flight.future.as_mut().poll(&mut cx)))
    });
    drop(entered);
    let result = match polled {
        Ok(Poll::Pending) => {
            *slot
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(flight);
            let mut state = waker.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.polling = false;
            if std::mem::take(&mut state.notified) {
                // Woken while it was being polled: its turn again.
                drop(state);
                shared.push(
                    here,
                    Task {
                        run: RunRef::of(&run),
                        node,
                        carried: 0,
                    },
                );
            } else {
                state.parked = Some(Arc::clone(&run));
            }
            return;
        }
        Ok(Poll::Ready(result)) => result,
        Err(payload) => Err(panicked(payload.as_ref())),
    };
    drop(flight.future);
    end_polling(&waker);
    let ended = Ended::new(flight.attempt, flight.started.elapsed(), result);
    finish(shared, here, &run, node, slot, ended);
}

/// The attempt is over: no wake queues the node any more (until its next attempt polls).
fn end_polling(waker: &NodeWaker) {
    let mut state = waker.state.lock().unwrap_or_else(PoisonError::into_inner);
    state.polling = false;
    state.notified = false;
    state.parked = None;
}

/// Ends the attempt with `ended`: its output (from the slot), then what the end decides, as for a sync
/// node.
fn finish(
    shared: &Arc<Shared>,
    here: Here<'_>,
    run: &Arc<RunState>,
    node: u32,
    slot: &AsyncSlot,
    ended: Ended,
) {
    shared.count(here, ACTIVE, u64::MAX); // wrapping: minus one
    let output = std::mem::take(&mut *slot.output.lock().unwrap_or_else(PoisonError::into_inner));
    queue_next(
        shared,
        here,
        conclude(
            shared,
            here,
            RunRef::of(run),
            node,
            ended.with_output(output),
            0,
        ),
    );
}

/// What an async node's end leaves: the dependent it made ready is queued (the worker pops it next), its
/// finished count paid at once.
fn queue_next(shared: &Shared, here: Here<'_>, after: After) {
    match after {
        After::Next(task) => shared.push(here, task),
        After::Owed(run, finished) => pay(shared, run, finished),
        After::Nothing => {}
    }
}

/// The error of an async action that panicked (making or polling its future).
fn panicked(payload: &(dyn std::any::Any + Send)) -> ActionError {
    ActionError::panicked(runtime_hint(panic_message(payload)))
}

/// A panic from tokio for want of a runtime gets a word on what to do.
fn runtime_hint(message: String) -> String {
    if message.contains("Tokio") || message.contains("reactor") {
        format!(
            "{message} (an async node that uses tokio's timers or I/O needs a runtime: give the executor \
             one with `Executor::builder().tokio(handle)`)"
        )
    } else {
        message
    }
}
