//! Measurements that criterion's timing cannot give — heap bytes and allocation counts — taken with
//! `flowmem_alloc::Tracking` as the global allocator, and printed as JSON lines for `cargo xtask bench`:
//! `{"layer": "intern", "id": "pool_memory/flowmem", "value": 1.9, "unit": "..."}`.
//!
//! `counts [LAYER...] [--filter SUBSTRING]`; no layer means all. Built without allocator features only:
//! it installs its own global allocator.

#[cfg(not(any(feature = "jemalloc", feature = "mimalloc")))]
#[global_allocator]
static GLOBAL: flowmem_alloc::Tracking<std::alloc::System> =
    flowmem_alloc::Tracking::new(std::alloc::System);

use std::{collections::HashMap, hint::black_box};

use flowmem_alloc::{Arena, tracking};
use flowmem_benches::measuring::MeasuringArgs;
use flowmem_intern::StringPool;
use lasso::{Spur, ThreadedRodeo};

struct Out {
    args: MeasuringArgs,
}

impl Out {
    /// Whether `id` passes the filter.
    fn wants(&self, id: &str) -> bool {
        self.args.wants(id)
    }

    fn emit(&self, layer: &str, id: &str, value: f64, unit: &str) {
        println!(
            "{}",
            serde_json::json!({ "layer": layer, "id": id, "value": value, "unit": unit })
        );
    }
}

/// Live heap bytes this thread added while `build` ran and its result is alive.
fn held_bytes<T>(build: impl FnOnce() -> T) -> (T, i64) {
    let before = tracking::thread_stats().current_bytes;
    let value = build();
    let after = tracking::thread_stats().current_bytes;
    (value, after - before)
}

fn alloc(out: &Out) {
    let id = "arena_steady_state/allocations_per_cycle";
    if out.wants(id) {
        let mut arena = Arena::new();
        let cycle = |arena: &Arena| {
            for i in 0..50_000u64 {
                black_box(arena.alloc(i));
            }
            black_box(arena.alloc_zeroed_bytes(200_000));
        };
        cycle(&arena);
        arena.reset();
        let before = tracking::thread_stats();
        for _ in 0..10 {
            cycle(&arena);
            arena.reset();
        }
        let calls = tracking::thread_stats().since(&before).allocation_calls();
        out.emit(
            "alloc",
            id,
            calls as f64 / 10.0,
            "allocator calls per reset cycle",
        );
    }
}

/// Target A6: blocks an arena made with `with_capacity(1 MiB)` holds after 20 allocations of 20 KiB.
fn arena_capacity(out: &Out) {
    let id = "arena_with_capacity/blocks";
    if !out.wants(id) {
        return;
    }
    let arena = Arena::with_capacity(1 << 20);
    for _ in 0..20 {
        black_box(arena.alloc_zeroed_bytes(20 * 1024));
    }
    out.emit(
        "alloc",
        id,
        arena.stats().blocks as f64,
        "blocks reserved by with_capacity(1 MiB) after 20 allocations of 20 KiB",
    );
}

