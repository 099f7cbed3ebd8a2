//! The map workloads of conc-map-bench (bustle's ReadHeavy, Exchange, RapidGrow), driven and timed by the
//! worker threads themselves.
//!
//! bustle's own driver times a run on a third thread (the caller) between two barriers. On a two-core machine
//! that thread is often not running when the workers are released, so it reads the clock late and a short
//! run comes out several times faster than one core could go (two threads measured at 300–600 M
//! operations/s where one does 50–80). Here each worker reads the clock itself after the common start and
//! after its last operation, and a run lasts from the earliest start to the latest end.
//!
//! The operations are bustle's, in its order: every thread owns its own random keys; it prefills the table
//! with the first ones, then repeats one shuffled sequence of 100 operations: a read or an update probes a key
//! picked by a full-period LCG over its keys (present or not), an insert adds its next new key, a remove
//! takes out its oldest present one. Every result is checked (a map that loses or invents a key fails the
//! run).

use std::time::{Duration, Instant};

/// How many of every 100 operations are of each kind.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// Lookups.
    pub read: u8,
    /// Inserts of new keys.
    pub insert: u8,
    /// Removals of present keys.
    pub remove: u8,
    /// Read-modify-writes of a value in place.
    pub update: u8,
}

/// The operations a map under test offers, on `u64` keys.
pub trait MixMap: Sync {
    /// Whether `key` is present.
    fn get(&self, key: u64) -> bool;
    /// Inserts `key`; `true` if it was new.
    fn insert(&self, key: u64) -> bool;
    /// Removes `key`; `true` if it was present.
    fn remove(&self, key: u64) -> bool;
    /// Changes the value under `key` in place; `true` if it was present.
    fn update(&self, key: u64) -> bool;
}

/// A workload: its mix, its size and how full the table starts.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// The operation mix.
    pub mix: Mix,
    /// log2 of the table's initial capacity.
    pub capacity_log2: u8,
    /// The fraction of the initial capacity inserted before the timed phase.
    pub prefill: f64,
    /// The operations of the timed phase (all threads together), as a multiple of the initial capacity.
    pub operations: f64,
    /// Seeds the keys and the shuffle: every map runs the same operations.
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Read,
    Insert,
    Remove,
    Update,
}

/// splitmix64: a fast deterministic generator for keys and the shuffle.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Workload {
    /// The number of timed operations of one run.
    pub fn operations_per_run(&self) -> u64 {
        ((1u64 << self.capacity_log2) as f64 * self.operations) as u64
    }

    fn ops(&self) -> Vec<Op> {
        let m = self.mix;
        assert_eq!(
            u32::from(m.read) + u32::from(m.insert) + u32::from(m.remove) + u32::from(m.update),
            100,
            "a mix is out of 100 operations: {m:?}"
        );
        let mut ops: Vec<Op> = [
            (Op::Read, m.read),
            (Op::Insert, m.insert),
            (Op::Remove, m.remove),
            (Op::Update, m.update),
        ]
        .iter()
        .flat_map(|&(op, n)| std::iter::repeat_n(op, usize::from(n)))
        .collect();
        let mut state = self.seed;
        for i in (1..ops.len()).rev() {
            ops.swap(i, (next(&mut state) % (i as u64 + 1)) as usize);
        }
        ops
    }

    /// One run on `threads` threads of the map `make` builds (given the initial capacity): prefill (untimed),
    /// then the timed operations. Returns the time from the first thread's start to the last one's end.
    ///
    /// # Panics
    /// If the map gives a wrong answer (an insert of a new key that is not new, a present key not found...).
    pub fn run<M: MixMap>(&self, threads: usize, make: impl FnOnce(usize) -> M) -> Duration {
        let capacity = 1usize << self.capacity_log2;
        let total = self.operations_per_run() as usize;
        let ops = self.ops();
        let prefill = (capacity as f64 * self.prefill) as usize / threads;
        let max_inserts = total.div_ceil(100) * ops.iter().filter(|&&o| o == Op::Insert).count();
        let keys_per_thread = ((capacity.max(max_inserts) + prefill * threads).div_ceil(threads))
            .next_power_of_two()
            .max(8);
        let keys: Vec<Vec<u64>> = (0..threads)
            .map(|t| {
                let mut state = self.seed ^ (t as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F);
                (0..keys_per_thread).map(|_| next(&mut state)).collect()
            })
            .collect();
        let map = make(capacity);
        let map = &map;
        crate::together(threads, |t| {
            for &key in &keys[t][..prefill] {
                assert!(
                    map.insert(key),
                    "{WRONG} prefill insert({key}) of a new key said false"
                );
            }
        });

        let (_, spans) = crate::together(threads, |t| {
            let start = Instant::now();
            mix(map, &keys[t], &ops, total / threads, prefill);
            (start, Instant::now())
        });
        let first = spans
            .iter()
            .map(|s| s.0)
            .min()
            .expect("at least one thread");
        let last = spans
            .iter()
            .map(|s| s.1)
            .max()
            .expect("at least one thread");
        last - first
    }
}

