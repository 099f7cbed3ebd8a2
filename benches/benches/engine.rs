//! Layer 5 benches: the executor on no-op DAGs against the schedulers a competent user writes — tokio
//! (a task spawned when a node's in-degree reaches zero) and rayon (a scope spawning each node when its
//! last dependency ends) — and the `dagx` crate (E1, E3, E4, E8), all on two worker threads; and the
//! `simd` helpers against plain loops (E5).
//!
//! Shapes: a chain of 10k, a fan-out of 10k, 10 layers of 1,000 with in-degree 2, a generated montage-like
//! mosaic (fan-ins of hundreds), a 10-node workflow run alone, 10k concurrent runs of it, and every WfCommons trace in
//! `../shared/wfcommons` when the folder is there (read straight from its JSON). dagx takes dependencies as
//! typed tuples of fixed arity, so it runs the chain, fan-out and layered shapes only, and a dagx graph runs
//! once: its per-run time includes building the graph (its model), ours and the others' do not.
//!
//! E6: an I/O-bound DAG (10 layers of 1,000, each node awaiting a 1 ms tokio timer) with async nodes,
//! against the same DAG as tokio tasks spawned when their in-degree reaches zero.
//!
//! SIMD inputs: status bytes from an alphabet of four (the counted byte is one in four), with a rare byte every
//! 64th place (the filtered one) and no occurrence of the byte `pattern_any` looks for (so both versions
//! scan everything); `u64` values from a fixed pseudo-random sequence.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
    measurement::WallTime,
};
use dagx::{Task, task};
use flowmem_benches::{
    baselines::{rayon_run, tokio_run},
    dags::{Dag, noop, wfcommons_dir},
    keep,
};
use flowmem_engine::{Executor, RunStatus, simd};

const WORKERS: usize = 2;

/// The baselines' runtimes, made once.
struct Baselines {
    tokio: tokio::runtime::Runtime,
    rayon: rayon::ThreadPool,
}

impl Baselines {
    fn new() -> Self {
        Baselines {
            tokio: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(WORKERS)
                .build()
                .expect("tokio runtime"),
            rayon: rayon::ThreadPoolBuilder::new()
                .num_threads(WORKERS)
                .build()
                .expect("rayon pool"),
        }
    }
}

struct Source;
#[task]
impl Source {
    async fn run() -> u64 {
        0
    }
}

struct After1;
#[task]
impl After1 {
    async fn run(a: &u64) -> u64 {
        *a
    }
}

struct After2;
#[task]
impl After2 {
    async fn run(a: &u64, b: &u64) -> u64 {
        *a + *b
    }
}

/// One dagx run (built, then run on the tokio runtime), if dagx can express the DAG (at most two
/// dependencies per node, listed before it).
fn dagx_run(rt: &tokio::runtime::Runtime, dag: &Dag) -> Option<()> {
    let runner = dagx::DagRunner::new();
    let mut handles = Vec::with_capacity(dag.len());
    for (i, deps) in dag.deps.iter().enumerate() {
        if deps.iter().any(|d| *d as usize >= i) {
            return None;
        }
        let h = match deps.as_slice() {
            [] => runner.add_task(Source).depends_on(()),
            [a] => runner.add_task(After1).depends_on(handles[*a as usize]),
            [a, b] => runner
                .add_task(After2)
                .depends_on((&handles[*a as usize], &handles[*b as usize])),
            _ => return None,
        };
        handles.push(h);
    }
    rt.block_on(runner.run(|fut| {
        tokio::spawn(fut);
    }))
    .expect("dagx run");
    Some(())
}

/// The baselines' runs of `dag` in `group`: tokio and rayon, each spawning a node at in-degree zero.
fn baselines(group: &mut BenchmarkGroup<'_, WallTime>, base: &Baselines, dag: &Dag) {
    let dependents = Arc::new(dag.dependents());
    let shared = Arc::new(dag.clone());
    group.bench_function("tokio", |b| {
        b.iter(|| {
            base.tokio.block_on(tokio_run(
                Arc::clone(&shared),
                Arc::clone(&dependents),
                None,
            ))
        })
    });
    group.bench_function("rayon", |b| {
        b.iter(|| rayon_run(&base.rayon, dag, &dependents))
    });
}

