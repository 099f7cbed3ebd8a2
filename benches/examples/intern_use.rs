//! Interning hits in a loop: the 10k-word vocabulary of the `intern_hit` bench, probed in its scattered
//! order, by ours (`flowmem`), string-interner's `BufferBackend` (`string_interner`) or lasso's
//! `ThreadedRodeo` (`lasso`); or looked up, never added, by `StringPool::get` (`flowmem_get`) or
//! `FrozenPool::get` (`frozen`). For instruction counts per hit (I7, I1, I3, docs/intern.md):
//! `valgrind --tool=callgrind target/release/examples/intern_use flowmem 20` after
//! `cargo build --release -p flowmem-benches --example intern_use` (N passes over the vocabulary;
//! subtract a run of 1 pass to leave the setup out); without valgrind it prints ns per hit.
use flowmem_benches::{
    examples::{CommandLine, ns_each},
    keep, probes, vocabulary,
};
use flowmem_intern::StringPool;

const COMMAND_LINE: CommandLine = CommandLine {
    program: "intern_use",
    usage: "[flowmem|flowmem_get|frozen|string_interner|lasso [N]]",
};

/// Runs `hit` over the probes `n` times and prints the time per hit.
fn run(which: &str, n: u64, probes: &[&str], mut hit: impl FnMut(&str)) {
    let ns = ns_each(n, || probes.iter().for_each(|w| hit(keep(w))));
    println!("{which}: {:.1} ns a hit", ns / probes.len() as f64);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map_or("flowmem", String::as_str).to_owned();
    let n = COMMAND_LINE.count(args.get(1).map(String::as_str), "N", 100);
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
        "flowmem_get" | "frozen" => {
            let pool = StringPool::new();
            words.iter().for_each(|w| {
                pool.intern(w);
            });
            if which == "frozen" {
                let frozen = pool.freeze();
                run(&which, n, &probes, |w| {
                    keep(frozen.get(w));
                });
            } else {
                run(&which, n, &probes, |w| {
                    keep(pool.get(w));
                });
            }
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
        other => COMMAND_LINE.refuse(&format!(
            "no mode {other:?}; use flowmem, flowmem_get, frozen, string_interner or lasso"
        )),
    }
}
