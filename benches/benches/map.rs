//! Layer 3 benches: the bustle workloads of conc-map-bench (ReadHeavy, Exchange, RapidGrow) at one and two
//! threads for `ConcurrentMap`, raw `DashMap` with std's hasher, `RwLock<HashMap>` and `Mutex<HashMap>`
//! (M1–M3), and the peers papaya and scc with foldhash, as ours (M6); read-only lookups, `ReadMap` against `ConcurrentMap` (M4); a `ReadMap` batch of 1,000 inserts
//! against 1,000 single inserts (M5).
//!
//! One criterion iteration of a workload is one whole run of a fixed size (`flowmem_benches::mix`, bustle's
//! operations timed by the worker threads themselves): the table is created with room for 2^17 keys,
//! prefilled (untimed), then the threads run 2^20 operations in all (timed; 2^18 in the quick tour). The throughput is counted in
//! operations, so the time per element is the time per operation. Every map runs the same operation
//! sequence (a fixed seed).

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::{Mutex, RwLock},
    time::Duration,
};

use criterion::{
    BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main, measurement::WallTime,
};
use dashmap::DashMap;
use flowmem_benches::{
    keep,
    mix::{Mix, MixMap, Workload},
    run_parallel,
};
use flowmem_map::{ConcurrentMap, ReadMap};

/// log2 of the table's initial capacity (conc-map-bench's default is 2^25, far too long a run here).
const CAPACITY_LOG2: u8 = 17;
/// Operations per run, as a multiple of the initial capacity: 2^20, 10–200 ms a run (the quick tour: 2^18).
/// The worker threads time themselves, so a short run is still credible; a longer one averages more of the
/// table's growth and of the scheduler.
fn operations() -> f64 {
    if flowmem_benches::quick() { 2.0 } else { 8.0 }
}
const SEED: u64 = 0x0066_6c6f_776d_656d;

/// The operations of the workloads, on `u64` keys with `u64` values.
trait BenchMap: Sync {
    fn with_capacity(capacity: usize) -> Self;
    fn get(&self, key: u64) -> bool;
    /// `true` if the key was new.
    fn insert(&self, key: u64) -> bool;
    fn remove(&self, key: u64) -> bool;
    /// `true` if the key was there (and its value was incremented).
    fn update(&self, key: u64) -> bool;
}

impl BenchMap for ConcurrentMap<u64, u64> {
    fn with_capacity(capacity: usize) -> Self {
        ConcurrentMap::with_capacity(capacity)
    }
    fn get(&self, key: u64) -> bool {
        ConcurrentMap::get(self, &key).is_some()
    }
    fn insert(&self, key: u64) -> bool {
        ConcurrentMap::insert(self, key, 0).is_none()
    }
    fn remove(&self, key: u64) -> bool {
        ConcurrentMap::remove(self, &key).is_some()
    }
    fn update(&self, key: u64) -> bool {
        ConcurrentMap::update(self, &key, |v| *v += 1).is_some()
    }
}

impl BenchMap for DashMap<u64, u64, RandomState> {
    fn with_capacity(capacity: usize) -> Self {
        DashMap::with_capacity(capacity)
    }
    fn get(&self, key: u64) -> bool {
        DashMap::get(self, &key).is_some()
    }
    fn insert(&self, key: u64) -> bool {
        DashMap::insert(self, key, 0).is_none()
    }
    fn remove(&self, key: u64) -> bool {
        DashMap::remove(self, &key).is_some()
    }
    fn update(&self, key: u64) -> bool {
        DashMap::get_mut(self, &key).map(|mut v| *v += 1).is_some()
    }
}

impl BenchMap for RwLock<HashMap<u64, u64>> {
    fn with_capacity(capacity: usize) -> Self {
        RwLock::new(HashMap::with_capacity(capacity))
    }
    fn get(&self, key: u64) -> bool {
        self.read().unwrap().get(&key).is_some()
    }
    fn insert(&self, key: u64) -> bool {
        self.write().unwrap().insert(key, 0).is_none()
    }
    fn remove(&self, key: u64) -> bool {
        self.write().unwrap().remove(&key).is_some()
    }
    fn update(&self, key: u64) -> bool {
        self.write()
            .unwrap()
            .get_mut(&key)
            .map(|v| *v += 1)
            .is_some()
    }
}

