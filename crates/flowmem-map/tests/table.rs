//! The table under `ConcurrentMap`: growth while other threads read and write, buckets that spill, every
//! value dropped exactly once, locks released by panics, and the capacity promise.

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hasher},
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
};

use flowmem_map::ConcurrentMap;
use flowmem_testing::iterations;

#[test]
fn every_key_survives_growth_under_concurrent_readers_and_writers() {
    // From one bucket to thousands: many growths, each while the other threads insert and read.
    let per_writer = iterations(40_000);
    let map: ConcurrentMap<u64, u64> = ConcurrentMap::new();
    // Writer `w` has inserted its keys `w, w + 2, ...` below `2 * progress[w]`.
    let progress = [AtomicU64::new(0), AtomicU64::new(0)];
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..2u64)
            .map(|w| {
                let (map, progress) = (&map, &progress);
                s.spawn(move || {
                    for i in 0..per_writer {
                        let key = i * 2 + w;
                        assert_eq!(map.insert(key, key * 10), None, "key {key} inserted twice");
                        // A key just inserted is found, whatever growth runs meanwhile.
                        assert_eq!(
                            map.get(&key),
                            Some(key * 10),
                            "key {key} lost right after insert"
                        );
                        progress[w as usize].store(i + 1, Ordering::Release);
                    }
                })
            })
            .collect();
        for r in 0..2u64 {
            let (map, done, progress) = (&map, &done, &progress);
            s.spawn(move || {
                while !done.load(Ordering::Acquire) {
                    // Every key below both writers' progress is present (nothing is removed).
                    let below = 2 * progress
                        .iter()
                        .map(|p| p.load(Ordering::Acquire))
                        .min()
                        .unwrap_or(0);
                    for key in (r..below).step_by(97) {
                        assert_eq!(map.get(&key), Some(key * 10), "key {key} vanished");
                    }
                }
            });
        }
        for w in writers {
            w.join().expect("writer");
        }
        done.store(true, Ordering::Release);
    });
    assert_eq!(map.len() as u64, 2 * per_writer);
    assert!(map.capacity() as u64 >= 2 * per_writer);
    for key in 0..2 * per_writer {
        assert_eq!(map.get(&key), Some(key * 10));
    }
}

/// A hasher that sends every key to the same bucket with the same tag: every bucket lookup compares keys,
/// and all but sixteen entries spill.
#[derive(Clone, Default)]
struct OneBucket;

impl BuildHasher for OneBucket {
    type Hasher = Constant;
    fn build_hasher(&self) -> Constant {
        Constant
    }
}

struct Constant;

impl Hasher for Constant {
    fn finish(&self) -> u64 {
        7
    }
    fn write(&mut self, _: &[u8]) {}
}

#[test]
fn a_hasher_that_sends_every_key_to_one_bucket_still_gives_a_correct_map() {
    let map: ConcurrentMap<u32, u32, OneBucket> = ConcurrentMap::with_hasher(OneBucket);
    let mut model = HashMap::new();
    for i in 0..300u32 {
        assert_eq!(map.insert(i, i), model.insert(i, i));
    }
    for i in (0..300u32).step_by(3) {
        assert_eq!(map.remove(&i), model.remove(&i));
    }
    for i in (0..300u32).step_by(5) {
        assert_eq!(map.insert(i, i + 1), model.insert(i, i + 1));
    }
    map.retain(|k, v| {
        *v += 1;
        k % 7 != 0
    });
    model.retain(|k, v| {
        *v += 1;
        k % 7 != 0
    });
    assert_eq!(map.len(), model.len());
    let mut items = map.items();
    items.sort_unstable();
    let mut expected: Vec<_> = model.into_iter().collect();
    expected.sort_unstable();
    assert_eq!(items, expected);
}

/// A value that counts its drops.
#[derive(Clone)]
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn every_value_is_dropped_exactly_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let made = AtomicUsize::new(0);
    let value = || {
        made.fetch_add(1, Ordering::Relaxed);
        Counted(Arc::clone(&drops))
    };
    {
        let map: ConcurrentMap<u32, Counted> = ConcurrentMap::new();
        std::thread::scope(|s| {
            for t in 0..2u32 {
                let (map, value) = (&map, &value);
                s.spawn(move || {
                    for i in 0..2_000u32 {
                        let key = i * 2 + t;
                        map.insert(key, value()); // new, through growths
                        if i % 3 == 0 {
                            map.insert(key, value()); // replaces: the old value drops
                        }
                        if i % 5 == 0 {
                            map.remove(&key);
                        }
                    }
                });
            }
        });
        map.retain(|k, _| k % 2 == 0);
        let before = map.len();
        map.clear();
        assert_eq!(map.len(), 0, "clear left {before} counted");
        for i in 0..100 {
            map.insert(i, value());
        }
        // The rest drop with the map.
    }
    assert_eq!(drops.load(Ordering::Relaxed), made.load(Ordering::Relaxed));
}

