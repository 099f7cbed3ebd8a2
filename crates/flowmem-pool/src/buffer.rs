//! [`BufferPool`]: byte buffers in power-of-two size classes, per-thread caches over bounded lock-free queues.

use std::{
    fmt,
    ops::{Deref, DerefMut},
    sync::{
        OnceLock,
        atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed},
    },
};

use crossbeam_queue::ArrayQueue;
use thread_local::ThreadLocal;

use flowmem_alloc::CachePadded;

use crate::{
    PoolError, last_used,
    magazine::{MAGAZINE, Magazine},
    owner_cell::{OwnerCell, bump},
};

/// Settings of a [`BufferPool`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferPoolConfig {
    /// Capacity of the smallest class, rounded up to a power of two (default 256 bytes). A request below it
    /// gets a buffer of this size; a returned buffer with less capacity is dropped, so tiny buffers do not
    /// pollute the pool.
    pub min_size: usize,
    /// Capacity of the largest class, rounded up to a power of two (default 1 MiB). Larger requests are
    /// served by a fresh `Vec`, and such buffers are dropped on return.
    pub max_size: usize,
    /// Bound on the bytes of all idle buffers the pool holds, thread caches included (default 64 MiB).
    pub max_pooled_bytes: usize,
    /// Bytes of that bound each thread may hold in its own cache (default 1 MiB).
    pub thread_cache_bytes: usize,
    /// Buffers of each class a thread keeps in its own cache (default 4).
    pub thread_cache_buffers: usize,
}

impl Default for BufferPoolConfig {
    fn default() -> Self {
        BufferPoolConfig {
            min_size: 256,
            max_size: 1 << 20,
            max_pooled_bytes: 64 << 20,
            thread_cache_bytes: 1 << 20,
            thread_cache_buffers: 4,
        }
    }
}

/// Idle buffers of one size class shared by all threads: at most about this many (the queue holds this
/// many over the buffers a thread cache hands over at once, in magazines of up to that many).
const MAX_SHARED_PER_CLASS: usize = 256;

/// A pool of byte buffers (`Vec<u8>`) in power-of-two size classes.
///
/// [`get`](BufferPool::get) hands out an empty buffer with at least the capacity asked; it goes back to the
/// pool when the [`PooledBuf`] drops. Each thread keeps a few buffers of each class of its own (plain loads
/// and stores, no atomic read-modify-write); behind them, each class has a bounded lock-free queue shared by
/// all threads, of *magazines*: a thread whose cache of a class is full hands the cache over whole, and a
/// thread whose cache is empty takes one whole, so buffers freed on another thread than the one that takes
/// them (a producer/consumer pipeline) cross a few at a time. There is no global lock.
///
/// The bytes of all idle buffers — in thread caches and shared queues — never exceed
/// [`max_pooled_bytes`](BufferPoolConfig::max_pooled_bytes): a buffer enters the pool only against a
/// reservation of that budget, and a thread cache reserves its share in chunks.
///
/// ```
/// use flowmem_pool::BufferPool;
///
/// let pool = BufferPool::new();
/// let mut buf = pool.get(3000);
/// assert!(buf.capacity() >= 3000 && buf.is_empty());
/// buf.extend_from_slice(b"payload");
/// let first = buf.as_ptr();
/// drop(buf); // back to the pool, cleared
/// let again = pool.get(4000); // same 4 KiB class
/// assert_eq!(again.as_ptr(), first);
/// assert!(again.is_empty());
/// ```
pub struct BufferPool {
    config: BufferPoolConfig,
    /// log2 of the smallest class.
    min_shift: u32,
    /// Per class, magazines of idle buffers shared by all threads.
    classes: Box<[ArrayQueue<Magazine>]>,
    /// This pool's id, under which a thread remembers its cache entry (see `last_used`).
    id: u64,
    /// Per-thread caches, each on its own cache lines (neighbouring entries are written by different threads).
    local: ThreadLocal<CachePadded<Local>>,
    /// Budget reserved by thread caches and shared queues; never above `max_pooled_bytes`.
    reserved: AtomicUsize,
    /// Bytes of the buffers in the shared queues (a buffer is counted just before it is queued, so the
    /// count never goes below zero).
    shared_bytes: AtomicUsize,
}

