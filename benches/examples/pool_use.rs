//! One object-pool use (acquire + fill a map of 8 + release) in a loop, ours or the `object-pool` crate's,
//! or `floor`: one map cleared and refilled, no pool. For instruction counts of each (P7, docs/pool.md):
//! `valgrind --tool=callgrind target/release/examples/pool_use ours 200000` after
//! `cargo build --release -p flowmem-benches --example pool_use`; without valgrind it prints ns per use.

use flowmem_benches::{fill, keep, new_ctx};
use flowmem_pool::{ObjectPool, PoolConfig};

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
    let which = args.next().unwrap_or_else(|| "ours".into());
    let n = match args.next().map(|s| s.parse::<u64>()) {
        None => 1_000_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("pool_use: N must be a positive number of uses");
            std::process::exit(2);
        }
    };
    match which.as_str() {
        "floor" => {
            let mut map = new_ctx();
            run(&which, n, || {
                map.clear();
                fill(&mut map);
                keep(&map);
            });
        }
        "ours" => {
            let pool = ObjectPool::with_reset(new_ctx, PoolConfig::default());
            run(&which, n, || {
                let mut ctx = pool.acquire();
                fill(&mut ctx);
                keep(&*ctx);
            });
        }
        "object_pool" => {
            let pool = object_pool::Pool::new(64, new_ctx);
            run(&which, n, || {
                // object-pool does not clear what comes back: the user does.
                let mut ctx = pool.pull(new_ctx);
                ctx.clear();
                fill(&mut ctx);
                keep(&*ctx);
            });
        }
        other => {
            eprintln!("pool_use: no mode {other:?}; use floor, ours or object_pool");
            std::process::exit(2);
        }
    }
}
