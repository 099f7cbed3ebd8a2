//! Cache padding: [`CachePadded`] (128 bytes), [`CacheAligned`] (64 bytes), [`PaddedCounter`],
//! [`Counters`] and [`ActivityStats`].

use std::{
    fmt,
    sync::atomic::{AtomicU64, Ordering},
};

pub use crossbeam_utils::CachePadded;

/// A value aligned (and so padded) to a 64-byte cache line: two `CacheAligned` values never share a line.
/// Half of [`CachePadded`]'s 128 bytes on x86-64, where the CPU also prefetches the adjacent line in
/// pairs: neighbours 64 bytes apart can still slow each other a little there (the report's false-sharing
/// table measures both).
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use flowmem_alloc::CacheAligned;
///
/// let counter = CacheAligned::new(AtomicU64::new(0));
/// counter.fetch_add(1, Ordering::Relaxed);
/// assert_eq!(counter.load(Ordering::Relaxed), 1);
/// assert_eq!(std::mem::align_of::<CacheAligned<u8>>(), 64);
/// ```
#[derive(Default, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(align(64))]
pub struct CacheAligned<T>(T);

impl<T> CacheAligned<T> {
    /// `value`, aligned to a cache line.
    pub const fn new(value: T) -> CacheAligned<T> {
        CacheAligned(value)
    }

    /// The value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for CacheAligned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for CacheAligned<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> From<T> for CacheAligned<T> {
    fn from(value: T) -> Self {
        CacheAligned(value)
    }
}

impl<T: fmt::Debug> fmt::Debug for CacheAligned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CacheAligned").field(&self.0).finish()
    }
}

/// Counts of work in flight and done, each on a cache line of its own ([`CacheAligned`]), for threads
/// that update them at once: an executor's `active`, `completed` and `failed`.
///
/// ```
/// use std::sync::Arc;
/// use flowmem_alloc::ActivityStats;
///
/// let stats = Arc::new(ActivityStats::new());
/// let worker = Arc::clone(&stats);
/// std::thread::spawn(move || {
///     worker.inc_active();
///     // ... the work ...
///     worker.dec_active();
///     worker.inc_completed();
/// })
/// .join()
/// .unwrap();
/// stats.inc_failed();
/// assert_eq!(stats.snapshot(), (0, 1, 1));
/// ```
#[derive(Default)]
pub struct ActivityStats {
    active: CacheAligned<AtomicU64>,
    completed: CacheAligned<AtomicU64>,
    failed: CacheAligned<AtomicU64>,
}

impl ActivityStats {
    /// All at zero.
    pub const fn new() -> ActivityStats {
        ActivityStats {
            active: CacheAligned::new(AtomicU64::new(0)),
            completed: CacheAligned::new(AtomicU64::new(0)),
            failed: CacheAligned::new(AtomicU64::new(0)),
        }
    }

    /// One more in flight.
    #[inline]
    pub fn inc_active(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    /// One fewer in flight (wrapping).
    #[inline]
    pub fn dec_active(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    /// One more completed.
    #[inline]
    pub fn inc_completed(&self) {
        self.completed.fetch_add(1, Ordering::Relaxed);
    }

    /// One more failed.
    #[inline]
    pub fn inc_failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// `(active, completed, failed)` now (each read on its own: not one instant across the three).
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.active.load(Ordering::Relaxed),
            self.completed.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

impl fmt::Debug for ActivityStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (active, completed, failed) = self.snapshot();
        f.debug_struct("ActivityStats")
            .field("active", &active)
            .field("completed", &completed)
            .field("failed", &failed)
            .finish()
    }
}

/// An atomic counter alone on its cache line (128 bytes on x86-64, as crossbeam pads for adjacent-line
/// prefetch), so that threads updating neighbouring counters do not slow each other down (false sharing).
///
/// ```
/// use flowmem_alloc::PaddedCounter;
///
/// let done = PaddedCounter::new(0);
/// std::thread::scope(|s| {
///     for _ in 0..2 {
///         s.spawn(|| (0..1000).for_each(|_| { done.increment(); }));
///     }
/// });
/// assert_eq!(done.get(), 2000);
/// ```
#[derive(Default)]
pub struct PaddedCounter(CachePadded<AtomicU64>);

impl PaddedCounter {
    /// A counter starting at `value`.
    pub const fn new(value: u64) -> PaddedCounter {
        PaddedCounter(CachePadded::new(AtomicU64::new(value)))
    }

