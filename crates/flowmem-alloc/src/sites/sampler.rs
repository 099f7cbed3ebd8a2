//! The part of site sampling that runs inside the allocator: a per-thread countdown of bytes to the next
//! sample, and, at a sample, the stack capture and the table updates. No allocation, no lock.

use std::{
    cell::Cell,
    sync::atomic::{AtomicBool, AtomicU64, Ordering::*},
};

use super::table::{self, MAX_FRAMES, Weight};

/// Whether allocations are being sampled.
pub(crate) static ENABLED: AtomicBool = AtomicBool::new(false);
/// Mean bytes between samples.
pub(crate) static MEAN: AtomicU64 = AtomicU64::new(super::DEFAULT_MEAN_INTERVAL);
/// Bumped by every start: a thread whose countdown is from an earlier start draws a new one.
pub(crate) static GENERATION: AtomicU64 = AtomicU64::new(0);
/// Allocations made while the calling thread was taking a sample: the sampler's own (there must be none;
/// they are passed through unsampled). A test asserts it stays 0.
pub(crate) static REENTERED: AtomicU64 = AtomicU64::new(0);
/// Samples taken.
pub(crate) static SAMPLES: AtomicU64 = AtomicU64::new(0);
/// Seeds of the threads' random generators.
static SEED: AtomicU64 = AtomicU64::new(0x853c_49e6_748f_ea9b);

struct Sampler {
    /// Bytes to allocate before the next sample (sampled when it reaches 0 or below).
    countdown: Cell<i64>,
    /// The [`GENERATION`] the countdown was drawn in (0: never).
    generation: Cell<u64>,
    /// This thread is inside the sampler.
    busy: Cell<bool>,
    /// This thread's allocations are not sampled (it is building a report).
    paused: Cell<bool>,
    rng: Cell<u64>,
}

thread_local! {
    static SAMPLER: Sampler = const {
        Sampler {
            countdown: Cell::new(0),
            generation: Cell::new(0),
            busy: Cell::new(false),
            paused: Cell::new(false),
            rng: Cell::new(0),
        }
    };
}

/// Counts an allocation of `size` bytes at `ptr` against this thread's countdown, and samples it when the
/// countdown runs out.
#[inline]
pub(crate) fn on_alloc(ptr: *mut u8, size: u64) {
    let _ = SAMPLER.try_with(|s| {
        let left = s.countdown.get() - size as i64;
        if left > 0 && s.generation.get() == GENERATION.load(Relaxed) {
            s.countdown.set(left);
        } else {
            s.sample(ptr as usize, size, left);
        }
    });
}

impl Sampler {
    #[cold]
    #[inline(never)]
    fn sample(&self, ptr: usize, size: u64, left: i64) {
        if self.busy.get() {
            REENTERED.fetch_add(1, Relaxed);
            return;
        }
        if self.paused.get() {
            self.countdown.set(left.max(1));
            return;
        }
        self.busy.set(true);
        let mean = MEAN.load(Relaxed).max(1);
        let generation = GENERATION.load(Relaxed);
        if self.generation.get() != generation {
            // A countdown from another start (or none yet): draw one, and sample only when this
            // allocation reaches past it, as if the countdown had always been running.
            self.generation.set(generation);
            let next = self.next_interval(mean);
            let left = next - size as i64;
            if left > 0 {
                self.countdown.set(left);
                self.busy.set(false);
                return;
            }
        }
        // Past the sample point: draw the next interval, carrying over the bytes beyond it.
        let mut left = left;
        while left <= 0 {
            left += self.next_interval(mean);
        }
        self.countdown.set(left);
        record(ptr, size, mean);
        self.busy.set(false);
    }

    /// An exponentially distributed interval of mean `mean` bytes (at least 1), as tcmalloc and jemalloc
    /// draw theirs: every byte has the same chance to be the sample point.
    fn next_interval(&self, mean: u64) -> i64 {
        let mut x = self.rng.get();
        if x == 0 {
            x = SEED.fetch_add(0x9e37_79b9_7f4a_7c15, Relaxed) ^ (self as *const Sampler as u64);
            x |= 1;
        }
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        let bits = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        // Uniform in (0, 1].
        let u = (bits as f64 + 1.0) / (1u64 << 53) as f64;
        let interval = -u.ln() * mean as f64;
        (interval as i64).max(1)
    }
}

/// The weights of a sampled allocation of `size` bytes: each byte is a sample point with probability
/// 1/`mean`, so an allocation of `size` bytes is sampled with probability p = 1 − e^(−size/mean), and it
/// stands for 1/p allocations and size/p bytes (unbiased; tcmalloc's estimate).
pub(crate) fn weight(size: u64, mean: u64) -> Weight {
    let p = -(-(size.max(1) as f64) / mean as f64).exp_m1();
    Weight {
        bytes: (size as f64 / p).round() as u64,
        count_milli: (1000.0 / p).round() as u64,
    }
}

/// Captures the stack and adds the sample to its site, and to the live table.
fn record(ptr: usize, size: u64, mean: u64) {
    let mut frames = [0usize; MAX_FRAMES];
    let mut depth = 0;
    // `trace_unsynchronized` is unsafe only because it does not take the backtrace crate's lock (a lock
    // inside the allocator could deadlock against a thread that allocates while holding it). On the
    // platforms we build for it calls the system unwinder (`_Unwind_Backtrace`).
    // SAFETY: that unwinder is thread-safe and never allocates through the Rust global allocator, and
    // the closure only writes into a local array.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            frames[depth] = frame.ip() as usize;
            depth += 1;
            depth < MAX_FRAMES
        });
    }
    SAMPLES.fetch_add(1, Relaxed);
    let w = weight(size, mean);
    if let Some(site) = table::site_of(&frames[..depth]) {
        table::add_sample(site, w);
        table::add_live(ptr, site, w);
    }
}

/// Runs `f` with the calling thread's allocations left unsampled (a report's own allocations: the
/// symbol tables it loads would otherwise show as the program's).
pub(crate) fn unsampled<R>(f: impl FnOnce() -> R) -> R {
    struct Resume(bool);
    impl Drop for Resume {
        fn drop(&mut self) {
            let _ = SAMPLER.try_with(|s| s.paused.set(self.0));
        }
    }
    let _resume = Resume(
        SAMPLER
            .try_with(|s| s.paused.replace(true))
            .unwrap_or(false),
    );
    f()
}

/// Whether the calling thread is inside the sampler (its allocations are passed through unsampled).
#[cfg(test)]
pub(crate) fn busy() -> bool {
    SAMPLER.try_with(|s| s.busy.get()).unwrap_or(false)
}
