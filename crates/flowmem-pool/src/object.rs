//! [`ObjectPool`]: reusable objects with a factory and a reset, optionally bounded.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fmt,
    future::Future,
    mem::ManuallyDrop,
    ops::{Deref, DerefMut},
    pin::Pin,
    sync::{
        Mutex,
        atomic::{
            AtomicU64, AtomicUsize,
            Ordering::{Relaxed, SeqCst},
            fence,
        },
    },
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use crossbeam_queue::ArrayQueue;
use thread_local::ThreadLocal;

use flowmem_alloc::CachePadded;

use crate::{
    PoolError, last_used,
    owner_cell::{OwnerCell, bump},
    timer,
};

/// Clears an object for its next user. Implemented for the std collections (`clear`).
pub trait Reset {
    /// Makes the object as good as new: no data from its previous user may survive.
    fn reset(&mut self);
}

impl<K, V, S> Reset for HashMap<K, V, S> {
    fn reset(&mut self) {
        self.clear();
    }
}

impl<K, V> Reset for BTreeMap<K, V> {
    fn reset(&mut self) {
        self.clear();
    }
}

impl<T> Reset for Vec<T> {
    fn reset(&mut self) {
        self.clear();
    }
}

impl<T> Reset for VecDeque<T> {
    fn reset(&mut self) {
        self.clear();
    }
}

impl Reset for String {
    fn reset(&mut self) {
        self.clear();
    }
}

/// Settings of an [`ObjectPool`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Idle objects kept in the shared queue (default 64); more are dropped on release.
    pub max_pooled: usize,
    /// Objects created when the pool is (default 0), so the first acquires reuse.
    pub prewarm: usize,
    /// Idle objects each thread keeps in a cache of its own (default 4). Bounded pools keep none: every idle
    /// object must be visible to every waiting thread.
    pub thread_cache: usize,
    /// Bounded mode: at most this many objects exist at once (idle or in use). `None` (default): no limit.
    pub max_live: Option<usize>,
    /// How long [`ObjectPool::acquire`] waits for a release in bounded mode before it panics (default 10 s).
    pub wait_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_pooled: 64,
            prewarm: 0,
            thread_cache: 4,
            max_live: None,
            wait_timeout: Duration::from_secs(10),
        }
    }
}

type Factory<T> = Box<dyn Fn() -> T + Send + Sync>;
type Resetter<T> = Box<dyn Fn(&mut T) + Send + Sync>;

/// An object as the pool keeps it: in a box of cache lines of its own, so that objects lent to different
/// threads never share a line. Two boxes the allocator had placed side by side made every write to one
/// thread's object evict the other thread's: `ObjectPool` on two threads fell from about 26 to 6 M uses
/// a second in some runs and not others (`pool_use`, with the objects made as criterion's
/// `object_threads` makes them), where padded boxes gave 25.5-26.8 in every run.
pub(crate) type Kept<T> = Box<CachePadded<T>>;

/// `obj`, boxed as the pool keeps it.
pub(crate) fn kept<T>(obj: T) -> Kept<T> {
    Box::new(CachePadded::new(obj))
}

