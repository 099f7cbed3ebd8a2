//! Layer 3 benches: the bustle workloads of conc-map-bench (ReadHeavy, Exchange, RapidGrow) at one and two
//! threads for `ConcurrentMap`, raw `DashMap` with std's hasher, `RwLock<HashMap>` and `Mutex<HashMap>`
//! (M1–M3), and the peers papaya and scc with foldhash, as ours (the M6 ratios, and M7's, each map's two
//! threads against its one, are taken from alternating runs of the same workloads by the `paired` binary:
//! `flowmem_benches::paired`); read-only lookups, `ReadMap` against `ConcurrentMap` (M4); a `ReadMap` batch
//! of 1,000 inserts against 1,000 single inserts (M5).
//!
//! One criterion iteration of a workload is one whole run of a fixed size (`flowmem_benches::mix`, bustle's
//! operations timed by the worker threads themselves): the table is created with room for 2^17 keys,
//! prefilled (untimed), then the threads run 2^20 operations in all (timed; 2^18 in the quick tour). The
//! throughput is counted in operations, so the time per element is the time per operation. Every map runs
//! the same operation sequence (a fixed seed). The maps and workloads are `flowmem_benches::maps`.

use std::{
    collections::HashMap,
    hash::RandomState,
    sync::{Mutex, RwLock},
};

use criterion::{
    BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main, measurement::WallTime,
};
use dashmap::DashMap;
use flowmem_benches::{
    keep,
    maps::{BenchMap, Lookups, Papaya, Scc, Spec, WORKLOADS},
};
use flowmem_map::{ConcurrentMap, ReadMap};

/// `spec` on `M`, one and two threads.
fn bench_workload<M: BenchMap>(group: &mut BenchmarkGroup<'_, WallTime>, spec: &Spec, name: &str) {
    for threads in [1usize, 2] {
        group.bench_function(format!("{name}_{threads}t"), |b| {
            b.iter_custom(|runs| spec.runs::<M>(threads, runs))
        });
    }
}

fn workloads(c: &mut Criterion) {
    for spec in &WORKLOADS {
        let mut group = c.benchmark_group(spec.name);
        group.sampling_mode(SamplingMode::Flat);
        group.throughput(Throughput::Elements(spec.workload().operations_per_run()));
        bench_workload::<ConcurrentMap<u64, u64>>(&mut group, spec, "concurrent_map");
        bench_workload::<DashMap<u64, u64, RandomState>>(&mut group, spec, "dashmap_std");
        bench_workload::<RwLock<HashMap<u64, u64>>>(&mut group, spec, "rwlock_std");
        bench_workload::<Mutex<HashMap<u64, u64>>>(&mut group, spec, "mutex_std");
        bench_workload::<Papaya>(&mut group, spec, "papaya");
        bench_workload::<Scc>(&mut group, spec, "scc");
        group.finish();
    }
}

/// Read-only lookups on a map prefilled like ReadHeavy (3/4 of the probed keys present), on one and two
/// threads: `ReadMap` against `ConcurrentMap` (M4), with raw dashmap and `RwLock<HashMap>` for context.
fn read_only(c: &mut Criterion) {
    let lookups = Lookups::new();
    let present = lookups.present();
    let read_map: ReadMap<u64, u64> = present.iter().map(|k| (*k, *k)).collect();
    let concurrent: ConcurrentMap<u64, u64> = present.iter().map(|k| (*k, *k)).collect();
    let dashmap: DashMap<u64, u64, RandomState> = present.iter().map(|k| (*k, *k)).collect();
    let rwlock = RwLock::new(present.iter().map(|k| (*k, *k)).collect::<HashMap<_, _>>());

    let mut group = c.benchmark_group("read_only");
    group.sampling_mode(SamplingMode::Flat);
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_function(format!("read_map_{threads}t"), |b| {
            b.iter_custom(|iters| lookups.run(threads, iters, &|k| read_map.get(&k)))
        });
        group.bench_function(format!("concurrent_map_{threads}t"), |b| {
            b.iter_custom(|iters| lookups.run(threads, iters, &|k| concurrent.get(&k)))
        });
        group.bench_function(format!("dashmap_std_{threads}t"), |b| {
            b.iter_custom(|iters| lookups.run(threads, iters, &|k| dashmap.get(&k).map(|r| *r)))
        });
        group.bench_function(format!("rwlock_std_{threads}t"), |b| {
            b.iter_custom(|iters| {
                lookups.run(threads, iters, &|k| rwlock.read().unwrap().get(&k).copied())
            })
        });
    }
    group.finish();
}

/// 1,000 inserts into a `ReadMap` of 10,000 entries: one `update_batch` against 1,000 `insert`s (M5).
fn read_map_batch(c: &mut Criterion) {
    let base: HashMap<u64, u64, flowmem_map::DefaultHashBuilder> =
        (0..10_000u64).map(|k| (k, k)).collect();
    let mut group = c.benchmark_group("read_map_batch");
    group.throughput(Throughput::Elements(1_000));
    let fresh = || ReadMap::from(base.clone());
    group.bench_function("update_batch_1000", |b| {
        b.iter_batched(
            fresh,
            |map| {
                map.update_batch(|m| {
                    for k in 10_000..11_000u64 {
                        m.insert(keep(k), k);
                    }
                });
                map
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("single_inserts_1000", |b| {
        b.iter_batched(
            fresh,
            |map| {
                for k in 10_000..11_000u64 {
                    map.insert(keep(k), k);
                }
                map
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = flowmem_benches::criterion();
    targets = workloads, read_only, read_map_batch
}
criterion_main!(benches);
