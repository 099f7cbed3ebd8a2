//! The executor with real threads: scheduling, limits, every failure path, and many runs at once.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use flowmem_engine::{
    ActionError, ActionErrorKind, Executor, FailurePolicy, NodeCtx, NodeStatus, RetryPolicy,
    RunOptions, RunStatus, Workflow,
};

type Result = std::result::Result<(), ActionError>;

fn noop(_: &mut NodeCtx<'_>) -> Result {
    Ok(())
}

fn sleep_ms(ms: u64) -> impl Fn(&mut NodeCtx<'_>) -> Result + Send + Sync + 'static {
    move |_| {
        std::thread::sleep(Duration::from_millis(ms));
        Ok(())
    }
}

#[test]
fn outputs_flow_along_dependencies() {
    let mut b = Workflow::builder("flow");
    b.node("two", |ctx: &mut NodeCtx<'_>| {
        ctx.set_output(2u64);
        Ok(())
    });
    b.node("three", |ctx: &mut NodeCtx<'_>| {
        ctx.set_output(3u64);
        Ok(())
    });
    b.node("product", |ctx: &mut NodeCtx<'_>| {
        let mut product = 1;
        ctx.for_each_input(|_, v| product *= v.as_u64().unwrap());
        // Only dependencies are visible.
        assert!(ctx.input("product").is_none());
        ctx.set_output(product);
        Ok(())
    })
    .after(["two", "three"]);
    let w = b.build().unwrap();
    let executor = Executor::new(2);
    let report = executor.run(&w);
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(report.output("product").unwrap().as_u64(), Some(6));
    assert!(report.nodes.iter().all(|n| n.attempts == 1));
    assert_eq!(executor.stats().completed, 3);
}

#[test]
fn a_node_starts_when_its_own_dependencies_finish_not_its_level() {
    // slow (level 0) runs until after_fast (level 1, after fast) has started: it would never end if the
    // executor waited for level 0 to finish before level 1. Order of events only, no clock (a safety limit
    // of a minute keeps a broken executor from hanging the test, and fails it).
    let after_fast_started = Arc::new(AtomicBool::new(false));
    let released = Arc::new(AtomicBool::new(false));
    let mut b = Workflow::builder("levels");
    let (flag, seen) = (Arc::clone(&after_fast_started), Arc::clone(&released));
    b.node("slow", move |_: &mut NodeCtx<'_>| {
        let give_up = Instant::now() + Duration::from_secs(60);
        while !flag.load(Ordering::SeqCst) && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(1));
        }
        seen.store(flag.load(Ordering::SeqCst), Ordering::SeqCst);
        Ok(())
    });
    b.node("fast", noop);
    let flag = Arc::clone(&after_fast_started);
    b.node("after_fast", move |_: &mut NodeCtx<'_>| {
        flag.store(true, Ordering::SeqCst);
        Ok(())
    })
    .after(["fast"]);
    b.node("join", noop).after(["slow", "after_fast"]);
    let report = Executor::new(2).run(&b.build().unwrap());
    assert_eq!(report.status, RunStatus::Completed);
    assert!(
        released.load(Ordering::SeqCst),
        "after_fast did not start while slow ran"
    );
}

#[test]
fn max_concurrency_is_honoured_and_reached() {
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut b = Workflow::builder("wide");
    for i in 0..24 {
        let (running, most) = (Arc::clone(&running), Arc::clone(&most));
        b.node(format!("n{i}"), move |_: &mut NodeCtx<'_>| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
            running.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        });
    }
    let w = b.build().unwrap();
    let executor = Executor::new(4);
    let report = executor.run_with(&w, RunOptions::new().max_concurrency(2));
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(most.load(Ordering::SeqCst), 2);
    most.store(0, Ordering::SeqCst);
    executor.run(&w);
    assert!(
        most.load(Ordering::SeqCst) > 2,
        "without a limit, four workers run more at once"
    );
}