/// A pool of reusable objects: a factory makes them, a reset clears them between users.
///
/// [`acquire`](ObjectPool::acquire) hands out a clean object: one that went back to the pool (reset when it
/// was released) or a new one. Dropping the [`Pooled`] handle resets it and gives it back. Each thread keeps
/// a few idle objects of its own (no atomic read-modify-write on that path); beyond them, idle objects wait
/// in a bounded lock-free queue shared by all threads. Each object lives in a box of its own from its
/// creation, so a loan and a return move a pointer, not the object (for a 40-byte map this took the
/// instructions of an acquire + release from 153 to 87; docs/pool.md tells how they were counted).
///
/// In bounded mode ([`PoolConfig::max_live`]) at most that many objects exist at once:
/// [`try_acquire`](ObjectPool::try_acquire) returns [`PoolError::Exhausted`] when all are in use,
/// [`acquire_timeout`](ObjectPool::acquire_timeout) blocks the thread for a release, and
/// [`acquire_async`](ObjectPool::acquire_async) waits in any async runtime; both give up after their
/// timeout with [`PoolError::Timeout`].
///
/// ```
/// use std::collections::HashMap;
/// use flowmem_pool::{ObjectPool, PoolConfig};
///
/// let pool = ObjectPool::with_reset(|| HashMap::<u32, String>::with_capacity(32), PoolConfig::default());
/// {
///     let mut ctx = pool.acquire();
///     ctx.insert(1, "a".into());
/// } // reset (cleared) and back in the pool
/// let ctx = pool.acquire();
/// assert!(ctx.is_empty() && ctx.capacity() >= 32);
/// assert_eq!(pool.stats().reused, 1);
/// ```
pub struct ObjectPool<T: Send> {
    create: Factory<T>,
    reset: Resetter<T>,
    config: PoolConfig,
    shared: ArrayQueue<Kept<T>>,
    /// This pool's id, under which a thread remembers its cache entry (see `last_used`).
    id: u64,
    /// Per-thread caches, each on its own cache lines (neighbouring entries are written by different threads).
    local: ThreadLocal<CachePadded<LocalObjects<T>>>,
    /// Objects that exist now (idle or in use).
    live: AtomicUsize,
    /// Highest number of idle objects in the shared queue seen at a release.
    peak_shared: AtomicUsize,
    waiters: Mutex<Waiters>,
    /// Number of registered waiters, for a cheap check on release.
    waiting: AtomicUsize,
    /// Counts of acquires that did not go through a thread cache entry (bounded mode, and prewarm).
    shared_counts: Counts,
}

/// Counts of one kind of acquire. A thread cache's `reused` stays zero: its reuses are its acquires that
/// created nothing (one counter fewer to write on the fast path), which [`Counts::reused`] works out.
#[derive(Default)]
struct Counts {
    acquired: AtomicU64,
    reused: AtomicU64,
    created: AtomicU64,
}

impl Counts {
    /// Objects reused: counted (the shared counts) or worked out (a thread cache's). Another thread may
    /// see this thread's `created` bumped before its `acquired`, hence the saturation.
    fn reused(&self, derived: bool) -> u64 {
        if derived {
            let created = self.created.load(Relaxed);
            self.acquired.load(Relaxed).saturating_sub(created)
        } else {
            self.reused.load(Relaxed)
        }
    }
}

/// Adds one to a counter several threads write (the shared counts of a bounded pool).
fn add_shared(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

struct LocalObjects<T> {
    cache: OwnerCell<Vec<Kept<T>>>,
    counts: Counts,
    /// Idle objects in `cache` now, and the most there ever were.
    idle: AtomicUsize,
    peak: AtomicUsize,
}

#[derive(Default)]
struct Waiters {
    next_id: u64,
    queue: VecDeque<(u64, Waiter)>,
}

enum Waiter {
    Thread(std::thread::Thread),
    Task(Waker),
}

impl Waiter {
    fn wake(self) {
        match self {
            Waiter::Thread(t) => t.unpark(),
            Waiter::Task(w) => w.wake(),
        }
    }
}

/// What an [`ObjectPool`] has done, from [`ObjectPool::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PoolStats {
    /// Objects handed out.
    pub acquired: u64,
    /// Of those, objects that were reused.
    pub reused: u64,
    /// Objects created (the prewarmed ones included).
    pub created: u64,
    /// Idle objects in the pool now.
    pub pooled: usize,
    /// Most idle objects seen (an upper bound: each thread's cache and the shared queue's highs, summed).
    pub peak_pooled: usize,
    /// Objects that exist now, idle or in use.
    pub live: usize,
    /// Threads and tasks waiting now for a release (bounded pools).
    pub waiting: usize,
}

impl PoolStats {
    /// Reused over acquired (0 when nothing was acquired).
    pub fn reuse_rate(&self) -> f64 {
        if self.acquired == 0 {
            0.0
        } else {
            self.reused as f64 / self.acquired as f64
        }
    }
}

impl<T: Reset + Send + 'static> ObjectPool<T> {
    /// A pool whose objects come from `create` and are cleared by their [`Reset`] impl.
    ///
    /// # Panics
    ///
    /// As [`ObjectPool::new`].
    pub fn with_reset(
        create: impl Fn() -> T + Send + Sync + 'static,
        config: PoolConfig,
    ) -> ObjectPool<T> {
        ObjectPool::new(create, T::reset, config)
    }
}

