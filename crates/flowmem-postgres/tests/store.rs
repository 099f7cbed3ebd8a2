//! `PgCheckpoints` against a real PostgreSQL server: `FLOWMEM_PG` (default `host=127.0.0.1 user=postgres
//! dbname=test`, the server `.ci/run` starts). Each test works in a schema of its own, dropped at its end.
//! Without a server these tests fail, naming the connection string: they never pass silently.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use flowmem_engine::{
    CheckpointStore, DurabilityError, Executor, NodeStatus, RunId, RunOptions, RunStatus, Value,
    Workflow,
};
use flowmem_postgres::{
    PgCheckpoints, PgError, PgOptions, SCHEMA_VERSION, migrate, schema_version,
};

mod common;

use common::{Schema, config};

/// A workflow a → (b, c) → d whose node `c` fails while `fail` is set; counts executions per node.
fn diamond(fail: Arc<AtomicBool>, runs: Arc<[AtomicU32; 4]>) -> Workflow {
    let mut b = Workflow::builder("diamond");
    for (i, (name, deps)) in [
        ("a", vec![]),
        ("b", vec!["a"]),
        ("c", vec!["a"]),
        ("d", vec!["b", "c"]),
    ]
    .into_iter()
    .enumerate()
    {
        let (fail, runs) = (Arc::clone(&fail), Arc::clone(&runs));
        b.node(name, move |ctx| {
            runs[i].fetch_add(1, Ordering::SeqCst);
            if name == "c" && fail.load(Ordering::SeqCst) {
                return Err(flowmem_engine::ActionError::permanent("c fails this time"));
            }
            let mut sum = 1;
            ctx.for_each_input(|_, v| sum += v.as_u64().unwrap_or(0));
            ctx.put(&format!("seen-{name}"), sum);
            ctx.set_output(sum);
            Ok(())
        })
        .after(deps);
    }
    b.build().unwrap()
}

#[test]
fn migrate_creates_the_schema_once_and_records_its_version() {
    let schema = Schema::new("migrate");
    let mut client = Schema::client();
    assert_eq!(
        schema_version(&mut client, &schema.0, "test db").unwrap(),
        0
    );
    assert_eq!(
        migrate(&mut client, &schema.0, "test db").unwrap(),
        SCHEMA_VERSION
    );
    // Again, and from two threads at once: nothing changes, nothing fails.
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| migrate(&mut Schema::client(), &schema.0, "test db").unwrap());
        }
    });
    assert_eq!(
        schema_version(&mut client, &schema.0, "test db").unwrap(),
        SCHEMA_VERSION
    );
    let versions: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM \"{}\".flowmem_schema", schema.0),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(versions, 1);
    // A schema made by a newer crate is refused, naming both versions.
    client
        .execute(
            &format!("UPDATE \"{}\".flowmem_schema SET version = 99", schema.0),
            &[],
        )
        .unwrap();
    let e = PgCheckpoints::open(schema.options()).unwrap_err();
    assert!(matches!(e, PgError::SchemaTooNew { found: 99, .. }), "{e}");
    assert!(
        e.to_string().contains("version 99") && e.to_string().contains(&schema.0),
        "{e}"
    );
}

