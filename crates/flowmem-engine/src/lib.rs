//! flowmem layer 5: the workflow engine.
//!
//! Workflow definitions (named nodes, actions, dependencies, retries, timeouts; from code, JSON or WfCommons
//! traces), a work-stealing executor with persistent workers that makes no heap allocation per node once
//! warm, durable runs that resume after a crash, and a benchmark API.
//!
//! Status: the layer's place in the workspace is set (it may use every lower layer); its types come with
//! the layer's own issues.
#![forbid(unsafe_code)]

/// This crate's place in the flowmem layer order (0 = lowest).
pub const LAYER: u8 = 5;
