//! [`StringPool`]: thread-safe, lock-free lookups (its read-only form is in `frozen.rs`).

use std::{fmt, hash::BuildHasher};

use crate::{
    FrozenPool, InternError, Preinterned, Symbol,
    sym::WELL_KNOWN,
    table::{Storage, hash_str},
};

/// The default hasher of the pools: foldhash's seeded hasher, its "fast" variant (the one hashbrown
/// uses; much faster than SipHash on short strings; seeded per pool, so its hashes are not predictable
/// from outside). Its "quality" variant adds a multiply to every hash, which a hit waits for: a hit
/// took 3.5 % longer with it (13.6 against 14.1 ns, benches/examples/intern_use.rs, 2026-12-07).
pub type DefaultHasher = foldhash::fast::RandomState;

/// A thread-safe string pool: each distinct string is stored once and named by a 4-byte [`Symbol`].
///
/// Its storage is compact and lock-free to read: the strings in one byte arena (a length byte or two
/// before each), a 4-byte span per symbol, and an open-addressing table of 4-byte symbols. Looking up or
/// resolving a string takes no lock, so threads interning strings the pool already holds do not contend;
/// a new string is added under one mutex, which re-checks, so two threads interning the same new string
/// get the same symbol (`tests/concurrency.rs` hammers exactly this). The table grows a bucket at a
/// time (extendible hashing): nothing a lookup may be reading is moved or freed while the pool lives.
///
/// Every pool starts with the [`WELL_KNOWN`] strings, so [`sym`](crate::sym)'s constants are valid in it.
///
/// ```
/// use flowmem_intern::{StringPool, sym};
///
/// let pool = StringPool::new();
/// let fetch = pool.intern("fetch");
/// assert_eq!(pool.get("fetch"), Some(fetch));
/// assert_eq!(pool.get("never-seen"), None); // lookup only: untrusted input does not grow the pool
/// assert_eq!(pool.resolve(fetch), "fetch");
/// assert_eq!(pool.resolve(sym::FAILED), "FAILED");
/// // One stored copy per distinct string:
/// assert!(std::ptr::eq(pool.intern_str("fetch"), pool.intern_str(&String::from("fetch"))));
/// ```
pub struct StringPool<S = DefaultHasher> {
    storage: Storage,
    hasher: S,
    /// The program's own pre-interned strings, after the well-known ones.
    preinterned: Preinterned,
}

impl StringPool {
    /// An empty pool (but for the well-known strings) with the default hasher and no memory limit.
    pub fn new() -> StringPool {
        StringPool::with_hasher(DefaultHasher::default())
    }

    /// An empty pool but for the well-known strings of [`sym`](crate::sym) and then the program's own
    /// `set` (declared with [`preinterned!`](crate::preinterned)), in that order: the set's constants are
    /// the symbols of its strings in this pool and in every other pool made with the same set.
    ///
    /// ```
    /// flowmem_intern::preinterned! {
    ///     pub mod vm_status { RUNNING = "running", STOPPED = "stopped" }
    /// }
    /// let pool = flowmem_intern::StringPool::with_preinterned(vm_status::SET);
    /// assert_eq!(pool.intern("stopped"), vm_status::STOPPED);
    /// assert_eq!(pool.resolve(vm_status::RUNNING), "running");
    /// assert!(pool.is_empty()); // nothing but pre-interned strings yet
    /// ```
    pub fn with_preinterned(set: Preinterned) -> StringPool {
        StringPool::with_hasher_and_preinterned(DefaultHasher::default(), set)
    }
}

impl Default for StringPool {
    fn default() -> Self {
        StringPool::new()
    }
}

impl<S: BuildHasher + Clone> StringPool<S> {
    /// An empty pool (but for the well-known strings) hashing with `hasher`.
    pub fn with_hasher(hasher: S) -> StringPool<S> {
        StringPool::with_hasher_and_preinterned(hasher, Preinterned::EMPTY)
    }

    /// An empty pool but for the well-known strings and then `set`, hashing with `hasher`: see
    /// [`StringPool::with_preinterned`].
    pub fn with_hasher_and_preinterned(hasher: S, set: Preinterned) -> StringPool<S> {
        let pool = StringPool {
            storage: Storage::new(),
            hasher,
            preinterned: set,
        };
        for (i, s) in WELL_KNOWN.iter().chain(set.strings()).enumerate() {
            let symbol = pool
                .try_intern(s)
                .expect("a new pool has room for its pre-interned strings");
            // `Preinterned::new` refused repeated strings, so each one is new here.
            debug_assert_eq!(symbol.index() as usize, i);
        }
        pool
    }

