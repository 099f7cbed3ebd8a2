//! What a node does: the `Action` trait, and what an action sees (`NodeCtx`).

use std::{
    cell::OnceCell,
    ops::{Deref, DerefMut},
    sync::Arc,
    sync::atomic::{AtomicBool, Ordering},
    time::Instant,
};

use flowmem_alloc::Arena;
use flowmem_pool::{BufferPool, PooledBuf};

use crate::{ActionError, Value};

/// A node's work. Implemented for every `Fn(&mut NodeCtx<'_>) -> Result<(), ActionError>` closure that is
/// `Send + Sync + 'static`; implement it on a type for actions with their own state.
///
/// An action runs on one of the executor's worker threads. It may run more than once (retries, and after a
/// crash the node that was running runs again), so it should be safe to repeat.
///
/// ```
/// use flowmem_engine::{Action, ActionError, NodeCtx, Workflow};
///
/// struct Double;
///
/// impl Action for Double {
///     fn run(&self, ctx: &mut NodeCtx<'_>) -> Result<(), ActionError> {
///         let n = ctx.input_u64("count").ok_or_else(|| ActionError::permanent("no count"))?;
///         ctx.set_output(n * 2);
///         Ok(())
///     }
/// }
///
/// let mut builder = Workflow::builder("double");
/// builder.node("count", |ctx| {
///     ctx.set_output(21u64);
///     Ok(())
/// });
/// builder.node_action("double", Double).after(["count"]);
/// # builder.build()?;
/// # Ok::<(), flowmem_engine::DefinitionError>(())
/// ```
pub trait Action: Send + Sync + 'static {
    /// Runs the action once.
    fn run(&self, ctx: &mut NodeCtx<'_>) -> Result<(), ActionError>;
}

impl<F> Action for F
where
    F: Fn(&mut NodeCtx<'_>) -> Result<(), ActionError> + Send + Sync + 'static,
{
    fn run(&self, ctx: &mut NodeCtx<'_>) -> Result<(), ActionError> {
        self(ctx)
    }
}

/// What a node runs: a sync action (an attempt on one worker, start to end) or an async one (a future,
/// polled by the workers, holding none of them while it waits).
#[derive(Clone)]
pub(crate) enum Work {
    Sync(Arc<dyn Action>),
    Async(Arc<dyn crate::AsyncAction>),
}

impl Work {
    pub(crate) fn is_async(&self) -> bool {
        matches!(self, Work::Async(_))
    }
}

/// Dependency `name`'s output `value` (if it is one) as a `T`, for node `node`'s `input_as` (sync or async):
/// a permanent error naming the node, the dependency and the type otherwise.
pub(crate) fn decode_input<T: serde::de::DeserializeOwned>(
    node: &str,
    name: &str,
    value: Option<&Value>,
) -> Result<T, ActionError> {
    let value = value.ok_or_else(|| {
        ActionError::permanent(format!(
            "node `{node}`: `{name}` is not one of its dependencies"
        ))
    })?;
    value
        .decode_as(&format!("node `{node}`: the output of `{name}`"))
        .map_err(ActionError::permanent)
}

/// What a node reaches of its run (implemented by the executor's run state): its dependencies' outputs,
/// the run's context, and the memory the executor recycles.
pub(crate) trait Inputs {
    /// The output of dependency `name`, if `name` is a dependency of the node and it produced one.
    fn input(&self, name: &str) -> Option<&Value>;
    /// Calls `f` with each dependency's name and output, in the order the node lists them.
    fn for_each_input(&self, f: &mut dyn FnMut(&str, &Value));
    /// Stores `value` under `key` in the run's context (and in a durable run's store).
    fn put(&self, key: &str, value: Value) -> Result<Option<Value>, ActionError>;
    /// A clone of the run context's value under `key`.
    fn fetch(&self, key: &str) -> Option<Value>;
    /// An arena for the node's scratch memory: the worker's (lent until the node is done, then reset
    /// and given back) with the `arena` option, else a new one.
    fn scratch_arena(&self) -> Box<Arena>;
    /// The executor's buffer pool, when the `pooled_buffers` option is on.
    fn buffer_pool(&self) -> Option<&BufferPool>;
}

/// A byte buffer from [`NodeCtx::buffer`]: from the executor's pool (returned to it on drop) or a plain
/// `Vec`, depending on the `pooled_buffers` option. Derefs to `Vec<u8>`.
#[derive(Debug)]
pub struct Buffer<'run>(BufferInner<'run>);

