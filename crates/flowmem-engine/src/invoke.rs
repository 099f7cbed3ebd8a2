//! Attempts of nodes outside any executor and run: for a scale-out worker (flowmem-postgres' shared
//! runs) that keeps a run's state elsewhere and only needs the nodes' actions run with their inputs.
//! Sync nodes run on the calling thread one after the other; async nodes' futures are polled together on
//! the calling thread (`Workflow::invoke_all`), each dropped at its timeout.

use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
    thread::Thread,
    time::{Duration, Instant},
};

use flowmem_alloc::Arena;
use flowmem_pool::BufferPool;

use crate::{
    ActionError, AsyncCtx, BoxFuture, NodeCtx, RetryPolicy, Value, Workflow,
    action::{Inputs, Work},
    executor::panic_message,
};

/// Why a node cannot be invoked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvokeError {
    /// The workflow has no node of that name.
    #[error("workflow `{workflow}` has no node `{node}`")]
    UnknownNode {
        /// The workflow.
        workflow: String,
        /// The name asked for.
        node: String,
    },
}

/// What one invoked attempt did ([`Workflow::invoke`]).
#[derive(Debug, Clone)]
pub struct Invoked {
    /// How it ended: `Ok` if the action succeeded within the node's timeout; a panic or a timeout is an
    /// `ActionError` of that kind, as on an executor.
    pub result: Result<(), ActionError>,
    /// The output it set (`Unit` if none).
    pub output: Value,
    /// The context values it put, in order.
    pub puts: Vec<(String, Value)>,
    /// Time in the action (for an async node, from its start to its end, waits included).
    pub took: Duration,
}

/// One attempt to invoke ([`Workflow::invoke_all`]): the node, which attempt, its dependencies' outputs
/// (by dependency name) and the run's context.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// The node's name.
    pub node: String,
    /// Which attempt (1 for the first).
    pub attempt: u32,
    /// Its dependencies' outputs, by name.
    pub inputs: Vec<(String, Value)>,
    /// The run's context.
    pub context: Vec<(String, Value)>,
}

/// The inputs of an invoked node (its dependencies' outputs and a context given by the caller), what it
/// puts and its output (for an async node, which reaches them through its `AsyncCtx`), and its
/// cancellation flag.
pub(crate) struct Given {
    node_name: String,
    inputs: Vec<(String, Value)>,
    context: Vec<(String, Value)>,
    puts: Mutex<Vec<(String, Value)>>,
    output: Mutex<Value>,
    cancelled: AtomicBool,
}

impl Given {
    fn new(invocation: Invocation) -> Given {
        Given {
            node_name: invocation.node,
            inputs: invocation.inputs,
            context: invocation.context,
            puts: Mutex::new(Vec::new()),
            output: Mutex::new(Value::Unit),
            cancelled: AtomicBool::new(false),
        }
    }

    pub(crate) fn node_name(&self) -> &str {
        &self.node_name
    }

    pub(crate) fn input(&self, name: &str) -> Option<&Value> {
        self.inputs.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub(crate) fn fetch(&self, key: &str) -> Option<Value> {
        self.puts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .or_else(|| {
                self.context
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            })
    }

    pub(crate) fn put(&self, key: &str, value: Value) -> Result<Option<Value>, ActionError> {
        let before = self.fetch(key);
        self.puts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((key.to_string(), value));
        Ok(before)
    }

    pub(crate) fn output(&self) -> &Mutex<Value> {
        &self.output
    }

    pub(crate) fn cancelled(&self) -> &AtomicBool {
        &self.cancelled
    }

    /// What the attempt did, once it has ended with `result` after `took`.
    fn finish(&self, result: Result<(), ActionError>, took: Duration) -> Invoked {
        Invoked {
            result,
            output: std::mem::take(
                &mut *self.output.lock().unwrap_or_else(PoisonError::into_inner),
            ),
            puts: std::mem::take(&mut *self.puts.lock().unwrap_or_else(PoisonError::into_inner)),
            took,
        }
    }
}

impl Inputs for Given {
    fn input(&self, name: &str) -> Option<&Value> {
        Given::input(self, name)
    }

    fn for_each_input(&self, f: &mut dyn FnMut(&str, &Value)) {
        for (n, v) in &self.inputs {
            f(n, v);
        }
    }

