//! `ReadMap`: a copy-on-write map on arc-swap, for data read far more often than written.

use std::{
    borrow::Borrow,
    collections::HashMap,
    fmt,
    hash::{BuildHasher, Hash},
    sync::{Arc, Mutex, PoisonError},
};

use arc_swap::ArcSwap;

use crate::{
    DefaultHashBuilder,
    reentry::{LockKind, enter},
};

/// A map whose reads take no lock at all: every read sees an immutable `HashMap` published through
/// [`arc_swap::ArcSwap`], and every write publishes a modified copy.
///
/// - Reads ([`get`](Self::get), [`get_with`](Self::get_with), [`contains_key`](Self::contains_key),
///   [`snapshot`](Self::snapshot) ...) are wait-free in the common case and scale with threads; they never
///   wait for a writer.
/// - Writes are serialised by a mutex (no lost update, no retry storm) and each one copies the map: O(n).
///   Group many changes into one copy with [`update_batch`](Self::update_batch).
/// - A write is all or nothing: if its closure panics, the published map is unchanged.
///
/// The operations it shares with [`ConcurrentMap`](crate::ConcurrentMap) behave the same (a property test
/// runs both on the same operation sequences). Closures given to writes must not write to a `ReadMap`
/// (that panics instead of deadlocking); reads anywhere are fine.
///
/// ```
/// use flowmem_map::ReadMap;
///
/// let routes: ReadMap<String, u16> = ReadMap::new();
/// routes.update_batch(|m| {
///     m.insert("api".into(), 8080);
///     m.insert("web".into(), 80);
/// });
/// let snapshot = routes.snapshot(); // a consistent view, unaffected by later writes
/// routes.insert("web".into(), 8000);
/// assert_eq!(snapshot["web"], 80);
/// assert_eq!(routes.get("web"), Some(8000));
/// ```
pub struct ReadMap<K, V, S = DefaultHashBuilder> {
    current: ArcSwap<HashMap<K, V, S>>,
    writer: Mutex<()>,
}

impl<K, V> ReadMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::with_hasher(DefaultHashBuilder::default())
    }
}

impl<K, V, S> ReadMap<K, V, S> {
    /// An empty map that hashes with `hasher`.
    pub fn with_hasher(hasher: S) -> Self {
        Self::from(HashMap::with_hasher(hasher))
    }
}