#[test]
fn a_panicking_closure_releases_its_bucket_and_changes_no_count() {
    let map: ConcurrentMap<u32, u32> = ConcurrentMap::new();
    map.insert(1, 1);
    let r = catch_unwind(AssertUnwindSafe(|| {
        map.update(&1, |_| panic!("an update that fails"));
    }));
    assert!(r.is_err());
    // The bucket's lock is free again: reads and writes of the same key go through.
    assert_eq!(map.get(&1), Some(1));
    assert_eq!(map.insert(1, 2), Some(1));
    let r = catch_unwind(AssertUnwindSafe(|| {
        map.retain(|_, _| panic!("a retain that fails"));
    }));
    assert!(r.is_err());
    assert_eq!(map.len(), 1);
    assert_eq!(map.remove_if(&1, |_| true), Some(2));
    assert!(map.is_empty());
    // And the map still grows after a panic in a whole-table pass.
    let before = map.capacity();
    for i in 0..10 * before as u32 {
        map.insert(i, i);
    }
    assert!(
        map.capacity() >= 10 * before,
        "capacity {} after a panic",
        map.capacity()
    );
}

/// Whether an [`Explodes`] panics when dropped.
static ARMED: AtomicBool = AtomicBool::new(false);

/// A value whose drop panics while [`ARMED`].
struct Explodes;

impl Drop for Explodes {
    fn drop(&mut self) {
        if ARMED.swap(false, Ordering::Relaxed) {
            panic!("a value that fails to drop");
        }
    }
}

#[test]
fn a_drop_that_panics_in_clear_leaves_the_count_right() {
    let map: ConcurrentMap<u32, Explodes> = ConcurrentMap::new();
    for i in 0..40 {
        map.insert(i, Explodes);
    }
    ARMED.store(true, Ordering::Relaxed);
    let r = catch_unwind(AssertUnwindSafe(|| map.clear()));
    assert!(r.is_err());
    // One value was taken out and panicked in its drop; the others are still in, and counted.
    assert_eq!(map.len(), 39);
    assert_eq!(map.keys().len(), 39);
    map.clear();
    assert!(map.is_empty());
}

#[test]
fn a_map_given_a_capacity_does_not_grow_before_it_holds_that_many() {
    for capacity in [0usize, 1, 16, 17, 1000, 4096] {
        let map = ConcurrentMap::with_capacity(capacity);
        let start = map.capacity();
        assert!(start >= capacity, "capacity {start} for {capacity} asked");
        assert_eq!(start % 16, 0);
        for i in 0..capacity {
            map.insert(i, ());
        }
        assert_eq!(map.capacity(), start, "grew before holding {capacity}");
    }
    // And it does grow past it.
    let map = ConcurrentMap::with_capacity(16);
    for i in 0..10_000u32 {
        map.insert(i, ());
    }
    assert!(map.capacity() >= 10_000);
    assert!(
        map.capacity() <= 2 * 10_000 + 16 * 64,
        "capacity {} for 10,000 entries",
        map.capacity()
    );
}

#[test]
fn a_capacity_no_table_can_hold_is_refused_by_a_panic_that_says_so() {
    for capacity in [usize::MAX, (1usize << 35) + 1, usize::MAX / 8] {
        let refused =
            std::panic::catch_unwind(|| ConcurrentMap::<u64, u64>::with_capacity(capacity))
                .expect_err("no table holds that many");
        let message = refused
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert!(
            message.contains("capacity overflow") && message.contains(&capacity.to_string()),
            "{message}"
        );
    }
    // Large entries pass `isize::MAX` bytes within the bucket limit: 2^31 blocks of sixteen 256 MiB values.
    let refused =
        std::panic::catch_unwind(|| ConcurrentMap::<u64, [u8; 1 << 28]>::with_capacity(1 << 35))
            .expect_err("2^35 entries of 256 MiB");
    let message = refused
        .downcast_ref::<String>()
        .expect("a formatted message");
    assert!(message.contains("capacity overflow"), "{message}");
}
