//! `ConcurrentMap`: a concurrent hash map of our own table (`crate::table`) through which no guard escapes.

use std::{
    borrow::Borrow,
    fmt,
    hash::{BuildHasher, Hash},
};

use crate::{
    DefaultHashBuilder,
    reentry::{LockKind, enter},
    table::{Hashed, Table},
};

/// A concurrent hash map whose every operation takes and releases one bucket lock inside the call.
///
/// Values come out as clones ([`get`](Self::get)) or are seen through a closure
/// ([`get_with`](Self::get_with), [`update`](Self::update)); no reference into the map outlives a call. So
/// the two known deadlocks of lock-based maps that hand out guards (dashmap's) — holding a reference while
/// writing the same bucket, and two buckets taken in opposite orders by two threads — cannot be written
/// with this API: a thread holds at most one bucket lock, and code that runs under it (a closure, or
/// `Clone`/`Eq`/`Drop` of a key or value) may not call into any `ConcurrentMap` (doing so panics with an
/// explanation instead of deadlocking). [`for_each`](Self::for_each) holds no lock while its callback
/// runs, so the callback may use the map freely.
///
/// Underneath is a table of buckets of sixteen entries, each bucket with its own read-write lock beside
/// its tags (one byte of each entry's hash): an operation writes one line it reads anyway, and threads on
/// different buckets write nothing in common. The array holds one bucket per sixteen entries of capacity
/// and doubles when the map holds more entries than it has places; a full bucket keeps its extra entries
/// in a spill list. A waiting thread spins briefly, then yields. `docs/map.md` has the measured figures
/// against dashmap, scc and papaya.
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
    table: Table<K, V>,
    hasher: S,
}

impl<K: Eq + Hash, V> ConcurrentMap<K, V> {
    /// An empty map (one bucket: room for sixteen entries before it grows).
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty map with room for `capacity` entries before it grows.
    ///
    /// # Panics
    ///
    /// With "capacity overflow" if `capacity` is more than the map can be given room for (2^35 entries,
    /// less where they are large), as std's `HashMap::with_capacity` does.
    ///
    /// ```
    /// let map = flowmem_map::ConcurrentMap::<u32, u32>::with_capacity(100);
    /// assert!(map.capacity() >= 100);
    /// ```
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_capacity_and_hasher(capacity, DefaultHashBuilder::default())
    }
}

impl<K: Eq + Hash, V, S: BuildHasher> ConcurrentMap<K, V, S> {
    /// An empty map that hashes with `hasher`.
    pub fn with_hasher(hasher: S) -> Self {
        Self::with_capacity_and_hasher(0, hasher)
    }

    /// An empty map with room for `capacity` entries, hashing with `hasher`.
    ///
    /// # Panics
    ///
    /// As [`with_capacity`](ConcurrentMap::with_capacity).
    pub fn with_capacity_and_hasher(capacity: usize, hasher: S) -> Self {
        Self {
            table: Table::with_capacity(capacity),
            hasher,
        }
    }

    /// The number of entries the map holds in place before it grows (a multiple of sixteen, at least the
    /// capacity asked for).
    pub fn capacity(&self) -> usize {
        self.table.slots()
    }

    #[inline]
    fn hashed<Q: Hash + ?Sized>(&self, key: &Q) -> Hashed {
        Hashed::new(self.hasher.hash_one(key))
    }

    /// Inserts `value` under `key`, returning the value it replaces (the map keeps its first key). The old
    /// value and the new key are dropped by the caller, after the bucket lock is released.
    ///
    /// ```
    /// let map = flowmem_map::ConcurrentMap::new();
    /// assert_eq!(map.insert("a", 1), None);
    /// assert_eq!(map.insert("a", 2), Some(1));
    /// ```
    pub fn insert(&self, key: K, value: V) -> Option<V> {
        let _held = enter(LockKind::Bucket, "ConcurrentMap::insert");
        let hashed = self.hashed(&key);
        let (old, _key) = self.table.write(hashed, move |b, count| {
            if let Some(v) = b.find_mut(hashed, &key) {
                ((Some(std::mem::replace(v, value)), Some(key)), None)
            } else {
                let (_, bucket_len) = b.push(hashed, key, value, count);
                ((None, None), Some(bucket_len))
            }
        });
        old
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
        let _held = enter(LockKind::Bucket, "ConcurrentMap::get");
        let hashed = self.hashed(key);
        self.table
            .read(hashed, |b| b.find(hashed, key).map(|(_, v)| v.clone()))
    }

