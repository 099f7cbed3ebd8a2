//! [`FrozenPool`]: the read-only form of a [`StringPool`], with a table of its own.

use std::{fmt, hash::BuildHasher, mem::size_of};

use crate::{DefaultHasher, Preinterned, StringPool, Symbol, sym::WELL_KNOWN, table::hash_str};

/// A read-only string pool, from [`StringPool::freeze`]: lookups and resolves take no lock, so many
/// threads read it without contending.
///
/// Freezing copies every string into one buffer, in symbol order, and indexes it with a hash table
/// (hashbrown's) of 24-byte entries, each a string's length and symbol with the string itself if it
/// has up to 16 bytes, else its first 8 bytes and its place: a lookup hashes the string, probes the
/// table and compares against the entry (a longer string against the buffer too); a resolve reads
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

/// A string of a [`FrozenPool`] and its symbol, in 24 bytes. A string of up to [`INLINE`] bytes is held
/// as its two [`words`], which with its length tell it from every other string: a lookup of it reads the
/// entry and not the buffer. A longer one is held as its first 8 bytes and its place in the buffer.
#[derive(Clone, Copy)]
struct FrozenEntry {
    /// `words(s).0`, or for a longer string its first 8 bytes (the same).
    head: u64,
    /// `words(s).1`, or for a longer string its start in the buffer.
    tail: u64,
    len: u32,
    symbol: Symbol,
}

/// The longest string a [`FrozenEntry`] holds whole.
const INLINE: usize = 16;

impl FrozenEntry {
    /// The entry of `s`, which starts at `start` in a buffer of under 4 GiB.
    fn new(s: &str, start: u32, symbol: Symbol) -> FrozenEntry {
        let (head, tail) = words(s.as_bytes());
        FrozenEntry {
            head,
            tail: if s.len() <= INLINE {
                tail
            } else {
                u64::from(start)
            },
            // It lies inside the buffer, whose length fits in a `u32`.
            len: s.len() as u32,
            symbol,
        }
    }

    /// Whether it holds `s`, whose words are `(head, tail)`; `bytes` is the pool's buffer.
    #[inline]
    fn holds(&self, s: &[u8], (head, tail): (u64, u64), bytes: &[u8]) -> bool {
        let n = s.len();
        if self.len as usize != n || self.head != head {
            return false;
        }
        if n <= INLINE {
            return self.tail == tail;
        }
        // A long string: its start in the buffer, which holds all of it.
        let start = self.tail as usize;
        bytes.get(start..start + n) == Some(s)
    }
}

/// Two words that, with its length, tell a string of up to 16 bytes from every other one: its first
/// and last 8 bytes (overlapping below 16), or 4 bytes for 4 to 7, or its bytes for fewer. For a longer
/// string they tell most others apart, and the buffer decides.
#[inline]
fn words(s: &[u8]) -> (u64, u64) {
    let n = s.len();
    let word8 = |at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().unwrap_or([0; 8]));
    let word4 = |at: usize| {
        u64::from(u32::from_ne_bytes(
            s[at..at + 4].try_into().unwrap_or([0; 4]),
        ))
    };
    if n >= 8 {
        (word8(0), word8(n - 8))
    } else if n >= 4 {
        (word4(0), word4(n - 4))
    } else {
        let byte = |i: usize| s.get(i).copied().map_or(0, u64::from);
        (byte(0) | byte(1) << 8 | byte(2) << 16, 0)
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
            let entry = FrozenEntry::new(s, to_u32(start), symbol);
            // Should the table grow, an entry's string is found by its symbol (one more offset than
            // strings pushed so far: the closure sees only entries already in).
            table.insert_unique(hash_str(&hasher, s), entry, |e| {
                let i = e.symbol.index() as usize;
                hash_str(
                    &hasher,
                    &bytes[offsets[i] as usize..offsets[i + 1] as usize],
                )
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
        let (s, words) = (s.as_bytes(), words(s.as_bytes()));
        self.table
            .find(hash, |e| e.holds(s, words, self.bytes.as_bytes()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_one_byte_apart_are_told_apart_at_every_length() {
        // Lengths around every boundary of `words` (3/4, 7/8, 16/17) and past it; each string beside
        // its copies with one byte changed, at each place.
        let pool = StringPool::new();
        let mut all = Vec::new();
        for len in 0..=24 {
            let base: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            all.push(base.clone());
            for at in 0..len {
                let mut v = base.clone().into_bytes();
                v[at] = b'Z';
                all.push(String::from_utf8(v).unwrap());
            }
        }
        let symbols: Vec<Symbol> = all.iter().map(|s| pool.intern(s)).collect();
        let frozen = pool.freeze();
        for (s, symbol) in all.iter().zip(&symbols) {
            assert_eq!(frozen.get(s), Some(*symbol), "{s:?}");
            assert_eq!(frozen.resolve(*symbol), s);
        }
        // And strings never interned, of the same lengths, are not found.
        for len in 1..=24 {
            let absent: String = "y".repeat(len);
            assert_eq!(frozen.get(&absent), None, "{absent:?}");
        }
    }

    #[test]
    fn words_of_short_strings_hold_every_byte() {
        assert_eq!(words(b""), (0, 0));
        // The words alone may agree where the lengths differ ("a" and "a\0"): a lookup compares both.
        assert_eq!(words(b"a"), words(b"a\0"));
        assert_ne!(words(b"abc"), words(b"abd"));
        assert_ne!(words(b"abcdefghijklmnop"), words(b"abcdefghXjklmnop"));
    }
}