const WRONG: &str = "the map under test answered wrongly:";

/// One thread's timed operations (bustle's `mix`): `count` operations over `ops` repeated.
fn mix(map: &impl MixMap, keys: &[u64], ops: &[Op], count: usize, prefilled: usize) {
    let n = keys.len();
    let (a, c, mask) = (n / 2 + 1, n / 4 - 1, n - 1);
    let (mut erase, mut insert, mut find) = (0usize, prefilled, 0usize);
    for &op in ops.iter().cycle().take(count) {
        match op {
            Op::Read | Op::Update => {
                let present = find >= erase && find < insert;
                let key = keys[find];
                let found = if op == Op::Read {
                    map.get(key)
                } else {
                    map.update(key)
                };
                assert_eq!(found, present, "{WRONG} {op:?}({key}) said {found}");
                find = (a * find + c) & mask;
            }
            Op::Insert => {
                assert!(
                    map.insert(keys[insert]),
                    "{WRONG} insert({}) of a new key said false",
                    keys[insert]
                );
                insert += 1;
            }
            Op::Remove => {
                if erase == insert {
                    assert!(
                        !map.remove(keys[find]),
                        "{WRONG} remove from an empty table said true"
                    );
                    find = (a * find + c) & mask;
                } else {
                    assert!(
                        map.remove(keys[erase]),
                        "{WRONG} remove({}) of a present key said false",
                        keys[erase]
                    );
                    erase += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::HashSet, sync::Mutex};

    use super::*;

    impl MixMap for Mutex<HashSet<u64>> {
        fn get(&self, key: u64) -> bool {
            self.lock().unwrap().contains(&key)
        }
        fn insert(&self, key: u64) -> bool {
            self.lock().unwrap().insert(key)
        }
        fn remove(&self, key: u64) -> bool {
            self.lock().unwrap().remove(&key)
        }
        fn update(&self, key: u64) -> bool {
            self.lock().unwrap().contains(&key)
        }
    }

    /// A set that forgets every tenth insert.
    struct Lossy(Mutex<(HashSet<u64>, u32)>);

    impl MixMap for Lossy {
        fn get(&self, key: u64) -> bool {
            self.0.lock().unwrap().0.contains(&key)
        }
        fn insert(&self, key: u64) -> bool {
            let mut s = self.0.lock().unwrap();
            s.1 += 1;
            if !s.1.is_multiple_of(10) {
                s.0.insert(key);
            }
            true
        }
        fn remove(&self, key: u64) -> bool {
            self.0.lock().unwrap().0.remove(&key)
        }
        fn update(&self, key: u64) -> bool {
            self.get(key)
        }
    }

    const EXCHANGE: Workload = Workload {
        mix: Mix {
            read: 10,
            insert: 40,
            remove: 40,
            update: 10,
        },
        capacity_log2: 10,
        prefill: 0.75,
        operations: 2.0,
        seed: 7,
    };

    #[test]
    fn a_correct_map_runs_every_workload_on_one_and_two_threads() {
        for threads in [1, 2] {
            let set = Mutex::new(HashSet::new());
            let spent = EXCHANGE.run(threads, |_| &set);
            assert!(spent > Duration::ZERO);
            // 768 prefilled, then each thread's share of the 2,048 operations adds and takes out keys.
            let per_thread = 2048 / threads;
            let count = |kind| {
                EXCHANGE
                    .ops()
                    .iter()
                    .cycle()
                    .take(per_thread)
                    .filter(|&&o| o == kind)
                    .count()
            };
            let expected = 768 + threads * count(Op::Insert) - threads * count(Op::Remove);
            assert_eq!(set.lock().unwrap().len(), expected);
        }
    }

    #[test]
    #[should_panic(expected = "answered wrongly")]
    fn a_map_that_loses_keys_fails_the_run() {
        EXCHANGE.run(1, |_| Lossy(Mutex::new((HashSet::new(), 0))));
    }

    impl<M: MixMap> MixMap for &M {
        fn get(&self, key: u64) -> bool {
            (*self).get(key)
        }
        fn insert(&self, key: u64) -> bool {
            (*self).insert(key)
        }
        fn remove(&self, key: u64) -> bool {
            (*self).remove(key)
        }
        fn update(&self, key: u64) -> bool {
            (*self).update(key)
        }
    }
}