fn executor_group(
    group: &mut BenchmarkGroup<'_, WallTime>,
    executor: &Executor,
    base: &Baselines,
    dag: &Dag,
    with_dagx: bool,
) {
    group.throughput(Throughput::Elements(dag.len() as u64));
    let workflow = dag.to_workflow(noop());
    group.bench_function("flowmem", |b| {
        b.iter(|| {
            assert_eq!(
                executor.submit(&workflow).wait_status(),
                RunStatus::Completed
            )
        })
    });
    // The same run without node timings (`RunOptions::node_timings(false)`: no clock read per node).
    let untimed = flowmem_engine::RunOptions::new().node_timings(false);
    group.bench_function("flowmem_untimed", |b| {
        b.iter(|| {
            assert_eq!(
                executor
                    .submit_with(&workflow, untimed.clone())
                    .wait_status(),
                RunStatus::Completed
            )
        })
    });
    baselines(group, base, dag);
    if with_dagx {
        group.bench_function("dagx", |b| {
            b.iter(|| dagx_run(&base.tokio, dag).expect("dagx can run this shape"))
        });
    }
}

fn shapes(c: &mut Criterion) {
    let executor = Executor::new(WORKERS);
    let base = Baselines::new();
    let generated = [
        (Dag::chain(10_000), true),
        (Dag::fan_out(10_000), true),
        (Dag::layered(10, 1_000), true),
        (Dag::montage_like(500), false),
    ];
    for (dag, with_dagx) in &generated {
        let mut group = c.benchmark_group(format!("dag_{}", dag.name));
        group.sampling_mode(SamplingMode::Flat);
        executor_group(&mut group, &executor, &base, dag, *with_dagx);
        group.finish();
    }
    let Some(dir) = wfcommons_dir() else {
        eprintln!("engine bench: ../shared/wfcommons is absent; the WfCommons traces are skipped");
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    if flowmem_benches::quick() {
        // The short tour runs the trace of target E4 only.
        files.retain(|p| p.to_string_lossy().contains("montage-chameleon-dss-15d"));
    }
    for path in files {
        let dag = match Dag::from_wfcommons(&path) {
            Ok(dag) => dag,
            Err(e) => {
                eprintln!("engine bench: skipping {e}");
                continue;
            }
        };
        let mut group = c.benchmark_group(format!("wf_{}", dag.name));
        group.sampling_mode(SamplingMode::Flat);
        executor_group(&mut group, &executor, &base, &dag, false);
        group.finish();
    }
}

/// 10,000 runs of a 10-node workflow in flight at once: the time to run them all (E3).
fn concurrent_runs(c: &mut Criterion) {
    const RUNS: usize = 10_000;
    let executor = Executor::new(WORKERS);
    let base = Baselines::new();
    let dag = Dag::layered(2, 5);
    let workflow = dag.to_workflow(noop());
    let mut group = c.benchmark_group("concurrent_10k_x10");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.throughput(Throughput::Elements((RUNS * dag.len()) as u64));
    group.bench_function("flowmem", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let handles: Vec<_> = (0..RUNS).map(|_| executor.submit(&workflow)).collect();
                for h in handles {
                    assert_eq!(h.wait_status(), RunStatus::Completed);
                }
            }
            start.elapsed()
        })
    });
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                base.tokio.block_on(async {
                    let dag = Arc::new(dag.clone());
                    let dependents = Arc::new(dag.dependents());
                    let runs: Vec<_> = (0..RUNS)
                        .map(|_| {
                            tokio::spawn(tokio_run(Arc::clone(&dag), Arc::clone(&dependents), None))
                        })
                        .collect();
                    for r in runs {
                        r.await.expect("run task");
                    }
                });
            }
            start.elapsed()
        })
    });
    group.finish();
    keep(Duration::ZERO);
}

/// A 10-node workflow (2 layers of 5) run alone, start to end: the fixed cost of a run (E8). flowmem's
/// `wait_status` builds no report, as the others build none; `flowmem_report` is the same run waited for
/// with `wait`, which builds the `RunReport` (reported, not a target).
fn fixed_cost(c: &mut Criterion) {
    let executor = Executor::new(WORKERS);
    let base = Baselines::new();
    let dag = Dag::layered(2, 5);
    let workflow = dag.to_workflow(noop());
    let mut group = c.benchmark_group("run_alone_10");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(dag.len() as u64));
    group.bench_function("flowmem", |b| {
        b.iter(|| {
            assert_eq!(
                executor.submit(&workflow).wait_status(),
                RunStatus::Completed
            )
        })
    });
    group.bench_function("flowmem_report", |b| {
        b.iter(|| assert_eq!(executor.run(&workflow).status, RunStatus::Completed))
    });
    baselines(&mut group, &base, &dag);
    group.finish();
}

