//! Shared runs against a real PostgreSQL server: workers that share a run, a lost lease that cannot
//! overwrite, retries and failure, idempotent submission, and connections cut mid-run. Each test in a
//! schema of its own (`common`), so they run in parallel and leave nothing behind.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use common::Schema;
use flowmem_engine::{ActionError, Executor, RetryPolicy, RunId, Value, Workflow};
use flowmem_postgres::{
    Completion, SharedError, SharedRuns, SharedStatus, SharedWorker, WorkerOptions,
};

/// `layers` × `width` nodes, each after two nodes of the layer before; a node's output is one more than
/// the sum of its inputs and of the run's `salt`; each sleeps `ms`; `runs` counts executions.
fn layered(layers: usize, width: usize, ms: u64, runs: Arc<Vec<AtomicU32>>) -> Workflow {
    let mut b = Workflow::builder("layered");
    for l in 0..layers {
        for i in 0..width {
            let runs = Arc::clone(&runs);
            let index = l * width + i;
            let node = b.node(format!("l{l}n{i}"), move |ctx| {
                runs[index].fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(ms));
                let mut sum = 1 + ctx.fetch("salt").and_then(|v| v.as_u64()).unwrap_or(0);
                ctx.for_each_input(|_, v| sum += v.as_u64().unwrap_or(0));
                if index == 0 {
                    ctx.put("first", sum);
                }
                ctx.set_output(sum);
                Ok(())
            });
            if l > 0 {
                node.after([
                    format!("l{}n{i}", l - 1),
                    format!("l{}n{}", l - 1, (i + 1) % width),
                ]);
            }
        }
    }
    b.build().unwrap()
}

fn counters(n: usize) -> Arc<Vec<AtomicU32>> {
    Arc::new((0..n).map(|_| AtomicU32::new(0)).collect())
}

fn quick_worker(name: &str) -> WorkerOptions {
    WorkerOptions::new()
        .name(name)
        .threads(2)
        .batch(2)
        .lease(Duration::from_secs(5))
        .poll(Duration::from_millis(50))
}

/// Runs `run` (submitted) with one worker named `name` until it ends; its report and the worker's
/// counters.
fn run_with_one_worker(
    runs: &Arc<SharedRuns>,
    workflow: &Workflow,
    run: RunId,
    name: &str,
) -> (
    flowmem_postgres::SharedReport,
    flowmem_postgres::WorkerStats,
) {
    let worker = SharedWorker::start(
        Arc::clone(runs),
        std::slice::from_ref(workflow),
        quick_worker(name),
    )
    .unwrap();
    let report = runs
        .wait(run, Duration::from_millis(20), Duration::from_secs(60))
        .unwrap()
        .expect("the run ends within a minute");
    (report, worker.stop())
}

#[test]
fn three_workers_share_a_run_and_each_node_completes_once() {
    let schema = Schema::new("share");
    let runs = Arc::new(SharedRuns::open(schema.options()).unwrap());
    let executions = counters(48);
    let workflow = layered(6, 8, 2, Arc::clone(&executions));
    let run = RunId::named("shared-48");
    let inputs = [("salt".to_string(), Value::from(5u64))];
    assert!(runs.submit(&workflow, run, &inputs).unwrap());
    let workers: Vec<SharedWorker> = (0..3)
        .map(|w| {
            SharedWorker::start(
                Arc::clone(&runs),
                std::slice::from_ref(&workflow),
                quick_worker(&format!("w{w}")),
            )
            .unwrap()
        })
        .collect();
    let report = runs
        .wait(run, Duration::from_millis(20), Duration::from_secs(60))
        .unwrap()
        .expect("the run ends within a minute");
    let stats: Vec<_> = workers.into_iter().map(SharedWorker::stop).collect();
    assert_eq!(report.status, SharedStatus::Completed, "{stats:?}");
    assert_eq!(stats.iter().map(|s| s.completed).sum::<u64>(), 48);
    assert_eq!(stats.iter().map(|s| s.lease_lost).sum::<u64>(), 0);
    // The same outputs as one executor's run of the same workflow with the same input.
    let local = Executor::new(2).run_with(
        &layered(6, 8, 0, counters(48)),
        flowmem_engine::RunOptions::new().input("salt", 5u64),
    );
    for node in &report.nodes {
        assert_eq!(node.state, "done");
        assert_eq!(node.attempts, 1, "{node:?}");
        assert!(node.worker.as_deref().is_some_and(|w| w.starts_with('w')));
        assert_eq!(
            node.output.as_ref().and_then(Value::as_u64),
            local.output(&node.name).and_then(Value::as_u64),
            "{}",
            node.name
        );
    }
    assert!(executions.iter().all(|e| e.load(Ordering::SeqCst) == 1));
    let first = report
        .context
        .iter()
        .find(|(k, _)| k == "first")
        .and_then(|(_, v)| v.as_u64());
    assert_eq!(first, Some(6));
}

