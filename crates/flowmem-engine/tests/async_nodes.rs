//! Async nodes with runtime-agnostic futures (`futures` channels, threads that send): a pending future
//! holds no worker; timeouts and cancellations drop the future; retries, failure policies,
//! `max_concurrency` and durable checkpoints behave as for sync nodes; a run can be awaited.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering},
    },
    time::Duration,
};

use flowmem_engine::{
    ActionError, ActionErrorKind, Executor, FailurePolicy, MemoryCheckpoints, NodeStatus,
    RetryPolicy, RunId, RunOptions, RunStatus, Workflow,
};
use futures::channel::oneshot;

/// Sets its flag when dropped: shows that a future was dropped, not left behind.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A future that never completes (its sender is kept elsewhere, never used).
fn never(keep: &Arc<Mutex<Vec<oneshot::Sender<()>>>>) -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    keep.lock().unwrap().push(tx);
    rx
}

/// With one worker, an async node waits for a value that only a sync node, started after it, sends: if
/// the pending future held the worker, the sync node could never run.
#[test]
fn a_pending_future_holds_no_worker_and_sync_and_async_nodes_mix() {
    let (tx, rx) = oneshot::channel::<u64>();
    let rx = Mutex::new(Some(rx));
    let tx = Mutex::new(Some(tx));
    let mut b = Workflow::builder("mixed");
    b.node_async("wait", move |ctx| {
        let rx = rx.lock().unwrap().take();
        async move {
            let got = rx.expect("first attempt").await.unwrap_or(0);
            ctx.set_output(got);
            ctx.put("seen", got)?;
            Ok(())
        }
    });
    b.node("send", move |_| {
        if let Some(tx) = tx.lock().unwrap().take() {
            let _ = tx.send(41);
        }
        Ok(())
    });
    b.node("sum", |ctx| {
        ctx.set_output(ctx.input_u64("wait").unwrap_or(0) + 1);
        Ok(())
    })
    .after(["wait", "send"]);
    b.node_async("after", |ctx| async move {
        let sum = ctx.input_u64("sum").unwrap_or(0);
        let seen = ctx.fetch("seen").and_then(|v| v.as_u64()).unwrap_or(0);
        ctx.set_output(sum + seen);
        Ok(())
    })
    .after(["sum"]);
    let report = Executor::new(1).run(&b.build().unwrap());
    assert_eq!(report.status, RunStatus::Completed, "{report:?}");
    assert_eq!(report.output("sum").and_then(|v| v.as_u64()), Some(42));
    assert_eq!(report.output("after").and_then(|v| v.as_u64()), Some(83));
}

#[test]
fn a_timeout_drops_the_future() {
    let keep = Arc::new(Mutex::new(Vec::new()));
    let dropped = Arc::new(AtomicBool::new(false));
    let mut b = Workflow::builder("slow");
    let (k, d) = (Arc::clone(&keep), Arc::clone(&dropped));
    b.node_async("stuck", move |_| {
        let rx = never(&k);
        let guard = DropFlag(Arc::clone(&d));
        async move {
            let _guard = guard;
            let _ = rx.await;
            Ok(())
        }
    })
    .timeout(Duration::from_millis(20));
    let report = Executor::new(1).run(&b.build().unwrap());
    let node = report.node("stuck").unwrap();
    assert_eq!(node.status, NodeStatus::Failed);
    assert_eq!(
        node.error.as_ref().unwrap().kind(),
        ActionErrorKind::TimedOut
    );
    assert!(dropped.load(Ordering::SeqCst), "the future was dropped");
}

#[test]
fn retries_run_new_attempts_of_an_async_node() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = Arc::clone(&calls);
    let mut b = Workflow::builder("flaky");
    b.node_async("flaky", move |ctx| {
        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            if n < 3 {
                return Err(ActionError::new(format!("attempt {}", ctx.attempt())));
            }
            ctx.set_output(u64::from(ctx.attempt()));
            Ok(())
        }
    })
    .retry(RetryPolicy::exponential(5, Duration::from_millis(2)).jitter(false));
    let report = Executor::new(2).run(&b.build().unwrap());
    let node = report.node("flaky").unwrap();
    assert_eq!((node.status, node.attempts), (NodeStatus::Completed, 3));
    assert_eq!(report.output("flaky").and_then(|v| v.as_u64()), Some(3));
}

#[test]
fn cancelling_a_run_drops_its_parked_futures_and_ends_it() {
    let keep = Arc::new(Mutex::new(Vec::new()));
    let dropped = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let mut b = Workflow::builder("cancel");
    let (k, d, s) = (
        Arc::clone(&keep),
        Arc::clone(&dropped),
        Arc::clone(&started),
    );
    b.node_async("parked", move |_| {
        let rx = never(&k);
        let guard = DropFlag(Arc::clone(&d));
        s.store(true, Ordering::SeqCst);
        async move {
            let _guard = guard;
            let _ = rx.await;
            Ok(())
        }
    });
    b.node("later", |_| Ok(())).after(["parked"]);
    let executor = Executor::new(1);
    let handle = executor.submit(&b.build().unwrap());
    while !started.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    handle.cancel();
    let report = handle.wait();
    assert_eq!(report.status, RunStatus::Cancelled);
    assert_eq!(report.node("parked").unwrap().status, NodeStatus::Cancelled);
    assert_eq!(report.node("later").unwrap().status, NodeStatus::Cancelled);
    assert!(dropped.load(Ordering::SeqCst));
}