fn inputs(n: usize) -> (Vec<u8>, Vec<u64>) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let bytes = (0..n)
        .map(|i| if i % 64 == 63 { 9 } else { (next() % 4) as u8 })
        .collect();
    let words = (0..n).map(|_| next() >> 8).collect();
    (bytes, words)
}

fn helpers(c: &mut Criterion) {
    let sizes: &[(usize, &str)] = if flowmem_benches::quick() {
        &[(10_000, "10k")]
    } else {
        &[(100, "100"), (1_000, "1k"), (10_000, "10k")]
    };
    for &(n, label) in sizes {
        let (bytes, words) = inputs(n);
        let mut group = c.benchmark_group(format!("simd_{label}"));
        group.throughput(Throughput::Elements(n as u64));
        let mut out = Vec::with_capacity(n);

        group.bench_function("count", |b| {
            b.iter(|| simd::pattern_count(keep(&bytes), keep(2)))
        });
        group.bench_function("count_scalar", |b| {
            b.iter(|| simd::scalar::pattern_count(keep(&bytes), keep(2)))
        });
        group.bench_function("any", |b| {
            b.iter(|| simd::pattern_any(keep(&bytes), keep(200)))
        });
        group.bench_function("any_scalar", |b| {
            b.iter(|| simd::scalar::pattern_any(keep(&bytes), keep(200)))
        });
        group.bench_function("filter", |b| {
            b.iter(|| {
                out.clear();
                simd::pattern_filter(keep(&bytes), keep(9), &mut out);
                keep(out.len())
            })
        });
        group.bench_function("filter_scalar", |b| {
            b.iter(|| {
                out.clear();
                simd::scalar::pattern_filter(keep(&bytes), keep(9), &mut out);
                keep(out.len())
            })
        });
        group.bench_function("sum", |b| b.iter(|| simd::sum_u64(keep(&words))));
        group.bench_function("sum_scalar", |b| {
            b.iter(|| simd::scalar::sum_u64(keep(&words)))
        });
        group.bench_function("max", |b| b.iter(|| simd::max_u64(keep(&words))));
        group.bench_function("max_scalar", |b| {
            b.iter(|| simd::scalar::max_u64(keep(&words)))
        });
        group.bench_function("average", |b| b.iter(|| simd::average_u64(keep(&words))));
        group.bench_function("average_scalar", |b| {
            b.iter(|| simd::scalar::average_u64(keep(&words)))
        });
        group.bench_function("variance", |b| b.iter(|| simd::variance_u64(keep(&words))));
        group.bench_function("variance_scalar", |b| {
            b.iter(|| simd::scalar::variance_u64(keep(&words)))
        });
        group.finish();
    }
}

/// Importing the WfCommons montage trace of 2,122 tasks against parsing the same bytes into a
/// `serde_json::Value` (D3).
fn import(c: &mut Criterion) {
    let Some(dir) = wfcommons_dir() else {
        return;
    };
    let path = dir.join("montage-chameleon-dss-15d-001.json");
    let Ok(bytes) = std::fs::read(&path) else {
        eprintln!("engine bench: {} is absent; D3 is skipped", path.display());
        return;
    };
    let mut group = c.benchmark_group("import_montage_dss");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("flowmem_import", |b| {
        b.iter(|| {
            flowmem_engine::import_wfcommons(keep(&bytes), flowmem_engine::TaskAction::Noop)
                .expect("the trace imports")
                .tasks
        })
    });
    group.bench_function("serde_json_value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(keep(&bytes)).expect("valid JSON"))
    });
    group.finish();
}