#[test]
fn a_worker_whose_lease_expired_cannot_overwrite_the_node() {
    let schema = Schema::new("fence");
    let runs = Arc::new(SharedRuns::open(schema.options()).unwrap());
    let mut b = Workflow::builder("one");
    b.node("only", |ctx| {
        ctx.set_output("from a live worker");
        Ok(())
    });
    let workflow = b.build().unwrap();
    let run = RunId::named("fenced");
    runs.submit(&workflow, run, &[]).unwrap();
    // A worker claims the node, then stalls past its lease.
    let stalled = runs
        .claim("stalled", &[&workflow], 1, Duration::from_millis(200))
        .unwrap();
    assert_eq!(stalled.len(), 1);
    assert_eq!(stalled[0].attempt, 1);
    assert!(
        runs.claim("other", &[&workflow], 1, Duration::from_secs(5))
            .unwrap()
            .is_empty()
    );
    std::thread::sleep(Duration::from_millis(400));
    let (report, stats) = run_with_one_worker(&runs, &workflow, run, "live");
    assert_eq!(stats.completed, 1);
    // The stalled worker wakes and completes with its own output: refused, nothing written.
    let mut late = workflow.invoke("only", 1, &[], &[]).unwrap();
    late.output = Value::from("from the stalled worker");
    assert_eq!(
        runs.complete(&workflow, &stalled[0], &late).unwrap(),
        Completion::LeaseLost
    );
    let after = runs.report(run).unwrap();
    assert_eq!(report.status, SharedStatus::Completed);
    let only = after.node("only").unwrap();
    assert_eq!(
        only.output.as_ref().and_then(Value::as_str),
        Some("from a live worker")
    );
    assert_eq!((only.attempts, only.worker.as_deref()), (2, Some("live")));
}

#[test]
fn failures_are_retried_then_fail_the_run_and_skip_what_had_not_started() {
    let schema = Schema::new("fail");
    let runs = Arc::new(SharedRuns::open(schema.options()).unwrap());
    let mut b = Workflow::builder("failing");
    b.node("flaky", |ctx| {
        if ctx.attempt() < 3 {
            return Err(ActionError::new("503"));
        }
        ctx.set_output(1u64);
        Ok(())
    })
    .retry(RetryPolicy::exponential(3, Duration::from_millis(5)));
    b.node("doomed", |_| Err(ActionError::permanent("bad row 7")))
        .after(["flaky"]);
    b.node("after", |_| Ok(())).after(["doomed"]);
    let workflow = b.build().unwrap();
    let run = RunId::named("failing");
    runs.submit(&workflow, run, &[]).unwrap();
    let (report, stats) = run_with_one_worker(&runs, &workflow, run, "w");
    assert_eq!(report.status, SharedStatus::Failed);
    assert_eq!((stats.retried, stats.failed, stats.completed), (2, 1, 1));
    let node = |n: &str| report.node(n).unwrap().clone();
    assert_eq!(
        (node("flaky").state.as_str(), node("flaky").attempts),
        ("done", 3)
    );
    assert_eq!(node("doomed").state, "failed");
    assert_eq!(
        node("doomed").error.as_deref(),
        Some("Permanent: bad row 7")
    );
    assert_eq!(node("after").state, "skipped");
}