    /// Runs `f` on the value under `key` (under the bucket's read lock) and returns its result, without
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
        let _held = enter(LockKind::Bucket, "ConcurrentMap::get_with");
        let hashed = self.hashed(key);
        self.table
            .read(hashed, |b| b.find(hashed, key).map(|(_, v)| f(v)))
    }

    /// Runs `f` on the value under `key` (under the bucket's write lock), returning its result, or `None` if
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
        let _held = enter(LockKind::Bucket, "ConcurrentMap::update");
        let hashed = self.hashed(key);
        self.table
            .write(hashed, |b, _| (b.find_mut(hashed, key).map(f), None))
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
        let _held = enter(LockKind::Bucket, "ConcurrentMap::get_or_insert_with");
        let hashed = self.hashed(&key);
        // If another thread inserted meanwhile, its value wins; ours and our key are dropped after the
        // lock is released.
        let (winner, _loser) = self.table.write(hashed, move |b, count| {
            if let Some(v) = b.find_mut(hashed, &key) {
                ((v.clone(), Some((key, value))), None)
            } else {
                let (v, bucket_len) = b.push(hashed, key, value, count);
                ((v.clone(), None), Some(bucket_len))
            }
        });
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
        self.remove_where("ConcurrentMap::remove", key, |_| true)
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
        self.remove_where("ConcurrentMap::remove_if", key, |v| f(v))
    }

    fn remove_where<Q>(
        &self,
        operation: &'static str,
        key: &Q,
        f: impl FnOnce(&mut V) -> bool,
    ) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let _held = enter(LockKind::Bucket, operation);
        let hashed = self.hashed(key);
        self.table
            .write(hashed, |b, count| {
                (b.remove_if(hashed, key, f, count), None)
            })
            .map(|(_key, value)| value)
    }

    /// Whether `key` is present.
    #[inline]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let _held = enter(LockKind::Bucket, "ConcurrentMap::contains_key");
        let hashed = self.hashed(key);
        self.table.read(hashed, |b| b.find(hashed, key).is_some())
    }

    /// The number of entries (counted by thread in a few striped counters, summed here: exact when no
    /// insert or removal runs meanwhile).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Clones of all keys, bucket by bucket (each bucket consistent in itself), in no particular order.
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
        self.collect_in("ConcurrentMap::keys", |k, _| Some(k.clone()))
    }

    /// Clones of all entries, bucket by bucket, in no particular order.
    pub fn items(&self) -> Vec<(K, V)>
    where
        K: Clone,
        V: Clone,
    {
        self.collect_in("ConcurrentMap::items", |k, v| Some((k.clone(), v.clone())))
    }

    /// `f` applied to every entry under its bucket's read lock, the `Some` results collected (for this
    /// crate's own scans, which must not clone every value).
    pub(crate) fn collect<T>(&self, f: impl FnMut(&K, &V) -> Option<T>) -> Vec<T> {
        self.collect_in("ConcurrentMap::collect", f)
    }

    fn collect_in<T>(
        &self,
        operation: &'static str,
        mut f: impl FnMut(&K, &V) -> Option<T>,
    ) -> Vec<T> {
        let _held = enter(LockKind::Bucket, operation);
        let mut out = Vec::with_capacity(self.len());
        self.table
            .for_each_shared(|b| b.for_each(|k, v| out.extend(f(k, v))));
        out
    }

    /// Removes every entry. Values are dropped under their bucket's lock (their `Drop` must not call into a
    /// `ConcurrentMap`).
    pub fn clear(&self) {
        let _held = enter(LockKind::Bucket, "ConcurrentMap::clear");
        self.table.for_each_exclusive(|b, count| b.clear(count));
    }

    /// Calls `f` once for every entry present for the whole call, with **no lock held** while `f` runs: `f`
    /// may read, insert into or remove from this map (or any other).
    ///
    /// The entries are cloned out first (as by [`items`](Self::items), one bucket lock at a time), then `f`
    /// sees the clones: peak memory is one clone of the map. Entries inserted or removed during the call may
    /// or may not be seen; none is seen twice.
    ///
    /// ```
    /// let map = flowmem_map::ConcurrentMap::new();
    /// for i in 0..10 {
    ///     map.insert(i, i * i);
    /// }
    /// // On raw dashmap this deadlocks: its iterator holds a shard lock the insert needs.
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

    /// Keeps the entries for which `f` returns `true`, bucket by bucket under each bucket's write lock. `f`
    /// must not call into a `ConcurrentMap` (it panics if it does).
    ///
    /// ```
    /// let map = flowmem_map::ConcurrentMap::new();
    /// for i in 0..10 {
    ///     map.insert(i, i);
    /// }
    /// map.retain(|_, v| *v % 2 == 0);
    /// assert_eq!(map.len(), 5);
    /// ```
    pub fn retain(&self, mut f: impl FnMut(&K, &mut V) -> bool) {
        let _held = enter(LockKind::Bucket, "ConcurrentMap::retain");
        self.table
            .for_each_exclusive(|b, count| b.retain(&mut f, count));
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

impl<K: Eq + Hash, V, S: BuildHasher> Extend<(K, V)> for ConcurrentMap<K, V, S> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<K: Eq + Hash, V, S: BuildHasher> fmt::Debug for ConcurrentMap<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrentMap")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}
