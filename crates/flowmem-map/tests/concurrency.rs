//! Real-thread tests: no lost update among `ReadMap` writers, snapshots that stay consistent under writes,
//! and `ArcCache`'s one creation per key, bound and failure handling.

use std::{
    collections::HashSet,
    sync::{
        Arc, Barrier,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use flowmem_map::{ArcCache, ConcurrentMap, ReadMap};
use flowmem_testing::iterations;

#[test]
fn read_map_writers_lose_no_update() {
    let threads = 4;
    let per_thread = iterations(2_000);
    let map: ReadMap<u64, u64> = ReadMap::new();
    map.insert(0, 0);
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        for t in 0..threads as u64 {
            let (map, barrier) = (&map, &barrier);
            s.spawn(move || {
                barrier.wait();
                for i in 0..per_thread {
                    map.update(&0, |n| *n += 1).unwrap();
                    map.insert(1 + t * per_thread + i, t);
                    if i % 64 == 0 {
                        map.update_batch(|m| *m.get_mut(&0).unwrap() += 1);
                    }
                }
            });
        }
    });
    let batches = per_thread.div_ceil(64);
    assert_eq!(
        map.get(&0),
        Some(threads as u64 * (per_thread + batches)),
        "every update counted"
    );
    assert_eq!(map.len() as u64, 1 + threads as u64 * per_thread);
}

#[test]
fn read_map_snapshots_are_consistent_while_writers_run() {
    // Writers move one unit between two keys in one batch: every snapshot must show the sum unchanged.
    let map: ReadMap<&str, i64> = ReadMap::new();
    map.update_batch(|m| {
        m.insert("a", 1000);
        m.insert("b", 0);
    });
    let rounds = iterations(5_000);
    let done = std::sync::atomic::AtomicBool::new(false);
    let snapshots = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !done.load(Ordering::Acquire) {
                    let snap = map.snapshot();
                    assert_eq!(snap["a"] + snap["b"], 1000);
                    snapshots.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        // The writer goes on until the readers have taken snapshots while it wrote: on a loaded machine the
        // reader threads may not be scheduled before `rounds` batches are done.
        let mut i = 0u64;
        while i < rounds || snapshots.load(Ordering::Relaxed) < 100 {
            let (from, to) = if i.is_multiple_of(2) {
                ("a", "b")
            } else {
                ("b", "a")
            };
            map.update_batch(|m| {
                *m.get_mut(from).unwrap() -= 1;
                *m.get_mut(to).unwrap() += 1;
            });
            i += 1;
        }
        done.store(true, Ordering::Release);
    });
    assert!(snapshots.load(Ordering::Relaxed) >= 100);
}

#[test]
fn concurrent_map_readers_and_writers_on_shared_keys_end_consistent() {
    let map: ConcurrentMap<u64, (u64, u64)> = (0..64).map(|k| (k, (0, 0))).collect();
    let rounds = iterations(20_000);
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let map = &map;
            s.spawn(move || {
                for i in 0..rounds {
                    // Both halves of a value change together, under one lock.
                    map.update(&((i + t) % 64), |(a, b)| {
                        *a += 1;
                        *b += 1;
                    });
                }
            });
        }
        s.spawn(|| {
            for i in 0..rounds {
                let (a, b) = map.get(&(i % 64)).unwrap();
                assert_eq!(a, b, "a torn value");
            }
        });
    });
    let total: u64 = map.items().iter().map(|(_, (a, _))| a).sum();
    assert_eq!(total, 2 * rounds);
}

#[test]
fn arc_cache_concurrent_get_or_create_of_one_key_creates_one_value() {
    let cache: ArcCache<String, usize> = ArcCache::new(16);
    let created = AtomicUsize::new(0);
    let threads = 8;
    let barrier = Barrier::new(threads);
    let values: Vec<Arc<usize>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (cache, created, barrier) = (&cache, &created, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    cache.get_or_create("spec", || {
                        created.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        t
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(created.load(Ordering::SeqCst), 1);
    assert!(values.iter().all(|v| Arc::ptr_eq(v, &values[0])));
    assert_eq!(cache.stats().created, 1);
}

#[test]
fn arc_cache_evicts_past_capacity_least_recently_used_first() {
    let cache: ArcCache<u32, u32> = ArcCache::new(64);
    for k in 0..64 {
        cache.get_or_create(&k, || k);
    }
    for k in 64..1000 {
        // Key 0 stays in use; it must never be evicted.
        assert_eq!(*cache.get_or_create(&0, || unreachable!()), 0);
        cache.get_or_create(&k, || k);
        assert!(
            cache.len() <= 64,
            "{} values past a capacity of 64",
            cache.len()
        );
    }
    let stats = cache.stats();
    assert_eq!(stats.created, 1000);
    assert_eq!(stats.evicted, stats.created - stats.len as u64);
    assert!(cache.contains_key(&0));
    assert!(cache.contains_key(&999), "the newest value is kept");
    assert!(!cache.contains_key(&64), "an old, unused value is evicted");
}

#[test]
fn arc_cache_stays_bounded_under_threads_and_values_match_keys() {
    let cache: ArcCache<u64, u64> = ArcCache::new(100);
    let threads = 4;
    let rounds = iterations(20_000);
    std::thread::scope(|s| {
        for t in 0..threads as u64 {
            let cache = &cache;
            s.spawn(move || {
                let mut x = t + 1;
                for _ in 0..rounds {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let key = (x >> 33) % 400;
                    assert_eq!(*cache.get_or_create(&key, || key * 10), key * 10);
                    let len = cache.len();
                    assert!(len <= 100 + threads, "{len} values past a capacity of 100");
                }
            });
        }
    });
    assert!(cache.len() <= 100);
    let stats = cache.stats();
    assert_eq!(stats.evicted, stats.created - stats.len as u64);
}

#[test]
fn arc_cache_failed_or_panicking_creation_stores_nothing_and_is_retried() {
    let cache: ArcCache<String, String> = ArcCache::new(4);
    let failed: Result<_, String> = cache.try_get_or_create("k", || Err("disk full".to_string()));
    assert_eq!(failed.unwrap_err(), "disk full");
    assert_eq!((cache.len(), cache.contains_key("k")), (0, false));

    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cache.get_or_create("k", || panic!("creation failed"))
    }));
    assert!(panicked.is_err());
    assert_eq!(cache.len(), 0);

    assert_eq!(*cache.get_or_create("k", || "made".into()), "made");
    assert_eq!(cache.stats().created, 1);
}

