//! Allocation-site sampling (target T1): the same allocation-heavy loop with `Tracking` as the global
//! allocator, site sampling off, on at the default rate (2 MiB) and on at jemalloc's (512 KiB).
//!
//! This bench installs `Tracking<System>` itself: built with an allocator feature (`--allocator
//! jemalloc`), where the bench library installs that allocator, it measures nothing.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
#[cfg(not(any(feature = "jemalloc", feature = "mimalloc")))]
use flowmem_alloc::sites;
use flowmem_testing::sites::alloc_heavy;

#[cfg(not(any(feature = "jemalloc", feature = "mimalloc")))]
#[global_allocator]
static GLOBAL: flowmem_alloc::Tracking<std::alloc::System> =
    flowmem_alloc::Tracking::new(std::alloc::System);

/// Allocations per iteration.
const N: usize = 10_000;

fn sampling(c: &mut Criterion) {
    if cfg!(any(feature = "jemalloc", feature = "mimalloc")) {
        return;
    }
    let mut group = c.benchmark_group("alloc_sites");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("tracking", |b| b.iter(|| alloc_heavy(N)));
    #[cfg(not(any(feature = "jemalloc", feature = "mimalloc")))]
    {
        sites::start(sites::SiteOptions::new()).expect("Tracking is installed");
        group.bench_function("sampled", |b| b.iter(|| alloc_heavy(N)));
        // jemalloc's default interval, four times the samples: reported beside the default.
        sites::start(sites::SiteOptions::new().mean_interval(512 * 1024)).expect("installed");
        group.bench_function("sampled_512k", |b| b.iter(|| alloc_heavy(N)));
        sites::stop();
        let report = sites::report();
        // (Nothing is sampled when a filter left these benchmarks out.)
        assert!(
            report.samples == 0 || report.share_of("alloc_heavy") > 0.9,
            "the loop is the sampled site:\n{report}"
        );
        assert_eq!(sites::reentered(), 0);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = flowmem_benches::criterion();
    targets = sampling
}
criterion_main!(benches);
