//! Ratios the targets take from alternating runs (`flowmem_benches::paired`) rather than from criterion
//! groups, printed as JSON lines for `cargo xtask bench`:
//! `{"layer": "map", "allocator": "system", "id": "paired/exchange/scc_2t", "median": 0.93, "low": 0.88,
//! "high": 0.97, "rounds": 21, "what": "..."}`.
//!
//! `paired [LAYER...] [--filter SUBSTRING]`; no layer means all: `map` (M1, M3, M4, M6) and `pool` (P6). Runs
//! under the global allocator its build chose (`--features jemalloc` / `mimalloc`; `cargo xtask bench`
//! builds it once per allocator a target needs).

use std::{collections::HashMap, hash::RandomState, sync::RwLock};

use dashmap::DashMap;
use flowmem_benches::{
    maps::{BenchMap, Lookups, Papaya, Scc, Spec},
    measuring::MeasuringArgs,
    paired::{Paired, alternate},
    pipeline::{P6_SIZE, pool_pipeline, vec_pipeline},
};
use flowmem_map::{ConcurrentMap, ReadMap};
use flowmem_pool::BufferPool;

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

    fn emit(&self, layer: &str, id: &str, p: Paired, what: &str) {
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
/// (M6 is the two-thread ones), against `RwLock<HashMap>` on ReadHeavy (M1) and raw dashmap on Exchange and
/// RapidGrow (M3), two threads.
const COMPARISONS: &[(&str, &str, usize)] = &[
    ("read_heavy", "papaya", 1),
    ("read_heavy", "scc", 1),
    ("read_heavy", "papaya", 2),
    ("read_heavy", "scc", 2),
    ("read_heavy", "rwlock_std", 2),
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

/// Read-only lookups a run of M4, on each thread.
fn lookups_per_run() -> u64 {
    if flowmem_benches::quick() {
        1 << 18
    } else {
        1 << 20
    }
}

/// M1, M3, M6 (`COMPARISONS`) and M4 (`ReadMap` against `ConcurrentMap`, read-only lookups, two threads).
fn map(out: &Out) {
    for &(workload, peer, threads) in COMPARISONS {
        let id = format!("paired/{workload}/{peer}_{threads}t");
        if !out.wants(&id) {
            continue;
        }
        let spec = Spec::named(workload).expect("COMPARISONS names known workloads");
        let ratio = match peer {
            "papaya" => map_ratio::<Papaya>(spec, threads),
            "scc" => map_ratio::<Scc>(spec, threads),
            "rwlock_std" => map_ratio::<RwLock<HashMap<u64, u64>>>(spec, threads),
            "dashmap_std" => map_ratio::<DashMap<u64, u64, RandomState>>(spec, threads),
            other => unreachable!("no map {other:?} in COMPARISONS"),
        };
        let what = format!(
            "ConcurrentMap / {peer} throughput, {workload}, {threads} thread(s), alternating runs"
        );
        out.emit("map", &id, ratio, &what);
    }
    let id = "paired/read_only/read_map_2t";
    if out.wants(id) {
        let lookups = Lookups::new();
        let read_map: ReadMap<u64, u64> = lookups.present().iter().map(|k| (*k, *k)).collect();
        let concurrent: ConcurrentMap<u64, u64> =
            lookups.present().iter().map(|k| (*k, *k)).collect();
        let n = lookups_per_run();
        let ratio = alternate(
            rounds(),
            || lookups.run(2, n, &|k| read_map.get(&k)),
            || lookups.run(2, n, &|k| concurrent.get(&k)),
        );
        let what = format!(
            "ReadMap / ConcurrentMap throughput, read-only lookups ({n} a thread a run), 2 threads, alternating runs"
        );
        out.emit("map", id, ratio, &what);
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
    let ratio = alternate(
        rounds(),
        || vec_pipeline(P6_SIZE, P6_BUFFERS),
        || pool_pipeline(&pool, P6_SIZE, P6_BUFFERS),
    );
    out.emit(
        "pool",
        id,
        ratio,
        &format!(
            "BufferPool / Vec::with_capacity time, producer/consumer pipeline of {P6_BUFFERS} 64 KiB buffers a run, alternating runs"
        ),
    );
}

fn main() {
    let out = Out {
        args: MeasuringArgs::from_env(),
    };
    if let Some(unknown) = out.args.layers.iter().find(|l| *l != "map" && *l != "pool") {
        eprintln!("paired: no paired ratios for layer {unknown:?} (the layers: map, pool)");
        std::process::exit(2);
    }
    if out.args.wants_layer("map") {
        map(&out);
    }
    if out.args.wants_layer("pool") {
        pool(&out);
    }
}
