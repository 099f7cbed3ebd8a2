//! Object-pool uses (acquire + fill a map of 8 + release) in a loop, ours or the `object-pool` crate's,
//! or `floor`: one map cleared and refilled, no pool. For instruction counts of each (P7, docs/pool.md):
//! `valgrind --tool=callgrind target/release/examples/pool_use ours 200000` after
//! `cargo build --release -p flowmem-benches --example pool_use`; without valgrind it prints ns per use.
//! `pool_use MODE N THREADS` runs N uses on each of THREADS threads sharing one pool (P8) and prints the
//! total uses per second.

use flowmem_benches::{fill, keep, new_ctx, run_parallel};
use flowmem_pool::{ObjectPool, PoolConfig};

/// Prints what was wrong with the command line and exits with status 2.
fn refuse(message: &str) -> ! {
    eprintln!("pool_use: {message}");
    eprintln!("usage: pool_use [floor|ours|object_pool [N [THREADS]]]");
    std::process::exit(2);
}

/// Argument `arg` as a positive number, or `default` when it is absent.
fn count(arg: Option<String>, name: &str, default: u64) -> u64 {
    match arg.as_deref().map(str::parse::<u64>) {
        None => default,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => refuse(&format!(
            "{name} must be a positive number, not {:?}",
            arg.unwrap_or_default()
        )),
    }
}

/// Runs `one_use` `n` times and prints the time per use.
fn run_one(which: &str, n: u64, mut one_use: impl FnMut()) {
    let start = std::time::Instant::now();
    for _ in 0..n {
        one_use();
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    println!("{which}: {ns:.1} ns a use");
}

/// Runs `one_use` `n` times on each of `threads` threads (in this one if only one) and prints the time per
/// use or, on several threads, the total uses per second.
fn run(which: &str, n: u64, threads: usize, one_use: impl Fn() + Sync) {
    if threads == 1 {
        return run_one(which, n, one_use);
    }
    let spent = run_parallel(threads, n, |_, n| (0..n).for_each(|_| one_use()));
    let rate = (n * threads as u64) as f64 / spent.as_secs_f64() / 1e6;
    println!("{which}, {threads} threads: {rate:.1} M uses/s in all");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "ours".into());
    let n = count(args.next(), "N", 1_000_000);
    let threads = count(args.next(), "THREADS", 1) as usize;
    match which.as_str() {
        "floor" => {
            if threads > 1 {
                refuse("floor runs on one thread");
            }
            let mut map = new_ctx();
            run_one(&which, n, || {
                map.clear();
                fill(&mut map);
                keep(&map);
            });
        }
        "ours" => {
            let pool = ObjectPool::with_reset(new_ctx, PoolConfig::default());
            run(&which, n, threads, || {
                let mut ctx = pool.acquire();
                fill(&mut ctx);
                keep(&*ctx);
            });
        }
        "object_pool" => {
            let pool = object_pool::Pool::new(64, new_ctx);
            run(&which, n, threads, || {
                // object-pool does not clear what comes back: the user does.
                let mut ctx = pool.pull(new_ctx);
                ctx.clear();
                fill(&mut ctx);
                keep(&*ctx);
            });
        }
        other => refuse(&format!(
            "no mode {other:?}; use floor, ours or object_pool"
        )),
    }
}
