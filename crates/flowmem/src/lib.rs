//! flowmem: fewer allocations, less contention, and the numbers to prove it.
//!
//! This facade re-exports the flowmem layers behind cargo features (all on by default). Each layer is also
//! a crate of its own, usable à la carte; a layer depends only on the layers below it.
//!
//! | layer | module | feature | what |
//! |---|---|---|---|
//! | 0 | [`alloc`] | `alloc` | arenas that keep their blocks, `Tracking` allocation counts, cache padding; `jemalloc` / `mimalloc` re-export those allocators |
//! | 1 | [`intern`] | `intern` | 4-byte symbols, thread-safe and frozen string pools, a process-wide pool |
//! | 2 | [`pool`] | `pool` | object pools (bounded or not, sync and async waits), size-classed buffer pools |
//! | 3 | [`map`] | `map` | a sharded map with no escaping guards, a copy-on-write map with lock-free reads, a bounded `Arc` cache with one creation per key |
//! | 4 | [`store`] | `store` | an append-only record store: CRC-32C per record, crash recovery, zero-copy reads through a memory map (`zstd`: compressed records) |
//! | 5 | [`engine`] | `engine` | workflow definitions, a work-stealing executor that allocates nothing per node when warm, a benchmark API, SIMD helpers |
//! | 6 | [`postgres`] | `postgres` | durable runs on PostgreSQL: a checkpoint store in a schema it creates and versions, with group commit |
//!
//! `cargo xtask bench` in the repository measures every layer against `std` and the crates it builds on;
//! the figures are in `docs/benchmarks.md`.
//!
//! ```
//! # #[cfg(feature = "alloc")] {
//! use flowmem::prelude::*;
//!
//! let arena = Arena::new();
//! assert_eq!(arena.alloc_str("hello"), "hello");
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
#[doc(inline)]
pub use flowmem_alloc as alloc;
#[cfg(feature = "engine")]
#[doc(inline)]
pub use flowmem_engine as engine;
#[cfg(feature = "intern")]
#[doc(inline)]
pub use flowmem_intern as intern;
#[cfg(feature = "map")]
#[doc(inline)]
pub use flowmem_map as map;
#[cfg(feature = "pool")]
#[doc(inline)]
pub use flowmem_pool as pool;
#[cfg(feature = "postgres")]
#[doc(inline)]
pub use flowmem_postgres as postgres;
#[cfg(feature = "store")]
#[doc(inline)]
pub use flowmem_store as store;

/// The types most programs use, from every enabled layer.
pub mod prelude {
    #[cfg(feature = "alloc")]
    pub use flowmem_alloc::{Arena, ArenaPool, CachePadded, Counters, SyncArena, Tracking};
    #[cfg(feature = "engine")]
    pub use flowmem_engine::{
        ActionError, CheckpointStore, Executor, FileCheckpoints, MemoryCheckpoints, NodeCtx, RunId,
        RunStatus, Value, Workflow,
    };
    #[cfg(feature = "intern")]
    pub use flowmem_intern::{FrozenPool, StringPool, Symbol, sym};
    #[cfg(feature = "map")]
    pub use flowmem_map::{ArcCache, ConcurrentMap, ReadMap};
    #[cfg(feature = "pool")]
    pub use flowmem_pool::{BufferPool, ObjectPool, PoolConfig, Reset};
    #[cfg(feature = "postgres")]
    pub use flowmem_postgres::{PgCheckpoints, PgOptions};
    #[cfg(feature = "store")]
    pub use flowmem_store::{MmapStore, StoreCache, StoreWriter, Uuid};
}

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

/// The guide for users of Flow Orchestrator, KNHK, Blixard and Rust Logic Graph (`docs/coming-from.md`):
/// its code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/coming-from.md")]
struct ComingFromDoctests;