    fn put(&self, key: &str, value: Value) -> Result<Option<Value>, ActionError> {
        Given::put(self, key, value)
    }

    fn fetch(&self, key: &str) -> Option<Value> {
        Given::fetch(self, key)
    }

    fn scratch_arena(&self) -> Box<Arena> {
        Box::new(Arena::new())
    }

    fn buffer_pool(&self) -> Option<&BufferPool> {
        None
    }
}

/// An async attempt in flight in `Workflow::invoke_all`.
struct Pending {
    slot: usize,
    given: Arc<Given>,
    future: Option<BoxFuture>,
    started: Instant,
    timeout: Option<Duration>,
}

impl Pending {
    /// When its node's timeout ends it, if the node has one.
    fn deadline(&self) -> Option<Instant> {
        self.timeout.and_then(|t| self.started.checked_add(t))
    }
}

/// Polls the pending async attempts if one was woken since the last poll, drops those past their
/// deadline (their attempts `TimedOut`), and records the attempts that ended in `out`.
fn poll_pending(
    pending: &mut Vec<Pending>,
    waker: &Arc<ThreadWaker>,
    out: &mut [Option<Result<Invoked, InvokeError>>],
) {
    let woken = waker.woken.swap(false, Ordering::AcqRel);
    let now = Instant::now();
    let thread_waker = Waker::from(Arc::clone(waker));
    let mut cx = Context::from_waker(&thread_waker);
    pending.retain_mut(|p| {
        if let (Some(deadline), Some(limit)) = (p.deadline(), p.timeout)
            && now >= deadline
        {
            // Dropped for real: what the future holds is released now.
            p.given.cancelled.store(true, Ordering::Relaxed);
            p.future = None;
            let took = p.started.elapsed();
            out[p.slot] = Some(Ok(p.given.finish(Err(ActionError::timed_out(limit)), took)));
            return false;
        }
        if !woken {
            return true;
        }
        let Some(future) = p.future.as_mut() else {
            return false;
        };
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)));
        let result = match polled {
            Ok(Poll::Pending) => return true,
            Ok(Poll::Ready(result)) => result,
            Err(payload) => Err(ActionError::panicked(panic_message(payload.as_ref()))),
        };
        p.future = None;
        out[p.slot] = Some(Ok(p.given.finish(result, p.started.elapsed())));
        false
    });
}

/// Wakes the thread that polls (`Workflow::invoke_all`).
struct ThreadWaker {
    thread: Thread,
    woken: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

impl Workflow {
    /// Runs attempt `attempt` of node `name` on this thread, outside any executor: its action sees
    /// `inputs` as its dependencies' outputs (by dependency name) and `context` as the run's context; what
    /// it puts is returned in [`Invoked::puts`], not stored. Panics are caught and the node's timeout
    /// applies, as on an executor (an attempt past it is `TimedOut`, and the action sees
    /// `is_cancelled()` once it has passed). For scale-out workers that keep a run's state elsewhere
    /// (flowmem-postgres' shared runs); an executor does all this itself.
    ///
    /// ```
    /// use flowmem_engine::{Value, Workflow};
    ///
    /// let mut b = Workflow::builder("sum");
    /// b.node("a", |ctx| { ctx.set_output(2u64); Ok(()) });
    /// b.node("double", |ctx| {
    ///     let a = ctx.input_u64("a").unwrap_or(0);
    ///     ctx.put("seen", a);
    ///     ctx.set_output(a * 2);
    ///     Ok(())
    /// })
    /// .after(["a"]);
    /// let workflow = b.build()?;
    /// let done = workflow.invoke("double", 1, &[("a".into(), Value::from(21u64))], &[])?;
    /// assert!(done.result.is_ok());
    /// assert_eq!(done.output.as_u64(), Some(42));
    /// assert_eq!(done.puts[0].0, "seen");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// An async node is run to its end on this thread (see [`invoke_all`](Self::invoke_all), which
    /// runs a batch's async nodes together).
    ///
    /// # Errors
    /// [`InvokeError::UnknownNode`].
    pub fn invoke(
        &self,
        name: &str,
        attempt: u32,
        inputs: &[(String, Value)],
        context: &[(String, Value)],
    ) -> Result<Invoked, InvokeError> {
        self.invoke_all(vec![Invocation {
            node: name.to_string(),
            attempt,
            inputs: inputs.to_vec(),
            context: context.to_vec(),
        }])
        .pop()
        .expect("one invocation, one result")
    }

