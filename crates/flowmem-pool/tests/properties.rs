//! Property tests of the pools (quickcheck), one test per property.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering},
};

use flowmem_pool::{BufferPool, BufferPoolConfig, ObjectPool, PoolConfig};
use quickcheck::{QuickCheck, TestResult};

fn qc() -> QuickCheck {
    flowmem_testing::quickcheck(100)
}

#[test]
fn prop_buffers_have_at_least_the_capacity_asked() {
    fn prop(sizes: Vec<u32>) -> bool {
        let pool = BufferPool::new();
        sizes.iter().all(|s| {
            let n = *s as usize % (3 << 20);
            let buf = pool.get(n);
            buf.capacity() >= n && buf.is_empty()
        })
    }
    qc().quickcheck(prop as fn(Vec<u32>) -> bool);
}

#[test]
fn prop_buffers_are_reused() {
    fn prop(size: u32) -> bool {
        let pool = BufferPool::new();
        let n = size as usize % (1 << 20);
        let first = pool.get(n);
        let ptr = first.as_ptr();
        drop(first);
        let again = pool.get(n);
        again.as_ptr() == ptr && pool.stats().hits == 1
    }
    qc().quickcheck(prop as fn(u32) -> bool);
}

#[test]
fn prop_size_classes_are_used_as_documented() {
    // A request gets the smallest power-of-two class at least as large (and at least min_size); requests
    // above max_size get exactly what they asked, unpooled.
    fn prop(size: u32, min_shift: u8, span: u8) -> bool {
        let min = 1usize << (6 + min_shift % 6);
        let max = min << (span % 8);
        let pool = BufferPool::with_config(BufferPoolConfig {
            min_size: min,
            max_size: max,
            ..BufferPoolConfig::default()
        })
        .expect("valid settings");
        let n = size as usize % (max * 2);
        let cap = pool.get(n).capacity();
        if n > max {
            cap >= n && pool.stats().discards == 1
        } else {
            cap == n.max(min).next_power_of_two() && pool.class_sizes().contains(&cap)
        }
    }
    qc().quickcheck(prop as fn(u32, u8, u8) -> bool);
}

#[test]
fn prop_concurrent_use_is_safe() {
    fn prop(sizes: Vec<u16>) -> TestResult {
        if sizes.is_empty() {
            return TestResult::discard();
        }
        let pool = BufferPool::with_config(BufferPoolConfig {
            max_pooled_bytes: 256 * 1024,
            ..BufferPoolConfig::default()
        })
        .expect("valid settings");
        let ok = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4u8)
                .map(|t| {
                    let (pool, sizes) = (&pool, &sizes);
                    s.spawn(move || {
                        for (i, size) in sizes.iter().enumerate() {
                            let n = *size as usize;
                            let mut buf = pool.get(n);
                            if buf.capacity() < n || !buf.is_empty() {
                                return false;
                            }
                            buf.resize(n, t);
                            if buf.iter().any(|b| *b != t) {
                                return false;
                            }
                            if i % 3 == 0 {
                                let _kept = buf.into_vec();
                            }
                        }
                        true
                    })
                })
                .collect();
            handles.into_iter().all(|h| h.join().expect("no panic"))
        });
        let s = pool.stats();
        TestResult::from_bool(
            ok && s.hits + s.misses == 4 * sizes.len() as u64
                && s.bytes_pooled <= s.max_pooled_bytes,
        )
    }
    flowmem_testing::quickcheck(30).quickcheck(prop as fn(Vec<u16>) -> TestResult);
}

#[test]
fn prop_with_buffer_returns_the_buffer_even_on_panic() {
    fn prop(size: u16, panic: bool) -> bool {
        let pool = BufferPool::new();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.with_buffer(size as usize, |buf| {
                buf.push(1);
                if panic {
                    panic!("closure failed");
                }
            })
        }));
        result.is_err() == panic && pool.stats().returns == 1 && pool.stats().bytes_pooled > 0
    }
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    qc().quickcheck(prop as fn(u16, bool) -> bool);
    std::panic::set_hook(hook);
}

#[test]
fn prop_a_grown_buffer_is_reclassified() {
    fn prop(start: u16, grow: u32) -> bool {
        let pool = BufferPool::new();
        let mut buf = pool.get(start as usize);
        let extra = grow as usize % (1 << 20);
        buf.reserve_exact(extra);
        let cap = buf.capacity();
        let ptr = buf.as_ptr();
        drop(buf);
        // The buffer now serves requests up to the largest class its capacity covers.
        let class = 1usize << (usize::BITS - 1 - cap.leading_zeros());
        let again = pool.get(class);
        again.as_ptr() == ptr && again.capacity() == cap
    }
    qc().quickcheck(prop as fn(u16, u32) -> bool);
}

/// A context-like object: data from one user must never reach the next.
#[derive(Default)]
struct Ctx {
    values: HashMap<u32, u64>,
    owner: Option<u64>,
}

#[test]
fn prop_objects_from_acquire_are_clean() {
    fn prop(uses: Vec<Vec<(u32, u64)>>) -> bool {
        let pool = ObjectPool::new(
            Ctx::default,
            |c: &mut Ctx| {
                c.values.clear();
                c.owner = None;
            },
            PoolConfig::default(),
        );
        for (user, entries) in uses.iter().enumerate() {
            let mut ctx = pool.acquire();
            if !ctx.values.is_empty() || ctx.owner.is_some() {
                return false;
            }
            ctx.owner = Some(user as u64);
            ctx.values.extend(entries.iter().copied());
        }
        uses.len() <= 1 || pool.stats().reused == uses.len() as u64 - 1
    }
    qc().quickcheck(prop as fn(Vec<Vec<(u32, u64)>>) -> bool);
}

