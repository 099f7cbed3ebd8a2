//! Throughput of shared runs on PostgreSQL (targets X1 and X2, in the counts): makespans of runs executed
//! by `SharedWorker`s, by worker processes, and by a naive queue on the same server.
//!
//! The naive queue is what a first version would do: one transaction to claim a node (`SELECT … FOR
//! UPDATE SKIP LOCKED LIMIT 1`, then mark it running), one to complete it (mark it done, count down its
//! dependents), no batching, and a 1 ms poll when nothing is ready.

use std::{
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use flowmem_engine::{RunId, Workflow};
use flowmem_postgres::{PgOptions, SharedRuns, SharedStatus, SharedWorker, WorkerOptions};

pub use crate::shared_crash::config;

/// `layers` × `width` nodes, each after two of the layer before, each sleeping `sleep` (none: no-op).
pub fn layered(name: &str, layers: usize, width: usize, sleep: Duration) -> Workflow {
    let mut b = Workflow::builder(name);
    for l in 0..layers {
        for i in 0..width {
            let node = b.node(format!("l{l}n{i}"), move |_| {
                if !sleep.is_zero() {
                    std::thread::sleep(sleep);
                }
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
    b.build().expect("a valid workflow")
}

/// X1's workflow: 4 layers of 200 nodes, each awaiting 2 ms (I/O-bound). Wide enough that the
/// frontier keeps every thread of two processes busy (at 8 layers of 50, rounds of 4 threads against
/// 8 capped the ratio at 13/7 = 1.86 before any coordination cost).
pub fn io_workflow() -> Workflow {
    layered("x1-io", 4, 200, Duration::from_millis(2))
}

/// X2's workflow: 20 layers of 100 no-op nodes.
pub fn noop_workflow() -> Workflow {
    layered("x2-noop", 20, 100, Duration::ZERO)
}

/// Worker options of the benches: `threads`, batches of `batch`, 10 s leases, idle threads woken by
/// notifications (a 100 ms poll as fallback: a tighter poll only loads the server with empty claims).
pub fn worker_options(name: &str, threads: usize, batch: usize) -> WorkerOptions {
    WorkerOptions::new()
        .name(name)
        .threads(threads)
        .batch(batch)
        .lease(Duration::from_secs(10))
        .poll(Duration::from_millis(100))
}

/// Whether the server of the PostgreSQL benches (`FLOWMEM_PG`) answers. If not, says so on stderr
/// (the benches of `what` are skipped) — unless `FLOWMEM_REQUIRE_PG` is set (as in CI), where a missing
/// server is an error and this panics.
pub fn server_answers(what: &str) -> bool {
    let connected = postgres::Client::connect(&config(), postgres::NoTls).map_err(|e| {
        // The error and its causes ("error connecting to server: Connection refused ...").
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        text
    });
    match connected {
        Ok(_) => true,
        Err(e) if std::env::var_os("FLOWMEM_REQUIRE_PG").is_some() => panic!(
            "{what} need PostgreSQL at `{}` (FLOWMEM_REQUIRE_PG is set): {e}",
            config()
        ),
        Err(e) => {
            eprintln!(
                "skipped {what}: no PostgreSQL server answers at `{}` (set FLOWMEM_PG to point at one): {e}",
                config()
            );
            false
        }
    }
}

/// A fresh schema `schema` (dropped first) and shared runs in it.
pub fn fresh(schema: &str) -> Arc<SharedRuns> {
    let mut admin = postgres::Client::connect(&config(), postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "the shared-run benches need PostgreSQL at `{}`: {e}",
            config()
        )
    });
    admin
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .expect("dropping the bench schema");
    Arc::new(
        SharedRuns::open(PgOptions::new(config()).schema(schema).pool_size(16))
            .expect("opening shared runs"),
    )
}

/// Drops schema `schema`.
pub fn drop_schema(schema: &str) {
    if let Ok(mut admin) = postgres::Client::connect(&config(), postgres::NoTls) {
        let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
    }
}

/// Submits a run of `workflow` and waits for it to complete: the time from submission to the end.
pub fn makespan(runs: &SharedRuns, workflow: &Workflow, tag: &str) -> Duration {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let run = RunId::named(&format!("{tag}-{}-{n}", std::process::id()));
    let started = Instant::now();
    runs.submit(workflow, run, &[]).expect("submitting");
    let report = runs
        .wait(run, Duration::from_millis(2), Duration::from_secs(600))
        .expect("reading the run")
        .expect("the run ends within ten minutes");
    assert_eq!(report.status, SharedStatus::Completed, "{tag}");
    started.elapsed()
}

/// The makespan of `workflow` run by one in-process `SharedWorker` of `threads` threads.
pub fn in_process(
    runs: &Arc<SharedRuns>,
    workflow: &Workflow,
    threads: usize,
    tag: &str,
) -> Duration {
    let worker = SharedWorker::start(
        Arc::clone(runs),
        std::slice::from_ref(workflow),
        worker_options(tag, threads, 8),
    )
    .expect("starting a worker");
    let took = makespan(runs, workflow, tag);
    worker.stop();
    took
}

/// The makespan of X1's workflow run by `processes` `pg_worker` processes (`exe`), each of `threads`
/// threads, started (and idle) before the run is submitted.
pub fn in_processes(
    exe: &std::path::Path,
    schema: &str,
    processes: usize,
    threads: usize,
) -> Duration {
    let runs = fresh(schema);
    let mut children: Vec<Child> = (0..processes)
        .map(|_| {
            Command::new(exe)
                .args(["serve", schema, &threads.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()))
        })
        .collect();
    // Let them connect, migrate and start listening.
    std::thread::sleep(Duration::from_millis(500));
    let took = makespan(&runs, &io_workflow(), &format!("x1-{processes}"));
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    drop(runs);
    drop_schema(schema);
    took
}

/// The naive queue's makespan of `workflow` on `threads` threads, in tables of its own in `schema`.
pub fn naive(schema: &str, workflow: &Workflow, threads: usize) -> Duration {
    let s = format!("\"{schema}\"");
    let mut admin = postgres::Client::connect(&config(), postgres::NoTls).expect("connecting");
    let n = workflow.len();
    admin
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {s} CASCADE; CREATE SCHEMA {s};
             CREATE TABLE {s}.naive_nodes (node int PRIMARY KEY, waiting int NOT NULL, state text NOT NULL);"
        ))
        .expect("creating the naive queue");
    let waiting: Vec<i32> = (0..n)
        .map(|i| workflow.dependencies_of(i).len() as i32)
        .collect();
    let nodes: Vec<i32> = (0..n as i32).collect();
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    admin
        .execute(
            &format!(
                "INSERT INTO {s}.naive_nodes SELECT n, w, CASE WHEN w = 0 THEN 'ready' ELSE 'waiting' END
                 FROM unnest($1::int4[], $2::int4[]) AS t (n, w)"
            ),
            &[&nodes, &waiting],
        )
        .expect("submitting to the naive queue");
    let names: Vec<&str> = workflow.nodes().collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (done, names, s) = (&done, &names, &s);
            scope.spawn(move || {
                let mut client =
                    postgres::Client::connect(&config(), postgres::NoTls).expect("connecting");
                // As a competent first version would: statements prepared once per connection, a
                // claim in one statement (its own transaction), a completion in one transaction.
                let claim = client
                    .prepare(&format!(
                        "UPDATE {s}.naive_nodes SET state = 'running'
                         WHERE node = (SELECT node FROM {s}.naive_nodes WHERE state = 'ready'
                                       ORDER BY node LIMIT 1 FOR UPDATE SKIP LOCKED)
                         RETURNING node"
                    ))
                    .expect("preparing the claim");
                let finish = client
                    .prepare(&format!(
                        "UPDATE {s}.naive_nodes SET state = 'done' WHERE node = $1"
                    ))
                    .expect("preparing the completion");
                let release = client
                    .prepare(&format!(
                        "UPDATE {s}.naive_nodes SET waiting = waiting - 1,
                             state = CASE WHEN waiting = 1 THEN 'ready' ELSE state END
                         WHERE node = ANY($1)"
                    ))
                    .expect("preparing the release of dependents");
                while done.load(Ordering::Acquire) < n {
                    let row = client.query_opt(&claim, &[]).expect("claiming");
                    let Some(row) = row else {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    };
                    let node: i32 = row.get(0);
                    let invoked = workflow
                        .invoke(names[node as usize], 1, &[], &[])
                        .expect("a sync node");
                    assert!(invoked.result.is_ok());
                    let dependents: Vec<i32> = workflow
                        .dependents_of(node as usize)
                        .iter()
                        .map(|d| *d as i32)
                        .collect();
                    let mut tx = client.transaction().expect("a transaction");
                    tx.execute(&finish, &[&node]).expect("marking done");
                    tx.execute(&release, &[&dependents])
                        .expect("counting down dependents");
                    tx.commit().expect("committing the completion");
                    done.fetch_add(1, Ordering::AcqRel);
                }
            });
        }
    });
    let took = started.elapsed();
    let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {s} CASCADE"));
    took
}

/// `pg_worker serve SCHEMA THREADS`: a worker of X1's workflow until killed.
pub fn serve_main(args: &[String]) -> ! {
    let [schema, threads] = args else {
        eprintln!("usage: pg_worker serve SCHEMA THREADS");
        std::process::exit(2);
    };
    let threads: usize = threads.parse().expect("THREADS is a number");
    let runs = Arc::new(
        SharedRuns::open(PgOptions::new(config()).schema(schema)).expect("opening the shared runs"),
    );
    let _worker = SharedWorker::start(
        runs,
        &[io_workflow()],
        // Batches of 8: a thread runs a batch's nodes one after the other (16 ms of waiting here) while
        // the claim and the completion cost a millisecond or two on this machine; 8 threads of 8
        // still leave a 200-node layer spread over every thread of both processes. (Batches of 2
        // gave 1.3-1.4, of 4 1.56-1.60, of 8 1.77.)
        worker_options(&format!("pid-{}", std::process::id()), threads, 8),
    )
    .expect("starting the worker");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
