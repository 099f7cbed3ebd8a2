//! [`Tracking`]: a `GlobalAlloc` wrapper that counts allocations, and the functions that read its counts.
//!
//! # How it counts
//!
//! Each thread claims one of [`SLOT_COUNT`] static, cache-padded slots on its first allocation and is the only
//! writer of that slot's counters: a count is a relaxed load and store, never a contended read-modify-write.
//! [`stats`] sums the slots. A slot outlives its thread (the next thread to claim it adds on top), so the sums
//! are exact process totals. [`thread_stats`] is the calling thread's slot minus its value at claim, exact
//! for that thread. Threads beyond [`SLOT_COUNT`], or allocating while their thread-local state is being
//! torn down, count into one shared slot with atomic adds (still exact, just slower).
//!
//! Current bytes are exact (allocated minus freed, summed at read). Peaks need a running maximum, which
//! per-operation bookkeeping would make expensive: instead a thread publishes its live bytes (to its own
//! peak and to the process total and peak) whenever its allocated or freed byte count crosses a multiple
//! of [`PEAK_GRANULARITY`]. Peaks are thus sampled: low by at most about that much per thread.
//!
//! Nothing here allocates or locks, so the allocator cannot re-enter itself. The one platform assumption:
//! registering the thread-exit hook of a thread's state must not allocate through the Rust global allocator
//! (true with glibc and on macOS, which register through the C library).

use std::{
    alloc::{GlobalAlloc, Layout},
    cell::Cell,
    fmt,
    hint::black_box,
    sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, AtomicUsize, Ordering::*},
};

use crossbeam_utils::CachePadded;

/// Number of per-thread counter slots; threads beyond it share one slot with atomic adds.
pub const SLOT_COUNT: usize = 256;

/// Peaks are sampled each time a thread's allocated or freed byte count crosses a multiple of this.
pub const PEAK_GRANULARITY: u64 = 64 * 1024;

/// A `GlobalAlloc` that counts every allocation, deallocation and reallocation made through it, then
/// forwards to the allocator `A`.
///
/// Install it in the binary (the library never does), around the allocator of your choice:
///
/// ```
/// use flowmem_alloc::{System, Tracking};
///
/// #[global_allocator]
/// static GLOBAL: Tracking<System> = Tracking::new(System);
///
/// fn main() {
///     assert!(flowmem_alloc::tracking::is_installed());
///     let before = flowmem_alloc::tracking::thread_stats();
///     let v = vec![0u8; 1000];
///     let after = flowmem_alloc::tracking::thread_stats();
///     assert_eq!(after.since(&before).allocations, 1);
///     assert_eq!(after.since(&before).bytes_allocated, 1000);
///     drop(v);
/// }
/// ```
///
/// All `Tracking` values share one set of counters (a program has one global allocator). The overhead is a
/// few relaxed loads and stores per call; the bench report gives the measured cost (target A4).
pub struct Tracking<A> {
    inner: A,
}

impl<A> Tracking<A> {
    /// Wraps `inner`. `const`, for use in a `static`.
    pub const fn new(inner: A) -> Tracking<A> {
        Tracking { inner }
    }

    /// The wrapped allocator.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    /// Process-wide counts: see [`stats`].
    pub fn stats(&self) -> AllocStats {
        stats()
    }

    /// The calling thread's counts: see [`thread_stats`].
    pub fn thread_stats(&self) -> AllocStats {
        thread_stats()
    }

    /// Whether a `Tracking` is the program's global allocator: see [`is_installed`].
    pub fn is_installed(&self) -> bool {
        is_installed()
    }
}

impl<A> fmt::Debug for Tracking<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracking")
            .field("allocator", &std::any::type_name::<A>())
            .field("stats", &stats())
            .finish()
    }
}

