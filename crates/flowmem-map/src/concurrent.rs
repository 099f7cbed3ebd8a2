//! `ConcurrentMap`: a sharded map on dashmap through which no guard escapes.

use std::{
    borrow::Borrow,
    fmt,
    hash::{BuildHasher, Hash},
};

use dashmap::DashMap;

use crate::{
    DefaultHashBuilder,
    reentry::{LockKind, enter},
};

/// A concurrent hash map, sharded (on [`dashmap`]), whose every operation takes and releases its shard lock
/// inside the call.
///
/// Values come out as clones ([`get`](Self::get)) or are seen through a closure
/// ([`get_with`](Self::get_with), [`update`](Self::update)); no reference into the map outlives a call. So the
/// two known dashmap deadlocks — holding a `Ref` while writing the same shard, and two shards taken in
/// opposite orders by two threads — cannot be written with this API: a thread holds at most one shard lock,
/// and code that runs under it (a closure, or `Clone`/`Eq`/`Drop` of a key or value) may not call into any
/// `ConcurrentMap` (doing so panics with an explanation instead of deadlocking). [`for_each`](Self::for_each)
/// holds no lock while its callback runs, so the callback may use the map freely.
///
/// The default hasher is foldhash's fast one, seeded per map (not DoS-resistant for adversarial keys; pass
/// `std::hash::RandomState` through [`with_hasher`](Self::with_hasher) for that).
///
/// ```
/// use flowmem_map::ConcurrentMap;
///
/// let hits: ConcurrentMap<&str, u64> = ConcurrentMap::new();
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| {
///             for _ in 0..100 {
///                 hits.get_or_insert_with("home", || 0);
///                 hits.update("home", |n| *n += 1);
///             }
///         });
///     }
/// });
/// assert_eq!(hits.get("home"), Some(400));
/// ```
pub struct ConcurrentMap<K, V, S = DefaultHashBuilder> {
    inner: DashMap<K, V, S>,
    shards: usize,
}

/// Sixteen shards per available CPU, rounded up to a power of two (dashmap's own default is four).
///
/// Two threads on 2^17 keys (bench group `read_heavy`, `exchange`, two threads): 8 shards ran ReadHeavy at
/// 62 M operations/s and Exchange at 39 M, 32 shards at 90 M and 51 M, 64–1,024 shards within the noise of
/// 32. Fewer shards means threads meet on the same shard lock's cache line more often; each shard costs 128
/// bytes when empty (32 shards: 4 KiB).
fn default_shards() -> usize {
    static SHARDS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SHARDS.get_or_init(|| {
        (std::thread::available_parallelism().map_or(1, usize::from) * 16).next_power_of_two()
    })
}

impl<K: Eq + Hash, V> ConcurrentMap<K, V> {
    /// An empty map with the default number of shards (sixteen per available CPU, a power of two).
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty map with room for `capacity` entries before it grows.
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_capacity_and_hasher(capacity, DefaultHashBuilder::default())
    }

    /// An empty map with `shards` shards, rounded up to a power of two of at least 2 (more shards: less
    /// contention between writers, more memory and a slower [`len`](Self::len)).
    ///
    /// ```
    /// let map = flowmem_map::ConcurrentMap::<u32, u32>::with_shards(5);
    /// assert_eq!(map.shards(), 8);
    /// ```
    pub fn with_shards(shards: usize) -> Self {
        Self::with_capacity_hasher_and_shards(0, DefaultHashBuilder::default(), shards)
    }
}

impl<K: Eq + Hash, V, S: BuildHasher + Clone> ConcurrentMap<K, V, S> {
    /// An empty map that hashes with `hasher`.
    pub fn with_hasher(hasher: S) -> Self {
        Self::with_capacity_and_hasher(0, hasher)
    }

    /// An empty map with room for `capacity` entries, hashing with `hasher`.
    pub fn with_capacity_and_hasher(capacity: usize, hasher: S) -> Self {
        Self::with_capacity_hasher_and_shards(capacity, hasher, default_shards())
    }

