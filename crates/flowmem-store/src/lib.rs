//! flowmem layer 4: a memory-mapped, checksummed, append-only record store.
//!
//! Records are a 16-byte id ([`Uuid`]) and a payload. One [`StoreWriter`] appends them (CRC-32C per record,
//! optionally zstd-compressed with the `zstd` feature, tombstones for deletes); any number of
//! [`MmapStore`] readers, in this process or others, map the file, validate it, and index it by id, so a
//! read is a hash lookup and a slice of the map.
//!
//! ```
//! use flowmem_store::{MmapStore, StoreWriter, Uuid};
//!
//! let dir = std::env::temp_dir().join(format!("flowmem-doc-store-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("outputs.fms");
//! # let _ = std::fs::remove_file(&path);
//! let mut writer = StoreWriter::create(&path)?;
//! let node = Uuid::from_u128(42);
//! writer.append(&node, b"{\"rows\": 1200}")?;
//! writer.sync()?; // durable from here on
//!
//! let mut store = MmapStore::open(&path)?;
//! assert_eq!(store.get(&node)?.as_deref(), Some(&b"{\"rows\": 1200}"[..]));
//!
//! writer.append(&Uuid::from_u128(43), b"more")?;
//! writer.flush()?;
//! assert_eq!(store.refresh()?, 1); // one new record seen
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//!
//! - **Durability**: a record is durable once [`StoreWriter::sync`] returns (`fdatasync`); a crash loses
//!   at most the records appended after the last sync, and never an earlier one.
//! - **Recovery**: an interrupted append leaves a torn tail; [`MmapStore::open`] serves everything before
//!   it and reports it, [`StoreWriter::open`] truncates it and reports it. Damage followed by valid records
//!   is an error naming the file and the offset, never silently dropped data.
//! - **Safety**: any bytes, any length: an error or a correct prefix of the data, never a panic or
//!   undefined behaviour — as long as no other program truncates or rewrites a file while it is mapped
//!   (see `docs/store.md`: the mmap caveat, and how this crate's own writer never does).
//!
//! The layout is documented byte by byte in `docs/store.md`; [`mod@format`] has the constants.
#![deny(unsafe_code)]

mod cache;
mod compression;
mod crc;
mod error;
pub mod format;
mod reader;
mod writer;

pub use cache::StoreCache;
pub use error::{Result, StoreError};
pub use format::{Damage, Layout};
pub use reader::{MmapStore, Record, StoreStats, TornTail};
pub use uuid::Uuid;
#[cfg(feature = "zstd")]
pub use writer::Compression;
pub use writer::{CompactStats, Recovery, StoreWriter, WriterOptions};

/// This crate's place in the flowmem layer order (0 = lowest).
pub const LAYER: u8 = 4;