    /// The program's own pre-interned strings this pool was made with ([`Preinterned::EMPTY`] if none).
    pub fn preinterned(&self) -> Preinterned {
        self.preinterned
    }

    /// Refuses new strings that would take [`memory_usage`](StringPool::memory_usage) past `limit` bytes:
    /// [`try_intern`](StringPool::try_intern) returns [`InternError::MemoryLimit`] and the pool stays
    /// usable (existing strings still resolve and intern). A hard bound: the heap the pool holds never
    /// exceeds it, whatever the threads do (the storage grows in steps, a chunk of bytes or a table at a
    /// time, and a step that would not fit is refused whole).
    ///
    /// ```
    /// use flowmem_intern::{InternError, StringPool};
    ///
    /// let pool = StringPool::new();
    /// let limit = pool.memory_usage() + 200;
    /// let pool = pool.with_memory_limit(limit);
    /// let a = pool.try_intern("a").unwrap();
    /// let long = "x".repeat(500);
    /// assert!(matches!(pool.try_intern(&long), Err(InternError::MemoryLimit { .. })));
    /// assert_eq!(pool.try_intern("a"), Ok(a)); // hits never fail
    /// assert!(pool.memory_usage() <= limit);
    /// ```
    pub fn with_memory_limit(mut self, limit: usize) -> StringPool<S> {
        self.storage.set_limit(Some(limit));
        self
    }

    /// The memory limit, if one is set.
    pub fn memory_limit(&self) -> Option<usize> {
        self.storage.limit()
    }

    /// The symbol of `s`, interning it if it is new.
    ///
    /// # Panics
    ///
    /// If `s` is new and the pool cannot take it (memory limit, or 4 GiB of strings); use
    /// [`try_intern`](StringPool::try_intern) where that can happen.
    #[inline]
    pub fn intern(&self, s: &str) -> Symbol {
        match self.find(s) {
            Ok(symbol) => symbol,
            Err(hash) => self.intern_new_or_panic(s, hash),
        }
    }

    /// The symbol of `s`, interning it if it is new, or an error when the pool cannot take a new string.
    #[inline]
    pub fn try_intern(&self, s: &str) -> Result<Symbol, InternError> {
        match self.find(s) {
            Ok(symbol) => Ok(symbol),
            Err(hash) => self.intern_new(s, hash),
        }
    }

    /// The symbol of `s` if a look finds it, else its hash: a miss may be a split moving the string,
    /// which the locked insert that follows settles (it looks again under the lock).
    #[inline]
    fn find(&self, s: &str) -> Result<Symbol, u64> {
        let hash = hash_str(&self.hasher, s);
        match self.storage.probe(s, hash) {
            Some(index) => Ok(Symbol::from_index(index)),
            None => Err(hash),
        }
    }

    #[cold]
    fn intern_new(&self, s: &str, hash: u64) -> Result<Symbol, InternError> {
        self.storage
            .insert(s, hash, &self.hasher)
            .map(Symbol::from_index)
    }

    #[cold]
    #[inline(never)]
    fn intern_new_or_panic(&self, s: &str, hash: u64) -> Symbol {
        self.intern_new(s, hash).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The symbol of `s` if it is interned; never adds to the pool (for untrusted input).
    #[inline]
    pub fn get(&self, s: &str) -> Option<Symbol> {
        self.storage
            .get(s, hash_str(&self.hasher, s))
            .map(Symbol::from_index)
    }

    /// Whether `s` is interned.
    pub fn contains(&self, s: &str) -> bool {
        self.get(s).is_some()
    }

    /// The string of `symbol`.
    ///
    /// # Panics
    ///
    /// If `symbol` does not belong to this pool (see [`try_resolve`](StringPool::try_resolve)).
    #[inline]
    pub fn resolve(&self, symbol: Symbol) -> &str {
        self.try_resolve(symbol).unwrap_or_else(|| {
            panic!(
                "{symbol:?} is not a symbol of this pool, which holds {} strings",
                self.len()
            )
        })
    }

    /// The string of `symbol`, or `None` if it does not belong to this pool.
    #[inline]
    pub fn try_resolve(&self, symbol: Symbol) -> Option<&str> {
        self.storage.resolve(symbol.index() as usize)
    }

    /// The pool's one stored copy of `s` (interning it if new): the same reference for every call with an
    /// equal string, valid as long as the pool.
    ///
    /// # Panics
    ///
    /// As [`intern`](StringPool::intern).
    pub fn intern_str(&self, s: &str) -> &str {
        self.resolve(self.intern(s))
    }

    /// Number of distinct strings, the well-known ones included.
    pub fn len(&self) -> usize {
        self.storage.len()
    }

    /// Whether the pool holds nothing but its pre-interned strings (the well-known ones and its own set).
    pub fn is_empty(&self) -> bool {
        self.len() == WELL_KNOWN.len() + self.preinterned.len()
    }

    /// Heap bytes the pool holds, exactly: its byte chunks, anchor segments, table (and a replaced table
    /// until it is freed) and directory. `cargo xtask bench` checks it against a counting allocator.
    pub fn memory_usage(&self) -> usize {
        self.storage.memory_usage()
    }

    /// Bytes of the distinct strings themselves (their lengths summed, the well-known strings included),
    /// exactly: counted when a string is added, under the lock that adds it.
    pub fn string_bytes(&self) -> usize {
        self.storage.string_bytes()
    }

    /// Every `(symbol, string)`, in symbol order (interning order).
    pub fn iter(&self) -> impl Iterator<Item = (Symbol, &str)> + '_ {
        let len = self.len();
        (0..len).filter_map(move |i| {
            self.storage
                .resolve(i)
                .map(|s| (Symbol::from_index(i as u32), s))
        })
    }

