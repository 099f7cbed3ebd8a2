//! [`SyncArena`] (allocation from any thread through `&self`) and [`ArenaPool`] (arenas handed out and taken
//! back, so their blocks serve request after request).

use std::{
    cell::Cell,
    fmt,
    ops::{Deref, DerefMut},
    sync::atomic::{AtomicU64, Ordering},
};

use crossbeam_queue::ArrayQueue;
use thread_local::ThreadLocal;

use crate::{Arena, ArenaStats, DEFAULT_BLOCK_SIZE};

/// An arena that any thread can allocate from through `&self`, without locks.
///
/// Each thread bumps into an [`Arena`] of its own (a [`thread_local::ThreadLocal`] of arenas), so threads never
/// contend; the first allocation of a thread creates its arena. [`reset`](SyncArena::reset) (through
/// `&mut self`, when no allocation is borrowed any more) resets every thread's arena and keeps their blocks.
/// A thread that exits leaves its arena behind for the next thread that takes its id.
///
/// # Example
///
/// ```
/// use flowmem_alloc::SyncArena;
///
/// let mut arena = SyncArena::new();
/// std::thread::scope(|s| {
///     for t in 0..2u64 {
///         let arena = &arena;
///         s.spawn(move || {
///             let values: Vec<&u64> = (0..100).map(|i| &*arena.alloc(t * 1000 + i)).collect();
///             assert!(values.iter().enumerate().all(|(i, v)| **v == t * 1000 + i as u64));
///         });
///     }
/// });
/// assert_eq!(arena.stats().bytes_used, 2 * 100 * 8);
/// arena.reset();
/// assert_eq!(arena.stats().bytes_used, 0);
/// ```
pub struct SyncArena {
    arenas: ThreadLocal<Arena>,
    block_size: usize,
    /// Bytes each thread's arena reserves when it is made ([`SyncArena::with_capacity`]).
    capacity: Option<usize>,
}

impl Default for SyncArena {
    fn default() -> Self {
        SyncArena::new()
    }
}

impl SyncArena {
    /// A sync arena whose per-thread arenas use blocks of [`DEFAULT_BLOCK_SIZE`].
    pub fn new() -> SyncArena {
        SyncArena::with_block_size(DEFAULT_BLOCK_SIZE)
    }

    /// A sync arena whose per-thread arenas use blocks of `block_size` bytes.
    pub fn with_block_size(block_size: usize) -> SyncArena {
        SyncArena {
            arenas: ThreadLocal::new(),
            block_size,
            capacity: None,
        }
    }

    /// A sync arena whose per-thread arenas each reserve `capacity` bytes when the thread first allocates
    /// (as [`Arena::with_capacity`]: later allocations of that thread use them, large ones included).
    ///
    /// ```
    /// let arena = flowmem_alloc::SyncArena::with_capacity(1 << 20);
    /// std::thread::scope(|s| {
    ///     for _ in 0..2 {
    ///         s.spawn(|| {
    ///             for _ in 0..20 {
    ///                 arena.alloc_slice_copy(&[0u8; 20 * 1024]);
    ///             }
    ///         });
    ///     }
    /// });
    /// let mut arena = arena;
    /// // One reserved block per thread that allocated (a thread that exited may hand its arena on).
    /// assert!((1..=2).contains(&arena.stats().blocks));
    /// ```
    pub fn with_capacity(capacity: usize) -> SyncArena {
        SyncArena {
            arenas: ThreadLocal::new(),
            block_size: capacity.max(DEFAULT_BLOCK_SIZE),
            capacity: Some(capacity),
        }
    }

    /// This thread's arena, created on first use.
    #[inline]
    pub fn local(&self) -> &Arena {
        self.arenas.get_or(|| match self.capacity {
            Some(capacity) => Arena::with_capacity(capacity),
            None => Arena::with_block_size(self.block_size),
        })
    }

