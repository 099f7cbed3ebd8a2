//! flowmem layer 2: object pools and byte-buffer pools.
//!
//! | need | type |
//! |---|---|
//! | byte buffers of varied sizes, reused | [`BufferPool`] (power-of-two classes, a bound on idle bytes), or the process-wide [`get_buffer`] / [`put_buffer`] / [`with_buffer`] |
//! | objects that are costly to build (maps with capacity, parsers, connections), reused | [`ObjectPool`] with a factory and a [`Reset`] |
//! | at most N objects at once | [`ObjectPool`] with [`PoolConfig::max_live`]: [`try_acquire`](ObjectPool::try_acquire), [`acquire_timeout`](ObjectPool::acquire_timeout), [`acquire_async`](ObjectPool::acquire_async) |
//!
//! Both pools keep a few idle items per thread (plain loads and stores, no atomic read-modify-write) in
//! front of bounded lock-free queues shared by all threads; there is no global lock.
//!
//! ```
//! use flowmem_pool::{BufferPool, ObjectPool, PoolConfig};
//!
//! let buffers = BufferPool::new();
//! let mut out = buffers.get(4096);
//! out.extend_from_slice(b"response");
//! drop(out); // back in the 4 KiB class
//!
//! let contexts = ObjectPool::with_reset(|| Vec::<u64>::with_capacity(64), PoolConfig::default());
//! let mut ctx = contexts.acquire();
//! ctx.push(7);
//! ```
//!
//! # When pools pay
//!
//! A pool beats the allocator when building the object costs more than a handful of nanoseconds: buffers
//! of kilobytes, maps with reserved capacity, anything with a costly constructor. For small objects a good
//! allocator (jemalloc, mimalloc, or glibc's thread cache) is as fast or faster; `docs/pool.md` has the
//! numbers (targets P1–P5).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod buffer;
mod error;
mod last_used;
mod magazine;
mod object;
mod owned;
mod owner_cell;
mod timer;

pub use buffer::{
    BufferPool, BufferPoolConfig, BufferPoolStats, PooledBuf, get_buffer, global_buffer_pool,
    put_buffer, with_buffer,
};
pub use error::PoolError;
pub use object::{Acquire, ObjectPool, PoolConfig, PoolStats, Pooled, Reset};
pub use owned::{OwnedPooled, Release};
pub use timer::wake_at;

/// This crate's place in the flowmem layer order (0 = lowest).
pub const LAYER: u8 = 2;