/// Counters a thread writes alone (relaxed load + store), read by [`BufferPool::stats`].
#[derive(Default)]
struct Counts {
    hits: AtomicU64,
    misses: AtomicU64,
    returns: AtomicU64,
    discards: AtomicU64,
}

/// One thread's cache.
struct Local {
    cache: OwnerCell<LocalCache>,
    counts: Counts,
    /// Bytes of the buffers in `cache`. Written only by the owning thread (load + store); read by stats.
    used: AtomicUsize,
}

struct LocalCache {
    /// Idle buffers per class.
    stacks: Box<[Vec<Vec<u8>>]>,
    /// Budget this thread holds (reserved from the pool's bound).
    budget: usize,
}

/// What a [`BufferPool`] has done, from [`BufferPool::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BufferPoolStats {
    /// Requests served by an idle buffer.
    pub hits: u64,
    /// Requests that allocated a new buffer (none idle, or larger than the largest class).
    pub misses: u64,
    /// Buffers taken back.
    pub returns: u64,
    /// Buffers dropped on return: too small, too large, or the pool at its bound.
    pub discards: u64,
    /// Bytes (capacity) of the idle buffers held now.
    pub bytes_pooled: usize,
    /// The bound on `bytes_pooled`.
    pub max_pooled_bytes: usize,
}

impl BufferPoolStats {
    /// Hits over requests (0 when there was none).
    pub fn hit_rate(&self) -> f64 {
        let requests = self.hits + self.misses;
        if requests == 0 {
            0.0
        } else {
            self.hits as f64 / requests as f64
        }
    }
}

impl Default for BufferPool {
    fn default() -> Self {
        BufferPool::new()
    }
}

impl BufferPool {
    /// A pool with the default settings: classes from 256 B to 1 MiB, at most 64 MiB idle.
    pub fn new() -> BufferPool {
        BufferPool::with_config(BufferPoolConfig::default())
            .expect("the default settings are valid")
    }

    /// A pool with these settings (sizes rounded up to powers of two), or an error naming the bad setting.
    ///
    /// ```
    /// use flowmem_pool::{BufferPool, BufferPoolConfig};
    ///
    /// let pool = BufferPool::with_config(BufferPoolConfig {
    ///     min_size: 1000, // rounded up to 1024
    ///     max_size: 64 * 1024,
    ///     max_pooled_bytes: 1 << 20,
    ///     ..BufferPoolConfig::default()
    /// })?;
    /// assert_eq!(pool.class_sizes().first(), Some(&1024));
    /// assert!(BufferPool::with_config(BufferPoolConfig { min_size: 0, ..Default::default() }).is_err());
    /// # Ok::<(), flowmem_pool::PoolError>(())
    /// ```
    pub fn with_config(config: BufferPoolConfig) -> Result<BufferPool, PoolError> {
        let invalid = |why: String| Err(PoolError::InvalidConfig(why));
        if config.min_size == 0 {
            return invalid("min_size must be at least 1 byte".into());
        }
        let (Some(min), Some(max)) = (
            config.min_size.checked_next_power_of_two(),
            config.max_size.checked_next_power_of_two(),
        ) else {
            return invalid("min_size and max_size must be at most 2^63 bytes".into());
        };
        if max < min {
            return invalid(format!(
                "max_size ({}) is below min_size ({})",
                config.max_size, config.min_size
            ));
        }
        let config = BufferPoolConfig {
            min_size: min,
            max_size: max,
            ..config
        };
        let count = (max.trailing_zeros() - min.trailing_zeros() + 1) as usize;
        let classes = (0..count)
            .map(|i| {
                let size = min << i;
                let fits = (config.max_pooled_bytes / size).clamp(1, MAX_SHARED_PER_CLASS);
                // In magazines of as many buffers as a thread cache hands over at once.
                let per_magazine = config.thread_cache_buffers.clamp(1, MAGAZINE);
                ArrayQueue::new(fits.div_ceil(per_magazine))
            })
            .collect();
        Ok(BufferPool {
            min_shift: min.trailing_zeros(),
            config,
            classes,
            id: last_used::new_pool_id(),
            local: ThreadLocal::new(),
            reserved: AtomicUsize::new(0),
            shared_bytes: AtomicUsize::new(0),
        })
    }