    /// The most general constructor: capacity, hasher and shard count (rounded up to a power of two of at
    /// least 2).
    pub fn with_capacity_hasher_and_shards(capacity: usize, hasher: S, shards: usize) -> Self {
        let shards = shards.max(2).checked_next_power_of_two().unwrap_or(1 << 16);
        Self {
            inner: DashMap::with_capacity_and_hasher_and_shard_amount(capacity, hasher, shards),
            shards,
        }
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// Inserts `value` under `key`, returning the value it replaces. The old value is dropped by the caller,
    /// after the shard lock is released.
    ///
    /// ```
    /// let map = flowmem_map::ConcurrentMap::new();
    /// assert_eq!(map.insert("a", 1), None);
    /// assert_eq!(map.insert("a", 2), Some(1));
    /// ```
    pub fn insert(&self, key: K, value: V) -> Option<V> {
        let _held = enter(LockKind::Shard, "ConcurrentMap::insert");
        self.inner.insert(key, value)
    }

    /// A clone of the value under `key`.
    ///
    /// ```
    /// let map = flowmem_map::ConcurrentMap::new();
    /// map.insert(String::from("a"), vec![1, 2]);
    /// assert_eq!(map.get("a"), Some(vec![1, 2]));
    /// assert_eq!(map.get("b"), None);
    /// ```
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let _held = enter(LockKind::Shard, "ConcurrentMap::get");
        self.inner.get(key).map(|r| r.value().clone())
    }

