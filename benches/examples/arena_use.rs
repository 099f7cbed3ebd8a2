//! One arena use (an arena, one `u64` in it, the arena gone) in a loop: `pooled` takes it from an
//! `ArenaPool` and gives it back, `new` creates and drops an `Arena`, `floor` allocates in one arena that
//! is reset each time. For instruction counts of each (A5, docs/alloc.md):
//! `valgrind --tool=callgrind target/release/examples/arena_use pooled 200000` after
//! `cargo build --release -p flowmem-benches --example arena_use`; without valgrind it prints ns per use.

use flowmem_alloc::{Arena, ArenaPool};
use flowmem_benches::keep;

/// Runs `one_use` `n` times and prints the time per use.
fn run(which: &str, n: u64, mut one_use: impl FnMut()) {
    let start = std::time::Instant::now();
    for _ in 0..n {
        one_use();
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    println!("{which}: {ns:.1} ns a use");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "pooled".into());
    let n = match args.next().map(|s| s.parse::<u64>()) {
        None => 1_000_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("arena_use: N must be a positive number of uses");
            std::process::exit(2);
        }
    };
    match which.as_str() {
        "floor" => {
            let mut arena = Arena::new();
            run(&which, n, || {
                keep(arena.alloc(keep(1u64)));
                arena.reset();
            });
        }
        "pooled" => {
            let pool = ArenaPool::new(4);
            run(&which, n, || {
                let arena = pool.take();
                keep(arena.alloc(keep(1u64)));
            });
        }
        "new" => {
            run(&which, n, || {
                let arena = Arena::new();
                keep(arena.alloc(keep(1u64)));
            });
        }
        other => {
            eprintln!("arena_use: no mode {other:?}; use floor, pooled or new");
            std::process::exit(2);
        }
    }
}