    /// The settings, sizes rounded.
    pub fn config(&self) -> &BufferPoolConfig {
        &self.config
    }

    /// The capacity of each size class, smallest first.
    pub fn class_sizes(&self) -> Vec<usize> {
        (0..self.classes.len())
            .map(|i| self.config.min_size << i)
            .collect()
    }

    /// The class serving a request for `min_capacity` bytes (the smallest class at least that large).
    #[inline]
    fn request_class(&self, min_capacity: usize) -> Option<usize> {
        if min_capacity > self.config.max_size {
            return None;
        }
        let size = min_capacity.max(self.config.min_size).next_power_of_two();
        Some((size.trailing_zeros() - self.min_shift) as usize)
    }

    /// The class a returned buffer of `capacity` bytes belongs to (the largest class it can serve).
    #[inline]
    fn return_class(&self, capacity: usize) -> Option<usize> {
        if capacity < self.config.min_size || capacity > self.config.max_size {
            return None;
        }
        let floor = usize::BITS - 1 - capacity.leading_zeros();
        let class = floor.checked_sub(self.min_shift)? as usize;
        (class < self.classes.len()).then_some(class)
    }

    /// This thread's cache: the one it remembered for this pool, else its `ThreadLocal` entry.
    #[inline]
    fn local(&self) -> &Local {
        // SAFETY: `self.local` is this pool's one `ThreadLocal`, always passed with its id, and never
        // cleared or replaced (`clear` empties its entries in place).
        let entry: &CachePadded<Local> = unsafe {
            last_used::entry(self.id, &self.local, || {
                CachePadded::new(Local {
                    cache: OwnerCell::new(LocalCache {
                        stacks: (0..self.classes.len())
                            .map(|_| Vec::with_capacity(self.config.thread_cache_buffers))
                            .collect(),
                        budget: 0,
                    }),
                    counts: Counts::default(),
                    used: AtomicUsize::new(0),
                })
            })
        };
        entry
    }

    /// Reserves `bytes` of the bound; false if that would exceed it. `reserved` never exceeds the bound,
    /// not even for an instant (an add-then-undo would let a reader see it over).
    fn reserve(&self, bytes: usize) -> bool {
        let max = self.config.max_pooled_bytes;
        self.reserved
            .fetch_update(Relaxed, Relaxed, |r| {
                r.checked_add(bytes).filter(|after| *after <= max)
            })
            .is_ok()
    }