    /// Moves `val` into this thread's arena. Panics and aborts as [`Arena::alloc`].
    #[inline]
    #[allow(
        clippy::mut_from_ref,
        reason = "each call hands out a fresh, disjoint allocation"
    )]
    pub fn alloc<T>(&self, val: T) -> &mut T {
        self.local().alloc(val)
    }

    /// Copies `s` into this thread's arena.
    #[inline]
    pub fn alloc_str(&self, s: &str) -> &str {
        self.local().alloc_str(s)
    }

    /// Copies `src` into this thread's arena.
    #[inline]
    #[allow(
        clippy::mut_from_ref,
        reason = "each call hands out a fresh, disjoint allocation"
    )]
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> &mut [T] {
        self.local().alloc_slice_copy(src)
    }

    /// Resets every thread's arena, keeping their blocks.
    pub fn reset(&mut self) {
        for arena in self.arenas.iter_mut() {
            arena.reset();
        }
    }

    /// The sum of the stats of every thread's arena. Takes `&mut self`: other threads' arenas can be read
    /// only when no thread is allocating.
    pub fn stats(&mut self) -> ArenaStats {
        let mut total = ArenaStats::default();
        for arena in self.arenas.iter_mut() {
            total.add(arena.stats());
        }
        total
    }
}

impl fmt::Debug for SyncArena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncArena")
            .field("block_size", &self.block_size)
            .finish_non_exhaustive()
    }
}

/// A pool of reset arenas: [`take`](ArenaPool::take) hands one out, dropping the [`PooledArena`] resets it
/// and gives it back, blocks and all.
///
/// Use it where each request or workflow run wants an arena of its own: the blocks that one request
/// reserved serve the next, so a warmed-up pool makes no system allocation. Each thread keeps one idle arena
/// of the pool it used last (a thread-local slot: no atomic operation on the fast path); beyond that, idle
/// arenas wait in a bounded lock-free queue ([`crossbeam_queue::ArrayQueue`]) of `max_pooled` places, and
/// arenas returned to a full pool are dropped. So at most `max_pooled` arenas plus one per thread are idle.
///
/// # Example
///
/// ```
/// use flowmem_alloc::ArenaPool;
///
/// let pool = ArenaPool::new(4);
/// for request in 0..10u32 {
///     let arena = pool.take();
///     let greeting = arena.alloc_str("hello");
///     assert_eq!(greeting, "hello");
/// } // returned here, reset
/// assert_eq!(pool.stats().created, 1);
/// ```
pub struct ArenaPool {
    id: u64,
    shared: ArrayQueue<Box<Arena>>,
    block_size: usize,
    created: AtomicU64,
    dropped: AtomicU64,
}

static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(1);

/// A thread's idle arena and the id of the pool it belongs to (0: none).
struct IdleSlot {
    pool: Cell<u64>,
    arena: Cell<Option<Box<Arena>>>,
}

thread_local! {
    static IDLE: IdleSlot = const {
        IdleSlot {
            pool: Cell::new(0),
            arena: Cell::new(None),
        }
    };
}

/// Counts of an [`ArenaPool`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ArenaPoolStats {
    /// Arenas created because the pool had none idle.
    pub created: u64,
    /// Arenas dropped on return because the pool was full.
    pub dropped: u64,
    /// Arenas idle in the shared queue now (each thread may hold one more).
    pub idle_shared: usize,
}

impl ArenaPool {
    /// A pool of up to `max_pooled` shared idle arenas (at least one) with blocks of [`DEFAULT_BLOCK_SIZE`].
    pub fn new(max_pooled: usize) -> ArenaPool {
        ArenaPool::with_block_size(max_pooled, DEFAULT_BLOCK_SIZE)
    }

