//! flowmem layer 1: string interning.
//!
//! Workflow engines name everything — nodes, statuses, context keys — and compare and hash those names
//! constantly. Interning stores each distinct string once and hands out a 4-byte [`Symbol`] that compares
//! and hashes as an integer.
//!
//! | need | type |
//! |---|---|
//! | intern from many threads | [`StringPool`]: a compact table of its own (about 1.75 heap bytes per byte of 16-byte strings), lookups without a lock |
//! | many readers, no more writes | [`FrozenPool`], from [`StringPool::freeze`]: lookups take no lock |
//! | names known to every pool | [`sym`]: `sym::COMPLETED` and friends, the same symbol in every pool |
//! | your own names known to every pool | [`preinterned!`]: a module of constants, valid in every pool made with its `SET` |
//! | one pool for the whole process | [`intern`], [`get`], [`resolve`] (`&'static str`; never freed) |
//!
//! ```
//! use flowmem_intern::{StringPool, sym};
//!
//! let pool = StringPool::new();
//! let nodes: Vec<_> = ["fetch", "parse", "fetch"].iter().map(|n| pool.intern(n)).collect();
//! assert_eq!(nodes[0], nodes[2]);
//! assert_ne!(nodes[0], nodes[1]);
//! let status = pool.intern("FAILED");
//! assert_eq!(status, sym::FAILED);
//! assert_eq!(pool.resolve(nodes[1]), "parse");
//! ```
//!
//! # What it costs
//!
//! From `cargo xtask bench` (targets I1–I7 in `docs/benchmarks.md`; docs/intern.md has the figures): a
//! pool holds its strings in about 1.79 heap bytes per string byte (less than lasso, string-interner or
//! ustr), reports that figure exactly (`memory_usage`), and never exceeds a memory limit; a hit takes no
//! lock, so threads interning known strings do not contend. A hit costs a hash and about four dependent
//! memory reads; `FrozenPool` (a copy with a table of its own that holds short strings whole, 3.3 bytes
//! per string byte) looks up in about 0.6 of that time.
//! Interning pays when the same strings recur and are compared or hashed often; it does not pay for
//! strings seen once (each new string costs a copy, kept until the pool goes).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]

mod error;
mod frozen;
mod global;
mod pool;
mod preinterned;
pub mod sym;
mod symbol;
#[allow(
    unsafe_code,
    reason = "the one module with unsafe: raw chunks read without a lock (see its SAFETY comments)"
)]
mod table;

pub use error::InternError;
pub use frozen::FrozenPool;
pub use global::{get, global, intern, preintern_global, resolve};
pub use pool::{DefaultHasher, StringPool};
pub use preinterned::Preinterned;
pub use symbol::Symbol;

/// This crate's place in the flowmem layer order (0 = lowest).
pub const LAYER: u8 = 1;
