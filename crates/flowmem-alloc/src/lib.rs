//! flowmem layer 0: memory you can reuse, count and keep apart.
//!
//! Every other flowmem crate stands on this one. It has four parts:
//!
//! | need | type | notes |
//! |---|---|---|
//! | many short-lived values freed together | [`Arena`] | bump allocation; a reset keeps every block, so a repeated cycle allocates nothing |
//! | the same, from many threads through `&self` | [`SyncArena`] | one arena per thread, no locks |
//! | an arena per request, reused | [`ArenaPool`] | reset arenas handed out and taken back |
//! | values with destructors | [`TypedArena`] | values dropped with the arena |
//! | choosing the global allocator | [`System`], `Jemalloc` (feature `jemalloc`), `MiMalloc` (feature `mimalloc`) | the library never installs one: the binary does |
//! | counting allocations | [`Tracking`], [`tracking`], [`AllocationTracker`], [`MemoryProfiler`], [`MemoryBudget`] | per-thread counters, exact per thread |
//! | where allocations come from | [`sites`]: sampled allocation sites, reports, folded stacks, flamegraphs | a sample per 2 MiB allocated on average; cheap enough to leave on |
//! | counters that threads update side by side | [`CachePadded`], [`PaddedCounter`], [`Counters`] | no false sharing |
//!
//! # Example
//!
//! ```
//! use flowmem_alloc::{Arena, Counters};
//!
//! let mut arena = Arena::new();
//! let counters = Counters::new(["requests"]);
//! for request in ["GET /a", "GET /b"] {
//!     let path = arena.alloc_str(&request[4..]);
//!     let parts = arena.alloc_slice_copy(&[path.len() as u32, 0]);
//!     assert_eq!(parts[0], 2);
//!     counters.add(0, 1);
//!     arena.reset();
//! }
//! assert_eq!(counters.snapshot().get("requests"), Some(2));
//! ```
//!
//! A binary picks its global allocator, optionally wrapped in [`Tracking`] to count:
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: flowmem_alloc::Tracking<flowmem_alloc::MiMalloc> =
//!     flowmem_alloc::Tracking::new(flowmem_alloc::MiMalloc);
//! ```
//!
//! # What it costs
//!
//! Measured by `cargo xtask bench` (targets A1–A5 and F1 in `docs/benchmarks.md`): an arena allocation is a
//! pointer bump, several times cheaper than `Box::new` with the system allocator and as cheap as raw bumpalo;
//! `Tracking` adds a few relaxed loads and stores to each allocator call; a padded counter pair updated by two
//! threads runs several times faster than an adjacent pair.
//!
//! # Unsafe code
//!
//! The arena writes values into memory that bumpalo hands out, and `Tracking` implements `GlobalAlloc`; each
//! `unsafe` block says why it is sound, and the crate's tests run under valgrind (`cargo xtask valgrind`).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod arena;
mod arena_pool;
mod collections;
mod error;
mod padding;
mod profiling;
pub mod sites;
mod sync_arena;
pub mod tracking;
mod typed_arena;

pub use arena::{Arena, ArenaStats, DEFAULT_BLOCK_SIZE, MIN_BLOCK_SIZE};
pub use arena_pool::{ArenaPool, ArenaPoolStats, PooledArena};
pub use collections::{FastMap, FastSet, Headroom, SmallVec, smallvec};
pub use error::AllocError;
/// mimalloc as a global allocator (from `mimalloc`); feature `mimalloc`.
#[cfg(feature = "mimalloc")]
pub use mimalloc::MiMalloc;
pub use padding::{
    ActivityStats, CacheAligned, CachePadded, Counters, CountersSnapshot, PaddedCounter,
};
pub use profiling::{
    AllocationTracker, BudgetExceeded, MemoryBudget, MemoryProfiler, MemorySummary, Scope,
    Snapshot, SnapshotDiff, TrackerReport,
};
/// The operating system's allocator (`malloc`/`free` on Unix), the default global allocator.
pub use std::alloc::System;
pub use sync_arena::SyncArena;
/// jemalloc as a global allocator (from `tikv-jemallocator`); feature `jemalloc`.
#[cfg(feature = "jemalloc")]
pub use tikv_jemallocator::Jemalloc;
pub use tracking::{AllocStats, Tracking};
pub use typed_arena::TypedArena;

/// This crate's place in the flowmem layer order (0 = lowest).
pub const LAYER: u8 = 0;