/// Target A7: instructions per `Arena::alloc(u64)` on the fast path, and per `bumpalo::Bump::alloc`,
/// counted by callgrind (`alloc_instr`), the loop's own instructions subtracted. Instruction counts do not
/// move with the machine's load. Skipped, with a line saying so, where valgrind is not installed (unless
/// `FLOWMEM_REQUIRE_VALGRIND` is set, as in CI).
fn arena_instructions(out: &Out) {
    if !out.wants("arena_instructions/") {
        return;
    }
    let version = std::process::Command::new("valgrind")
        .arg("--version")
        .output();
    if !version.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("FLOWMEM_REQUIRE_VALGRIND").is_none(),
            "A7 needs valgrind (FLOWMEM_REQUIRE_VALGRIND is set)"
        );
        eprintln!("skipped A7 (arena_instructions): valgrind is not installed");
        return;
    }
    let exe = sibling_binary("alloc_instr");
    let instructions = |mode: &str, n: u64| -> f64 {
        let run = std::process::Command::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(&exe)
            .args([mode, &n.to_string()])
            .output()
            .expect("running valgrind");
        let log = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "valgrind {mode} {n} failed: {log}");
        log.lines()
            .find_map(|l| {
                l.split_once("Collected :")
                    .map(|(_, n)| n.trim().to_string())
            })
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no `Collected :` line from callgrind: {log}"))
    };
    let (few, many) = (1_000u64, 201_000u64);
    let per =
        |mode: &str| (instructions(mode, many) - instructions(mode, few)) / (many - few) as f64;
    let looping = per("loop");
    let ours = per("flowmem") - looping;
    let bumpalo = per("bumpalo") - looping;
    for (mode, value) in [("flowmem", ours), ("bumpalo", bumpalo)] {
        out.emit(
            "alloc",
            &format!("arena_instructions/{mode}"),
            value,
            "instructions per allocation of a u64 on the fast path, loop subtracted (callgrind)",
        );
    }
    out.emit(
        "alloc",
        "arena_instructions/flowmem_per_bumpalo",
        ours / bumpalo,
        "Arena::alloc's instructions / bumpalo's",
    );
    out.emit(
        "alloc",
        "arena_instructions/loop",
        looping,
        "instructions per turn of the loop alone",
    );
}

/// Target T3: the known shares of three allocating functions (60/30/10 % of about 4 GB) against their
/// estimates from site sampling at the default rate; emits the largest absolute error.
fn site_accuracy(out: &Out) {
    use flowmem_alloc::sites;
    use flowmem_testing::sites::{KNOWN_SHARES, known_shares};
    let id = "sites/max_share_error";
    if !out.wants(id) {
        return;
    }
    let before = sites::report();
    sites::start(sites::SiteOptions::new()).expect("Tracking is installed");
    known_shares(4_000);
    sites::stop();
    let report = sites::report().since(&before);
    let estimates: Vec<f64> = KNOWN_SHARES
        .iter()
        .map(|(function, _)| report.share_of(function))
        .collect();
    let sum: f64 = estimates.iter().sum();
    let error = KNOWN_SHARES
        .iter()
        .zip(&estimates)
        .map(|((_, truth), estimate)| (estimate / sum - truth).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "site accuracy: {} samples, estimated shares {:?} (truth 0.6/0.3/0.1)",
        report.samples,
        estimates.iter().map(|e| e / sum).collect::<Vec<_>>()
    );
    out.emit(
        "alloc",
        id,
        error,
        "largest absolute error of a site's estimated share of bytes, default rate",
    );
}

/// Emits `pool_memory/<peer>`: the heap bytes what `build` returns holds, per string byte.
fn peer_memory<T>(out: &Out, peer: &str, string_bytes: f64, build: impl FnOnce() -> T) {
    let id = format!("pool_memory/{peer}");
    if !out.wants(&id) {
        return;
    }
    let (held, bytes) = held_bytes(build);
    black_box(&held);
    out.emit(
        "intern",
        &id,
        bytes as f64 / string_bytes,
        "heap bytes per string byte",
    );
}

