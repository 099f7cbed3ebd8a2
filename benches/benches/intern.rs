//! Layer 1 benches: interning hits against raw lasso and a `Mutex<HashMap>` (I1) and the fastest peers,
//! string-interner's `BufferBackend` and ustr (I7), resolve (I2), frozen lookups (I3), two threads against
//! one (I4). I1, I3, I4 and I7 take their figures from alternating runs of the same loops by the `paired`
//! binary (`flowmem_benches::paired`): these criterion groups stay in the report as information. Memory
//! (I5, I6) is measured by `src/bin/counts.rs`.

use std::{
    collections::HashMap,
    sync::{Mutex, atomic::AtomicU32},
};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use flowmem_benches::{keep, probes, run_parallel, vocabulary, walk_probes};
use flowmem_intern::{StringPool, Symbol};
use lasso::{Spur, ThreadedRodeo};
use string_interner::{StringInterner, backend::BufferBackend};

fn intern_hit(c: &mut Criterion) {
    let words = vocabulary(10_000);
    let probes = probes(&words);
    let mut group = c.benchmark_group("intern_hit");
    group.throughput(Throughput::Elements(probes.len() as u64));

    let pool = StringPool::new();
    words.iter().for_each(|w| {
        pool.intern(w);
    });
    group.bench_function("flowmem", |b| {
        b.iter(|| {
            probes.iter().for_each(|w| {
                keep(pool.intern(keep(w)));
            })
        })
    });

    let rodeo: ThreadedRodeo<Spur> = ThreadedRodeo::new();
    words.iter().for_each(|w| {
        rodeo.get_or_intern(w);
    });
    group.bench_function("lasso", |b| {
        b.iter(|| {
            probes.iter().for_each(|w| {
                keep(rodeo.get_or_intern(keep(w)));
            })
        })
    });

    // string-interner with its most compact backend (one buffer; its default hasher), one thread: it
    // needs `&mut` to intern.
    let mut interner: StringInterner<BufferBackend> = StringInterner::new();
    words.iter().for_each(|w| {
        interner.get_or_intern(w);
    });
    group.bench_function("string_interner_buffer", |b| {
        b.iter(|| {
            probes.iter().for_each(|w| {
                keep(interner.get_or_intern(keep(w)));
            })
        })
    });

    // ustr: one process-wide table of leaked strings (never freed).
    words.iter().for_each(|w| {
        ustr::ustr(w);
    });
    group.bench_function("ustr", |b| {
        b.iter(|| {
            probes.iter().for_each(|w| {
                keep(ustr::ustr(keep(w)));
            })
        })
    });

    let map: Mutex<HashMap<String, u32>> = Mutex::new(HashMap::new());
    let next = AtomicU32::new(0);
    let intern_std = |w: &str| -> u32 {
        let mut map = map.lock().expect("not poisoned");
        if let Some(id) = map.get(w) {
            return *id;
        }
        let id = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        map.insert(w.to_string(), id);
        id
    };
    words.iter().for_each(|w| {
        intern_std(w);
    });
    group.bench_function("mutex_hashmap", |b| {
        b.iter(|| {
            probes.iter().for_each(|w| {
                keep(intern_std(keep(w)));
            })
        })
    });
    group.finish();
}

fn resolve(c: &mut Criterion) {
    let words = vocabulary(10_000);
    let mut group = c.benchmark_group("resolve");
    group.throughput(Throughput::Elements(words.len() as u64));

    let pool = StringPool::new();
    let symbols: Vec<Symbol> = probes(&words).iter().map(|w| pool.intern(w)).collect();
    group.bench_function("flowmem", |b| {
        b.iter(|| {
            symbols.iter().for_each(|s| {
                keep(pool.resolve(keep(*s)));
            })
        })
    });

    let rodeo: ThreadedRodeo<Spur> = ThreadedRodeo::new();
    let spurs: Vec<Spur> = probes(&words)
        .iter()
        .map(|w| rodeo.get_or_intern(w))
        .collect();
    group.bench_function("lasso", |b| {
        b.iter(|| {
            spurs.iter().for_each(|s| {
                keep(rodeo.resolve(keep(s)));
            })
        })
    });
    group.finish();
}

fn lookup(c: &mut Criterion) {
    let words = vocabulary(10_000);
    let probes = probes(&words);
    let mut group = c.benchmark_group("lookup");
    group.throughput(Throughput::Elements(probes.len() as u64));

    let pool = StringPool::new();
    words.iter().for_each(|w| {
        pool.intern(w);
    });
    group.bench_function("pool_get", |b| {
        b.iter(|| {
            probes.iter().for_each(|w| {
                keep(pool.get(keep(w)));
            })
        })
    });
    let frozen = pool.freeze();
    group.bench_function("frozen_get", |b| {
        b.iter(|| {
            probes.iter().for_each(|w| {
                keep(frozen.get(keep(w)));
            })
        })
    });
    group.finish();
}

fn intern_threads(c: &mut Criterion) {
    let words = vocabulary(10_000);
    let probes = probes(&words);
    let pool = StringPool::new();
    words.iter().for_each(|w| {
        pool.intern(w);
    });
    let mut group = c.benchmark_group("intern_threads");
    group.sampling_mode(SamplingMode::Flat);
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements((threads * probes.len()) as u64));
        group.bench_function(format!("{threads}t"), |b| {
            b.iter_custom(|iters| {
                run_parallel(threads, iters, |t, n| {
                    walk_probes(&probes, t, n, |w| {
                        keep(pool.intern(keep(w)));
                    })
                })
            })
        });
    }
    // The same lookups in a frozen pool (no locks), for comparison.
    let frozen = {
        let pool = StringPool::new();
        words.iter().for_each(|w| {
            pool.intern(w);
        });
        pool.freeze()
    };
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements((threads * probes.len()) as u64));
        group.bench_function(format!("frozen_{threads}t"), |b| {
            b.iter_custom(|iters| {
                run_parallel(threads, iters, |t, n| {
                    walk_probes(&probes, t, n, |w| {
                        keep(frozen.get(keep(w)));
                    })
                })
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = flowmem_benches::criterion();
    targets = intern_hit, resolve, lookup, intern_threads
}
criterion_main!(benches);