impl<T: Send + 'static> ObjectPool<T> {
    /// A pool whose objects come from `create` and are cleared by `reset` when they come back.
    ///
    /// # Panics
    ///
    /// If `config.max_live` is `Some(0)` (a pool that could never hand anything out).
    pub fn new(
        create: impl Fn() -> T + Send + Sync + 'static,
        reset: impl Fn(&mut T) + Send + Sync + 'static,
        config: PoolConfig,
    ) -> ObjectPool<T> {
        assert!(
            config.max_live != Some(0),
            "PoolConfig::max_live must be at least 1 (or None)"
        );
        let pool = ObjectPool {
            create: Box::new(create),
            reset: Box::new(reset),
            shared: ArrayQueue::new(config.max_pooled.max(1)),
            id: last_used::new_pool_id(),
            local: ThreadLocal::new(),
            live: AtomicUsize::new(0),
            peak_shared: AtomicUsize::new(0),
            waiters: Mutex::new(Waiters::default()),
            waiting: AtomicUsize::new(0),
            shared_counts: Counts::default(),
            config,
        };
        let prewarm = pool
            .config
            .prewarm
            .min(pool.config.max_pooled)
            .min(pool.config.max_live.unwrap_or(usize::MAX));
        for _ in 0..prewarm {
            pool.live.fetch_add(1, Relaxed);
            bump(&pool.shared_counts.created);
            if let Err(obj) = pool.shared.push(kept((pool.create)())) {
                drop(obj);
                pool.live.fetch_sub(1, Relaxed);
            }
        }
        pool.peak_shared.store(pool.shared.len(), Relaxed);
        pool
    }
}

