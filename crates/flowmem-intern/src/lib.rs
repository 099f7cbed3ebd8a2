//! flowmem layer 1: string interning.
//!
//! Workflow engines name everything (nodes, statuses, context keys) and compare and hash those names
//! constantly. This layer turns each distinct string into a 4-byte `Symbol` that compares and hashes as an
//! integer: a thread-safe `StringPool` (on lasso), a frozen read-only pool with lock-free lookups, a set of
//! well-known strings pre-interned with the same symbol in every pool, and a process-wide pool.
//!
//! Status: the layer's place in the workspace is set (it may use only `flowmem-alloc`); its types come with
//! the layer's own issue.
#![forbid(unsafe_code)]

/// This crate's place in the flowmem layer order (0 = lowest).
pub const LAYER: u8 = 1;