fn intern(out: &Out) {
    const N: usize = 100_000;
    let strings: Vec<String> = (0..N).map(|i| format!("{i:016}")).collect();
    let string_bytes = (N * 16) as f64;
    peer_memory(out, "lasso", string_bytes, || {
        let rodeo: ThreadedRodeo<Spur> = ThreadedRodeo::new();
        for s in &strings {
            rodeo.get_or_intern(s);
        }
        rodeo
    });
    if out.wants("pool_memory/flowmem") {
        let build = || {
            let pool = StringPool::new();
            for s in &strings {
                pool.intern(s);
            }
            pool
        };
        let (pool, bytes) = held_bytes(build);
        assert_eq!(pool.len(), N + flowmem_intern::sym::WELL_KNOWN.len());
        out.emit(
            "intern",
            "pool_memory/flowmem",
            bytes as f64 / string_bytes,
            "heap bytes per string byte",
        );
        // What the pool says it holds against what the allocator saw it take.
        out.emit(
            "intern",
            "pool_memory/flowmem_reported_over_measured",
            pool.memory_usage() as f64 / bytes as f64,
            "memory_usage() / heap bytes measured by Tracking",
        );
        drop(pool);
        // Built and frozen inside the measurement: the pool it came from is gone by its end.
        let (frozen, bytes) = held_bytes(|| build().freeze());
        black_box(&frozen);
        out.emit(
            "intern",
            "pool_memory/frozen",
            bytes as f64 / string_bytes,
            "heap bytes per string byte",
        );
        out.emit(
            "intern",
            "pool_memory/frozen_reported_over_measured",
            frozen.memory_usage() as f64 / bytes as f64,
            "FrozenPool::memory_usage() / heap bytes measured by Tracking",
        );
    }
    peer_memory(out, "lasso_rodeo", string_bytes, || {
        let mut rodeo: lasso::Rodeo<Spur> = lasso::Rodeo::new();
        for s in &strings {
            rodeo.get_or_intern(s);
        }
        rodeo
    });
    peer_memory(out, "string_interner_buffer", string_bytes, || {
        let mut interner: string_interner::StringInterner<string_interner::backend::BufferBackend> =
            string_interner::StringInterner::new();
        for s in &strings {
            interner.get_or_intern(s);
        }
        interner
    });
    if out.wants("pool_memory/ustr") {
        // ustr's table is process-wide and never freed: what these strings added to it.
        let ((), bytes) = held_bytes(|| {
            for s in &strings {
                black_box(ustr::ustr(s));
            }
        });
        out.emit(
            "intern",
            "pool_memory/ustr",
            bytes as f64 / string_bytes,
            "heap bytes per string byte",
        );
    }
    peer_memory(out, "hashmap", string_bytes, || {
        let mut map: HashMap<String, u32> = HashMap::new();
        for (i, s) in strings.iter().enumerate() {
            map.insert(s.clone(), i as u32);
        }
        map
    });
}

fn pool(out: &Out) {
    use flowmem_pool::{BufferPool, BufferPoolConfig};

    let id = "churn/max_pooled_over_bound";
    if !out.wants(id) {
        return;
    }
    let bound = 1 << 20;
    let pool = BufferPool::with_config(BufferPoolConfig {
        max_pooled_bytes: bound,
        thread_cache_bytes: 256 * 1024,
        ..BufferPoolConfig::default()
    })
    .expect("valid settings");
    let mut max_seen = 0usize;
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..2u64)
            .map(|t| {
                let pool = &pool;
                s.spawn(move || {
                    let mut held = Vec::new();
                    let mut x = t + 1;
                    for _ in 0..400_000 {
                        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        let size = 256 << ((x >> 33) % 10); // 256 B .. 128 KiB
                        if (x >> 20) % 3 == 0 && !held.is_empty() {
                            held.swap_remove((x >> 40) as usize % held.len());
                        } else if held.len() < 64 {
                            held.push(pool.get(size));
                        } else {
                            held.clear();
                        }
                    }
                })
            })
            .collect();
        while !workers.iter().all(|w| w.is_finished()) {
            max_seen = max_seen.max(pool.stats().bytes_pooled);
            std::hint::spin_loop();
        }
    });
    max_seen = max_seen.max(pool.stats().bytes_pooled);
    out.emit(
        "pool",
        id,
        max_seen as f64 / bound as f64,
        "most pooled bytes seen / bound",
    );
}

fn main() {
    if cfg!(any(feature = "jemalloc", feature = "mimalloc")) {
        eprintln!("counts installs Tracking<System> itself: build it without allocator features");
        std::process::exit(2);
    }
    assert!(tracking::is_installed());
    let out = Out {
        args: MeasuringArgs::from_env(),
    };
    let wants = |l: &str| out.args.wants_layer(l);
    if wants("alloc") {
        alloc(&out);
        arena_capacity(&out);
        arena_instructions(&out);
        site_accuracy(&out);
    }
    if wants("intern") {
        intern(&out);
    }
    if wants("pool") {
        pool(&out);
    }
    if wants("store") {
        store(&out);
    }
    if wants("engine") {
        engine(&out);
    }
    // Only when asked by name, from the build with the engine's `tracing` feature (it installs a global
    // subscriber: nothing may be measured after it in this process).
    if out.args.layers.iter().any(|l| l == "tracing") {
        tracing_costs(&out);
    }
}