#[test]
fn submitting_is_idempotent_and_another_workflow_under_the_same_id_is_refused() {
    let schema = Schema::new("submit");
    let runs = SharedRuns::open(schema.options()).unwrap();
    let workflow = layered(2, 2, 0, counters(4));
    let run = RunId::named("twice");
    assert!(runs.submit(&workflow, run, &[]).unwrap());
    assert!(!runs.submit(&workflow, run, &[]).unwrap());
    let other = layered(3, 2, 0, counters(6));
    let e = runs.submit(&other, run, &[]).unwrap_err();
    assert!(matches!(e, SharedError::WorkflowMismatch { .. }));
    assert!(
        e.to_string()
            .contains("was submitted with workflow `layered`"),
        "{e}"
    );
    let missing = runs.report(RunId::named("never")).unwrap_err();
    assert!(
        matches!(missing, SharedError::UnknownRun { .. }),
        "{missing}"
    );
    let opaque = [("blob".to_string(), Value::Opaque(Arc::new(7u8)))];
    let e = runs
        .submit(&workflow, RunId::named("opaque"), &opaque)
        .unwrap_err();
    assert!(e.to_string().starts_with("input `blob`"), "{e}");
    // A worker that does not have a run's workflow never claims it.
    let stranger = layered(1, 3, 0, counters(3));
    assert!(
        runs.claim("x", &[&stranger], 10, Duration::from_secs(1))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        runs.claim("x", &[&workflow], 10, Duration::from_secs(1))
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn workers_survive_their_connections_being_cut_mid_run() {
    let schema = Schema::new("cut");
    let app = format!("flowmem-cut-{}", std::process::id());
    let runs = Arc::new(
        SharedRuns::open(
            schema
                .options()
                .application_name(&app)
                .retry_for(Duration::from_secs(20)),
        )
        .unwrap(),
    );
    let executions = counters(40);
    let cut = Arc::new(AtomicBool::new(true));
    let mut b = Workflow::builder("cut");
    for i in 0..40usize {
        let (executions, cut, app) = (Arc::clone(&executions), Arc::clone(&cut), app.clone());
        let node = b.node(format!("n{i}"), move |ctx| {
            executions[i].fetch_add(1, Ordering::SeqCst);
            if i == 20 && cut.swap(false, Ordering::SeqCst) {
                // Every connection of the workers (their pool and their listener) is cut.
                Schema::client()
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                        &[&app],
                    )
                    .unwrap();
            }
            std::thread::sleep(Duration::from_millis(2));
            ctx.set_output(i as u64);
            Ok(())
        });
        if i > 0 {
            node.after([format!("n{}", i - 1)]);
        }
    }
    let workflow = b.build().unwrap();
    let run = RunId::named("cut");
    runs.submit(&workflow, run, &[]).unwrap();
    let (report, stats) = run_with_one_worker(&runs, &workflow, run, "w");
    assert!(!cut.load(Ordering::SeqCst), "the cut happened");
    assert_eq!(report.status, SharedStatus::Completed, "{stats:?}");
    for (i, node) in report.nodes.iter().enumerate() {
        assert_eq!(node.output.as_ref().and_then(Value::as_u64), Some(i as u64));
    }
    // Each node completed once; an execution beyond one is possible only for the node in flight at the
    // cut (its completion was retried on a new connection, fenced by its lease).
    assert_eq!(stats.completed, 40, "{stats:?}");
    let extra: u32 = executions
        .iter()
        .map(|e| e.load(Ordering::SeqCst).saturating_sub(1))
        .sum();
    assert!(extra <= 1, "{extra} extra executions");
}

/// A completion sent twice with the same lease (as a retry on a new connection does when the first call
/// committed but its answer was lost with the connection) is done both times and applied once: the
/// fan-in's counter is not taken down twice.
#[test]
fn a_completion_repeated_under_its_lease_is_done_again_and_applied_once() {
    let schema = Schema::new("repeat");
    let runs = Arc::new(SharedRuns::open(schema.options()).unwrap());
    let mut b = Workflow::builder("fan-in");
    b.node("a", |ctx| {
        ctx.set_output(1u64);
        Ok(())
    });
    b.node("b", |ctx| {
        ctx.set_output(2u64);
        Ok(())
    });
    b.node("c", |ctx| {
        let mut sum = 0;
        ctx.for_each_input(|_, v| sum += v.as_u64().unwrap_or(0));
        ctx.set_output(sum);
        Ok(())
    })
    .after(["a", "b"]);
    let workflow = b.build().unwrap();
    let run = RunId::named("repeated");
    runs.submit(&workflow, run, &[]).unwrap();
    let first = runs
        .claim("w", &[&workflow], 1, Duration::from_secs(30))
        .unwrap();
    assert_eq!(first.len(), 1);
    let invoked = workflow.invoke(&first[0].name, 1, &[], &[]).unwrap();
    for round in 0..2 {
        assert!(
            matches!(
                runs.complete(&workflow, &first[0], &invoked).unwrap(),
                Completion::Done { .. }
            ),
            "completion {round}"
        );
    }
    // Only the other root is ready: `c` still waits for it.
    let next = runs
        .claim("w", &[&workflow], 10, Duration::from_secs(30))
        .unwrap();
    let names: Vec<&str> = next.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_ne!(names[0], "c");
    assert_ne!(names[0], first[0].name);
    let other = workflow.invoke(&next[0].name, 1, &[], &[]).unwrap();
    assert_eq!(
        runs.complete(&workflow, &next[0], &other).unwrap(),
        Completion::Done { readied: 1 }
    );
    let (report, _) = run_with_one_worker(&runs, &workflow, run, "finisher");
    assert_eq!(report.status, SharedStatus::Completed);
    assert_eq!(
        report
            .node("c")
            .unwrap()
            .output
            .as_ref()
            .and_then(Value::as_u64),
        Some(3)
    );
}
