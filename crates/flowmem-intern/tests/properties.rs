//! Property tests of the string pools (quickcheck), one test per property.

use std::collections::HashMap;

use flowmem_intern::{StringPool, Symbol, sym};
use quickcheck::{QuickCheck, TestResult};

fn qc() -> QuickCheck {
    flowmem_testing::quickcheck(100)
}

#[test]
fn prop_interning_preserves_identity() {
    fn prop(strings: Vec<String>) -> bool {
        let pool = StringPool::new();
        strings
            .iter()
            .all(|s| pool.resolve(pool.intern(s)) == s.as_str())
    }
    qc().quickcheck(prop as fn(Vec<String>) -> bool);
}

#[test]
fn prop_same_string_same_symbol_and_reference() {
    fn prop(strings: Vec<String>) -> bool {
        let pool = StringPool::new();
        let mut seen: HashMap<&str, (Symbol, *const u8)> = HashMap::new();
        for s in &strings {
            let symbol = pool.intern(s);
            let stored = pool.intern_str(&s.clone());
            match seen.get(s.as_str()) {
                Some((sym, ptr)) if (*sym, *ptr) != (symbol, stored.as_ptr()) => return false,
                _ => {
                    seen.insert(s, (symbol, stored.as_ptr()));
                }
            }
        }
        // Distinct strings, distinct symbols.
        let mut symbols: Vec<Symbol> = seen.values().map(|(s, _)| *s).collect();
        symbols.sort();
        symbols.dedup();
        symbols.len() == seen.len()
    }
    qc().quickcheck(prop as fn(Vec<String>) -> bool);
}

#[test]
fn prop_pre_interned_strings_have_fixed_symbols() {
    fn prop(before: Vec<String>) -> bool {
        let pool = StringPool::new();
        for s in &before {
            pool.intern(s);
        }
        sym::WELL_KNOWN
            .iter()
            .enumerate()
            .all(|(i, s)| pool.get(s).map(Symbol::index) == Some(i as u32))
            && pool.resolve(sym::PENDING) == "PENDING"
            && pool.resolve(sym::CANCELLED) == "CANCELLED"
    }
    qc().quickcheck(prop as fn(Vec<String>) -> bool);
}

#[test]
fn prop_get_never_adds() {
    fn prop(interned: Vec<String>, probes: Vec<String>) -> bool {
        let pool = StringPool::new();
        for s in &interned {
            pool.intern(s);
        }
        let len = pool.len();
        let agrees = probes.iter().all(|p| {
            pool.get(p).is_some() == (interned.contains(p) || sym::WELL_KNOWN.contains(&p.as_str()))
        });
        agrees && pool.len() == len
    }
    qc().quickcheck(prop as fn(Vec<String>, Vec<String>) -> bool);
}

#[test]
fn prop_concurrent_interning_is_consistent() {
    fn prop(words: Vec<String>) -> TestResult {
        if words.is_empty() {
            return TestResult::discard();
        }
        let pool = StringPool::new();
        let per_thread: Vec<Vec<Symbol>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|t| {
                    let (pool, words) = (&pool, &words);
                    s.spawn(move || {
                        // Each thread walks the words from a different start.
                        let n = words.len();
                        let mut out = vec![None; n];
                        for k in 0..n {
                            let i = (k + t * n / 4) % n;
                            out[i] = Some(pool.intern(&words[i]));
                        }
                        out.into_iter()
                            .map(|s| s.expect("every word interned"))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("no panic"))
                .collect()
        });
        let ok = per_thread.windows(2).all(|w| w[0] == w[1])
            && words
                .iter()
                .zip(&per_thread[0])
                .all(|(w, s)| pool.resolve(*s) == w);
        let mut distinct = words.clone();
        distinct.extend(sym::WELL_KNOWN.iter().map(|s| s.to_string()));
        distinct.sort();
        distinct.dedup();
        TestResult::from_bool(ok && pool.len() == distinct.len())
    }
    flowmem_testing::quickcheck(30).quickcheck(prop as fn(Vec<String>) -> TestResult);
}

#[test]
fn prop_memory_use_bounded_for_shared_prefixes() {
    // Strings sharing a long prefix are stored whole each (no sharing is promised), so memory stays within
    // a fixed overhead per string of their total size.
    fn prop(suffixes: Vec<u32>, prefix_len: u8) -> bool {
        let prefix = "p".repeat(prefix_len as usize);
        let pool = StringPool::new();
        let base = pool.memory_usage();
        let base_bytes = pool.string_bytes();
        let mut distinct: Vec<String> = suffixes.iter().map(|s| format!("{prefix}{s}")).collect();
        for s in &distinct {
            pool.intern(s);
        }
        distinct.sort();
        distinct.dedup();
        let bytes: usize = distinct.iter().map(String::len).sum();
        pool.string_bytes() - base_bytes == bytes
            && pool.memory_usage() - base <= 2 * bytes + 100 * distinct.len() + 64 * 1024
    }
    qc().quickcheck(prop as fn(Vec<u32>, u8) -> bool);
}

#[test]
fn prop_memory_use_bounded_for_many_distinct_strings() {
    fn prop(n: u16) -> bool {
        let n = n as usize % 20_000;
        let pool = StringPool::new();
        let base = pool.memory_usage();
        for i in 0..n {
            pool.intern(&format!("{i:016}"));
        }
        pool.len() == n + sym::WELL_KNOWN.len()
            && pool.memory_usage() - base <= n * (16 + 100) + 64 * 1024
    }
    flowmem_testing::quickcheck(20).quickcheck(prop as fn(u16) -> bool);
}

#[test]
fn prop_frozen_pool_agrees_with_the_pool() {
    fn prop(strings: Vec<String>, probes: Vec<String>) -> bool {
        let pool = StringPool::new();
        let symbols: Vec<Symbol> = strings.iter().map(|s| pool.intern(s)).collect();
        let expected: Vec<Option<Symbol>> = probes.iter().map(|p| pool.get(p)).collect();
        let frozen = pool.freeze();
        symbols
            .iter()
            .zip(&strings)
            .all(|(sym, s)| frozen.resolve(*sym) == s.as_str())
            && probes
                .iter()
                .zip(&expected)
                .all(|(p, e)| frozen.get(p) == *e)
    }
    qc().quickcheck(prop as fn(Vec<String>, Vec<String>) -> bool);
}