/// The engine's `tracing` feature: heap allocations per node of the E2 workload with the feature on and
/// no subscriber (a span is then a look at its callsite's interest), and with a `fmt` subscriber at INFO
/// writing to a sink (every span and event formatted).
#[cfg(feature = "tracing")]
fn tracing_costs(out: &Out) {
    use flowmem_engine::MemoryOptions;
    let nodes = flowmem_benches::dags::busy_workflow().len() as f64;
    if out.wants("tracing/no_subscriber_per_node") {
        out.emit(
            "engine",
            "tracing/no_subscriber_per_node",
            allocations_per_run(MemoryOptions::ALL) / nodes,
            "allocations per node, feature tracing on, no subscriber",
        );
    }
    if out.wants("tracing/fmt_subscriber_per_node") {
        tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_max_level(tracing::Level::INFO)
            .init();
        out.emit(
            "engine",
            "tracing/fmt_subscriber_per_node",
            allocations_per_run(MemoryOptions::ALL) / nodes,
            "allocations per node, feature tracing on, a fmt subscriber at INFO writing to a sink",
        );
    }
}

#[cfg(not(feature = "tracing"))]
fn tracing_costs(_: &Out) {
    eprintln!("counts tracing: build counts with `--features tracing`");
    std::process::exit(2);
}

fn store(out: &Out) {
    if out.wants("crash_shaped/") {
        // Target R2: every file a killed append can leave, opened by a reader and by a writer. In memory
        // where the machine has it (the writer syncs each recovery; the disk adds nothing to what is checked).
        let base = std::path::Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/flowmem-bench")
        };
        let dir = base.join(format!("flowmem-crash-shaped-{}", std::process::id()));
        let s = flowmem_benches::damage::trials(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        for (id, value, unit) in [
            (
                "crash_shaped/refused_or_wrong",
                s.refused + s.wrong,
                "files",
            ),
            ("crash_shaped/refused", s.refused, "files"),
            ("crash_shaped/wrong", s.wrong, "files"),
            ("crash_shaped/files", s.files, "files"),
        ] {
            out.emit("store", id, value as f64, unit);
        }
    }
}

/// The benches' binary `name`, beside this one (xtask keeps them together): the crash trials' children.
fn sibling_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe()
        .expect("the path of this binary")
        .with_file_name(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        exe.is_file(),
        "{} is missing: build it with `cargo build --release -p flowmem-benches --bin {name}`",
        exe.display()
    );
    exe
}

/// Targets X1 and X2: shared runs on PostgreSQL, two worker processes against one on I/O-bound nodes, and
/// `SharedWorker` against a naive queue on no-op nodes (each the best of three runs in a full run, of one
/// in a quick one).
fn shared_throughput(out: &Out) {
    use flowmem_benches::shared_bench as sb;
    let exe = sibling_binary("pg_worker");
    let rounds = if flowmem_benches::quick() { 1 } else { 3 };
    let best = |f: &dyn Fn() -> std::time::Duration| {
        (0..rounds).map(|_| f()).min().expect("at least one round")
    };
    let schema = format!("bench_x_{}", std::process::id());
    let one = best(&|| sb::in_processes(&exe, &schema, 1, 4));
    let two = best(&|| sb::in_processes(&exe, &schema, 2, 4));
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    out.emit(
        "postgres",
        "shared_throughput/x1_one_process_ms",
        ms(one),
        "ms, 800 nodes of 2 ms sleep (4 layers of 200), 1 process x 4 threads, batches of 8",
    );
    out.emit(
        "postgres",
        "shared_throughput/x1_two_processes_ms",
        ms(two),
        "ms, the same run, 2 processes x 4 threads",
    );
    out.emit(
        "postgres",
        "shared_throughput/x1_speedup",
        ms(one) / ms(two),
        "throughput, 2 processes / 1",
    );
    let workflow = sb::noop_workflow();
    let nodes = workflow.len() as f64;
    let runs = sb::fresh(&schema);
    let ours = best(&|| sb::in_process(&runs, &workflow, 2, "x2"));
    drop(runs);
    let naive = best(&|| sb::naive(&schema, &workflow, 2));
    sb::drop_schema(&schema);
    out.emit(
        "postgres",
        "shared_throughput/x2_flowmem_ms",
        ms(ours),
        "ms, 2,000 no-op nodes, SharedWorker of 2 threads, batches of 8",
    );
    out.emit(
        "postgres",
        "shared_throughput/x2_naive_ms",
        ms(naive),
        "ms, the same nodes, a naive queue on 2 threads",
    );
    out.emit(
        "postgres",
        "shared_throughput/x2_speedup",
        ms(naive) / ms(ours),
        "no-op nodes per second, SharedWorker / naive queue",
    );
    out.emit(
        "postgres",
        "shared_throughput/us_per_node",
        ms(ours) * 1e3 / nodes,
        "µs of run time per no-op node (2 threads, one local server)",
    );
}

