//! Layer 2 benches: a 4 KiB buffer from the pool against `Vec::with_capacity` (P1, and P2 under jemalloc and
//! mimalloc), a context-like object from an `ObjectPool` against building it (P3, with the `object-pool`
//! crate as a peer, and the floor no pool can go below: the same fill into a map the loop owns), and two
//! threads against one (P4); get + touch + drop from 256 B to 4 MiB, and a
//! producer/consumer pipeline whose buffers are freed on another thread (for reading: P6 is taken from
//! alternating runs of the same pipeline by `src/bin/paired.rs`). P5 (the bound under churn) is measured
//! by `src/bin/counts.rs`.

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use flowmem_benches::{
    Ctx, fill, keep, new_ctx,
    pipeline::{P6_SIZE, pool_pipeline, touch, vec_pipeline},
    run_parallel,
};
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

/// One acquire + fill + release with one of the [`ObjectPools`].
type PoolUse = fn(&ObjectPools);

/// The pools of the object benches, each as a competent user of it would set it up (a capacity of 64
/// where the pool asks for one; a reset that clears the map), and one acquire + fill + release with each.
struct ObjectPools {
    ours: ObjectPool<Ctx>,
    object_pool: object_pool::Pool<Ctx>,
    linear: lockfree_object_pool::LinearObjectPool<Ctx>,
    opool: opool::Pool<CtxAllocator, Ctx>,
}

impl ObjectPools {
    fn new() -> ObjectPools {
        ObjectPools {
            ours: ObjectPool::with_reset(new_ctx, PoolConfig::default()),
            object_pool: object_pool::Pool::new(64, new_ctx),
            linear: lockfree_object_pool::LinearObjectPool::new(new_ctx, |c: &mut Ctx| c.clear()),
            opool: opool::Pool::new(64, CtxAllocator),
        }
    }

    fn use_ours(&self) {
        let mut ctx = self.ours.acquire();
        fill(&mut ctx);
        keep(&*ctx);
    }

    fn use_object_pool(&self) {
        // object-pool does not clear what comes back: the user does.
        let mut ctx = self.object_pool.pull(new_ctx);
        ctx.clear();
        fill(&mut ctx);
        keep(&*ctx);
    }

    fn use_linear(&self) {
        let mut ctx = self.linear.pull();
        fill(&mut ctx);
        keep(&*ctx);
    }

    fn use_opool(&self) {
        let mut ctx = self.opool.get();
        fill(&mut ctx);
        keep(&*ctx);
    }

    /// Each pool's bench name and use, ours first.
    const USES: [(&'static str, PoolUse); 4] = [
        ("pool", ObjectPools::use_ours),
        ("object_pool_crate", ObjectPools::use_object_pool),
        ("lockfree_linear", ObjectPools::use_linear),
        ("opool", ObjectPools::use_opool),
    ];
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

/// opool's way to make and clear the contexts.
struct CtxAllocator;

impl opool::PoolAllocator<Ctx> for CtxAllocator {
    fn allocate(&self) -> Ctx {
        new_ctx()
    }
    fn reset(&self, ctx: &mut Ctx) {
        ctx.clear();
    }
}

/// The same acquire + fill + release from two threads at once (target P8), each pool shared by both.
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
