//! The child process of the shared-run crash trials (target X3, `benches/tests/shared_crash.rs`):
//! `pg_worker SCHEMA RUN_ID LOG` works on a shared run until it has ended, logging each node's start to
//! LOG, unless the parent kills it first (see `flowmem_benches::shared_crash`).

//! `pg_worker serve SCHEMA THREADS` is a worker of X1's throughput run until killed
//! (`flowmem_benches::shared_bench`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        flowmem_benches::shared_bench::serve_main(&args[1..]);
    }
    flowmem_benches::shared_crash::child_main(&args);
}