// SAFETY: every method forwards to `A` with the caller's arguments unchanged and returns `A`'s result, so
// `Tracking<A>` upholds exactly the contract `A` upholds. The counting around the calls (and the site
// sampling, `crate::sites`) never allocates, never unwinds and touches only atomics, static tables and
// this thread's state.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Tracking<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is `A::alloc`'s.
        let ptr = unsafe { self.inner.alloc(layout) };
        if !ptr.is_null() {
            record(Event::Alloc, layout.size() as u64);
            crate::sites::on_alloc(ptr, layout.size() as u64);
        }
        ptr
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract, which is `A::alloc_zeroed`'s.
        let ptr = unsafe { self.inner.alloc_zeroed(layout) };
        if !ptr.is_null() {
            record(Event::Alloc, layout.size() as u64);
            crate::sites::on_alloc(ptr, layout.size() as u64);
        }
        ptr
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        record(Event::Dealloc, layout.size() as u64);
        crate::sites::on_free(ptr);
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract: `ptr` came from this allocator (so
        // from `A`) with `layout`.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract: `ptr` came from this allocator (so
        // from `A`) with `layout`, and `new_size` is valid for `layout.align()`.
        let new = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // The old block is gone (or is the new one): a sample of it is no longer live; the new size
            // counts against the countdown as a new allocation would.
            crate::sites::on_free(ptr);
            crate::sites::on_alloc(new, new_size as u64);
            record(
                Event::Realloc {
                    old: layout.size() as u64,
                },
                new_size as u64,
            );
        }
        new
    }
}

/// Counts of allocator calls, from [`stats`], [`thread_stats`] or [`AllocStats::since`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AllocStats {
    /// Calls to `alloc` and `alloc_zeroed`.
    pub allocations: u64,
    /// Calls to `dealloc`.
    pub deallocations: u64,
    /// Calls to `realloc`.
    pub reallocations: u64,
    /// Bytes asked for by `alloc`, `alloc_zeroed`, and the new size of each `realloc`.
    pub bytes_allocated: u64,
    /// Bytes given back by `dealloc`, and the old size of each `realloc`.
    pub bytes_deallocated: u64,
    /// Bytes allocated and not yet freed. For a thread: what it allocated minus what it freed, which is
    /// negative when it frees memory other threads allocated.
    pub current_bytes: i64,
    /// Highest `current_bytes` seen, sampled (low by at most about [`PEAK_GRANULARITY`] per thread).
    pub peak_bytes: i64,
}

impl AllocStats {
    /// The counts between `earlier` and `self` (the peak is `self`'s).
    ///
    /// ```
    /// let before = flowmem_alloc::tracking::thread_stats();
    /// let after = flowmem_alloc::tracking::thread_stats();
    /// assert_eq!(after.since(&before).allocations, 0);
    /// ```
    pub fn since(&self, earlier: &AllocStats) -> AllocStats {
        AllocStats {
            allocations: self.allocations.wrapping_sub(earlier.allocations),
            deallocations: self.deallocations.wrapping_sub(earlier.deallocations),
            reallocations: self.reallocations.wrapping_sub(earlier.reallocations),
            bytes_allocated: self.bytes_allocated.wrapping_sub(earlier.bytes_allocated),
            bytes_deallocated: self
                .bytes_deallocated
                .wrapping_sub(earlier.bytes_deallocated),
            current_bytes: self.current_bytes - earlier.current_bytes,
            peak_bytes: self.peak_bytes,
        }
    }

    /// Allocations plus reallocations: every call that may have asked the system for memory.
    pub fn allocation_calls(&self) -> u64 {
        self.allocations + self.reallocations
    }
}

/// Process-wide counts of every allocator call made through [`Tracking`], summed over all threads (living or
/// exited). All zeros when no `Tracking` is in use; see [`is_installed`].
pub fn stats() -> AllocStats {
    let mut total = SHARED.load();
    for slot in &SLOTS {
        total.add(&slot.load());
    }
    let current = total.bytes_allocated as i64 - total.bytes_deallocated as i64;
    AllocStats {
        allocations: total.allocations,
        deallocations: total.deallocations,
        reallocations: total.reallocations,
        bytes_allocated: total.bytes_allocated,
        bytes_deallocated: total.bytes_deallocated,
        current_bytes: current,
        peak_bytes: PEAK.load(Relaxed).max(current),
    }
}

/// Counts of the allocator calls the calling thread made through [`Tracking`] since it started. Exact: other
/// threads' calls never show here, so a before/after pair proves that code allocated nothing.
pub fn thread_stats() -> AllocStats {
    STATE.try_with(ThreadState::stats).unwrap_or_default()
}

/// Sets the process peak and the calling thread's peak to their current byte counts, to measure the peak of
/// what comes next.
pub fn reset_peak() {
    let current = stats().current_bytes;
    PEAK.store(current.max(0), Relaxed);
    let _ = STATE.try_with(|s| s.peak.set(s.live()));
}

