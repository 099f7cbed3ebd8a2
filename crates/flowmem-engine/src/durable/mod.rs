//! Durable runs: the [`CheckpointStore`] trait that checkpoints completed nodes, an in-memory store and a file
//! store on flowmem-store, and the run ids that name runs across processes.

mod encode;
mod file;
mod inspect;
mod slots;

use std::{collections::HashMap, fmt, str::FromStr, sync::Mutex};

pub use file::{FileCheckpoints, FileCheckpointsOptions, FileCheckpointsStats, SyncMode};
pub use inspect::{RunInspection, StoreInspection};

use crate::{Value, Workflow};

/// The id of a durable run: 128 bits, shown and parsed as a UUID. Submitting a run id that a store has
/// seen resumes that run.
///
/// ```
/// use flowmem_engine::RunId;
///
/// let nightly = RunId::named("nightly-2026-11-21");
/// assert_eq!(nightly, RunId::named("nightly-2026-11-21")); // in every process
/// assert_eq!(nightly.to_string().parse::<RunId>()?, nightly);
/// assert_ne!(RunId::random(), RunId::random());
/// # Ok::<(), flowmem_engine::DurabilityError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(u128);

/// The namespace of [`RunId::named`] (a fixed UUID: part of the format).
const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x9a1c_7f2e_4b3d_4e8a_b5c6_0d1e_2f3a_4b5c);

impl RunId {
    /// The id with these 128 bits.
    pub const fn from_u128(bits: u128) -> Self {
        RunId(bits)
    }

    /// Its 128 bits.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// The id named `name`: the same name gives the same id in every process and version (a name-based
    /// UUID, version 5, in a namespace of flowmem's).
    pub fn named(name: &str) -> Self {
        RunId(uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes()).as_u128())
    }

    /// A random id (UUID version 4).
    pub fn random() -> Self {
        RunId(uuid::Uuid::new_v4().as_u128())
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&uuid::Uuid::from_u128(self.0).hyphenated(), f)
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunId({self})")
    }
}

impl FromStr for RunId {
    type Err = DurabilityError;

    fn from_str(s: &str) -> Result<Self, DurabilityError> {
        uuid::Uuid::parse_str(s)
            .map(|u| RunId(u.as_u128()))
            .map_err(|e| DurabilityError::BadRunId {
                text: s.to_string(),
                message: e.to_string(),
            })
    }
}

/// An error of a [`CheckpointStore`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DurabilityError {
    /// The record store failed (I/O, a corrupt file, a file another writer holds, ...).
    #[error(transparent)]
    RecordStore(#[from] flowmem_store::StoreError),
    /// A value a durable store cannot persist ([`Value::Opaque`]).
    #[error(
        "{what} is an {kind} value, which a durable store cannot persist (use a number, text, bytes or a \
         symbol, or run without a durable store)"
    )]
    Unpersistable {
        /// What it was (`the output of node `x``, `context value `k``).
        what: String,
        /// Its [`Value::kind`].
        kind: &'static str,
    },
    /// The run id was started with another workflow.
    #[error(
        "run {run} was started with workflow `{stored}` ({stored_nodes} nodes, fingerprint \
         {stored_fingerprint:016x}); it cannot resume as workflow `{given}` ({given_nodes} nodes, \
         fingerprint {given_fingerprint:016x}): use another run id, or forget this one"
    )]
    WorkflowMismatch {
        /// The run.
        run: RunId,
        /// The workflow the run was started with.
        stored: String,
        /// Its node count.
        stored_nodes: u32,
        /// Its fingerprint.
        stored_fingerprint: u64,
        /// The workflow given now.
        given: String,
        /// Its node count.
        given_nodes: u32,
        /// Its fingerprint.
        given_fingerprint: u64,
    },
    /// Two run ids share a record key in a file store (a one-in-2^64 chance).
    #[error(
        "runs {run} and {other} share the record key {key:016x} in this store: use another run id"
    )]
    KeyCollision {
        /// The run being started.
        run: RunId,
        /// The run already in the store.
        other: RunId,
        /// The shared key.
        key: u64,
    },
    /// A stored record does not decode (a bug, or a file written by something else): which record and
    /// where, when it came from a file.
    #[error("{}undecodable {what}", place.as_ref().map(|p| format!("{p}: ")).unwrap_or_default())]
    Decode {
        /// What it should have been (`node record`, `context record`, `run header`, `value`).
        what: &'static str,
        /// The record's place in its file (none for bytes given to [`Value::decode`]).
        place: Option<RecordPlace>,
        /// The decoder's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A record of a run is inconsistent with the run (wrong run, node out of range).
    #[error("run {run}: inconsistent record: {problem}")]
    Inconsistent {
        /// The run.
        run: RunId,
        /// What is wrong.
        problem: String,
    },
    /// An encoding failed.
    #[error("encoding {what}")]
    Encode {
        /// What was encoded.
        what: &'static str,
        /// The encoder's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An earlier write or sync of the store failed: what was appended since may not be durable, so the
    /// store takes no more checkpoints (open it again to recover).
    #[error(
        "{}: an earlier write or sync failed ({message}); the store refuses further checkpoints: open \
         it again",
        path.display()
    )]
    Failed {
        /// The store's file.
        path: std::path::PathBuf,
        /// The failure.
        message: String,
    },
    /// The error of a store built on another system (a database), with that system's error as source.
    #[error("{store}: {message}")]
    Backend {
        /// The store (`PostgreSQL at host 10.0.0.5, database flows`).
        store: String,
        /// What failed.
        message: String,
        /// The system's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Text that is not a run id.
    #[error("`{text}` is not a run id (a UUID): {message}")]
    BadRunId {
        /// The text.
        text: String,
        /// Why.
        message: String,
    },
}

