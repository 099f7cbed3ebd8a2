//! Ratios the targets take from alternating runs (`flowmem_benches::paired`) rather than from criterion
//! groups, printed as JSON lines for `cargo xtask bench`:
//! `{"layer": "map", "allocator": "system", "id": "paired/exchange/scc_2t", "median": 0.93, "low": 0.88,
//! "high": 0.97, "rounds": 21, "what": "..."}`.
//!
//! `paired [LAYER...] [--filter SUBSTRING]`; no layer means all: `alloc` (A4.2t), `intern` (I1, I3, I4,
//! I7), `map` (M1-M4, M6, M7) and `pool` (P6, P7, P8). Runs under the global allocator its build chose (`--features jemalloc` /
//! `mimalloc`; `cargo xtask bench` builds it once per allocator a target needs). Around each ratio's
//! rounds it writes criterion's progress lines to standard error, from which `cargo xtask bench` tells
//! whether other processes took CPU meanwhile (and then measures the ratio again).

use std::{
    alloc::System,
    collections::HashMap,
    hash::RandomState,
    sync::RwLock,
    time::{Duration, Instant},
};

use dashmap::DashMap;
use flowmem_alloc::Tracking;
use flowmem_benches::{
    alloc_free, keep,
    maps::{BenchMap, Lookups, Papaya, Scc, Spec, WORKLOADS},
    measuring::MeasuringArgs,
    objects::{ObjectPools, PoolUse},
    paired::{Paired, alternate},
    pipeline::{P6_SIZE, pool_pipeline, vec_pipeline},
    probes, run_parallel, vocabulary, walk_probes,
};
use flowmem_intern::StringPool;
use flowmem_map::{ConcurrentMap, ReadMap};
use flowmem_pool::BufferPool;
use lasso::{Spur, ThreadedRodeo};
use string_interner::{StringInterner, backend::BufferBackend};

/// Rounds of a ratio, each one run of either side.
fn rounds() -> usize {
    if flowmem_benches::quick() { 11 } else { 21 }
}

struct Out {
    args: MeasuringArgs,
}

impl Out {
    /// Whether `id` passes the filter.
    fn wants(&self, id: &str) -> bool {
        self.args.wants(id)
    }

    /// Measures `id` and prints its line. The measurement is bracketed by criterion's progress lines on
    /// standard error (`Benchmarking ID: Collecting …`, `Benchmarking ID: Analyzing`), from which
    /// `cargo xtask bench` shows its progress and works out the CPU other processes took meanwhile: a
    /// ratio measured while they took a core is measured again, as a criterion figure is.
    fn emit(&self, layer: &str, id: &str, what: &str, measure: impl FnOnce() -> Paired) {
        // The rounds are the ratio's own (I4 takes more than `rounds()`): its JSON line says how many.
        eprintln!("Benchmarking {id}: Collecting alternating rounds");
        let p = measure();
        eprintln!("Benchmarking {id}: Analyzing");
        println!(
            "{}",
            serde_json::json!({
                "layer": layer,
                "allocator": flowmem_benches::ALLOCATOR,
                "id": id,
                "median": p.median,
                "low": p.low,
                "high": p.high,
                "rounds": p.rounds,
                "first_ms": p.first.as_secs_f64() * 1e3,
                "second_ms": p.second.as_secs_f64() * 1e3,
                "what": what,
            })
        );
    }
}

/// `ConcurrentMap` against `M` on `spec`'s workload, `threads` threads.
fn map_ratio<M: BenchMap>(spec: &Spec, threads: usize) -> Paired {
    alternate(
        rounds(),
        || spec.runs::<ConcurrentMap<u64, u64>>(threads, 1),
        || spec.runs::<M>(threads, 1),
    )
}

/// The workload comparisons: `ConcurrentMap` against papaya and scc on every workload, one and two threads
/// (M6 is the two-thread ones), against `RwLock<HashMap>` on ReadHeavy (M1), raw dashmap on ReadHeavy, one
/// thread (M2), and raw dashmap on Exchange and RapidGrow (M3), two threads.
const COMPARISONS: &[(&str, &str, usize)] = &[
    ("read_heavy", "papaya", 1),
    ("read_heavy", "scc", 1),
    ("read_heavy", "papaya", 2),
    ("read_heavy", "scc", 2),
    ("read_heavy", "rwlock_std", 2),
    ("read_heavy", "dashmap_std", 1),
    ("exchange", "papaya", 1),
    ("exchange", "scc", 1),
    ("exchange", "papaya", 2),
    ("exchange", "scc", 2),
    ("exchange", "dashmap_std", 2),
    ("rapid_grow", "papaya", 1),
    ("rapid_grow", "scc", 1),
    ("rapid_grow", "papaya", 2),
    ("rapid_grow", "scc", 2),
    ("rapid_grow", "dashmap_std", 2),
];