#[test]
fn a_failure_stops_parked_async_nodes_under_fail_fast_only() {
    for policy in [FailurePolicy::FailFast, FailurePolicy::ContinueIndependent] {
        let keep = Arc::new(Mutex::new(Vec::new()));
        let dropped = Arc::new(AtomicBool::new(false));
        let (tx, rx) = oneshot::channel::<()>();
        let rx = Mutex::new(Some(rx));
        let mut b = Workflow::builder("failfast");
        let (k, d) = (Arc::clone(&keep), Arc::clone(&dropped));
        b.node_async("parked", move |_| {
            // Under ContinueIndependent the failing node's `release` lets it finish.
            let release = rx.lock().unwrap().take();
            let _never = never(&k);
            let guard = DropFlag(Arc::clone(&d));
            async move {
                let _guard = guard;
                if let Some(r) = release {
                    let _ = r.await;
                }
                Ok(())
            }
        });
        let tx = Mutex::new(Some(tx));
        let p = policy;
        b.node("fails", move |_| {
            if p == FailurePolicy::ContinueIndependent
                && let Some(tx) = tx.lock().unwrap().take()
            {
                let _ = tx.send(());
            }
            Err(ActionError::permanent("broken"))
        });
        let report =
            Executor::new(1).run_with(&b.build().unwrap(), RunOptions::new().policy(policy));
        assert_eq!(report.status, RunStatus::Failed);
        let parked = report.node("parked").unwrap().status;
        match policy {
            FailurePolicy::FailFast => assert_eq!(parked, NodeStatus::Skipped),
            FailurePolicy::ContinueIndependent => assert_eq!(parked, NodeStatus::Completed),
        }
        assert!(dropped.load(Ordering::SeqCst), "{policy:?}");
    }
}

/// `max_concurrency(1)`: a parked async node keeps its slot, so at most one of them is in flight.
#[test]
fn max_concurrency_counts_parked_async_nodes() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut b = Workflow::builder("limited");
    for i in 0..6 {
        let (f, m) = (Arc::clone(&in_flight), Arc::clone(&most));
        b.node_async(format!("n{i}"), move |_| {
            let (f, m) = (Arc::clone(&f), Arc::clone(&m));
            async move {
                let now = f.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                // Parks: a thread sends a moment later.
                let (tx, rx) = oneshot::channel();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(2));
                    let _ = tx.send(());
                });
                let _ = rx.await;
                f.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        });
    }
    let report =
        Executor::new(2).run_with(&b.build().unwrap(), RunOptions::new().max_concurrency(1));
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(most.load(Ordering::SeqCst), 1);
}

#[test]
fn a_panicking_future_fails_its_node_and_the_workers_go_on() {
    let mut b = Workflow::builder("panics");
    b.node_async("boom", |_| async move {
        let (tx, rx) = oneshot::channel::<()>();
        std::thread::spawn(move || tx.send(()));
        let _ = rx.await;
        panic!("async boom");
    });
    let executor = Executor::new(1);
    let report = executor.run(&b.build().unwrap());
    let e = report.node("boom").unwrap().error.clone().unwrap();
    assert_eq!(e.kind(), ActionErrorKind::Panicked);
    assert!(e.message().contains("async boom"), "{e}");
    assert_eq!(executor.stats().worker_panics, 0);
    let mut again = Workflow::builder("after");
    again.node_async("ok", |_| async { Ok(()) });
    assert_eq!(
        executor.run(&again.build().unwrap()).status,
        RunStatus::Completed
    );
}

/// A durable run of async nodes: completed ones are checkpointed and not run again on resume.
#[test]
fn async_outputs_are_checkpointed_and_restored() {
    let runs = Arc::new(AtomicU32::new(0));
    let fail = Arc::new(AtomicBool::new(true));
    let mut b = Workflow::builder("durable-async");
    let r = Arc::clone(&runs);
    b.node_async("first", move |ctx| {
        r.fetch_add(1, Ordering::SeqCst);
        async move {
            ctx.set_output(7u64);
            Ok(())
        }
    });
    let f = Arc::clone(&fail);
    b.node_async("second", move |ctx| {
        let f = Arc::clone(&f);
        async move {
            if f.load(Ordering::SeqCst) {
                return Err(ActionError::permanent("not yet"));
            }
            ctx.set_output(ctx.input_u64("first").unwrap_or(0) * 2);
            Ok(())
        }
    })
    .after(["first"]);
    let w = b.build().unwrap();
    let store = Arc::new(MemoryCheckpoints::new());
    let run = RunId::named("durable-async");
    let executor = Executor::new(2);
    assert_eq!(
        executor.run_durable(&w, store.clone(), run).unwrap().status,
        RunStatus::Failed
    );
    fail.store(false, Ordering::SeqCst);
    let resumed = executor.run_durable(&w, store, run).unwrap();
    assert_eq!(resumed.status, RunStatus::Completed);
    assert!(resumed.node("first").unwrap().restored);
    assert_eq!(resumed.output("second").and_then(|v| v.as_u64()), Some(14));
    assert_eq!(runs.load(Ordering::SeqCst), 1, "first ran once");
}

/// A run handle is a future: awaited from async code, with no thread blocked in the executor.
#[test]
fn a_run_handle_is_awaited() {
    let mut b = Workflow::builder("awaited");
    b.node_async("wait", |ctx| async move {
        let (tx, rx) = oneshot::channel::<u64>();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            let _ = tx.send(9);
        });
        ctx.set_output(rx.await.unwrap_or(0));
        Ok(())
    });
    let w = b.build().unwrap();
    let executor = Executor::new(1);
    let reports = futures::executor::block_on(futures::future::join_all(
        (0..8).map(|_| executor.submit(&w)),
    ));
    assert_eq!(reports.len(), 8);
    for r in reports {
        assert_eq!(r.output("wait").and_then(|v| v.as_u64()), Some(9));
    }
}