/// Where a record is: its file, its id, its offset in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPlace {
    /// The store's file.
    pub path: std::path::PathBuf,
    /// The record's id.
    pub record: flowmem_store::Uuid,
    /// Its offset in the file.
    pub offset: u64,
}

impl fmt::Display for RecordPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: record {} at offset {}",
            self.path.display(),
            self.record,
            self.offset
        )
    }
}

/// What a store holds of a run: its completed nodes with their outputs, and its context.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoints {
    /// Completed nodes: index in the workflow (as [`Workflow::nodes`] lists them) and output.
    pub nodes: Vec<(u32, Value)>,
    /// The run's context: each key with the value last put.
    pub context: Vec<(String, Value)>,
}

impl Checkpoints {
    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.context.is_empty()
    }

    /// The checkpointed output of node `name` of `workflow` (the workflow the run ran): what a durable
    /// run left in its store, read back with [`CheckpointStore::load`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use flowmem_engine::{Executor, MemoryCheckpoints, RunId, RunOptions, CheckpointStore, Workflow};
    ///
    /// let mut b = Workflow::builder("sum");
    /// b.node("sum", |ctx| {
    ///     let n = ctx.fetch("n").and_then(|v| v.as_u64()).unwrap_or(0);
    ///     ctx.set_output(n * (n + 1) / 2);
    ///     Ok(())
    /// });
    /// let w = b.build()?;
    /// let store = Arc::new(MemoryCheckpoints::new());
    /// let run = RunId::named("sum-to-10");
    /// Executor::new(1)
    ///     .submit_durable(&w, store.clone(), run, RunOptions::new().input("n", 10u64))?
    ///     .wait();
    /// let saved = store.load(run)?.expect("the run is stored");
    /// assert_eq!(saved.output(&w, "sum").and_then(|v| v.as_u64()), Some(55));
    /// assert_eq!(saved.context_value("n").and_then(|v| v.as_u64()), Some(10));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn output(&self, workflow: &Workflow, name: &str) -> Option<&Value> {
        let index = workflow.nodes().position(|n| n == name)? as u32;
        self.nodes
            .iter()
            .find(|(node, _)| *node == index)
            .map(|(_, v)| v)
    }

    /// The stored context value under `key`.
    pub fn context_value(&self, key: &str) -> Option<&Value> {
        self.context.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// A position in a store's log: [`CheckpointStore::wait_durable`] with it returns once everything recorded up to
/// it is durable. `0` is "nothing to wait for".
pub type Ticket = u64;

/// Where a durable run checkpoints its completed nodes.
///
/// The executor calls [`begin`](Self::begin) when a run is submitted with
/// [`Executor::submit_durable`](crate::Executor::submit_durable), [`checkpoint`](Self::checkpoint) when a
/// node completes (before its dependents can start), [`put_context`](Self::put_context) when a node puts a
/// context value, and [`wait_durable`](Self::wait_durable) before a run's `wait` returns. `checkpoint`
/// should not block on I/O: many completions share one sync (group commit), and `wait_durable` waits for
/// it.
///
/// Implementations: [`MemoryCheckpoints`] (resume within a process: retry a failed run without running what
/// completed) and [`FileCheckpoints`] (resume after a crash).
pub trait CheckpointStore: Send + Sync + fmt::Debug {
    /// Whether what it records outlives the process. A durable store refuses values it cannot persist
    /// ([`DurabilityError::Unpersistable`]).
    fn is_durable(&self) -> bool;

    /// Starts run `run` of `workflow`, or finds where it stopped: its checkpoints (empty for a new run).
    ///
    /// # Errors
    /// [`DurabilityError::WorkflowMismatch`] if `run` was started with another workflow; the store's own
    /// errors.
    fn begin(&self, run: RunId, workflow: &Workflow) -> Result<Checkpoints, DurabilityError>;

    /// Records that node `node` (its index; `name` for messages) of `run` completed with `output`.
    ///
    /// # Errors
    /// [`DurabilityError::Unpersistable`] (durable stores) for an `Opaque` output; the store's own errors.
    fn checkpoint(
        &self,
        run: RunId,
        node: u32,
        name: &str,
        output: &Value,
    ) -> Result<Ticket, DurabilityError>;

    /// Records that `key` of `run`'s context now holds `value`.
    ///
    /// # Errors
    /// As [`checkpoint`](Self::checkpoint).
    fn put_context(&self, run: RunId, key: &str, value: &Value) -> Result<Ticket, DurabilityError>;

    /// Waits until everything recorded up to `ticket` is durable.
    ///
    /// # Errors
    /// The store's own errors (a failed sync).
    fn wait_durable(&self, ticket: Ticket) -> Result<(), DurabilityError>;

    /// What the store holds of `run` (`None` if it never saw it), without starting it.
    ///
    /// # Errors
    /// The store's own errors.
    fn load(&self, run: RunId) -> Result<Option<Checkpoints>, DurabilityError>;

    /// Forgets `run` (a finished run whose results were taken): submitting its id again starts afresh.
    /// Returns whether the store had it.
    ///
    /// # Errors
    /// The store's own errors.
    fn forget(&self, run: RunId) -> Result<bool, DurabilityError>;
}

/// A [`CheckpointStore`] in memory: a run can be resumed within the process (after a failure or a cancellation:
/// submitting the run id again runs only what did not complete). Accepts any value, `Opaque` included;
/// nothing outlives the process.
///
/// ```
/// use std::sync::Arc;
/// use flowmem_engine::{ActionError, Executor, MemoryCheckpoints, NodeCtx, RunId, RunStatus, Workflow};
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// static FLAKY: AtomicBool = AtomicBool::new(true);
/// let mut b = Workflow::builder("two-steps");
/// b.node("fetch", |ctx: &mut NodeCtx<'_>| {
///     ctx.set_output(41u64);
///     Ok::<(), ActionError>(())
/// });
/// b.node("use", |ctx: &mut NodeCtx<'_>| {
///     if FLAKY.swap(false, Ordering::SeqCst) {
///         return Err(ActionError::permanent("service down"));
///     }
///     ctx.set_output(ctx.input_u64("fetch").unwrap() + 1);
///     Ok(())
/// })
/// .after(["fetch"]);
/// let workflow = b.build()?;
///
/// let store = Arc::new(MemoryCheckpoints::new());
/// let executor = Executor::new(2);
/// let run = RunId::named("job-7");
/// let first = executor.run_durable(&workflow, store.clone(), run)?;
/// assert_eq!(first.status, RunStatus::Failed);
/// let second = executor.run_durable(&workflow, store.clone(), run)?; // resumes: `fetch` is not run again
/// assert_eq!(second.status, RunStatus::Completed);
/// assert!(second.node("fetch").unwrap().restored);
/// assert_eq!(second.output("use").and_then(|v| v.as_u64()), Some(42));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct MemoryCheckpoints {
    runs: Mutex<HashMap<RunId, MemoryRun>>,
}

