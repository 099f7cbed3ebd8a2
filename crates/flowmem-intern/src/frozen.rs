//! [`FrozenPool`]: the read-only form of a [`StringPool`], with a table of its own.

use std::{fmt, hash::BuildHasher, mem::size_of};

use crate::{
    DefaultHasher, Preinterned, StringPool, Symbol,
    sym::WELL_KNOWN,
    table::{hash_str, same},
};

/// A read-only string pool, from [`StringPool::freeze`]: lookups and resolves take no lock, so many
/// threads read it without contending.
///
/// Freezing copies every string into one buffer, in symbol order, and indexes it with a hash table
/// (hashbrown's) of 12-byte entries, each a string's place, length and symbol: a lookup hashes the
/// string, probes the table and compares against the buffer, and reads nothing else; a resolve reads
/// the string's place in a table of `u32` offsets. The pool it came from is dropped.
///
/// ```
/// use flowmem_intern::StringPool;
///
/// let pool = StringPool::new();
/// let a = pool.intern("alpha");
/// let frozen = pool.freeze();
/// assert_eq!(frozen.get("alpha"), Some(a));
/// assert_eq!(frozen.resolve(a), "alpha");
/// assert_eq!(frozen.get("beta"), None);
/// ```
pub struct FrozenPool<S = DefaultHasher> {
    /// Every string, concatenated in symbol order.
    bytes: String,
    /// The string of symbol `i` is `bytes[offsets[i]..offsets[i + 1]]` (one more offset than strings).
    offsets: Vec<u32>,
    /// Each string's place and symbol, hashed by the string: a lookup reads the table and the bytes, and
    /// nothing else.
    table: hashbrown::HashTable<FrozenEntry>,
    hasher: S,
    preinterned: Preinterned,
}

/// Where a string of a [`FrozenPool`] is, and its symbol.
#[derive(Clone, Copy)]
struct FrozenEntry {
    start: u32,
    len: u32,
    symbol: Symbol,
}

impl FrozenEntry {
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..(self.start + self.len) as usize
    }
}

impl<S: BuildHasher + Clone> FrozenPool<S> {
    /// A copy of `pool`'s strings, hashed with `hasher` (the pool's).
    pub(crate) fn build(
        pool: &StringPool<S>,
        hasher: S,
        preinterned: Preinterned,
    ) -> FrozenPool<S> {
        let len = pool.len();
        let mut bytes = String::with_capacity(pool.string_bytes());
        let mut offsets = Vec::with_capacity(len + 1);
        offsets.push(0);
        let mut table = hashbrown::HashTable::with_capacity(len);
        // A pool's strings take less than 4 GiB in all: it addresses them with `u32` offsets.
        let to_u32 = |n: usize| u32::try_from(n).expect("a pool holds under 4 GiB of strings");
        for (symbol, s) in pool.iter() {
            let start = bytes.len();
            bytes.push_str(s);
            offsets.push(to_u32(bytes.len()));
            let entry = FrozenEntry {
                start: to_u32(start),
                len: to_u32(s.len()),
                symbol,
            };
            table.insert_unique(hash_str(&hasher, s), entry, |e| {
                hash_str(&hasher, &bytes[e.range()])
            });
        }
        FrozenPool {
            bytes,
            offsets,
            table,
            hasher,
            preinterned,
        }
    }

    #[inline]
    fn string(&self, index: u32) -> Option<&str> {
        let i = index as usize;
        let (&start, &end) = (self.offsets.get(i)?, self.offsets.get(i + 1)?);
        self.bytes.get(start as usize..end as usize)
    }

    /// The symbol of `s` if it is in the pool.
    #[inline]
    pub fn get(&self, s: &str) -> Option<Symbol> {
        let hash = hash_str(&self.hasher, s);
        self.table
            .find(hash, |e| {
                e.len as usize == s.len()
                    && (self.bytes.as_bytes().get(e.range())).is_some_and(|t| same(t, s.as_bytes()))
            })
            .map(|e| e.symbol)
    }

    /// Whether `s` is in the pool.
    pub fn contains(&self, s: &str) -> bool {
        self.get(s).is_some()
    }

    /// The string of `symbol`.
    ///
    /// # Panics
    ///
    /// If `symbol` does not belong to this pool.
    #[inline]
    pub fn resolve(&self, symbol: Symbol) -> &str {
        self.try_resolve(symbol)
            .unwrap_or_else(|| panic!("{symbol:?} is not a symbol of this pool"))
    }

    /// The string of `symbol`, or `None` if it does not belong to this pool.
    #[inline]
    pub fn try_resolve(&self, symbol: Symbol) -> Option<&str> {
        self.string(symbol.index())
    }

    /// Number of strings.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Whether the pool holds nothing but its pre-interned strings (the well-known ones and its own set).
    pub fn is_empty(&self) -> bool {
        self.len() == WELL_KNOWN.len() + self.preinterned.len()
    }

    /// Every `(symbol, string)`, in symbol order.
    pub fn iter(&self) -> impl Iterator<Item = (Symbol, &str)> + '_ {
        self.offsets.windows(2).enumerate().map(|(i, w)| {
            (
                Symbol::from_index(i as u32),
                &self.bytes[w[0] as usize..w[1] as usize],
            )
        })
    }

    /// Heap bytes the pool holds: the strings, the offsets and the hash table (its entries and control
    /// bytes, as allocated).
    pub fn memory_usage(&self) -> usize {
        self.bytes.capacity()
            + self.offsets.capacity() * size_of::<u32>()
            + self.table.allocation_size()
    }
}

impl<S> fmt::Debug for FrozenPool<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrozenPool")
            .field("len", &(self.offsets.len() - 1))
            .field("bytes", &self.bytes.len())
            .finish_non_exhaustive()
    }
}