    /// Runs `f` on the value under `key` (under the shard's read lock) and returns its result, without
    /// cloning the value. `f` must not call into a `ConcurrentMap` (it panics if it does).
    ///
    /// ```
    /// let map = flowmem_map::ConcurrentMap::new();
    /// map.insert(1, String::from("hello"));
    /// assert_eq!(map.get_with(&1, |s| s.len()), Some(5));
    /// ```
    #[inline]
    pub fn get_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let _held = enter(LockKind::Shard, "ConcurrentMap::get_with");
        self.inner.view(key, |_, v| f(v))
    }

    /// Runs `f` on the value under `key` (under the shard's write lock), returning its result, or `None` if
    /// the key is absent. `f` must not call into a `ConcurrentMap` (it panics if it does).
    ///
    /// ```
    /// let map = flowmem_map::ConcurrentMap::new();
    /// map.insert("runs", 1);
    /// assert_eq!(map.update("runs", |n| { *n += 1; *n }), Some(2));
    /// assert_eq!(map.update("other", |n| *n), None);
    /// ```
    pub fn update<Q, R>(&self, key: &Q, f: impl FnOnce(&mut V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let _held = enter(LockKind::Shard, "ConcurrentMap::update");
        self.inner.get_mut(key).map(|mut r| f(r.value_mut()))
    }

    /// The value under `key`, inserting `f()` first if the key is absent.
    ///
    /// `f` runs with no lock held (so it may be slow, or use the map). If several threads race on one absent
    /// key, each may call `f`, but exactly one value is stored and every caller gets (a clone of) that one.
    /// When `f` must run once per key, use [`ArcCache`](crate::ArcCache).
    ///
    /// ```
    /// let map = flowmem_map::ConcurrentMap::new();
    /// assert_eq!(map.get_or_insert_with("a", || 1), 1);
    /// assert_eq!(map.get_or_insert_with("a", || 2), 1);
    /// ```
    pub fn get_or_insert_with(&self, key: K, f: impl FnOnce() -> V) -> V
    where
        V: Clone,
    {
        if let Some(v) = self.get(&key) {
            return v;
        }
        let value = f();
        let _held = enter(LockKind::Shard, "ConcurrentMap::get_or_insert_with");
        // If another thread inserted meanwhile, its value wins and ours is dropped after the lock is gone.
        let mut loser = None;
        let winner = match self.inner.entry(key) {
            dashmap::Entry::Occupied(e) => {
                loser = Some(value);
                e.get().clone()
            }
            dashmap::Entry::Vacant(e) => e.insert(value).value().clone(),
        };
        drop(loser);
        winner
    }

    /// Removes `key`, returning its value (dropped by the caller, after the lock is released).
    ///
    /// ```
    /// let map = flowmem_map::ConcurrentMap::new();
    /// map.insert(1, "one");
    /// assert_eq!(map.remove(&1), Some("one"));
    /// assert_eq!(map.remove(&1), None);
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let _held = enter(LockKind::Shard, "ConcurrentMap::remove");
        self.inner.remove(key).map(|(_, v)| v)
    }

    /// Removes `key` if `f` returns `true` for its value (checked and removed under one lock), returning the
    /// removed value. `f` must not call into a `ConcurrentMap`.
    ///
    /// ```
    /// let map = flowmem_map::ConcurrentMap::new();
    /// map.insert("job", 3);
    /// assert_eq!(map.remove_if("job", |attempts| *attempts > 5), None);
    /// assert_eq!(map.remove_if("job", |attempts| *attempts == 3), Some(3));
    /// ```
    pub fn remove_if<Q>(&self, key: &Q, f: impl FnOnce(&V) -> bool) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let _held = enter(LockKind::Shard, "ConcurrentMap::remove_if");
        self.inner.remove_if(key, |_, v| f(v)).map(|(_, v)| v)
    }

    /// Whether `key` is present.
    #[inline]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let _held = enter(LockKind::Shard, "ConcurrentMap::contains_key");
        self.inner.contains_key(key)
    }

    /// The number of entries (the sum over shards, each read in turn: under concurrent writes, a value the
    /// map had at some moment during the call only if no writer ran).
    pub fn len(&self) -> usize {
        let _held = enter(LockKind::Shard, "ConcurrentMap::len");
        self.inner.len()
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        let _held = enter(LockKind::Shard, "ConcurrentMap::is_empty");
        self.inner.is_empty()
    }

    /// Clones of all keys, shard by shard (each shard consistent in itself), in no particular order.
    ///
    /// ```
    /// let map = flowmem_map::ConcurrentMap::new();
    /// map.insert(2, ());
    /// map.insert(1, ());
    /// let mut keys = map.keys();
    /// keys.sort();
    /// assert_eq!(keys, [1, 2]);
    /// ```
    pub fn keys(&self) -> Vec<K>
    where
        K: Clone,
    {
        let _held = enter(LockKind::Shard, "ConcurrentMap::keys");
        self.inner.iter().map(|r| r.key().clone()).collect()
    }

    /// Clones of all entries, shard by shard, in no particular order.
    pub fn items(&self) -> Vec<(K, V)>
    where
        K: Clone,
        V: Clone,
    {
        let _held = enter(LockKind::Shard, "ConcurrentMap::items");
        self.inner
            .iter()
            .map(|r| (r.key().clone(), r.value().clone()))
            .collect()
    }

    /// `f` applied to every entry under its shard's read lock, the `Some` results collected (for this crate's
    /// own scans, which must not clone every value).
    pub(crate) fn collect<T>(&self, mut f: impl FnMut(&K, &V) -> Option<T>) -> Vec<T> {
        let _held = enter(LockKind::Shard, "ConcurrentMap::collect");
        self.inner
            .iter()
            .filter_map(|r| f(r.key(), r.value()))
            .collect()
    }

    /// Removes every entry. Values are dropped under their shard's lock (their `Drop` must not call into a
    /// `ConcurrentMap`).
    pub fn clear(&self) {
        let _held = enter(LockKind::Shard, "ConcurrentMap::clear");
        self.inner.clear();
    }

    /// Calls `f` once for every entry present for the whole call, with **no lock held** while `f` runs: `f`
    /// may read, insert into or remove from this map (or any other).
    ///
    /// The entries are cloned out first (as by [`items`](Self::items), one shard lock at a time), then `f`
    /// sees the clones: peak memory is one clone of the map. Entries inserted or removed during the call may
    /// or may not be seen; none is seen twice.
    ///
    /// ```
    /// let map = flowmem_map::ConcurrentMap::new();
    /// for i in 0..10 {
    ///     map.insert(i, i * i);
    /// }
    /// // On raw dashmap this deadlocks: the iterator holds a shard lock the insert needs.
    /// map.for_each(|k, v| {
    ///     map.insert(k + 100, *v);
    /// });
    /// assert_eq!(map.len(), 20);
    /// ```
    pub fn for_each(&self, mut f: impl FnMut(&K, &V))
    where
        K: Clone,
        V: Clone,
    {
        for (k, v) in self.items() {
            f(&k, &v);
        }
    }

    /// Keeps the entries for which `f` returns `true`, shard by shard under each shard's write lock. `f` must
    /// not call into a `ConcurrentMap` (it panics if it does).
    ///
    /// ```
    /// let map = flowmem_map::ConcurrentMap::new();
    /// for i in 0..10 {
    ///     map.insert(i, i);
    /// }
    /// map.retain(|_, v| *v % 2 == 0);
    /// assert_eq!(map.len(), 5);
    /// ```
    pub fn retain(&self, f: impl FnMut(&K, &mut V) -> bool) {
        let _held = enter(LockKind::Shard, "ConcurrentMap::retain");
        self.inner.retain(f);
    }
}

impl<K: Eq + Hash, V> Default for ConcurrentMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash, V> FromIterator<(K, V)> for ConcurrentMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let map = Self::new();
        for (k, v) in iter {
            map.insert(k, v);
        }
        map
    }
}

impl<K: Eq + Hash, V, S: BuildHasher + Clone> Extend<(K, V)> for ConcurrentMap<K, V, S> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<K: Eq + Hash, V, S: BuildHasher + Clone> fmt::Debug for ConcurrentMap<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrentMap")
            .field("len", &self.len())
            .field("shards", &self.shards())
            .finish_non_exhaustive()
    }
}