#[test]
fn a_failed_run_resumes_from_postgres_without_rerunning_completed_nodes() {
    let schema = Schema::new("resume");
    let fail = Arc::new(AtomicBool::new(true));
    let runs = Arc::new([0, 0, 0, 0].map(AtomicU32::new));
    let workflow = diamond(Arc::clone(&fail), Arc::clone(&runs));
    let run = RunId::named("pg-resume");
    let executor = Executor::new(2);
    let first = {
        let store = Arc::new(PgCheckpoints::open(schema.options()).unwrap());
        let options = RunOptions::new()
            .policy(flowmem_engine::FailurePolicy::ContinueIndependent)
            .input("tenant", "acme");
        let report = executor
            .submit_durable(&workflow, store.clone(), run, options)
            .unwrap()
            .wait();
        assert!(store.stats().commits >= 1, "{:?}", store.stats());
        report
    };
    assert_eq!(first.status, RunStatus::Failed);
    assert_eq!(first.node("b").unwrap().status, NodeStatus::Completed);
    assert_eq!(first.node("c").unwrap().status, NodeStatus::Failed);
    // A new store (as after a restart of the process) resumes: a and b are restored, c and d run.
    fail.store(false, Ordering::SeqCst);
    let store = Arc::new(PgCheckpoints::open(schema.options()).unwrap());
    let second = executor.run_durable(&workflow, store.clone(), run).unwrap();
    assert_eq!(second.status, RunStatus::Completed, "{second:?}");
    assert_eq!(second.restored(), 2);
    let counts: Vec<u32> = runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
    assert_eq!(counts, [1, 1, 2, 1]);
    assert_eq!(second.output("d").and_then(Value::as_u64), Some(5));
    assert_eq!(
        second.context_value("tenant").and_then(Value::as_str),
        Some("acme"),
        "the run's input, restored"
    );
    // Everything is in the database, readable from anywhere.
    let stored = store.load(run).unwrap().expect("the run");
    assert_eq!(stored.nodes.len(), 4);
    assert_eq!(
        stored.output(&workflow, "d").and_then(Value::as_u64),
        Some(5)
    );
    assert_eq!(
        stored.context_value("seen-d").and_then(Value::as_u64),
        Some(5)
    );
    // Forgotten: gone, and the run id starts afresh.
    assert!(store.forget(run).unwrap());
    assert!(store.load(run).unwrap().is_none());
    assert!(!store.forget(run).unwrap());
}

#[test]
fn a_run_id_of_another_workflow_and_unpersistable_values_are_refused() {
    let schema = Schema::new("refusals");
    let store = Arc::new(PgCheckpoints::open(schema.options()).unwrap());
    let workflow = diamond(Arc::default(), Arc::new([0, 0, 0, 0].map(AtomicU32::new)));
    let run = RunId::named("pg-mismatch");
    store.begin(run, &workflow).unwrap();
    let mut b = Workflow::builder("other");
    b.node("x", |_| Ok(()));
    let other = b.build().unwrap();
    let e = store.begin(run, &other).unwrap_err();
    assert!(matches!(e, DurabilityError::WorkflowMismatch { .. }), "{e}");
    assert!(
        e.to_string().contains("diamond") && e.to_string().contains("other"),
        "{e}"
    );
    let opaque = Value::Opaque(Arc::new(7u8));
    let e = store.checkpoint(run, 0, "a", &opaque).unwrap_err();
    assert!(matches!(e, DurabilityError::Unpersistable { .. }), "{e}");
    assert!(e.to_string().contains("node `a`"), "{e}");
}

#[test]
fn many_completions_share_a_commit() {
    let schema = Schema::new("group");
    let store = Arc::new(PgCheckpoints::open(schema.options()).unwrap());
    let mut b = Workflow::builder("wide");
    for i in 0..400 {
        b.node(format!("n{i}"), move |ctx| {
            ctx.set_output(i as u64);
            Ok(())
        });
    }
    let workflow = b.build().unwrap();
    let report = Executor::new(2)
        .run_durable(&workflow, store.clone(), RunId::named("pg-group"))
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    let stats = store.stats();
    assert_eq!(stats.durable, 400);
    assert!(stats.commits < 400, "{stats:?}");
    println!("400 checkpoints in {} commits", stats.commits);
}

#[test]
fn a_terminated_connection_is_replaced_and_the_run_completes() {
    let schema = Schema::new("terminated");
    let name = format!("flowmem-test-{}", std::process::id());
    let store = Arc::new(PgCheckpoints::open(schema.options().application_name(&name)).unwrap());
    let killed = Arc::new(AtomicU32::new(0));
    let mut b = Workflow::builder("cut-off");
    for i in 0..20 {
        let (killed, name, held) = (Arc::clone(&killed), name.clone(), Arc::clone(&store));
        let node = b.node(format!("n{i}"), move |ctx| {
            if i == 10 {
                // The committer connects at its first commit: wait for one, so its connection is there.
                wait_for_a_commit(&held);
                // Every connection of the store, its committer's among them, is cut.
                let n: i64 = Schema::client()
                    .query_one(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                         WHERE application_name = $1",
                        &[&name],
                    )
                    .unwrap()
                    .get(0);
                killed.store(n as u32, Ordering::SeqCst);
            }
            ctx.set_output(i as u64);
            Ok(())
        });
        if i > 0 {
            node.after([format!("n{}", i - 1)]);
        }
    }
    let workflow = b.build().unwrap();
    let run = RunId::named("pg-terminated");
    let report = Executor::new(2)
        .run_durable(&workflow, store.clone(), run)
        .unwrap();
    assert!(
        killed.load(Ordering::SeqCst) >= 1,
        "a connection was terminated"
    );
    assert_eq!(report.status, RunStatus::Completed, "{report:?}");
    assert!(report.store_error.is_none());
    assert!(store.stats().retries >= 1, "{:?}", store.stats());
    let stored = store.load(run).unwrap().unwrap();
    assert_eq!(stored.nodes.len(), 20);
}

