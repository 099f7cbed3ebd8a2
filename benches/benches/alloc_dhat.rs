//! The peer of allocation-site sampling (target T2): the loop of `alloc_sites` under dhat's heap
//! profiler, which takes a global lock and a backtrace at every allocation.
//!
//! dhat must be the global allocator: built with an allocator feature, this bench measures nothing.

use criterion::Throughput;
use flowmem_testing::sites::alloc_heavy;

#[cfg(not(any(feature = "jemalloc", feature = "mimalloc")))]
#[global_allocator]
static GLOBAL: dhat::Alloc = dhat::Alloc;

/// Allocations per iteration (as in `alloc_sites`).
const N: usize = 10_000;

fn main() {
    if cfg!(any(feature = "jemalloc", feature = "mimalloc")) {
        return;
    }
    let file = std::env::temp_dir().join(format!("flowmem-bench-dhat-{}.json", std::process::id()));
    let profiler = dhat::Profiler::builder().file_name(&file).build();
    let mut c = flowmem_benches::criterion().configure_from_args();
    {
        let mut group = c.benchmark_group("alloc_sites");
        group.throughput(Throughput::Elements(N as u64));
        group.bench_function("dhat", |b| b.iter(|| alloc_heavy(N)));
        group.finish();
    }
    c.final_summary();
    drop(profiler);
    let _ = std::fs::remove_file(&file);
}