#[derive(Debug)]
enum BufferInner<'run> {
    Pooled(PooledBuf<'run>),
    Plain(Vec<u8>),
}

impl Deref for Buffer<'_> {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        match &self.0 {
            BufferInner::Pooled(b) => b,
            BufferInner::Plain(v) => v,
        }
    }
}

impl DerefMut for Buffer<'_> {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        match &mut self.0 {
            BufferInner::Pooled(b) => b,
            BufferInner::Plain(v) => v,
        }
    }
}

/// What an action sees while it runs: its node, its attempt, its dependencies' outputs, and the place for
/// its own output.
pub struct NodeCtx<'run> {
    name: &'run str,
    attempt: u32,
    inputs: &'run dyn Inputs,
    output: Value,
    cancelled: &'run AtomicBool,
    deadline: Option<Instant>,
    /// The node's scratch arena, taken on first use (the worker's with the `arena` option, else new).
    node_arena: OnceCell<Box<Arena>>,
    /// The first error of a `put` that could not be recorded: it fails the node.
    deferred: OnceCell<ActionError>,
}

impl<'run> NodeCtx<'run> {
    pub(crate) fn new(
        name: &'run str,
        attempt: u32,
        inputs: &'run dyn Inputs,
        cancelled: &'run AtomicBool,
        deadline: Option<Instant>,
    ) -> Self {
        NodeCtx {
            name,
            attempt,
            inputs,
            output: Value::Unit,
            cancelled,
            deadline,
            node_arena: OnceCell::new(),
            deferred: OnceCell::new(),
        }
    }

