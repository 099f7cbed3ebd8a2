//! [`SyncArena`] (allocation from any thread through `&self`) and [`ArenaPool`] (arenas handed out and taken
//! back, so their blocks serve request after request).

use std::{
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
        }
    }

    /// This thread's arena, created on first use.
    #[inline]
    pub fn local(&self) -> &Arena {
        self.arenas
            .get_or(|| Arena::with_block_size(self.block_size))
    }

    /// Moves `val` into this thread's arena. Panics and aborts as [`Arena::alloc`].
    #[inline]
    #[allow(clippy::mut_from_ref, reason = "each call hands out a fresh, disjoint allocation")]
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
    #[allow(clippy::mut_from_ref, reason = "each call hands out a fresh, disjoint allocation")]
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
/// reserved serve the next, so a warmed-up pool makes no system allocation. The pool holds at most
/// `max_pooled` idle arenas (extra ones are dropped on return) and is lock-free (a bounded
/// [`crossbeam_queue::ArrayQueue`]).
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
/// let stats = pool.stats();
/// assert_eq!((stats.taken, stats.created), (10, 1));
/// ```
pub struct ArenaPool {
    idle: ArrayQueue<Arena>,
    block_size: usize,
    taken: AtomicU64,
    created: AtomicU64,
    dropped: AtomicU64,
}

/// Counts of an [`ArenaPool`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArenaPoolStats {
    /// Arenas handed out by [`ArenaPool::take`].
    pub taken: u64,
    /// Arenas created because the pool had none idle.
    pub created: u64,
    /// Arenas dropped on return because the pool was full.
    pub dropped: u64,
    /// Arenas idle in the pool now.
    pub idle: usize,
}

impl ArenaPool {
    /// A pool keeping up to `max_pooled` idle arenas (at least one) with blocks of [`DEFAULT_BLOCK_SIZE`].
    pub fn new(max_pooled: usize) -> ArenaPool {
        ArenaPool::with_block_size(max_pooled, DEFAULT_BLOCK_SIZE)
    }

    /// A pool keeping up to `max_pooled` idle arenas (at least one) with blocks of `block_size` bytes.
    pub fn with_block_size(max_pooled: usize, block_size: usize) -> ArenaPool {
        ArenaPool {
            idle: ArrayQueue::new(max_pooled.max(1)),
            block_size,
            taken: AtomicU64::new(0),
            created: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// An empty, reset arena: an idle one if there is one, else a new one.
    pub fn take(&self) -> PooledArena<'_> {
        self.taken.fetch_add(1, Ordering::Relaxed);
        let arena = self.idle.pop().unwrap_or_else(|| {
            self.created.fetch_add(1, Ordering::Relaxed);
            Arena::with_block_size(self.block_size)
        });
        PooledArena {
            arena: Some(arena),
            pool: self,
        }
    }

    /// Resets `arena` and keeps it for a later [`take`](ArenaPool::take), or drops it if the pool is full.
    pub fn put(&self, mut arena: Arena) {
        arena.reset();
        if self.idle.push(arena).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts so far.
    pub fn stats(&self) -> ArenaPoolStats {
        ArenaPoolStats {
            taken: self.taken.load(Ordering::Relaxed),
            created: self.created.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            idle: self.idle.len(),
        }
    }
}

impl fmt::Debug for ArenaPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArenaPool")
            .field("block_size", &self.block_size)
            .field("max_pooled", &self.idle.capacity())
            .field("stats", &self.stats())
            .finish()
    }
}

/// An arena on loan from an [`ArenaPool`]; dereferences to [`Arena`] and goes back to the pool on drop.
pub struct PooledArena<'pool> {
    arena: Option<Arena>,
    pool: &'pool ArenaPool,
}

impl PooledArena<'_> {
    /// Keeps the arena: it will not go back to the pool.
    pub fn detach(mut self) -> Arena {
        self.arena.take().expect("a PooledArena holds its arena until drop or detach")
    }
}

impl Deref for PooledArena<'_> {
    type Target = Arena;

    fn deref(&self) -> &Arena {
        self.arena.as_ref().expect("a PooledArena holds its arena until drop or detach")
    }
}

impl DerefMut for PooledArena<'_> {
    fn deref_mut(&mut self) -> &mut Arena {
        self.arena.as_mut().expect("a PooledArena holds its arena until drop or detach")
    }
}

impl Drop for PooledArena<'_> {
    fn drop(&mut self) {
        if let Some(arena) = self.arena.take() {
            self.pool.put(arena);
        }
    }
}

impl fmt::Debug for PooledArena<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledArena").field("arena", &self.arena).finish()
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
        a.alloc(1u64);
        drop(a);
        drop(b);
        let stats = pool.stats();
        assert_eq!((stats.created, stats.dropped, stats.idle), (2, 1, 1));
        let c = pool.take();
        assert_eq!(c.stats().bytes_used, 0);
        assert_eq!(c.stats().blocks, 1, "the returned arena kept its block");
        let kept = c.detach();
        assert_eq!(pool.stats().idle, 0);
        drop(kept);
    }

    #[test]
    fn sync_arena_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SyncArena>();
        check::<ArenaPool>();
    }
}
