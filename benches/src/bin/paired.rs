//! Ratios the targets take from alternating runs (`flowmem_benches::paired`) rather than from criterion
//! groups, printed as JSON lines for `cargo xtask bench`:
//! `{"layer": "map", "allocator": "system", "id": "paired/exchange/scc_2t", "median": 0.93, "low": 0.88,
//! "high": 0.97, "rounds": 21, "what": "..."}`.
//!
//! `paired [LAYER...] [--filter SUBSTRING]`; no layer means all: `map` (the M6 ratios) and `pool` (P6). Runs
//! under the global allocator its build chose (`--features jemalloc` / `mimalloc`; `cargo xtask bench`
//! builds it once per allocator a target needs).

use flowmem_benches::{
    maps::{BenchMap, Papaya, Scc, WORKLOADS},
    paired::{Paired, alternate},
    pipeline::{P6_SIZE, pool_pipeline, vec_pipeline},
};
use flowmem_map::ConcurrentMap;
use flowmem_pool::BufferPool;

/// Rounds of a ratio: each is one run of either side (2^20 operations; the quick tour's 2^18).
fn rounds() -> usize {
    if flowmem_benches::quick() { 11 } else { 21 }
}

struct Out {
    filter: Option<String>,
}

impl Out {
    /// Whether `id` passes the filter: a substring, or several separated by `|`.
    fn wants(&self, id: &str) -> bool {
        self.filter
            .as_deref()
            .is_none_or(|f| f.split('|').any(|part| id.contains(part)))
    }

    fn emit(&self, layer: &str, id: &str, p: Paired, what: &str) {
        println!(
            "{}",
            serde_json::json!({
                "layer": layer, "allocator": flowmem_benches::ALLOCATOR, "id": id, "median": p.median, "low": p.low, "high": p.high,
                "rounds": p.rounds, "what": what,
            })
        );
    }
}

/// `ConcurrentMap` against `M` on `spec`'s workload, `threads` threads.
fn map_ratio<M: BenchMap>(spec: &flowmem_benches::maps::Spec, threads: usize) -> Paired {
    alternate(
        rounds(),
        || spec.runs::<ConcurrentMap<u64, u64>>(threads, 1),
        || spec.runs::<M>(threads, 1),
    )
}

/// M6: `ConcurrentMap`'s throughput over papaya's and scc's, every workload, one and two threads.
fn map(out: &Out) {
    for spec in &WORKLOADS {
        for threads in [1, 2] {
            for peer in ["papaya", "scc"] {
                let id = format!("paired/{}/{peer}_{threads}t", spec.name);
                if !out.wants(&id) {
                    continue;
                }
                let ratio = match peer {
                    "papaya" => map_ratio::<Papaya>(spec, threads),
                    _ => map_ratio::<Scc>(spec, threads),
                };
                let what = format!(
                    "ConcurrentMap / {peer} throughput, {}, {threads} thread(s), alternating runs",
                    spec.name
                );
                out.emit("map", &id, ratio, &what);
            }
        }
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
    let mut layers = Vec::new();
    let mut filter = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--filter" {
            filter = args.next();
        } else {
            layers.push(a);
        }
    }
    if let Some(unknown) = layers.iter().find(|l| *l != "map" && *l != "pool") {
        eprintln!("paired: no paired ratios for layer {unknown:?} (the layers: map, pool)");
        std::process::exit(2);
    }
    let out = Out { filter };
    let wants = |layer: &str| layers.is_empty() || layers.iter().any(|l| l == layer);
    if wants("map") {
        map(&out);
    }
    if wants("pool") {
        pool(&out);
    }
}
