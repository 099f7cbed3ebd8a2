//! One map under one conc-map-bench workload, run after run, printing each run's throughput: to see the
//! spread of a map figure within one process (the criterion group takes the median of many runs).
//!
//! `cargo run --release -p flowmem-benches --example map_mix -- MAP WORKLOAD THREADS RUNS` with MAP
//! `concurrent_map`, `papaya` or `scc`, WORKLOAD `read_heavy`, `exchange` or `rapid_grow`. The maps and
//! workloads are the bench's
//! (`flowmem_benches::maps`), at the full run's size.

use flowmem_benches::{
    examples::CommandLine,
    maps::{BenchMap, Papaya, Scc, Spec},
    mix::Workload,
};
use flowmem_map::ConcurrentMap;

const COMMAND_LINE: CommandLine = CommandLine {
    program: "map_mix",
    usage: "[MAP [WORKLOAD [THREADS [RUNS]]]]",
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    let (map, workload) = (arg(0, "concurrent_map"), arg(1, "exchange"));
    if !["concurrent_map", "papaya", "scc"].contains(&map.as_str()) {
        COMMAND_LINE.refuse(&format!(
            "MAP is concurrent_map, papaya or scc, not {map:?}"
        ));
    }
    let count = |i: usize, name: &str, default: u64| {
        COMMAND_LINE.count(args.get(i).map(String::as_str), name, default) as usize
    };
    let threads = count(2, "THREADS", 2);
    let runs = count(3, "RUNS", 10);
    let Some(spec) = Spec::named(&workload) else {
        COMMAND_LINE.refuse(&format!(
            "WORKLOAD is read_heavy, exchange or rapid_grow, not {workload:?}"
        ))
    };
    // The full run's size, also when FLOWMEM_BENCH_QUICK is set.
    let w = Workload {
        operations: 8.0,
        ..spec.workload()
    };
    for _ in 0..runs {
        let spent = match map.as_str() {
            "concurrent_map" => w.run(threads, ConcurrentMap::<u64, u64>::with_capacity),
            "papaya" => w.run(threads, Papaya::with_capacity),
            "scc" => w.run(threads, Scc::with_capacity),
            other => unreachable!("MAP {other:?} was checked above"),
        };
        print!(
            "{:.1} ",
            w.operations_per_run() as f64 / spent.as_secs_f64() / 1e6
        );
    }
    println!("M ops/s");
}