    /// An empty buffer with at least `min_capacity` bytes of capacity, returned to the pool on drop.
    #[inline]
    pub fn get(&self, min_capacity: usize) -> PooledBuf<'_> {
        PooledBuf {
            buf: Some(self.take(min_capacity)),
            pool: self,
        }
    }

    /// An empty buffer with at least `min_capacity` bytes of capacity, owned by the caller (give it back
    /// with [`put`](BufferPool::put)).
    #[inline]
    pub fn take(&self, min_capacity: usize) -> Vec<u8> {
        let Some(class) = self.request_class(min_capacity) else {
            bump(&self.local().counts.misses);
            return Vec::with_capacity(min_capacity);
        };
        let local = self.local();
        // SAFETY: `local` is the entry `ThreadLocal::get_or` gave this thread, and the closure does not
        // reach the pool again.
        let cached = unsafe {
            local.cache.with(|cache| {
                let buf = cache.stacks[class].pop()?;
                local
                    .used
                    .store(local.used.load(Relaxed) - buf.capacity(), Relaxed);
                Some(buf)
            })
        };
        if let Some(buf) = cached {
            bump(&local.counts.hits);
            return buf;
        }
        if let Some(magazine) = self.classes[class].pop() {
            bump(&local.counts.hits);
            return self.unload(local, class, magazine);
        }
        bump(&local.counts.misses);
        Vec::with_capacity(self.config.min_size << class)
    }

    /// One buffer of `magazine`, just taken from the shared queue of `class`; the rest go into this
    /// thread's cache (whose stack of `class` is empty) as far as its share allows, their reservation of
    /// the bound moving with them, and what does not fit goes back to the queue.
    #[cold]
    fn unload(&self, local: &Local, class: usize, mut magazine: Magazine) -> Vec<u8> {
        self.shared_bytes.fetch_sub(magazine.bytes(), Relaxed);
        let buf = magazine
            .pop()
            .expect("the shared queues hold no empty magazine");
        // The bytes whose reservation ends here: the buffer handed out, and any kept against budget this
        // thread already holds.
        let mut release = buf.capacity();
        let share = self.config.thread_cache_bytes;
        // SAFETY: as in `take`; the closure only moves buffers between the magazine and this thread's cache.
        unsafe {
            local.cache.with(|cache| {
                let mut used = local.used.load(Relaxed);
                let stack = &mut cache.stacks[class];
                while stack.len() < self.config.thread_cache_buffers {
                    let Some(next) = magazine.pop() else { break };
                    let capacity = next.capacity();
                    if used + capacity <= cache.budget {
                        release += capacity;
                    } else if cache.budget + capacity <= share.max(capacity) {
                        cache.budget += capacity;
                    } else {
                        magazine.push(next);
                        break;
                    }
                    used += capacity;
                    stack.push(next);
                }
                local.used.store(used, Relaxed);
            });
        }
        if !magazine.is_empty() {
            // Buffers that did not fit in this thread's share stay pooled (dropped if the queue filled).
            self.load(class, magazine);
        }
        self.reserved.fetch_sub(release, Relaxed);
        buf
    }

    /// Queues `magazine`, whose bytes are reserved, in the shared queue of `class`: true if queued; if the
    /// queue is full its buffers are dropped and their reservation ends.
    fn load(&self, class: usize, magazine: Magazine) -> bool {
        let bytes = magazine.bytes();
        // Counted before it is queued: once queued, another thread may take it and subtract it at once,
        // and the count must not go below zero meanwhile (`stats` adds it up).
        self.shared_bytes.fetch_add(bytes, Relaxed);
        if self.classes[class].push(magazine).is_err() {
            self.shared_bytes.fetch_sub(bytes, Relaxed);
            self.reserved.fetch_sub(bytes, Relaxed);
            return false;
        }
        true
    }

    /// Takes `buf` back: cleared and kept in the largest class its capacity can serve, or dropped if its
    /// capacity is below `min_size` or above `max_size`, or the pool is at its bound.
    ///
    /// A buffer goes into this thread's cache; a full cache first goes whole to the class's shared queue,
    /// as one magazine (its reservation of the bound with it).
    #[inline]
    pub fn put(&self, mut buf: Vec<u8>) {
        let local = self.local();
        let Some(class) = self.return_class(buf.capacity()) else {
            bump(&local.counts.discards);
            return;
        };
        buf.clear();
        let capacity = buf.capacity();
        let per_class = self.config.thread_cache_buffers;
        let cache_share = self.config.thread_cache_bytes;
        // SAFETY: as in `take`; `reserve` only touches atomics.
        let (rest, full) = unsafe {
            local.cache.with(|cache| {
                let stack = &mut cache.stacks[class];
                let mut used = local.used.load(Relaxed);
                // More of the bound this thread's cache must reserve to take `buf` (in chunks of a quarter
                // of its share), if its share allows it.
                let more = |budget: usize, used: usize| {
                    let want = (used + capacity).saturating_sub(budget);
                    let want = if want == 0 {
                        0
                    } else {
                        want.max(cache_share / 4)
                    };
                    (budget + want <= cache_share.max(capacity)).then_some(want)
                };
                let mut full = None;
                let mut room = more(cache.budget, used);
                if !stack.is_empty() && (stack.len() >= per_class || room.is_none()) {
                    // No room for `buf`: the stack goes to the shared queue with its reservation.
                    let magazine = Magazine::from_stack(stack);
                    used -= magazine.bytes();
                    cache.budget -= magazine.bytes();
                    local.used.store(used, Relaxed);
                    full = Some(magazine);
                    room = more(cache.budget, used);
                }
                if stack.len() >= per_class {
                    return (Some(buf), full);
                }
                match room {
                    Some(0) => {}
                    Some(want) if self.reserve(want) => cache.budget += want,
                    _ => return (Some(buf), full),
                }
                local.used.store(used + capacity, Relaxed);
                stack.push(buf);
                (None, full)
            })
        };
        if let Some(magazine) = full {
            // Its buffers were counted as returns when they came in; if the queue is full they are dropped
            // now, which the bytes pooled show.
            self.load(class, magazine);
        }
        let Some(buf) = rest else {
            bump(&local.counts.returns);
            return;
        };
        if self.reserve(capacity) && self.load(class, Magazine::one(buf)) {
            bump(&local.counts.returns);
            return;
        }
        bump(&local.counts.discards);
    }

    /// Runs `f` with an empty buffer of at least `min_capacity` bytes, and takes the buffer back afterwards —
    /// also when `f` panics.
    ///
    /// ```
    /// let pool = flowmem_pool::BufferPool::new();
    /// let len = pool.with_buffer(1024, |buf| {
    ///     buf.extend_from_slice(b"hello");
    ///     buf.len()
    /// });
    /// assert_eq!(len, 5);
    /// assert_eq!(pool.stats().returns, 1);
    /// ```
    pub fn with_buffer<R>(&self, min_capacity: usize, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let mut buf = self.get(min_capacity);
        f(&mut buf)
    }

    /// Counts so far and the bytes held now, summed over threads.
    ///
    /// The idle bytes are read counter by counter (the shared queues', then each thread cache's) while
    /// other threads go on: a buffer that moves from a shared queue to a thread cache during the read can
    /// be counted in both. That sum once read 4 % over the bound under a two-thread churn, although the
    /// bytes held never were. So it is capped by the budget reserved, read last: every idle byte lies in
    /// that budget at every instant, and it never exceeds the bound. With no other thread using the pool
    /// the figure is exact.
    pub fn stats(&self) -> BufferPoolStats {
        let mut stats = BufferPoolStats {
            bytes_pooled: self.shared_bytes.load(Relaxed),
            max_pooled_bytes: self.config.max_pooled_bytes,
            ..BufferPoolStats::default()
        };
        for local in self.local.iter() {
            let c = &local.counts;
            stats.hits += c.hits.load(Relaxed);
            stats.misses += c.misses.load(Relaxed);
            stats.returns += c.returns.load(Relaxed);
            stats.discards += c.discards.load(Relaxed);
            stats.bytes_pooled += local.used.load(Relaxed);
        }
        stats.bytes_pooled = stats.bytes_pooled.min(self.reserved.load(Relaxed));
        stats
    }

    /// Drops every idle buffer of every thread cache and shared queue. Takes `&mut self`: no thread may be
    /// using the pool.
    pub fn clear(&mut self) {
        for local in self.local.iter_mut() {
            let cache = local.cache.get_mut();
            cache.stacks.iter_mut().for_each(Vec::clear);
            cache.budget = 0;
            *local.used.get_mut() = 0;
        }
        for class in self.classes.iter() {
            while class.pop().is_some() {}
        }
        *self.shared_bytes.get_mut() = 0;
        *self.reserved.get_mut() = 0;
    }
}