/// The maps whose two-thread runs give a target its figure (M1, M3, M6), checked for credibility (M7).
const SCALING_MAPS: &[&str] = &[
    "concurrent_map",
    "dashmap_std",
    "rwlock_std",
    "papaya",
    "scc",
];

/// M7: `M` on `spec`'s workload on two threads against the same on one thread, alternating; the ratio is
/// the two-thread throughput over twice the one-thread throughput (two threads do the same operations in
/// all as one), which two cores cannot take much above 1.
fn scaling<M: BenchMap>(spec: &Spec) -> Paired {
    alternate(rounds(), || spec.runs::<M>(2, 1), || spec.runs::<M>(1, 1)).scaled(0.5)
}

/// Read-only lookups a run of M4, on each thread.
fn lookups_per_run() -> u64 {
    if flowmem_benches::quick() {
        1 << 18
    } else {
        1 << 20
    }
}

/// M1, M2, M3, M6 (`COMPARISONS`), M7 (each map's two threads against its one, `SCALING_MAPS`) and M4
/// (`ReadMap` against `ConcurrentMap`, read-only lookups, two threads).
fn map(out: &Out) {
    for &(workload, peer, threads) in COMPARISONS {
        let id = format!("paired/{workload}/{peer}_{threads}t");
        if !out.wants(&id) {
            continue;
        }
        let spec = Spec::named(workload).expect("COMPARISONS names known workloads");
        let what = format!(
            "ConcurrentMap / {peer} throughput, {workload}, {threads} thread(s), alternating runs"
        );
        out.emit("map", &id, &what, || match peer {
            "papaya" => map_ratio::<Papaya>(spec, threads),
            "scc" => map_ratio::<Scc>(spec, threads),
            "rwlock_std" => map_ratio::<RwLock<HashMap<u64, u64>>>(spec, threads),
            "dashmap_std" => map_ratio::<DashMap<u64, u64, RandomState>>(spec, threads),
            other => unreachable!("no map {other:?} in COMPARISONS"),
        });
    }
    for spec in &WORKLOADS {
        for &name in SCALING_MAPS {
            let id = format!("paired/scaling/{}/{name}", spec.name);
            if !out.wants(&id) {
                continue;
            }
            let what = format!(
                "{name} two-thread throughput / (2 x its one-thread throughput), {}, alternating runs",
                spec.name
            );
            out.emit("map", &id, &what, || match name {
                "concurrent_map" => scaling::<ConcurrentMap<u64, u64>>(spec),
                "dashmap_std" => scaling::<DashMap<u64, u64, RandomState>>(spec),
                "rwlock_std" => scaling::<RwLock<HashMap<u64, u64>>>(spec),
                "papaya" => scaling::<Papaya>(spec),
                "scc" => scaling::<Scc>(spec),
                other => unreachable!("no map {other:?} in SCALING_MAPS"),
            });
        }
    }
    let id = "paired/read_only/read_map_2t";
    if out.wants(id) {
        let lookups = Lookups::new();
        let read_map: ReadMap<u64, u64> = lookups.present().iter().map(|k| (*k, *k)).collect();
        let concurrent: ConcurrentMap<u64, u64> =
            lookups.present().iter().map(|k| (*k, *k)).collect();
        let n = lookups_per_run();
        let what = format!(
            "ReadMap / ConcurrentMap throughput, read-only lookups ({n} a thread a run), 2 threads, alternating runs"
        );
        out.emit("map", id, &what, || {
            alternate(
                rounds(),
                || lookups.run(2, n, &|k| read_map.get(&k)),
                || lookups.run(2, n, &|k| concurrent.get(&k)),
            )
        });
    }
}

/// Buffers through the pipeline per run of P6: 5–10 ms a run.
const P6_BUFFERS: u64 = 20_000;

/// P6: the producer/consumer pipeline of 64 KiB buffers, `BufferPool` against `Vec::with_capacity`. The
/// ratio is the pool's time over `Vec`'s (P6 is a time ratio, below 1 when the pool is faster).
fn pool(out: &Out) {
    let id = "paired/buffer_pipeline/pool_64k";
    if !out.wants(id) {
        return;
    }
    let pool = BufferPool::new();
    let what = format!(
        "BufferPool / Vec::with_capacity time, producer/consumer pipeline of {P6_BUFFERS} 64 KiB buffers a run, alternating runs"
    );
    out.emit("pool", id, &what, || {
        alternate(
            rounds(),
            || vec_pipeline(P6_SIZE, P6_BUFFERS),
            || pool_pipeline(&pool, P6_SIZE, P6_BUFFERS),
        )
    });
}