    /// Runs `calls` on this thread, outside any executor, and returns what each did, in order (see
    /// [`invoke`](Self::invoke)). Sync nodes run one after the other; the futures of async nodes are
    /// started first and polled together until all have ended, so a batch of nodes that wait (on I/O, a
    /// timer) waits once, not once per node. An async node's timeout is enforced for real: at its
    /// deadline its future is dropped and the attempt is `TimedOut`. A panic while polling is the
    /// node's `ActionError`, as on an executor.
    ///
    /// Futures that need a runtime's resources (tokio's timers and sockets) need its context on this
    /// thread: enter it first (`let _guard = handle.enter();`); a tokio future polled outside one panics,
    /// which is reported as the node's error, not a hang.
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
    /// use std::time::Duration;
    /// use flowmem_engine::{Invocation, Workflow};
    ///
    /// let waiting = Arc::new(AtomicUsize::new(0));
    /// let most = Arc::new(AtomicUsize::new(0));
    /// let mut b = Workflow::builder("waits");
    /// for name in ["a", "b", "c"] {
    ///     let (waiting, most) = (Arc::clone(&waiting), Arc::clone(&most));
    ///     b.node_async(name, move |ctx| {
    ///         let (waiting, most) = (Arc::clone(&waiting), Arc::clone(&most));
    ///         async move {
    ///             most.fetch_max(waiting.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
    ///             // A wait that is not on this thread: a timer thread completes a channel.
    ///             let (tx, rx) = futures::channel::oneshot::channel();
    ///             std::thread::spawn(move || {
    ///                 std::thread::sleep(Duration::from_millis(50));
    ///                 let _ = tx.send(());
    ///             });
    ///             let _ = rx.await;
    ///             waiting.fetch_sub(1, Ordering::SeqCst);
    ///             ctx.set_output(1u64);
    ///             Ok(())
    ///         }
    ///     });
    /// }
    /// let workflow = b.build()?;
    /// let calls = ["a", "b", "c"]
    ///     .map(|n| Invocation { node: n.into(), attempt: 1, ..Default::default() });
    /// let done = workflow.invoke_all(calls.to_vec());
    /// assert!(done.iter().all(|d| d.as_ref().unwrap().output.as_u64() == Some(1)));
    /// assert_eq!(most.load(Ordering::SeqCst), 3, "the three waits overlap");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn invoke_all(&self, calls: Vec<Invocation>) -> Vec<Result<Invoked, InvokeError>> {
        let g = &self.graph;
        let mut out: Vec<Option<Result<Invoked, InvokeError>>> = Vec::with_capacity(calls.len());
        let mut sync_calls = Vec::new();
        let mut pending = Vec::new();
        for (slot, call) in calls.into_iter().enumerate() {
            out.push(None);
            let Some(index) = g.index_of(&call.node) else {
                out[slot] = Some(Err(InvokeError::UnknownNode {
                    workflow: g.name.to_string(),
                    node: call.node,
                }));
                continue;
            };
            let def = &g.nodes[index as usize];
            let attempt = call.attempt.max(1);
            let given = Given::new(call);
            match &def.work {
                Work::Sync(action) => sync_calls.push((slot, action, def, given, attempt)),
                Work::Async(action) => {
                    let given = Arc::new(given);
                    let started = Instant::now();
                    let deadline = def.timeout.and_then(|t| started.checked_add(t));
                    let ctx = AsyncCtx::given(Arc::clone(&given), attempt, deadline);
                    match std::panic::catch_unwind(AssertUnwindSafe(|| action.call(ctx))) {
                        Ok(future) => pending.push(Pending {
                            slot,
                            given,
                            future: Some(future),
                            started,
                            timeout: def.timeout,
                        }),
                        Err(payload) => {
                            let error = ActionError::panicked(panic_message(payload.as_ref()));
                            out[slot] = Some(Ok(given.finish(Err(error), started.elapsed())));
                        }
                    }
                }
            }
        }
        // The async attempts make their first step (send their requests, arm their timers) before the
        // sync ones take the thread.
        let waker = Arc::new(ThreadWaker {
            thread: std::thread::current(),
            woken: AtomicBool::new(true),
        });
        poll_pending(&mut pending, &waker, &mut out);
        for (slot, action, def, given, attempt) in sync_calls {
            let started = Instant::now();
            let deadline = def.timeout.and_then(|t| started.checked_add(t));
            let mut ctx = NodeCtx::new(&def.name, attempt, &given, given.cancelled(), deadline);
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| action.run(&mut ctx)));
            let took = started.elapsed();
            let (output, deferred, _) = ctx.into_parts();
            let result = match outcome {
                Ok(result) => result.and(deferred),
                Err(payload) => Err(ActionError::panicked(panic_message(payload.as_ref()))),
            };
            let result = match def.timeout {
                Some(limit) if took > limit => Err(ActionError::timed_out(limit)),
                _ => result,
            };
            *given
                .output()
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = output;
            out[slot] = Some(Ok(given.finish(result, took)));
        }
        while !pending.is_empty() {
            let next_deadline = pending.iter().filter_map(Pending::deadline).min();
            if !waker.woken.load(Ordering::Acquire) {
                match next_deadline {
                    Some(d) => {
                        std::thread::park_timeout(d.saturating_duration_since(Instant::now()))
                    }
                    None => std::thread::park(),
                }
            }
            poll_pending(&mut pending, &waker, &mut out);
        }
        out.into_iter()
            .map(|r| r.expect("every invocation has a result"))
            .collect()
    }

    /// Node `name`'s retry policy and timeout, if the workflow has it.
    pub fn node_policy(&self, name: &str) -> Option<(RetryPolicy, Option<Duration>)> {
        let def = &self.graph.nodes[self.graph.index_of(name)? as usize];
        Some((def.retry, def.timeout))
    }

    /// Node `name`'s index in the workflow's order ([`nodes`](Self::nodes)).
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.graph.index_of(name).map(|i| i as usize)
    }

    /// The name of node `index` (in the order of [`nodes`](Self::nodes)); `None` past the last.
    pub fn node_name(&self, index: usize) -> Option<&str> {
        self.graph.nodes.get(index).map(|n| &*n.name)
    }

    /// The indices of node `index`'s dependents (the nodes that list it in `after`).
    pub fn dependents_of(&self, index: usize) -> &[u32] {
        if index < self.graph.nodes.len() {
            self.graph.dependents(index as u32)
        } else {
            &[]
        }
    }

    /// The indices of node `index`'s dependencies.
    pub fn dependencies_of(&self, index: usize) -> &[u32] {
        if index < self.graph.nodes.len() {
            self.graph.deps(index as u32)
        } else {
            &[]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoked_nodes_fail_panic_and_time_out_as_on_an_executor() {
        let mut b = Workflow::builder("w");
        b.node("fails", |_| Err(ActionError::new("no")));
        b.node("panics", |_| panic!("boom"));
        b.node("slow", |ctx| {
            while !ctx.is_cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(())
        })
        .timeout(Duration::from_millis(10));
        b.node_async("later", |_| async { Ok(()) });
        let w = b.build().unwrap();
        let kind = |n: &str| w.invoke(n, 1, &[], &[]).unwrap().result.unwrap_err().kind();
        assert_eq!(kind("fails"), crate::ActionErrorKind::Failed);
        assert_eq!(kind("panics"), crate::ActionErrorKind::Panicked);
        assert_eq!(kind("slow"), crate::ActionErrorKind::TimedOut);
        assert!(w.invoke("later", 1, &[], &[]).unwrap().result.is_ok());
        let e = w.invoke("nope", 1, &[], &[]).unwrap_err();
        assert_eq!(e.to_string(), "workflow `w` has no node `nope`");
        assert_eq!(w.node_index("slow"), Some(2));
        assert_eq!(w.dependents_of(99), &[] as &[u32]);
    }

    /// A future that sets a flag when dropped.
    struct DropFlag(Arc<AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// A future ready after `ms`, completed by a thread of its own (no runtime needed).
    fn after(ms: u64) -> futures::channel::oneshot::Receiver<()> {
        let (tx, rx) = futures::channel::oneshot::channel();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(ms));
            let _ = tx.send(());
        });
        rx
    }

    #[test]
    fn invoked_async_nodes_see_inputs_put_and_output_and_wait_together() {
        let waiting = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut b = Workflow::builder("w");
        for name in ["x", "y"] {
            let (waiting, most) = (Arc::clone(&waiting), Arc::clone(&most));
            b.node_async(name, move |ctx| {
                let (waiting, most) = (Arc::clone(&waiting), Arc::clone(&most));
                async move {
                    let a = ctx.input_u64("a").unwrap_or(0);
                    most.fetch_max(waiting.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                    let _ = after(60).await;
                    waiting.fetch_sub(1, Ordering::SeqCst);
                    let before = ctx.put("seen", a)?;
                    assert_eq!(
                        before.and_then(|v| v.as_u64()),
                        Some(7),
                        "the given context"
                    );
                    assert_eq!(ctx.fetch("seen").and_then(|v| v.as_u64()), Some(a));
                    ctx.set_output(a + 1);
                    Ok(())
                }
            });
        }
        b.node("s", |ctx| {
            ctx.set_output(5u64);
            Ok(())
        });
        let w = b.build().unwrap();
        let call = |node: &str, a: u64| Invocation {
            node: node.into(),
            attempt: 1,
            inputs: vec![("a".into(), Value::from(a))],
            context: vec![("seen".into(), Value::from(7u64))],
        };
        let done = w.invoke_all(vec![call("x", 1), call("s", 0), call("y", 2)]);
        let done: Vec<Invoked> = done.into_iter().map(Result::unwrap).collect();
        assert!(done.iter().all(|d| d.result.is_ok()), "{done:?}");
        let outputs: Vec<_> = done.iter().map(|d| d.output.as_u64()).collect();
        assert_eq!(outputs, [Some(2), Some(5), Some(3)]);
        assert_eq!(done[0].puts[0].1.as_u64(), Some(1));
        assert!(done[0].took >= Duration::from_millis(60));
        // The two waits overlapped: both futures were pending at once on this one thread.
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn an_invoked_async_node_past_its_timeout_is_dropped_and_times_out() {
        let dropped = Arc::new(AtomicBool::new(false));
        let mut b = Workflow::builder("w");
        let flag = Arc::clone(&dropped);
        b.node_async("hangs", move |_| {
            let guard = DropFlag(Arc::clone(&flag));
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
                Ok(())
            }
        })
        .timeout(Duration::from_millis(30));
        b.node_async("panics", |_| async {
            let _ = after(5).await;
            panic!("in a poll")
        });
        b.node_async("fails", |_| async { Err(ActionError::new("no")) });
        let w = b.build().unwrap();
        let calls = ["hangs", "panics", "fails", "nope"].map(|n| Invocation {
            node: n.into(),
            attempt: 1,
            ..Default::default()
        });
        // Returns at all: the pending future is dropped at its deadline, not waited for.
        let done = w.invoke_all(calls.to_vec());
        assert!(dropped.load(Ordering::SeqCst), "the future was dropped");
        let kind = |i: usize| {
            done[i]
                .as_ref()
                .unwrap()
                .result
                .as_ref()
                .unwrap_err()
                .kind()
        };
        assert_eq!(kind(0), crate::ActionErrorKind::TimedOut);
        assert_eq!(kind(1), crate::ActionErrorKind::Panicked);
        assert_eq!(kind(2), crate::ActionErrorKind::Failed);
        assert!(matches!(done[3], Err(InvokeError::UnknownNode { .. })));
    }

    #[test]
    fn puts_are_collected_and_read_back() {
        let mut b = Workflow::builder("w");
        b.node("p", |ctx| {
            assert_eq!(ctx.fetch("k").and_then(|v| v.as_u64()), Some(1));
            ctx.put("k", 2u64);
            assert_eq!(ctx.fetch("k").and_then(|v| v.as_u64()), Some(2));
            Ok(())
        });
        let w = b.build().unwrap();
        let done = w
            .invoke("p", 1, &[], &[("k".into(), Value::from(1u64))])
            .unwrap();
        assert!(done.result.is_ok());
        assert_eq!(done.puts.len(), 1);
    }
}