impl<T: Send> ObjectPool<T> {
    /// The settings.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    fn bounded(&self) -> bool {
        self.config.max_live.is_some()
    }

    /// This thread's cache: the one it remembered for this pool, else its `ThreadLocal` entry.
    #[inline]
    fn local(&self) -> &LocalObjects<T> {
        // SAFETY: `self.local` is this pool's one `ThreadLocal`, always passed with its id, and never
        // cleared or replaced.
        let entry: &CachePadded<LocalObjects<T>> = unsafe {
            last_used::entry(self.id, &self.local, || {
                CachePadded::new(LocalObjects {
                    cache: OwnerCell::new(Vec::with_capacity(self.config.thread_cache)),
                    counts: Counts::default(),
                    idle: AtomicUsize::new(0),
                    peak: AtomicUsize::new(0),
                })
            })
        };
        entry
    }

    /// A clean object: reused if one is idle, else new.
    ///
    /// # Panics
    ///
    /// In bounded mode, if no object is released within [`PoolConfig::wait_timeout`]; use
    /// [`try_acquire`](ObjectPool::try_acquire), [`acquire_timeout`](ObjectPool::acquire_timeout) or
    /// [`acquire_async`](ObjectPool::acquire_async) where that can happen.
    #[inline]
    pub fn acquire(&self) -> Pooled<'_, T> {
        if !self.bounded() {
            let local = self.local();
            // SAFETY: `local` is the entry `ThreadLocal::get_or` gave this thread; the closure does not reach
            // the pool again.
            let cached = unsafe {
                local.cache.with(|cache| {
                    let obj = cache.pop()?;
                    local.idle.store(cache.len(), Relaxed);
                    Some(obj)
                })
            };
            bump(&local.counts.acquired);
            let obj = match cached {
                Some(obj) => obj,
                None => self.take_shared_or_create(&local.counts),
            };
            return self.lend(obj);
        }
        self.acquire_timeout(self.config.wait_timeout)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A thread cache's miss: an object from the shared queue (a reuse, which `counts` works out) or a new
    /// one.
    #[cold]
    fn take_shared_or_create(&self, counts: &Counts) -> Kept<T> {
        match self.shared.pop() {
            Some(obj) => obj,
            None => {
                bump(&counts.created);
                self.live.fetch_add(1, Relaxed);
                kept((self.create)())
            }
        }
    }

    fn lend(&self, obj: Kept<T>) -> Pooled<'_, T> {
        Pooled {
            obj: ManuallyDrop::new(obj),
            pool: self,
        }
    }

    /// A clean object, or [`PoolError::Exhausted`] if the pool is bounded and every object is in use.
    pub fn try_acquire(&self) -> Result<Pooled<'_, T>, PoolError> {
        if !self.bounded() {
            return Ok(self.acquire());
        }
        let counts = &self.shared_counts;
        if let Some(obj) = self.shared.pop() {
            add_shared(&counts.acquired);
            add_shared(&counts.reused);
            return Ok(self.lend(obj));
        }
        let max = self.config.max_live.unwrap_or(usize::MAX);
        let claimed = self
            .live
            .fetch_update(Relaxed, Relaxed, |live| (live < max).then_some(live + 1))
            .is_ok();
        if !claimed {
            // A release may have landed between the pop and the claim.
            if let Some(obj) = self.shared.pop() {
                add_shared(&counts.acquired);
                add_shared(&counts.reused);
                return Ok(self.lend(obj));
            }
            return Err(PoolError::Exhausted { max_live: max });
        }
        add_shared(&counts.acquired);
        add_shared(&counts.created);
        Ok(self.lend(kept((self.create)())))
    }

    fn register(&self, waiter: Waiter) -> u64 {
        let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        let id = w.next_id;
        w.next_id += 1;
        w.queue.push_back((id, waiter));
        self.waiting.fetch_add(1, Relaxed);
        // Pairs with `notify_available`: the caller looks for an object again after this.
        fence(SeqCst);
        id
    }

    /// Replaces the waker of waiter `id`, or registers it anew if it was woken (and so removed).
    fn reregister(&self, id: Option<u64>, waker: &Waker) -> u64 {
        if let Some(id) = id {
            let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = w.queue.iter_mut().find(|(i, _)| *i == id) {
                entry.1 = Waiter::Task(waker.clone());
                return id;
            }
        }
        self.register(Waiter::Task(waker.clone()))
    }

    fn deregister(&self, id: u64) {
        let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pos) = w.queue.iter().position(|(i, _)| *i == id) {
            w.queue.remove(pos);
            self.waiting.fetch_sub(1, Relaxed);
        }
    }

    fn wake_one(&self) {
        let waiter = {
            let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            let next = w.queue.pop_front();
            if next.is_some() {
                self.waiting.fetch_sub(1, Relaxed);
            }
            next
        };
        if let Some((_, waiter)) = waiter {
            waiter.wake();
        }
    }

    /// A clean object, waiting (blocking this thread) up to `timeout` for a release when the pool is
    /// bounded and exhausted.
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowmem_pool::{ObjectPool, PoolConfig, PoolError};
    ///
    /// let pool = ObjectPool::with_reset(Vec::<u8>::new, PoolConfig { max_live: Some(1), ..Default::default() });
    /// let held = pool.try_acquire()?;
    /// assert!(matches!(pool.try_acquire(), Err(PoolError::Exhausted { max_live: 1 })));
    /// let err = pool.acquire_timeout(Duration::from_millis(20)).unwrap_err();
    /// assert!(matches!(err, PoolError::Timeout { .. }));
    /// drop(held);
    /// assert!(pool.acquire_timeout(Duration::from_millis(20)).is_ok());
    /// # Ok::<(), PoolError>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Pooled<'_, T>, PoolError> {
        let start = Instant::now();
        loop {
            match self.try_acquire() {
                Err(PoolError::Exhausted { .. }) => {}
                other => return other,
            }
            let id = self.register(Waiter::Thread(std::thread::current()));
            // A release between the failed attempt and the registration has woken nobody: look again.
            match self.try_acquire() {
                Err(PoolError::Exhausted { .. }) => {}
                other => {
                    self.deregister(id);
                    return other;
                }
            }
            let elapsed = start.elapsed();
            if elapsed >= timeout {
                self.deregister(id);
                return Err(self.timeout_error(elapsed));
            }
            std::thread::park_timeout(timeout - elapsed);
            self.deregister(id);
        }
    }

    fn timeout_error(&self, waited: Duration) -> PoolError {
        PoolError::Timeout {
            waited,
            max_live: self.config.max_live.unwrap_or(usize::MAX),
        }
    }

    /// A future of a clean object, waiting up to `timeout` for a release when the pool is bounded and
    /// exhausted. It needs no particular runtime: releases wake it through its `Waker`, and the timeout
    /// through a small timer thread shared by all pools. A timeout too long for the clock to represent
    /// (such as `Duration::MAX`) means no timeout.
    pub fn acquire_async(&self, timeout: Duration) -> Acquire<'_, T> {
        Acquire {
            pool: self,
            deadline: Instant::now().checked_add(timeout),
            started: Instant::now(),
            waiter: None,
            timer_waker: None,
        }
    }

    /// Takes `obj` into the pool — an object, or a [`Pooled`] handle (from this pool: returned as its drop
    /// would; from another: detached from that one) — reset, and kept for a later acquire if there is
    /// room, else dropped.
    ///
    /// ```
    /// use flowmem_pool::{ObjectPool, PoolConfig};
    ///
    /// let pool = ObjectPool::with_reset(Vec::<u8>::new, PoolConfig::default());
    /// let ctx = pool.acquire();
    /// pool.release(ctx); // as `drop(ctx)`
    /// pool.release(Vec::with_capacity(64)); // an object made elsewhere
    /// assert_eq!(pool.stats().pooled, 2);
    /// ```
    pub fn release(&self, obj: impl crate::owned::Release<T>) {
        obj.release_into(self);
    }

    /// Takes an object from outside the pool (made elsewhere, or detached from another pool).
    pub(crate) fn release_object(&self, obj: Kept<T>) {
        if self.bounded() {
            let max = self.config.max_live.unwrap_or(usize::MAX);
            // An object from outside the pool becomes live only if the limit allows.
            if self
                .live
                .fetch_update(Relaxed, Relaxed, |live| (live < max).then_some(live + 1))
                .is_err()
            {
                return;
            }
        } else {
            self.live.fetch_add(1, Relaxed);
        }
        self.give_back(obj);
    }

    /// Resets a live object and keeps it: in this thread's cache, else the shared queue, else drops it.
    #[inline]
    pub(crate) fn give_back(&self, mut obj: Kept<T>) {
        (self.reset)(&mut obj);
        if !self.bounded() {
            let local = self.local();
            let limit = self.config.thread_cache;
            // SAFETY: as in `acquire`; the closure only touches this thread's cache and counters.
            let rest = unsafe {
                local.cache.with(|cache| {
                    if cache.len() >= limit {
                        return Some(obj);
                    }
                    cache.push(obj);
                    local.idle.store(cache.len(), Relaxed);
                    if cache.len() > local.peak.load(Relaxed) {
                        local.peak.store(cache.len(), Relaxed);
                    }
                    None
                })
            };
            match rest {
                None => return,
                Some(back) => obj = back,
            }
        }
        self.give_back_shared(obj);
    }

    /// Keeps a reset object that no thread cache took: in the shared queue, else drops it.
    #[cold]
    #[inline(never)]
    fn give_back_shared(&self, obj: Kept<T>) {
        match self.shared.push(obj) {
            Ok(()) => {
                self.peak_shared.fetch_max(self.shared.len(), Relaxed);
            }
            Err(extra) => {
                // No room to keep it: dropped, and its place under `max_live` is free for a new one.
                drop(extra);
                self.live.fetch_sub(1, Relaxed);
            }
        }
        self.notify_available();
    }

    /// After an object became available (kept in the queue, or its place under `max_live` freed): wakes
    /// a waiter if there is one. The fence pairs with the one in `register`: either the waiter's next look
    /// finds what this thread made available, or this thread sees the waiter. Waiters exist only in
    /// bounded pools.
    #[inline]
    pub(crate) fn notify_available(&self) {
        if !self.bounded() {
            return;
        }
        fence(SeqCst);
        if self.waiting.load(Relaxed) > 0 {
            self.wake_one();
        }
    }

    /// Counts so far, summed over threads.
    pub fn stats(&self) -> PoolStats {
        let mut stats = PoolStats {
            pooled: self.shared.len(),
            peak_pooled: self.peak_shared.load(Relaxed),
            live: self.live.load(Relaxed),
            waiting: self.waiting.load(Relaxed),
            ..PoolStats::default()
        };
        let mut add = |c: &Counts, derived: bool| {
            stats.acquired += c.acquired.load(Relaxed);
            stats.reused += c.reused(derived);
            stats.created += c.created.load(Relaxed);
        };
        add(&self.shared_counts, false);
        for local in self.local.iter() {
            add(&local.counts, true);
        }
        for local in self.local.iter() {
            stats.pooled += local.idle.load(Relaxed);
            stats.peak_pooled += local.peak.load(Relaxed);
        }
        stats
    }

    /// Reused over acquired so far.
    pub fn reuse_rate(&self) -> f64 {
        self.stats().reuse_rate()
    }
}