/// D1: durable runs. 1,000 nodes (10 layers of 100, in-degree 2) each spinning 50 µs, on two workers:
/// no store, a `MemoryCheckpoints`, and a `FileCheckpoints` syncing with `fdatasync` (the target; default 1 ms commit
/// interval), without a commit interval, or only writing to the OS (`SyncMode::Write`). Each iteration
/// is a new run id; the files live under `target/flowmem-bench/store-data` (the repository's disk).
fn durable(c: &mut Criterion) {
    use flowmem_engine::{
        ActionError, CheckpointStore, FileCheckpoints, FileCheckpointsOptions, MemoryCheckpoints,
        NodeCtx, RunId, SyncMode,
    };
    const SPIN: Duration = Duration::from_micros(50);
    let executor = Executor::new(WORKERS);
    let dag = Dag::layered(10, 100);
    let workflow = dag.to_workflow(Arc::new(|ctx: &mut NodeCtx<'_>| {
        let until = Instant::now() + SPIN;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        ctx.set_output(u64::from(ctx.attempt()));
        Ok::<(), ActionError>(())
    }));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/flowmem-bench/store-data/durable");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench data folder");
    let file = |name: &str, options: FileCheckpointsOptions| -> Arc<dyn CheckpointStore> {
        Arc::new(FileCheckpoints::open_with(dir.join(name), options).expect("bench store"))
    };
    let mut stores: Vec<(&str, Option<Arc<dyn CheckpointStore>>)> = vec![
        ("no_store", None),
        ("memory_store", Some(Arc::new(MemoryCheckpoints::new()))),
        (
            "file_store",
            Some(file("fsync.fms", FileCheckpointsOptions::new())),
        ),
        (
            "file_store_no_interval",
            Some(file(
                "fsync0.fms",
                FileCheckpointsOptions::new().commit_interval(Duration::ZERO),
            )),
        ),
        (
            "file_store_write_only",
            Some(file(
                "write.fms",
                FileCheckpointsOptions::new().sync(SyncMode::Write),
            )),
        ),
    ];
    // The same run with its checkpoints in PostgreSQL (one process, `PgCheckpoints`), where a server
    // answers: the per-node cost of a database beside the file's.
    let pg_schema = format!("bench_durable_{}", std::process::id());
    if flowmem_benches::shared_bench::server_answers("durable_1000x50us/postgres_store") {
        flowmem_benches::shared_bench::drop_schema(&pg_schema);
        let pg = flowmem_postgres::PgCheckpoints::open(
            flowmem_postgres::PgOptions::new(flowmem_benches::shared_crash::config())
                .schema(&pg_schema),
        )
        .expect("opening the bench's PostgreSQL store");
        stores.push(("postgres_store", Some(Arc::new(pg))));
    }
    let mut group = c.benchmark_group("durable_1000x50us");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.throughput(Throughput::Elements(dag.len() as u64));
    for (name, store) in &stores {
        group.bench_function(*name, |b| {
            b.iter(|| {
                let report = match store {
                    None => executor.run(&workflow),
                    Some(s) => executor
                        .run_durable(&workflow, Arc::clone(s), RunId::random())
                        .expect("durable run"),
                };
                assert_eq!(report.status, RunStatus::Completed);
            })
        });
    }
    group.finish();
    drop(stores);
    flowmem_benches::shared_bench::drop_schema(&pg_schema);
    let _ = std::fs::remove_dir_all(&dir);
}

/// E6: an I/O-bound DAG, 10 layers of 1,000 nodes with in-degree 2, each node awaiting a 1 ms tokio
/// timer. flowmem: async nodes on its two workers, in a tokio runtime of one thread that drives the
/// timers (given with `ExecutorBuilder::tokio`); tokio: the same DAG as tasks spawned when their in-degree
/// reaches zero, on a runtime of two workers (which also drive the timers). Makespan of one run.
fn io_dag(c: &mut Criterion) {
    const WAIT: Duration = Duration::from_millis(1);
    let dag = Arc::new(Dag::layered(10, 1000));
    let dependents = Arc::new(dag.dependents());
    let timers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .expect("tokio runtime");
    let executor = Executor::builder()
        .workers(WORKERS)
        .tokio(timers.handle().clone())
        .build();
    let mut b = flowmem_engine::Workflow::builder("io_dag");
    for (name, deps) in dag.names.iter().zip(&dag.deps) {
        b.node_async(name.clone(), |_| async {
            tokio::time::sleep(WAIT).await;
            Ok(())
        })
        .after(deps.iter().map(|d| dag.names[*d as usize].as_str()));
    }
    let workflow = b.build().expect("a valid DAG");
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_time()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("io_dag_10x1000_1ms");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.throughput(Throughput::Elements(dag.len() as u64));
    group.bench_function("flowmem", |b| {
        b.iter(|| assert_eq!(executor.run(&workflow).status, RunStatus::Completed))
    });
    group.bench_function("tokio", |b| {
        b.iter(|| {
            tokio.block_on(tokio_run(
                Arc::clone(&dag),
                Arc::clone(&dependents),
                Some(WAIT),
            ))
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = flowmem_benches::criterion();
    targets = shapes, fixed_cost, concurrent_runs, durable, io_dag, import, helpers
}
criterion_main!(benches);
