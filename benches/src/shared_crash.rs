//! Crash trials of shared runs on PostgreSQL (target X3, `benches/tests/shared_crash.rs`): three worker
//! processes (the `pg_worker` binary) share a 500-node run; one is killed with SIGKILL at a random moment;
//! the others take its nodes over when its leases expire. Then this process checks that the run
//! completed, that its outputs equal a single-process run's, and that the executions beyond one per node
//! are no more than the killed worker could have had in hand.
//!
//! A child appends `S <node>` to its log (one `write` per line, so it survives the kill) when a node's
//! action starts.

use std::{
    fs::OpenOptions,
    io::Write,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use flowmem_engine::{Executor, RunId, Value, Workflow};
use flowmem_postgres::{PgOptions, SharedRuns, SharedStatus, SharedWorker, WorkerOptions};

/// Threads of each worker process.
pub const THREADS: usize = 2;
/// Nodes a worker thread claims at once.
pub const BATCH: usize = 2;
/// The workers' lease: a killed worker's nodes go to the others after this.
pub const LEASE: Duration = Duration::from_millis(1500);

/// The server: `FLOWMEM_PG`, or the one `.ci/run` starts.
pub fn config() -> String {
    std::env::var("FLOWMEM_PG")
        .unwrap_or_else(|_| "host=127.0.0.1 user=postgres dbname=test".into())
}

/// The trial workflow: 20 layers of 25 nodes, each after two of the layer before, spinning 1 ms (plus
/// 1 ms on every other node), its output a hash of its inputs; `log` is called with the node's name
/// when its action starts.
pub fn workflow(log: Arc<dyn Fn(&str) + Send + Sync>) -> Workflow {
    let mut b = Workflow::builder("shared-crash");
    for l in 0..20 {
        for i in 0..25usize {
            let log = Arc::clone(&log);
            let spin = Duration::from_micros(1_000 + 1_000 * (i % 2) as u64);
            let node = b.node(format!("l{l}n{i}"), move |ctx| {
                log(ctx.node_name());
                let start = Instant::now();
                while start.elapsed() < spin {
                    std::hint::spin_loop();
                }
                let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ (l * 25 + i) as u64;
                ctx.for_each_input(|_, v| {
                    h = (h ^ v.as_u64().unwrap_or(0)).wrapping_mul(0x0000_0100_0000_01b3);
                });
                ctx.set_output(h);
                Ok(())
            });
            if l > 0 {
                node.after([
                    format!("l{}n{i}", l - 1),
                    format!("l{}n{}", l - 1, (i + 7) % 25),
                ]);
            }
        }
    }
    b.build().expect("a valid workflow")
}

/// The child: `SCHEMA RUN LOG`. Works on the run until it has ended, then exits 0.
pub fn child_main(args: &[String]) -> ! {
    let [schema, run, log] = args else {
        eprintln!("usage: pg_worker SCHEMA RUN_ID LOG");
        std::process::exit(2);
    };
    let run: RunId = run.parse().expect("RUN_ID is a run id");
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("opening the log");
    let file = Mutex::new(file);
    let workflow = workflow(Arc::new(move |node: &str| {
        let mut f = file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = f.write_all(format!("S {node}\n").as_bytes());
    }));
    let runs = Arc::new(
        SharedRuns::open(PgOptions::new(config()).schema(schema)).expect("opening the shared runs"),
    );
    let worker = SharedWorker::start(
        Arc::clone(&runs),
        std::slice::from_ref(&workflow),
        WorkerOptions::new()
            .name(format!("pid-{}", std::process::id()))
            .threads(THREADS)
            .batch(BATCH)
            .lease(LEASE)
            .poll(Duration::from_millis(50)),
    )
    .expect("starting the worker");
    loop {
        std::thread::sleep(Duration::from_millis(20));
        match runs.status(run) {
            Ok(status) if status != SharedStatus::Running => break,
            _ => {}
        }
    }
    drop(worker);
    std::process::exit(0);
}

/// The nodes of `run` leased to `owner` now.
fn held_by(schema: &str, run: RunId, owner: &str) -> u64 {
    let mut client = postgres::Client::connect(&config(), postgres::NoTls).expect("connecting");
    let n: i64 = client
        .query_one(
            &format!(
                "SELECT count(*) FROM \"{schema}\".shared_nodes
                 WHERE run = $1::text::uuid AND state = 'leased' AND lease_owner = $2"
            ),
            &[&run.to_string(), &owner],
        )
        .expect("reading the killed worker's leases")
        .get(0);
    n as u64
}

/// What a set of trials found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Trials made.
    pub trials: u64,
    /// Trials whose run did not complete, or completed with an output unlike the single-process run's.
    pub wrong: u64,
    /// Executions beyond one per node, beyond the nodes the killed worker held leases on when it was
    /// killed, summed over the trials.
    pub extra: u64,
    /// Executions beyond one per node in all (within the bound, they are the at-least-once re-runs).
    pub reruns: u64,
    /// Trials where the kill came before the run ended (the others found nothing to test).
    pub killed_mid_run: u64,
}