#[test]
fn a_failure_skips_its_dependents_and_fail_fast_stops_the_rest() {
    let mut b = Workflow::builder("fail");
    b.node("bad", |_: &mut NodeCtx<'_>| {
        Err(ActionError::new("disk full"))
    });
    b.node("child", noop).after(["bad"]);
    b.node("grandchild", noop).after(["child"]);
    b.node("slow_other", sleep_ms(50));
    b.node("after_other", noop).after(["slow_other"]);
    let w = b.build().unwrap();
    let executor = Executor::new(2);

    let report = executor.run(&w);
    assert_eq!(report.status, RunStatus::Failed);
    let bad = report.node("bad").unwrap();
    assert_eq!(bad.status, NodeStatus::Failed);
    assert_eq!(bad.error.as_ref().unwrap().message(), "disk full");
    assert_eq!(report.node("child").unwrap().status, NodeStatus::Skipped);
    assert_eq!(
        report.node("grandchild").unwrap().status,
        NodeStatus::Skipped
    );
    // Fail fast: the independent branch's second node never starts.
    assert_eq!(
        report.node("after_other").unwrap().status,
        NodeStatus::Skipped
    );

    let report = executor.run_with(
        &w,
        RunOptions::new().policy(FailurePolicy::ContinueIndependent),
    );
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(report.node("child").unwrap().status, NodeStatus::Skipped);
    assert_eq!(
        report.node("after_other").unwrap().status,
        NodeStatus::Completed
    );
}

#[test]
fn a_panicking_action_fails_its_node_only_and_the_executor_goes_on() {
    let mut b = Workflow::builder("panics");
    b.node("boom", |_: &mut NodeCtx<'_>| -> Result {
        panic!("action bug")
    });
    b.node("fine", noop);
    let w = b.build().unwrap();
    let executor = Executor::new(2);
    let report = executor.run_with(
        &w,
        RunOptions::new().policy(FailurePolicy::ContinueIndependent),
    );
    let boom = report.node("boom").unwrap();
    assert_eq!(boom.status, NodeStatus::Failed);
    let error = boom.error.as_ref().unwrap();
    assert_eq!(
        (error.kind(), error.message()),
        (ActionErrorKind::Panicked, "action bug")
    );
    assert_eq!(report.node("fine").unwrap().status, NodeStatus::Completed);
    // The workers survived: more runs go through.
    for _ in 0..10 {
        let mut b = Workflow::builder("after");
        b.node("x", noop);
        assert_eq!(
            executor.run(&b.build().unwrap()).status,
            RunStatus::Completed
        );
    }
}

#[test]
fn retries_then_success_and_retries_exhausted() {
    let calls = Arc::new(AtomicU32::new(0));
    let flaky = {
        let calls = Arc::clone(&calls);
        move |ctx: &mut NodeCtx<'_>| {
            calls.fetch_add(1, Ordering::SeqCst);
            if ctx.attempt() < 3 {
                Err(ActionError::new("not yet"))
            } else {
                ctx.set_output(ctx.attempt());
                Ok(())
            }
        }
    };
    let mut b = Workflow::builder("retry");
    b.node("flaky", flaky)
        .retry(RetryPolicy::exponential(5, Duration::from_millis(20)).jitter(false));
    b.node("hopeless", |_: &mut NodeCtx<'_>| {
        Err(ActionError::new("never"))
    })
    .retry(RetryPolicy::immediate(2));
    b.node("permanent", |_: &mut NodeCtx<'_>| {
        Err(ActionError::permanent("bad input"))
    })
    .retry(RetryPolicy::immediate(5));
    let w = b.build().unwrap();
    let executor = Executor::new(2);
    let started = Instant::now();
    let report = executor.run_with(
        &w,
        RunOptions::new().policy(FailurePolicy::ContinueIndependent),
    );
    let flaky = report.node("flaky").unwrap();
    assert_eq!((flaky.status, flaky.attempts), (NodeStatus::Completed, 3));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(report.output("flaky").unwrap().as_u64(), Some(3));
    // Backoff: 20 ms, then 40 ms.
    assert!(started.elapsed() >= Duration::from_millis(60));
    let hopeless = report.node("hopeless").unwrap();
    assert_eq!(
        (hopeless.status, hopeless.attempts),
        (NodeStatus::Failed, 3)
    );
    let permanent = report.node("permanent").unwrap();
    assert_eq!(
        (permanent.status, permanent.attempts),
        (NodeStatus::Failed, 1)
    );
    assert_eq!(executor.stats().retried, 4);
}

