//! The one error type of the crate.

/// Why a string could not be interned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InternError {
    /// The pool has a memory limit and this new string would take it past the limit.
    #[error(
        "string pool memory limit of {limit} bytes reached: {used} bytes in use, {needed} more needed \
         for a new string of {len} bytes"
    )]
    MemoryLimit {
        /// The limit set with [`StringPool::with_memory_limit`](crate::StringPool::with_memory_limit).
        limit: usize,
        /// [`StringPool::memory_usage`](crate::StringPool::memory_usage) at the time.
        used: usize,
        /// Bytes the new string would add (its bytes and its entries).
        needed: usize,
        /// Length of the string.
        len: usize,
    },
    /// The pool holds `u32::MAX - 1` strings already: no symbol is left.
    #[error("string pool is full: no symbol left after {0} strings")]
    SymbolsExhausted(usize),
    /// [`preintern_global`](crate::preintern_global) came after the process-wide pool was made with
    /// another set of pre-interned strings (or none).
    #[error(
        "the process-wide string pool was made before preintern_global with another set \
         (it holds {strings} strings): call preintern_global before anything interns, so the {wanted} \
         pre-interned strings get their symbols"
    )]
    GlobalStarted {
        /// Strings the process-wide pool holds.
        strings: usize,
        /// Strings of the set that was asked for.
        wanted: usize,
    },
    /// The pool could not store the string (the allocator returned no memory for a new chunk).
    #[error("string pool could not store a string of {len} bytes: {reason}")]
    Storage {
        /// Length of the string.
        len: usize,
        /// What failed.
        reason: String,
    },
}
