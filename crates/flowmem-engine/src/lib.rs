//! flowmem layer 5: the workflow engine.
//!
//! Workflow definitions (named nodes, actions, dependencies, retries, timeouts; from code, JSON or WfCommons
//! traces), a work-stealing executor with persistent workers that makes no heap allocation per node once
//! warm, durable runs that resume after a crash, and a benchmark API.
//!
//! Status: workflow definitions ([`Workflow::builder`]: named nodes, actions, dependencies, retries,
//! timeouts, validation naming duplicates, unknown dependencies and cycles), node values and the action
//! interface, and [`simd`] (batch helpers over status and duration arrays) are in place. The executor,
//! durability and the benchmark API come with the layer's next issues.
#![forbid(unsafe_code)]

mod action;
mod definition;
mod error;
mod retry;
pub mod simd;
mod value;

pub use action::{Action, NodeCtx};
pub use definition::{NodeBuilder, Workflow, WorkflowBuilder};
pub use error::{ActionError, ActionErrorKind, DefinitionError};
pub use retry::RetryPolicy;
pub use value::Value;

/// This crate's place in the flowmem layer order (0 = lowest).
pub const LAYER: u8 = 5;
