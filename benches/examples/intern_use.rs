//! Interning hits in a loop: the 10k-word vocabulary of the `intern_hit` bench, probed in its scattered
//! order, by ours (`flowmem`), string-interner's `BufferBackend` (`string_interner`) or lasso's
//! `ThreadedRodeo` (`lasso`). For instruction counts per hit (I7, I1, docs/intern.md):
//! `valgrind --tool=callgrind target/release/examples/intern_use flowmem 20` after
//! `cargo build --release -p flowmem-benches --example intern_use` (N passes over the vocabulary;
//! subtract a run of 1 pass to leave the setup out); without valgrind it prints ns per hit.
use flowmem_benches::{keep, probes, vocabulary};
use flowmem_intern::StringPool;

/// Runs `pass` over the probes `n` times and prints the time per hit.
fn run(which: &str, n: u64, probes: &[&str], mut hit: impl FnMut(&str)) {
    let start = std::time::Instant::now();
    for _ in 0..n {
        probes.iter().for_each(|w| hit(keep(w)));
    }
    let ns = start.elapsed().as_nanos() as f64 / (n as f64 * probes.len() as f64);
    println!("{which}: {ns:.1} ns a hit");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "flowmem".into());
    let n = match args.next().map(|s| s.parse::<u64>()) {
        None => 100,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("intern_use: N must be a positive number of passes");
            std::process::exit(2);
        }
    };
    let words = vocabulary(10_000);
    let probes = probes(&words);
    match which.as_str() {
        "flowmem" => {
            let pool = StringPool::new();
            words.iter().for_each(|w| {
                pool.intern(w);
            });
            run(&which, n, &probes, |w| {
                keep(pool.intern(w));
            });
        }
        "string_interner" => {
            let mut interner: string_interner::StringInterner<
                string_interner::backend::BufferBackend,
            > = string_interner::StringInterner::new();
            words.iter().for_each(|w| {
                interner.get_or_intern(w);
            });
            run(&which, n, &probes, |w| {
                keep(interner.get_or_intern(w));
            });
        }
        "lasso" => {
            let rodeo: lasso::ThreadedRodeo<lasso::Spur> = lasso::ThreadedRodeo::new();
            words.iter().for_each(|w| {
                rodeo.get_or_intern(w);
            });
            run(&which, n, &probes, |w| {
                keep(rodeo.get_or_intern(w));
            });
        }
        other => {
            eprintln!("intern_use: no mode {other:?}; use flowmem, string_interner or lasso");
            std::process::exit(2);
        }
    }
}
