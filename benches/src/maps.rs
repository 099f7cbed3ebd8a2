//! The maps the layer-3 workloads run on, and the workloads themselves: shared by the `map` bench group,
//! the `paired` binary (the M6 ratios) and the `map_mix` example, so all three measure the same calls.
//!
//! Every map stores `u64` keys and values. `ConcurrentMap`, papaya and scc hash with foldhash's fast hasher
//! (`ConcurrentMap`'s default; the peers are given it so that hashing is not what differs); raw dashmap,
//! `RwLock<HashMap>` and `Mutex<HashMap>` use std's `RandomState`, as their users would by default.

use std::{
    collections::HashMap,
    hash::RandomState,
    sync::{Mutex, RwLock},
    time::Duration,
};

use dashmap::DashMap;
use flowmem_map::ConcurrentMap;

use crate::mix::{Mix, MixMap, Workload};

/// A map a workload can build (with room for `capacity` keys) and run.
pub trait BenchMap: MixMap + Sized {
    /// An empty map with room for `capacity` keys.
    fn with_capacity(capacity: usize) -> Self;
}

/// papaya with foldhash, as `ConcurrentMap`.
pub type Papaya = papaya::HashMap<u64, u64, foldhash::fast::RandomState>;
/// scc's `HashMap` with foldhash, as `ConcurrentMap`.
pub type Scc = scc::HashMap<u64, u64, foldhash::fast::RandomState>;

impl MixMap for ConcurrentMap<u64, u64> {
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

impl BenchMap for ConcurrentMap<u64, u64> {
    fn with_capacity(capacity: usize) -> Self {
        ConcurrentMap::with_capacity(capacity)
    }
}

impl MixMap for DashMap<u64, u64, RandomState> {
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

impl BenchMap for DashMap<u64, u64, RandomState> {
    fn with_capacity(capacity: usize) -> Self {
        DashMap::with_capacity(capacity)
    }
}

impl MixMap for RwLock<HashMap<u64, u64>> {
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

impl BenchMap for RwLock<HashMap<u64, u64>> {
    fn with_capacity(capacity: usize) -> Self {
        RwLock::new(HashMap::with_capacity(capacity))
    }
}

impl MixMap for Mutex<HashMap<u64, u64>> {
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

impl BenchMap for Mutex<HashMap<u64, u64>> {
    fn with_capacity(capacity: usize) -> Self {
        Mutex::new(HashMap::with_capacity(capacity))
    }
}

/// A pin per operation, as papaya's documentation shows.
impl MixMap for Papaya {
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

impl BenchMap for Papaya {
    fn with_capacity(capacity: usize) -> Self {
        papaya::HashMap::with_capacity_and_hasher(capacity, foldhash::fast::RandomState::default())
    }
}

impl MixMap for Scc {
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

impl BenchMap for Scc {
    fn with_capacity(capacity: usize) -> Self {
        scc::HashMap::with_capacity_and_hasher(capacity, foldhash::fast::RandomState::default())
    }
}

/// A conc-map-bench workload: its mix and how full the table starts.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The workload's name (its bench group).
    pub name: &'static str,
    /// The operation mix.
    pub mix: Mix,
    /// The fraction of the initial capacity inserted before the timed phase.
    pub prefill: f64,
}

/// bustle's three workloads, as conc-map-bench runs them.
pub const WORKLOADS: [Spec; 3] = [
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

/// log2 of the table's initial capacity (conc-map-bench's default is 2^25, far too long a run here).
pub const CAPACITY_LOG2: u8 = 17;

/// Operations per run, as a multiple of the initial capacity: 2^20, 10–200 ms a run (the quick tour: 2^18).
/// The worker threads time themselves, so a short run is still credible; a longer one averages more of the
/// table's growth and of the scheduler.
pub fn operations() -> f64 {
    if crate::quick() { 2.0 } else { 8.0 }
}

/// Seeds the keys and the shuffle: every map runs the same operations.
pub const SEED: u64 = 0x0066_6c6f_776d_656d;

impl Spec {
    /// The workload at the run's size ([`CAPACITY_LOG2`], [`operations`], [`SEED`]).
    pub fn workload(&self) -> Workload {
        Workload {
            mix: self.mix,
            capacity_log2: CAPACITY_LOG2,
            prefill: self.prefill,
            operations: operations(),
            seed: SEED,
        }
    }

    /// `runs` whole runs of this workload on `threads` threads, each on a new `M`; the sum of their timed
    /// phases.
    pub fn runs<M: BenchMap>(&self, threads: usize, runs: u64) -> Duration {
        let workload = self.workload();
        (0..runs)
            .map(|_| workload.run(threads, M::with_capacity))
            .sum()
    }

    /// The workload named `name`, if there is one.
    pub fn named(name: &str) -> Option<&'static Spec> {
        WORKLOADS.iter().find(|s| s.name == name)
    }
}

/// The read-only lookups of target M4: 2^[`CAPACITY_LOG2`] hashed integers, of which the maps hold the first
/// three quarters; every thread walks all of them in a scattered order from its own start.
#[derive(Debug, Clone)]
pub struct Lookups {
    keys: Vec<u64>,
}

impl Default for Lookups {
    fn default() -> Self {
        Self::new()
    }
}

impl Lookups {
    /// The keys, hashed with a fresh std `RandomState`.
    pub fn new() -> Self {
        let state = RandomState::new();
        Self {
            keys: (0..1u64 << CAPACITY_LOG2)
                .map(|i| std::hash::BuildHasher::hash_one(&state, i))
                .collect(),
        }
    }

    /// The keys a map under test holds (each mapped to itself).
    pub fn present(&self) -> &[u64] {
        &self.keys[..self.keys.len() * 3 / 4]
    }

    /// `iters` lookups through `get` on each of `threads` threads (a quarter of them misses); the wall time.
    pub fn run(
        &self,
        threads: usize,
        iters: u64,
        get: &(dyn Fn(u64) -> Option<u64> + Sync),
    ) -> Duration {
        let mask = self.keys.len() - 1;
        crate::run_parallel(threads, iters, |t, n| {
            // A scattered walk over all keys, each thread from its own start.
            let mut i = t * 7919;
            for _ in 0..n {
                i = (i + 40_503) & mask;
                crate::keep(get(crate::keep(self.keys[i])));
            }
        })
    }
}
