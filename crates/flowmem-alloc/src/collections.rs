//! Collections that allocate less: a vector that keeps its first items inline ([`SmallVec`], the
//! `smallvec` crate), maps on the workspace's fast hasher ([`FastMap`], [`FastSet`]: foldhash), and
//! vectors sized with headroom ([`Headroom::with_capacity_headroom`]).

use std::collections::{HashMap, HashSet};

/// `smallvec`'s vector with `N` items inline (8 by default): no heap allocation until it holds more.
///
/// ```
/// use flowmem_alloc::SmallVec;
///
/// let mut nodes: SmallVec<u64> = SmallVec::new();
/// nodes.extend([1, 2, 3]);
/// assert!(!nodes.spilled()); // still inline
/// let wide: SmallVec<u8, 2> = (0..3).collect();
/// assert!(wide.spilled());
/// ```
pub type SmallVec<T, const N: usize = 8> = smallvec::SmallVec<[T; N]>;

pub use smallvec;

/// A `HashMap` on foldhash's fast hasher (not DoS-resistant across untrusted keys, as any fast hasher:
/// for the program's own keys — ids, names, small integers).
///
/// ```
/// use flowmem_alloc::FastMap;
///
/// let mut cache: FastMap<String, u64> = FastMap::default();
/// cache.insert("vm-1".into(), 7);
/// assert_eq!(cache["vm-1"], 7);
/// ```
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A `HashSet` on foldhash's fast hasher (see [`FastMap`]).
pub type FastSet<T> = HashSet<T, foldhash::fast::RandomState>;

/// Capacity with headroom: room for `expected` items and a quarter more, so that an estimate a little
/// short does not double the allocation (and copy everything) at the last item.
pub trait Headroom {
    /// An empty collection with room for `expected + expected / 4` items (at least `expected`).
    ///
    /// ```
    /// use flowmem_alloc::{FastMap, Headroom};
    ///
    /// let v: Vec<u32> = Vec::with_capacity_headroom(100);
    /// assert!(v.capacity() >= 125);
    /// let m: FastMap<u32, u32> = FastMap::with_capacity_headroom(100);
    /// assert!(m.capacity() >= 125);
    /// ```
    fn with_capacity_headroom(expected: usize) -> Self;
}

/// `expected` and a quarter more, saturating.
fn with_quarter(expected: usize) -> usize {
    expected.saturating_add(expected / 4)
}

impl<T> Headroom for Vec<T> {
    fn with_capacity_headroom(expected: usize) -> Self {
        Vec::with_capacity(with_quarter(expected))
    }
}

impl<K, V> Headroom for FastMap<K, V> {
    fn with_capacity_headroom(expected: usize) -> Self {
        HashMap::with_capacity_and_hasher(with_quarter(expected), Default::default())
    }
}

impl<T> Headroom for FastSet<T> {
    fn with_capacity_headroom(expected: usize) -> Self {
        HashSet::with_capacity_and_hasher(with_quarter(expected), Default::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_is_a_quarter_and_saturates() {
        assert_eq!(with_quarter(0), 0);
        assert_eq!(with_quarter(8), 10);
        assert_eq!(with_quarter(usize::MAX), usize::MAX);
        let v: Vec<u8> = Vec::with_capacity_headroom(1000);
        assert!(v.capacity() >= 1250);
    }

    #[test]
    fn a_small_vec_stays_inline_up_to_its_size() {
        let mut v: SmallVec<u64> = SmallVec::new();
        v.extend(0..8);
        assert!(!v.spilled());
        v.push(8);
        assert!(v.spilled());
        assert_eq!(v.iter().sum::<u64>(), 36);
    }
}