impl<K: Eq + Hash, V, S: BuildHasher> ReadMap<K, V, S> {
    /// A clone of the value under `key`. Lock-free.
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.current.load().get(key).cloned()
    }

    /// Runs `f` on the value under `key` and returns its result. Lock-free; `f` may do anything, including
    /// writing to this map (the write does not change the value `f` is looking at).
    ///
    /// ```
    /// let map = flowmem_map::ReadMap::new();
    /// map.insert(1, String::from("hello"));
    /// assert_eq!(map.get_with(&1, |s| s.len()), Some(5));
    /// ```
    #[inline]
    pub fn get_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.current.load().get(key).map(f)
    }

    /// Whether `key` is present. Lock-free.
    #[inline]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.current.load().contains_key(key)
    }

    /// The number of entries. Lock-free.
    pub fn len(&self) -> usize {
        self.current.load().len()
    }

    /// Whether the map has no entries. Lock-free.
    pub fn is_empty(&self) -> bool {
        self.current.load().is_empty()
    }

    /// The map as it is now: an immutable, consistent view that later writes do not change. Cheap (one
    /// reference count); hold it as long as needed (it keeps that version's memory alive).
    pub fn snapshot(&self) -> Arc<HashMap<K, V, S>> {
        self.current.load_full()
    }

    /// Clones of all keys, from one consistent snapshot.
    pub fn keys(&self) -> Vec<K>
    where
        K: Clone,
    {
        self.current.load().keys().cloned().collect()
    }

    /// Clones of all entries, from one consistent snapshot.
    pub fn items(&self) -> Vec<(K, V)>
    where
        K: Clone,
        V: Clone,
    {
        self.current
            .load()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Calls `f` once for every entry of the current snapshot, with no lock held: `f` may read or write this
    /// map (writes are not seen by this walk).
    pub fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        for (k, v) in self.snapshot().iter() {
            f(k, v);
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone, S: BuildHasher + Clone> ReadMap<K, V, S> {
    /// Applies `f` to a copy of the map and publishes the copy: many changes for the price of one copy.
    /// Readers see all of them or none. If `f` panics, nothing is published.
    ///
    /// ```
    /// let map = flowmem_map::ReadMap::new();
    /// let inserted = map.update_batch(|m| {
    ///     for i in 0..1000 {
    ///         m.insert(i, i * 2);
    ///     }
    ///     m.len()
    /// });
    /// assert_eq!(inserted, 1000);
    /// assert_eq!(map.get(&999), Some(1998));
    /// ```
    pub fn update_batch<R>(&self, f: impl FnOnce(&mut HashMap<K, V, S>) -> R) -> R {
        self.write("ReadMap::update_batch", |current| {
            let mut next = HashMap::clone(current);
            let result = f(&mut next);
            (Some(next), result)
        })
    }

    /// The one write path: under the writer lock, `f` sees the published map and returns the map to publish
    /// (`None`: no change, nothing copied). The replaced version is dropped after the lock is released.
    fn write<R>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&HashMap<K, V, S>) -> (Option<HashMap<K, V, S>>, R),
    ) -> R {
        let held = enter(LockKind::Writer, operation);
        let lock = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.current.load_full();
        let (next, result) = f(&current);
        let replaced = next.map(|next| self.current.swap(Arc::new(next)));
        drop(lock);
        drop(held);
        drop((current, replaced));
        result
    }

    /// Inserts `value` under `key`, returning the value it replaces. Copies the map.
    pub fn insert(&self, key: K, value: V) -> Option<V> {
        self.write("ReadMap::insert", |current| {
            let mut next = HashMap::clone(current);
            let old = next.insert(key, value);
            (Some(next), old)
        })
    }

    /// Runs `f` on the value under `key` in a copy of the map and publishes the copy; `None` (and no copy) if
    /// the key is absent.
    pub fn update<Q, R>(&self, key: &Q, f: impl FnOnce(&mut V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.write("ReadMap::update", |current| {
            if !current.contains_key(key) {
                return (None, None);
            }
            let mut next = HashMap::clone(current);
            let result = next.get_mut(key).map(f);
            (Some(next), result)
        })
    }

    /// The value under `key`, inserting `f()` first if the key is absent. `f` runs with no lock held; if
    /// several threads race on one absent key, one value is stored and every caller gets a clone of it.
    pub fn get_or_insert_with(&self, key: K, f: impl FnOnce() -> V) -> V {
        if let Some(v) = self.get(&key) {
            return v;
        }
        let value = f();
        self.write("ReadMap::get_or_insert_with", |current| {
            if let Some(v) = current.get(&key) {
                return (None, v.clone());
            }
            let mut next = HashMap::clone(current);
            next.insert(key, value.clone());
            (Some(next), value)
        })
    }

    /// Removes `key`, returning its value; no copy is made if the key is absent.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.write("ReadMap::remove", |current| {
            if !current.contains_key(key) {
                return (None, None);
            }
            let mut next = HashMap::clone(current);
            let old = next.remove(key);
            (Some(next), old)
        })
    }

    /// Removes every entry (publishes an empty map; nothing is copied).
    pub fn clear(&self) {
        self.write("ReadMap::clear", |current| {
            (Some(HashMap::with_hasher(current.hasher().clone())), ())
        });
    }

    /// Keeps the entries for which `f` returns `true` (one copy, published at once).
    pub fn retain(&self, f: impl FnMut(&K, &mut V) -> bool) {
        self.write("ReadMap::retain", |current| {
            let mut next = HashMap::clone(current);
            next.retain(f);
            (Some(next), ())
        });
    }
}

impl<K, V, S> From<HashMap<K, V, S>> for ReadMap<K, V, S> {
    fn from(map: HashMap<K, V, S>) -> Self {
        Self {
            current: ArcSwap::from_pointee(map),
            writer: Mutex::new(()),
        }
    }
}

impl<K, V> Default for ReadMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash, V> FromIterator<(K, V)> for ReadMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = HashMap::with_hasher(DefaultHashBuilder::default());
        map.extend(iter);
        Self::from(map)
    }
}

impl<K, V, S> fmt::Debug for ReadMap<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadMap")
            .field("len", &self.current.load().len())
            .finish_non_exhaustive()
    }
}
