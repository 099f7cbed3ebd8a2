//! What one no-op node costs the executor, beside the rayon scheduler of the engine benches: runs a
//! generated DAG many times and prints nanoseconds per node. Under `valgrind --tool=callgrind`, two run
//! counts give the instructions per node by difference (the breakdown in docs/engine.md):
//!
//! `cargo run --release -p flowmem-benches --example node_cost -- SHAPE WORKERS RUNS [rayon]` with SHAPE
//! one of `chain`, `fan`, `layered` (10k nodes each), `alone10` (2 layers of 5: the per-run fixed cost
//! of E8), `chain5` or the path of a WfCommons trace (`.json`); `UNTIMED=1` turns the executor's node timings off.

use flowmem_benches::{
    baselines::rayon_run,
    dags::{Dag, noop},
};
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
    let rayon = args.next().is_some_and(|a| a == "rayon");
    let dag = match shape.as_str() {
        "chain" => Dag::chain(10_000),
        "fan" => Dag::fan_out(10_000),
        "layered" => Dag::layered(10, 1000),
        "alone10" => Dag::layered(2, 5),
        "chain5" => Dag::chain(5),
        path if path.ends_with(".json") => Dag::from_wfcommons(std::path::Path::new(path))
            .unwrap_or_else(|e| panic!("a WfCommons trace: {e}")),
        other => panic!(
            "unknown shape `{other}`: chain, fan, layered, alone10, chain5 or a trace's path"
        ),
    };
    let run: Box<dyn Fn()> = if rayon {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .build()
            .expect("a rayon pool");
        let dependents = dag.dependents();
        let dag = dag.clone();
        Box::new(move || rayon_run(&pool, &dag, &dependents))
    } else {
        let workflow = dag.to_workflow(noop());
        let executor = Executor::new(workers);
        let options = RunOptions::new().node_timings(std::env::var_os("UNTIMED").is_none());
        Box::new(move || {
            let handle = executor.submit_with(&workflow, options.clone());
            assert_eq!(handle.wait_status(), RunStatus::Completed);
        })
    };
    (0..20).for_each(|_| run());
    let started = std::time::Instant::now();
    (0..runs).for_each(|_| run());
    let run_ns = started.elapsed().as_nanos() as f64 / runs as f64;
    let ns = run_ns / dag.len() as f64;
    let who = if rayon { "rayon" } else { "flowmem" };
    println!(
        "{who}, {shape}, {workers} workers: {ns:.1} ns per node, {:.2} µs per run",
        run_ns / 1000.0
    );
}
