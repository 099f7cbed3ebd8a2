//! The read-write spin lock of one bucket: one `u32` beside the bucket's tags, so taking it touches the line
//! the lookup reads anyway.
//!
//! Critical sections are a tag match and a few key comparisons (plus whatever closure the caller runs), so a
//! waiter spins briefly and then yields its time slice (on a machine with more runnable threads than cores,
//! the holder may be waiting for a core). Writers take precedence: once a writer has announced itself, new
//! readers wait, so a stream of readers cannot starve it.
//!
//! On x86 every locked instruction waits until the thread's earlier stores have landed: an unlock by
//! `fetch_and` made each insert wait for the cache misses of the entry it had just written (measured with
//! `perf record`: most of an insert's samples sat on the locked instruction after the stores). A writer
//! here releases with a plain store.

use std::sync::atomic::{AtomicU32, Ordering};

/// Set while a writer holds the lock or waits for the readers inside to leave.
const WRITER: u32 = 1 << 31;

/// Spins before a waiter starts yielding its time slice.
const SPINS: u32 = 64;

/// A reader-writer lock in one word: the number of readers inside, and [`WRITER`].
#[derive(Debug)]
pub(crate) struct BucketLock(AtomicU32);

impl BucketLock {
    pub(crate) const fn new() -> Self {
        Self(AtomicU32::new(0))
    }

    /// Takes the lock shared. A reader changes the word only while no writer holds or awaits the lock, so
    /// a writer's release is a plain store.
    #[inline]
    pub(crate) fn read(&self) {
        let state = self.0.load(Ordering::Relaxed);
        if state & WRITER != 0
            || self
                .0
                .compare_exchange_weak(state, state + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            self.read_slow();
        }
    }

    #[cold]
    fn read_slow(&self) {
        let mut waited = 0;
        loop {
            let state = self.0.load(Ordering::Relaxed);
            if state & WRITER == 0
                && self
                    .0
                    .compare_exchange_weak(state, state + 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
            pause(&mut waited);
        }
    }

    /// Releases a shared hold.
    #[inline]
    pub(crate) fn read_unlock(&self) {
        self.0.fetch_sub(1, Ordering::Release);
    }

    /// Takes the lock exclusively.
    #[inline]
    pub(crate) fn write(&self) {
        if self
            .0
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.write_slow();
        }
    }

    #[cold]
    fn write_slow(&self) {
        let mut waited = 0;
        // Announce: from here no new reader gets in.
        loop {
            let state = self.0.load(Ordering::Relaxed);
            if state & WRITER == 0
                && self
                    .0
                    .compare_exchange_weak(
                        state,
                        state | WRITER,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                break;
            }
            pause(&mut waited);
        }
        // Then wait for the readers inside to leave.
        while self.0.load(Ordering::Acquire) != WRITER {
            pause(&mut waited);
        }
    }

    /// Releases an exclusive hold: a plain store, since nobody else changes the word while a writer holds
    /// it (no locked instruction, so the writer does not wait here for its own stores to land).
    #[inline]
    pub(crate) fn write_unlock(&self) {
        self.0.store(0, Ordering::Release);
    }
}

/// One step of waiting: a spin hint for the first [`SPINS`] steps, then a yield.
#[inline]
fn pause(waited: &mut u32) {
    if *waited < SPINS {
        *waited += 1;
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use std::{cell::UnsafeCell, sync::Arc};

    use super::*;

    /// A counter behind the lock: writers increment it twice (an odd value seen by a reader would be a
    /// torn critical section), readers check it is even.
    struct Guarded {
        lock: BucketLock,
        value: UnsafeCell<u64>,
    }
    // SAFETY: `value` is only touched under `lock` (shared for reads, exclusive for writes).
    unsafe impl Sync for Guarded {}

    #[test]
    fn writers_exclude_each_other_and_readers() {
        let g = Arc::new(Guarded {
            lock: BucketLock::new(),
            value: UnsafeCell::new(0),
        });
        let rounds = flowmem_testing::iterations(20_000);
        std::thread::scope(|s| {
            for t in 0..4 {
                let g = &g;
                s.spawn(move || {
                    for _ in 0..rounds {
                        if t % 2 == 0 {
                            g.lock.write();
                            // SAFETY: exclusive hold.
                            unsafe {
                                *g.value.get() += 1;
                                *g.value.get() += 1;
                            }
                            g.lock.write_unlock();
                        } else {
                            g.lock.read();
                            // SAFETY: shared hold: no writer inside.
                            let v = unsafe { *g.value.get() };
                            g.lock.read_unlock();
                            assert_eq!(v % 2, 0, "a reader saw a writer's half-done work");
                        }
                    }
                });
            }
        });
        // SAFETY: every thread has finished.
        assert_eq!(unsafe { *g.value.get() }, 2 * 2 * rounds);
        assert_eq!(g.lock.0.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn readers_share_the_lock() {
        let lock = BucketLock::new();
        lock.read();
        lock.read();
        assert_eq!(lock.0.load(Ordering::Relaxed), 2);
        lock.read_unlock();
        lock.read_unlock();
        lock.write();
        assert_eq!(lock.0.load(Ordering::Relaxed), WRITER);
        lock.write_unlock();
        assert_eq!(lock.0.load(Ordering::Relaxed), 0);
    }
}
