//! flowmem layer 5: the workflow engine.
//!
//! Workflow definitions (named nodes, actions, dependencies, retries, timeouts; from code, JSON or WfCommons
//! traces), a work-stealing executor with persistent workers that makes no heap allocation per node once
//! warm, durable runs that resume after a crash, and a benchmark API.
//!
//! - Definitions: [`Workflow::builder`] (validation naming duplicates, unknown dependencies and cycles),
//!   [`Workflow::from_json`] with a [`Registry`] of actions, [`import_wfcommons`], DOT and Mermaid export.
//! - Execution: the [`Executor`] (persistent workers, work stealing, many runs in flight, failure policies,
//!   cancellation, retries with backoff, timeouts, panics contained, run reports, stats) and its
//!   [`MemoryOptions`]; async nodes ([`WorkflowBuilder::node_async`], [`AsyncAction`]) whose futures hold no
//!   worker while they wait, in a tokio runtime if given one ([`ExecutorBuilder`]); a [`RunHandle`] is a
//!   future of its report.
//! - Values: [`Value`] (plain values shared, not copied; any serde type as JSON), run inputs
//!   ([`RunOptions::input`]) and the context and outputs in the [`RunReport`].
//! - Durability: [`Executor::submit_durable`] checkpoints completed nodes into a [`CheckpointStore`] ([`FileCheckpoints`]
//!   on flowmem-store, with group commit; [`MemoryCheckpoints`]); submitting the same [`RunId`] again resumes.
//! - A picture of a run: the [`Timeline`] of its attempts as an SVG image (a lane per worker, the critical
//!   path outlined), from a run that records them ([`RunOptions::record_attempts`]).
//! - [`Benchmark`] and the [`simd`] helpers.
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod action;
mod async_action;
mod benchmark;
mod builtin;
mod definition;
mod durable;
mod error;
mod executor;
mod export;
mod invoke;
mod load;
mod memory;
mod retry;
mod run;
#[cfg(feature = "serde")]
mod serde_impls;
pub mod simd;
mod timeline;
mod trace;
mod value;

pub use action::{Action, Buffer, NodeCtx};
pub use async_action::{AsyncAction, AsyncCtx, BoxFuture};
pub use benchmark::{Benchmark, BenchmarkReport};
pub use definition::{NodeBuilder, Workflow, WorkflowBuilder};
pub use durable::{
    CheckpointStore, Checkpoints, DurabilityError, FileCheckpoints, FileCheckpointsOptions,
    FileCheckpointsStats, MemoryCheckpoints, RecordPlace, RunId, RunInspection, StoreInspection,
    SyncMode, Ticket,
};
pub use error::{ActionError, ActionErrorKind, DefinitionError};
pub use executor::{Executor, ExecutorBuilder, ExecutorStats};
pub use invoke::{Invocation, InvokeError, Invoked};
pub use load::{
    LoadError, Registry, TaskAction, UnnamedAction, WfImport, import_wfcommons,
    import_wfcommons_file, registry,
};
pub use memory::{MemoryOption, MemoryOptions};
pub use retry::RetryPolicy;
pub use run::{
    AttemptOutcome, AttemptRecord, FailurePolicy, NodeReport, NodeStatus, RunHandle, RunOptions,
    RunReport, RunStatus,
};
pub use timeline::{Timeline, TimelineError};
pub use value::{DecodeError, Value};

/// This crate's place in the flowmem layer order (0 = lowest).
pub const LAYER: u8 = 5;