#[test]
fn a_database_that_stays_away_fails_the_store_with_a_clear_error() {
    let e = PgCheckpoints::open(
        PgOptions::new("host=127.0.0.1 port=1 user=postgres dbname=test password=hunter2")
            .connect_timeout(Duration::from_millis(300)),
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, PgError::Connect { .. }), "{text}");
    assert!(text.contains("127.0.0.1:1/test as postgres"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let e = PgCheckpoints::open(PgOptions::new("host=127.0.0.1 port=notanumber")).unwrap_err();
    assert!(matches!(e, PgError::BadConfig { .. }), "{e}");
    let e = PgCheckpoints::open(PgOptions::new(config()).schema("Bad-Name")).unwrap_err();
    assert!(matches!(e, PgError::BadSchemaName { .. }), "{e}");
}

/// With no retry allowed, a commit on a terminated connection fails the store: the run reports the
/// store's error and counts as failed, the store refuses more, and a store opened again resumes the run.
#[test]
fn a_commit_that_cannot_be_retried_fails_the_run_and_a_new_store_resumes_it() {
    let schema = Schema::new("no_retry");
    let name = format!("flowmem-test-noretry-{}", std::process::id());
    let store = Arc::new(
        PgCheckpoints::open(
            schema
                .options()
                .application_name(&name)
                .retry_for(Duration::ZERO),
        )
        .unwrap(),
    );
    let cut = Arc::new(AtomicBool::new(true));
    let mut b = Workflow::builder("cut-once");
    for i in 0..6 {
        let (cut, name, held) = (Arc::clone(&cut), name.clone(), Arc::clone(&store));
        let node = b.node(format!("n{i}"), move |ctx| {
            if i == 3 && cut.swap(false, Ordering::SeqCst) {
                // The committer's connection must exist to be cut: it connects at its first commit.
                wait_for_a_commit(&held);
                Schema::client()
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                        &[&name],
                    )
                    .unwrap();
            }
            ctx.set_output(i as u64);
            Ok(())
        });
        if i > 0 {
            node.after([format!("n{}", i - 1)]);
        }
    }
    let workflow = b.build().unwrap();
    let run = RunId::named("pg-no-retry");
    let report = Executor::new(1)
        .run_durable(&workflow, store.clone(), run)
        .unwrap();
    assert_eq!(report.status, RunStatus::Failed, "{report:?}");
    let error = report.store_error.as_ref().expect("the store's error");
    assert!(
        error.to_string().contains("PostgreSQL at 127.0.0.1"),
        "{error}"
    );
    assert!(
        store.checkpoint(run, 0, "n0", &Value::U64(0)).is_err(),
        "a failed store refuses"
    );
    drop(store);
    let store = Arc::new(PgCheckpoints::open(schema.options()).unwrap());
    let resumed = Executor::new(1).run_durable(&workflow, store, run).unwrap();
    assert_eq!(resumed.status, RunStatus::Completed, "{resumed:?}");
    // What was committed before the cut (nothing after it: the store failed) is restored; the rest runs.
    assert!(resumed.restored() <= 3, "{}", resumed.restored());
    assert_eq!(resumed.output("n5").and_then(Value::as_u64), Some(5));
}

/// Waits (up to 10 s) until `store` has committed once, so its committer holds a connection.
fn wait_for_a_commit(store: &PgCheckpoints) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.stats().commits == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no commit within 10 s: {:?}",
            store.stats()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}
