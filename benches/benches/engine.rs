//! Layer 5 benches. For now the `simd` helpers against plain one-element-at-a-time loops (E5) at 100, 1,000
//! and 10,000 elements; the executor's benches come with it.
//!
//! Inputs: status bytes from an alphabet of four (the counted byte is one in four), with a rare byte every
//! 64th place (the filtered one) and no occurrence of the byte `pattern_any` looks for (so both versions
//! scan everything); `u64` values from a fixed pseudo-random sequence.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowmem_benches::keep;
use flowmem_engine::simd;

fn inputs(n: usize) -> (Vec<u8>, Vec<u64>) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let bytes = (0..n)
        .map(|i| if i % 64 == 63 { 9 } else { (next() % 4) as u8 })
        .collect();
    let words = (0..n).map(|_| next() >> 8).collect();
    (bytes, words)
}

fn helpers(c: &mut Criterion) {
    for (n, label) in [(100usize, "100"), (1_000, "1k"), (10_000, "10k")] {
        let (bytes, words) = inputs(n);
        let mut group = c.benchmark_group(format!("simd_{label}"));
        group.throughput(Throughput::Elements(n as u64));
        let mut out = Vec::with_capacity(n);

        group.bench_function("count", |b| {
            b.iter(|| simd::pattern_count(keep(&bytes), keep(2)))
        });
        group.bench_function("count_scalar", |b| {
            b.iter(|| simd::scalar::pattern_count(keep(&bytes), keep(2)))
        });
        group.bench_function("any", |b| {
            b.iter(|| simd::pattern_any(keep(&bytes), keep(200)))
        });
        group.bench_function("any_scalar", |b| {
            b.iter(|| simd::scalar::pattern_any(keep(&bytes), keep(200)))
        });
        group.bench_function("filter", |b| {
            b.iter(|| {
                out.clear();
                simd::pattern_filter(keep(&bytes), keep(9), &mut out);
                keep(out.len())
            })
        });
        group.bench_function("filter_scalar", |b| {
            b.iter(|| {
                out.clear();
                simd::scalar::pattern_filter(keep(&bytes), keep(9), &mut out);
                keep(out.len())
            })
        });
        group.bench_function("sum", |b| b.iter(|| simd::sum_u64(keep(&words))));
        group.bench_function("sum_scalar", |b| {
            b.iter(|| simd::scalar::sum_u64(keep(&words)))
        });
        group.bench_function("max", |b| b.iter(|| simd::max_u64(keep(&words))));
        group.bench_function("max_scalar", |b| {
            b.iter(|| simd::scalar::max_u64(keep(&words)))
        });
        group.bench_function("average", |b| b.iter(|| simd::average_u64(keep(&words))));
        group.bench_function("average_scalar", |b| {
            b.iter(|| simd::scalar::average_u64(keep(&words)))
        });
        group.bench_function("variance", |b| b.iter(|| simd::variance_u64(keep(&words))));
        group.bench_function("variance_scalar", |b| {
            b.iter(|| simd::scalar::variance_u64(keep(&words)))
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = flowmem_benches::criterion();
    targets = helpers
}
criterion_main!(benches);