/// Uses on each thread per run of P8: a run of ours takes 5–10 ms, a peer's 10–40 ms.
const P8_USES: u64 = 200_000;

/// Uses per run of P7 (one thread): 20–30 ms a run, either pool.
const P7_USES: u64 = 250_000;

/// P7: one thread, acquire + fill + release, `ObjectPool` against the `object-pool` crate (the pools of
/// the `object_ctx` bench group), a time ratio, ours over the peer's: the two criterion figures it was
/// taken from until then were measured seconds apart, and two one-thread figures 3 % apart read 0.93 to
/// 1.04 from run to run on this shared host.
///
/// P8: two threads sharing one pool, acquire + fill + release, `ObjectPool` against each peer of the
/// `object_threads` bench group (the same pools, set up alike). Each ratio is ours over the peer's total
/// throughput; P8 is the lowest of them, against the best peer on two threads.
fn objects(out: &Out) {
    let pools = ObjectPools::new();
    let [(_, ours), peers @ ..] = ObjectPools::USES;
    let id = "paired/object_ctx/object_pool_crate";
    if out.wants(id) {
        // On this thread, as A4.1t.
        let one_thread = |work: PoolUse| time_of(|| (0..P7_USES).for_each(|_| work(&pools)));
        let what = format!(
            "ObjectPool / the object-pool crate's Pool time, one thread, acquire + fill + release, {P7_USES} uses a run, alternating runs"
        );
        out.emit("pool", id, &what, || {
            alternate(
                rounds(),
                || one_thread(ObjectPools::use_object_pool),
                || one_thread(ours),
            )
        });
    }
    let two_threads =
        |work: PoolUse| run_parallel(2, P8_USES, |_, n| (0..n).for_each(|_| work(&pools)));
    for (peer, work) in peers {
        let id = format!("paired/object_threads/{peer}_2t");
        if !out.wants(&id) {
            continue;
        }
        let what = format!(
            "ObjectPool / {peer} total throughput, two threads sharing the pool, acquire + fill + release, {P8_USES} uses a thread a run, alternating runs"
        );
        out.emit("pool", &id, &what, || {
            alternate(rounds(), || two_threads(ours), || two_threads(work))
        });
    }
}

/// Passes over the 10,000 probes a run of the intern ratios (one pass takes 0.1–0.3 ms): a run lasts
/// several of the host's scheduling periods, so that a vCPU taken away for a few milliseconds does not
/// decide a two-thread run (I4 read 1.19 in a quick tour with runs of 20 passes, 2–3 ms).
fn intern_passes() -> u64 {
    if flowmem_benches::quick() { 50 } else { 100 }
}

/// Passes a run and rounds of I4 (two threads / one), the full size in the quick tour too (about a second
/// in all): its quick-size figure (11 rounds of 50 passes, 0.3 s) read 1.17, 1.18 and 1.47 in three
/// quick tours where the full size read 1.86 and quick-size sittings alone 1.84–1.99, quartiles as wide as
/// 1.25–1.81: a host hiccup of a few tens of milliseconds spoils several short rounds.
const I4_PASSES: u64 = 100;
const I4_ROUNDS: usize = 21;

/// The time of `passes` passes of `op` over `probes`.
fn timed_passes(probes: &[&str], passes: u64, mut op: impl FnMut(&str)) -> Duration {
    let started = Instant::now();
    for _ in 0..passes {
        for w in probes {
            op(keep(w));
        }
    }
    started.elapsed()
}

