//! Layer 0 benches: false sharing (F1), arena allocation against `Box`, `Vec` and raw bumpalo (A1, A2),
//! `SyncArena` (A3), `Tracking` overhead (A4) and `ArenaPool` (A5).
//!
//! Target ratios are computed by `cargo xtask bench` from the ids below (see `xtask/src/targets.rs`).

use std::{
    alloc::System,
    sync::atomic::{AtomicU64, Ordering},
    time::Instant,
};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use flowmem_alloc::{
    ActivityStats, Arena, ArenaPool, CacheAligned, CachePadded, SyncArena, Tracking,
};
use flowmem_benches::{alloc_free, keep, run_parallel};

/// Allocations between two resets of an arena: 32 KiB of `u64`, so the work stays in cache.
const ROUND: u64 = 4096;

/// Two threads increment a counter each, the two counters adjacent in memory, 128 bytes apart
/// (`CachePadded`), 64 bytes apart (`CacheAligned`), or in an `ActivityStats`.
fn false_sharing(c: &mut Criterion) {
    #[repr(C)]
    struct Adjacent {
        a: AtomicU64,
        b: AtomicU64,
    }
    struct Padded {
        a: CachePadded<AtomicU64>,
        b: CachePadded<AtomicU64>,
    }
    fn hammer(counter: &AtomicU64, iters: u64) {
        for _ in 0..iters {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    let mut group = c.benchmark_group("false_sharing");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(2));
    let adjacent = Adjacent {
        a: AtomicU64::new(0),
        b: AtomicU64::new(0),
    };
    group.bench_function("adjacent", |b| {
        b.iter_custom(|iters| {
            run_parallel(2, iters, |t, n| {
                hammer(if t == 0 { &adjacent.a } else { &adjacent.b }, n)
            })
        })
    });
    let padded = Padded {
        a: CachePadded::new(AtomicU64::new(0)),
        b: CachePadded::new(AtomicU64::new(0)),
    };
    group.bench_function("padded", |b| {
        b.iter_custom(|iters| {
            run_parallel(2, iters, |t, n| {
                hammer(if t == 0 { &padded.a } else { &padded.b }, n)
            })
        })
    });
    // 64-byte alignment (KNHK's `CacheAligned`): neighbours on adjacent lines.
    let aligned = [
        CacheAligned::new(AtomicU64::new(0)),
        CacheAligned::new(AtomicU64::new(0)),
    ];
    group.bench_function("aligned64", |b| {
        b.iter_custom(|iters| run_parallel(2, iters, |t, n| hammer(&aligned[t], n)))
    });
    // `ActivityStats`: one thread counts completions while the other counts failures.
    let stats = ActivityStats::new();
    group.bench_function("activity_stats", |b| {
        b.iter_custom(|iters| {
            run_parallel(2, iters, |t, n| {
                for _ in 0..n {
                    if t == 0 {
                        stats.inc_completed();
                    } else {
                        stats.inc_failed();
                    }
                }
            })
        })
    });
    group.finish();
}

/// Times `iters` allocations made by `round(n)` calls of at most `ROUND / shrink` allocations each, every call
/// ending with its arena's reset.
fn in_rounds(iters: u64, shrink: u64, mut round: impl FnMut(u64)) -> std::time::Duration {
    let start = Instant::now();
    let mut left = iters;
    while left > 0 {
        let n = left.min(ROUND / shrink);
        round(n);
        left -= n;
    }
    start.elapsed()
}

/// One `u64` allocated: in an `Arena` (reset every 4096), in raw bumpalo (same), and in a `Box` (freed).
fn alloc_u64(c: &mut Criterion) {
    let mut group = c.benchmark_group("alloc_u64");
    group.throughput(Throughput::Elements(1));
    group.bench_function("arena", |b| {
        let mut arena = Arena::new();
        b.iter_custom(|iters| {
            in_rounds(iters, 1, |n| {
                for i in 0..n {
                    keep(arena.alloc(keep(i)));
                }
                arena.reset();
            })
        })
    });
    group.bench_function("bumpalo", |b| {
        let mut bump = bumpalo::Bump::new();
        b.iter_custom(|iters| {
            in_rounds(iters, 1, |n| {
                for i in 0..n {
                    keep(bump.alloc(keep(i)));
                }
                bump.reset();
            })
        })
    });
    group.bench_function("box", |b| b.iter(|| keep(Box::new(keep(7u64)))));
    group.finish();

    let mut group = c.benchmark_group("alloc_slice_64b");
    group.throughput(Throughput::Elements(1));
    let src = [7u8; 64];
    group.bench_function("arena", |b| {
        let mut arena = Arena::new();
        b.iter_custom(|iters| {
            in_rounds(iters, 8, |n| {
                for _ in 0..n {
                    keep(arena.alloc_slice_copy(keep(&src[..])));
                }
                arena.reset();
            })
        })
    });
    group.bench_function("vec", |b| b.iter(|| keep(keep(&src[..]).to_vec())));
    group.finish();
}

/// `SyncArena` against `Arena` on one thread, and on one and two threads. No rounds: each sample resets
/// the arena (untimed; it keeps its blocks, so once they have grown to a sample's size no sample touches a
/// new page), then every thread allocates its `iters` values straight through, never waiting for the
/// other — a thread the OS deschedules stretches the wall time (the bench reports such a figure as
/// disturbed) but cannot stall the other.
fn sync_arena(c: &mut Criterion) {
    let mut group = c.benchmark_group("sync_arena");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(1));
    group.bench_function("arena_1t", |b| {
        let mut arena = Arena::new();
        b.iter_custom(|iters| {
            arena.reset();
            let start = Instant::now();
            for i in 0..iters {
                keep(arena.alloc(keep(i)));
            }
            start.elapsed()
        })
    });
    for threads in [1, 2] {
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_function(format!("sync_arena_{threads}t"), |b| {
            let mut arena = SyncArena::new();
            b.iter_custom(|iters| {
                arena.reset();
                let shared = &arena;
                run_parallel(threads, iters, |_, n| {
                    for i in 0..n {
                        keep(shared.alloc(keep(i)));
                    }
                })
            })
        });
    }
    group.finish();
}

/// A `Box<u64>`-sized allocation and free, through `System` and through `Tracking<System>`.
fn tracking(c: &mut Criterion) {
    static TRACKED: Tracking<System> = Tracking::new(System);
    let mut group = c.benchmark_group("tracking");
    group.sampling_mode(SamplingMode::Flat);
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_function(format!("system_{threads}t"), |b| {
            b.iter_custom(|iters| run_parallel(threads, iters, |_, n| alloc_free(&System, n)))
        });
        group.bench_function(format!("tracking_{threads}t"), |b| {
            b.iter_custom(|iters| run_parallel(threads, iters, |_, n| alloc_free(&TRACKED, n)))
        });
    }
    group.finish();
}

/// Taking an arena from an `ArenaPool` (and returning it) against creating and dropping a new one; both
/// allocate once, so both hold a 64 KiB block.
fn arena_pool(c: &mut Criterion) {
    let mut group = c.benchmark_group("arena_pool");
    group.throughput(Throughput::Elements(1));
    let pool = ArenaPool::new(4);
    group.bench_function("take_return", |b| {
        b.iter(|| {
            let arena = pool.take();
            keep(arena.alloc(keep(1u64)));
        })
    });
    group.bench_function("new_drop", |b| {
        b.iter(|| {
            let arena = Arena::new();
            keep(arena.alloc(keep(1u64)));
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = flowmem_benches::criterion();
    targets = false_sharing, alloc_u64, sync_arena, tracking, arena_pool
}
criterion_main!(benches);
