//! What one no-op node costs the executor: runs a generated DAG many times and prints nanoseconds per
//! node. Under `valgrind --tool=callgrind`, two run counts give the instructions per node by difference
//! (the breakdown in docs/engine.md):
//!
//! `cargo run --release -p flowmem-benches --example node_cost -- SHAPE WORKERS RUNS` with SHAPE one of
//! `chain`, `fan`, `layered`; `UNTIMED=1` turns node timings off.

use flowmem_benches::dags::{Dag, noop};
use flowmem_engine::{Executor, RunOptions, RunStatus};

fn main() {
    let mut args = std::env::args().skip(1);
    let shape = args.next().unwrap_or_else(|| "chain".into());
    let number = |arg: Option<String>, default: usize| {
        arg.map_or(Ok(default), |s| s.parse())
            .unwrap_or_else(|e| panic!("a number of workers or runs: {e}"))
    };
    let workers = number(args.next(), 2);
    let runs = number(args.next(), 200);
    let dag = match shape.as_str() {
        "chain" => Dag::chain(10_000),
        "fan" => Dag::fan_out(10_000),
        "layered" => Dag::layered(10, 1000),
        other => panic!("unknown shape `{other}`: chain, fan or layered"),
    };
    let workflow = dag.to_workflow(noop());
    let executor = Executor::new(workers);
    let options = RunOptions::new().node_timings(std::env::var_os("UNTIMED").is_none());
    let run = || {
        let handle = executor.submit_with(&workflow, options.clone());
        assert_eq!(handle.wait_status(), RunStatus::Completed);
    };
    (0..20).for_each(|_| run());
    let started = std::time::Instant::now();
    (0..runs).for_each(|_| run());
    let ns = started.elapsed().as_nanos() as f64 / (runs * dag.len()) as f64;
    println!("{shape}, {workers} workers: {ns:.1} ns per node");
}