impl BenchMap for Mutex<HashMap<u64, u64>> {
    fn with_capacity(capacity: usize) -> Self {
        Mutex::new(HashMap::with_capacity(capacity))
    }
    fn get(&self, key: u64) -> bool {
        self.lock().unwrap().get(&key).is_some()
    }
    fn insert(&self, key: u64) -> bool {
        self.lock().unwrap().insert(key, 0).is_none()
    }
    fn remove(&self, key: u64) -> bool {
        self.lock().unwrap().remove(&key).is_some()
    }
    fn update(&self, key: u64) -> bool {
        self.lock()
            .unwrap()
            .get_mut(&key)
            .map(|v| *v += 1)
            .is_some()
    }
}

/// papaya with foldhash (as `ConcurrentMap`), a pin per operation as its documentation shows.
impl BenchMap for papaya::HashMap<u64, u64, foldhash::fast::RandomState> {
    fn with_capacity(capacity: usize) -> Self {
        papaya::HashMap::with_capacity_and_hasher(capacity, foldhash::fast::RandomState::default())
    }
    fn get(&self, key: u64) -> bool {
        self.pin().get(&key).is_some()
    }
    fn insert(&self, key: u64) -> bool {
        self.pin().insert(key, 0).is_none()
    }
    fn remove(&self, key: u64) -> bool {
        self.pin().remove(&key).is_some()
    }
    fn update(&self, key: u64) -> bool {
        self.pin().update(key, |v| v + 1).is_some()
    }
}

/// scc's `HashMap` with foldhash (as `ConcurrentMap`).
impl BenchMap for scc::HashMap<u64, u64, foldhash::fast::RandomState> {
    fn with_capacity(capacity: usize) -> Self {
        scc::HashMap::with_capacity_and_hasher(capacity, foldhash::fast::RandomState::default())
    }
    fn get(&self, key: u64) -> bool {
        self.read(&key, |_, _| ()).is_some()
    }
    fn insert(&self, key: u64) -> bool {
        scc::HashMap::insert(self, key, 0).is_ok()
    }
    fn remove(&self, key: u64) -> bool {
        scc::HashMap::remove(self, &key).is_some()
    }
    fn update(&self, key: u64) -> bool {
        scc::HashMap::update(self, &key, |_, v| *v += 1).is_some()
    }
}

/// A map under a workload.
struct Table<M>(M);

impl<M: BenchMap> MixMap for Table<M> {
    fn get(&self, key: u64) -> bool {
        self.0.get(key)
    }
    fn insert(&self, key: u64) -> bool {
        self.0.insert(key)
    }
    fn remove(&self, key: u64) -> bool {
        self.0.remove(key)
    }
    fn update(&self, key: u64) -> bool {
        self.0.update(key)
    }
}

/// A conc-map-bench workload: its mix and how full the table starts.
struct Spec {
    name: &'static str,
    mix: Mix,
    prefill: f64,
}

const WORKLOADS: [Spec; 3] = [
    Spec {
        name: "read_heavy",
        mix: Mix {
            read: 98,
            insert: 1,
            remove: 1,
            update: 0,
        },
        prefill: 0.75,
    },
    Spec {
        name: "exchange",
        mix: Mix {
            read: 10,
            insert: 40,
            remove: 40,
            update: 10,
        },
        prefill: 0.75,
    },
    Spec {
        name: "rapid_grow",
        mix: Mix {
            read: 5,
            insert: 80,
            remove: 5,
            update: 10,
        },
        prefill: 0.0,
    },
];

fn operations_per_run() -> u64 {
    workload(&WORKLOADS[0]).operations_per_run()
}

fn workload(spec: &Spec) -> Workload {
    Workload {
        mix: spec.mix,
        capacity_log2: CAPACITY_LOG2,
        prefill: spec.prefill,
        operations: operations(),
        seed: SEED,
    }
}

