//! A workflow owns its names and a run its context keys: a program that builds, runs and drops workflows
//! with generated names (`shard-{n}`) gets the memory back, and the process-wide string pool does not
//! grow. Measured with `Tracking` as this test binary's global allocator (target E7 is the same figure
//! over 100k workflows in `cargo xtask bench`).

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use flowmem_alloc::{System, Tracking, tracking};
use flowmem_engine::{Executor, MemoryOptions, RunOptions, RunStatus, Workflow};

#[global_allocator]
static GLOBAL: Tracking<System> = Tracking::new(System);

/// Builds workflow `i` (three nodes, each putting a context key of its own), runs it with an input under
/// a key of its own, checks the report and drops everything.
fn build_run_drop(executor: &Executor, i: usize) {
    let mut b = Workflow::builder(format!("generated-{i}"));
    for (node, after) in [("a", None), ("b", Some("a")), ("c", Some("a"))] {
        let builder = b.node(format!("shard-{i}-{node}"), move |ctx| {
            let seed = ctx.fetch(&format!("input-{i}")).and_then(|v| v.as_u64());
            ctx.put(&format!("key-{i}-{node}"), seed.unwrap_or(0) + 1);
            ctx.set_output(format!("out-{i}-{node}"));
            Ok(())
        });
        if let Some(after) = after {
            builder.after([format!("shard-{i}-{after}")]);
        }
    }
    let workflow = b.build().unwrap();
    let report = executor.run_with(
        &workflow,
        RunOptions::new().input(format!("input-{i}"), i as u64),
    );
    assert_eq!(report.status, RunStatus::Completed, "{report:?}");
    assert_eq!(report.context.len(), 4);
    assert_eq!(
        report
            .output(&format!("shard-{i}-b"))
            .and_then(|v| v.as_str()),
        Some(format!("out-{i}-b").as_str())
    );
}

#[test]
fn building_running_and_dropping_workflows_with_generated_names_gives_the_memory_back() {
    assert!(tracking::is_installed());
    for memory in [MemoryOptions::ALL, MemoryOptions::NONE] {
        let executor = Executor::with_memory(2, memory);
        // Warm up: the executor's pools, the workers' thread caches and arenas reach their working size.
        for i in 0..200 {
            build_run_drop(&executor, i);
        }
        let interned = flowmem_intern::global().len();
        let before = tracking::stats().current_bytes;
        let n = flowmem_testing::iterations(3_000) as usize;
        for i in 1_000..1_000 + n {
            build_run_drop(&executor, i);
        }
        let after = tracking::stats().current_bytes;
        assert_eq!(
            flowmem_intern::global().len(),
            interned,
            "names or keys went into the process-wide pool ({memory:?})"
        );
        // Each workflow held about 1 KiB (names, graph, actions, run state, context): 3,000 of them kept
        // would be megabytes. What may differ is noise of the allocator's own bookkeeping.
        let grown = after as i64 - before as i64;
        assert!(
            grown < 16 * 1024,
            "heap grew by {grown} bytes over {n} workflows ({before} -> {after}, {memory:?})"
        );
    }
}

/// Counts the drops of the action it is captured by.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn dropping_a_workflow_drops_its_recycled_run_states_and_its_actions() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let executor = Executor::new(2); // recycles run states (`pooled_node_state`)
    let mut b = Workflow::builder("held");
    let counter = DropCounter(Arc::clone(&dropped));
    b.node("a", move |ctx| {
        let _ = &counter;
        ctx.set_output(1u64);
        Ok(())
    });
    let workflow = b.build().unwrap();
    let copy = workflow.clone();
    // Runs in flight at once, so the executor keeps several states of this workflow.
    let handles: Vec<_> = (0..8).map(|_| executor.submit(&workflow)).collect();
    for h in &handles {
        assert_eq!(h.wait_status(), RunStatus::Completed);
    }
    drop(handles);
    drop(workflow);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        0,
        "a handle is left: the workflow lives"
    );
    assert_eq!(executor.run(&copy).status, RunStatus::Completed);
    drop(copy);
    // The worker that ended the last run may hold its state for a few more instructions.
    wait_for_drop(&dropped);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the last handle is gone: the executor's recycled states must not keep the workflow"
    );
    assert_eq!(executor.stats().recycled_states, 0);
}

/// Waits (10 s at most) until the action counted by `dropped` was dropped.
fn wait_for_drop(dropped: &AtomicUsize) {
    let since = std::time::Instant::now();
    while dropped.load(Ordering::SeqCst) == 0 && since.elapsed().as_secs() < 10 {
        std::thread::yield_now();
    }
}

#[test]
fn a_run_in_flight_keeps_its_workflow_until_it_ends() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let executor = Executor::new(2);
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let wait = std::sync::Mutex::new(wait);
    let mut b = Workflow::builder("in-flight");
    let counter = DropCounter(Arc::clone(&dropped));
    b.node("slow", move |ctx| {
        let _ = &counter;
        wait.lock().unwrap().recv().unwrap();
        ctx.set_output("done");
        Ok(())
    });
    b.node("after", |ctx| {
        ctx.set_output(ctx.input("slow").cloned().unwrap_or_default());
        Ok(())
    })
    .after(["slow"]);
    let workflow = b.build().unwrap();
    let handle = executor.submit(&workflow);
    drop(workflow);
    assert_eq!(dropped.load(Ordering::SeqCst), 0);
    release.send(()).unwrap();
    let report = handle.wait();
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(report.workflow.as_ref(), "in-flight");
    assert_eq!(
        report.output("after").and_then(|v| v.as_str()),
        Some("done")
    );
    drop(handle);
    // The worker that ended the run may hold its state for a few more instructions.
    wait_for_drop(&dropped);
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}
