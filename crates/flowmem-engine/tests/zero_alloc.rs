//! With every memory option on, a warmed-up executor makes no heap allocation at all per run (so none per
//! node), measured with `Tracking` as this test binary's global allocator; and turning any one option off
//! makes allocations appear, so each option is seen to matter.
//!
//! The workflow's actions use everything the options recycle: the run's context (`put`), scratch memory,
//! a byte buffer, and an output.

use flowmem_alloc::{System, Tracking, tracking};
use flowmem_engine::{Benchmark, Executor, MemoryOption, MemoryOptions, RunStatus, Workflow};

#[global_allocator]
static GLOBAL: Tracking<System> = Tracking::new(System);

/// The counts are process-wide: this file's tests take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The E2 workload, as the counts measure it.
use flowmem_testing::engine::busy_workflow;

/// Allocations per run, in steady state, of `runs` runs with `memory`.
fn allocations_per_run(memory: MemoryOptions, runs: u64) -> f64 {
    let workflow = busy_workflow();
    let executor = Executor::with_memory(2, memory);
    let run_all = |n: u64| {
        for _ in 0..n {
            // Two runs in flight at a time, as a service would have.
            let a = executor.submit(&workflow);
            let b = executor.submit(&workflow);
            assert_eq!(a.wait_status(), RunStatus::Completed);
            assert_eq!(b.wait_status(), RunStatus::Completed);
        }
    };
    run_all(200); // warm up: pools, thread caches, deques and maps reach their working size
    let before = tracking::stats();
    run_all(runs);
    let after = tracking::stats();
    (after.allocations - before.allocations) as f64 / (2 * runs) as f64
}

#[test]
fn all_options_on_allocate_nothing_per_run_and_each_option_matters() {
    let _turn = turn();
    assert!(tracking::is_installed());
    let runs = flowmem_testing::iterations(300);
    let all_on = allocations_per_run(MemoryOptions::ALL, runs);
    assert_eq!(all_on, 0.0, "allocations per run with every option on");
    for option in MemoryOption::ALL {
        let off = allocations_per_run(MemoryOptions::ALL.with(option, false), runs);
        eprintln!("{option} off: {off} allocations per run");
        assert!(
            off >= 1.0,
            "{option} off: {off} allocations per run; the option changes nothing"
        );
    }
    let none = allocations_per_run(MemoryOptions::NONE, runs);
    eprintln!("all on: {all_on}, all off: {none} allocations per run");
    assert!(
        none > 50.0,
        "{none} allocations per run with every option off"
    );

    // The benchmark API counts the same way (this binary has a Tracking allocator). Its executor is
    // warmed as above first (two runs in flight, so both workers take nodes: one run at a time on a
    // machine that runs one thread at a time, as valgrind does, can leave a worker that never ran a node,
    // whose first node then fills its caches during the measured runs).
    let workflow = busy_workflow();
    let executor = Executor::new(2);
    for _ in 0..200 {
        let a = executor.submit(&workflow);
        let b = executor.submit(&workflow);
        assert_eq!(a.wait_status(), RunStatus::Completed);
        assert_eq!(b.wait_status(), RunStatus::Completed);
    }
    let warm = Benchmark::new(&workflow)
        .executor(&executor)
        .iterations(runs)
        .warmup(200)
        .run();
    assert_eq!(warm.allocations_per_run, Some(0.0), "{warm}");
    assert_eq!(warm.failed_runs, 0);
    let cold_executor = Executor::with_memory(2, MemoryOptions::NONE);
    let cold = Benchmark::new(&workflow)
        .executor(&cold_executor)
        .iterations(50)
        .run();
    assert!(cold.allocations_per_run.unwrap() > 50.0, "{cold}");
    assert!(cold.bytes_per_run.unwrap() > 0.0);
}

/// The scratch arenas' block size acts: a workflow whose nodes each use 64 KiB of scratch memory makes
/// far fewer allocations with 1 MiB blocks than with 4 KiB blocks when every node gets a new arena
/// (`arena` off), and none at all either way when the workers' arenas are kept (`arena` on, warm).
#[test]
fn the_arena_block_size_sets_how_often_scratch_memory_allocates() {
    let _turn = turn();
    let mut b = Workflow::builder("scratchy");
    for i in 0..10 {
        b.node(format!("s{i}"), |ctx| {
            for _ in 0..64 {
                let piece = ctx.scratch_slice(&[7u8; 1024]);
                std::hint::black_box(piece);
            }
            Ok(())
        });
    }
    let workflow = b.build().unwrap();
    let per_run = |memory: MemoryOptions| {
        // One worker: its arena is warm after the first run (with two, which worker ran the warm-up is
        // up to the scheduler: under valgrind, one thread at a time, the second may warm up later).
        let executor = Executor::with_memory(1, memory);
        for _ in 0..20 {
            assert_eq!(
                executor.submit(&workflow).wait_status(),
                RunStatus::Completed
            );
        }
        let before = tracking::stats();
        let runs = 20;
        for _ in 0..runs {
            assert_eq!(
                executor.submit(&workflow).wait_status(),
                RunStatus::Completed
            );
        }
        (tracking::stats().allocations - before.allocations) as f64 / runs as f64
    };
    let off = MemoryOptions::ALL.with(MemoryOption::Arena, false);
    let small = per_run(off.with_arena_block_size(4096));
    let large = per_run(off.with_arena_block_size(1 << 20));
    eprintln!("arena off: {small} allocations per run with 4 KiB blocks, {large} with 1 MiB");
    assert!(small >= 10.0 * 16.0, "{small}");
    assert!(large <= 10.0 * 3.0, "{large}");
    for size in [4096, 1 << 20] {
        assert_eq!(per_run(MemoryOptions::ALL.with_arena_block_size(size)), 0.0);
    }
}
