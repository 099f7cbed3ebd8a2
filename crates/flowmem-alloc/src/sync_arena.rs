//! [`SyncArena`]: allocation from any thread through `&self`, into an arena per thread.

use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_arena_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SyncArena>();
    }
}