/// Runs `trials` crash trials with `exe` (the `pg_worker` binary) as the children, in schema `schema`
/// (dropped first and after), with logs under `dir`.
///
/// # Panics
/// If the server cannot be reached or a child cannot be started.
pub fn trials(exe: &Path, schema: &str, dir: &Path, trials: u32) -> Summary {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("creating the trial folder");
    let runs = crate::shared_bench::fresh(schema);
    let reference = Executor::new(2).run(&workflow(Arc::new(|_| {})));
    let quiet = workflow(Arc::new(|_| {}));
    let mut summary = Summary::default();
    let mut random = 0x2545_f491_4f6c_dd1d_u64 ^ u64::from(std::process::id());
    for trial in 0..trials {
        let run = RunId::named(&format!("shared-crash-{}-{trial}", std::process::id()));
        runs.submit(&quiet, run, &[]).expect("submitting");
        let logs: Vec<_> = (0..3)
            .map(|c| dir.join(format!("t{trial}-c{c}.log")))
            .collect();
        let mut children: Vec<Child> = logs
            .iter()
            .map(|log| {
                Command::new(exe)
                    .arg(schema)
                    .arg(run.to_string())
                    .arg(log)
                    .stdout(Stdio::null())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()))
            })
            .collect();
        // 500 nodes of 1.5 ms on 6 threads take about 0.15 s of work: kill within the first 0.4 s.
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let at = Duration::from_millis(30 + random % 370);
        std::thread::sleep(at);
        let victim = (random % 3) as usize;
        let victim_name = format!("pid-{}", children[victim].id());
        let _ = children[victim].kill();
        let _ = children[victim].wait();
        // The killed worker's hand: the nodes it held leases on (claimed, running, or run and waiting
        // for their completion to be written). Read before the leases expire.
        let in_hand = held_by(schema, run, &victim_name);
        let before_end = runs
            .report(run)
            .map(|r| r.status == SharedStatus::Running)
            .unwrap_or(false);
        summary.killed_mid_run += u64::from(before_end);
        let report = runs
            .wait(run, Duration::from_millis(20), Duration::from_secs(120))
            .expect("reading the run");
        for (c, child) in children.iter_mut().enumerate() {
            if c != victim {
                let _ = child.wait();
            }
        }
        summary.trials += 1;
        let ok = report.as_ref().is_some_and(|r| {
            r.status == SharedStatus::Completed
                && r.nodes.iter().all(|n| {
                    n.output.as_ref().and_then(Value::as_u64)
                        == reference.output(&n.name).and_then(Value::as_u64)
                })
        });
        summary.wrong += u64::from(!ok);
        let mut executions = std::collections::HashMap::<String, u64>::new();
        for log in &logs {
            for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
                if let Some(node) = line.strip_prefix("S ") {
                    *executions.entry(node.to_string()).or_default() += 1;
                }
            }
        }
        let reruns: u64 = executions.values().map(|n| n.saturating_sub(1)).sum();
        summary.reruns += reruns;
        summary.extra += reruns.saturating_sub(in_hand);
    }
    drop(runs);
    crate::shared_bench::drop_schema(schema);
    let _ = std::fs::remove_dir_all(dir);
    summary
}
