//! Concurrency stress tests with real threads. Each runs briefly in the default `cargo test`; the
//! `_long` twins run at full scale under `cargo xtask stress`.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use flowmem_alloc::{ArenaPool, Counters, PaddedCounter, SyncArena};

fn sync_arena_cycles(threads: u64, per_thread: u64, cycles: u64) {
    let mut arena = SyncArena::with_block_size(4096);
    for cycle in 0..cycles {
        std::thread::scope(|s| {
            for t in 0..threads {
                let arena = &arena;
                s.spawn(move || {
                    let base = (cycle << 40) | (t << 32);
                    let values: Vec<&u64> =
                        (0..per_thread).map(|i| &*arena.alloc(base | i)).collect();
                    let names: Vec<&str> = (0..per_thread / 16)
                        .map(|i| arena.alloc_str(&format!("t{t}-c{cycle}-{i}")))
                        .collect();
                    for (i, v) in values.iter().enumerate() {
                        assert_eq!(**v, base | i as u64);
                    }
                    for (i, n) in names.iter().enumerate() {
                        assert_eq!(*n, format!("t{t}-c{cycle}-{i}"));
                    }
                });
            }
        });
        let stats = arena.stats();
        assert!(
            stats.bytes_used >= (threads * per_thread * 8) as usize,
            "{stats:?}"
        );
        arena.reset();
        assert_eq!(arena.stats().bytes_used, 0);
    }
}

fn arena_pool_churn(threads: u64, per_thread: u64, max_pooled: usize) {
    let pool = ArenaPool::with_block_size(max_pooled, 4096);
    let deadline = Instant::now() + Duration::from_secs(60);
    std::thread::scope(|s| {
        for t in 0..threads {
            let pool = &pool;
            s.spawn(move || {
                let mut held = Vec::new();
                for i in 0..per_thread {
                    let arena = pool.take();
                    assert_eq!(arena.bytes_used(), 0, "a pooled arena comes back reset");
                    let v = arena.alloc(t * 1_000_000 + i);
                    assert_eq!(*v, t * 1_000_000 + i);
                    // Sometimes hold a few, so that arenas travel through the shared queue.
                    if i % 7 == 0 {
                        held.push(arena);
                    }
                    if held.len() > 3 {
                        held.clear();
                    }
                    assert!(Instant::now() < deadline, "churn took over a minute");
                }
            });
        }
    });
    let stats = pool.stats();
    // A thread creates an arena only when its own slot and the shared queue are empty, so every arena
    // then is held (at most 5 per thread: 4 kept + 1 in hand) or idle in a thread's slot (at most 1 each).
    // The queue has room for all of them: nothing is dropped, and creation is bounded by what is held at
    // once, not by the number of takes.
    assert_eq!(stats.dropped, 0, "{stats:?}");
    assert!(stats.created <= threads * 6, "{stats:?}");
    assert!(stats.idle_shared <= max_pooled);
}

fn counters_sum(threads: u64, per_thread: u64) {
    let counters = Counters::new(["a", "b", "c"]);
    let single = PaddedCounter::new(0);
    let seen = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (counters, single, seen) = (&counters, &single, &seen);
            s.spawn(move || {
                for _ in 0..per_thread {
                    counters.add((t % 3) as usize, 2);
                    counters.sub((t % 3) as usize, 1);
                    single.increment();
                }
                seen.fetch_add(per_thread, Ordering::Relaxed);
            });
        }
    });
    let total: u64 = counters.snapshot().values().iter().sum();
    assert_eq!(total, threads * per_thread);
    assert_eq!(single.get(), seen.load(Ordering::Relaxed));
}

#[test]
fn sync_arena_under_threads() {
    sync_arena_cycles(4, flowmem_testing::iterations(20_000), 3);
}

#[test]
#[ignore = "long stress run: cargo xtask stress"]
fn sync_arena_under_threads_long() {
    sync_arena_cycles(8, 1_000_000, 20);
}

#[test]
fn arena_pool_under_threads() {
    arena_pool_churn(4, flowmem_testing::iterations(20_000), 4 * 6);
}

#[test]
#[ignore = "long stress run: cargo xtask stress"]
fn arena_pool_under_threads_long() {
    arena_pool_churn(16, 2_000_000, 16 * 6);
}

#[test]
fn counters_under_threads() {
    counters_sum(4, flowmem_testing::iterations(100_000));
}

#[test]
#[ignore = "long stress run: cargo xtask stress"]
fn counters_under_threads_long() {
    counters_sum(16, 10_000_000);
}
