//! [`ArenaPool`]: arenas handed out reset and taken back, so their blocks serve request after request.
//!
//! The fast path is a thread-local slot: [`take`](ArenaPool::take) finds this thread's idle arena there
//! and resets it, dropping the [`PooledArena`] puts it back, with no atomic operation. The slot is a plain
//! thread-local (a pool id and a raw pointer, no destructor), so reaching it checks no initialisation
//! state; a second thread-local, registered when a thread first keeps an arena, frees the idle arena when
//! the thread exits.
//!
//! The reset is done by `take`, not by the return: inlined where the arena is taken, it costs its
//! instructions and nothing more, while on the return it made the drop of every `PooledArena` a call
//! (bumpalo's reset loops over earlier chunks and calls `dealloc`, so the drop was not inlined) that saved
//! and restored six registers. Callgrind (`benches/examples/arena_use.rs`): a take, a `u64` and a return,
//! 72 instructions with the reset on the return, 58 with it on the take; 6.4–6.9 ns against 4.1–4.2 on
//! the same machine in turn. An idle arena holds what its last user allocated until it is taken again
//! (its blocks are kept either way: a reset frees nothing).

use std::{
    cell::Cell,
    fmt,
    mem::ManuallyDrop,
    ops::{Deref, DerefMut},
    ptr,
    sync::atomic::{AtomicU64, Ordering},
};

use crossbeam_queue::ArrayQueue;

use crate::{Arena, DEFAULT_BLOCK_SIZE};

/// A pool of arenas: [`take`](ArenaPool::take) hands one out reset, dropping the [`PooledArena`] gives it
/// back, blocks and all.
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

/// Pool ids start at 1 (0: no pool).
static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(1);

/// The pool id of a slot whose thread is exiting: it matches no pool, and such a slot adopts none.
const CLOSED: u64 = u64::MAX;

/// A thread's idle arena and the pool it belongs to.
struct IdleSlot {
    /// The pool `arena` belongs to (0: none yet; [`CLOSED`]).
    pool: Cell<u64>,
    /// The idle arena, from `Box::into_raw` and owned by the slot (null: none).
    arena: Cell<*mut Arena>,
}

thread_local! {
    /// No destructor, so reaching it checks no state, during thread exit included.
    static IDLE: IdleSlot = const {
        IdleSlot {
            pool: Cell::new(0),
            arena: Cell::new(ptr::null_mut()),
        }
    };
    /// Registered before this thread's slot first holds an arena; frees it when the thread exits.
    static IDLE_OWNER: IdleOwner = const { IdleOwner };
}

/// This thread's slot. One reach of the thread-local for every use: `LocalKey::with` is generic over its
/// closure and not `#[inline]`, so each closure passed to it is an instantiation that a large crate may
/// place in another codegen unit than its caller, where it is not inlined (measured: the bench binary
/// called `with` out of line on every return, which then fetched the slot's address through a function
/// pointer, 6.0 ns a take and return against 4.1 in the small example). Through this one non-generic
/// function there is one instantiation, in this crate.
#[inline(always)]
fn slot() -> &'static IdleSlot {
    let slot: *const IdleSlot = IDLE.with(ptr::from_ref);
    // SAFETY: `IDLE` has no destructor, so its storage stays valid for as long as this thread runs, and
    // the reference is only used on this thread (`IdleSlot` is not `Sync`, so it cannot leave it).
    unsafe { &*slot }
}

/// Frees this thread's idle arena as the thread exits, and closes the slot to later returns.
struct IdleOwner;