/// Whether a [`Tracking`] is the program's global allocator.
///
/// Found out once, by allocating a byte and watching whether this thread's counts move; then cached.
pub fn is_installed() -> bool {
    match INSTALLED.load(Relaxed) {
        INSTALLED_YES => return true,
        INSTALLED_NO => return false,
        _ => {}
    }
    let Ok(before) = STATE.try_with(ThreadState::stats) else {
        return false;
    };
    drop(black_box(Box::new(black_box(0u8))));
    let after = thread_stats();
    let installed = after.allocations > before.allocations;
    INSTALLED.store(
        if installed {
            INSTALLED_YES
        } else {
            INSTALLED_NO
        },
        Relaxed,
    );
    installed
}

const INSTALLED_YES: u8 = 1;
const INSTALLED_NO: u8 = 2;
static INSTALLED: AtomicU8 = AtomicU8::new(0);

/// One allocator call.
#[derive(Clone, Copy)]
enum Event {
    Alloc,
    Dealloc,
    Realloc { old: u64 },
}

/// Plain counts, for sums and differences.
#[derive(Clone, Copy, Default)]
struct Counts {
    allocations: u64,
    deallocations: u64,
    reallocations: u64,
    bytes_allocated: u64,
    bytes_deallocated: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.allocations = self.allocations.wrapping_add(other.allocations);
        self.deallocations = self.deallocations.wrapping_add(other.deallocations);
        self.reallocations = self.reallocations.wrapping_add(other.reallocations);
        self.bytes_allocated = self.bytes_allocated.wrapping_add(other.bytes_allocated);
        self.bytes_deallocated = self.bytes_deallocated.wrapping_add(other.bytes_deallocated);
    }

    fn sub(&self, other: &Counts) -> Counts {
        Counts {
            allocations: self.allocations.wrapping_sub(other.allocations),
            deallocations: self.deallocations.wrapping_sub(other.deallocations),
            reallocations: self.reallocations.wrapping_sub(other.reallocations),
            bytes_allocated: self.bytes_allocated.wrapping_sub(other.bytes_allocated),
            bytes_deallocated: self.bytes_deallocated.wrapping_sub(other.bytes_deallocated),
        }
    }

    fn record(&mut self, event: Event, size: u64) {
        match event {
            Event::Alloc => {
                self.allocations += 1;
                self.bytes_allocated += size;
            }
            Event::Dealloc => {
                self.deallocations += 1;
                self.bytes_deallocated += size;
            }
            Event::Realloc { old } => {
                self.reallocations += 1;
                self.bytes_allocated += size;
                self.bytes_deallocated += old;
            }
        }
    }
}

/// Counters of one thread (or, for [`SHARED`], of many).
struct Slot {
    claimed: AtomicBool,
    allocations: AtomicU64,
    deallocations: AtomicU64,
    reallocations: AtomicU64,
    bytes_allocated: AtomicU64,
    bytes_deallocated: AtomicU64,
}

/// Adds `n` to a counter that only the calling thread writes: a load and a store, no locked instruction.
/// Returns whether the counter crossed a multiple of [`PEAK_GRANULARITY`].
#[inline(always)]
fn bump_owned(counter: &AtomicU64, n: u64) -> bool {
    let old = counter.load(Relaxed);
    let new = old.wrapping_add(n);
    counter.store(new, Relaxed);
    old / PEAK_GRANULARITY != new / PEAK_GRANULARITY
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            claimed: AtomicBool::new(false),
            allocations: AtomicU64::new(0),
            deallocations: AtomicU64::new(0),
            reallocations: AtomicU64::new(0),
            bytes_allocated: AtomicU64::new(0),
            bytes_deallocated: AtomicU64::new(0),
        }
    }

    fn load(&self) -> Counts {
        Counts {
            allocations: self.allocations.load(Relaxed),
            deallocations: self.deallocations.load(Relaxed),
            reallocations: self.reallocations.load(Relaxed),
            bytes_allocated: self.bytes_allocated.load(Relaxed),
            bytes_deallocated: self.bytes_deallocated.load(Relaxed),
        }
    }

    /// Counts an event in a slot this thread owns; returns whether a byte count crossed a multiple of
    /// [`PEAK_GRANULARITY`].
    #[inline(always)]
    fn record_owned(&self, event: Event, size: u64) -> bool {
        match event {
            Event::Alloc => {
                bump_owned(&self.allocations, 1);
                bump_owned(&self.bytes_allocated, size)
            }
            Event::Dealloc => {
                bump_owned(&self.deallocations, 1);
                bump_owned(&self.bytes_deallocated, size)
            }
            Event::Realloc { old } => {
                bump_owned(&self.reallocations, 1);
                bump_owned(&self.bytes_allocated, size) | bump_owned(&self.bytes_deallocated, old)
            }
        }
    }

    /// Counts an event in a slot many threads write.
    fn record_shared(&self, event: Event, size: u64) {
        match event {
            Event::Alloc => {
                self.allocations.fetch_add(1, Relaxed);
                self.bytes_allocated.fetch_add(size, Relaxed);
            }
            Event::Dealloc => {
                self.deallocations.fetch_add(1, Relaxed);
                self.bytes_deallocated.fetch_add(size, Relaxed);
            }
            Event::Realloc { old } => {
                self.reallocations.fetch_add(1, Relaxed);
                self.bytes_allocated.fetch_add(size, Relaxed);
                self.bytes_deallocated.fetch_add(old, Relaxed);
            }
        }
    }
}