#[test]
fn a_timeout_fails_the_attempt_and_a_polite_action_stops_early() {
    let mut b = Workflow::builder("timeouts");
    b.node("stubborn", sleep_ms(120))
        .timeout(Duration::from_millis(20));
    // polite looks at its deadline and stops: it must see it (a minute is a safety limit, not a measure).
    let stopped = Arc::new(AtomicBool::new(false));
    let saw = Arc::clone(&stopped);
    b.node("polite", move |ctx: &mut NodeCtx<'_>| {
        let give_up = Instant::now() + Duration::from_secs(60);
        while !ctx.is_cancelled() {
            std::thread::sleep(Duration::from_millis(1));
            if Instant::now() > give_up {
                return Ok(());
            }
        }
        saw.store(true, Ordering::SeqCst);
        Err(ActionError::new("stopped"))
    })
    .timeout(Duration::from_millis(30));
    let w = b.build().unwrap();
    let report = Executor::new(2).run_with(
        &w,
        RunOptions::new().policy(FailurePolicy::ContinueIndependent),
    );
    for name in ["stubborn", "polite"] {
        let node = report.node(name).unwrap();
        assert_eq!(node.status, NodeStatus::Failed, "{name}");
        assert_eq!(
            node.error.as_ref().unwrap().kind(),
            ActionErrorKind::TimedOut,
            "{name}"
        );
    }
    assert!(
        stopped.load(Ordering::SeqCst),
        "polite did not see its deadline"
    );
}

#[test]
fn cancelling_a_run_cancels_what_has_not_run() {
    let mut b = Workflow::builder("long");
    let running = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&running);
    b.node("first", move |ctx: &mut NodeCtx<'_>| {
        flag.store(true, Ordering::SeqCst);
        // Until cancelled (a minute is a safety limit: the run then fails, and the test with it).
        let give_up = Instant::now() + Duration::from_secs(60);
        while !ctx.is_cancelled() && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(1));
        }
        Err(ActionError::new("interrupted"))
    });
    b.node("second", noop).after(["first"]);
    let executor = Executor::new(2);
    let handle = executor.submit(&b.build().unwrap());
    while !running.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    assert!(!handle.is_finished());
    handle.cancel();
    let report = handle.wait();
    assert_eq!(report.status, RunStatus::Cancelled);
    assert_eq!(report.node("first").unwrap().status, NodeStatus::Cancelled);
    assert_eq!(report.node("second").unwrap().status, NodeStatus::Cancelled);
    assert_eq!(report.node("second").unwrap().attempts, 0);
}

