//! Tests with `Tracking` as this binary's real `#[global_allocator]`: exact counts, zero-allocation steady
//! states, and per-thread isolation.

use std::{
    alloc::System,
    hint::black_box,
    sync::{
        Barrier,
        atomic::{AtomicBool, Ordering},
    },
};

use flowmem_alloc::{
    AllocationTracker, Arena, ArenaPool, MemoryBudget, MemoryProfiler, Scope, SyncArena, Tracking,
    tracking::{self, SLOT_COUNT},
};

#[global_allocator]
static GLOBAL: Tracking<System> = Tracking::new(System);

/// Held by the tests that reset the process peak (`reset_peak`, and `MemoryProfiler::measure` / `profile`,
/// which call it): run side by side, one's reset could land between another's allocation and its check of
/// the process peak (seen failing `peak_follows_the_largest_live_size` in a CI run).
static PROCESS_PEAK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn process_peak() -> std::sync::MutexGuard<'static, ()> {
    PROCESS_PEAK.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn tracking_reports_itself_installed() {
    assert!(tracking::is_installed());
    assert!(GLOBAL.is_installed());
}

#[test]
fn counts_are_exact_for_a_known_sequence() {
    let before = tracking::thread_stats();
    let mut v: Vec<u8> = Vec::with_capacity(100);
    let b = black_box(Box::new([0u64; 4]));
    v.reserve_exact(1000); // len 0: realloc from 100 to 1000 bytes
    assert_eq!(v.capacity(), 1000);
    drop(black_box(v));
    drop(b);
    let d = tracking::thread_stats().since(&before);
    assert_eq!(
        (d.allocations, d.reallocations, d.deallocations),
        (2, 1, 2),
        "{d:?}"
    );
    assert_eq!(d.bytes_allocated, 100 + 32 + 1000);
    assert_eq!(d.bytes_deallocated, 100 + 1000 + 32);
    assert_eq!(d.current_bytes, 0);
}

/// One request's worth of arena work: small values, strings, a slice, and one large allocation.
fn request(arena: &Arena, n: u64) {
    for i in 0..n {
        black_box(arena.alloc(i));
        black_box(arena.alloc_str("node-name"));
    }
    black_box(arena.alloc_slice_copy(&[1u32; 300]));
    black_box(arena.alloc_zeroed_bytes(100_000));
}

#[test]
fn a_reset_arena_in_steady_state_makes_no_allocation() {
    let mut arena = Arena::new();
    for _ in 0..2 {
        request(&arena, 20_000);
        arena.reset();
    }
    let before = tracking::thread_stats();
    for _ in 0..5 {
        request(&arena, 20_000);
        arena.reset();
    }
    let d = tracking::thread_stats().since(&before);
    assert_eq!(d.allocation_calls(), 0, "{d:?}");
    assert_eq!(d.deallocations, 0, "{d:?}");
}

#[test]
fn sync_arena_and_arena_pool_in_steady_state_make_no_allocation() {
    let mut sync = SyncArena::new();
    let pool = ArenaPool::new(2);
    let cycle = |sync: &mut SyncArena| {
        for i in 0..10_000u64 {
            black_box(sync.alloc(i));
        }
        sync.reset();
        let arena = pool.take();
        request(&arena, 1000);
    };
    cycle(&mut sync);
    cycle(&mut sync);
    let before = tracking::thread_stats();
    for _ in 0..5 {
        cycle(&mut sync);
    }
    let d = tracking::thread_stats().since(&before);
    assert_eq!(d.allocation_calls(), 0, "{d:?}");
}

#[test]
fn other_threads_allocations_do_not_show_in_thread_stats() {
    let go = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let worker = s.spawn(|| {
            while !go.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            let mine = tracking::thread_stats();
            for i in 0..1000 {
                black_box(vec![i as u8; 64]);
            }
            let d = tracking::thread_stats().since(&mine);
            done.store(true, Ordering::Release);
            d
        });
        let before_thread = tracking::thread_stats();
        let before_process = tracking::stats();
        go.store(true, Ordering::Release);
        while !done.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        let here = tracking::thread_stats().since(&before_thread);
        let process = tracking::stats().since(&before_process);
        let there = worker.join().expect("worker did not panic");
        assert_eq!(here.allocation_calls(), 0, "{here:?}");
        assert_eq!((there.allocations, there.bytes_allocated), (1000, 64_000));
        assert!(process.allocations >= 1000, "{process:?}");
    });
}

#[test]
fn counts_of_exited_threads_stay_in_the_process_total() {
    let before = tracking::stats();
    for _ in 0..4 {
        std::thread::spawn(|| {
            for _ in 0..100 {
                black_box(Box::new(1u64));
            }
        })
        .join()
        .expect("no panic");
    }
    let d = tracking::stats().since(&before);
    assert!(d.allocations >= 400 && d.deallocations >= 400, "{d:?}");
}