static SLOTS: [CachePadded<Slot>; SLOT_COUNT] =
    [const { CachePadded::new(Slot::new()) }; SLOT_COUNT];
/// Counters of threads that have no slot.
static SHARED: CachePadded<Slot> = CachePadded::new(Slot::new());
/// Where the next slot search starts.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);
/// Net bytes published by threads (see [`PEAK_GRANULARITY`]).
static PUBLISHED: AtomicI64 = AtomicI64::new(0);
/// Highest value `PUBLISHED` reached.
static PEAK: AtomicI64 = AtomicI64::new(0);

/// The calling thread's tracking state (its slot is in [`OWNED`]).
struct ThreadState {
    /// Whether a claim was tried and no slot was free.
    slotless: Cell<bool>,
    /// The slot's counts when this thread claimed it.
    base: Cell<Counts>,
    /// This thread's counts when it has no slot.
    own: Cell<Counts>,
    /// Highest live byte count sampled.
    peak: Cell<i64>,
    /// Live byte count as last added to `PUBLISHED`.
    published: Cell<i64>,
}

thread_local! {
    static STATE: ThreadState = const {
        ThreadState {
            slotless: Cell::new(false),
            base: Cell::new(Counts {
                allocations: 0,
                deallocations: 0,
                reallocations: 0,
                bytes_allocated: 0,
                bytes_deallocated: 0,
            }),
            own: Cell::new(Counts {
                allocations: 0,
                deallocations: 0,
                reallocations: 0,
                bytes_allocated: 0,
                bytes_deallocated: 0,
            }),
            peak: Cell::new(0),
            published: Cell::new(0),
        }
    };
}

thread_local! {
    /// The slot the calling thread owns, once claimed; cleared when its [`STATE`] is dropped. Apart from
    /// `STATE` because it has no destructor: reading it is one load, with no check of whether the
    /// thread-local is alive or torn down, which every allocator call would otherwise pay
    /// (benches/examples/tracking_use.rs: six instructions an allocation and its free).
    static OWNED: Cell<Option<&'static Slot>> = const { Cell::new(None) };
}

/// The calling thread's slot, if it owns one.
#[inline(always)]
fn owned() -> Option<&'static Slot> {
    // No destructor: the access never fails (and `None` would only send the call to the slow path).
    OWNED.try_with(Cell::get).ok().flatten()
}

#[inline(always)]
fn record(event: Event, size: u64) {
    match owned() {
        Some(slot) => {
            if slot.record_owned(event, size) {
                // A byte count crossed a multiple of PEAK_GRANULARITY: sample the peaks. (Not during
                // teardown: `OWNED` is cleared when `STATE` goes.)
                let _ = STATE.try_with(ThreadState::publish);
            }
        }
        None => record_unowned(event, size),
    }
}

/// [`record`] for a thread without a slot: its first call (which claims one), a thread beyond
/// [`SLOT_COUNT`], or a thread whose state is gone (allocation during thread teardown).
#[cold]
#[inline(never)]
fn record_unowned(event: Event, size: u64) {
    let recorded = STATE.try_with(|s| {
        if s.record_unclaimed(event, size) {
            s.publish();
        }
    });
    if recorded.is_err() {
        SHARED.record_shared(event, size);
    }
}

impl ThreadState {
    fn record_unclaimed(&self, event: Event, size: u64) -> bool {
        match self.claim() {
            Some(slot) => slot.record_owned(event, size),
            None => {
                SHARED.record_shared(event, size);
                let mut own = self.own.get();
                let before = own;
                own.record(event, size);
                self.own.set(own);
                before.bytes_allocated / PEAK_GRANULARITY != own.bytes_allocated / PEAK_GRANULARITY
                    || before.bytes_deallocated / PEAK_GRANULARITY
                        != own.bytes_deallocated / PEAK_GRANULARITY
            }
        }
    }

