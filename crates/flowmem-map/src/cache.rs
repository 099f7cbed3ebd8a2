//! `ArcCache`: a bounded map of shared values, each created once.

use std::{
    borrow::Borrow,
    fmt,
    hash::{BuildHasher, Hash},
    sync::{
        Arc, Mutex, OnceLock, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use flowmem_alloc::PaddedCounter;

use crate::{ConcurrentMap, DefaultHashBuilder};

/// A bounded cache of `Arc<V>` by key: [`get_or_create`](Self::get_or_create) creates a key's value once,
/// however many threads ask for it at the same moment, and evicts the least recently used values past the
/// capacity.
///
/// - **One creation per key.** Threads asking for a key being created wait for that creation (only they
///   wait; other keys go on). If the creation fails ([`try_get_or_create`](Self::try_get_or_create)) or
///   panics, nothing is stored and the next caller tries again.
/// - **Bounded.** Once more than `capacity` values are stored, the least recently used are evicted down to
///   15/16 of the capacity, in one pass (so the O(n) scan is paid once per n/16 creations). Recency is
///   counted in creations: a hit marks the value as used "now". While creations finish on several threads at
///   once, the count can exceed the capacity by at most their number until the eviction pass ends.
/// - Evicting a value only drops the cache's `Arc`: holders keep theirs.
///
/// ```
/// use std::sync::Arc;
///
/// use flowmem_map::ArcCache;
///
/// let parsed: ArcCache<String, Vec<u32>> = ArcCache::new(2);
/// let a = parsed.get_or_create("1,2,3", || vec![1, 2, 3]);
/// let again = parsed.get_or_create("1,2,3", || unreachable!("already created"));
/// assert!(Arc::ptr_eq(&a, &again));
///
/// parsed.get_or_create("4", || vec![4]);
/// parsed.get_or_create("5", || vec![5]); // a third value: the least recently used one goes
/// assert_eq!(parsed.len(), 2);
/// assert_eq!(parsed.stats().evicted, 1);
/// ```
pub struct ArcCache<K, V, S = DefaultHashBuilder> {
    slots: ConcurrentMap<K, Arc<Slot<V>>, S>,
    capacity: usize,
    /// Advanced by every creation; a slot's `last_used` is the clock value of its last use.
    clock: AtomicU64,
    evicting: Mutex<()>,
    /// Created values in the map (slots being created are not counted): exact, unlike a sum of counts
    /// read one after another while other threads write.
    stored: AtomicUsize,
    created: PaddedCounter,
    evicted: PaddedCounter,
}

/// A key's place in the cache: its value once created, and the lock creators of this key take.
struct Slot<V> {
    value: OnceLock<Arc<V>>,
    creating: Mutex<()>,
    /// The token of the thread running this slot's creation (0: none), to refuse a creation that asks for
    /// its own key (it would wait for itself).
    creator: AtomicUsize,
    last_used: AtomicU64,
}

impl<V> Slot<V> {
    fn new(now: u64) -> Self {
        Self {
            value: OnceLock::new(),
            creating: Mutex::new(()),
            creator: AtomicUsize::new(0),
            last_used: AtomicU64::new(now),
        }
    }

    /// Marks the slot used at `now`; writes only when the mark changes, so hot keys read by many threads do
    /// not bounce a cache line between them.
    #[inline]
    fn touch(&self, now: u64) {
        if self.last_used.load(Ordering::Relaxed) != now {
            self.last_used.store(now, Ordering::Relaxed);
        }
    }
}

/// A token unique to the calling thread while it lives (the address of a thread-local).
fn thread_token() -> usize {
    thread_local! {
        static TOKEN: u8 = const { 0 };
    }
    TOKEN.with(|t| std::ptr::from_ref(t) as usize)
}

/// Counters of an [`ArcCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ArcCacheStats {
    /// Values stored now.
    pub len: usize,
    /// The configured capacity.
    pub capacity: usize,
    /// Values created since the cache was made (each a miss).
    pub created: u64,
    /// Values evicted to stay within the capacity (not counting `remove` and `clear`).
    pub evicted: u64,
}

impl<K: Eq + Hash + Clone, V> ArcCache<K, V> {
    /// A cache holding at most `capacity` values (a capacity of 0 is taken as 1).
    pub fn new(capacity: usize) -> Self {
        Self::with_hasher(capacity, DefaultHashBuilder::default())
    }
}

impl<K: Eq + Hash + Clone, V, S: BuildHasher + Clone> ArcCache<K, V, S> {
    /// A cache holding at most `capacity` values (0 is taken as 1), hashing keys with `hasher`.
    pub fn with_hasher(capacity: usize, hasher: S) -> Self {
        let capacity = capacity.max(1);
        Self {
            slots: ConcurrentMap::with_capacity_and_hasher(capacity.min(1 << 16), hasher),
            capacity,
            clock: AtomicU64::new(0),
            evicting: Mutex::new(()),
            stored: AtomicUsize::new(0),
            created: PaddedCounter::new(0),
            evicted: PaddedCounter::new(0),
        }
    }

    /// The value under `key`, if it has been created and not evicted. Counts as a use.
    pub fn get<Q>(&self, key: &Q) -> Option<Arc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = self.clock.load(Ordering::Relaxed);
        self.slots
            .get_with(key, |slot| {
                let value = slot.value.get().cloned();
                if value.is_some() {
                    slot.touch(now);
                }
                value
            })
            .flatten()
    }

    /// The value under `key`, created by `create` if absent. `create` runs at most once per key at a time,
    /// with no map lock held; concurrent callers for the same key wait for it and share its value.
    ///
    /// # Panics
    /// If `create` panics (the panic goes on to the caller; nothing is stored and the next caller creates
    /// again), or if `create` asks this cache for the very key it is creating (it would wait for itself).
    pub fn get_or_create<Q>(&self, key: &Q, create: impl FnOnce() -> V) -> Arc<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        match self.try_get_or_create(key, || Ok::<V, std::convert::Infallible>(create())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// Like [`get_or_create`](Self::get_or_create) for a creation that can fail: the error is returned to
    /// this caller, nothing is stored, and the next caller for the key tries again.
    ///
    /// ```
    /// let cache: flowmem_map::ArcCache<String, u16> = flowmem_map::ArcCache::new(8);
    /// assert!(cache.try_get_or_create("port", || "eighty".parse::<u16>()).is_err());
    /// assert_eq!(*cache.try_get_or_create("port", || "80".parse::<u16>()).unwrap(), 80);
    /// assert!(cache.contains_key("port"));
    /// ```
    pub fn try_get_or_create<Q, E>(
        &self,
        key: &Q,
        create: impl FnOnce() -> Result<V, E>,
    ) -> Result<Arc<V>, E>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(value) = self.get(key) {
            return Ok(value);
        }
        let me = thread_token();
        loop {
            let now = self.clock.load(Ordering::Relaxed);
            let slot = self
                .slots
                .get_or_insert_with(key.to_owned(), || Arc::new(Slot::new(now)));
            if slot.creator.load(Ordering::Acquire) == me {
                panic!(
                    "flowmem-map: ArcCache::get_or_create was asked, from inside the creation of a key, for that \
                     same key; the creation would wait for itself"
                );
            }
            let guard = slot.creating.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(value) = slot.value.get() {
                slot.touch(now);
                return Ok(Arc::clone(value));
            }
            // Still the key's slot? A failed creation removes its slot; start over on the current one, so two
            // slots of one key are never created at the same time.
            let current = self
                .slots
                .get_with(key, |s| Arc::ptr_eq(s, &slot))
                .unwrap_or(false);
            if !current {
                drop(guard);
                continue;
            }
            slot.creator.store(me, Ordering::Release);
            let creation = Creation {
                cache: self,
                key,
                slot: &slot,
                done: false,
            };
            let value = Arc::new(create()?);
            creation.succeed(&value);
            drop(guard);
            self.evict_past_capacity();
            return Ok(value);
        }
    }

    /// Takes `slot` out of the map if it is still `key`'s and holds no value (its creation failed).
    fn abandon<Q>(&self, key: &Q, slot: &Arc<Slot<V>>)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.slots
            .remove_if(key, |s| Arc::ptr_eq(s, slot) && s.value.get().is_none());
    }

    /// Evicts the least recently used created values down to 15/16 of the capacity, once past it.
    fn evict_past_capacity(&self) {
        if self.len() <= self.capacity {
            return;
        }
        let _one_evictor = self.evicting.lock().unwrap_or_else(PoisonError::into_inner);
        let target = self.capacity - (self.capacity / 16);
        loop {
            let len = self.len();
            if len <= self.capacity {
                return;
            }
            // Slots still being created are never evicted (their creators and waiters hold them).
            let mut candidates = self.slots.collect(|k, slot| {
                slot.value
                    .get()
                    .map(|_| (slot.last_used.load(Ordering::Relaxed), k.clone()))
            });
            let excess = len.saturating_sub(target).min(candidates.len());
            if excess < candidates.len() {
                candidates.select_nth_unstable_by_key(excess, |(used, _)| *used);
            }
            let mut removed_any = false;
            for (used, key) in candidates.into_iter().take(excess) {
                // Not if it was used since the scan (the next pass picks another).
                let removed = self.slots.remove_if(&key, |slot| {
                    slot.last_used.load(Ordering::Relaxed) == used && slot.value.get().is_some()
                });
                if removed.is_some() {
                    self.stored.fetch_sub(1, Ordering::AcqRel);
                    self.evicted.increment();
                    removed_any = true;
                }
            }
            if !removed_any {
                // Everything left is in creation or in use right now; the next creation evicts again.
                return;
            }
        }
    }

    /// Whether a created value is stored under `key` (not counted as a use).
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.slots
            .get_with(key, |slot| slot.value.get().is_some())
            .unwrap_or(false)
    }

    /// Removes `key`'s value from the cache, returning it (holders of the `Arc` keep theirs).
    pub fn remove<Q>(&self, key: &Q) -> Option<Arc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slot = self
            .slots
            .remove_if(key, |slot| slot.value.get().is_some())?;
        self.stored.fetch_sub(1, Ordering::AcqRel);
        slot.value.get().cloned()
    }

    /// Removes every created value.
    pub fn clear(&self) {
        let mut removed = 0;
        self.slots.retain(|_, slot| {
            let created = slot.value.get().is_some();
            removed += usize::from(created);
            !created
        });
        self.stored.fetch_sub(removed, Ordering::AcqRel);
    }

    /// The number of values stored (created and not evicted or removed; keys being created are not
    /// counted).
    pub fn len(&self) -> usize {
        self.stored.load(Ordering::Acquire)
    }

    /// Whether no value is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most values kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The cache's counters.
    pub fn stats(&self) -> ArcCacheStats {
        ArcCacheStats {
            len: self.len(),
            capacity: self.capacity,
            created: self.created.get(),
            evicted: self.evicted.get(),
        }
    }
}

