//! flowmem layer 2: object pools and byte-buffer pools.
//!
//! A `BufferPool` of power-of-two size classes with per-thread caches over bounded lock-free queues, and an
//! `ObjectPool<T>` with a factory and a reset, bounded or not. Pools pay only where they beat the allocator:
//! the layer's guide says where they do, with the numbers.
//!
//! Status: the layer's place in the workspace is set (it may use `flowmem-alloc` and `flowmem-intern`); its
//! types come with the layer's own issue.
#![forbid(unsafe_code)]

/// This crate's place in the flowmem layer order (0 = lowest).
pub const LAYER: u8 = 2;