impl Drop for IdleOwner {
    fn drop(&mut self) {
        let slot = slot();
        slot.pool.set(CLOSED);
        let arena = slot.arena.replace(ptr::null_mut());
        if !arena.is_null() {
            // SAFETY: a non-null slot holds an arena from `Box::into_raw`, owned by the slot alone; the
            // slot no longer holds it.
            drop(unsafe { Box::from_raw(arena) });
        }
    }
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
        let slot = slot();
        let local = if slot.pool.get() == self.id {
            slot.arena.replace(ptr::null_mut())
        } else {
            ptr::null_mut()
        };
        let mut arena = if local.is_null() {
            self.take_shared()
        } else {
            // SAFETY: a non-null slot holds an arena from `Box::into_raw`, owned by the slot alone; it
            // was just taken out of it.
            unsafe { Box::from_raw(local) }
        };
        arena.reset();
        PooledArena {
            arena: ManuallyDrop::new(arena),
            pool: self,
        }
    }

    #[cold]
    #[inline(never)]
    fn take_shared(&self) -> Box<Arena> {
        self.shared.pop().unwrap_or_else(|| {
            self.created.fetch_add(1, Ordering::Relaxed);
            Box::new(Arena::with_block_size(self.block_size))
        })
    }

    /// Keeps `arena` for a later [`take`](ArenaPool::take) (which resets it), or drops it if the pool is
    /// full. (Dropping a [`PooledArena`] does the same without moving the arena.)
    pub fn put(&self, arena: Arena) {
        self.put_boxed(Box::new(arena));
    }

    // Always inlined into the drop of a `PooledArena`: a compare and a store, and a call on the rare path.
    #[inline(always)]
    fn put_boxed(&self, arena: Box<Arena>) {
        let slot = slot();
        if slot.pool.get() == self.id && slot.arena.get().is_null() {
            slot.arena.set(Box::into_raw(arena));
        } else {
            self.put_elsewhere(arena);
        }
    }

    /// Keeps an `arena` that this thread's slot did not take: the slot adopts it if it belongs to
    /// another pool or none (dropping that pool's idle arena); if it holds one of this pool already, that
    /// one stays (its blocks are warm) and this one goes to the shared queue, or is dropped if the queue is
    /// full.
    #[cold]
    #[inline(never)]
    fn put_elsewhere(&self, arena: Box<Arena>) {
        let slot = slot();
        let pool = slot.pool.get();
        // The slot's owner is registered before the slot holds anything, so what the slot holds is freed at
        // thread exit; while the thread exits it cannot be, and the arena goes to the shared queue.
        if pool != self.id && pool != CLOSED && IDLE_OWNER.try_with(|_| ()).is_ok() {
            slot.pool.set(self.id);
            let previous = slot.arena.replace(Box::into_raw(arena));
            if !previous.is_null() {
                // SAFETY: a non-null slot holds an arena from `Box::into_raw`, owned by the slot alone; the
                // slot no longer holds it.
                drop(unsafe { Box::from_raw(previous) });
            }
        } else if self.shared.push(arena).is_err() {
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
    /// Taken out only by `drop` or `detach`, each of which ends the `PooledArena`.
    arena: ManuallyDrop<Box<Arena>>,
    pool: &'pool ArenaPool,
}

impl PooledArena<'_> {
    /// Keeps the arena: it will not go back to the pool.
    pub fn detach(self) -> Arena {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: the arena is taken once, and `this` is never dropped, so nothing reads it again.
        *unsafe { ManuallyDrop::take(&mut this.arena) }
    }
}

impl Deref for PooledArena<'_> {
    type Target = Arena;

    #[inline]
    fn deref(&self) -> &Arena {
        &self.arena
    }
}

impl DerefMut for PooledArena<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Arena {
        &mut self.arena
    }
}

impl Drop for PooledArena<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: taken once, as the `PooledArena` ends; nothing reads the field after.
        let arena = unsafe { ManuallyDrop::take(&mut self.arena) };
        self.pool.put_boxed(arena);
    }
}

impl fmt::Debug for PooledArena<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledArena")
            .field("arena", &**self.arena)
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
    fn a_thread_that_uses_two_pools_keeps_an_arena_of_the_last_one() {
        let first = ArenaPool::with_block_size(1, 1024);
        let second = ArenaPool::with_block_size(1, 2048);
        drop(first.take()); // kept by this thread
        drop(second.take()); // the slot adopts it; `first`'s idle arena is dropped
        assert_eq!(first.stats().idle_shared, 0);
        let a = second.take();
        assert_eq!(a.block_size(), 2048);
        assert_eq!(
            second.stats().created,
            1,
            "the slot's arena was taken again"
        );
        let b = first.take();
        assert_eq!(
            first.stats().created,
            2,
            "the first pool's idle arena was gone"
        );
        drop(b); // the slot adopts it back
        drop(a); // and this one again, dropping `b`'s
        assert_eq!(
            (first.stats().idle_shared, second.stats().idle_shared),
            (0, 0)
        );
        assert_eq!(second.take().block_size(), 2048);
        assert_eq!(second.stats().created, 1);
    }

    /// Under memcheck (`cargo xtask valgrind`) this also checks that an exiting thread frees its idle
    /// arena, and that an arena returned by another thread-local's destructor, before or after the slot's
    /// owner ran, is neither leaked nor freed twice.
    #[test]
    fn exiting_threads_free_idle_arenas_and_late_returns_are_kept_or_dropped() {
        struct Late(Cell<Option<PooledArena<'static>>>);
        impl Drop for Late {
            fn drop(&mut self) {
                drop(self.0.take());
            }
        }
        thread_local! {
            static LATE: Late = const { Late(Cell::new(None)) };
        }
        static POOL: std::sync::LazyLock<ArenaPool> =
            std::sync::LazyLock::new(|| ArenaPool::with_block_size(4, 1024));
        let pool: &'static ArenaPool = &POOL;
        std::thread::spawn(move || {
            // `LATE` is registered before the slot's owner, and `IDLE_OWNER` after: destructors run in
            // the reverse order on glibc, so the late return finds the slot closed.
            LATE.with(|late| late.0.set(None));
            drop(pool.take()); // created, then kept by this thread's slot
            let late = pool.take(); // the slot's
            late.alloc(7u64);
            LATE.with(|l| l.0.set(Some(late)));
        })
        .join()
        .expect("the thread exits cleanly");
        let stats = pool.stats();
        assert_eq!(stats.created, 1);
        assert_eq!(
            stats.idle_shared, 1,
            "the late return went to the shared queue: {stats:?}"
        );
        let again = pool.take();
        assert_eq!(again.stats().bytes_used, 0, "a returned arena is reset");
    }

    #[test]
    fn arena_pool_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<ArenaPool>();
    }
}