impl fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferPool")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

/// A buffer on loan from a [`BufferPool`]: dereferences to `Vec<u8>` and goes back to the pool on drop.
pub struct PooledBuf<'pool> {
    buf: Option<Vec<u8>>,
    pool: &'pool BufferPool,
}

impl PooledBuf<'_> {
    /// Keeps the buffer: it will not go back to the pool.
    pub fn into_vec(mut self) -> Vec<u8> {
        self.buf.take().unwrap_or_default()
    }
}

impl Deref for PooledBuf<'_> {
    type Target = Vec<u8>;

    #[inline]
    fn deref(&self) -> &Vec<u8> {
        self.buf
            .as_ref()
            .expect("a PooledBuf holds its buffer until drop or into_vec")
    }
}

impl DerefMut for PooledBuf<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        self.buf
            .as_mut()
            .expect("a PooledBuf holds its buffer until drop or into_vec")
    }
}

impl Drop for PooledBuf<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.pool.put(buf);
        }
    }
}

impl fmt::Debug for PooledBuf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledBuf")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

static GLOBAL: OnceLock<BufferPool> = OnceLock::new();

/// The process-wide buffer pool (default settings), created on first use.
pub fn global_buffer_pool() -> &'static BufferPool {
    GLOBAL.get_or_init(BufferPool::new)
}