/// One creation in progress: on success it stores the value; dropped without success (an error or a panic
/// of the creation function) it takes the empty slot out of the map, so a failed key holds no place.
/// Either way it clears the slot's creator mark.
struct Creation<'a, K, V, S, Q>
where
    K: Eq + Hash + Clone + Borrow<Q>,
    S: BuildHasher + Clone,
    Q: Hash + Eq + ?Sized,
{
    cache: &'a ArcCache<K, V, S>,
    key: &'a Q,
    slot: &'a Arc<Slot<V>>,
    done: bool,
}

impl<K, V, S, Q> Creation<'_, K, V, S, Q>
where
    K: Eq + Hash + Clone + Borrow<Q>,
    S: BuildHasher + Clone,
    Q: Hash + Eq + ?Sized,
{
    fn succeed(mut self, value: &Arc<V>) {
        // Counted before it is visible, so an eviction's decrement never comes first.
        self.cache.stored.fetch_add(1, Ordering::AcqRel);
        // Cannot already be set: it is only set under `creating`, which this thread holds.
        let _ = self.slot.value.set(Arc::clone(value));
        self.cache.created.increment();
        let now = self.cache.clock.fetch_add(1, Ordering::Relaxed) + 1;
        self.slot.touch(now);
        self.done = true;
    }
}

impl<K, V, S, Q> Drop for Creation<'_, K, V, S, Q>
where
    K: Eq + Hash + Clone + Borrow<Q>,
    S: BuildHasher + Clone,
    Q: Hash + Eq + ?Sized,
{
    fn drop(&mut self) {
        self.slot.creator.store(0, Ordering::Release);
        if !self.done {
            self.cache.abandon(self.key, self.slot);
        }
    }
}

impl<K: Eq + Hash + Clone, V, S: BuildHasher + Clone> fmt::Debug for ArcCache<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArcCache")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
