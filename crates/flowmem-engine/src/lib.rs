//! flowmem layer 5: the workflow engine.
//!
//! Workflow definitions (named nodes, actions, dependencies, retries, timeouts; from code, JSON or WfCommons
//! traces), a work-stealing executor with persistent workers that makes no heap allocation per node once
//! warm, durable runs that resume after a crash, and a benchmark API.
//!
//! Status: [`simd`] (batch helpers over node status and duration arrays) is in place; the definition,
//! executor, durability and benchmark API come with the layer's issues.
#![forbid(unsafe_code)]

pub mod simd;

/// This crate's place in the flowmem layer order (0 = lowest).
pub const LAYER: u8 = 5;