/// A buffer from the process-wide pool.
///
/// ```
/// let mut buf = flowmem_pool::get_buffer(512);
/// buf.push(1);
/// drop(buf);
/// flowmem_pool::put_buffer(Vec::with_capacity(2048));
/// assert_eq!(flowmem_pool::with_buffer(100, |b| b.capacity() >= 100), true);
/// ```
pub fn get_buffer(min_capacity: usize) -> PooledBuf<'static> {
    global_buffer_pool().get(min_capacity)
}

/// Gives a buffer to the process-wide pool.
pub fn put_buffer(buf: Vec<u8>) {
    global_buffer_pool().put(buf);
}

/// Runs `f` with a buffer of the process-wide pool (see [`BufferPool::with_buffer`]).
pub fn with_buffer<R>(min_capacity: usize, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    global_buffer_pool().with_buffer(min_capacity, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_for_requests_and_returns() {
        let pool = BufferPool::new();
        assert_eq!(pool.request_class(0), Some(0));
        assert_eq!(pool.request_class(256), Some(0));
        assert_eq!(pool.request_class(257), Some(1));
        assert_eq!(pool.request_class(1 << 20), Some(12));
        assert_eq!(pool.request_class((1 << 20) + 1), None);
        assert_eq!(pool.return_class(255), None);
        assert_eq!(pool.return_class(256), Some(0));
        assert_eq!(pool.return_class(511), Some(0));
        assert_eq!(pool.return_class(5000), Some(4)); // 4 KiB class
        assert_eq!(pool.return_class(1 << 20), Some(12));
        assert_eq!(pool.return_class((1 << 20) + 1), None);
        assert_eq!(pool.class_sizes().len(), 13);
    }

    #[test]
    fn tiny_and_huge_buffers_are_dropped_on_return() {
        let pool = BufferPool::new();
        pool.put(Vec::with_capacity(10));
        pool.put(Vec::with_capacity(4 << 20));
        let s = pool.stats();
        assert_eq!((s.discards, s.returns, s.bytes_pooled), (2, 0, 0));
        let big = pool.get(2 << 20);
        assert!(big.capacity() >= 2 << 20);
        drop(big);
        assert_eq!(pool.stats().discards, 3);
    }

    #[test]
    fn the_bound_holds_and_counts_add_up() {
        let pool = BufferPool::with_config(BufferPoolConfig {
            max_pooled_bytes: 64 * 1024,
            thread_cache_bytes: 16 * 1024,
            ..BufferPoolConfig::default()
        })
        .unwrap();
        for _ in 0..100 {
            pool.put(Vec::with_capacity(4096));
        }
        let s = pool.stats();
        assert!(s.bytes_pooled <= 64 * 1024, "{s:?}");
        assert_eq!(s.bytes_pooled, 16 * 4096);
        assert_eq!(s.returns + s.discards, 100);
        assert_eq!(s.returns, 16);
    }

    #[test]
    fn a_full_thread_cache_goes_over_as_a_magazine_and_what_another_cache_cannot_hold_stays_pooled()
    {
        let pool = BufferPool::with_config(BufferPoolConfig {
            min_size: 1024,
            thread_cache_bytes: 8 * 1024,
            thread_cache_buffers: 4,
            ..BufferPoolConfig::default()
        })
        .unwrap();
        // Three threads with caches of their own, alive together (a thread that has ended may leave its
        // cache to the next thread started), taking turns: the consumer, the taker, then this one. What
        // they see is checked once all have passed every turn (a failed check mid-way would leave the
        // others waiting).
        let turn = std::sync::Barrier::new(3);
        let (taken, before, shared, reserved, left_over, new_one, after) =
            std::thread::scope(|s| {
                s.spawn(|| {
                    // A consumer: five 1 KiB buffers; the fifth finds its cache full, which goes to the shared
                    // queue.
                    (0..5).for_each(|_| pool.put(Vec::with_capacity(1024)));
                    turn.wait();
                    turn.wait();
                    turn.wait();
                });
                let taker = s.spawn(|| {
                    turn.wait();
                    // A thread whose cache holds three 2 KiB buffers (6 KiB of its 8 KiB share)...
                    (0..3).for_each(|_| pool.put(Vec::with_capacity(2048)));
                    // ...takes the magazine: one buffer out, two into its cache (8 KiB), one left over.
                    let taken = pool.take(1024).capacity();
                    turn.wait();
                    turn.wait();
                    taken
                });
                turn.wait();
                turn.wait();
                let before = pool.stats();
                let shared = pool.shared_bytes.load(Relaxed);
                let reserved = pool.reserved.load(Relaxed);
                let left_over = pool.take(1024).capacity();
                let new_one = pool.take(1024).capacity();
                let after = pool.stats();
                turn.wait();
                let taken = taker.join().expect("the taker does not panic");
                (taken, before, shared, reserved, left_over, new_one, after)
            });
        assert_eq!(taken, 1024);
        let s = before;
        assert_eq!((s.hits, s.misses, s.returns, s.discards), (1, 0, 8, 0));
        // The consumer's 1 KiB, the taker's 6 + 2 KiB, the one left over in the shared queue.
        assert_eq!(s.bytes_pooled, 1024 + 8 * 1024 + 1024);
        // Reserved: the consumer's budget (2 KiB, reserved again in a quarter of its share after its full
        // cache left with its own), the taker's (8 KiB: 6 of its own, 2 moved with the magazine), the one
        // left over. The buffer handed out took its reservation with it.
        assert_eq!(shared, 1024);
        assert_eq!(reserved, (2 + 8 + 1) * 1024);
        assert_eq!((left_over, new_one), (1024, 1024));
        assert_eq!(
            (after.hits, after.misses),
            (2, 1),
            "the one left over, then a new one"
        );
        assert_eq!(after.bytes_pooled, 1024 + 8 * 1024);
    }

    #[test]
    fn buffers_freed_on_another_thread_come_back_and_the_counts_add_up() {
        let pool = BufferPool::with_config(BufferPoolConfig {
            max_pooled_bytes: 1 << 20,
            ..BufferPoolConfig::default()
        })
        .unwrap();
        let (tx, rx) = std::sync::mpsc::sync_channel::<PooledBuf<'_>>(8);
        std::thread::scope(|s| {
            s.spawn(move || rx.into_iter().for_each(drop));
            for i in 0..10_000u32 {
                let mut buf = pool.get(16 * 1024);
                buf.push(i as u8);
                tx.send(buf).unwrap();
            }
            drop(tx);
        });
        let s = pool.stats();
        assert_eq!(s.hits + s.misses, 10_000);
        assert_eq!(s.returns + s.discards, 10_000);
        assert!(
            s.hits > 9_000,
            "the consumer's buffers reach the producer: {s:?}"
        );
        assert!(s.bytes_pooled <= 1 << 20, "{s:?}");
        assert!(pool.reserved.load(Relaxed) <= 1 << 20);
    }

    #[test]
    fn a_buffer_that_grew_changes_class() {
        let pool = BufferPool::new();
        let mut buf = pool.get(1000);
        assert_eq!(buf.capacity(), 1024);
        buf.reserve_exact(8192);
        let grown = buf.capacity();
        drop(buf);
        assert!(
            pool.get(1000).capacity() == 1024,
            "the 1 KiB class is empty: a new buffer"
        );
        assert_eq!(pool.get(8192).capacity(), grown);
    }
}