/// `runs` whole runs of `spec` on `threads` threads; the sum of their timed phases.
fn mix_runs<M: BenchMap>(spec: &Spec, threads: usize, runs: u64) -> Duration {
    let workload = workload(spec);
    (0..runs)
        .map(|_| workload.run(threads, |capacity| Table(M::with_capacity(capacity))))
        .sum()
}

fn bench_workload<M: BenchMap>(group: &mut BenchmarkGroup<'_, WallTime>, spec: &Spec, name: &str) {
    for threads in [1usize, 2] {
        group.bench_function(format!("{name}_{threads}t"), |b| {
            b.iter_custom(|runs| mix_runs::<M>(spec, threads, runs))
        });
    }
}

fn workloads(c: &mut Criterion) {
    for spec in &WORKLOADS {
        let mut group = c.benchmark_group(spec.name);
        group.sampling_mode(SamplingMode::Flat);
        group.throughput(Throughput::Elements(operations_per_run()));
        bench_workload::<ConcurrentMap<u64, u64>>(&mut group, spec, "concurrent_map");
        bench_workload::<DashMap<u64, u64, RandomState>>(&mut group, spec, "dashmap_std");
        bench_workload::<RwLock<HashMap<u64, u64>>>(&mut group, spec, "rwlock_std");
        bench_workload::<Mutex<HashMap<u64, u64>>>(&mut group, spec, "mutex_std");
        bench_workload::<papaya::HashMap<u64, u64, foldhash::fast::RandomState>>(
            &mut group, spec, "papaya",
        );
        bench_workload::<scc::HashMap<u64, u64, foldhash::fast::RandomState>>(
            &mut group, spec, "scc",
        );
        group.finish();
    }
}

/// Read-only lookups on a map prefilled like ReadHeavy (3/4 of the probed keys present), on one and two
/// threads: `ReadMap` against `ConcurrentMap` (M4), with raw dashmap and `RwLock<HashMap>` for context.
fn read_only(c: &mut Criterion) {
    let keys: Vec<u64> = {
        let state = RandomState::new();
        (0..1u64 << CAPACITY_LOG2)
            .map(|i| state.hash_one(i))
            .collect()
    };
    let present = &keys[..keys.len() * 3 / 4];
    let read_map: ReadMap<u64, u64> = present.iter().map(|k| (*k, *k)).collect();
    let concurrent: ConcurrentMap<u64, u64> = present.iter().map(|k| (*k, *k)).collect();
    let dashmap: DashMap<u64, u64, RandomState> = present.iter().map(|k| (*k, *k)).collect();
    let rwlock = RwLock::new(present.iter().map(|k| (*k, *k)).collect::<HashMap<_, _>>());

    let mut group = c.benchmark_group("read_only");
    group.sampling_mode(SamplingMode::Flat);
    let mask = keys.len() - 1;
    let lookups = |threads: usize, iters: u64, get: &(dyn Fn(u64) -> Option<u64> + Sync)| {
        run_parallel(threads, iters, |t, n| {
            // A scattered walk over all keys, each thread from its own start.
            let mut i = t * 7919;
            for _ in 0..n {
                i = (i + 40_503) & mask;
                keep(get(keep(keys[i])));
            }
        })
    };
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_function(format!("read_map_{threads}t"), |b| {
            b.iter_custom(|iters| lookups(threads, iters, &|k| read_map.get(&k)))
        });
        group.bench_function(format!("concurrent_map_{threads}t"), |b| {
            b.iter_custom(|iters| lookups(threads, iters, &|k| concurrent.get(&k)))
        });
        group.bench_function(format!("dashmap_std_{threads}t"), |b| {
            b.iter_custom(|iters| lookups(threads, iters, &|k| dashmap.get(&k).map(|r| *r)))
        });
        group.bench_function(format!("rwlock_std_{threads}t"), |b| {
            b.iter_custom(|iters| {
                lookups(threads, iters, &|k| rwlock.read().unwrap().get(&k).copied())
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
