//! Layer 2 benches: a 4 KiB buffer from the pool against `Vec::with_capacity` (P1, and P2 under jemalloc and
//! mimalloc), a context-like object from an `ObjectPool` against building it (P3, with the `object-pool`
//! crate as a peer, and the floor no pool can go below: the same fill into a map the loop owns), and two
//! threads against one (P4); get + touch + drop from 256 B to 4 MiB, and a
//! producer/consumer pipeline whose buffers are freed on another thread (for reading: P6 is taken from
//! alternating runs of the same pipeline by `src/bin/paired.rs`). P5 (the bound under churn) is measured
//! by `src/bin/counts.rs`.

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use flowmem_benches::{
    fill, keep, new_ctx,
    objects::ObjectPools,
    pipeline::{P6_SIZE, pool_pipeline, touch, vec_pipeline},
    run_parallel,
};
use flowmem_pool::BufferPool;

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

fn object_ctx(c: &mut Criterion) {
    let mut group = c.benchmark_group("object_ctx");
    group.throughput(Throughput::Elements(1));
    group.bench_function("build", |b| {
        b.iter(|| {
            let mut ctx = new_ctx();
            fill(&mut ctx);
            keep(&ctx);
        })
    });
    // What no pool can go below (P3's floor): the same fill into a map the loop owns, cleared as a pool
    // clears it.
    let mut owned = new_ctx();
    group.bench_function("floor", |b| {
        b.iter(|| {
            owned.clear();
            fill(&mut owned);
            keep(&owned);
        })
    });
    // Direct calls, each inlined into its loop.
    let pools = ObjectPools::new();
    group.bench_function("pool", |b| b.iter(|| pools.use_ours()));
    group.bench_function("object_pool_crate", |b| b.iter(|| pools.use_object_pool()));
    group.bench_function("lockfree_linear", |b| b.iter(|| pools.use_linear()));
    group.bench_function("opool", |b| b.iter(|| pools.use_opool()));
    group.finish();
}

/// The same acquire + fill + release from two threads at once, each pool shared by both (for reading and
/// for P9's credibility check: P8 is taken from alternating runs of the same pools by `src/bin/paired.rs`).
fn object_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("object_threads");
    group.sampling_mode(SamplingMode::Flat);
    let pools = ObjectPools::new();
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements(threads as u64));
        for (name, work) in ObjectPools::USES {
            group.bench_function(format!("{name}_{threads}t"), |b| {
                b.iter_custom(|iters| {
                    run_parallel(threads, iters, |_, n| (0..n).for_each(|_| work(&pools)))
                })
            });
        }
    }
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

/// Get + touch every page + drop, at sizes from 256 B to 4 MiB: where a pool pays and where it does not
/// (the allocator's own reuse of freed blocks decides).
fn buffer_sweep(c: &mut Criterion) {
    let mut group = c.benchmark_group("buffer_sweep");
    group.throughput(Throughput::Elements(1));
    let pool = BufferPool::new();
    let sizes: &[(usize, &str)] = if flowmem_benches::quick() {
        &[(64 << 10, "64k"), (1 << 20, "1m")]
    } else {
        &[
            (256, "256"),
            (4 << 10, "4k"),
            (64 << 10, "64k"),
            (1 << 20, "1m"),
            (4 << 20, "4m"),
        ]
    };
    for &(size, label) in sizes {
        group.bench_function(format!("pool_{label}"), |b| {
            b.iter(|| {
                let mut buf = pool.get(keep(size));
                touch(&mut buf);
                keep(&buf);
            })
        });
        group.bench_function(format!("vec_{label}"), |b| {
            b.iter(|| {
                let mut buf = Vec::<u8>::with_capacity(keep(size));
                touch(&mut buf);
                keep(&buf);
            })
        });
    }
    group.finish();
}

/// The producer/consumer pipeline of target P6 (`flowmem_benches::pipeline`), at 64 KiB and 1 MiB. (P6 itself
/// is taken from alternating runs of the same pipeline by the `paired` binary.)
fn buffer_pipeline(c: &mut Criterion) {
    let mut group = c.benchmark_group("buffer_pipeline");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(1));
    let pool = BufferPool::new();
    for (size, label) in [(P6_SIZE, "64k"), (1 << 20, "1m")] {
        group.bench_function(format!("pool_{label}"), |b| {
            b.iter_custom(|n| pool_pipeline(&pool, size, n))
        });
        group.bench_function(format!("vec_{label}"), |b| {
            b.iter_custom(|n| vec_pipeline(size, n))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = flowmem_benches::criterion();
    targets = buffer_4k, object_ctx, object_threads, buffer_threads, buffer_sweep, buffer_pipeline
}
criterion_main!(benches);
