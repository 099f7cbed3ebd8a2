//! flowmem layer 1: string interning.
//!
//! Workflow engines name everything — nodes, statuses, context keys — and compare and hash those names
//! constantly. Interning stores each distinct string once and hands out a 4-byte [`Symbol`] that compares
//! and hashes as an integer.
//!
//! | need | type |
//! |---|---|
//! | intern from many threads | [`StringPool`] (on lasso's `ThreadedRodeo`, foldhash hasher) |
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
//! From `cargo xtask bench` (targets I1–I5 in `docs/benchmarks.md`): interning a string already in the pool
//! costs one hash and one shard lookup, faster than lasso with its default SipHash; a frozen pool's lookup
//! takes no lock. Interning pays when the same strings recur and are compared or hashed often; it does not
//! pay for strings seen once (each new string costs a copy and two map entries, kept until the pool goes).
#![forbid(unsafe_code)]

mod error;
mod global;
mod pool;
mod preinterned;
pub mod sym;
mod symbol;

pub use error::InternError;
pub use global::{get, global, intern, preintern_global, resolve};
pub use pool::{DefaultHasher, FrozenPool, StringPool};
pub use preinterned::Preinterned;
pub use symbol::Symbol;

/// This crate's place in the flowmem layer order (0 = lowest).
pub const LAYER: u8 = 1;
