//! Async nodes: the `AsyncAction` trait, and what an async action sees (`AsyncCtx`).
//!
//! An async node's future occupies no worker while it waits: a worker polls it; if it is pending the
//! worker goes on with other nodes, and the future's waker queues the node again on the executor when it
//! can make progress (`executor/poll.rs`).

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, PoisonError, atomic::Ordering},
    time::Instant,
};

use crate::{ActionError, Value, invoke::Given, run::RunState};

/// The future of one attempt of an async node.
pub type BoxFuture = Pin<Box<dyn Future<Output = Result<(), ActionError>> + Send + 'static>>;

/// A node's async work. Implemented for every `Fn(AsyncCtx) -> impl Future<Output = Result<(),
/// ActionError>>` closure that is `Send + Sync + 'static` with a `Send + 'static` future; implement it on
/// a type for async actions with their own state.
///
/// Each attempt calls [`call`](Self::call) once and polls the future it returns to the end, or drops it
/// (a timeout, a cancellation: the future is dropped at its next wake, so what it holds is released then).
///
/// ```
/// use flowmem_engine::{ActionError, AsyncAction, AsyncCtx, BoxFuture};
///
/// struct Fetch { url: String }
///
/// impl AsyncAction for Fetch {
///     fn call(&self, ctx: AsyncCtx) -> BoxFuture {
///         let url = self.url.clone();
///         Box::pin(async move {
///             ctx.set_output(format!("GET {url}"));
///             Ok(())
///         })
///     }
/// }
/// ```
pub trait AsyncAction: Send + Sync + 'static {
    /// Starts one attempt.
    fn call(&self, ctx: AsyncCtx) -> BoxFuture;
}

impl<F, Fut> AsyncAction for F
where
    F: Fn(AsyncCtx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), ActionError>> + Send + 'static,
{
    fn call(&self, ctx: AsyncCtx) -> BoxFuture {
        Box::pin(self(ctx))
    }
}

/// What an async action sees: its node, its attempt, its dependencies' outputs, the run's context and the
/// place for its output. Owned (it moves into the action's future) and cheap: a reference to the run.
pub struct AsyncCtx {
    backing: Backing,
    attempt: u32,
    deadline: Option<Instant>,
}

/// Where an async action's inputs, context and output live: a run on an executor, or the inputs given
/// to [`Workflow::invoke_all`](crate::Workflow::invoke_all).
enum Backing {
    Run { run: Arc<RunState>, node: u32 },
    Given(Arc<Given>),
}

impl AsyncCtx {
    pub(crate) fn new(
        run: Arc<RunState>,
        node: u32,
        attempt: u32,
        deadline: Option<Instant>,
    ) -> Self {
        AsyncCtx {
            backing: Backing::Run { run, node },
            attempt,
            deadline,
        }
    }

    /// An attempt invoked outside any executor, on `given`.
    pub(crate) fn given(given: Arc<Given>, attempt: u32, deadline: Option<Instant>) -> Self {
        AsyncCtx {
            backing: Backing::Given(given),
            attempt,
            deadline,
        }
    }

    /// The node's name.
    pub fn node_name(&self) -> &str {
        match &self.backing {
            Backing::Run { run, node } => &run.graph().nodes[*node as usize].name,
            Backing::Given(g) => g.node_name(),
        }
    }

    /// Which attempt this is: 1 for the first, 2 for the first retry, ...
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The output of dependency `name` (`None` if it is not a dependency of this node), shared, not copied.
    pub fn input(&self, name: &str) -> Option<Value> {
        match &self.backing {
            Backing::Run { run, node } => run.input(*node, name).cloned(),
            Backing::Given(g) => g.input(name).cloned(),
        }
    }

    /// The `u64` output of dependency `name`.
    pub fn input_u64(&self, name: &str) -> Option<u64> {
        self.input(name).as_ref().and_then(Value::as_u64)
    }

    /// The output of dependency `name` as a `T` (see [`Value::to_serde`]).
    ///
    /// # Errors
    /// A permanent [`ActionError`]: `name` is not a dependency, or its output does not decode as `T`.
    pub fn input_as<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, ActionError> {
        crate::action::decode_input(self.node_name(), name, self.input(name).as_ref())
    }

    /// A clone of the run context's value under `key`.
    pub fn fetch(&self, key: &str) -> Option<Value> {
        match &self.backing {
            Backing::Run { run, .. } => run.fetch(key),
            Backing::Given(g) => g.fetch(key),
        }
    }

    /// Stores `value` under `key` in the run's context (and, in a durable run, in its store), returning
    /// the value it replaces.
    ///
    /// # Errors
    /// An [`ActionErrorKind::Persistence`](crate::ActionErrorKind::Persistence) error if a durable store
    /// cannot record it.
    pub fn put(&self, key: &str, value: impl Into<Value>) -> Result<Option<Value>, ActionError> {
        match &self.backing {
            Backing::Run { run, .. } => run.put(key, value.into()),
            Backing::Given(g) => g.put(key, value.into()),
        }
    }

    /// Sets this node's output (the last call wins).
    pub fn set_output(&self, value: impl Into<Value>) {
        let output = match &self.backing {
            Backing::Run { run, node } => run.async_output(*node),
            Backing::Given(g) => g.output(),
        };
        *output.lock().unwrap_or_else(PoisonError::into_inner) = value.into();
    }

    /// Sets this node's output to a value of any `serde` type (see
    /// [`NodeCtx::set_output_serde`](crate::NodeCtx::set_output_serde)).
    ///
    /// # Errors
    /// A permanent [`ActionError`] naming the node and the type if the value has no JSON form.
    pub fn set_output_serde<T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
    ) -> Result<(), ActionError> {
        let value = Value::serde(value).map_err(|mut e| {
            e.what = format!("the output of node `{}`", self.node_name());
            ActionError::permanent(e)
        })?;
        self.set_output(value);
        Ok(())
    }

    /// Whether the run was cancelled or stopped, or this attempt is past its node's timeout. The executor
    /// drops the future at its next wake in those cases; a long computation between awaits can look here.
    pub fn is_cancelled(&self) -> bool {
        let stopped = match &self.backing {
            Backing::Run { run, .. } => run.stop_flag(),
            Backing::Given(g) => g.cancelled(),
        };
        stopped.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

impl std::fmt::Debug for AsyncCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncCtx")
            .field("node", &self.node_name())
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}
