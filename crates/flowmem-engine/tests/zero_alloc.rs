//! With every memory option on, a warmed-up executor makes no heap allocation at all per run (so none per
//! node), measured with `Tracking` as this test binary's global allocator; and turning any one option off
//! makes allocations appear, so each option is seen to matter.
//!
//! The workflow's actions use everything the options recycle: the run's context (`put`), scratch memory,
//! a byte buffer, and an output.
//!
//! The counts are process-wide, so nothing else may allocate while they are taken: this binary has its
//! own harness (`harness = false`), which runs the checks one after the other on the main thread. Under
//! libtest the harness's thread allocates while a test runs (its "has been running for over 60 seconds"
//! notice, the bookkeeping of a test that ends). CI once counted 3 allocations in 20 warm runs of the
//! block-size check under valgrind, with that notice printed during the check; one run of this harness
//! did the same before [`without_new_states`] took such windows again, so the executor's own new run
//! state (see there) is the other candidate. Neither came back in about 20 valgrind runs since.

use flowmem_alloc::{System, Tracking, tracking};
use flowmem_engine::{Benchmark, Executor, MemoryOption, MemoryOptions, RunStatus, Workflow};

#[global_allocator]
static GLOBAL: Tracking<System> = Tracking::new(System);

/// The E2 workload, as the counts measure it.
use flowmem_testing::engine::busy_workflow;

/// `measure` taken again (up to 5 times) while the executor made a new run state during it; the last
/// taking is returned.
///
/// A submission waits at most 5 ms for the state of a run that has just ended while the worker that
/// settled its last node lets go of it, then makes another state (a few allocations) rather than wait
/// longer. That takes the worker to be held off a CPU for 5 ms at that point: an OS preemption, or
/// valgrind, which runs one thread at a time and need not hand its lock to the worker when the waiting
/// thread yields. `recycled_states` grows by one each time, so such a taking is seen (and named on
/// stderr); any other allocation fails the check.
fn without_new_states<T>(executor: &Executor, mut measure: impl FnMut() -> T) -> T {
    let mut taking = 1;
    loop {
        let states = executor.stats().recycled_states;
        let value = measure();
        let made = executor.stats().recycled_states - states;
        if made == 0 || taking == 5 {
            return value;
        }
        eprintln!(
            "taking {taking}: {made} run state(s) were made (a worker held the last one past the \
             wait): measured again"
        );
        taking += 1;
    }
}

/// Allocations per run counted while `run_all(runs)` runs on `executor` (see [`without_new_states`]).
fn counted(executor: &Executor, runs: u64, mut run_all: impl FnMut(u64)) -> f64 {
    without_new_states(executor, || {
        let before = tracking::stats();
        run_all(runs);
        (tracking::stats().allocations - before.allocations) as f64 / runs as f64
    })
}

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
    counted(&executor, runs, run_all) / 2.0
}

fn all_options_on_allocate_nothing_per_run_and_each_option_matters() {
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
    let warm = without_new_states(&executor, || {
        Benchmark::new(&workflow)
            .executor(&executor)
            .iterations(runs)
            .warmup(200)
            .run()
    });
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
fn the_arena_block_size_sets_how_often_scratch_memory_allocates() {
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
        counted(&executor, 20, |runs| {
            for _ in 0..runs {
                assert_eq!(
                    executor.submit(&workflow).wait_status(),
                    RunStatus::Completed
                );
            }
        })
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

/// The checks, by name.
const CHECKS: [(&str, fn()); 2] = [
    (
        "all_options_on_allocate_nothing_per_run_and_each_option_matters",
        all_options_on_allocate_nothing_per_run_and_each_option_matters,
    ),
    (
        "the_arena_block_size_sets_how_often_scratch_memory_allocates",
        the_arena_block_size_sets_how_often_scratch_memory_allocates,
    ),
];

/// A harness that speaks enough of libtest's command line for `cargo test` (filters, `--exact`,
/// `--list`, `--ignored`; other flags such as `--test-threads` are accepted and mean nothing here, as
/// the checks always run one at a time) and runs the checks on this thread.
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let filters: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    let exact = flag("--exact");
    let chosen: Vec<_> = CHECKS
        .iter()
        .filter(|(name, _)| {
            filters.is_empty()
                || filters
                    .iter()
                    .any(|f| if exact { name == f } else { name.contains(f) })
        })
        .collect();
    // None of the checks is ignored: `--ignored` runs (and lists) none.
    let chosen = if flag("--ignored") {
        Vec::new()
    } else {
        chosen
    };
    if flag("--list") {
        for (name, _) in &chosen {
            println!("{name}: test");
        }
        return std::process::ExitCode::SUCCESS;
    }
    println!("\nrunning {} checks", chosen.len());
    let mut failed = Vec::new();
    for (name, check) in chosen {
        println!("check {name} ...");
        match std::panic::catch_unwind(check) {
            Ok(()) => println!("check {name} ... ok"),
            Err(_) => {
                println!("check {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    if failed.is_empty() {
        println!("\ncheck result: ok");
        std::process::ExitCode::SUCCESS
    } else {
        println!("\ncheck result: FAILED: {}", failed.join(", "));
        std::process::ExitCode::from(101)
    }
}
