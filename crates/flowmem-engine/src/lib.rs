//! flowmem layer 5: the workflow engine.
//!
//! Workflow definitions (named nodes, actions, dependencies, retries, timeouts; from code, JSON or WfCommons
//! traces), a work-stealing executor with persistent workers that makes no heap allocation per node once
//! warm, durable runs that resume after a crash, and a benchmark API.
//!
//! Status: workflow definitions ([`Workflow::builder`]: named nodes, actions, dependencies, retries,
//! timeouts, validation naming duplicates, unknown dependencies and cycles), the [`Executor`] (persistent
//! workers, work stealing, many runs in flight, failure policies, cancellation, retries with backoff,
//! timeouts, panics contained, run reports, stats) and [`simd`] are in place. The memory options,
//! durability, file formats and the benchmark API come next.
#![forbid(unsafe_code)]

mod action;
mod benchmark;
mod definition;
mod durable;
mod error;
mod executor;
mod export;
mod load;
mod memory;
mod retry;
mod run;
pub mod simd;
mod value;

pub use action::{Action, Buffer, NodeCtx};
pub use benchmark::{Benchmark, BenchmarkReport};
pub use definition::{NodeBuilder, Workflow, WorkflowBuilder};
pub use durable::{
    Checkpoints, DurabilityError, FileStore, FileStoreOptions, FileStoreStats, MemoryStore, RunId,
    Store, SyncMode, Ticket,
};
pub use error::{ActionError, ActionErrorKind, DefinitionError};
pub use executor::{Executor, ExecutorStats};
pub use load::{
    LoadError, Registry, TaskAction, WfImport, import_wfcommons, import_wfcommons_file, registry,
};
pub use memory::{MemoryOption, MemoryOptions};
pub use retry::RetryPolicy;
pub use run::{FailurePolicy, NodeReport, NodeStatus, RunHandle, RunOptions, RunReport, RunStatus};
pub use value::Value;

/// This crate's place in the flowmem layer order (0 = lowest).
pub const LAYER: u8 = 5;