/// Heap allocations per run of `busy_workflow` in steady state (two runs in flight at a time), with
/// `memory`; process-wide, since the runs execute on the executor's threads.
fn allocations_per_run(memory: flowmem_engine::MemoryOptions) -> f64 {
    use flowmem_engine::{Executor, RunStatus};
    let workflow = flowmem_benches::dags::busy_workflow();
    let executor = Executor::with_memory(2, memory);
    let runs = |n: u64| {
        for _ in 0..n {
            let a = executor.submit(&workflow);
            let b = executor.submit(&workflow);
            assert_eq!(a.wait_status(), RunStatus::Completed);
            assert_eq!(b.wait_status(), RunStatus::Completed);
        }
    };
    // Before the first snapshot: reading the environment allocates.
    let measured = if flowmem_benches::quick() { 200 } else { 2_000 };
    runs(300);
    let before = tracking::stats();
    runs(measured);
    let after = tracking::stats();
    (after.allocations - before.allocations) as f64 / (2 * measured) as f64
}

/// Target E7: heap in use after building, running and dropping 100k workflows with generated names (each
/// with its own node names, context keys and input key) / heap in use before, process-wide.
fn names_freed(out: &Out) {
    use flowmem_engine::{Executor, RunOptions, RunStatus, Workflow};
    let executor = Executor::new(2);
    let churn = |from: usize, n: usize| {
        for i in from..from + n {
            let mut b = Workflow::builder(format!("tenant-{i}"));
            b.node(format!("shard-{i}-load"), move |ctx| {
                let n = ctx
                    .fetch(&format!("tenant-{i}-size"))
                    .and_then(|v| v.as_u64());
                ctx.put(&format!("tenant-{i}-loaded"), n.unwrap_or(0));
                ctx.set_output(n.unwrap_or(0));
                Ok(())
            });
            b.node(format!("shard-{i}-sum"), move |ctx| {
                let n = ctx.input_u64(&format!("shard-{i}-load")).unwrap_or(0);
                ctx.set_output(n * 2);
                Ok(())
            })
            .after([format!("shard-{i}-load")]);
            let workflow = b.build().expect("a valid workflow");
            let options = RunOptions::new().input(format!("tenant-{i}-size"), i as u64);
            let report = executor.run_with(&workflow, options);
            assert_eq!(report.status, RunStatus::Completed);
        }
    };
    churn(0, 1_000); // warm up: the executor's pools and the workers' caches reach their size
    let interned = flowmem_intern::global().len();
    let before = tracking::stats().current_bytes;
    let n = if flowmem_benches::quick() {
        20_000
    } else {
        100_000
    };
    churn(1_000, n);
    let after = tracking::stats().current_bytes;
    out.emit(
        "engine",
        "names_freed/heap_after_over_before",
        after as f64 / before as f64,
        &format!(
            "heap in use after / before {n} workflows with generated names built, run and dropped"
        ),
    );
    out.emit("engine", "names_freed/heap_before", before as f64, "bytes");
    out.emit("engine", "names_freed/heap_after", after as f64, "bytes");
    out.emit(
        "engine",
        "names_freed/interned_strings_added",
        (flowmem_intern::global().len() - interned) as f64,
        "strings added to the process-wide pool",
    );
}