#[test]
fn threads_beyond_the_slot_count_still_count_exactly() {
    let threads = SLOT_COUNT + 16;
    let barrier = Barrier::new(threads);
    let exact = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = &barrier;
                s.spawn(move || {
                    black_box(Box::new(0u8)); // claim a slot, if one is free
                    barrier.wait(); // every thread alive at once: some have no slot
                    let before = tracking::thread_stats();
                    for _ in 0..10 {
                        black_box(vec![0u8; 10]);
                    }
                    let d = tracking::thread_stats().since(&before);
                    (d.allocations, d.bytes_allocated, d.deallocations) == (10, 100, 10)
                })
            })
            .collect();
        handles.into_iter().all(|h| h.join().expect("no panic"))
    });
    assert!(exact);
}

#[test]
fn peak_follows_the_largest_live_size() {
    let _peak = process_peak();
    tracking::reset_peak();
    let before = tracking::thread_stats();
    let big = black_box(vec![0u8; 4 << 20]);
    drop(big);
    let after = tracking::thread_stats();
    assert!(
        after.peak_bytes - before.current_bytes >= 4 << 20,
        "{before:?} {after:?}"
    );
    assert!(tracking::stats().peak_bytes >= 4 << 20);
}

#[test]
fn allocation_tracker_counts_the_scope() {
    let tracker = AllocationTracker::with_scope("scope", Scope::Thread).quiet();
    black_box(Vec::<u8>::with_capacity(1000));
    let report = tracker.stop();
    let text = report.to_string();
    assert!(
        text.starts_with("[scope] Allocations: 1, Bytes: 1000 (0.00 MB), Duration: "),
        "{text}"
    );
}

#[test]
fn a_snapshot_diff_prints_in_the_seeds_form() {
    let _peak = process_peak();
    let before = MemoryProfiler::thread_snapshot();
    let kept = black_box(vec![0u8; 245_760]);
    let diff = MemoryProfiler::thread_snapshot().diff(&before);
    let text = diff.to_string();
    assert!(
        text.starts_with("Δ Allocations: +1, Δ Bytes: +245760 (+0.23 MB), Duration: "),
        "{text}"
    );
    drop(kept);
    let before = MemoryProfiler::thread_snapshot();
    let freed = MemoryProfiler::thread_snapshot().diff(&before);
    assert!(
        freed
            .to_string()
            .starts_with("Δ Allocations: +0, Δ Bytes: +0 (+0.00 MB)")
    );
    let (v, diff) = MemoryProfiler::measure(Scope::Thread, || vec![1u64; 10]);
    assert_eq!((v.len(), diff.stats.unwrap().allocations), (10, 1));
    drop(v);
}

#[test]
fn profile_returns_the_result_and_the_summary_holds_the_process_figures() {
    let _peak = process_peak();
    let len = MemoryProfiler::profile("expensive_operation", || vec![0u8; 1_000_000].len());
    assert_eq!(len, 1_000_000);
    let value = block_on(MemoryProfiler::profile_async("async_operation", || async {
        vec![1u8; 10].len()
    }));
    assert_eq!(value, 10);
    let summary = MemoryProfiler::summary();
    let stats = summary.stats.expect("Tracking is installed");
    assert!(stats.allocations > 0);
    let text = summary.to_string();
    assert!(text.starts_with("Allocations: "), "{text}");
    assert!(text.contains("Peak: "), "{text}");
}

/// Polls a future that never waits to completion (no runtime needed for it).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[test]
fn memory_budget_catches_growth() {
    let budget = MemoryBudget::new(tracking::stats().current_bytes as u64 + (16 << 20))
        .expect("Tracking is installed");
    assert!(budget.check().is_ok());
    let big = black_box(vec![1u8; 64 << 20]);
    let err = budget.check().unwrap_err();
    assert!(err.current >= 64 << 20, "{err}");
    assert!(err.to_string().contains("memory budget exceeded"));
    drop(big);
}

#[test]
fn prop_memory_released_on_drop() {
    fn prop(sizes: Vec<u16>, block_shift: u8) -> bool {
        let before = tracking::thread_stats();
        {
            let arena = Arena::with_block_size(1024 << (block_shift % 6));
            for s in &sizes {
                black_box(arena.alloc_zeroed_bytes(*s as usize));
            }
        }
        let d = tracking::thread_stats().since(&before);
        d.current_bytes == 0 && d.allocations == d.deallocations
    }
    flowmem_testing::quickcheck(100).quickcheck(prop as fn(Vec<u16>, u8) -> bool);
}
