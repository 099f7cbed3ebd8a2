//! One map under one conc-map-bench workload, run after run, printing each run's throughput: to see the
//! spread of a map figure within one process (the criterion group takes the median of many runs).
//!
//! `cargo run --release -p flowmem-benches --example map_mix -- MAP WORKLOAD THREADS RUNS [SHARDS]` with MAP
//! `concurrent_map` or `scc`, WORKLOAD `read_heavy`, `exchange` or `rapid_grow`; SHARDS sets
//! `ConcurrentMap`'s shard count (default: its own).

use flowmem_benches::{
    examples::CommandLine,
    mix::{Mix, MixMap, Workload},
};
use flowmem_map::ConcurrentMap;

struct Ours(ConcurrentMap<u64, u64>);

impl MixMap for Ours {
    fn get(&self, key: u64) -> bool {
        self.0.get(&key).is_some()
    }
    fn insert(&self, key: u64) -> bool {
        self.0.insert(key, 0).is_none()
    }
    fn remove(&self, key: u64) -> bool {
        self.0.remove(&key).is_some()
    }
    fn update(&self, key: u64) -> bool {
        self.0.update(&key, |v| *v += 1).is_some()
    }
}

struct Scc(scc::HashMap<u64, u64, foldhash::fast::RandomState>);

impl MixMap for Scc {
    fn get(&self, key: u64) -> bool {
        self.0.read(&key, |_, _| ()).is_some()
    }
    fn insert(&self, key: u64) -> bool {
        self.0.insert(key, 0).is_ok()
    }
    fn remove(&self, key: u64) -> bool {
        self.0.remove(&key).is_some()
    }
    fn update(&self, key: u64) -> bool {
        self.0.update(&key, |_, v| *v += 1).is_some()
    }
}

const COMMAND_LINE: CommandLine = CommandLine {
    program: "map_mix",
    usage: "[MAP [WORKLOAD [THREADS [RUNS [SHARDS]]]]]",
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    let (map, workload) = (arg(0, "concurrent_map"), arg(1, "exchange"));
    if map != "concurrent_map" && map != "scc" {
        COMMAND_LINE.refuse(&format!("MAP is concurrent_map or scc, not {map:?}"));
    }
    let count = |i: usize, name: &str, default: u64| {
        COMMAND_LINE.count(args.get(i).map(String::as_str), name, default) as usize
    };
    let threads = count(2, "THREADS", 2);
    let runs = count(3, "RUNS", 10);
    let shards = args.get(4).map(|_| count(4, "SHARDS", 1));
    let (mix, prefill) = match workload.as_str() {
        "read_heavy" => ((98, 1, 1, 0), 0.75),
        "exchange" => ((10, 40, 40, 10), 0.75),
        "rapid_grow" => ((5, 80, 5, 10), 0.0),
        other => COMMAND_LINE.refuse(&format!(
            "WORKLOAD is read_heavy, exchange or rapid_grow, not {other:?}"
        )),
    };
    let w = Workload {
        mix: Mix {
            read: mix.0,
            insert: mix.1,
            remove: mix.2,
            update: mix.3,
        },
        capacity_log2: 17,
        prefill,
        operations: 8.0,
        seed: 1,
    };
    for _ in 0..runs {
        let spent = match map.as_str() {
            "concurrent_map" => w.run(threads, |capacity| {
                Ours(match shards {
                    Some(n) => ConcurrentMap::with_capacity_hasher_and_shards(
                        capacity,
                        Default::default(),
                        n,
                    ),
                    None => ConcurrentMap::with_capacity(capacity),
                })
            }),
            "scc" => w.run(threads, |capacity| {
                Scc(scc::HashMap::with_capacity_and_hasher(
                    capacity,
                    Default::default(),
                ))
            }),
            other => unreachable!("MAP {other:?} was checked above"),
        };
        print!(
            "{:.1} ",
            w.operations_per_run() as f64 / spent.as_secs_f64() / 1e6
        );
    }
    println!("M ops/s");
}