#[derive(Debug)]
struct MemoryRun {
    workflow: String,
    fingerprint: u64,
    nodes: u32,
    checkpoints: HashMap<u32, Value>,
    context: HashMap<String, Value>,
}

impl MemoryRun {
    fn checkpoints(&self) -> Checkpoints {
        let mut nodes: Vec<(u32, Value)> = self
            .checkpoints
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        nodes.sort_unstable_by_key(|(k, _)| *k);
        Checkpoints {
            nodes,
            context: self
                .context
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

impl MemoryCheckpoints {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of runs it holds.
    pub fn runs(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, MemoryRun>> {
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn with_run<R>(
        &self,
        run: RunId,
        f: impl FnOnce(&mut MemoryRun) -> R,
    ) -> Result<R, DurabilityError> {
        let mut runs = self.lock();
        let r = runs
            .get_mut(&run)
            .ok_or_else(|| DurabilityError::Inconsistent {
                run,
                problem: "a checkpoint for a run that was not begun".into(),
            })?;
        Ok(f(r))
    }
}

/// Compares a stored run's workflow with the given one.
fn check_workflow(
    run: RunId,
    stored: (&str, u64, u32),
    given: &Workflow,
) -> Result<(), DurabilityError> {
    given.check_resume(run, stored.0, stored.1, stored.2)
}

impl Workflow {
    /// For stores of your own: whether run `run`, started with a workflow called `name` of `nodes` nodes
    /// and fingerprint `fingerprint` (as the store recorded them in `begin`), may resume as this workflow.
    ///
    /// # Errors
    /// [`DurabilityError::WorkflowMismatch`] naming both workflows.
    pub fn check_resume(
        &self,
        run: RunId,
        name: &str,
        fingerprint: u64,
        nodes: u32,
    ) -> Result<(), DurabilityError> {
        let given = self;
        if fingerprint == given.fingerprint() && nodes as usize == given.len() {
            return Ok(());
        }
        Err(DurabilityError::WorkflowMismatch {
            run,
            stored: name.to_string(),
            stored_nodes: nodes,
            stored_fingerprint: fingerprint,
            given: given.name().to_string(),
            given_nodes: given.len() as u32,
            given_fingerprint: given.fingerprint(),
        })
    }
}

impl CheckpointStore for MemoryCheckpoints {
    fn is_durable(&self) -> bool {
        false
    }

    fn begin(&self, run: RunId, workflow: &Workflow) -> Result<Checkpoints, DurabilityError> {
        let mut runs = self.lock();
        match runs.get(&run) {
            Some(r) => {
                check_workflow(run, (&r.workflow, r.fingerprint, r.nodes), workflow)?;
                Ok(r.checkpoints())
            }
            None => {
                runs.insert(
                    run,
                    MemoryRun {
                        workflow: workflow.name().to_string(),
                        fingerprint: workflow.fingerprint(),
                        nodes: workflow.len() as u32,
                        checkpoints: HashMap::new(),
                        context: HashMap::new(),
                    },
                );
                Ok(Checkpoints::default())
            }
        }
    }

    fn checkpoint(
        &self,
        run: RunId,
        node: u32,
        _name: &str,
        output: &Value,
    ) -> Result<Ticket, DurabilityError> {
        self.with_run(run, |r| {
            r.checkpoints.insert(node, output.clone());
        })?;
        Ok(0)
    }

    fn put_context(&self, run: RunId, key: &str, value: &Value) -> Result<Ticket, DurabilityError> {
        self.with_run(run, |r| {
            r.context.insert(key.to_string(), value.clone());
        })?;
        Ok(0)
    }

    fn wait_durable(&self, _ticket: Ticket) -> Result<(), DurabilityError> {
        Ok(())
    }

    fn load(&self, run: RunId) -> Result<Option<Checkpoints>, DurabilityError> {
        Ok(self.lock().get(&run).map(MemoryRun::checkpoints))
    }

    fn forget(&self, run: RunId) -> Result<bool, DurabilityError> {
        Ok(self.lock().remove(&run).is_some())
    }
}

impl Workflow {
    /// A 64-bit fingerprint of the workflow's shape: its node names in order and each node's set of
    /// dependencies (not the order they are listed in, nor the workflow's name, actions, retries or
    /// timeouts). A durable run resumes only with a workflow of the same fingerprint. Stable across
    /// processes and versions (FNV-1a).
    pub fn fingerprint(&self) -> u64 {
        let g = &self.graph;
        let mut h = encode::fnv1a(&(g.nodes.len() as u64).to_le_bytes(), encode::FNV_OFFSET);
        let mut deps = Vec::new();
        for (i, node) in g.nodes.iter().enumerate() {
            let name: &str = &node.name;
            h = encode::fnv1a(&(name.len() as u64).to_le_bytes(), h);
            h = encode::fnv1a(name.as_bytes(), h);
            deps.clear();
            deps.extend_from_slice(g.deps(i as u32));
            deps.sort_unstable();
            h = encode::fnv1a(&(deps.len() as u32).to_le_bytes(), h);
            for d in &deps {
                h = encode::fnv1a(&d.to_le_bytes(), h);
            }
        }
        h
    }
}