/// I1, I7 (interning hits, one thread: `StringPool` against raw lasso and string-interner's
/// `BufferBackend`), I3 (`FrozenPool::get` against `StringPool::get`) and I4 (two threads interning hits
/// against one). The first three are time ratios, ours over the peer's; I4 is a throughput ratio. A
/// pool, its peers and the probes are those of the `intern` bench (10,000 words, probed in a stride).
fn intern(out: &Out) {
    let words = vocabulary(10_000);
    let probes = probes(&words);
    let pool = StringPool::new();
    words.iter().for_each(|w| {
        pool.intern(w);
    });
    let passes = intern_passes();
    let ours = || {
        timed_passes(&probes, passes, |w| {
            keep(pool.intern(w));
        })
    };
    let hits = format!(
        "one thread, {passes} passes over {} probes a run, alternating runs",
        probes.len()
    );
    let id = "paired/intern_hit/lasso";
    if out.wants(id) {
        let rodeo: ThreadedRodeo<Spur> = ThreadedRodeo::new();
        words.iter().for_each(|w| {
            rodeo.get_or_intern(w);
        });
        let lasso = || {
            timed_passes(&probes, passes, |w| {
                keep(rodeo.get_or_intern(w));
            })
        };
        let what =
            format!("StringPool::intern / lasso ThreadedRodeo::get_or_intern time, hits, {hits}");
        out.emit("intern", id, &what, || alternate(rounds(), lasso, ours));
    }
    let id = "paired/intern_hit/string_interner_buffer";
    if out.wants(id) {
        let mut interner: StringInterner<BufferBackend> = StringInterner::new();
        words.iter().for_each(|w| {
            interner.get_or_intern(w);
        });
        let peer = || {
            timed_passes(&probes, passes, |w| {
                keep(interner.get_or_intern(w));
            })
        };
        let what = format!(
            "StringPool::intern / string-interner StringInterner<BufferBackend>::get_or_intern time, hits, {hits}"
        );
        out.emit("intern", id, &what, || alternate(rounds(), peer, ours));
    }
    let id = "paired/lookup/frozen_get";
    if out.wants(id) {
        let frozen = {
            let pool = StringPool::new();
            words.iter().for_each(|w| {
                pool.intern(w);
            });
            pool.freeze()
        };
        let what = format!("FrozenPool::get / StringPool::get time, {hits}");
        out.emit("intern", id, &what, || {
            alternate(
                rounds(),
                || {
                    timed_passes(&probes, passes, |w| {
                        keep(pool.get(w));
                    })
                },
                || {
                    timed_passes(&probes, passes, |w| {
                        keep(frozen.get(w));
                    })
                },
            )
        });
    }
    let id = "paired/intern_threads/2t";
    if out.wants(id) {
        // Each thread walks all the probes from its own place in them, as in the bench: two threads do
        // twice one thread's work, so the throughput ratio is twice the time ratio.
        let run = |threads: usize| {
            run_parallel(threads, I4_PASSES, |t, n| {
                walk_probes(&probes, t, n, |w| {
                    keep(pool.intern(keep(w)));
                })
            })
        };
        let what = format!(
            "StringPool::intern hits, two threads' throughput / one thread's, each thread {I4_PASSES} passes over {} probes a run, {I4_ROUNDS} alternating runs",
            probes.len()
        );
        out.emit("intern", id, &what, || {
            alternate(I4_ROUNDS, || run(2), || run(1)).scaled(2.0)
        });
    }
}

/// The time `work` takes on the calling thread: a one-thread run of a ratio runs there, as a thread made
/// for each run would start each with a new thread cache (the allocator's, a pool's).
fn time_of(work: impl FnOnce()) -> Duration {
    let started = Instant::now();
    work();
    started.elapsed()
}

/// Allocations and frees on each thread per run of A4 (20–40 ms a run).
const A4_ALLOCS: u64 = 1 << 20;

/// A4.1t and A4.2t from alternating runs rather than two criterion figures each (the `tracking` group
/// stays as information): `Tracking<System>` / `System`, a `u64`'s block allocated and freed, time, on
/// the calling thread (A4.1t) and on each of two threads (A4.2t). The criterion quotients read 0.97 and
/// 1.30 (A4.1t), 1.18 and 1.68 (A4.2t) in runs of unchanged code.
fn alloc(out: &Out) {
    static TRACKED: Tracking<System> = Tracking::new(System);
    /// One run on `threads` threads (one: the calling thread).
    fn run<A: std::alloc::GlobalAlloc + Sync>(threads: usize, allocator: &A) -> Duration {
        if threads == 1 {
            time_of(|| alloc_free(allocator, A4_ALLOCS))
        } else {
            run_parallel(threads, A4_ALLOCS, |_, n| alloc_free(allocator, n))
        }
    }
    for (threads, on) in [(1, "one thread"), (2, "two threads")] {
        let id = format!("paired/tracking/{threads}t");
        if !out.wants(&id) {
            continue;
        }
        let what = format!(
            "Tracking<System> / System time, a u64's block allocated and freed, {on}, {A4_ALLOCS} a thread a run, alternating runs"
        );
        out.emit("alloc", &id, &what, || {
            alternate(
                rounds(),
                || run(threads, &System),
                || run(threads, &TRACKED),
            )
        });
    }
}

fn main() {
    let out = Out {
        args: MeasuringArgs::from_env(),
    };
    if let Some(unknown) = out
        .args
        .layers
        .iter()
        .find(|l| !["alloc", "intern", "map", "pool"].contains(&l.as_str()))
    {
        eprintln!(
            "paired: no paired ratios for layer {unknown:?} (the layers: alloc, intern, map, pool)"
        );
        std::process::exit(2);
    }
    if out.args.wants_layer("alloc") {
        alloc(&out);
    }
    if out.args.wants_layer("intern") {
        intern(&out);
    }
    if out.args.wants_layer("map") {
        map(&out);
    }
    if out.args.wants_layer("pool") {
        pool(&out);
        objects(&out);
    }
}