#[test]
fn arc_cache_waiters_retry_after_a_failed_creation_and_create_once() {
    // One thread's creation fails while others wait for it: exactly one of the waiters then creates.
    let cache: ArcCache<u8, u8> = ArcCache::new(4);
    let attempts = AtomicUsize::new(0);
    let threads = 6;
    let barrier = Barrier::new(threads);
    let outcomes: Vec<Result<Arc<u8>, ()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (cache, attempts, barrier) = (&cache, &attempts, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    cache.try_get_or_create(&1, || {
                        std::thread::sleep(Duration::from_millis(10));
                        if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                            Err(())
                        } else {
                            Ok(7)
                        }
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!(outcomes.iter().filter(|o| o.is_err()).count(), 1);
    let values: HashSet<*const u8> = outcomes.iter().flatten().map(Arc::as_ptr).collect();
    assert_eq!(values.len(), 1);
}

#[test]
fn arc_cache_creation_asking_for_its_own_key_panics_instead_of_hanging() {
    let cache = Arc::new(ArcCache::<u8, u8>::new(4));
    let inner = Arc::clone(&cache);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cache.get_or_create(&1, || *inner.get_or_create(&1, || 1))
    }));
    let payload = outcome.unwrap_err();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or(payload.downcast_ref::<String>().map(String::as_str))
        .unwrap();
    assert!(message.contains("same key"), "{message}");
    // Another key from inside a creation is fine.
    let inner = Arc::clone(&cache);
    assert_eq!(
        *cache.get_or_create(&2, || *inner.get_or_create(&3, || 3) + 1),
        4
    );
}

#[test]
fn arc_cache_remove_and_clear_keep_holders_values() {
    let cache: ArcCache<String, Vec<u8>> = ArcCache::new(8);
    let held = cache.get_or_create("a", || vec![1]);
    cache.get_or_create("b", || vec![2]);
    assert_eq!(cache.remove("a").as_deref(), Some(&vec![1]));
    assert_eq!(*held, vec![1]);
    cache.clear();
    assert!(cache.is_empty());
    assert_eq!(cache.get("b"), None);
}

#[test]
#[ignore = "long stress run: cargo xtask stress"]
fn stress_all_three_maps_on_four_threads() {
    let threads = 4u64;
    let rounds = 300_000u64;
    let concurrent: ConcurrentMap<u64, u64> = ConcurrentMap::new();
    let read: ReadMap<u64, u64> = ReadMap::new();
    let cache: ArcCache<u64, u64> = ArcCache::new(256);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (concurrent, read, cache) = (&concurrent, &read, &cache);
            s.spawn(move || {
                let mut x = t * 7 + 1;
                for i in 0..rounds {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let key = (x >> 33) % 2048;
                    // Per-thread counters under shared keys: the final sums are known.
                    concurrent.get_or_insert_with(key, || 0);
                    concurrent.update(&key, |v| *v += 1);
                    if i % 50 == 0 {
                        read.get_or_insert_with(key % 64, || 0);
                        read.update(&(key % 64), |v| *v += 1);
                    }
                    assert_eq!(*cache.get_or_create(&key, || key * 3), key * 3);
                    if i % 1000 == 0 {
                        concurrent.for_each(|k, _| {
                            concurrent.contains_key(k);
                        });
                    }
                }
            });
        }
    });
    let total: u64 = concurrent.items().iter().map(|(_, v)| v).sum();
    assert_eq!(total, threads * rounds);
    let read_total: u64 = read.items().iter().map(|(_, v)| v).sum();
    assert_eq!(read_total, threads * rounds.div_ceil(50));
    assert!(cache.len() <= 256);
}