/// Heap allocations per run of 10 independent nodes that each take 64 KiB of scratch memory in 1 KiB
/// pieces, with `memory`.
fn scratch_allocations_per_run(memory: flowmem_engine::MemoryOptions) -> f64 {
    use flowmem_engine::{Executor, RunStatus, Workflow};
    let mut b = Workflow::builder("scratchy");
    for i in 0..10 {
        b.node(format!("s{i}"), |ctx| {
            for _ in 0..64 {
                black_box(ctx.scratch_slice(&[7u8; 1024]));
            }
            Ok(())
        });
    }
    let workflow = b.build().expect("a valid workflow");
    let executor = Executor::with_memory(2, memory);
    let run = || {
        assert_eq!(
            executor.submit(&workflow).wait_status(),
            RunStatus::Completed
        )
    };
    (0..20).for_each(|_| run());
    let runs = 100;
    let before = tracking::stats();
    (0..runs).for_each(|_| run());
    (tracking::stats().allocations - before.allocations) as f64 / runs as f64
}

fn engine(out: &Out) {
    use flowmem_engine::{MemoryOption, MemoryOptions};
    let nodes = flowmem_benches::dags::busy_workflow().len() as f64;
    let id = "memory_options/all_on_per_node";
    if out.wants(id) || out.wants("memory_options/") {
        let all_on = allocations_per_run(MemoryOptions::ALL);
        out.emit("engine", id, all_on / nodes, "allocations per node");
        out.emit(
            "engine",
            "memory_options/all_on_per_run",
            all_on,
            "allocations per run",
        );
        for option in MemoryOption::ALL {
            let off = allocations_per_run(MemoryOptions::ALL.with(option, false));
            out.emit(
                "engine",
                &format!("memory_options/{option}_off_per_run"),
                off,
                "allocations per run",
            );
        }
        out.emit(
            "engine",
            "memory_options/all_off_per_run",
            allocations_per_run(MemoryOptions::NONE),
            "allocations per run",
        );
        // The scratch arenas' block size (Flow Orchestrator's `ArenaSize`), with a new arena per node
        // (`arena` off) for 10 nodes using 64 KiB of scratch each; warm workers' arenas allocate nothing
        // at any size.
        for (label, size) in [("4k", 4096), ("64k", 64 * 1024), ("1m", 1 << 20)] {
            let memory = MemoryOptions::ALL
                .with(MemoryOption::Arena, false)
                .with_arena_block_size(size);
            out.emit(
                "engine",
                &format!("memory_options/arena_off_block_{label}_per_run"),
                scratch_allocations_per_run(memory),
                "allocations per run, 10 nodes x 64 KiB of scratch",
            );
        }
    }
    if out.wants("async_nodes/") {
        // E6's allocation figure: async nodes whose future parks once (it wakes itself), in steady state.
        use flowmem_engine::{Executor, RunStatus};
        struct ParkOnce(bool);
        impl std::future::Future for ParkOnce {
            type Output = Result<(), flowmem_engine::ActionError>;
            fn poll(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Self::Output> {
                if self.0 {
                    return std::task::Poll::Ready(Ok(()));
                }
                self.0 = true;
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        }
        let dag = flowmem_benches::dags::Dag::layered(10, 100);
        let mut b = flowmem_engine::Workflow::builder("async_alloc");
        for (name, deps) in dag.names.iter().zip(&dag.deps) {
            b.node_async(name.clone(), |_| ParkOnce(false))
                .after(deps.iter().map(|d| dag.names[*d as usize].as_str()));
        }
        let workflow = b.build().expect("a valid DAG");
        let executor = Executor::new(2);
        let runs = |n: u64| {
            for _ in 0..n {
                assert_eq!(
                    executor.submit(&workflow).wait_status(),
                    RunStatus::Completed
                );
            }
        };
        runs(50);
        let measured = if flowmem_benches::quick() { 50 } else { 300 };
        let before = tracking::stats();
        runs(measured);
        let after = tracking::stats();
        let per_node =
            (after.allocations - before.allocations) as f64 / (measured * dag.len() as u64) as f64;
        out.emit(
            "engine",
            "async_nodes/allocations_per_node",
            per_node,
            "allocations per async node (its future's box), steady state",
        );
        // For contrast with E6: the same DAG as E6 with sync nodes sleeping 1 ms each, one run.
        let dag = flowmem_benches::dags::Dag::layered(10, 1000);
        let sleeping = dag.to_workflow(std::sync::Arc::new(
            |_: &mut flowmem_engine::NodeCtx<'_>| {
                std::thread::sleep(std::time::Duration::from_millis(1));
                Ok::<(), flowmem_engine::ActionError>(())
            },
        ));
        let started = std::time::Instant::now();
        assert_eq!(executor.run(&sleeping).status, RunStatus::Completed);
        out.emit(
            "engine",
            "async_nodes/sync_sleep_makespan_ms",
            started.elapsed().as_secs_f64() * 1e3,
            "ms, one run of E6's DAG with sync nodes sleeping 1 ms on 2 workers",
        );
    }
    if out.wants("names_freed/") {
        names_freed(out);
    }
    if out.wants("disk_faults/") {
        // Target R1: the disk's failures injected into durable runs' appends, commits and compactions.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/flowmem-bench/disk-faults");
        let s = flowmem_benches::faults::trials(&dir, 240);
        let _ = std::fs::remove_dir_all(&dir);
        for (id, value, unit) in [
            (
                "disk_faults/acknowledged_then_missing",
                s.lost,
                "checkpoints, all faults",
            ),
            ("disk_faults/faults", s.faults, "faults injected"),
            (
                "disk_faults/acknowledged",
                s.acknowledged,
                "checkpoints, all faults",
            ),
            ("disk_faults/unreported", s.unreported, "faults"),
            (
                "disk_faults/accepted_after_failure",
                s.accepted_after_failure,
                "trials",
            ),
            ("disk_faults/refused_on_reopen", s.refused_reopen, "trials"),
        ] {
            out.emit("engine", id, value as f64, unit);
        }
    }
    let postgres = (out.wants("shared_throughput/") || out.wants("shared_crash/"))
        && flowmem_benches::shared_bench::server_answers("X1-X3 (shared runs on PostgreSQL)");
    if postgres && out.wants("shared_throughput/") {
        shared_throughput(out);
    }
    if postgres && out.wants("shared_crash/") {
        // Target X3: shared runs on PostgreSQL, one of three worker processes killed at random.
        let trials = if flowmem_benches::quick() { 8 } else { 20 };
        let exe = sibling_binary("pg_worker");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/flowmem-bench/shared-crash");
        let s = flowmem_benches::shared_crash::trials(
            &exe,
            &format!("bench_crash_{}", std::process::id()),
            &dir,
            trials,
        );
        for (id, value, unit) in [
            (
                "shared_crash/wrong_plus_extra",
                s.wrong + s.extra,
                "trials wrong + executions beyond the killed worker's hand",
            ),
            ("shared_crash/trials", s.trials, "trials"),
            ("shared_crash/killed_mid_run", s.killed_mid_run, "trials"),
            (
                "shared_crash/reruns",
                s.reruns,
                "executions beyond one per node, all trials",
            ),
        ] {
            out.emit("postgres", id, value as f64, unit);
        }
    }
    if out.wants("crash_trials/") {
        // Target D2: children killed at random moments, their runs resumed here.
        let trials = if flowmem_benches::quick() { 24 } else { 60 };
        let exe = sibling_binary("crash_child");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/flowmem-bench/crash-trials");
        let s = flowmem_benches::crash::trials(&exe, &dir, trials);
        let _ = std::fs::remove_dir_all(&dir);
        for (id, value, unit) in [
            (
                "crash_trials/lost_plus_extra",
                s.lost + s.extra,
                "nodes, all trials",
            ),
            ("crash_trials/lost", s.lost, "nodes, all trials"),
            ("crash_trials/extra", s.extra, "executions, all trials"),
            ("crash_trials/trials", s.trials, "trials"),
            ("crash_trials/killed_mid_run", s.killed_mid_run, "trials"),
            ("crash_trials/in_flight", s.in_flight, "nodes, all trials"),
            (
                "crash_trials/checkpointed",
                s.checkpointed,
                "nodes, all trials",
            ),
        ] {
            out.emit("engine", id, f64::from(value), unit);
        }
    }
}