    /// A pool of up to `max_pooled` shared idle arenas (at least one) with blocks of `block_size` bytes.
    pub fn with_block_size(max_pooled: usize, block_size: usize) -> ArenaPool {
        ArenaPool {
            id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
            shared: ArrayQueue::new(max_pooled.max(1)),
            block_size,
            created: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// An empty, reset arena: this thread's idle one, else a shared idle one, else a new one.
    #[inline]
    pub fn take(&self) -> PooledArena<'_> {
        let local = IDLE
            .try_with(|slot| {
                if slot.pool.get() == self.id {
                    slot.arena.take()
                } else {
                    None
                }
            })
            .ok()
            .flatten();
        PooledArena {
            arena: Some(local.unwrap_or_else(|| self.take_shared())),
            pool: self,
        }
    }

    #[cold]
    fn take_shared(&self) -> Box<Arena> {
        self.shared.pop().unwrap_or_else(|| {
            self.created.fetch_add(1, Ordering::Relaxed);
            Box::new(Arena::with_block_size(self.block_size))
        })
    }

    /// Resets `arena` and keeps it for a later [`take`](ArenaPool::take), or drops it if the pool is full.
    /// (Dropping a [`PooledArena`] does the same without moving the arena.)
    pub fn put(&self, arena: Arena) {
        self.put_boxed(Box::new(arena));
    }

    #[inline]
    fn put_boxed(&self, mut arena: Box<Arena>) {
        arena.reset();
        // During thread teardown the slot is gone, and the closure (with the arena) is dropped unrun.
        // This thread's slot keeps the arena if it is empty; if it holds one already, that one stays (its
        // blocks are warm) and this one goes to the shared queue.
        let rest = IDLE
            .try_with(|slot| {
                if slot.pool.get() == self.id {
                    match slot.arena.take() {
                        None => {
                            slot.arena.set(Some(arena));
                            None
                        }
                        held => {
                            slot.arena.set(held);
                            Some(arena)
                        }
                    }
                } else {
                    self.adopt(slot, arena);
                    None
                }
            })
            .unwrap_or(None);
        if let Some(arena) = rest {
            self.put_shared(arena);
        }
    }

    /// Makes `slot` this pool's, holding `arena`; an idle arena of another pool this thread used before is
    /// dropped.
    #[cold]
    fn adopt(&self, slot: &IdleSlot, arena: Box<Arena>) {
        slot.pool.set(self.id);
        drop(slot.arena.replace(Some(arena)));
    }

    /// Keeps a reset `arena` in the shared queue, or drops it if the queue is full.
    #[cold]
    fn put_shared(&self, arena: Box<Arena>) {
        if self.shared.push(arena).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts so far.
    pub fn stats(&self) -> ArenaPoolStats {
        ArenaPoolStats {
            created: self.created.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            idle_shared: self.shared.len(),
        }
    }
}

impl fmt::Debug for ArenaPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArenaPool")
            .field("block_size", &self.block_size)
            .field("max_pooled", &self.shared.capacity())
            .field("stats", &self.stats())
            .finish()
    }
}

/// An arena on loan from an [`ArenaPool`]; dereferences to [`Arena`] and goes back to the pool on drop.
pub struct PooledArena<'pool> {
    arena: Option<Box<Arena>>,
    pool: &'pool ArenaPool,
}

impl PooledArena<'_> {
    /// Keeps the arena: it will not go back to the pool.
    pub fn detach(mut self) -> Arena {
        *self
            .arena
            .take()
            .expect("a PooledArena holds its arena until drop or detach")
    }
}

impl Deref for PooledArena<'_> {
    type Target = Arena;

    #[inline]
    fn deref(&self) -> &Arena {
        self.arena
            .as_ref()
            .expect("a PooledArena holds its arena until drop or detach")
    }
}

impl DerefMut for PooledArena<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Arena {
        self.arena
            .as_mut()
            .expect("a PooledArena holds its arena until drop or detach")
    }
}

impl Drop for PooledArena<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(arena) = self.arena.take() {
            self.pool.put_boxed(arena);
        }
    }
}

impl fmt::Debug for PooledArena<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledArena")
            .field("arena", &self.arena)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_reuses_blocks_and_bounds_idle_arenas() {
        let pool = ArenaPool::with_block_size(1, 1024);
        let a = pool.take();
        let b = pool.take();
        let c = pool.take();
        a.alloc(1u64);
        drop(a); // kept by this thread
        drop(b); // to the shared queue
        drop(c); // pool full: dropped
        let stats = pool.stats();
        assert_eq!((stats.created, stats.dropped, stats.idle_shared), (3, 1, 1));
        let d = pool.take();
        assert_eq!(d.stats().bytes_used, 0);
        assert_eq!(d.stats().blocks, 1, "the returned arena kept its block");
        let e = pool.take();
        assert_eq!(pool.stats().idle_shared, 0);
        let kept = d.detach();
        drop(e);
        assert_eq!(pool.stats().created, 3);
        drop(kept);
    }

    #[test]
    fn arenas_move_between_threads_through_the_shared_queue() {
        let pool = ArenaPool::new(8);
        std::thread::scope(|s| {
            s.spawn(|| {
                let a = pool.take();
                let b = pool.take();
                a.alloc(1u8);
                b.alloc(2u8);
            });
        });
        // The other thread kept one idle arena and queued one; this thread gets the queued one.
        let a = pool.take();
        assert_eq!(a.stats().bytes_used, 0);
        assert_eq!(pool.stats().created, 2);
    }

    #[test]
    fn sync_arena_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SyncArena>();
        check::<ArenaPool>();
    }
}
