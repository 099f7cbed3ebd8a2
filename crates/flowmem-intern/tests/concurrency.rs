//! Many threads interning the same new strings at the same moment must get one symbol per string.
//!
//! lasso's `ThreadedRodeo` once gave a string two keys when two threads interned it at once. Each round
//! here releases all threads together on a fresh batch of strings, so the window in which such a race
//! could happen is hit thousands of times; any string with two symbols, or a pool holding more strings than
//! were distinct, fails the test.

use std::sync::Barrier;

use flowmem_intern::{StringPool, Symbol, sym};

fn race(threads: usize, rounds: usize, batch: usize) {
    let pool = StringPool::new();
    let barrier = Barrier::new(threads);
    let results: Vec<Vec<Vec<Symbol>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (pool, barrier) = (&pool, &barrier);
                s.spawn(move || {
                    let mut rounds_out = Vec::with_capacity(rounds);
                    for round in 0..rounds {
                        let words: Vec<String> =
                            (0..batch).map(|i| format!("r{round}-w{i}")).collect();
                        barrier.wait();
                        // Half the threads go forwards, half backwards, to collide in the middle too.
                        let mut out = vec![None; batch];
                        for k in 0..batch {
                            let i = if t % 2 == 0 { k } else { batch - 1 - k };
                            out[i] = Some(pool.intern(&words[i]));
                        }
                        rounds_out.push(out.into_iter().map(|s| s.expect("interned")).collect());
                    }
                    rounds_out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .collect()
    });
    let (first, others) = results.split_first().expect("at least one thread");
    for (round, symbols) in first.iter().enumerate() {
        for (t, other) in others.iter().enumerate() {
            assert_eq!(
                &other[round],
                symbols,
                "round {round}: thread {} saw other symbols",
                t + 1
            );
        }
        for (i, symbol) in symbols.iter().enumerate() {
            assert_eq!(pool.resolve(*symbol), format!("r{round}-w{i}"));
        }
    }
    assert_eq!(
        pool.len(),
        sym::WELL_KNOWN.len() + rounds * batch,
        "a string got two symbols"
    );
}

#[test]
fn same_new_strings_from_many_threads_get_one_symbol_each() {
    race(4, flowmem_testing::iterations(200) as usize, 64);
}

#[test]
#[ignore = "long stress run: cargo xtask stress"]
fn same_new_strings_from_many_threads_get_one_symbol_each_long() {
    race(8, 5_000, 256);
}

#[test]
fn frozen_pool_reads_from_many_threads() {
    let pool = StringPool::new();
    let words: Vec<String> = (0..flowmem_testing::iterations(10_000) as usize)
        .map(|i| format!("word-{i}"))
        .collect();
    let symbols: Vec<Symbol> = words.iter().map(|w| pool.intern(w)).collect();
    let frozen = pool.freeze();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for (w, sym) in words.iter().zip(&symbols) {
                    assert_eq!(frozen.get(w), Some(*sym));
                    assert_eq!(frozen.resolve(*sym), w);
                }
            });
        }
    });
}

/// Lookups never miss a string that is there while another thread's new strings split buckets and
/// double the directory under them (a split moves symbols; a lookup that found nothing during one looks
/// again).
#[test]
fn lookups_never_miss_while_buckets_split() {
    let pool = StringPool::new();
    let old: Vec<(String, flowmem_intern::Symbol)> = (0..2_000)
        .map(|i| {
            let w = format!("old-{i}");
            let s = pool.intern(&w);
            (w, s)
        })
        .collect();
    let done = std::sync::atomic::AtomicBool::new(false);
    let new_words = flowmem_testing::iterations(100_000) as usize;
    std::thread::scope(|s| {
        for t in 0..2 {
            let (pool, old, done) = (&pool, &old, &done);
            s.spawn(move || {
                let mut rounds = 0u64;
                while !done.load(std::sync::atomic::Ordering::Relaxed) || rounds == 0 {
                    for (w, sym) in old.iter().skip(t).step_by(2) {
                        assert_eq!(pool.get(w), Some(*sym), "{w} missed");
                        assert_eq!(pool.resolve(*sym), w);
                    }
                    rounds += 1;
                }
            });
        }
        for i in 0..new_words {
            pool.intern(&format!("new-{i}"));
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!(
        pool.len(),
        flowmem_intern::sym::WELL_KNOWN.len() + 2_000 + new_words
    );
}

/// A symbol a lookup finds resolves at once, even while the string is being added: the pool publishes a
/// string's length count before the slot that lets a lookup find it.
#[test]
fn a_symbol_found_while_its_string_is_added_resolves() {
    let pool = StringPool::new();
    let words: Vec<String> = (0..flowmem_testing::iterations(20_000))
        .map(|i| format!("fresh-{i}"))
        .collect();
    std::thread::scope(|s| {
        let (pool, words) = (&pool, &words);
        s.spawn(move || {
            for w in words {
                let symbol = loop {
                    if let Some(symbol) = pool.get(w) {
                        break symbol;
                    }
                    std::hint::spin_loop();
                };
                assert_eq!(pool.try_resolve(symbol), Some(w.as_str()), "{symbol:?}");
            }
        });
        for w in words {
            pool.intern(w);
        }
    });
}