impl<T: Send> fmt::Debug for ObjectPool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectPool")
            .field("type", &std::any::type_name::<T>())
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

/// An object on loan from an [`ObjectPool`]: dereferences to `T`, reset and returned on drop.
pub struct Pooled<'pool, T: Send> {
    /// Moved out only by `drop` and [`Pooled::into_object`], each the handle's end.
    obj: ManuallyDrop<Kept<T>>,
    pool: &'pool ObjectPool<T>,
}

impl<'pool, T: Send> Pooled<'pool, T> {
    /// Keeps the object: it will not go back to the pool (and no longer counts against a bound).
    pub fn detach(self) -> T {
        CachePadded::into_inner(*self.detach_kept())
    }

    /// As [`detach`](Pooled::detach), in the box the pool keeps it in.
    pub(crate) fn detach_kept(self) -> Kept<T> {
        let pool = self.pool;
        let obj = self.into_object();
        pool.forget_live();
        obj
    }

    /// The pool it returns to.
    pub(crate) fn pool(&self) -> &'pool ObjectPool<T> {
        self.pool
    }

    /// The object, out of the handle without going back (still live, still counted).
    pub(crate) fn into_object(self) -> Kept<T> {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the object is moved out exactly once and never used after.
        unsafe { ManuallyDrop::take(&mut this.obj) }
    }
}

