//! Object-pool uses (acquire + fill a map of 8 + release) in a loop, ours or the `object-pool` crate's,
//! or `floor`: one map cleared and refilled, no pool. For instruction counts of each (P7, docs/pool.md):
//! `valgrind --tool=callgrind target/release/examples/pool_use ours 200000` after
//! `cargo build --release -p flowmem-benches --example pool_use`; without valgrind it prints ns per use.
//! `pool_use MODE N THREADS` runs N uses on each of THREADS threads sharing one pool (P8) and prints the
//! total uses per second.

use flowmem_benches::{
    examples::{CommandLine, ns_each},
    fill, keep, new_ctx, run_parallel,
};
use flowmem_pool::{ObjectPool, PoolConfig};

const COMMAND_LINE: CommandLine = CommandLine {
    program: "pool_use",
    usage: "[floor|ours|object_pool [N [THREADS]]]",
};

/// Runs `one_use` `n` times on each of `threads` threads (in this one if only one) and prints the time per
/// use or, on several threads, the total uses per second. Several threads come after twenty rounds on one
/// fresh thread each, as criterion's `object_threads` runs them (one thread's bench first): objects made
/// then by one thread and later by another may sit side by side in memory.
fn run(which: &str, n: u64, threads: usize, one_use: impl Fn() + Sync) {
    if threads == 1 {
        println!("{which}: {:.1} ns a use", ns_each(n, one_use));
        return;
    }
    for _ in 0..20 {
        run_parallel(1, 10_000, |_, n| (0..n).for_each(|_| one_use()));
    }
    let spent = run_parallel(threads, n, |_, n| (0..n).for_each(|_| one_use()));
    let rate = (n * threads as u64) as f64 / spent.as_secs_f64() / 1e6;
    println!("{which}, {threads} threads: {rate:.1} M uses/s in all");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let which = arg(0).unwrap_or("ours");
    let n = COMMAND_LINE.count(arg(1), "N", 1_000_000);
    let threads = COMMAND_LINE.count(arg(2), "THREADS", 1) as usize;
    match which {
        "floor" => {
            if threads > 1 {
                COMMAND_LINE.refuse("floor runs on one thread");
            }
            let mut map = new_ctx();
            let ns = ns_each(n, || {
                map.clear();
                fill(&mut map);
                keep(&map);
            });
            println!("{which}: {ns:.1} ns a use");
        }
        "ours" => {
            let pool = ObjectPool::with_reset(new_ctx, PoolConfig::default());
            run(which, n, threads, || {
                let mut ctx = pool.acquire();
                fill(&mut ctx);
                keep(&*ctx);
            });
        }
        "object_pool" => {
            let pool = object_pool::Pool::new(64, new_ctx);
            run(which, n, threads, || {
                // object-pool does not clear what comes back: the user does.
                let mut ctx = pool.pull(new_ctx);
                ctx.clear();
                fill(&mut ctx);
                keep(&*ctx);
            });
        }
        other => COMMAND_LINE.refuse(&format!(
            "no mode {other:?}; use floor, ours or object_pool"
        )),
    }
}