    /// Freezes the pool into a read-only [`FrozenPool`]: a tighter copy whose table keeps each string's
    /// hash beside its symbol, so a lookup compares strings only on a likely match. Symbols stay valid.
    pub fn freeze(self) -> FrozenPool<S> {
        FrozenPool::build(&self, self.hasher.clone(), self.preinterned)
    }
}

impl<S: BuildHasher + Clone> fmt::Debug for StringPool<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StringPool")
            .field("len", &self.len())
            .field("memory_usage", &self.memory_usage())
            .field("limit", &self.memory_limit())
            .field("preinterned", &self.preinterned.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sym;

    #[test]
    fn well_known_strings_come_first() {
        let pool = StringPool::new();
        assert_eq!(pool.len(), WELL_KNOWN.len());
        assert!(pool.is_empty());
        for (i, s) in WELL_KNOWN.iter().enumerate() {
            assert_eq!(pool.get(s).map(Symbol::index), Some(i as u32));
        }
        assert_eq!(pool.intern("RUNNING"), sym::RUNNING);
    }

    #[test]
    fn foreign_symbols_are_refused_not_misread() {
        let small = StringPool::new();
        let big = StringPool::new();
        let far = (0..100)
            .map(|i| big.intern(&format!("s{i}")))
            .last()
            .unwrap();
        assert_eq!(small.try_resolve(far), None);
        let text =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| small.resolve(far).len()))
                .unwrap_err()
                .downcast::<String>()
                .unwrap();
        assert!(text.contains("not a symbol of this pool"), "{text}");
    }

    #[test]
    fn memory_limit_refuses_new_strings_only() {
        let base = StringPool::new().memory_usage();
        let pool = StringPool::new().with_memory_limit(base + 400);
        let mut interned = Vec::new();
        let err = loop {
            match pool.try_intern(&format!("str-{:04}", interned.len())) {
                Ok(s) => interned.push(s),
                Err(e) => break e,
            }
        };
        assert!(matches!(err, InternError::MemoryLimit { .. }), "{err}");
        assert!(interned.len() >= 5, "{}", interned.len());
        assert!(pool.memory_usage() <= base + 400);
        assert_eq!(pool.try_intern("str-0000"), Ok(interned[0]));
        assert!(err.to_string().contains("memory limit"));
    }

    /// The case the memory limit used to exceed: 256 strings into a pool limited to 19,905 bytes, on one
    /// thread and then from 12 threads at once; and the string bytes are the exact sum.
    #[test]
    fn the_memory_limit_is_a_hard_bound_and_string_bytes_are_exact() {
        let words: Vec<String> = (0..256)
            .map(|i| format!("limit-{i}-{}", "x".repeat(i % 13)))
            .collect();
        let pool = StringPool::new().with_memory_limit(19_905);
        let mut accepted = 0;
        for w in &words {
            if pool.try_intern(w).is_ok() {
                accepted += 1;
            }
            assert!(pool.memory_usage() <= 19_905, "{}", pool.memory_usage());
        }
        assert!(accepted > 50, "{accepted}");
        let pool = StringPool::new().with_memory_limit(19_905);
        std::thread::scope(|s| {
            for _ in 0..12 {
                s.spawn(|| {
                    for w in &words {
                        let _ = pool.try_intern(w);
                        assert!(pool.memory_usage() <= 19_905);
                    }
                });
            }
        });
        let expected: usize = pool.iter().map(|(_, s)| s.len()).sum();
        assert_eq!(pool.string_bytes(), expected);
    }

    #[test]
    fn pools_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<StringPool>();
        check::<FrozenPool>();
    }
}
