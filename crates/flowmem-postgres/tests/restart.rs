//! The database restarted mid-run: a server of the test's own (`common::server`) is stopped the way a
//! crash stops it while a worker runs a shared run, and started again a second later. The worker waits
//! and goes on: the run completes with the right outputs and each node is completed once.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use common::server::PrivateServer;
use flowmem_engine::{RunId, Value, Workflow};
use flowmem_postgres::{PgOptions, SharedRuns, SharedStatus, SharedWorker, WorkerOptions};

#[test]
fn workers_wait_out_a_database_restart_and_finish_the_run() {
    let server = PrivateServer::start();
    let runs = Arc::new(
        SharedRuns::open(
            PgOptions::new(server.config())
                .schema("restart")
                .retry_for(Duration::from_secs(60)),
        )
        .unwrap(),
    );
    // A chain of 60 nodes of 10 ms, each adding one to its input: the restart lands mid-chain.
    let n = 60usize;
    let executions: Arc<Vec<AtomicU32>> = Arc::new((0..n).map(|_| AtomicU32::new(0)).collect());
    let mut b = Workflow::builder("restart");
    for i in 0..n {
        let executions = Arc::clone(&executions);
        let node = b.node(format!("n{i}"), move |ctx| {
            executions[i].fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(10));
            let mut sum = 1u64;
            ctx.for_each_input(|_, v| sum += v.as_u64().unwrap_or(0));
            ctx.set_output(sum);
            Ok(())
        });
        if i > 0 {
            node.after([format!("n{}", i - 1)]);
        }
    }
    let workflow = b.build().unwrap();
    let run = RunId::named("restart");
    runs.submit(&workflow, run, &[]).unwrap();
    let worker = SharedWorker::start(
        Arc::clone(&runs),
        std::slice::from_ref(&workflow),
        WorkerOptions::new()
            .name("w")
            .threads(2)
            .lease(Duration::from_secs(5))
            .poll(Duration::from_millis(50)),
    )
    .unwrap();
    while executions[n / 3].load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(2));
    }
    server.crash();
    std::thread::sleep(Duration::from_secs(1));
    server.start_again();
    let report = runs
        .wait(run, Duration::from_millis(20), Duration::from_secs(120))
        .unwrap()
        .expect("the run ends within two minutes of the restart");
    let stats = worker.stop();
    assert_eq!(report.status, SharedStatus::Completed, "{stats:?}");
    assert!(
        runs.retries() > 0,
        "the server went away: statements were retried on new connections"
    );
    for (i, node) in report.nodes.iter().enumerate() {
        assert_eq!(
            node.output.as_ref().and_then(Value::as_u64),
            Some(i as u64 + 1),
            "node {i}"
        );
    }
    // Each node completed once; an execution beyond one only for the node in flight at the crash (its
    // claim or completion lost with the server's unflushed WAL, or retried on a new connection).
    assert_eq!(stats.completed, n as u64, "{stats:?}");
    let extra: u32 = executions
        .iter()
        .map(|e| e.load(Ordering::SeqCst).saturating_sub(1))
        .sum();
    assert!(extra <= 2, "{extra} extra executions");
}