/// A layered DAG of 64 nodes under a root `seed` that outputs the run's number; node `n{id}` fails when a
/// hash of (run, id) says so, and counts its executions in `executions[run * 64 + id]`.
fn random_workflow(run: usize, executions: &Arc<Vec<AtomicU32>>) -> Workflow {
    let mut b = Workflow::builder(format!("random-{run}"));
    b.node("seed", move |ctx: &mut NodeCtx<'_>| {
        ctx.set_output(run as u64);
        Ok(())
    });
    for layer in 0..4 {
        for i in 0..16 {
            let id = layer * 16 + i;
            let executions = Arc::clone(executions);
            let node = b.node(format!("n{id}"), move |ctx: &mut NodeCtx<'_>| {
                let mut run = None;
                ctx.for_each_input(|_, v| run = v.as_u64());
                let run = run.expect("every dependency outputs the run") as usize;
                executions[run * 64 + id].fetch_add(1, Ordering::SeqCst);
                let h = (run as u64 * 31 + id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58;
                if h == 0 {
                    Err(ActionError::new("unlucky"))
                } else {
                    ctx.set_output(run as u64);
                    Ok(())
                }
            });
            if layer == 0 {
                node.after(["seed"]);
            } else {
                node.after(
                    [(i + 15) % 16, i, (i + 1) % 16].map(|j| format!("n{}", (layer - 1) * 16 + j)),
                );
            }
        }
    }
    b.build().unwrap()
}

#[test]
fn many_concurrent_runs_with_random_failures_run_each_node_once_or_skip_it() {
    // Every node either ran exactly once (no retries are set) and says so, or was skipped and never ran.
    let runs = flowmem_testing::iterations(200) as usize;
    let executions: Arc<Vec<AtomicU32>> =
        Arc::new((0..runs * 64).map(|_| AtomicU32::new(0)).collect());
    let executor = Executor::new(2);
    let handles: Vec<_> = (0..runs)
        .map(|run| {
            let options = if run % 2 == 0 {
                RunOptions::new().policy(FailurePolicy::ContinueIndependent)
            } else {
                RunOptions::new()
            };
            (
                run,
                executor.submit_with(&random_workflow(run, &executions), options),
            )
        })
        .collect();
    let mut failed_runs = 0;
    for (run, handle) in handles {
        let report = handle.wait();
        failed_runs += usize::from(report.status == RunStatus::Failed);
        for node in report.nodes.iter().filter(|n| &*n.name != "seed") {
            let id: usize = node.name[1..].parse().unwrap();
            let ran = executions[run * 64 + id].load(Ordering::SeqCst);
            match node.status {
                NodeStatus::Completed | NodeStatus::Failed => {
                    assert_eq!((ran, node.attempts), (1, 1), "run {run} {}", node.name)
                }
                NodeStatus::Skipped => {
                    assert_eq!((ran, node.attempts), (0, 0), "run {run} {}", node.name)
                }
                other => panic!("run {run} {}: {other:?}", node.name),
            }
        }
    }
    assert!(
        failed_runs > 0 && failed_runs < runs,
        "{failed_runs} of {runs} runs failed"
    );
    let stats = executor.stats();
    assert_eq!(stats.active, 0);
    assert_eq!(stats.runs, runs as u64);
}

/// A worker takes a finished node off its run's count of unfinished nodes only when it moves to a task of
/// another run or runs out of work (a run of independent nodes: none of its nodes makes another ready).
/// Runs of two workflows interleaved on one worker, and on two, each end — and each ends once its last
/// node has, not when the worker next has something else to do.
#[test]
fn runs_of_independent_nodes_interleaved_on_the_workers_each_end() {
    let wide = |name: &str, n: usize| {
        let mut b = Workflow::builder(name);
        for i in 0..n {
            b.node(format!("n{i}"), |ctx: &mut NodeCtx<'_>| {
                ctx.set_output(1u64);
                Ok(())
            });
        }
        b.build().unwrap()
    };
    let (a, b) = (wide("a", 10), wide("b", 7));
    for workers in [1, 2] {
        let executor = Executor::new(workers);
        let rounds = flowmem_testing::iterations(50);
        for round in 0..rounds {
            let handles: Vec<_> = (0..4)
                .map(|i| executor.submit(if (i + round) % 2 == 0 { &a } else { &b }))
                .collect();
            for h in &handles {
                let report = h.wait_timeout(Duration::from_secs(10)).unwrap_or_else(|| {
                    panic!("round {round}, {workers} workers: a run never ended")
                });
                assert_eq!(report.status, RunStatus::Completed);
                assert!(
                    report
                        .nodes
                        .iter()
                        .all(|n| n.status == NodeStatus::Completed)
                );
            }
        }
        // The last run alone: it ends though the worker has nothing after it.
        let report = executor
            .submit(&a)
            .wait_timeout(Duration::from_secs(10))
            .expect("a run alone never ended");
        assert_eq!(report.status, RunStatus::Completed);
        // Each round: two runs of `a` (10 nodes) and two of `b` (7).
        assert_eq!(executor.stats().completed, rounds * 2 * (10 + 7) + 10);
    }
}