    /// The node's name.
    pub fn node_name(&self) -> &'run str {
        self.name
    }

    /// Which attempt this is: 1 for the first, 2 for the first retry, ...
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The output of dependency `name` (`None` if it is not a dependency of this node).
    pub fn input(&self, name: &str) -> Option<&Value> {
        self.inputs.input(name)
    }

    /// The `u64` output of dependency `name`.
    pub fn input_u64(&self, name: &str) -> Option<u64> {
        self.input(name).and_then(Value::as_u64)
    }

    /// Calls `f` with each dependency's name and output, in the order the node lists its dependencies.
    pub fn for_each_input(&self, mut f: impl FnMut(&str, &Value)) {
        self.inputs.for_each_input(&mut f);
    }

    /// Stores `value` under `key` in the run's context, shared by all its nodes (for values that are not
    /// one node's output: settings, running totals). Returns the value it replaces.
    ///
    /// In a durable run the value is also recorded in the store (and restored when the run resumes). If it
    /// cannot be (an `Opaque` value with a durable store, a store failure), it is not stored and the node
    /// fails when its action returns; [`try_put`](Self::try_put) reports that at once.
    pub fn put(&self, key: &str, value: impl Into<Value>) -> Option<Value> {
        match self.inputs.put(key, value.into()) {
            Ok(previous) => previous,
            Err(e) => {
                let _ = self.deferred.set(e);
                None
            }
        }
    }

    /// [`put`](Self::put), returning the error of a value that could not be recorded (see `put`).
    ///
    /// # Errors
    /// An [`ActionErrorKind::Persistence`](crate::ActionErrorKind::Persistence) error.
    pub fn try_put(
        &self,
        key: &str,
        value: impl Into<Value>,
    ) -> Result<Option<Value>, ActionError> {
        self.inputs.put(key, value.into())
    }

    /// A clone of the value under `key` in the run's context.
    pub fn fetch(&self, key: &str) -> Option<Value> {
        self.inputs.fetch(key)
    }

    /// Copies `s` into scratch memory that lives as long as this context (no allocation once the
    /// executor's memory is warm, with the `arena` option).
    pub fn scratch_str(&self, s: &str) -> &str {
        self.scratch().alloc_str(s)
    }

    /// Copies `items` into scratch memory that lives as long as this context.
    pub fn scratch_slice<T: Copy>(&self, items: &[T]) -> &[T] {
        self.scratch().alloc_slice_copy(items)
    }

    fn scratch(&self) -> &Arena {
        self.node_arena.get_or_init(|| self.inputs.scratch_arena())
    }

    /// An empty byte buffer with room for at least `capacity` bytes (from the executor's pool with the
    /// `pooled_buffers` option).
    pub fn buffer(&self, capacity: usize) -> Buffer<'run> {
        match self.inputs.buffer_pool() {
            Some(pool) => Buffer(BufferInner::Pooled(pool.get(capacity))),
            None => Buffer(BufferInner::Plain(Vec::with_capacity(capacity))),
        }
    }

    /// Sets this node's output (read by the nodes that depend on it). The last call wins.
    pub fn set_output(&mut self, value: impl Into<Value>) {
        self.output = value.into();
    }

    /// Sets this node's output to a value of any `serde` type (a [`Value::Json`]: JSON text, which a
    /// durable store checkpoints). Dependents read it with [`input_as`](Self::input_as).
    ///
    /// ```
    /// use flowmem_engine::{Executor, Workflow};
    ///
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Batch { ids: Vec<u32> }
    ///
    /// let mut b = Workflow::builder("typed");
    /// b.node("fetch", |ctx| ctx.set_output_serde(&Batch { ids: vec![1, 2, 3] }));
    /// b.node("count", |ctx| {
    ///     let batch: Batch = ctx.input_as("fetch")?;
    ///     ctx.set_output(batch.ids.len());
    ///     Ok(())
    /// })
    /// .after(["fetch"]);
    /// let report = Executor::new(1).run(&b.build()?);
    /// assert_eq!(report.output("count").and_then(|v| v.as_u64()), Some(3));
    /// # Ok::<(), flowmem_engine::DefinitionError>(())
    /// ```
    ///
    /// # Errors
    /// A permanent [`ActionError`] naming the node and the type, if the value has no JSON form.
    pub fn set_output_serde<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), ActionError> {
        self.output = Value::serde(value).map_err(|mut e| {
            e.what = format!("the output of node `{}`", self.node_name());
            ActionError::permanent(e)
        })?;
        Ok(())
    }

    /// The output of dependency `name` as a `T` (see [`Value::to_serde`]).
    ///
    /// # Errors
    /// A permanent [`ActionError`]: `name` is not a dependency of this node (or produced nothing), or its
    /// output does not decode as `T` (the message names the dependency and the type).
    pub fn input_as<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, ActionError> {
        decode_input(self.node_name(), name, self.input(name))
    }

    /// [`put`](Self::put) of a value of any `serde` type (as a [`Value::Json`]), returning the value it
    /// replaces.
    ///
    /// # Errors
    /// A permanent [`ActionError`] if the value has no JSON form; as [`try_put`](Self::try_put) otherwise.
    pub fn put_serde<T: serde::Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<Option<Value>, ActionError> {
        let value = Value::serde(value).map_err(|mut e| {
            e.what = format!("node `{}`: context value `{key}`", self.node_name());
            ActionError::permanent(e)
        })?;
        self.try_put(key, value)
    }

    /// The run context's value under `key` as a `T` (`Ok(None)` if there is none).
    ///
    /// # Errors
    /// A permanent [`ActionError`] naming the key and the type if the value does not decode as `T`.
    pub fn fetch_as<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, ActionError> {
        self.fetch(key)
            .map(|v| {
                v.decode_as(&format!(
                    "node `{}`: context value `{key}`",
                    self.node_name()
                ))
                .map_err(ActionError::permanent)
            })
            .transpose()
    }

    /// Whether the run was cancelled, or this attempt ran past its node's timeout: a long action should
    /// check it now and then and stop (the executor cannot stop a thread; it discards a late result).
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// What the action left: its output, the error of a `put` that could not be recorded (if any), and
    /// the scratch arena if it used one (to give back to the worker). Consumes the context by moving its
    /// fields out: nothing is left to drop.
    pub(crate) fn into_parts(self) -> (Value, Result<(), ActionError>, Option<Box<Arena>>) {
        let NodeCtx {
            output,
            deferred,
            node_arena,
            ..
        } = self;
        (
            output,
            deferred.into_inner().map_or(Ok(()), Err),
            node_arena.into_inner(),
        )
    }
}

impl std::fmt::Debug for NodeCtx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCtx")
            .field("node", &self.node_name())
            .field("attempt", &self.attempt)
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}
