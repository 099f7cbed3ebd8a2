//! flowmem layer 4: a memory-mapped, checksummed, append-only record store.
//!
//! Records of a 16-byte id and a payload, appended by one writer with CRC-32C checksums (optionally zstd
//! compressed), read zero-copy through a memory map with an id index, recovered after a crash by truncating
//! a torn tail.
//!
//! Status: the layer's place in the workspace is set (it may use layers 0 to 3); its types come with the
//! layer's own issue. The `zstd` feature is reserved for it and adds nothing yet.
#![forbid(unsafe_code)]

/// This crate's place in the flowmem layer order (0 = lowest).
pub const LAYER: u8 = 4;