    /// Adds one; returns the value before.
    #[inline]
    pub fn increment(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }

    /// Adds `n`; returns the value before.
    #[inline]
    pub fn add(&self, n: u64) -> u64 {
        self.0.fetch_add(n, Ordering::Relaxed)
    }

    /// Subtracts `n` (wrapping); returns the value before.
    #[inline]
    pub fn sub(&self, n: u64) -> u64 {
        self.0.fetch_sub(n, Ordering::Relaxed)
    }

    /// The value now.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Sets the value; returns the value before.
    pub fn swap(&self, value: u64) -> u64 {
        self.0.swap(value, Ordering::Relaxed)
    }
}

impl fmt::Debug for PaddedCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PaddedCounter").field(&self.get()).finish()
    }
}

/// `N` named [`PaddedCounter`]s, read together with [`snapshot`](Counters::snapshot).
///
/// ```
/// use flowmem_alloc::Counters;
///
/// const ACTIVE: usize = 0;
/// const COMPLETED: usize = 1;
/// let counters = Counters::new(["active", "completed"]);
/// counters.add(ACTIVE, 2);
/// counters.sub(ACTIVE, 1);
/// counters.add(COMPLETED, 1);
/// let snap = counters.snapshot();
/// assert_eq!(snap.get("active"), Some(1));
/// assert_eq!(snap[COMPLETED], 1);
/// assert_eq!(snap.to_string(), "active=1 completed=1");
/// ```
pub struct Counters<const N: usize> {
    names: [&'static str; N],
    values: [PaddedCounter; N],
}

impl<const N: usize> Counters<N> {
    /// `N` counters at zero, with these names.
    pub fn new(names: [&'static str; N]) -> Counters<N> {
        Counters {
            names,
            values: std::array::from_fn(|_| PaddedCounter::new(0)),
        }
    }

    /// Adds `n` to counter `index`.
    ///
    /// # Panics
    ///
    /// If `index >= N`.
    #[inline]
    pub fn add(&self, index: usize, n: u64) {
        self.values[index].add(n);
    }

    /// Subtracts `n` from counter `index` (wrapping).
    ///
    /// # Panics
    ///
    /// If `index >= N`.
    #[inline]
    pub fn sub(&self, index: usize, n: u64) {
        self.values[index].sub(n);
    }

    /// Counter `index`.
    ///
    /// # Panics
    ///
    /// If `index >= N`.
    #[inline]
    pub fn counter(&self, index: usize) -> &PaddedCounter {
        &self.values[index]
    }

    /// Every counter's value now. Each value is read atomically; the set is not one atomic read, so while
    /// threads update the counters, the values may be from slightly different moments.
    pub fn snapshot(&self) -> CountersSnapshot<N> {
        CountersSnapshot {
            names: self.names,
            values: std::array::from_fn(|i| self.values[i].get()),
        }
    }
}

impl<const N: usize> fmt::Debug for Counters<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.snapshot(), f)
    }
}

/// Values of [`Counters`] at one moment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CountersSnapshot<const N: usize> {
    names: [&'static str; N],
    values: [u64; N],
}

impl<const N: usize> CountersSnapshot<N> {
    /// The value of the counter named `name`.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.names
            .iter()
            .position(|n| *n == name)
            .map(|i| self.values[i])
    }

    /// The values, in counter order.
    pub fn values(&self) -> [u64; N] {
        self.values
    }

    /// `(name, value)` pairs, in counter order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.names.iter().copied().zip(self.values.iter().copied())
    }
}

impl<const N: usize> std::ops::Index<usize> for CountersSnapshot<N> {
    type Output = u64;

    fn index(&self, index: usize) -> &u64 {
        &self.values[index]
    }
}

impl<const N: usize> fmt::Debug for CountersSnapshot<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<const N: usize> fmt::Display for CountersSnapshot<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{name}={value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_counter_fills_a_cache_line() {
        assert!(std::mem::size_of::<PaddedCounter>() >= 64);
        assert!(std::mem::align_of::<PaddedCounter>() >= 64);
    }

    #[test]
    fn counters_count_across_threads() {
        let counters = Counters::new(["a", "b"]);
        std::thread::scope(|s| {
            for i in 0..2 {
                let counters = &counters;
                s.spawn(move || {
                    for _ in 0..10_000 {
                        counters.add(i, 1);
                    }
                });
            }
        });
        assert_eq!(counters.snapshot().values(), [10_000, 10_000]);
        assert_eq!(counters.snapshot().get("c"), None);
    }
}
