//! Layer 2 benches: a 4 KiB buffer from the pool against `Vec::with_capacity` (P1, and P2 under jemalloc and
//! mimalloc), a context-like object from an `ObjectPool` against building it (P3, with the `object-pool`
//! crate as a peer), and two threads against one (P4). P5 (the bound under churn) is measured by
//! `src/bin/counts.rs`.

use std::collections::HashMap;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use flowmem_benches::{keep, run_parallel};
use flowmem_pool::{BufferPool, ObjectPool, PoolConfig};

fn buffer_4k(c: &mut Criterion) {
    let mut group = c.benchmark_group("buffer_4k");
    group.throughput(Throughput::Elements(1));
    let pool = BufferPool::new();
    group.bench_function("pool", |b| {
        b.iter(|| {
            let mut buf = pool.get(keep(4096));
            buf.push(1);
            keep(&buf);
        })
    });
    group.bench_function("vec", |b| {
        b.iter(|| {
            let mut buf = Vec::<u8>::with_capacity(keep(4096));
            buf.push(1);
            keep(&buf);
        })
    });
    group.finish();
}

/// A workflow-context-like object: a map with room for 32 entries, 8 of them filled per use, keyed by
/// 4-byte ids with a fast hasher (as the engine's contexts are keyed by symbols).
type Ctx = HashMap<u32, u64, foldhash::fast::FixedState>;

fn new_ctx() -> Ctx {
    Ctx::with_capacity_and_hasher(32, foldhash::fast::FixedState::default())
}

fn fill(ctx: &mut Ctx) {
    for k in 0..8u32 {
        ctx.insert(keep(k), u64::from(k));
    }
}

fn object_ctx(c: &mut Criterion) {
    let mut group = c.benchmark_group("object_ctx");
    group.throughput(Throughput::Elements(1));
    let pool = ObjectPool::with_reset(new_ctx, PoolConfig::default());
    group.bench_function("pool", |b| {
        b.iter(|| {
            let mut ctx = pool.acquire();
            fill(&mut ctx);
            keep(&ctx);
        })
    });
    group.bench_function("build", |b| {
        b.iter(|| {
            let mut ctx = new_ctx();
            fill(&mut ctx);
            keep(&ctx);
        })
    });
    let peer = object_pool::Pool::new(64, new_ctx);
    group.bench_function("object_pool_crate", |b| {
        b.iter(|| {
            let mut ctx = peer.pull(new_ctx);
            ctx.clear();
            fill(&mut ctx);
            keep(&*ctx);
        })
    });
    group.finish();
}

fn buffer_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("buffer_threads");
    group.sampling_mode(SamplingMode::Flat);
    let pool = BufferPool::new();
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_function(format!("{threads}t"), |b| {
            b.iter_custom(|iters| {
                run_parallel(threads, iters, |t, n| {
                    for i in 0..n {
                        let size = 1024 << ((i as usize + t) % 4);
                        let mut buf = pool.get(keep(size));
                        buf.push(1);
                        keep(&buf);
                    }
                })
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = flowmem_benches::criterion();
    targets = buffer_4k, object_ctx, buffer_threads
}
criterion_main!(benches);
