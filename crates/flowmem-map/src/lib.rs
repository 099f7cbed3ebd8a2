//! flowmem layer 3: concurrent maps and a bounded cache of shared values.
//!
//! | need | type |
//! |---|---|
//! | a map many threads read and write (counters, registries, run state) | [`ConcurrentMap`]: a lock per bucket of sixteen entries, no guard escapes a call |
//! | a map read constantly and written rarely (configuration, routing, symbol tables) | [`ReadMap`]: lock-free reads of an immutable snapshot, copy on write |
//! | values costly to create, shared by `Arc`, bounded in number (open files, parsed specs) | [`ArcCache`]: one creation per key, LRU eviction |
//!
//! ```
//! use flowmem_map::{ArcCache, ConcurrentMap, ReadMap};
//!
//! let status: ConcurrentMap<u32, &str> = ConcurrentMap::new();
//! status.insert(1, "running");
//! status.update(&1, |s| *s = "done");
//! assert_eq!(status.get(&1), Some("done"));
//!
//! let config: ReadMap<&str, u64> = ReadMap::new();
//! config.insert("workers", 2);
//! assert_eq!(config.get_with("workers", |w| w * 2), Some(4));
//!
//! let specs: ArcCache<String, Vec<u8>> = ArcCache::new(100);
//! let spec = specs.get_or_create("montage", || b"...".to_vec());
//! assert_eq!(&spec[..], b"...");
//! ```
//!
//! # Choosing, and what it costs
//!
//! - [`ConcurrentMap`] is a hash table of our own with a fast default hasher (foldhash) and an API without
//!   guards. Each call takes one bucket lock (a read-write lock beside the bucket's sixteen tags), so
//!   threads on different buckets write nothing in common. Use it when writes are common, or when reads
//!   and writes mix.
//! - [`ReadMap`] reads are an atomic load of the current map plus a plain `HashMap` lookup: no lock, no
//!   shared write, so reads scale with threads. Every write copies the whole map (O(n)); batch writes with
//!   [`ReadMap::update_batch`]. Use it when writes are rare or come in batches.
//! - A `Mutex<HashMap>` is fine for one thread or little traffic; under contention both maps here beat it.
//!
//! `docs/map.md` has the measured ratios (targets M1–M7: the conc-map-bench workloads against dashmap,
//! `RwLock<HashMap>`, `Mutex<HashMap>` and the peers papaya and scc) and says when to pick a peer instead.
//!
//! # Deadlock freedom
//!
//! Every lock these types take is released before the call returns, and code that runs under a lock
//! (closures passed to `get_with`, `update`, `retain`, `update_batch`, and `Clone`/`Eq`/`Drop` of keys and
//! values) may not call into a map that takes a lock of the same kind: it panics with an explanation
//! instead of deadlocking. So a thread never holds two bucket locks, and never waits for itself.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_op_in_unsafe_fn)]

mod cache;
mod concurrent;
mod read_map;
mod reentry;
mod table;

pub use cache::{ArcCache, ArcCacheStats};
pub use concurrent::ConcurrentMap;
pub use read_map::ReadMap;

/// The default hasher of this crate's maps: foldhash's fast hasher with a per-map random seed. Several
/// times faster than std's SipHash on small keys; not meant to resist hash-flooding by an adversary who
/// sees the timings (use `std::hash::RandomState` for untrusted keys).
pub type DefaultHashBuilder = foldhash::fast::RandomState;

/// This crate's place in the flowmem layer order (0 = lowest).
pub const LAYER: u8 = 3;
