//! Concurrency stress tests with real threads, checking the invariants while the churn runs. Short in the
//! default `cargo test`; the `_long` twins run under `cargo xtask stress`.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::Duration,
};

use flowmem_pool::{BufferPool, BufferPoolConfig, ObjectPool, PoolConfig};

/// Threads get, hold and drop buffers of random sizes while a monitor checks the bound.
fn buffer_churn(threads: u64, per_thread: u64) {
    let bound = 512 * 1024;
    let pool = BufferPool::with_config(BufferPoolConfig {
        max_pooled_bytes: bound,
        thread_cache_bytes: 64 * 1024,
        ..BufferPoolConfig::default()
    })
    .expect("valid settings");
    let done = AtomicBool::new(false);
    let gets = AtomicU64::new(0);
    std::thread::scope(|s| {
        let monitor = s.spawn(|| {
            let mut max = 0;
            while !done.load(Ordering::Acquire) {
                max = max.max(pool.stats().bytes_pooled);
                std::thread::yield_now();
            }
            max
        });
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (pool, gets) = (&pool, &gets);
                s.spawn(move || {
                    let mut held = Vec::new();
                    let mut x = t * 7 + 1;
                    for _ in 0..per_thread {
                        x = x
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1_442_695_040_888_963_407);
                        let size = 128 + (x >> 40) as usize % (200 * 1024);
                        let mut buf = pool.get(size);
                        assert!(buf.capacity() >= size && buf.is_empty());
                        buf.push(t as u8);
                        gets.fetch_add(1, Ordering::Relaxed);
                        if (x >> 20) % 4 == 0 {
                            held.push(buf);
                        }
                        if held.len() > 8 {
                            held.clear();
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("no panic");
        }
        done.store(true, Ordering::Release);
        let max = monitor.join().expect("no panic");
        assert!(max <= bound, "{max} pooled bytes, bound {bound}");
    });
    let s = pool.stats();
    assert_eq!(s.hits + s.misses, gets.load(Ordering::Relaxed));
    assert!(s.bytes_pooled <= bound);
}

/// Threads share a bounded pool with every kind of acquire while a monitor checks the bound on live objects.
fn bounded_churn(threads: u64, per_thread: u64) {
    let pool = ObjectPool::with_reset(
        Vec::<u64>::new,
        PoolConfig {
            max_live: Some(3),
            ..PoolConfig::default()
        },
    );
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let monitor = s.spawn(|| {
            let mut max = 0;
            while !done.load(Ordering::Acquire) {
                max = max.max(pool.stats().live);
                std::thread::yield_now();
            }
            max
        });
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let pool = &pool;
                s.spawn(move || {
                    for i in 0..per_thread {
                        let obj = match i % 3 {
                            0 => pool.try_acquire().ok(),
                            1 => pool.acquire_timeout(Duration::from_secs(30)).ok(),
                            _ => Some(pool.acquire()),
                        };
                        if let Some(mut obj) = obj {
                            assert!(obj.is_empty(), "reset ran");
                            obj.push(t);
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("no panic");
        }
        done.store(true, Ordering::Release);
        assert!(monitor.join().expect("no panic") <= 3);
    });
    let s = pool.stats();
    assert!(s.created <= 3 && s.live <= 3, "{s:?}");
    assert_eq!(s.acquired, s.reused + s.created);
}

#[test]
fn buffer_pool_bound_holds_under_churn() {
    buffer_churn(3, flowmem_testing::iterations(20_000));
}

#[test]
#[ignore = "long stress run: cargo xtask stress"]
fn buffer_pool_bound_holds_under_churn_long() {
    buffer_churn(8, 2_000_000);
}

#[test]
fn bounded_object_pool_under_churn() {
    bounded_churn(4, flowmem_testing::iterations(5_000));
}

#[test]
#[ignore = "long stress run: cargo xtask stress"]
fn bounded_object_pool_under_churn_long() {
    bounded_churn(16, 200_000);
}

/// Issue 14, bug 8: the bound on idle bytes, checked at every step. Two threads churn in rounds; between
/// rounds both stop at a barrier, where the reading is exact (no buffer in flight) and must be within the
/// bound; during the rounds a monitor checks every reading too.
#[test]
fn the_idle_bytes_stay_within_the_bound_at_every_step() {
    let bound = 256 * 1024;
    let pool = BufferPool::with_config(BufferPoolConfig {
        max_pooled_bytes: bound,
        thread_cache_bytes: 48 * 1024,
        ..BufferPoolConfig::default()
    })
    .expect("valid settings");
    let rounds = 200;
    let barrier = std::sync::Barrier::new(2);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Acquire) {
                let seen = pool.stats().bytes_pooled;
                assert!(seen <= bound, "{seen} idle bytes read, bound {bound}");
                std::thread::yield_now();
            }
        });
        let workers: Vec<_> = (0..2u64)
            .map(|t| {
                let (pool, barrier) = (&pool, &barrier);
                s.spawn(move || {
                    let mut x = t + 11;
                    let mut held = Vec::new();
                    for _ in 0..rounds {
                        for _ in 0..500 {
                            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                            let size = 256 << ((x >> 33) % 9); // 256 B .. 64 KiB
                            if (x >> 20) % 3 == 0 && !held.is_empty() {
                                held.swap_remove((x >> 40) as usize % held.len());
                            } else if held.len() < 32 {
                                held.push(pool.get(size));
                            } else {
                                held.clear();
                            }
                        }
                        held.clear();
                        if barrier.wait().is_leader() {
                            let exact = pool.stats().bytes_pooled;
                            assert!(exact <= bound, "{exact} idle bytes at rest, bound {bound}");
                        }
                        barrier.wait();
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("no panic");
        }
        done.store(true, Ordering::Release);
    });
}

/// Buffers passing through the shared queues from thread to thread while a monitor reads the stats: a
/// buffer taken from a queue must not be subtracted from the queues' byte count before the thread that
/// queued it has added it (the count went below zero for that moment, and `stats` overflowed adding
/// it up).
#[test]
fn stats_read_while_buffers_cross_the_shared_queues() {
    let pool = BufferPool::with_config(BufferPoolConfig {
        max_pooled_bytes: 1 << 20,
        // One buffer a class in each thread's cache: the rest of each batch goes to the shared queue.
        thread_cache_buffers: 1,
        ..BufferPoolConfig::default()
    })
    .expect("valid settings");
    let done = AtomicBool::new(false);
    let rounds = if cfg!(miri) || std::env::var_os("FLOWMEM_TEST_SCALE").is_some() {
        2_000
    } else {
        50_000
    };
    std::thread::scope(|s| {
        let monitor = s.spawn(|| {
            let mut reads = 0u64;
            while !done.load(Ordering::Acquire) {
                let stats = pool.stats();
                assert!(stats.bytes_pooled <= 1 << 20, "{stats:?}");
                reads += 1;
            }
            reads
        });
        // More threads than this machine's two cores, so that a thread is sometimes switched out between
        // queueing a buffer and counting it.
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..rounds {
                        let batch: Vec<Vec<u8>> = (0..4).map(|_| pool.take(4096)).collect();
                        batch.into_iter().for_each(|b| pool.put(b));
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("no panic");
        }
        done.store(true, Ordering::Release);
        assert!(monitor.join().expect("no panic") > 0);
    });
}