#[test]
fn prop_concurrent_acquire_release_keeps_counts_consistent() {
    fn prop(rounds: u8, hold: u8, bounded: bool) -> bool {
        let created = std::sync::Arc::new(AtomicU64::new(0));
        let counter = created.clone();
        let max_live = bounded.then_some(3);
        let pool = ObjectPool::new(
            move || {
                counter.fetch_add(1, Ordering::Relaxed);
                Vec::<u8>::new()
            },
            Vec::clear,
            PoolConfig {
                max_pooled: 4,
                max_live,
                ..PoolConfig::default()
            },
        );
        let per_thread = rounds as u64 + 1;
        // Acquires the test made, counted here: the pool's `acquired` (and so its `reused`) is checked
        // against it, not only against its own sum.
        let acquires = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for i in 0..per_thread {
                        let mut held = Vec::new();
                        for _ in 0..=(hold % 3) as usize {
                            if bounded {
                                match pool.try_acquire() {
                                    Ok(o) => held.push(o),
                                    Err(_) => break,
                                }
                            } else {
                                held.push(pool.acquire());
                            }
                        }
                        acquires.fetch_add(held.len() as u64, Ordering::Relaxed);
                        for o in &mut held {
                            o.push(i as u8);
                        }
                    }
                });
            }
        });
        let s = pool.stats();
        let created = created.load(Ordering::Relaxed);
        s.created == created
            && s.acquired == acquires.load(Ordering::Relaxed)
            && s.acquired == s.reused + s.created
            && s.live == s.pooled
            && max_live.is_none_or(|m| created <= m as u64)
    }
    flowmem_testing::quickcheck(50).quickcheck(prop as fn(u8, u8, bool) -> bool);
}

#[test]
fn prop_process_wide_functions_work() {
    fn prop(sizes: Vec<u16>) -> bool {
        sizes.iter().all(|s| {
            let n = *s as usize;
            let cap = flowmem_pool::with_buffer(n, |b| {
                b.extend(std::iter::repeat_n(7u8, n));
                b.capacity()
            });
            let got = flowmem_pool::get_buffer(n);
            let ok = cap >= n && got.capacity() >= n && got.is_empty();
            flowmem_pool::put_buffer(got.into_vec());
            ok
        })
    }
    qc().quickcheck(prop as fn(Vec<u16>) -> bool);
}

#[test]
fn reuse_is_counted_from_the_thread_cache_the_shared_queue_and_other_threads() {
    let pool = ObjectPool::with_reset(Vec::<u8>::new, PoolConfig::default());
    let cache = pool.config().thread_cache;
    // Twice the thread cache: half come back to the cache, half to the shared queue.
    let held: Vec<_> = (0..2 * cache).map(|_| pool.acquire()).collect();
    drop(held);
    let again: Vec<_> = (0..2 * cache).map(|_| pool.acquire()).collect();
    let s = pool.stats();
    assert_eq!(
        (s.acquired, s.created, s.reused),
        (4 * cache as u64, 2 * cache as u64, 2 * cache as u64)
    );
    // Released on another thread (its cache), then acquired there: reuses too.
    std::thread::scope(|s| {
        s.spawn(|| {
            drop(again);
            let _one = pool.acquire();
        });
    });
    let s = pool.stats();
    assert_eq!(
        (s.acquired, s.created, s.reused),
        (4 * cache as u64 + 1, 2 * cache as u64, 2 * cache as u64 + 1)
    );
    assert_eq!(s.pooled, 2 * cache);
}

/// A thread remembers the caches of the pools it used last (four places, picked by the pool's id): with
/// more pools than places, used in any order and dropped and made again, every acquire gets an object of
/// its own pool and every pool counts exactly its own reuses.
#[test]
fn prop_each_pool_reaches_its_own_thread_cache() {
    fn prop(steps: Vec<(u8, bool)>) -> bool {
        const POOLS: usize = 7;
        let new_pool = |tag: usize| {
            ObjectPool::new(move || (tag, 0u64), |obj| obj.1 = 0, PoolConfig::default())
        };
        let mut pools: Vec<ObjectPool<(usize, u64)>> = (0..POOLS).map(new_pool).collect();
        let mut buffers = BufferPool::new();
        let mut uses = [0u64; POOLS];
        for (pick, renew) in steps {
            let i = pick as usize % POOLS;
            if renew {
                pools[i] = new_pool(i);
                uses[i] = 0;
                buffers = BufferPool::new();
            }
            let mut obj = pools[i].acquire();
            if obj.0 != i || obj.1 != 0 {
                return false;
            }
            obj.1 = 7;
            drop(obj);
            let mut buf = buffers.get(300);
            buf.push(1);
            drop(buf);
            uses[i] += 1;
        }
        pools.iter().zip(uses).all(|(pool, n)| {
            let stats = pool.stats();
            stats.acquired == n && stats.created == n.min(1) && stats.reused == n.saturating_sub(1)
        })
    }
    qc().quickcheck(prop as fn(Vec<(u8, bool)>) -> bool);
}
