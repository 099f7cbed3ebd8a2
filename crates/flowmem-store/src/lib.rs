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
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]

mod cache;
mod compression;
mod crc;
mod error;
pub mod format;
mod io;
mod reader;
mod writer;

/// The failpoints where tests inject the disk's failures into a store's writes and syncs (feature
/// `fault-injection`, for tests only: it compiles in the `fail` crate's failpoints; without it the names
/// are inert). Configure one with `fail::cfg(name, actions)`:
///
/// | failpoint | argument of `return(...)` | what the write or sync then does |
/// |---|---|---|
/// | [`WRITE`](faults::WRITE) | `eio`, `enospc` | fails, nothing written |
/// | | `partial-eio`, `partial-enospc` | writes half of its bytes, then fails |
/// | [`SYNC`](faults::SYNC) | `eio`, `enospc` | fails; the written pages stay |
/// | | `eio-drop` | fails, and the file loses what was written since its last successful sync |
///
/// Every write of a store file goes through `WRITE` (appends, and the new file of a compaction), every
/// `fdatasync` and `fsync` through `SYNC` (`StoreWriter::sync`, [`SyncHandle::sync`], creation, compaction).
/// For example `fail::cfg(faults::SYNC, "3*off->return(eio-drop)")`: three syncs succeed, then every one
/// fails.
pub mod faults {
    /// Every write of bytes to a store file.
    pub const WRITE: &str = "flowmem-store::write";
    /// Every `fdatasync` / `fsync` of a store file.
    pub const SYNC: &str = "flowmem-store::sync";

    /// Faults injected so far in this process (failpoint hits that returned an error).
    #[cfg(feature = "fault-injection")]
    pub fn injected() -> u64 {
        crate::io::faults::INJECTED.load(std::sync::atomic::Ordering::SeqCst)
    }
}

pub use cache::StoreCache;
pub use error::{Result, StoreError};
pub use format::{Damage, Layout};
pub use reader::{MmapStore, Record, StoreStats, TornTail};
pub use uuid::Uuid;
#[cfg(feature = "zstd")]
pub use writer::Compression;
pub use writer::{CompactStats, Recovery, StoreWriter, SyncHandle, WriterOptions};

/// This crate's place in the flowmem layer order (0 = lowest).
pub const LAYER: u8 = 4;