/// Issue 14, bug 5: a timeout, a retry delay or a wait of `Duration::MAX` overflowed `Instant` arithmetic
/// on a worker (outside the action's `catch_unwind`) and killed it: the run never ended, later runs on a
/// one-worker executor never started, and dropping the executor blocked. Now `Duration::MAX` means no
/// limit (a wait as long as the clock can represent), a waiting retry still sees a cancellation, and
/// the one worker serves every run.
#[test]
fn durations_too_long_for_the_clock_mean_no_limit_and_never_kill_a_worker() {
    let executor = Executor::new(1);
    let mut b = Workflow::builder("max-timeout");
    b.node("a", |ctx: &mut NodeCtx<'_>| {
        ctx.set_output(1u64);
        Ok(())
    })
    .timeout(Duration::MAX);
    let unlimited = b.build().unwrap();
    assert_eq!(executor.run(&unlimited).status, RunStatus::Completed);

    let mut b = Workflow::builder("max-retry");
    b.node("flaky", |_: &mut NodeCtx<'_>| {
        Err(ActionError::new("try again"))
    })
    .retry(RetryPolicy::exponential(3, Duration::MAX).max_delay(Duration::MAX));
    let flaky = b.build().unwrap();
    let waiting = executor.submit(&flaky);
    while executor.stats().retried == 0 {
        std::thread::yield_now();
    }
    // The worker is alive and serves another run while the retry waits.
    assert_eq!(executor.run(&unlimited).status, RunStatus::Completed);
    assert!(!waiting.is_finished());
    waiting.cancel();
    let report = waiting
        .wait_timeout(Duration::MAX)
        .expect("no limit: waits for the end");
    assert_eq!(report.status, RunStatus::Cancelled);
    assert_eq!(executor.stats().worker_panics, 0);
    drop(executor); // returns: no run is left in flight
}

/// `node_timings(false)` reads no clock around nodes without a timeout (their durations are zero), and
/// a node's timeout still holds.
#[test]
fn node_timings_off_leaves_durations_zero_and_timeouts_in_force() {
    let mut b = Workflow::builder("timed");
    b.node("sleeps", |_| {
        std::thread::sleep(Duration::from_millis(3));
        Ok(())
    });
    b.node("too_slow", |_| {
        std::thread::sleep(Duration::from_millis(30));
        Ok(())
    })
    .timeout(Duration::from_millis(5));
    let w = b.build().unwrap();
    let executor = Executor::new(2);
    let timed = executor.run_with(
        &w,
        RunOptions::new().policy(FailurePolicy::ContinueIndependent),
    );
    assert!(timed.node("sleeps").unwrap().duration >= Duration::from_millis(3));
    let untimed = executor.run_with(
        &w,
        RunOptions::new()
            .policy(FailurePolicy::ContinueIndependent)
            .node_timings(false),
    );
    let sleeps = untimed.node("sleeps").unwrap();
    assert_eq!(
        (sleeps.status, sleeps.duration),
        (NodeStatus::Completed, Duration::ZERO)
    );
    let too_slow = untimed.node("too_slow").unwrap();
    assert_eq!(too_slow.status, NodeStatus::Failed);
    assert!(
        too_slow.duration >= Duration::from_millis(30),
        "{too_slow:?}"
    );
}