    /// This thread's counts since it started.
    fn counts(&self) -> Counts {
        match owned() {
            Some(slot) => slot.load().sub(&self.base.get()),
            None => self.own.get(),
        }
    }

    /// Bytes this thread allocated minus bytes it freed.
    fn live(&self) -> i64 {
        let c = self.counts();
        c.bytes_allocated as i64 - c.bytes_deallocated as i64
    }

    /// Samples the live byte count into this thread's peak and the process total and peak.
    #[cold]
    #[inline(never)]
    fn publish(&self) {
        let live = self.live();
        if live > self.peak.get() {
            self.peak.set(live);
        }
        publish(live - self.published.get());
        self.published.set(live);
    }

    /// Claims a free slot, once per thread.
    fn claim(&self) -> Option<&'static Slot> {
        if self.slotless.get() {
            return None;
        }
        let start = NEXT_SLOT.load(Relaxed);
        for i in 0..SLOT_COUNT {
            let slot: &'static Slot = &SLOTS[(start + i) % SLOT_COUNT];
            if !slot.claimed.load(Relaxed)
                && slot
                    .claimed
                    .compare_exchange(false, true, Acquire, Relaxed)
                    .is_ok()
            {
                NEXT_SLOT.store((start + i + 1) % SLOT_COUNT, Relaxed);
                self.base.set(slot.load());
                let _ = OWNED.try_with(|o| o.set(Some(slot)));
                return Some(slot);
            }
        }
        self.slotless.set(true);
        None
    }

    fn stats(&self) -> AllocStats {
        let counts = self.counts();
        let live = counts.bytes_allocated as i64 - counts.bytes_deallocated as i64;
        AllocStats {
            allocations: counts.allocations,
            deallocations: counts.deallocations,
            reallocations: counts.reallocations,
            bytes_allocated: counts.bytes_allocated,
            bytes_deallocated: counts.bytes_deallocated,
            current_bytes: live,
            peak_bytes: self.peak.get().max(live),
        }
    }
}

fn publish(delta: i64) {
    let now = PUBLISHED.fetch_add(delta, Relaxed) + delta;
    PEAK.fetch_max(now, Relaxed);
}

impl Drop for ThreadState {
    fn drop(&mut self) {
        self.publish();
        // From here on this thread's calls go to `SHARED` (`STATE` is gone).
        if let Some(slot) = OWNED.try_with(Cell::take).ok().flatten() {
            // The next owner's writes must come after ours: Release pairs with the claim's Acquire.
            slot.claimed.store(false, Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The unit tests call `Tracking` directly (it is not this test binary's global allocator); the tests
    // with it installed are in `tests/tracking_installed.rs`.
    static DIRECT: Tracking<std::alloc::System> = Tracking::new(std::alloc::System);

    #[test]
    fn direct_calls_are_counted_for_this_thread() {
        let before = thread_stats();
        let layout = Layout::from_size_align(100, 8).unwrap();
        // SAFETY: a non-zero-sized layout; the pointer is checked, grown with the same layout, then freed
        // with the layout of its new size.
        unsafe {
            let p = DIRECT.alloc(layout);
            assert!(!p.is_null());
            let p = DIRECT.realloc(p, layout, 300);
            assert!(!p.is_null());
            DIRECT.dealloc(p, Layout::from_size_align(300, 8).unwrap());
        }
        let d = thread_stats().since(&before);
        assert_eq!((d.allocations, d.reallocations, d.deallocations), (1, 1, 1));
        assert_eq!((d.bytes_allocated, d.bytes_deallocated), (400, 400));
        assert_eq!(d.current_bytes, 0);
        assert!(!is_installed(), "the test binary uses the system allocator");
    }

    #[test]
    fn exited_threads_counts_stay_in_the_process_total() {
        let before = stats();
        std::thread::spawn(|| {
            let layout = Layout::from_size_align(64, 8).unwrap();
            for _ in 0..10 {
                // SAFETY: a non-zero-sized layout, freed with the same layout.
                unsafe {
                    let p = DIRECT.alloc(layout);
                    DIRECT.dealloc(p, layout);
                }
            }
        })
        .join()
        .unwrap();
        let d = stats().since(&before);
        assert!(d.allocations >= 10 && d.deallocations >= 10, "{d:?}");
    }
}
