//! Shared parts of the flowmem benches: the global allocator of the run, the quick mode, and harnesses that
//! time work on several threads.
//!
//! The benches are run by `cargo xtask bench`, which builds this crate once per allocator (`--features
//! jemalloc` / `mimalloc`; none for the system allocator) and collects criterion's estimates into
//! `target/flowmem-bench/report.md`. Benchmark ids are `group/function`; the report's named targets divide
//! one id by another of the same run.

use std::{
    hint::black_box,
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use criterion::Criterion;

pub mod baselines;
pub mod crash;
pub mod dags;
pub mod damage;
pub mod examples;
pub mod faults;
pub mod maps;
pub mod measuring;
pub mod mix;
pub mod objects;
pub mod paired;
pub mod pipeline;
pub mod shared_bench;
pub mod shared_crash;

#[cfg(all(feature = "jemalloc", feature = "mimalloc"))]
compile_error!(
    "choose one global allocator for the benches: feature `jemalloc` or `mimalloc`, not both"
);

#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: flowmem_alloc::Jemalloc = flowmem_alloc::Jemalloc;

#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
#[global_allocator]
static GLOBAL: flowmem_alloc::MiMalloc = flowmem_alloc::MiMalloc;

/// The global allocator these benches run with: `system`, `jemalloc` or `mimalloc`.
pub const ALLOCATOR: &str = if cfg!(feature = "jemalloc") {
    "jemalloc"
} else if cfg!(feature = "mimalloc") {
    "mimalloc"
} else {
    "system"
};

/// Whether `cargo xtask bench --quick` asked for a short tour (`FLOWMEM_BENCH_QUICK=1`).
pub fn quick() -> bool {
    std::env::var_os("FLOWMEM_BENCH_QUICK").is_some_and(|v| v != "0")
}

/// The criterion configuration of every flowmem bench: shorter in quick mode. Command-line options
/// (`--measurement-time`, `--sample-size`, a filter) still apply on top.
pub fn criterion() -> Criterion {
    let c = Criterion::default();
    if quick() {
        c.warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_millis(700))
            .sample_size(10)
    } else {
        c.warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .sample_size(30)
    }
}

/// Runs `work(thread_index, iters)` on `threads` new threads started together, and returns the wall time from
/// their common start to the last one's end. Spawning is not timed: every thread spins until all are ready.
pub fn run_parallel(threads: usize, iters: u64, work: impl Fn(usize, u64) + Sync) -> Duration {
    let (start, _) = together(threads, |t| work(t, iters));
    start.elapsed()
}

/// Runs `work(thread_index)` on `threads` new threads released together once all are running, and returns
/// the moment of release and each thread's result. A thread's panic is carried on to the caller as it was.
pub fn together<T: Send>(threads: usize, work: impl Fn(usize) -> T + Sync) -> (Instant, Vec<T>) {
    let ready = AtomicUsize::new(0);
    let go = AtomicBool::new(false);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (ready, go, work) = (&ready, &go, &work);
                s.spawn(move || {
                    ready.fetch_add(1, Ordering::AcqRel);
                    while !go.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                    work(t)
                })
            })
            .collect();
        while ready.load(Ordering::Acquire) < threads {
            std::thread::yield_now();
        }
        let start = Instant::now();
        go.store(true, Ordering::Release);
        let results = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect();
        (start, results)
    })
}

/// `n` distinct words of 6 to 14 bytes, the same every run (a stand-in for node and key names).
pub fn vocabulary(n: usize) -> Vec<String> {
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "va", "ze", "qui", "dor", "fen", "gal",
        "hob", "jin",
    ];
    (0..n)
        .map(|i| {
            let mut word = String::new();
            let mut x = i * 2_654_435_761 % 1_000_003 + i;
            while word.len() < 6 || x > 0 {
                word.push_str(SYLLABLES[x % 16]);
                x /= 16;
                if word.len() >= 10 {
                    break;
                }
            }
            format!("{word}-{i}")
        })
        .collect()
}

/// A workflow-context-like object for the object-pool benches: a map with room for 32 entries, 8 of them
/// filled per use, keyed by 4-byte ids with a fast hasher (as the engine's contexts are keyed by symbols).
pub type Ctx = std::collections::HashMap<u32, u64, foldhash::fast::FixedState>;

/// An empty [`Ctx`] with its room for 32 entries.
pub fn new_ctx() -> Ctx {
    Ctx::with_capacity_and_hasher(32, foldhash::fast::FixedState::default())
}

/// One use of a [`Ctx`]: its 8 entries written.
pub fn fill(ctx: &mut Ctx) {
    for k in 0..8u32 {
        ctx.insert(keep(k), u64::from(k));
    }
}

/// The words of `words` in a scattered order (each once), for lookups whose hashing and cache misses
/// are realistic.
pub fn probes(words: &[String]) -> Vec<&str> {
    (0..words.len())
        .map(|i| words[(i * 7919) % words.len()].as_str())
        .collect()
}

/// `passes` passes of `op` over `probes` for thread `t` of the `intern_threads` workload (I4): each thread
/// walks all the probes, starting at its own place in them.
pub fn walk_probes(probes: &[&str], t: usize, passes: u64, op: impl Fn(&str)) {
    for _ in 0..passes {
        for k in 0..probes.len() {
            op(probes[(k + t * 5003) % probes.len()]);
        }
    }
}

/// Keeps the optimiser from removing `value` and the work that made it.
#[inline(always)]
pub fn keep<T>(value: T) -> T {
    black_box(value)
}

/// Allocates a `u64`'s block from `allocator` and frees it, `iters` times: the loop of the `tracking`
/// bench group (target A4) and of `examples/tracking_use.rs`, which counts its instructions.
pub fn alloc_free<A: std::alloc::GlobalAlloc>(allocator: &A, iters: u64) {
    let layout = std::alloc::Layout::new::<u64>();
    for _ in 0..iters {
        // SAFETY: `layout` is not zero-sized; the pointer is checked and freed with the same layout.
        unsafe {
            let p = allocator.alloc(layout);
            assert!(!p.is_null());
            keep(p);
            allocator.dealloc(p, layout);
        }
    }
}