impl<T: Send> ObjectPool<T> {
    /// A live object left the pool for good (detached): its place under a bound is free.
    pub(crate) fn forget_live(&self) {
        self.live.fetch_sub(1, Relaxed);
        self.notify_available();
    }
}

impl<T: Send> Deref for Pooled<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.obj
    }
}

impl<T: Send> DerefMut for Pooled<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.obj
    }
}

impl<T: Send> Drop for Pooled<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: a drop runs once, and nothing reads `obj` after it.
        let obj = unsafe { ManuallyDrop::take(&mut self.obj) };
        self.pool.give_back(obj);
    }
}

impl<T: Send + fmt::Debug> fmt::Debug for Pooled<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pooled").field(&***self.obj).finish()
    }
}

/// The future of [`ObjectPool::acquire_async`].
pub struct Acquire<'pool, T: Send> {
    pool: &'pool ObjectPool<T>,
    /// `None`: no timeout.
    deadline: Option<Instant>,
    started: Instant,
    waiter: Option<u64>,
    /// The waker the timer will wake at the deadline.
    timer_waker: Option<Waker>,
}

impl<'pool, T: Send> Future for Acquire<'pool, T> {
    type Output = Result<Pooled<'pool, T>, PoolError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let pool = self.pool;
        match pool.try_acquire() {
            Err(PoolError::Exhausted { .. }) => {}
            other => {
                if let Some(id) = self.waiter.take() {
                    pool.deregister(id);
                }
                return Poll::Ready(other);
            }
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            if let Some(id) = self.waiter.take() {
                pool.deregister(id);
            }
            return Poll::Ready(Err(pool.timeout_error(self.started.elapsed())));
        }
        let id = pool.reregister(self.waiter, cx.waker());
        self.waiter = Some(id);
        // A release between the failed attempt and the registration has woken nobody: look again.
        match pool.try_acquire() {
            Err(PoolError::Exhausted { .. }) => {}
            other => {
                pool.deregister(id);
                self.waiter = None;
                return Poll::Ready(other);
            }
        }
        if let Some(deadline) = self.deadline
            && !self
                .timer_waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
        {
            timer::wake_at(deadline, cx.waker().clone());
            self.timer_waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl<T: Send> Drop for Acquire<'_, T> {
    fn drop(&mut self) {
        if let Some(id) = self.waiter.take() {
            self.pool.deregister(id);
        }
    }
}

impl<T: Send> fmt::Debug for Acquire<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}
