//! flowmem layer 3: concurrent maps.
//!
//! `ConcurrentMap` (sharded, on dashmap, with an API through which no guard escapes, so dashmap's deadlocks
//! cannot be reached), `ReadMap` (copy-on-write on arc-swap, lock-free reads) and `ArcCache` (bounded
//! get-or-create).
//!
//! Status: the layer's place in the workspace is set (it may use layers 0 to 2); its types come with the
//! layer's own issue.
#![forbid(unsafe_code)]

/// This crate's place in the flowmem layer order (0 = lowest).
pub const LAYER: u8 = 3;
