//! [`OwnerCell`] and [`bump`]: state that only the thread owning a `ThreadLocal` entry writes.

use std::{
    cell::UnsafeCell,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

/// Adds one to a counter that only the calling thread writes (a thread cache's counters, read by stats from
/// other threads): a relaxed load and store, no atomic read-modify-write.
#[inline(always)]
pub(crate) fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed) + 1, Relaxed);
}

/// A value inside a [`thread_local::ThreadLocal`] entry that only the entry's owning thread reads or writes.
///
/// `ThreadLocal::get` hands each thread its own entry, but `ThreadLocal::iter` lets other threads see every
/// entry (the pools read their per-thread counters that way), which requires the entry to be `Sync`. The
/// counters are atomics; the caches behind an `OwnerCell` are reached only through
/// [`with`](OwnerCell::with), which the pools call only on the entry `ThreadLocal::get` gave the calling
/// thread, and never re-entrantly.
pub(crate) struct OwnerCell<T>(UnsafeCell<T>);

// SAFETY: the contents are only accessed through `with`, whose contract restricts it to the one thread that
// owns the entry; other threads holding a `&OwnerCell` never touch the contents. Moving the contents across
// threads needs `T: Send`.
unsafe impl<T: Send> Sync for OwnerCell<T> {}

impl<T> OwnerCell<T> {
    pub(crate) fn new(value: T) -> OwnerCell<T> {
        OwnerCell(UnsafeCell::new(value))
    }

    /// Runs `f` on the contents.
    ///
    /// # Safety
    ///
    /// Only the thread that owns the `ThreadLocal` entry holding this cell (the entry `ThreadLocal::get`
    /// returned to it) may call this, and `f` must not call `with` on the same cell.
    #[inline]
    pub(crate) unsafe fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: the caller guarantees this thread is the only one that ever accesses the contents and that
        // no other `&mut` to them is alive (no re-entrant call), so this is the only reference.
        f(unsafe { &mut *self.0.get() })
    }

    /// The contents, through exclusive access.
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.0.get_mut()
    }
}
